#include <doctest/doctest.h>

#include <cmath>

#include "data/tests/test_util.h"
#include "data/text_corpus.h"

using namespace glide::data;
using glide::data::test::error_of;

namespace {
TextCorpusOptions plain(std::uint32_t window, std::uint64_t min_count) {
  TextCorpusOptions o;
  o.window = window;
  o.min_count = min_count;
  o.subsample = 0;
  return o;
}
std::vector<std::uint32_t> labels_of(const Dataset& d, std::size_t i) {
  const auto l = d.labels(i);
  return {l.begin(), l.end()};
}
}  // namespace

TEST_CASE("text corpus: vocabulary by count, windows within a line") {
  const TextCorpus c = parse_text_corpus("a b a c\r\na b\n", "c.txt", plain(1, 1));
  REQUIRE(c.vocabulary == std::vector<std::string>{"a", "b", "c"});
  CHECK(c.counts == std::vector<std::uint64_t>{3, 2, 1});
  CHECK(c.tokens == 6);
  const Dataset& d = c.data;
  REQUIRE(d.num_points() == 6);
  CHECK(d.num_features == 3);
  CHECK(d.num_labels == 3);
  CHECK(d.features(0).ids[0] == 0);
  CHECK(d.features(0).values[0] == 1.0f);
  CHECK(labels_of(d, 0) == std::vector<std::uint32_t>{1});     // a -> b
  CHECK(labels_of(d, 2) == std::vector<std::uint32_t>{1, 2});  // a -> b, c
  CHECK(labels_of(d, 3) == std::vector<std::uint32_t>{0});     // c -> a (not the next line)
  CHECK(labels_of(d, 4) == std::vector<std::uint32_t>{1});     // a -> b
  const TextCorpus wide = parse_text_corpus("a b a c\na b\n", "c.txt", plain(2, 1));
  CHECK(labels_of(wide.data, 0) == std::vector<std::uint32_t>{0, 1});  // a -> b, a
}

TEST_CASE("text corpus: min count and max vocabulary drop words before windowing") {
  const TextCorpus c = parse_text_corpus("a b a c\na b\n", "c.txt", plain(1, 2));
  CHECK(c.vocabulary == std::vector<std::string>{"a", "b"});
  CHECK(c.in_vocabulary == 5);
  REQUIRE(c.data.num_points() == 5);
  CHECK(labels_of(c.data, 2) == std::vector<std::uint32_t>{1});  // a: c is gone
  TextCorpusOptions o = plain(1, 1);
  o.max_vocab = 1;
  const TextCorpus one = parse_text_corpus("a b a c\na b\n", "c.txt", o);
  CHECK(one.vocabulary == std::vector<std::string>{"a"});
  // Line 1 becomes "a a" (b and c go before windowing): two points; line 2's lone "a" none.
  REQUIRE(one.data.num_points() == 2);
  CHECK(labels_of(one.data, 0) == std::vector<std::uint32_t>{0});
}

TEST_CASE("text corpus: subsampling follows word2vec's rule and the seed") {
  CHECK(subsample_keep_probability(100, 1000, 0.01) ==
        doctest::Approx((std::sqrt(10.0) + 1) * 0.1));
  CHECK(subsample_keep_probability(1, 1000, 0.01) == 1.0);
  CHECK(subsample_keep_probability(5, 10, 0) == 1.0);
  // "the" is half the corpus; rare words are always kept.
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "the w" + std::to_string(i % 1000) + " ";
  TextCorpusOptions o = plain(2, 1);
  o.subsample = 1e-3;
  const TextCorpus c = parse_text_corpus(text, "c.txt", o);
  const double p_the = subsample_keep_probability(20000, 40000, 1e-3);
  const double p_rare = subsample_keep_probability(20, 40000, 1e-3);
  CHECK(p_rare == 1.0);
  const double expected = 20000 * p_the + 20000 * p_rare;
  CHECK(std::abs(double(c.kept) - expected) < 4 * std::sqrt(20000 * p_the) + 1);
  CHECK(parse_text_corpus(text, "c.txt", o).data == c.data);
  o.seed = 2;
  CHECK(!(parse_text_corpus(text, "c.txt", o).data == c.data));
  o.threads = 1;
  o.seed = 1;
  CHECK(parse_text_corpus(text, "c.txt", o).data == c.data);
}

TEST_CASE("text corpus: bad input") {
  CHECK(error_of([] { parse_text_corpus("", "c.txt"); }) ==
        "c.txt:1:1: expected words, got an empty file");
  CHECK(error_of([] { parse_text_corpus(" \n\n", "c.txt"); }) ==
        "c.txt:1:1: expected words, got only whitespace");
  CHECK(error_of([] { parse_text_corpus(std::string("ab\ncd\0e", 7), "c.txt"); }) ==
        "c.txt:2:3: expected text, got a NUL byte (is this a binary file?)");
  CHECK(error_of([] { parse_text_corpus("a b c", "c.txt", plain(1, 5)); }) ==
        "c.txt: no word occurs at least 5 times (lower the minimum count)");
}
