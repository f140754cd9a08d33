// The XC repository's split files (trn_X_Xf.txt + trn_X_Y.txt) against the same points as one
// XC text file, and what is wrong with bad pairs, named by file, line and column.
#include <doctest/doctest.h>

#include "data/tests/test_util.h"
#include "data/xc_reader.h"
#include "data/xc_split_reader.h"

using namespace glide::data;
using glide::data::test::error_of;
using glide::data::test::TempDir;
using glide::data::test::write_bytes;

namespace {
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("XC split files read as the same points as one XC text file") {
  TempDir dir;
  const std::string xf = dir.file("trn_X_Xf.txt"), y = dir.file("trn_X_Y.txt");
  // Point 1 has no labels, point 2 no features; CRLF on one line; label values ignored.
  write_bytes(xf, "3 10\n2:0.5 7:1\r\n3:2\n\n");
  write_bytes(y, "3 5\n0:1 1:1\n\n4:1.0\n");
  const Dataset split = read_xc_split(xf, y);
  const Dataset whole = parse_xc_text("3 10 5\n0,1 2:0.5 7:1\n 3:2\n4\n", "t.txt");
  split.validate();
  CHECK(split.num_points() == 3);
  CHECK(split.num_features == 10);
  CHECK(split.num_labels == 5);
  CHECK(split.row_offsets == whole.row_offsets);
  CHECK(split.feature_ids == whole.feature_ids);
  CHECK(split.values == whole.values);
  CHECK(split.label_offsets == whole.label_offsets);
  CHECK(split.label_ids == whole.label_ids);
}

TEST_CASE("XC split files: a bad pair names the file, line and what was expected") {
  TempDir dir;
  const std::string xf = dir.file("x.txt"), y = dir.file("y.txt");
  const auto error = [&](const std::string& features, const std::string& labels,
                         const ReadOptions& o = {}) {
    write_bytes(xf, features);
    write_bytes(y, labels);
    return error_of([&] { (void)read_xc_split(xf, y, o); });
  };
  // A label id beyond the labels header.
  std::string e = error("2 10\n1:1\n2:1\n", "2 5\n0:1\n5:1\n");
  CHECK(contains(e, y + ":3:"));
  CHECK(contains(e, "label count"));
  // A feature id beyond the features header.
  e = error("2 10\n1:1\n10:1\n", "2 5\n0:1\n1:1\n");
  CHECK(contains(e, xf + ":3:"));
  // A bare id (an XC label list) in a split file.
  e = error("2 10\n1:1\n3 2:1\n", "2 5\n0:1\n1:1\n");
  CHECK(contains(e, xf + ":3:"));
  CHECK(contains(e, "':'"));
  // The files disagree on the point count; a header disagrees with its lines.
  e = error("2 10\n1:1\n2:1\n", "3 5\n0:1\n1:1\n2:1\n");
  CHECK(contains(e, y));
  CHECK(contains(e, "3 points"));
  e = error("3 10\n1:1\n2:1\n", "2 5\n0:1\n1:1\n");
  CHECK(contains(e, xf + ":1:1"));
  CHECK(contains(e, "expected 3 points"));
  // An XC header (three numbers) is not a split header.
  e = error("2 10 5\n1:1\n2:1\n", "2 5\n0:1\n1:1\n");
  CHECK(contains(e, xf + ":1:"));
  CHECK(contains(e, "end of the header line"));
  // Skipping bad lines would misalign the two files.
  ReadOptions skip;
  skip.skip_bad_lines = true;
  CHECK(contains(error("1 10\n1:1\n", "1 5\n0:1\n", skip), "skipping bad lines"));
}
