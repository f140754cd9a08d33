// The .glide model file: named, typed, zstd-compressed, checksummed sections (weights, optimizer
// state, config JSON, caches) in one file that is written atomically. The byte layout is
// documented in docs/model-format.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace glide::engine {

// Element type of a section. The numeric values are stored in files: never renumber.
enum class DType : std::uint8_t {
  kF32 = 0,
  kBF16 = 1,
  kI8 = 2,
  kU8 = 3,
  kI32 = 4,
  kU32 = 5,
  kU64 = 6,
  kBytes = 7,  // opaque bytes, shape [n]
  kJson = 8,   // UTF-8 JSON text, shape [n]
};

// Bytes per element (1 for kBytes and kJson).
std::size_t dtype_size(DType dtype);
// "f32", "bf16", ..., "bytes", "json".
const char* dtype_name(DType dtype);

// A section as listed in the table of contents.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kBytes;
  std::vector<std::uint64_t> shape;  // 0 to 4 dims; rank 0 is a scalar
  std::uint64_t raw_bytes = 0;       // uncompressed payload size
  std::uint64_t stored_bytes = 0;    // size in the file (compressed chunks and their headers)
};

// "[670000, 128]"
std::string shape_string(std::span<const std::uint64_t> shape);

struct ModelFileWriteOptions {
  int zstd_level = 3;  // 1 (fast) .. 19; negative levels are zstd's fastest modes
  // Chunks compressed at once (0: as many as the caller's oneTBB arena runs); memory use is about
  // 2 chunks per thread.
  int threads = 0;
  // Sections are compressed in independent chunks of this many uncompressed bytes, so neither
  // writer nor reader ever holds a second full copy of a large tensor.
  std::uint32_t chunk_bytes = 4u << 20;
  // Each section of 2-, 4- or 8-byte elements is also tried as byte planes (and, for integers,
  // as deltas) on a sample, and written so when that compresses better (docs/model-format.md,
  // encodings 2 and 3; such a file is format version 2). Off: version 1, plain zstd.
  bool byte_planes = true;
  // Called after each section is written (name, sections done, sections total); may throw to
  // abandon the write, which leaves any previous file at the path untouched.
  std::function<void(const std::string&, std::size_t, std::size_t)> on_section_written;
};

// Collects sections and writes them in one atomic commit(): a crash or error leaves either the
// previous file or the complete new one.
class ModelFileWriter {
 public:
  explicit ModelFileWriter(std::string path, ModelFileWriteOptions options = {});

  // Adds a section. `data` is NOT copied: it must stay alive and unchanged until commit().
  // Its size must be the product of `shape` times dtype_size(dtype). Names must be unique,
  // non-empty and at most kMaxNameBytes bytes.
  void add(std::string name, DType dtype, std::vector<std::uint64_t> shape,
           std::span<const std::byte> data);
  // Adds a kBytes / kJson section; these copy their argument (they are small by nature).
  void add_bytes(std::string name, std::span<const std::byte> data);
  void add_json(std::string name, std::string_view json);

  // Writes the file (temporary file, fsync, rename). Throws glide::Error naming the path.
  void commit();

  static constexpr std::size_t kMaxNameBytes = 1024;

 private:
  struct Pending {
    TensorInfo info;
    std::span<const std::byte> data;
    std::vector<std::byte> owned;  // backing store for add_bytes / add_json
  };
  void check_new_name(const std::string& name) const;

  std::string path_;
  ModelFileWriteOptions options_;
  std::vector<Pending> sections_;
};

// Reads a model file. The constructor validates magic, version, header and table of contents
// (checksums, bounds, truncation); section payloads are read and verified on demand. Const
// methods are safe to call from several threads at once.
class ModelFileReader {
 public:
  explicit ModelFileReader(const std::string& path);
  // Reads from memory (e.g. a fuzzer's input); `bytes` must outlive the reader. `display_name`
  // stands in for the path in error messages.
  ModelFileReader(std::span<const std::byte> bytes, std::string display_name);
  ~ModelFileReader();
  ModelFileReader(const ModelFileReader&) = delete;
  ModelFileReader& operator=(const ModelFileReader&) = delete;

  const std::string& path() const { return path_; }
  std::uint32_t format_version() const { return version_; }
  const std::vector<TensorInfo>& sections() const { return infos_; }
  bool has(std::string_view name) const;
  // Throws "FILE: no section 'x'".
  const TensorInfo& info(std::string_view name) const;

  // From now on read_into refuses f32 and bf16 sections holding a NaN or an infinity (a model's
  // parameters: a file saved from a diverged run must not load and serve garbage). The format
  // itself allows any bits.
  void require_finite_floats() { require_finite_ = true; }

  // Decompresses section `name` into `out` after checking that it has dtype `expected_dtype` and
  // shape `expected_shape` and that `out` has exactly its size; verifies the checksum (and the
  // values, after require_finite_floats()).
  void read_into(std::string_view name, DType expected_dtype,
                 std::span<const std::uint64_t> expected_shape, std::span<std::byte> out) const;
  // Any section's payload as bytes, whatever its dtype.
  std::vector<std::byte> read_bytes(std::string_view name) const;
  // A kJson section's text.
  std::string read_json(std::string_view name) const;

 private:
  struct Layout {
    std::uint64_t offset = 0;  // of the first chunk header
    std::uint32_t chunk_bytes = 0;
    std::uint64_t checksum = 0;
  };
  void open_file(const std::string& path);
  void parse();
  std::size_t index_of(std::string_view name) const;
  // Bytes [offset, offset + size) of the file: a view of the memory buffer, or read into `scratch`.
  std::span<const std::byte> bytes_at(std::uint64_t offset, std::uint64_t size,
                                      std::vector<std::byte>& scratch) const;
  void decode(std::size_t index, std::span<std::byte> out) const;

  std::string path_;
  int fd_ = -1;
  std::span<const std::byte> memory_;
  std::uint64_t file_size_ = 0;
  std::uint32_t version_ = 0;
  bool require_finite_ = false;
  std::vector<TensorInfo> infos_;
  std::vector<Layout> layouts_;
};

}  // namespace glide::engine
