#include "engine/model_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <unordered_set>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "common/error.h"
#include "common/file_util.h"
#include "data/gds_format.h"
#include "engine/byte_planes.h"
#include "engine/checksum.h"
#include "engine/model_file_format.h"

namespace glide::engine {

using namespace model_format;

namespace {

// The index of the first element of `data` (IEEE floats of `Bits`) whose exponent bits are all
// set, a NaN or an infinity, or the element count when there is none. The common case (none) is
// one branch-free pass the compiler vectorizes; only a bad section is searched a second time.
template <class Bits, Bits kExponent>
std::size_t first_non_finite(std::span<const std::byte> data) {
  const std::size_t n = data.size() / sizeof(Bits);
  const auto bits = [&](std::size_t i) {
    Bits v;
    std::memcpy(&v, data.data() + i * sizeof(Bits), sizeof(Bits));
    return v;
  };
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += (bits(i) & kExponent) == kExponent;
  if (bad == 0) return n;
  std::size_t i = 0;
  while ((bits(i) & kExponent) != kExponent) ++i;
  return i;
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

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

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
    const std::string where = "section " + quoted_name(info.name);
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
                        std::to_string(declared_size) + "; section " + quoted_name(infos_[s].name) +
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
  fail(path_, "no section " + quoted_name(name));
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
  const std::string where = "section " + quoted_name(info.name);
  const auto chunk_where = [&](std::uint64_t k, std::uint64_t pos) {
    return where + " is corrupted (chunk " + std::to_string(k) + " at byte " + std::to_string(pos);
  };

  // The chunks are decoded in parallel, a window at a time: first the window's headers (8 bytes
  // each), then its chunks. The window bounds the memory however small the chunks are.
  struct Chunk {
    std::uint64_t pos = 0, stored = 0, done = 0, want = 0;
    std::uint32_t encoding = 0;
  };
  struct Local {
    std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx;
    std::vector<std::byte> scratch, planes;
  };
  // Version 2's encodings, which only sections of some dtypes may have.
  const std::size_t width = plane_width(info.dtype);
  const bool planes_fit = version_ >= 2 && width > 0;
  const bool deltas_fit = planes_fit && deltas_allowed(info.dtype);
  constexpr std::size_t kWindow = 256;
  std::vector<Chunk> chunks;
  std::vector<std::exception_ptr> errors;
  tbb::enumerable_thread_specific<Local> locals;
  std::vector<std::byte> scratch;
  const std::uint64_t end = layout.offset + info.stored_bytes;
  std::uint64_t pos = layout.offset, done = 0, first = 0;
  while (done < info.raw_bytes) {
    chunks.clear();
    while (done < info.raw_bytes && chunks.size() < kWindow) {
      const std::uint64_t k = first + chunks.size();
      if (end - pos < kChunkHeaderBytes)
        fail(path_, chunk_where(k, pos) + " overruns the section)");
      const auto header = bytes_at(pos, kChunkHeaderBytes, scratch);
      Chunk c;
      c.pos = pos;
      c.stored = load_le(header.data(), 4);
      c.encoding = static_cast<std::uint32_t>(load_le(header.data() + 4, 4));
      c.done = done;
      c.want = std::min<std::uint64_t>(layout.chunk_bytes, info.raw_bytes - done);
      pos += kChunkHeaderBytes;
      if (c.stored > end - pos) fail(path_, chunk_where(k, c.pos) + " overruns the section)");
      pos += c.stored;
      done += c.want;
      chunks.push_back(c);
    }
    // A chunk's error is kept and the first one thrown after the loop, as a serial read would.
    errors.assign(chunks.size(), nullptr);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, chunks.size(), 1), [&](const auto& r) {
      Local& t = locals.local();
      for (std::size_t j = r.begin(); j < r.end(); ++j) {
        const Chunk& c = chunks[j];
        const std::uint64_t k = first + j;
        std::byte* dst = out.data() + c.done;
        try {
          const auto src = bytes_at(c.pos + kChunkHeaderBytes, c.stored, t.scratch);
          if (c.encoding == kEncodingRaw) {
            if (c.stored != c.want) fail(path_, chunk_where(k, c.pos) + " has the wrong size)");
            std::memcpy(dst, src.data(), c.want);
          } else if (c.encoding == kEncodingZstd || (c.encoding == kEncodingPlanes && planes_fit) ||
                     (c.encoding == kEncodingDeltaPlanes && deltas_fit)) {
            if (!t.dctx) t.dctx.reset(ZSTD_createDCtx());
            if (!t.dctx) fail(path_, "out of memory creating a zstd decompressor");
            const bool planes = c.encoding != kEncodingZstd;
            if (planes) t.planes.resize(c.want);
            std::byte* into = planes ? t.planes.data() : dst;
            const std::size_t n =
                ZSTD_decompressDCtx(t.dctx.get(), into, c.want, src.data(), src.size());
            if (ZSTD_isError(n))
              fail(path_, chunk_where(k, c.pos) + ": zstd: " + ZSTD_getErrorName(n) + ")");
            if (n != c.want)
              fail(path_, chunk_where(k, c.pos) + " decompresses to the wrong size)");
            if (planes) {
              const std::span<std::byte> whole(dst, c.want);
              join_byte_planes(t.planes, width, whole);
              if (c.encoding == kEncodingDeltaPlanes) delta_decode(whole, width);
            }
          } else if (c.encoding <= kEncodingDeltaPlanes) {
            fail(path_, chunk_where(k, c.pos) + " has encoding " + std::to_string(c.encoding) +
                            ", which a " + dtype_name(info.dtype) + " section of a version " +
                            std::to_string(version_) + " file cannot have)");
          } else {
            fail(path_, chunk_where(k, c.pos) + " has unknown encoding " +
                            std::to_string(c.encoding) + ")");
          }
        } catch (...) {  // an exception must not cross the parallel loop
          errors[j] = std::current_exception();
        }
      }
    });
    for (const std::exception_ptr& e : errors)
      if (e) std::rethrow_exception(e);
    first += chunks.size();
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
    fail(path_, "section " + quoted_name(name) + " has dtype " + dtype_name(info.dtype) +
                    ", expected " + dtype_name(expected_dtype));
  if (!std::equal(info.shape.begin(), info.shape.end(), expected_shape.begin(),
                  expected_shape.end()))
    fail(path_, "section " + quoted_name(name) + " has shape " + shape_string(info.shape) +
                    ", expected " + shape_string(expected_shape));
  if (out.size() != info.raw_bytes)
    fail(path_, "section " + quoted_name(name) + " needs a buffer of " +
                    std::to_string(info.raw_bytes) + " bytes, got " + std::to_string(out.size()));
  decode(index, out);
  if (!require_finite_) return;
  std::size_t n = 0, bad = 0;
  if (info.dtype == DType::kF32) {
    n = out.size() / 4;
    bad = first_non_finite<std::uint32_t, 0x7F800000u>(out);
  } else if (info.dtype == DType::kBF16) {
    n = out.size() / 2;
    bad = first_non_finite<std::uint16_t, std::uint16_t{0x7F80}>(out);
  }
  if (bad < n)
    fail(path_, "section " + quoted_name(name) + " holds a non-finite value (NaN or infinity) at " +
                    "element " + std::to_string(bad) + " of " + std::to_string(n) +
                    ": the model is broken (did its training diverge?)");
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
    fail(path_, "section " + quoted_name(name) + " has dtype " + dtype_name(info.dtype) +
                    ", expected json");
  std::vector<std::byte> bytes(info.raw_bytes);
  decode(index, bytes);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace glide::engine
