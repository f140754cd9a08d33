#include "engine/model_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <unordered_set>

#include "common/error.h"
#include "common/file_util.h"
#include "data/gds_format.h"
#include "engine/checksum.h"

namespace glide::engine {
namespace {

// ---- Layout constants (docs/model-format.md) ----
constexpr char kMagic[8] = {'G', 'L', 'I', 'D', 'E', 'M', 'D', 'L'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::uint32_t kHeaderBytes = 64;
constexpr std::uint64_t kHeaderChecksumOffset = 56;
constexpr std::size_t kMaxRank = 4;
// name length (u16) + dtype (u8) + rank (u8) + flags (u32) + 4 dims + offset + stored + raw
// (u64 each) + chunk_bytes (u32) + checksum (u64); the name's bytes come on top.
constexpr std::uint64_t kTocEntryFixedBytes = 2 + 1 + 1 + 4 + 8 * kMaxRank + 8 + 8 + 8 + 4 + 8;
constexpr std::uint64_t kChunkHeaderBytes = 8;  // stored size (u32) + encoding (u32)
constexpr std::uint32_t kMaxChunkBytes = 64u << 20;
constexpr std::uint32_t kEncodingRaw = 0;
constexpr std::uint32_t kEncodingZstd = 1;
// A zstd block yields at most 128 KiB from no fewer than 4 stored bytes (an RLE block), so no
// honest chunk expands more than 32768x. Twice that bounds what a damaged table of contents can
// make the reader allocate: at most 64 KiB per byte actually present in the file.
constexpr std::uint64_t kMaxExpansion = 65536;
constexpr std::uint8_t kDTypeCount = 9;
// Fuzzing builds skip the header and table-of-contents checksums so that mutated inputs reach the
// structural checks behind them (libFuzzer cannot forge an XXH64). Never set in real builds.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kCheckStructureChecksums = false;
#else
constexpr bool kCheckStructureChecksums = true;
#endif

// ---- Little-endian encoding, independent of the host's byte order ----
class ByteSink {
 public:
  void u8(std::uint8_t v) { bytes_.push_back(std::byte{v}); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  std::vector<std::byte>& bytes() { return bytes_; }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i)
      bytes_.push_back(std::byte(static_cast<std::uint8_t>(v >> (8 * i))));
  }
  std::vector<std::byte> bytes_;
};

// Reads little-endian fields with a bounds check on every read: file contents are untrusted.
class ByteCursor {
 public:
  ByteCursor(std::span<const std::byte> bytes, const std::string& path, const char* what)
      : bytes_(bytes), path_(path), what_(what) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(le(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
  std::uint64_t u64() { return le(8); }
  std::string str(std::size_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  void need(std::size_t n) const {
    if (remaining() < n)
      fail(path_, std::string(what_) + " is corrupted (ends in the middle of a field)");
  }
  std::uint64_t le(int n) {
    need(static_cast<std::size_t>(n));
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(bytes_[pos_ + i]) << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return v;
  }
  std::span<const std::byte> bytes_;
  const std::string& path_;
  const char* what_;
  std::size_t pos_ = 0;
};

std::uint64_t load_le(const std::byte* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

std::string quoted(std::string_view name) {
  std::string q(1, '\'');  // appended piecewise: "'" + s trips a GCC 12 -Wrestrict false positive
  q.append(name);
  q += '\'';
  return q;
}

// Product of `shape` times `element_bytes`; false on overflow.
bool shape_bytes(std::span<const std::uint64_t> shape, std::uint64_t element_bytes,
                 std::uint64_t& bytes) {
  std::uint64_t n = element_bytes;
  for (std::uint64_t d : shape) {
    if (d != 0 && n > UINT64_MAX / d) return false;
    n *= d;
  }
  bytes = n;
  return true;
}

std::uint64_t chunk_count(std::uint64_t raw_bytes, std::uint32_t chunk_bytes) {
  return raw_bytes == 0 ? 0 : (raw_bytes - 1) / chunk_bytes + 1;
}

// A cheap guess at what a non-model file is, for a more helpful "not a model file" message.
std::string describe_foreign(std::span<const std::byte> head) {
  auto starts_with = [&](std::string_view s) {
    return head.size() >= s.size() && std::memcmp(head.data(), s.data(), s.size()) == 0;
  };
  if (starts_with("\x28\xB5\x2F\xFD")) return "it looks like a zstd-compressed file";
  if (data::starts_with_gds_magic(
          {reinterpret_cast<const std::uint8_t*>(head.data()), head.size()}))
    return "it looks like a glide dataset (.gds)";
  if (starts_with("GLIDE")) return "it looks like a different kind of glide file";
  const bool text = std::all_of(head.begin(), head.end(), [](std::byte b) {
    const auto c = static_cast<unsigned char>(b);
    return (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\r' || c == '\t';
  });
  return text ? "it looks like a text file" : "unrecognized contents";
}

void write_all(std::FILE* f, const void* data, std::size_t n, const std::string& path) {
  if (n && std::fwrite(data, 1, n, f) != n)
    fail(path, std::string("write failed: ") + std::strerror(errno));
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Compresses one chunk into `out` as chunk header + payload; stores it raw when zstd does not
// make it smaller (random weights), so reading such chunks is a plain copy.
void encode_chunk(ZSTD_CCtx* cctx, int level, std::span<const std::byte> chunk,
                  std::vector<std::byte>& out, std::string& error) {
  out.resize(kChunkHeaderBytes + ZSTD_compressBound(chunk.size()));
  std::size_t n =
      ZSTD_compressCCtx(cctx, out.data() + kChunkHeaderBytes, out.size() - kChunkHeaderBytes,
                        chunk.data(), chunk.size(), level);
  if (ZSTD_isError(n)) {
    error = ZSTD_getErrorName(n);
    return;
  }
  std::uint32_t encoding = kEncodingZstd;
  if (n >= chunk.size()) {
    encoding = kEncodingRaw;
    n = chunk.size();
    std::memcpy(out.data() + kChunkHeaderBytes, chunk.data(), n);
  }
  out.resize(kChunkHeaderBytes + n);
  for (int i = 0; i < 4; ++i) {
    out[i] = std::byte(static_cast<std::uint8_t>(n >> (8 * i)));
    out[4 + i] = std::byte(static_cast<std::uint8_t>(encoding >> (8 * i)));
  }
}

}  // namespace

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kBF16:
      return 2;
    case DType::kI8:
      return 1;
    case DType::kU8:
      return 1;
    case DType::kI32:
      return 4;
    case DType::kU32:
      return 4;
    case DType::kU64:
      return 8;
    case DType::kBytes:
      return 1;
    case DType::kJson:
      return 1;
  }
  return 1;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kBF16:
      return "bf16";
    case DType::kI8:
      return "i8";
    case DType::kU8:
      return "u8";
    case DType::kI32:
      return "i32";
    case DType::kU32:
      return "u32";
    case DType::kU64:
      return "u64";
    case DType::kBytes:
      return "bytes";
    case DType::kJson:
      return "json";
  }
  return "unknown";
}

std::string shape_string(std::span<const std::uint64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// ================================ Writer ================================

ModelFileWriter::ModelFileWriter(std::string path, ModelFileWriteOptions options)
    : path_(std::move(path)), options_(std::move(options)) {
  if (options_.chunk_bytes == 0 || options_.chunk_bytes > kMaxChunkBytes)
    fail(path_, "chunk size must be between 1 byte and 64 MiB, got " +
                    std::to_string(options_.chunk_bytes));
  options_.threads = std::clamp(options_.threads, 1, 256);
  options_.zstd_level = std::clamp(options_.zstd_level, ZSTD_minCLevel(), ZSTD_maxCLevel());
}

void ModelFileWriter::check_new_name(const std::string& name) const {
  if (name.empty()) fail(path_, "section names must not be empty");
  if (name.size() > kMaxNameBytes)
    fail(path_, "section name longer than " + std::to_string(kMaxNameBytes) + " bytes");
  for (const Pending& p : sections_)
    if (p.info.name == name) fail(path_, "section " + quoted(name) + " added twice");
}

void ModelFileWriter::add(std::string name, DType dtype, std::vector<std::uint64_t> shape,
                          std::span<const std::byte> data) {
  check_new_name(name);
  if (static_cast<std::uint8_t>(dtype) >= kDTypeCount) fail(path_, "invalid dtype");
  if (shape.size() > kMaxRank)
    fail(path_, "section " + quoted(name) + " has " + std::to_string(shape.size()) +
                    " dims; at most 4 are supported");
  std::uint64_t bytes = 0;
  if (!shape_bytes(shape, dtype_size(dtype), bytes) || bytes != data.size())
    fail(path_, "section " + quoted(name) + ": " + std::to_string(data.size()) +
                    " bytes of data do not match shape " + shape_string(shape) + " of " +
                    dtype_name(dtype));
  Pending p;
  p.info = {std::move(name), dtype, std::move(shape), bytes, 0};
  p.data = data;
  sections_.push_back(std::move(p));
}

void ModelFileWriter::add_bytes(std::string name, std::span<const std::byte> data) {
  std::vector<std::byte> copy(data.begin(), data.end());
  add(std::move(name), DType::kBytes, {copy.size()}, copy);
  // Moving a vector keeps its buffer, so the span taken by add() stays valid.
  sections_.back().owned = std::move(copy);
}

void ModelFileWriter::add_json(std::string name, std::string_view json) {
  const auto bytes = std::as_bytes(std::span(json.data(), json.size()));
  add_bytes(std::move(name), bytes);
  sections_.back().info.dtype = DType::kJson;
}

void ModelFileWriter::commit() {
  // The table of contents has a fixed size given the names, so it is reserved up front and
  // filled in once the compressed sizes are known: it then sits before the payloads, where it
  // survives truncation and lets the reader name the section that was cut off.
  std::uint64_t toc_bytes = 0;
  for (const Pending& p : sections_) toc_bytes += kTocEntryFixedBytes + p.info.name.size();
  const std::uint64_t payload_start = kHeaderBytes + toc_bytes;

  struct Placed {
    std::uint64_t offset = 0, stored = 0, checksum = 0;
  };
  std::vector<Placed> placed(sections_.size());

  write_file_atomic(path_, [&](std::FILE* f) {
    const std::vector<std::byte> zeros(payload_start);
    write_all(f, zeros.data(), zeros.size(), path_);

    const int threads = options_.threads;
    std::vector<std::unique_ptr<ZSTD_CCtx, CCtxDeleter>> cctxs;
    for (int t = 0; t < threads; ++t) {
      cctxs.emplace_back(ZSTD_createCCtx());
      if (!cctxs.back()) fail(path_, "out of memory creating a zstd compressor");
    }
    std::vector<std::vector<std::byte>> encoded(threads);
    std::vector<std::string> errors(threads);

    std::uint64_t offset = payload_start;
    for (std::size_t s = 0; s < sections_.size(); ++s) {
      const Pending& p = sections_[s];
      const std::span<const std::byte> data = p.data;
      placed[s].offset = offset;
      placed[s].checksum = xxh64(data);
      const std::uint64_t chunks = chunk_count(data.size(), options_.chunk_bytes);
      // Chunks are compressed `threads` at a time and written in order: memory stays bounded
      // by about two chunks per thread however large the tensor.
      for (std::uint64_t first = 0; first < chunks; first += threads) {
        const int batch = static_cast<int>(std::min<std::uint64_t>(threads, chunks - first));
        auto work = [&](int t) {
          const std::uint64_t begin = (first + t) * options_.chunk_bytes;
          const std::uint64_t size =
              std::min<std::uint64_t>(options_.chunk_bytes, data.size() - begin);
          try {
            encode_chunk(cctxs[t].get(), options_.zstd_level, data.subspan(begin, size), encoded[t],
                         errors[t]);
          } catch (const std::exception& e) {  // e.g. bad_alloc: must not escape a thread
            errors[t] = e.what();
          }
        };
        std::vector<std::thread> helpers;
        for (int t = 1; t < batch; ++t) helpers.emplace_back(work, t);
        work(0);
        for (auto& h : helpers) h.join();
        for (int t = 0; t < batch; ++t) {
          if (!errors[t].empty())
            fail(path_, "compressing section " + quoted(p.info.name) + ": " + errors[t]);
          write_all(f, encoded[t].data(), encoded[t].size(), path_);
          offset += encoded[t].size();
        }
      }
      placed[s].stored = offset - placed[s].offset;
      if (options_.on_section_written)
        options_.on_section_written(p.info.name, s + 1, sections_.size());
    }
    const std::uint64_t file_bytes = offset;

    ByteSink toc;
    for (std::size_t s = 0; s < sections_.size(); ++s) {
      const TensorInfo& info = sections_[s].info;
      toc.u16(static_cast<std::uint16_t>(info.name.size()));
      toc.raw(info.name.data(), info.name.size());
      toc.u8(static_cast<std::uint8_t>(info.dtype));
      toc.u8(static_cast<std::uint8_t>(info.shape.size()));
      toc.u32(0);  // flags: none defined in version 1
      for (std::size_t d = 0; d < kMaxRank; ++d) toc.u64(d < info.shape.size() ? info.shape[d] : 0);
      toc.u64(placed[s].offset);
      toc.u64(placed[s].stored);
      toc.u64(info.raw_bytes);
      toc.u32(options_.chunk_bytes);
      toc.u64(placed[s].checksum);
    }

    ByteSink header;
    header.raw(kMagic, sizeof kMagic);
    header.u32(kFormatVersion);
    header.u32(kHeaderBytes);
    header.u64(file_bytes);
    header.u64(kHeaderBytes);  // table of contents offset
    header.u64(toc.bytes().size());
    header.u32(static_cast<std::uint32_t>(sections_.size()));
    header.u32(0);  // flags: none defined in version 1
    header.u64(xxh64(toc.bytes()));
    header.u64(xxh64(header.bytes()));

    if (std::fseek(f, 0, SEEK_SET) != 0)
      fail(path_, std::string("seek failed: ") + std::strerror(errno));
    write_all(f, header.bytes().data(), header.bytes().size(), path_);
    write_all(f, toc.bytes().data(), toc.bytes().size(), path_);
  });
}

// ================================ Reader ================================

ModelFileReader::ModelFileReader(const std::string& path) : path_(path) {
  open_file(path);
  try {
    parse();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

ModelFileReader::ModelFileReader(std::span<const std::byte> bytes, std::string display_name)
    : path_(std::move(display_name)), memory_(bytes), file_size_(bytes.size()) {
  parse();
}

ModelFileReader::~ModelFileReader() {
  if (fd_ >= 0) ::close(fd_);
}

void ModelFileReader::open_file(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(path, std::string("cannot open model file: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    fail(path, "not a regular file");
  }
  file_size_ = static_cast<std::uint64_t>(st.st_size);
}

std::span<const std::byte> ModelFileReader::bytes_at(std::uint64_t offset, std::uint64_t size,
                                                     std::vector<std::byte>& scratch) const {
  if (offset > file_size_ || size > file_size_ - offset)
    fail(path_, "truncated: needs bytes up to " + std::to_string(offset + size) +
                    " but the file has " + std::to_string(file_size_));
  if (fd_ < 0) return memory_.subspan(offset, size);
  scratch.resize(size);
  std::uint64_t done = 0;
  while (done < size) {
    const ssize_t n =
        ::pread(fd_, scratch.data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path_, std::string("read failed: ") + std::strerror(errno));
    if (n == 0)
      fail(path_, "unexpected end of file at byte " + std::to_string(offset + done) +
                      " (was it changed while being read?)");
    done += static_cast<std::uint64_t>(n);
  }
  return scratch;
}

void ModelFileReader::parse() {
  if (file_size_ == 0) fail(path_, "empty file (0 bytes): not a glide model file");
  std::vector<std::byte> scratch;
  const auto head = bytes_at(0, std::min<std::uint64_t>(file_size_, kHeaderBytes), scratch);

  const std::size_t magic_bytes = std::min(head.size(), sizeof kMagic);
  if (std::memcmp(head.data(), kMagic, magic_bytes) != 0)
    fail(path_, "not a glide model file (expected magic \"GLIDEMDL\"; " +
                    describe_foreign(head.first(std::min<std::size_t>(head.size(), 16))) + ")");
  if (head.size() < 12)
    fail(path_, "truncated: file is " + std::to_string(file_size_) +
                    " bytes, shorter than the 64-byte header");
  version_ = static_cast<std::uint32_t>(load_le(head.data() + 8, 4));
  if (version_ > kFormatVersion)
    fail(path_, "model file format version " + std::to_string(version_) +
                    " is newer than this glide supports (" + std::to_string(kFormatVersion) + ")");
  if (version_ == 0) fail(path_, "header is corrupted (format version 0)");
  if (head.size() < kHeaderBytes)
    fail(path_, "truncated: file is " + std::to_string(file_size_) +
                    " bytes, shorter than the 64-byte header");

  if (kCheckStructureChecksums &&
      xxh64(head.first(kHeaderChecksumOffset)) != load_le(head.data() + kHeaderChecksumOffset, 8))
    fail(path_, "header is corrupted (checksum mismatch)");
  ByteCursor h(head.subspan(12), path_, "header");
  const std::uint32_t header_bytes = h.u32();
  const std::uint64_t declared_size = h.u64();
  const std::uint64_t toc_offset = h.u64();
  const std::uint64_t toc_bytes = h.u64();
  const std::uint32_t section_count = h.u32();
  const std::uint32_t header_flags = h.u32();
  const std::uint64_t toc_checksum = h.u64();
  if (header_bytes != kHeaderBytes || toc_offset != kHeaderBytes)
    fail(path_,
         "header is corrupted (unexpected header size " + std::to_string(header_bytes) + ")");
  if (header_flags != 0)
    fail(path_, "header has unknown flags " + std::to_string(header_flags) +
                    " (written by a newer glide?)");
  if (toc_bytes > declared_size || kHeaderBytes + toc_bytes > declared_size ||
      section_count > toc_bytes / kTocEntryFixedBytes)
    fail(path_, "header is corrupted (table of contents does not fit the file size it declares)");
  const std::uint64_t toc_end = kHeaderBytes + toc_bytes;
  if (file_size_ < toc_end)
    fail(path_, "truncated: file is " + std::to_string(file_size_) + " bytes but should be " +
                    std::to_string(declared_size) + "; the table of contents is cut off");

  const auto toc = bytes_at(kHeaderBytes, toc_bytes, scratch);
  if (kCheckStructureChecksums && xxh64(toc) != toc_checksum)
    fail(path_, "table of contents is corrupted (checksum mismatch)");

  ByteCursor c(toc, path_, "table of contents");
  std::unordered_set<std::string> names;
  std::uint64_t next_offset = toc_end;  // payloads are contiguous and in table order
  infos_.reserve(section_count);
  layouts_.reserve(section_count);
  for (std::uint32_t s = 0; s < section_count; ++s) {
    TensorInfo info;
    Layout layout;
    const std::uint16_t name_bytes = c.u16();
    info.name = c.str(name_bytes);
    const std::string where = "section " + quoted(info.name);
    if (info.name.empty() || name_bytes > ModelFileWriter::kMaxNameBytes)
      fail(path_,
           "table of contents is corrupted (section " + std::to_string(s) + " has a bad name)");
    if (!names.insert(info.name).second)
      fail(path_, "table of contents is corrupted (" + where + " appears twice)");
    const std::uint8_t dtype = c.u8();
    const std::uint8_t rank = c.u8();
    const std::uint32_t flags = c.u32();
    std::uint64_t dims[kMaxRank];
    for (auto& d : dims) d = c.u64();
    layout.offset = c.u64();
    info.stored_bytes = c.u64();
    info.raw_bytes = c.u64();
    layout.chunk_bytes = c.u32();
    layout.checksum = c.u64();

    if (dtype >= kDTypeCount)
      fail(path_,
           where + " has unknown dtype " + std::to_string(dtype) + " (written by a newer glide?)");
    info.dtype = static_cast<DType>(dtype);
    if (flags != 0)
      fail(path_,
           where + " has unknown flags " + std::to_string(flags) + " (written by a newer glide?)");
    if (rank > kMaxRank) fail(path_, where + " is corrupted (rank " + std::to_string(rank) + ")");
    for (std::size_t d = rank; d < kMaxRank; ++d)
      if (dims[d] != 0) fail(path_, where + " is corrupted (nonzero unused dimension)");
    info.shape.assign(dims, dims + rank);
    std::uint64_t expected_raw = 0;
    if (!shape_bytes(info.shape, dtype_size(info.dtype), expected_raw) ||
        expected_raw != info.raw_bytes)
      fail(path_, where + " is corrupted (size " + std::to_string(info.raw_bytes) +
                      " bytes does not match shape " + shape_string(info.shape) + " of " +
                      dtype_name(info.dtype) + ")");
    if ((info.dtype == DType::kBytes || info.dtype == DType::kJson) && rank != 1)
      fail(path_, where + " is corrupted (" + dtype_name(info.dtype) + " sections have one dim)");
    if (layout.offset != next_offset || info.stored_bytes > declared_size - next_offset)
      fail(path_, "table of contents is corrupted (" + where + " lies outside the file)");
    if (info.raw_bytes > 0) {
      if (layout.chunk_bytes == 0 || layout.chunk_bytes > kMaxChunkBytes)
        fail(path_,
             where + " is corrupted (chunk size " + std::to_string(layout.chunk_bytes) + ")");
      if (chunk_count(info.raw_bytes, layout.chunk_bytes) > info.stored_bytes / kChunkHeaderBytes ||
          info.raw_bytes / kMaxExpansion > info.stored_bytes)
        fail(path_, where + " is corrupted (" + std::to_string(info.stored_bytes) +
                        " stored bytes cannot hold " + std::to_string(info.raw_bytes) + " bytes)");
    } else if (info.stored_bytes != 0) {
      fail(path_, where + " is corrupted (empty, yet has stored bytes)");
    }
    next_offset += info.stored_bytes;
    infos_.push_back(std::move(info));
    layouts_.push_back(layout);
  }
  if (c.remaining() != 0) fail(path_, "table of contents is corrupted (unexpected trailing bytes)");
  if (next_offset != declared_size)
    fail(path_, "table of contents is corrupted (sections end at byte " +
                    std::to_string(next_offset) + ", header says the file ends at byte " +
                    std::to_string(declared_size) + ")");

  if (file_size_ < declared_size) {
    for (std::size_t s = 0; s < infos_.size(); ++s) {
      const std::uint64_t end = layouts_[s].offset + infos_[s].stored_bytes;
      if (end > file_size_)
        fail(path_, "truncated: file is " + std::to_string(file_size_) + " bytes but should be " +
                        std::to_string(declared_size) + "; section " + quoted(infos_[s].name) +
                        " (bytes " + std::to_string(layouts_[s].offset) + ".." +
                        std::to_string(end) + ") is cut off at byte " + std::to_string(file_size_));
    }
  }
  if (file_size_ != declared_size)
    fail(path_, "file is " + std::to_string(file_size_) + " bytes but its header says " +
                    std::to_string(declared_size) + " (extra bytes appended?)");
}

std::size_t ModelFileReader::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < infos_.size(); ++i)
    if (infos_[i].name == name) return i;
  fail(path_, "no section " + quoted(name));
}

bool ModelFileReader::has(std::string_view name) const {
  return std::any_of(infos_.begin(), infos_.end(),
                     [&](const TensorInfo& i) { return i.name == name; });
}

const TensorInfo& ModelFileReader::info(std::string_view name) const {
  return infos_[index_of(name)];
}

void ModelFileReader::decode(std::size_t index, std::span<std::byte> out) const {
  const TensorInfo& info = infos_[index];
  const Layout& layout = layouts_[index];
  const std::string where = "section " + quoted(info.name);
  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  if (!dctx) fail(path_, "out of memory creating a zstd decompressor");

  std::vector<std::byte> scratch;
  const std::uint64_t end = layout.offset + info.stored_bytes;
  std::uint64_t pos = layout.offset;
  std::uint64_t done = 0;
  for (std::uint64_t k = 0; done < info.raw_bytes; ++k) {
    const std::string chunk_where =
        where + " is corrupted (chunk " + std::to_string(k) + " at byte " + std::to_string(pos);
    if (end - pos < kChunkHeaderBytes) fail(path_, chunk_where + " overruns the section)");
    const auto header = bytes_at(pos, kChunkHeaderBytes, scratch);
    const std::uint64_t stored = load_le(header.data(), 4);
    const auto encoding = static_cast<std::uint32_t>(load_le(header.data() + 4, 4));
    pos += kChunkHeaderBytes;
    if (stored > end - pos) fail(path_, chunk_where + " overruns the section)");
    const std::uint64_t want = std::min<std::uint64_t>(layout.chunk_bytes, info.raw_bytes - done);
    const auto src = bytes_at(pos, stored, scratch);
    std::byte* dst = out.data() + done;
    if (encoding == kEncodingRaw) {
      if (stored != want) fail(path_, chunk_where + " has the wrong size)");
      std::memcpy(dst, src.data(), want);
    } else if (encoding == kEncodingZstd) {
      const std::size_t n = ZSTD_decompressDCtx(dctx.get(), dst, want, src.data(), src.size());
      if (ZSTD_isError(n)) fail(path_, chunk_where + ": zstd: " + ZSTD_getErrorName(n) + ")");
      if (n != want) fail(path_, chunk_where + " decompresses to the wrong size)");
    } else {
      fail(path_, chunk_where + " has unknown encoding " + std::to_string(encoding) + ")");
    }
    pos += stored;
    done += want;
  }
  if (pos != end) fail(path_, where + " is corrupted (unexpected bytes after its last chunk)");
  if (xxh64(out) != layout.checksum)
    fail(path_, "checksum mismatch in " + where + ": the file is corrupted");
}

void ModelFileReader::read_into(std::string_view name, DType expected_dtype,
                                std::span<const std::uint64_t> expected_shape,
                                std::span<std::byte> out) const {
  const std::size_t index = index_of(name);
  const TensorInfo& info = infos_[index];
  if (info.dtype != expected_dtype)
    fail(path_, "section " + quoted(name) + " has dtype " + dtype_name(info.dtype) + ", expected " +
                    dtype_name(expected_dtype));
  if (!std::equal(info.shape.begin(), info.shape.end(), expected_shape.begin(),
                  expected_shape.end()))
    fail(path_, "section " + quoted(name) + " has shape " + shape_string(info.shape) +
                    ", expected " + shape_string(expected_shape));
  if (out.size() != info.raw_bytes)
    fail(path_, "section " + quoted(name) + " needs a buffer of " + std::to_string(info.raw_bytes) +
                    " bytes, got " + std::to_string(out.size()));
  decode(index, out);
}

std::vector<std::byte> ModelFileReader::read_bytes(std::string_view name) const {
  const std::size_t index = index_of(name);
  std::vector<std::byte> out(infos_[index].raw_bytes);
  decode(index, out);
  return out;
}

std::string ModelFileReader::read_json(std::string_view name) const {
  const std::size_t index = index_of(name);
  const TensorInfo& info = infos_[index];
  if (info.dtype != DType::kJson)
    fail(path_,
         "section " + quoted(name) + " has dtype " + dtype_name(info.dtype) + ", expected json");
  std::vector<std::byte> bytes(info.raw_bytes);
  decode(index, bytes);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace glide::engine
