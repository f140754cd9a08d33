#include "data/text_corpus.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "common/error.h"
#include "common/file_util.h"
#include "common/rng.h"
#include "data/line_cursor.h"
#include "data/threads.h"
#include "data/zstd_io.h"

namespace glide::data {

namespace {

constexpr std::uint32_t kSentenceEnd = 0xFFFFFFFFu;
constexpr std::uint32_t kDropped = 0xFFFFFFFEu;

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// A piece of the text cut at whitespace, and what one pass learnt about it.
struct Piece {
  std::string_view text;
  std::vector<std::string_view> words;  // an empty view marks a sentence end
  std::uint64_t word_count = 0;
  std::unordered_map<std::string_view, std::uint64_t> counts;
  std::vector<std::uint32_t> ids;  // after the vocabulary: ids, kDropped or kSentenceEnd
};

std::vector<Piece> cut_at_whitespace(std::string_view text, std::size_t pieces) {
  std::vector<Piece> out;
  const std::size_t target =
      std::max<std::size_t>(text.size() / std::max<std::size_t>(pieces, 1), 1);
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = std::min(text.size(), pos + target);
    while (end < text.size() && !is_blank(text[end])) ++end;
    out.emplace_back().text = text.substr(pos, end - pos);
    pos = end;
  }
  return out;
}

void tokenize(Piece& piece) {
  const std::string_view t = piece.text;
  std::size_t i = 0;
  while (i < t.size()) {
    if (t[i] == '\n') {
      piece.words.emplace_back();
      ++i;
      continue;
    }
    if (is_blank(t[i])) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (i < t.size() && !is_blank(t[i])) ++i;
    const std::string_view word = t.substr(start, i - start);
    piece.words.push_back(word);
    ++piece.counts[word];
    ++piece.word_count;
  }
}

[[noreturn]] void fail_at_offset(std::string_view text, std::size_t offset, const std::string& name,
                                 const std::string& message) {
  const std::size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  const std::uint64_t line = 1 + std::count(text.begin(), text.begin() + offset, '\n');
  const std::size_t column =
      offset - (line_start == std::string_view::npos || offset == 0 ? 0 : line_start + 1) + 1;
  fail(position_message(name, line, column, message));
}

}  // namespace

double subsample_keep_probability(std::uint64_t count, std::uint64_t total, double threshold) {
  if (threshold <= 0 || count == 0 || total == 0) return 1.0;
  const double f = static_cast<double>(count) / static_cast<double>(total);
  return std::min(1.0, (std::sqrt(f / threshold) + 1.0) * threshold / f);
}

TextCorpus parse_text_corpus(std::string_view text, const std::string& name,
                             const TextCorpusOptions& options) {
  if (const void* nul = std::memchr(text.data(), 0, text.size()))
    fail_at_offset(text, static_cast<const char*>(nul) - text.data(), name,
                   "expected text, got a NUL byte (is this a binary file?)");
  if (options.window == 0) fail(name, "the context window must be at least 1");
  TextCorpus corpus;
  std::vector<Piece> pieces =
      cut_at_whitespace(text, std::clamp<std::size_t>(text.size() >> 20, 1, 256));

  with_threads(options.threads, [&] {
    // Pass 1: words and their counts per piece.
    tbb::parallel_for(std::size_t{0}, pieces.size(), [&](std::size_t i) { tokenize(pieces[i]); });
    std::unordered_map<std::string_view, std::uint64_t> counts;
    for (auto& p : pieces) {
      corpus.tokens += p.word_count;
      for (const auto& [w, c] : p.counts) counts[w] += c;
      p.counts = {};
    }
    if (corpus.tokens == 0)
      fail(position_message(name, 1, 1,
                            "expected words, got " +
                                std::string(text.empty() ? "an empty file" : "only whitespace")));

    // The vocabulary: frequent words first; ties by bytes so the ids are deterministic.
    std::vector<std::pair<std::string_view, std::uint64_t>> words;
    for (const auto& wc : counts)
      if (wc.second >= std::max<std::uint64_t>(options.min_count, 1)) words.push_back(wc);
    std::sort(words.begin(), words.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (options.max_vocab && words.size() > options.max_vocab) words.resize(options.max_vocab);
    if (words.empty())
      fail(name, "no word occurs at least " + std::to_string(options.min_count) +
                     " times (lower the minimum count)");
    std::unordered_map<std::string_view, std::uint32_t> ids;
    ids.reserve(words.size());
    for (const auto& [w, c] : words) {
      ids.emplace(w, static_cast<std::uint32_t>(corpus.vocabulary.size()));
      corpus.vocabulary.emplace_back(w);
      corpus.counts.push_back(c);
      corpus.in_vocabulary += c;
    }
    std::vector<double> keep(words.size());
    for (std::size_t w = 0; w < words.size(); ++w)
      keep[w] =
          subsample_keep_probability(corpus.counts[w], corpus.in_vocabulary, options.subsample);

    // Pass 2: ids, with subsampling decided by each token's position in the corpus.
    std::vector<std::uint64_t> first_token(pieces.size() + 1, 0);
    for (std::size_t i = 0; i < pieces.size(); ++i)
      first_token[i + 1] = first_token[i] + pieces[i].words.size();
    const std::uint64_t sub_seed = derive_seed(options.seed, 0x5B5A);
    tbb::parallel_for(std::size_t{0}, pieces.size(), [&](std::size_t i) {
      Piece& p = pieces[i];
      p.ids.reserve(p.words.size());
      for (std::size_t k = 0; k < p.words.size(); ++k) {
        const std::string_view w = p.words[k];
        if (w.empty()) {
          p.ids.push_back(kSentenceEnd);
          continue;
        }
        const auto it = ids.find(w);
        if (it == ids.end()) continue;  // out of vocabulary: removed before windowing
        const double u =
            static_cast<double>(derive_seed(sub_seed, first_token[i] + k) >> 11) * 0x1.0p-53;
        p.ids.push_back(u < keep[it->second] ? it->second : kDropped);
      }
      p.words = {};
    });
  });

  // One token sequence; dropped tokens go (they leave no gap, as in word2vec).
  std::vector<std::uint32_t> seq;
  for (const auto& p : pieces)
    for (auto id : p.ids)
      if (id != kDropped) seq.push_back(id);
  pieces.clear();
  for (auto id : seq) corpus.kept += id != kSentenceEnd;

  // Pass 3: one point per token with context, in blocks joined in order.
  constexpr std::size_t kBlock = 1 << 16;
  std::vector<Dataset> parts((seq.size() + kBlock - 1) / kBlock);
  const std::int64_t n = static_cast<std::int64_t>(seq.size()), w = options.window;
  with_threads(options.threads, [&] {
    tbb::parallel_for(std::size_t{0}, parts.size(), [&](std::size_t b) {
      Dataset& part = parts[b];
      std::vector<std::uint32_t> context;
      const float one = 1.0f;
      const std::int64_t end = std::min<std::int64_t>(n, (b + 1) * kBlock);
      for (std::int64_t i = b * kBlock; i < end; ++i) {
        if (seq[i] == kSentenceEnd) continue;
        context.clear();
        for (std::int64_t j = i - 1;
             j >= std::max<std::int64_t>(0, i - w) && seq[j] != kSentenceEnd; --j)
          context.push_back(seq[j]);
        for (std::int64_t j = i + 1; j < std::min(n, i + w + 1) && seq[j] != kSentenceEnd; ++j)
          context.push_back(seq[j]);
        if (context.empty()) continue;
        std::sort(context.begin(), context.end());
        context.erase(std::unique(context.begin(), context.end()), context.end());
        part.add_point({&seq[i], 1}, {&one, 1}, context);
      }
    });
  });
  for (auto& p : parts) {
    corpus.data.append(p);
    p = Dataset();
  }
  corpus.data.num_features = corpus.data.num_labels =
      static_cast<std::uint32_t>(corpus.vocabulary.size());
  return corpus;
}

TextCorpus read_text_corpus(const std::string& path, const TextCorpusOptions& options) {
  auto source = open_text_source(path);
  const std::string text = read_all(*source);
  return parse_text_corpus(text, path, options);
}

void write_vocabulary(const std::string& path, const TextCorpus& corpus) {
  write_file_atomic(path, [&](std::FILE* f) {
    for (std::size_t i = 0; i < corpus.vocabulary.size(); ++i)
      std::fprintf(f, "%s %llu\n", corpus.vocabulary[i].c_str(),
                   static_cast<unsigned long long>(corpus.counts[i]));
  });
}

}  // namespace glide::data
