// Plain-text corpora (like Text8) turned into an XC dataset for word2vec-style training.
//
// Words are whitespace-separated byte strings; a line ends a sentence (contexts never cross
// lines; Text8 is a single line). The vocabulary holds the words seen at least min_count times,
// by decreasing count (ties by byte order), at most max_vocab of them; other words are dropped
// before windowing, as word2vec does. Frequent words are subsampled with word2vec's rule: a word
// of frequency f (its share of in-vocabulary tokens) is kept with probability
// (sqrt(f / t) + 1) * t / f, decided per token position from the seed, so the result does not
// depend on the thread count.
//
// Each kept token becomes one point: its feature is the centre word's id (value 1), its labels
// are the distinct ids of the kept words at most `window` positions before or after it in the
// same sentence. Tokens without any context are dropped. Features and labels are both vocabulary
// ids, so num_features == num_labels == vocabulary size.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"

namespace glide::data {

struct TextCorpusOptions {
  std::uint32_t window = 5;     // context words on each side
  std::uint64_t min_count = 5;  // words seen fewer times are dropped
  std::uint32_t max_vocab = 0;  // keep at most this many words (0: no limit)
  double subsample = 1e-3;      // word2vec's threshold t; 0 keeps every token
  std::uint64_t seed = 1;
  int threads = 0;  // 0: every core
};

struct TextCorpus {
  Dataset data;
  std::vector<std::string> vocabulary;  // id -> word
  std::vector<std::uint64_t> counts;    // id -> occurrences in the corpus
  std::uint64_t tokens = 0;             // words in the corpus
  std::uint64_t in_vocabulary = 0;      // of them, words in the vocabulary
  std::uint64_t kept = 0;               // of them, tokens kept by subsampling
};

// A NUL byte (binary data) is a glide::Error "FILE:LINE:COL: expected text, ...", as are an empty
// corpus and a vocabulary left empty by min_count.
TextCorpus parse_text_corpus(std::string_view text, const std::string& name,
                             const TextCorpusOptions& options = {});
// Reads `path` (zstd-compressed or not) whole and parses it.
TextCorpus read_text_corpus(const std::string& path, const TextCorpusOptions& options = {});

// word2vec's keep probability for a word seen `count` times among `total` tokens (capped at 1).
double subsample_keep_probability(std::uint64_t count, std::uint64_t total, double threshold);

// Writes "WORD COUNT" lines in id order (atomically).
void write_vocabulary(const std::string& path, const TextCorpus& corpus);

}  // namespace glide::data
