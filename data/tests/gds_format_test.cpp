#include <doctest/doctest.h>

#include <cstring>

#include "data/crc32.h"
#include "data/dataset_io.h"
#include "data/gds_format.h"
#include "data/synth_xc.h"
#include "data/tests/test_util.h"
#include "data/xc_reader.h"
#include "data/xc_writer.h"

using namespace glide::data;
using glide::data::test::error_of;
using glide::data::test::read_bytes;
using glide::data::test::TempDir;
using glide::data::test::write_bytes;

namespace {
Dataset sample() {
  XcSynthConfig c = xc_preset("tiny");
  c.points = 300;
  Dataset d = synth_xc(c);
  // Edge cases a generator never makes: an empty point, and one without labels.
  d.add_point({}, {}, {});
  const std::uint32_t ids[] = {5};
  const float vals[] = {-0.25f};
  d.add_point(ids, vals, {});
  return d;
}
}  // namespace

TEST_CASE(".gds and XC text round trips are exact") {
  TempDir dir;
  const Dataset d = sample();
  const std::string text = dir.file("a.txt"), gds = dir.file("a.gds"), text2 = dir.file("b.txt");
  write_dataset(text, d);
  const Dataset from_text = read_dataset(text);
  CHECK(from_text == d);
  write_dataset(gds, from_text);
  GdsWriteOptions small_blocks;
  small_blocks.block_bytes = 1024;  // many blocks
  write_gds(dir.file("c.gds"), d, small_blocks);
  CHECK(read_gds(dir.file("c.gds")) == d);
  const Dataset from_gds = read_dataset(gds);
  CHECK(from_gds == d);
  write_dataset(text2, from_gds);
  CHECK(read_bytes(text) == read_bytes(text2));
  // Compressed text, and format detection.
  write_dataset(dir.file("a.txt.zst"), d);
  CHECK(read_dataset(dir.file("a.txt.zst")) == d);
  CHECK(detect_format(gds) == Format::Gds);
  CHECK(detect_format(text) == Format::XcText);
  CHECK(detect_format(dir.file("a.txt.zst")) == Format::XcText);
  write_bytes(dir.file("l.svm"), "1 2:1\n");
  CHECK(detect_format(dir.file("l.svm")) == Format::Libsvm);
  // An empty dataset round trips too.
  Dataset empty;
  empty.num_features = 3;
  write_dataset(dir.file("e.gds"), empty);
  CHECK(read_dataset(dir.file("e.gds")) == empty);
}

TEST_CASE(".gds: truncated, corrupt, foreign and future files are clear errors") {
  TempDir dir;
  const std::string path = dir.file("a.gds");
  write_gds(path, sample());
  const std::string good = read_bytes(path);
  auto bytes_error = [&](const std::string& bytes) {
    return error_of([&] {
      parse_gds({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, "a.gds");
    });
  };
  CHECK(bytes_error("") == "a.gds: empty file, expected a .gds dataset");
  CHECK(bytes_error("hello world") == "a.gds: not a .gds file (the magic 'GLIDEGDS' is missing)");
  CHECK(bytes_error(good.substr(0, 40)) ==
        "a.gds: truncated .gds file: expected a 80-byte header, got 40 bytes");
  CHECK(bytes_error(good.substr(0, good.size() - 1)) ==
        "a.gds: truncated .gds file: expected " + std::to_string(good.size()) + " bytes, got " +
            std::to_string(good.size() - 1));
  CHECK(bytes_error(good + "x") == "a.gds: corrupt .gds file: 1 unexpected bytes after the data");
  // Every truncation fails, none crashes.
  for (std::size_t n = 0; n < good.size(); n += 7) CHECK(!bytes_error(good.substr(0, n)).empty());
  // A flipped bit never yields wrong data: header and table are covered by CRC-32, block
  // contents by zstd checksums. (A flip in bytes zstd does not use, such as a frame's window
  // size, may go unnoticed; the data read is then still exact.)
  const Dataset original = sample();
  std::size_t caught = 0, total = 0;
  for (std::size_t at = 0; at < good.size(); at += 13, ++total) {
    std::string bad = good;
    bad[at] ^= 0x10;
    try {
      const Dataset d =
          parse_gds({reinterpret_cast<const std::uint8_t*>(bad.data()), bad.size()}, "a.gds");
      CHECK_MESSAGE(d == original, "flipped byte " << at);
    } catch (const glide::Error&) {
      ++caught;
    }
  }
  CHECK(caught > total * 95 / 100);
  std::string header_hit = good;
  header_hit[20] ^= 1;
  CHECK(bytes_error(header_hit) == "a.gds: corrupt .gds file: the header checksum does not match");
  // A newer version (with a valid checksum) is refused by name.
  std::string future = good;
  const std::uint32_t version = 2;
  std::memcpy(future.data() + 8, &version, 4);
  const std::uint32_t crc = crc32(future.data(), 76);
  std::memcpy(future.data() + 76, &crc, 4);
  CHECK(bytes_error(future) == "a.gds: unsupported .gds version 2 (this build reads 1)");
  CHECK(error_of([&] {
          read_gds(dir.file("missing.gds"));
        }).rfind(dir.file("missing.gds") + ": cannot open", 0) == 0);
}

TEST_CASE("crc32 matches the standard check value") {
  CHECK(crc32("123456789", 9) == 0xCBF43926u);
}

TEST_CASE("read_dataset drops the labels a .gds point repeats, and counts them") {
  TempDir dir;
  Dataset d;
  d.num_features = 3;
  d.num_labels = 6;
  const std::uint32_t f[] = {1};
  const float v[] = {1.0f};
  const std::uint32_t once[] = {4, 1}, twice[] = {5, 2, 5, 5};
  d.add_point(f, v, once);
  d.add_point(f, v, twice);
  write_gds(dir.file("r.gds"), d);
  CHECK(read_gds(dir.file("r.gds")) == d);  // the format itself stores what it is given
  ReadOptions quiet;
  quiet.quiet = true;
  ReadReport report;
  const Dataset read = read_dataset(dir.file("r.gds"), quiet, &report);
  CHECK(std::vector<std::uint32_t>(read.labels(1).begin(), read.labels(1).end()) ==
        std::vector<std::uint32_t>{5, 2});
  CHECK(std::vector<std::uint32_t>(read.labels(0).begin(), read.labels(0).end()) ==
        std::vector<std::uint32_t>{4, 1});
  CHECK(report.repeated_labels == 2);
  CHECK(report.first_repeat == dir.file("r.gds") + ": point 1");
}
