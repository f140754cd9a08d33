#include "engine/model_file.h"

#include <doctest/doctest.h>
#include <tbb/task_arena.h>
#include <unistd.h>
#include "tests/error_of.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "common/error.h"
#include "common/file_util.h"
#include "common/rng.h"
#include "data/dataset.h"
#include "data/gds_format.h"
#include "engine/byte_planes.h"
#include "engine/checkpoint.h"
#include "engine/checksum.h"
#include "engine/output_weights.h"

using namespace glide;
using namespace glide::engine;
namespace fs = std::filesystem;

namespace {

// A scratch directory for this test process, removed when the tests end.
struct TestDir {
  fs::path path =
      fs::temp_directory_path() / ("glide_model_file_test_" + std::to_string(::getpid()));
  TestDir() { fs::create_directories(path); }
  ~TestDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

fs::path test_dir() {
  static const TestDir dir;
  return dir.path;
}

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = std::byte(static_cast<std::uint8_t>(rng.next()));
  return v;
}

std::vector<std::byte> file_bytes(const std::string& path) {
  const auto raw = read_file_bytes(path);
  std::vector<std::byte> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

void put_file(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

using glide::testing::error_of;

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

std::uint64_t get_u64(std::span<const std::byte> b, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(b[at + i]) << (8 * i);
  return v;
}
void put_u64(std::span<std::byte> b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = std::byte(static_cast<std::uint8_t>(v >> (8 * i)));
}

// Recomputes the table of contents and header checksums after a test edits the file on purpose,
// so the reader's deeper validation (not just the checksums) is exercised.
void reseal(std::span<std::byte> file) {
  const std::uint64_t toc_bytes = get_u64(file, 32);
  if (toc_bytes <= file.size() - 64) put_u64(file, 48, xxh64(file.subspan(64, toc_bytes)));
  put_u64(file, 56, xxh64(file.first(56)));
}

// Offset of the first field after section `index`'s name in the table of contents.
std::size_t toc_entry_fields(std::span<const std::byte> file, std::size_t index) {
  std::size_t at = 64;
  for (std::size_t i = 0;; ++i) {
    const std::size_t name_bytes =
        static_cast<std::size_t>(file[at]) | static_cast<std::size_t>(file[at + 1]) << 8;
    if (i == index) return at + 2 + name_bytes;
    at += 2 + name_bytes + 74;
  }
}

// A set of sections covering every dtype, an empty one, a scalar, compressible and random data.
struct Sample {
  struct Section {
    DType dtype;
    std::vector<std::uint64_t> shape;
    std::vector<std::byte> data;
  };
  std::map<std::string, Section> sections;
  std::string json = R"({"layers": [128, 670000], "lr": 0.001})";

  explicit Sample(std::size_t big_floats) {
    auto add = [&](std::string name, DType dtype, std::vector<std::uint64_t> shape,
                   std::uint64_t seed) {
      std::uint64_t n = dtype_size(dtype);
      for (auto d : shape) n *= d;
      sections[name] = {dtype, shape, random_bytes(n, seed)};
    };
    add("layer0.weights", DType::kF32, {3, 4}, 1);
    add("layer0.bf16", DType::kBF16, {5}, 2);
    add("codes", DType::kI8, {2, 2, 2}, 3);
    add("bytes.u8", DType::kU8, {7}, 4);
    add("ids", DType::kI32, {1, 1, 1, 3}, 5);
    add("step", DType::kU32, {}, 6);
    add("counts", DType::kU64, {4}, 7);
    add("blob", DType::kBytes, {9}, 8);
    add("empty", DType::kF32, {0, 128}, 9);
    add("layer1.adam_m", DType::kF32, {big_floats}, 10);
    // Compressible: small integers as floats, so zstd chunks are exercised too.
    auto& m = sections["layer1.adam_m"].data;
    for (std::size_t i = 0; i < m.size() / 4; i += 2) {
      const float f = static_cast<float>(i % 7);
      std::memcpy(m.data() + 4 * i, &f, 4);
    }
  }

  void write(const std::string& path, ModelFileWriteOptions options = {}) const {
    ModelFileWriter w(path, options);
    for (const auto& [name, s] : sections) {
      if (s.dtype == DType::kBytes)
        w.add_bytes(name, s.data);
      else
        w.add(name, s.dtype, s.shape, s.data);
    }
    w.add_json("config", json);
    w.commit();
  }

  void check(const ModelFileReader& r) const {
    CHECK(r.sections().size() == sections.size() + 1);
    for (const auto& [name, s] : sections) {
      CAPTURE(name);
      REQUIRE(r.has(name));
      const TensorInfo& info = r.info(name);
      CHECK(info.dtype == s.dtype);
      CHECK(info.shape == s.shape);
      CHECK(info.raw_bytes == s.data.size());
      std::vector<std::byte> out(s.data.size());
      r.read_into(name, s.dtype, s.shape, out);
      CHECK(out == s.data);
      CHECK(r.read_bytes(name) == s.data);
    }
    CHECK(r.read_json("config") == json);
    CHECK(r.info("config").dtype == DType::kJson);
  }
};

ModelFileWriteOptions small_chunks() {
  ModelFileWriteOptions o;
  o.chunk_bytes = 64;
  return o;
}

}  // namespace

TEST_CASE("round trip of every dtype, an empty section and a multi-MB section") {
  const std::string path = (test_dir() / "round_trip.glide").string();
  const Sample sample(3'000'000 / 4 * 4);  // 12 MB: several 4 MiB chunks
  ModelFileWriteOptions options;
  options.threads = 2;
  sample.write(path, options);

  ModelFileReader reader(path);
  // Random bytes beside small integers: no section compresses better as byte planes.
  CHECK(reader.format_version() == 1);
  sample.check(reader);
  // Sections are listed in the order they were added (std::map order here), config last.
  CHECK(reader.sections().back().name == "config");
  // The compressible half compresses: stored size well below raw size.
  CHECK(reader.info("layer1.adam_m").stored_bytes < reader.info("layer1.adam_m").raw_bytes);

  // The same bytes read from memory give the same result.
  const auto bytes = file_bytes(path);
  ModelFileReader from_memory(bytes, "memory");
  sample.check(from_memory);

  // The file does not depend on how many chunks are compressed at once (0: the arena's threads).
  for (const int threads : {1, 3, 0}) {
    CAPTURE(threads);
    options.threads = threads;
    sample.write(path, options);
    CHECK(file_bytes(path) == bytes);
  }

  // Small chunks (more than the reader decodes at once) produce a readable file too, read on one
  // thread and on several.
  sample.write(path, small_chunks());
  sample.check(ModelFileReader(path));
  tbb::task_arena(1).execute([&] { sample.check(ModelFileReader(path)); });
}

TEST_CASE("byte planes and deltas are exact inverses, whatever the alignment") {
  // Two 4-byte elements and a tail byte: byte k of each element together, the tail kept.
  const std::vector<std::byte> in = {std::byte{0xa0}, std::byte{0xa1}, std::byte{0xa2},
                                     std::byte{0xa3}, std::byte{0xb0}, std::byte{0xb1},
                                     std::byte{0xb2}, std::byte{0xb3}, std::byte{0x77}};
  std::vector<std::byte> planes(in.size()), back(in.size());
  split_byte_planes(in, 4, planes);
  CHECK(planes == std::vector<std::byte>{std::byte{0xa0}, std::byte{0xb0}, std::byte{0xa1},
                                         std::byte{0xb1}, std::byte{0xa2}, std::byte{0xb2},
                                         std::byte{0xa3}, std::byte{0xb3}, std::byte{0x77}});
  // Deltas modulo 2^32: 5, 7, 7, 3 -> 5, 2, 0, 2^32 - 4.
  std::vector<std::uint32_t> ids = {5, 7, 7, 3};
  const auto id_bytes = std::as_writable_bytes(std::span(ids));
  delta_encode(id_bytes, 4);
  CHECK(ids == std::vector<std::uint32_t>{5, 2, 0, 0xFFFFFFFCu});
  delta_decode(id_bytes, 4);
  CHECK(ids == std::vector<std::uint32_t>{5, 7, 7, 3});
  for (const std::size_t width : {1, 2, 3, 4, 8})
    for (std::size_t n = 0; n < 40; ++n) {
      CAPTURE(width);
      CAPTURE(n);
      const auto bytes = random_bytes(n, 100 + n);
      std::vector<std::byte> split(n), joined(n);
      split_byte_planes(bytes, width, split);
      join_byte_planes(split, width, joined);
      CHECK(joined == bytes);
      if (width == 2 || width == 4 || width == 8) {
        std::vector<std::byte> d = bytes;
        delta_encode(d, width);
        delta_decode(d, width);
        CHECK(d == bytes);
      }
    }
}

TEST_CASE("ascending ids and float weights are stored as deltas and byte planes, smaller") {
  // A wide layer's shape: 300 features' ascending label ids, their weights, and offsets.
  Rng rng(7);
  std::vector<std::uint32_t> labels;
  std::vector<std::uint64_t> offsets = {0};
  for (int f = 0; f < 300; ++f) {
    std::uint32_t id = 0;
    for (int k = 0; k < 1000; ++k) {
      id += 1 + static_cast<std::uint32_t>(rng.next() % 2000);
      labels.push_back(id);
    }
    offsets.push_back(labels.size());
  }
  std::vector<float> weights(labels.size());
  for (float& w : weights) {  // roughly normal, as trained weights are
    double sum = 0;
    for (int k = 0; k < 4; ++k) sum += static_cast<double>(rng.next() % 100000) / 100000.0;
    w = static_cast<float>((sum - 2) * 0.05);
  }
  const auto write = [&](const std::string& path, ModelFileWriteOptions o) {
    ModelFileWriter w(path, o);
    w.add("wide.labels", DType::kU32, {labels.size()}, std::as_bytes(std::span(labels)));
    w.add("wide.weight", DType::kF32, {weights.size()}, std::as_bytes(std::span(weights)));
    w.add("wide.offsets", DType::kU64, {offsets.size()}, std::as_bytes(std::span(offsets)));
    w.commit();
  };
  const auto check = [&](const ModelFileReader& r) {
    std::vector<std::uint32_t> l(labels.size());
    std::vector<float> w(weights.size());
    std::vector<std::uint64_t> o(offsets.size());
    r.read_into("wide.labels", DType::kU32, {{labels.size()}},
                std::as_writable_bytes(std::span(l)));
    r.read_into("wide.weight", DType::kF32, {{weights.size()}},
                std::as_writable_bytes(std::span(w)));
    r.read_into("wide.offsets", DType::kU64, {{offsets.size()}},
                std::as_writable_bytes(std::span(o)));
    CHECK(l == labels);
    CHECK(std::memcmp(w.data(), weights.data(), w.size() * 4) == 0);
    CHECK(o == offsets);
  };
  const std::string path = (test_dir() / "planes.glide").string(),
                    plain_path = (test_dir() / "plain.glide").string();
  ModelFileWriteOptions plain;
  plain.byte_planes = false;
  write(plain_path, plain);
  write(path, {});
  const ModelFileReader r(path), p(plain_path);
  CHECK(p.format_version() == 1);
  CHECK(r.format_version() == 2);
  check(r);
  check(p);
  MESSAGE("labels stored " << r.info("wide.labels").stored_bytes << " bytes against "
                           << p.info("wide.labels").stored_bytes << " plain; weights "
                           << r.info("wide.weight").stored_bytes << " against "
                           << p.info("wide.weight").stored_bytes);
  CHECK(r.info("wide.labels").stored_bytes * 10 < p.info("wide.labels").stored_bytes * 8);
  CHECK(r.info("wide.weight").stored_bytes < p.info("wide.weight").stored_bytes);

  // Each section's first chunk names its encoding: deltas for the ids, planes for the floats.
  const auto bytes = file_bytes(path);
  std::map<std::string, std::uint64_t> offset_of;
  std::uint64_t at = 64 + get_u64(bytes, 32);
  for (const auto& s : r.sections()) {
    offset_of[s.name] = at;
    at += s.stored_bytes;
  }
  const auto encoding_at = [&](std::uint64_t pos) { return static_cast<int>(bytes[pos + 4]); };
  CHECK(encoding_at(offset_of["wide.labels"]) == 3);
  CHECK(encoding_at(offset_of["wide.weight"]) == 2);

  // Chunks that cut elements apart (6 bytes) and many small ones read back exactly, and the file
  // does not depend on the thread count.
  for (const std::uint32_t chunk : {6u, 64u, 4u << 20}) {
    CAPTURE(chunk);
    ModelFileWriteOptions o;
    o.chunk_bytes = chunk;
    o.threads = 1;
    write(path, o);
    check(ModelFileReader(path));
    const auto one = file_bytes(path);
    o.threads = 2;
    write(path, o);
    CHECK(file_bytes(path) == one);
  }

  // An encoding the section's dtype or the file's version cannot have is named.
  auto damaged = bytes;
  damaged[offset_of["wide.weight"] + 4] = std::byte{3};
  CHECK(contains(error_of([&] { ModelFileReader(damaged, "d.glide").read_bytes("wide.weight"); }),
                 "has encoding 3, which a f32 section of a version 2 file cannot have"));
  damaged = bytes;
  damaged[8] = std::byte{1};
  reseal(damaged);
  CHECK(contains(error_of([&] { ModelFileReader(damaged, "d.glide").read_bytes("wide.weight"); }),
                 "has encoding 2, which a f32 section of a version 1 file cannot have"));
}

TEST_CASE("truncation at every offset is a named error") {
  const std::string path = (test_dir() / "truncate.glide").string();
  const Sample sample(200);
  sample.write(path, small_chunks());
  const auto bytes = file_bytes(path);
  REQUIRE(bytes.size() > 1000);

  CHECK(contains(error_of([&] { ModelFileReader(std::span(bytes).first(0), "x.glide"); }),
                 "x.glide: empty file"));
  for (std::size_t n = 1; n < bytes.size(); ++n) {
    CAPTURE(n);
    const std::string e = error_of([&] { ModelFileReader(std::span(bytes).first(n), "x.glide"); });
    CHECK(contains(e, "x.glide: truncated"));
  }
  // Cut inside the big section's payload, on disk: the message names the section and the byte.
  ModelFileReader intact(path);
  const auto& big = intact.info("layer1.adam_m");
  // Payloads follow the table of contents in table order.
  std::uint64_t big_offset = 64 + get_u64(bytes, 32);
  for (const auto& s : intact.sections()) {
    if (s.name == big.name) break;
    big_offset += s.stored_bytes;
  }
  const std::uint64_t cut = big_offset + big.stored_bytes / 2;
  fs::resize_file(path, cut);
  const std::string e = error_of([&] { ModelFileReader r(path); });
  CHECK(contains(e, path + ": truncated"));
  CHECK(contains(e, "section 'layer1.adam_m'"));
  CHECK(contains(e, "cut off at byte " + std::to_string(cut)));
}

TEST_CASE("a flipped byte in any section payload is caught and names that section") {
  const Sample sample(100);
  const std::string path = (test_dir() / "flip.glide").string();
  sample.write(path, small_chunks());
  const auto bytes = file_bytes(path);
  const ModelFileReader intact(bytes, "flip.glide");

  std::uint64_t offset = 64 + get_u64(bytes, 32);
  int checksum_errors = 0;
  for (const TensorInfo& s : intact.sections()) {
    CAPTURE(s.name);
    for (std::uint64_t at = offset; at < offset + s.stored_bytes; ++at) {
      CAPTURE(at);
      auto damaged = bytes;
      damaged[at] ^= std::byte{0x5A};
      const ModelFileReader reader(damaged, "flip.glide");  // the TOC is intact: opens fine
      const std::string e = error_of([&] { (void)reader.read_bytes(s.name); });
      CHECK(contains(e, "flip.glide: "));
      CHECK(contains(e, "section '" + s.name + "'"));
      checksum_errors += contains(e, "checksum mismatch in section '" + s.name + "'");
      // Other sections are unaffected.
      for (const TensorInfo& other : intact.sections())
        if (other.name != s.name)
          CHECK(reader.read_bytes(other.name) == intact.read_bytes(other.name));
    }
    offset += s.stored_bytes;
  }
  CHECK(checksum_errors > 100);
}

TEST_CASE("a flipped byte in the header or table of contents is caught") {
  const Sample sample(16);
  const std::string path = (test_dir() / "flip_toc.glide").string();
  sample.write(path);
  const auto bytes = file_bytes(path);
  const std::uint64_t toc_end = 64 + get_u64(bytes, 32);
  for (std::uint64_t at = 0; at < toc_end; ++at) {
    CAPTURE(at);
    auto damaged = bytes;
    damaged[at] ^= std::byte{0x01};
    const std::string e = error_of([&] { ModelFileReader(damaged, "m.glide"); });
    if (at < 8)
      CHECK(contains(e, "not a glide model file"));
    else if (at < 12)
      CHECK((contains(e, "version") || contains(e, "header is corrupted")));
    else if (at < 64)
      CHECK(contains(e, "m.glide: header is corrupted (checksum mismatch)"));
    else
      CHECK(contains(e, "m.glide: table of contents is corrupted (checksum mismatch)"));
  }
}

TEST_CASE("foreign, empty, missing and newer files are rejected with what they are") {
  const fs::path dir = test_dir();
  const std::string missing = (dir / "missing.glide").string();
  CHECK(contains(error_of([&] { ModelFileReader r(missing); }),
                 missing + ": cannot open model file: No such file or directory"));

  const std::string empty = (dir / "empty.glide").string();
  put_file(empty, {});
  CHECK(contains(error_of([&] { ModelFileReader r(empty); }), empty + ": empty file"));

  auto as_bytes = [](std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); };
  CHECK(contains(
      error_of([&] { ModelFileReader(as_bytes("hello,world\n1,2,3\n"), "t.glide"); }),
      "t.glide: not a glide model file (expected magic \"GLIDEMDL\"; it looks like a text file)"));
  CHECK(contains(
      error_of([&] { ModelFileReader(as_bytes("\x28\xB5\x2F\xFD\x00\x00\x00\x00\x00"), "z"); }),
      "zstd-compressed"));
  // A real .gds file, as the data library writes it, given where a model belongs.
  const std::string gds = (dir / "points.gds").string();
  data::Dataset points;
  points.num_features = 4;
  points.num_labels = 3;
  const std::uint32_t ids0[] = {0, 2}, ids1[] = {3}, labels0[] = {1}, labels1[] = {0, 2};
  const float values0[] = {1.0f, 0.5f}, values1[] = {2.0f};
  points.add_point(ids0, values0, labels0);
  points.add_point(ids1, values1, labels1);
  data::write_gds(gds, points);
  const std::string not_a_model = gds +
                                  ": not a glide model file (expected magic \"GLIDEMDL\"; it "
                                  "looks like a glide dataset (.gds))";
  CHECK(error_of([&] { ModelFileReader r(gds); }) == not_a_model);
  CHECK(error_of([&] { load_model(gds, false); }) == not_a_model);

  const std::string path = (dir / "newer.glide").string();
  Sample(4).write(path);
  auto bytes = file_bytes(path);
  bytes[8] = std::byte{3};  // version 3; the checksum is now wrong too, but version comes first
  CHECK(error_of([&] { ModelFileReader(bytes, "n.glide"); }) ==
        "n.glide: model file format version 3 is newer than this glide supports (2)");
}

TEST_CASE("missing sections, dtype, shape and buffer mismatches are named") {
  const std::string path = (test_dir() / "mismatch.glide").string();
  Sample(4).write(path);
  const ModelFileReader r(path);
  CHECK_FALSE(r.has("nope"));
  CHECK(error_of([&] { (void)r.info("nope"); }) == path + ": no section 'nope'");
  CHECK(error_of([&] { (void)r.read_bytes("nope"); }) == path + ": no section 'nope'");

  std::vector<std::byte> out(48);
  const std::uint64_t right[] = {3, 4}, wrong[] = {4, 3}, flat[] = {12};
  CHECK_NOTHROW(r.read_into("layer0.weights", DType::kF32, right, out));
  CHECK(error_of([&] { r.read_into("layer0.weights", DType::kBF16, right, out); }) ==
        path + ": section 'layer0.weights' has dtype f32, expected bf16");
  CHECK(error_of([&] { r.read_into("layer0.weights", DType::kF32, wrong, out); }) ==
        path + ": section 'layer0.weights' has shape [3, 4], expected [4, 3]");
  CHECK(error_of([&] { r.read_into("layer0.weights", DType::kF32, flat, out); }) ==
        path + ": section 'layer0.weights' has shape [3, 4], expected [12]");
  CHECK(error_of([&] {
          r.read_into("layer0.weights", DType::kF32, right, std::span(out).first(40));
        }) == path + ": section 'layer0.weights' needs a buffer of 48 bytes, got 40");
  CHECK(error_of([&] { (void)r.read_json("layer0.weights"); }) ==
        path + ": section 'layer0.weights' has dtype f32, expected json");
}

TEST_CASE("damaged tables of contents with valid checksums are still rejected") {
  const std::string path = (test_dir() / "toc.glide").string();
  Sample(4).write(path);
  const auto bytes = file_bytes(path);
  const std::size_t fields = toc_entry_fields(bytes, 0);  // dtype u8, rank u8, flags u32, dims...

  auto open_edited = [&](auto edit) {
    auto b = bytes;
    edit(std::span(b));
    reseal(b);
    return error_of([&] { ModelFileReader(b, "e.glide"); });
  };
  CHECK(contains(open_edited([&](std::span<std::byte> b) { b[fields] = std::byte{99}; }),
                 "has unknown dtype 99"));
  CHECK(contains(open_edited([&](std::span<std::byte> b) { b[fields + 1] = std::byte{5}; }),
                 "is corrupted (rank 5)"));
  CHECK(contains(open_edited([&](std::span<std::byte> b) { b[fields + 2] = std::byte{1}; }),
                 "has unknown flags 1"));
  // A huge claimed size must be refused before anything is allocated.
  CHECK(contains(open_edited([&](std::span<std::byte> b) {
                   put_u64(b, fields + 6, std::uint64_t{1} << 40);  // dim 0
                   put_u64(b, fields + 6 + 32 + 16,
                           std::uint64_t{1} << 40);  // raw bytes ('blob' is bytes)
                 }),
                 "cannot hold"));
  CHECK(
      contains(open_edited([&](std::span<std::byte> b) { put_u64(b, fields + 6 + 32 + 8, ~0ull); }),
               "is corrupted"));
  CHECK(contains(open_edited([&](std::span<std::byte> b) { put_u64(b, 40, 1000000); }),
                 "header is corrupted"));
}

TEST_CASE("random damage never crashes: every outcome is data or glide::Error") {
  const std::string path = (test_dir() / "random.glide").string();
  Sample(64).write(path, small_chunks());
  const auto bytes = file_bytes(path);
  Rng rng(99);
  int opened = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    auto b = bytes;
    const int edits = 1 + static_cast<int>(rng.below(4));
    for (int e = 0; e < edits; ++e)
      b[rng.below(static_cast<std::uint32_t>(b.size()))] = std::byte(rng.below(256));
    if (rng.below(2)) reseal(b);  // sometimes get past the checksums to the deeper checks
    try {
      const ModelFileReader r(b, "r.glide");
      ++opened;
      for (const TensorInfo& s : r.sections()) {
        try {
          (void)r.read_bytes(s.name);
        } catch (const Error&) {
        }
      }
    } catch (const Error&) {
    }
  }
  CHECK(opened > 0);
}

TEST_CASE("a commit that fails midway leaves the previous file intact") {
  const fs::path dir = test_dir() / "atomic";
  fs::create_directories(dir);
  const std::string path = (dir / "model.glide").string();
  const Sample first(32);
  first.write(path);
  const auto before = file_bytes(path);

  const Sample second(1000);
  ModelFileWriteOptions options;
  options.on_section_written = [](const std::string&, std::size_t done, std::size_t) {
    if (done == 2) throw Error("interrupted");
  };
  CHECK(error_of([&] { second.write(path, options); }) == "interrupted");
  CHECK(file_bytes(path) == before);
  first.check(ModelFileReader(path));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) files += entry.is_regular_file();
  CHECK(files == 1);  // no temporary file left behind
}

TEST_CASE("writer rejects inconsistent sections") {
  ModelFileWriter w((test_dir() / "bad.glide").string());
  const std::vector<std::byte> data(12);
  CHECK(contains(error_of([&] { w.add("a", DType::kF32, {4}, data); }),
                 "section 'a': 12 bytes of data do not match shape [4] of f32"));
  w.add("a", DType::kF32, {3}, data);
  CHECK(contains(error_of([&] { w.add("a", DType::kU8, {12}, data); }), "section 'a' added twice"));
  CHECK(contains(error_of([&] { w.add("", DType::kU8, {12}, data); }), "must not be empty"));
  CHECK(contains(error_of([&] { w.add("b", DType::kU8, {1, 1, 1, 1, 12}, data); }), "at most 4"));
}

TEST_CASE(
    "a model whose parameters hold a NaN or an infinity is refused, naming file and section") {
  Config config;
  config.net.num_features = 30;
  config.net.num_labels = 20;
  config.net.hidden = {8};
  const std::uint64_t input_count = 30 * Network(config.net).input.stride;
  struct Case {
    std::string section;
    std::size_t element;
    float value;
  };
  for (const Case& c : {Case{"input.weight", 17, std::numeric_limits<float>::quiet_NaN()},
                        Case{"output.bias", 3, std::numeric_limits<float>::infinity()},
                        Case{"output.weight", 40, -std::numeric_limits<float>::infinity()}}) {
    CAPTURE(c.section);
    Network net(config.net);
    if (c.section == "input.weight") net.input.w[c.element] = c.value;
    if (c.section == "output.bias") net.output_bias.w[c.element] = c.value;
    if (c.section == "output.weight")
      dynamic_cast<F32OutputMatrix&>(*net.output).params().w[c.element] = c.value;
    const std::string path = (test_dir() / "non_finite.glide").string();
    save_model(path, net, config, TrainingState{});
    const std::string e = error_of([&] { load_model(path); });
    CHECK(contains(e, path + ": section '" + c.section +
                          "' holds a non-finite value (NaN or "
                          "infinity) at element "));
    if (c.section == "input.weight")
      CHECK(contains(e, "element 17 of " + std::to_string(input_count) + ":"));
    // The container itself carries any bits: the raw section still reads.
    const ModelFileReader raw(path);
    CHECK_NOTHROW((void)raw.read_bytes(c.section));
  }
}

TEST_CASE("a model file from before output_optimizer resumes its output layer as it was trained") {
  const char* legacy = R"({"network": {"num_features": 5, "num_labels": 5},
                          "train": {"optimizer": "sgd", "lr": 0.5}})";
  TrainConfig t = config_from_json(legacy, "legacy").train;
  CHECK(t.output_optimizer == Optimizer::kAdagrad);  // what the parse alone gives
  keep_legacy_output_optimizer(legacy, t);
  CHECK(t.output_optimizer == Optimizer::kSgd);
  CHECK(t.output_lr == 0.5);
  // A file that names it keeps it.
  const char* current = R"({"train": {"optimizer": "sgd", "lr": 0.5,
                           "output_optimizer": "adagrad", "output_lr": 0.05}})";
  TrainConfig u = config_from_json(current, "current").train;
  keep_legacy_output_optimizer(current, u);
  CHECK(u.output_optimizer == Optimizer::kAdagrad);
  CHECK(u.output_lr == 0.05);
}

TEST_CASE("a model keeps its training set's label counts, and a file without them has none") {
  Config config;
  config.net.num_features = 20;
  config.net.num_labels = 7;
  config.net.hidden = {4};
  Network net(config.net);
  const std::string path = (test_dir() / "counts.glide").string();
  TrainingState state{.samples = 10, .batches = 2};
  state.label_counts = {3, 0, 1, 9, 0, 0, 2};
  state.label_count_points = 12;
  save_model(path, net, config, state);
  const LoadedModel with = load_model(path);
  CHECK(with.state.label_counts == state.label_counts);
  CHECK(with.state.label_count_points == 12);

  save_model(path, net, config, TrainingState{.samples = 10, .batches = 2});
  const LoadedModel without = load_model(path);
  CHECK(without.state.label_counts.empty());
  CHECK(without.state.label_count_points == 0);

  // Counts of another label set are refused: the file would not load.
  state.label_counts.push_back(1);
  CHECK(contains(error_of([&] { save_model(path, net, config, state); }),
                 "label counts for 8 labels of 12 points, for a model of 7 labels"));
  CHECK(load_model(path).state.label_counts.empty());  // the file is the previous one
}
