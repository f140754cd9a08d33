#include "data/zstd_io.h"

#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace glide::data {

namespace {

constexpr std::uint8_t kZstdMagic[4] = {0x28, 0xB5, 0x2F, 0xFD};

// Reads raw bytes from a FILE in pieces.
class FileReader {
  static constexpr std::size_t kStep = std::size_t{1} << 20;

 public:
  FileReader(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "rb")) {
    if (!file_) fail(path, std::string("cannot open: ") + std::strerror(errno));
  }
  ~FileReader() {
    if (file_) std::fclose(file_);
  }
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  // Appends up to `n` bytes to `out`; returns how many. Reads in steps of at most kStep bytes,
  // so a short file asked for a large block (64 MiB by default) grows `out` by what it holds,
  // not by the block, zero-filled.
  std::size_t read(std::string& out, std::size_t n) {
    std::size_t total = 0;
    while (total < n) {
      const std::size_t step = std::min(n - total, kStep), old = out.size();
      out.resize(old + step);
      const std::size_t got = std::fread(out.data() + old, 1, step, file_);
      out.resize(old + got);
      total += got;
      if (got < step) {
        if (std::ferror(file_)) fail(path_, std::string("read error: ") + std::strerror(errno));
        break;
      }
    }
    return total;
  }

 private:
  std::string path_;
  std::FILE* file_;
};

// Decompresses zstd data (any number of concatenated frames) pulled from `pull`.
class ZstdStream {
  static constexpr std::size_t kMaxRoom = std::size_t{1} << 20;

 public:
  explicit ZstdStream(std::string name) : name_(std::move(name)), dctx_(ZSTD_createDCtx()) {
    if (!dctx_) throw std::bad_alloc();
  }
  ~ZstdStream() { ZSTD_freeDCtx(dctx_); }
  ZstdStream(const ZstdStream&) = delete;
  ZstdStream& operator=(const ZstdStream&) = delete;

  // Decompresses from `in` (consumed from in_pos) into `out` until about `max_bytes` were
  // produced or the input is used up. Returns the bytes produced.
  std::size_t decompress(std::string_view in, std::size_t& in_pos, std::string& out,
                         std::size_t max_bytes) {
    std::size_t produced = 0;
    while (produced < max_bytes && (in_pos < in.size() || output_pending_)) {
      const std::size_t old = out.size();
      // At most kMaxRoom a step: `out` grows by what is decoded, not by max_bytes zero-filled.
      const std::size_t room =
          std::clamp<std::size_t>(max_bytes - produced, ZSTD_DStreamOutSize(), kMaxRoom);
      out.resize(old + room);
      ZSTD_inBuffer ib{in.data(), in.size(), in_pos};
      ZSTD_outBuffer ob{out.data() + old, room, 0};
      const std::size_t ret = ZSTD_decompressStream(dctx_, &ob, &ib);
      out.resize(old + ob.pos);
      in_pos = ib.pos;
      produced += ob.pos;
      if (ZSTD_isError(ret))
        fail(name_, std::string("corrupt zstd data: ") + ZSTD_getErrorName(ret));
      in_frame_ = ret != 0;
      // A full output buffer may leave decoded bytes inside zstd even with no input left.
      output_pending_ = ob.pos == room;
    }
    return produced;
  }
  // Call at the end of the input: a frame cut short is an error.
  void finish() const {
    if (in_frame_) fail(name_, "truncated zstd data: the input ends inside a compressed frame");
  }

 private:
  std::string name_;
  ZSTD_DCtx* dctx_;
  bool in_frame_ = false;
  bool output_pending_ = false;

 public:
  bool output_pending() const { return output_pending_; }
};

class PlainFileSource final : public TextSource {
 public:
  explicit PlainFileSource(const std::string& path) : TextSource(path), reader_(path) {}
  bool read_more(std::string& out, std::size_t max_bytes) override {
    return reader_.read(out, max_bytes) > 0;
  }

 private:
  FileReader reader_;
};

class ZstdFileSource final : public TextSource {
 public:
  explicit ZstdFileSource(const std::string& path)
      : TextSource(path), reader_(path), stream_(path) {}
  bool read_more(std::string& out, std::size_t max_bytes) override {
    std::size_t produced = 0;
    while (produced == 0) {
      if (pos_ == pending_.size() && !stream_.output_pending()) {
        pending_.clear();
        pos_ = 0;
        if (reader_.read(pending_, ZSTD_DStreamInSize()) == 0) {
          stream_.finish();
          return false;
        }
      }
      produced += stream_.decompress(pending_, pos_, out, max_bytes);
    }
    return true;
  }

 private:
  FileReader reader_;
  ZstdStream stream_;
  std::string pending_;
  std::size_t pos_ = 0;
};

class MemorySource final : public TextSource {
 public:
  MemorySource(std::string_view text, const std::string& name) : TextSource(name), text_(text) {}
  bool read_more(std::string& out, std::size_t max_bytes) override {
    if (pos_ == text_.size()) return false;
    const std::size_t n = std::min(max_bytes, text_.size() - pos_);
    out.append(text_.substr(pos_, n));
    pos_ += n;
    return true;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

class ZstdMemorySource final : public TextSource {
 public:
  ZstdMemorySource(std::string_view data, const std::string& name)
      : TextSource(name), data_(data), stream_(name) {}
  bool read_more(std::string& out, std::size_t max_bytes) override {
    while (pos_ < data_.size() || stream_.output_pending()) {
      if (stream_.decompress(data_, pos_, out, max_bytes) > 0) return true;
    }
    stream_.finish();
    return false;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  ZstdStream stream_;
};

}  // namespace

bool starts_with_zstd_magic(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 4 && std::memcmp(bytes.data(), kZstdMagic, 4) == 0;
}

std::unique_ptr<TextSource> open_text_source(const std::string& path) {
  // The content decides, not the name: a .zst renamed to .txt still reads.
  std::string head;
  FileReader(path).read(head, 4);
  const bool zstd =
      starts_with_zstd_magic({reinterpret_cast<const std::uint8_t*>(head.data()), head.size()});
  if (zstd) return std::make_unique<ZstdFileSource>(path);
  return std::make_unique<PlainFileSource>(path);
}

std::unique_ptr<TextSource> memory_text_source(std::string_view text, const std::string& name) {
  if (starts_with_zstd_magic({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}))
    return std::make_unique<ZstdMemorySource>(text, name);
  return std::make_unique<MemorySource>(text, name);
}

std::string read_all(TextSource& source) {
  std::string out;
  while (source.read_more(out, std::size_t{16} << 20)) {
  }
  return out;
}

std::vector<std::uint8_t> zstd_compress(std::span<const std::uint8_t> data, int level) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  if (!cctx) throw std::bad_alloc();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::vector<std::uint8_t> out(ZSTD_compressBound(data.size()));
  const std::size_t n = ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  if (ZSTD_isError(n)) fail(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

struct TextSink::Compressor {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::vector<char> buffer = std::vector<char>(ZSTD_CStreamOutSize());
  ~Compressor() { ZSTD_freeCCtx(cctx); }
};

TextSink::TextSink(std::FILE* file, bool compress, int level) : file_(file) {
  if (!compress) return;
  zstd_ = std::make_unique<Compressor>();
  if (!zstd_->cctx) throw std::bad_alloc();
  ZSTD_CCtx_setParameter(zstd_->cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(zstd_->cctx, ZSTD_c_checksumFlag, 1);
}

TextSink::~TextSink() = default;

void TextSink::put(const void* data, std::size_t size) {
  if (size && std::fwrite(data, 1, size, file_) != size)
    fail(std::string("write failed: ") + std::strerror(errno));
}

void TextSink::write(std::string_view text) {
  if (!zstd_) return put(text.data(), text.size());
  ZSTD_inBuffer in{text.data(), text.size(), 0};
  while (in.pos < in.size) {
    ZSTD_outBuffer out{zstd_->buffer.data(), zstd_->buffer.size(), 0};
    const std::size_t ret = ZSTD_compressStream2(zstd_->cctx, &out, &in, ZSTD_e_continue);
    if (ZSTD_isError(ret)) fail(std::string("zstd compression failed: ") + ZSTD_getErrorName(ret));
    put(out.dst, out.pos);
  }
}

void TextSink::finish() {
  if (!zstd_) return;
  ZSTD_inBuffer in{nullptr, 0, 0};
  std::size_t remaining;
  do {
    ZSTD_outBuffer out{zstd_->buffer.data(), zstd_->buffer.size(), 0};
    remaining = ZSTD_compressStream2(zstd_->cctx, &out, &in, ZSTD_e_end);
    if (ZSTD_isError(remaining))
      fail(std::string("zstd compression failed: ") + ZSTD_getErrorName(remaining));
    put(out.dst, out.pos);
  } while (remaining != 0);
}

}  // namespace glide::data
