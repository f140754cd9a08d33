#include <doctest/doctest.h>

#include "data/dataset_io.h"
#include "data/libsvm_reader.h"
#include "data/synth_xc.h"
#include "data/tests/test_util.h"
#include "data/xc_reader.h"
#include "data/xc_writer.h"
#include "data/zstd_io.h"

using namespace glide::data;
using glide::data::test::error_of;
using glide::data::test::TempDir;
using glide::data::test::write_bytes;

namespace {
std::string xc_error(const std::string& text, const ReadOptions& o = {}) {
  return error_of([&] { parse_xc_text(text, "t.txt", o); });
}
// The "tiny" preset's first `points` points as XC text, with its header.
std::pair<Dataset, std::string> tiny_xc_text(std::size_t points) {
  XcSynthConfig c = xc_preset("tiny");
  c.points = points;
  Dataset d = synth_xc(c);
  std::string text = std::to_string(d.num_points()) + " " + std::to_string(d.num_features) + " " +
                     std::to_string(d.num_labels) + "\n" + format_xc_lines(d, 0, d.num_points());
  return {std::move(d), std::move(text)};
}
}  // namespace

TEST_CASE("XC text: points, a point without labels, CRLF") {
  for (const char* text :
       {"3 10 5\n0,1 2:0.5 7:1\n 3:2\n4 0:1e-3\n", "3 10 5\r\n0,1 2:0.5 7:1\r\n 3:2\r\n4 0:1e-3"}) {
    const Dataset d = parse_xc_text(text, "t.txt");
    REQUIRE(d.num_points() == 3);
    CHECK(d.num_features == 10);
    CHECK(d.num_labels == 5);
    CHECK(d.labels(0).size() == 2);
    CHECK(d.labels(0)[1] == 1);
    CHECK(d.features(0).ids[1] == 7);
    CHECK(d.features(0).values[0] == 0.5f);
    CHECK(d.labels(1).empty());
    CHECK(d.features(1).ids[0] == 3);
    CHECK(d.features(2).values[0] == 1e-3f);
    d.validate();
  }
}

TEST_CASE("XC text: malformed input names file, line, column and what was expected") {
  CHECK(xc_error("2 10 5\n0 1:0.5\n1,x 2:1\n") ==
        "t.txt:3:3: expected a label id (non-negative integer), got 'x'");
  CHECK(xc_error("2 10 5\n0 1:0.5\n1 10:1\n") ==
        "t.txt:3:3: expected a feature id below 10 (the header's feature count), got '10'");
  CHECK(xc_error("1 10 5\n5 1:1\n") ==
        "t.txt:2:1: expected a label id below 5 (the header's label count), got '5'");
  CHECK(xc_error("1 10 5\n0 1:nan\n") == "t.txt:2:5: expected a finite feature value, got 'nan'");
  CHECK(xc_error("1 10 5\n0 1:-inf\n") == "t.txt:2:5: expected a finite feature value, got '-inf'");
  CHECK(xc_error("1 10 5\n0 1:1e99\n") == "t.txt:2:5: expected a finite feature value, got '1e99'");
  CHECK(xc_error("1 10 5\n0 1:0.5x\n") == "t.txt:2:5: expected a finite feature value, got '0.5x'");
  CHECK(xc_error("1 10 5\n-1 1:1\n") ==
        "t.txt:2:1: expected a label id (non-negative integer), got '-1'");
  CHECK(xc_error("1 10 5\n0 1 2:1\n") == "t.txt:2:4: expected ':' after a feature id, got a space");
  CHECK(xc_error("1 10 5\n0 1:\n") ==
        "t.txt:2:5: expected a finite feature value, got end of line");
  CHECK(xc_error("1 10 5\n0;1 1:1\n") ==
        "t.txt:2:2: expected ',' or a space after a label id (a line without labels starts with "
        "a space), got ';1'");
  CHECK(xc_error("1 10 5\n0 99999999999:1\n") ==
        "t.txt:2:3: expected a feature id below 10 (the header's feature count), got "
        "'99999999999'");
  CHECK(xc_error("3 10 5\n0 1:1\n") ==
        "t.txt:1:1: expected 3 points as the header declares, got 1 lines of points");
  CHECK(xc_error("1 10 5\n0 1:1\n0 2:1\n") ==
        "t.txt:3:1: expected the end of the file after the header's 1 points, got more lines");
  CHECK(xc_error("") == "t.txt:1:1: expected a header 'POINTS FEATURES LABELS', got an empty file");
  CHECK(xc_error("a b c\n") ==
        "t.txt:1:1: expected the point count (POINTS of the header 'POINTS FEATURES LABELS'), got "
        "'a'");
  CHECK(xc_error("1 x 5\n0 1:1\n") ==
        "t.txt:1:3: expected the feature count (FEATURES of the header 'POINTS FEATURES "
        "LABELS'), got 'x'");
  CHECK(xc_error("1 10\n0 1:1\n") ==
        "t.txt:1:5: expected a space and the label count, got end of line");
  CHECK(xc_error("1 10 5 7\n0 1:1\n") ==
        "t.txt:1:8: expected the end of the header line after 3 numbers, got '7'");
}

TEST_CASE("XC text: values too small for a float read as 0; too large, inf and nan fail") {
  const std::string tiny_fraction = "0." + std::string(50, '0') + "1";
  const std::vector<std::string> tiny = {"1e-46",     "-1e-46",         "1e-400",      "+7e-46",
                                         "0.001e-44", "1e-99999999999", tiny_fraction, "0e999"};
  for (const std::string& v : tiny) {
    CAPTURE(v);
    const Dataset d = parse_xc_text("1 10 5\n0 1:" + v + " 2:1\n", "t.txt");
    REQUIRE(d.num_nonzeros() == 2);
    CHECK(d.features(0).values[0] == 0.0f);
    CHECK(d.features(0).values[1] == 1.0f);
  }
  // A subnormal stays what it is.
  CHECK(parse_xc_text("1 10 5\n0 1:1e-40\n", "t.txt").values[0] == 1e-40f);
  const std::string huge_digits = "1" + std::string(39, '0');  // 1e39
  const std::vector<std::string> bad = {"1e39", "-1e400", "1e99999999999", "0.01e41", huge_digits,
                                        "inf",  "-inf",   "nan",           "infinity"};
  for (const std::string& v : bad) {
    CAPTURE(v);
    CHECK(xc_error("1 10 5\n0 2:1 1:" + v + "\n") ==
          "t.txt:2:9: expected a finite feature value, got '" + v + "'");
  }
}

TEST_CASE("XC text: skip_bad_lines drops and counts malformed lines") {
  ReadOptions o;
  o.skip_bad_lines = true;
  o.quiet = true;
  ReadReport report;
  const Dataset d = parse_xc_text("4 10 5\n0 1:1\n0 x:1\n1 2:2\n2 3:nan\n", "t.txt", o, &report);
  CHECK(d.num_points() == 2);
  CHECK(d.labels(1)[0] == 1);
  CHECK(d.num_nonzeros() == 2);
  CHECK(report.skipped_lines == 2);
  CHECK(report.lines == 4);
  CHECK(report.first_error == "t.txt:3:3: expected a feature id (non-negative integer), got 'x'");
}

TEST_CASE("XC text: blocks and threads do not change the result or the error position") {
  const auto [d, text] = tiny_xc_text(700);
  for (std::size_t block : {std::size_t{64}, std::size_t{1000}, std::size_t{1} << 20}) {
    for (int threads : {1, 2}) {
      ReadOptions o;
      o.block_bytes = block;
      o.threads = threads;
      CHECK(parse_xc_text(text, "t.txt", o) == d);
      // An error on line 500 (point 499) is reported there whatever the blocking.
      std::string bad = text;
      std::size_t pos = 0;
      for (int line = 1; line < 500; ++line) pos = bad.find('\n', pos) + 1;
      bad.insert(pos, "x,");
      CHECK(error_of([&] { parse_xc_text(bad, "t.txt", o); }) ==
            "t.txt:500:1: expected a label id (non-negative integer), got 'x'");
    }
  }
}

TEST_CASE("XC text files of several MiB read alike from disk, plain and .zst, in any block") {
  // Files are read in steps of 1 MiB however large the block: a file larger than a step, read
  // with blocks smaller than it, larger than it and not a multiple of it, parses as its text.
  const auto [d, text] = tiny_xc_text(40000);
  REQUIRE(text.size() > (std::size_t{3} << 20));
  TempDir dir;
  const std::string plain = dir.file("big.txt"), packed = dir.file("big.txt.zst");
  write_bytes(plain, text);
  const auto z =
      zstd_compress({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, 1);
  write_bytes(packed, std::string(z.begin(), z.end()));
  for (std::size_t block :
       {std::size_t{100000}, (std::size_t{3} << 19) + 7, std::size_t{64} << 20}) {
    CAPTURE(block);
    ReadOptions o;
    o.block_bytes = block;
    CHECK(read_xc_text(plain, o) == d);
    CHECK(read_xc_text(packed, o) == d);
  }
  const auto source = open_text_source(packed);
  CHECK(read_all(*source) == text);
}

TEST_CASE("XC text: .zst files read transparently; truncated and corrupt ones fail") {
  const std::string text = "2 10 5\n0,1 2:0.5 7:1\n 3:2\n";
  const auto z =
      zstd_compress({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, 3);
  const std::string zs(z.begin(), z.end());
  glide::data::test::TempDir dir;
  const std::string path = dir.file("t.txt.zst");
  glide::data::test::write_bytes(path, zs);
  CHECK(read_xc_text(path) == parse_xc_text(text, "x"));
  CHECK(parse_xc_text(zs, "m.zst") == parse_xc_text(text, "x"));
  // Concatenated frames are one stream.
  auto frame = [](const std::string& t) {
    const auto f = zstd_compress({reinterpret_cast<const std::uint8_t*>(t.data()), t.size()}, 1);
    return std::string(f.begin(), f.end());
  };
  glide::data::test::write_bytes(path, frame(text.substr(0, 10)) + frame(text.substr(10)));
  CHECK(read_xc_text(path) == parse_xc_text(text, "x"));

  glide::data::test::write_bytes(path, zs.substr(0, zs.size() - 6));
  CHECK(error_of([&] { read_xc_text(path); }) ==
        path + ": truncated zstd data: the input ends inside a compressed frame");
  std::string corrupt = zs;
  corrupt[corrupt.size() - 2] ^= 0x5A;  // inside the checksum
  glide::data::test::write_bytes(path, corrupt);
  CHECK(error_of([&] { read_xc_text(path); }).rfind(path + ": corrupt zstd data: ", 0) == 0);
}

TEST_CASE("libsvm: dimension inference, given dimensions, 1-based ids, comments") {
  const std::string text = "# a comment\n1,2 3:1 5:2\n\n0 1:1 qid:3 # trailing\n";
  const Dataset d = parse_libsvm(text, "t.svm");
  CHECK(d.num_points() == 2);
  CHECK(d.num_features == 6);
  CHECK(d.num_labels == 3);
  CHECK(d.features(1).size() == 1);
  ReadOptions o;
  o.num_features = 4;
  CHECK(error_of([&] { parse_libsvm(text, "t.svm", o); }) ==
        "t.svm:2:9: expected a feature id below 4 (the given feature count), got '5'");
  o.num_features = 100;
  o.num_labels = 50;
  const Dataset given = parse_libsvm(text, "t.svm", o);
  CHECK(given.num_features == 100);
  CHECK(given.num_labels == 50);
  ReadOptions one;
  one.index_base = 1;
  const Dataset b = parse_libsvm("0 1:1 3:2\n", "t.svm", one);
  CHECK(b.features(0).ids[0] == 0);
  CHECK(b.features(0).ids[1] == 2);
  CHECK(b.num_features == 3);
  CHECK(error_of([&] { parse_libsvm("0 0:1\n", "t.svm", one); }) ==
        "t.svm:1:3: expected a feature id >= 1 (ids in this file are 1-based), got '0'");
  CHECK(error_of([&] { parse_libsvm("", "t.svm"); }) ==
        "t.svm:1:1: expected a line 'LABELS FEATURE:VALUE ...', got an empty file");
  CHECK(error_of([&] { parse_libsvm("# only\n\n", "t.svm"); }) ==
        "t.svm:3:1: expected a line 'LABELS FEATURE:VALUE ...', got only blank or comment lines");
  CHECK(error_of([&] { parse_libsvm("1 2:1\r\n+1 3:1\r\n", "t.svm"); }) ==
        "t.svm:2:1: expected a label id (non-negative integer), got '+1'");
}

TEST_CASE("libsvm and XC text: an id whose count would not fit in 32 bits is a named error") {
  // 4294967295 + 1 wrapped to a label count of 0 (a crash in training).
  CHECK(error_of([&] { parse_libsvm("4294967295 4:0.5\n2 3:1\n", "x.svm"); }) ==
        "x.svm:1:1: expected a label id below 4294967295 (counts are 32-bit), got '4294967295'");
  CHECK(error_of([&] { parse_libsvm("1 4294967295:0.5\n", "x.svm"); }) ==
        "x.svm:1:3: expected a feature id below 4294967295 (counts are 32-bit), got '4294967295'");
  const Dataset top = parse_libsvm("4294967294 4294967294:1\n", "x.svm");
  CHECK(top.num_labels == 4294967295u);
  CHECK(top.num_features == 4294967295u);
}

TEST_CASE("XC text and libsvm: a label a point repeats is kept once and counted") {
  ReadOptions o;
  o.quiet = true;
  for (std::size_t block : {std::size_t{8}, std::size_t{1} << 20}) {
    o.block_bytes = block;
    ReadReport report;
    const Dataset d =
        parse_xc_text("3 10 5\n0 1:1\n1,1,2 1:1\n3,0,3,3 2:1 3:1\n", "t.txt", o, &report);
    REQUIRE(d.num_points() == 3);
    CHECK(std::vector<std::uint32_t>(d.labels(1).begin(), d.labels(1).end()) ==
          std::vector<std::uint32_t>{1, 2});
    CHECK(std::vector<std::uint32_t>(d.labels(2).begin(), d.labels(2).end()) ==
          std::vector<std::uint32_t>{3, 0});
    CHECK(d.num_nonzeros() == 4);
    CHECK(report.repeated_labels == 3);
    CHECK(report.first_repeat == "t.txt:3");

    ReadReport svm;
    const Dataset s = parse_libsvm("# c\n0 1:1\n\n2,2 1:1\n", "t.svm", o, &svm);
    REQUIRE(s.num_points() == 2);
    CHECK(s.labels(1).size() == 1);
    CHECK(svm.repeated_labels == 1);
    CHECK(svm.first_repeat == "t.svm:4");
  }
  // A skipped bad line's labels are not counted.
  o.skip_bad_lines = true;
  ReadReport report;
  parse_xc_text("2 10 5\n1,1 x:1\n1 1:1\n", "t.txt", o, &report);
  CHECK(report.skipped_lines == 1);
  CHECK(report.repeated_labels == 0);
}

TEST_CASE("format detection: a malformed XC header is an XC header error, not bad libsvm") {
  TempDir dir;
  auto file_error = [&](const std::string& text) {
    const std::string path = dir.file("x.txt");
    write_bytes(path, text);
    return error_of([&] { read_dataset(path, {}); });
  };
  const std::string x = dir.file("x.txt");
  CHECK(file_error("2 10\n0 1:1\n1 2:1\n") ==
        x + ":1:5: expected a space and the label count, got end of line");
  CHECK(file_error("2 10 5 7\n0 1:1\n1 2:1\n") ==
        x + ":1:8: expected the end of the header line after 3 numbers, got '7'");
  CHECK(file_error("2 10 9999999999\n0 1:1\n1 2:1\n") ==
        x + ":1:6: expected the label count below 4294967296 (32-bit counts), got '9999999999'");
  CHECK(file_error("2 10 five\n0 1:1\n") ==
        x + ":1:6: expected the label count (LABELS of the header 'POINTS FEATURES LABELS'), got "
            "'five'");
  // libsvm files stay libsvm: labels then feature:value pairs, a lone label, a comment first.
  write_bytes(x, "3 1:1\n");
  CHECK(detect_format(x) == Format::Libsvm);
  write_bytes(x, "3,4 1:1\n");
  CHECK(detect_format(x) == Format::Libsvm);
  write_bytes(x, "3\n1 2:1\n");
  CHECK(detect_format(x) == Format::Libsvm);
  write_bytes(x, "# 1 2 3\n1 2:1\n");
  CHECK(detect_format(x) == Format::Libsvm);
  write_bytes(x, " 1:1\n");
  CHECK(detect_format(x) == Format::Libsvm);
  write_bytes(x, "2 10 5\n0 1:1\n1 2:1\n");
  CHECK(detect_format(x) == Format::XcText);
}
