// `glide data`: synthesise, convert, inspect datasets and turn text corpora into XC datasets.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "apps/commands.h"
#include "common/error.h"
#include "common/file_util.h"
#include "common/timing.h"
#include "data/dataset_io.h"
#include "data/stats.h"
#include "data/synth_ceiling.h"
#include "data/synth_rec.h"
#include "data/synth_xc.h"
#include "data/text_corpus.h"
#include "data/xc_split_reader.h"

namespace glide::cli {

namespace {

using namespace glide::data;

// Parses argv; prints help and returns false when asked. Unknown flags and stray arguments are
// errors.
bool parse(cxxopts::Options& options, int argc, char** argv, cxxopts::ParseResult& result) {
  options.add_options()("h,help", "describe the flags");
  result = options.parse(argc, argv);
  if (result.count("help")) {
    std::printf("%s", options.help().c_str());
    return false;
  }
  if (!result.unmatched().empty())
    fail("unexpected argument '" + result.unmatched().front() + "' (see --help)");
  return true;
}

void add_reader_flags(cxxopts::Options& o) {
  o.add_options("reading")("format", "input format: auto, gds, xc, libsvm, text",
                           cxxopts::value<std::string>()->default_value("auto"))(
      "skip-bad-lines", "drop malformed lines (counted, one warning) instead of failing")(
      "threads", "threads (0: every core)", cxxopts::value<int>()->default_value("0"))(
      "num-features", "libsvm: feature count (0: largest id + 1)",
      cxxopts::value<std::uint32_t>()->default_value("0"))(
      "num-labels", "libsvm: label count (0: largest id + 1)",
      cxxopts::value<std::uint32_t>()->default_value("0"))(
      "index-base", "libsvm: 1 when feature ids start at 1",
      cxxopts::value<int>()->default_value("0"));
}

ReadOptions reader_options(const cxxopts::ParseResult& r) {
  ReadOptions o;
  o.format = parse_format(r["format"].as<std::string>());
  o.skip_bad_lines = r.count("skip-bad-lines") > 0;
  o.threads = r["threads"].as<int>();
  o.num_features = r["num-features"].as<std::uint32_t>();
  o.num_labels = r["num-labels"].as<std::uint32_t>();
  o.index_base = r["index-base"].as<int>();
  return o;
}

std::string single_input(const cxxopts::ParseResult& r, const char* what) {
  if (!r.count("input")) fail(std::string("missing ") + what + " (see --help)");
  const auto& inputs = r["input"].as<std::vector<std::string>>();
  if (inputs.size() != 1) fail("unexpected argument '" + inputs[1] + "' (see --help)");
  return inputs[0];
}

void write_and_report(const std::string& path, const Dataset& d, int threads, int level,
                      double seconds) {
  const auto t = std::chrono::steady_clock::now();
  WriteOptions w;
  w.threads = threads;
  w.level = level;
  write_dataset(path, d, w);
  std::fprintf(
      stderr,
      "wrote %s: %zu points, %u features, %u labels, %zu nonzeros (%.2fs + %.2fs to write)\n",
      path.c_str(), d.num_points(), d.num_features, d.num_labels, d.num_nonzeros(), seconds,
      seconds_since(t));
}

void print_ceiling(const PlantedCeiling& c, const Dataset& test) {
  std::printf(
      "planted model on the %zu test points: P@1 %.4f  P@5 %.4f over every label; P@1 %.4f  "
      "P@5 %.4f over the %u labels seen in training\n",
      test.num_points(), c.p_at_1_all, c.p_at_5_all, c.p_at_1_seen, c.p_at_5_seen, c.seen_labels);
}

int synth(int argc, char** argv) {
  cxxopts::Options o("glide data synth",
                     "Generates a synthetic dataset with planted, learnable structure.\n"
                     "XC: Zipf label frequencies, a sparse feature profile per label, points "
                     "drawn from their labels' profiles plus noise.\nrec: item histories over "
                     "clustered, Zipf-popular items; recent items -> next items.\nExplicit flags "
                     "override the preset. Output by name: .gds binary, else XC text (.zst: "
                     "compressed).");
  o.add_options()("o,output", "output file (.gds, .txt, .txt.zst)", cxxopts::value<std::string>())(
      "kind", "xc or rec", cxxopts::value<std::string>()->default_value("xc"))(
      "preset", "xc: default, amazon670k, families, facets, tiny",
      cxxopts::value<std::string>()->default_value("default"))(
      "seed", "random seed", cxxopts::value<std::uint64_t>()->default_value("1"))(
      "threads", "threads (0: every core); the output does not depend on it",
      cxxopts::value<int>()->default_value("0"))("level", "zstd level for .gds / .zst output",
                                                 cxxopts::value<int>()->default_value("3"))(
      "test-points",
      "also generate this many test points (rec: test users) from the same planted model",
      cxxopts::value<std::uint64_t>()->default_value("0"))(
      "test-output", "where the test points go (needs --test-points)",
      cxxopts::value<std::string>())(
      "ceiling",
      "xc: also print the planted model's P@1 / P@5 on the test points, over every label and "
      "over the labels seen in training (what a model could still win on this data)");
  o.add_options("xc")("points", "training points", cxxopts::value<std::uint64_t>())(
      "features", "number of features", cxxopts::value<std::uint32_t>())(
      "labels", "number of labels", cxxopts::value<std::uint32_t>())(
      "mean-features", "distinct features per point, on average", cxxopts::value<double>())(
      "mean-labels", "labels per point, on average (>= 1)", cxxopts::value<double>())(
      "max-labels", "labels per point at most (0: 3 x mean)", cxxopts::value<std::uint32_t>())(
      "zipf", "label (rec: item) popularity exponent", cxxopts::value<double>())(
      "noise", "fraction of background features (rec: random popular items)",
      cxxopts::value<double>())("profile-size", "features per label profile (0: automatic)",
                                cxxopts::value<std::uint32_t>())(
      "family-size",
      "labels per family: siblings draw --family-share of their features from one shared "
      "profile (1: no families)",
      cxxopts::value<std::uint32_t>())(
      "family-share", "fraction of a label's features drawn from its family's profile",
      cxxopts::value<double>())(
      "types",
      "item types: a point takes its type's labels and draws its features from the type's "
      "profile, so labels are facets several types share (0: none)",
      cxxopts::value<std::uint32_t>());
  o.add_options("rec")("users", "users (one history each)", cxxopts::value<std::uint64_t>())(
      "items", "catalogue size", cxxopts::value<std::uint32_t>())("clusters", "item clusters",
                                                                  cxxopts::value<std::uint32_t>())(
      "mean-history", "items per history, on average", cxxopts::value<double>())(
      "affinity", "probability of staying in the current cluster", cxxopts::value<double>())(
      "window", "recent items used as features", cxxopts::value<std::uint32_t>())(
      "horizon", "next items used as labels", cxxopts::value<std::uint32_t>())(
      "stride", "one sample every STRIDE history positions", cxxopts::value<std::uint32_t>());
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, r)) return 0;
  if (!r.count("output")) fail("missing -o/--output (see --help)");
  const std::string out = r["output"].as<std::string>();
  const std::uint64_t test_points = r["test-points"].as<std::uint64_t>();
  if ((test_points > 0) != (r.count("test-output") > 0))
    fail("--test-points and --test-output go together");
  if (r.count("ceiling") && !test_points) fail("--ceiling needs --test-points");
  const int threads = r["threads"].as<int>(), level = r["level"].as<int>();
  const std::string kind = r["kind"].as<std::string>();
  auto set = [&](const char* flag, auto& field) {
    if (r.count(flag)) field = r[flag].as<std::remove_reference_t<decltype(field)>>();
  };
  const auto start = std::chrono::steady_clock::now();
  if (kind == "xc") {
    for (const char* f :
         {"users", "items", "clusters", "mean-history", "affinity", "window", "horizon", "stride"})
      if (r.count(f)) fail(std::string("--") + f + " is for --kind rec");
    XcSynthConfig c = xc_preset(r["preset"].as<std::string>());
    c.seed = r["seed"].as<std::uint64_t>();
    set("points", c.points);
    set("features", c.features);
    set("labels", c.labels);
    set("mean-features", c.mean_features);
    set("mean-labels", c.mean_labels);
    set("max-labels", c.max_labels);
    set("zipf", c.zipf_exponent);
    set("noise", c.noise);
    set("profile-size", c.profile_size);
    set("family-size", c.family_size);
    set("family-share", c.family_share);
    set("types", c.types);
    if (c.types && r.count("ceiling"))
      fail("--ceiling: data of item types (--types) have no label profiles to score with");
    const XcGenerator gen(c);
    const Dataset train = gen.train(threads);
    write_and_report(out, train, threads, level, seconds_since(start));
    if (test_points) {
      const auto t = std::chrono::steady_clock::now();
      const Dataset test = gen.test(test_points, threads);
      write_and_report(r["test-output"].as<std::string>(), test, threads, level, seconds_since(t));
      if (r.count("ceiling")) print_ceiling(planted_ceiling(gen, train, test, threads), test);
    }
    return 0;
  }
  if (kind != "rec") fail("unknown --kind '" + kind + "' (expected xc or rec)");
  for (const char* f :
       {"points", "features", "labels", "mean-features", "mean-labels", "max-labels",
        "profile-size", "family-size", "family-share", "types", "ceiling"})
    if (r.count(f)) fail(std::string("--") + f + " is for --kind xc");
  if (r.count("preset") && r["preset"].as<std::string>() != "default")
    fail("--kind rec has only the default preset");
  RecSynthConfig c;
  c.seed = r["seed"].as<std::uint64_t>();
  set("users", c.users);
  set("items", c.items);
  set("clusters", c.clusters);
  set("mean-history", c.mean_history);
  set("zipf", c.zipf_exponent);
  set("affinity", c.affinity);
  set("noise", c.noise);
  set("window", c.window);
  set("horizon", c.horizon);
  set("stride", c.stride);
  const RecGenerator gen(c);
  const Dataset train = gen.generate(0, c.users, 0, threads);
  write_and_report(out, train, threads, level, seconds_since(start));
  if (test_points) {
    const auto t = std::chrono::steady_clock::now();
    const Dataset test = gen.generate(0, test_points, 1, threads);
    write_and_report(r["test-output"].as<std::string>(), test, threads, level, seconds_since(t));
  }
  return 0;
}

int convert(int argc, char** argv) {
  cxxopts::Options o("glide data convert",
                     "Converts a dataset (.gds, XC text, libsvm; .zst read transparently) to .gds "
                     "or XC text, by the output's name (.zst: compressed text). With --labels, "
                     "IN and the labels file are the XC repository's split files (trn_X_Xf.txt "
                     "and trn_X_Y.txt: 'POINTS COLUMNS' headers, 'id:value' entries).");
  o.add_options()("input", "input file", cxxopts::value<std::vector<std::string>>())(
      "labels", "the labels file of a split pair (IN is then the features file)",
      cxxopts::value<std::string>())("o,output", "output file (.gds, .txt, .txt.zst)",
                                     cxxopts::value<std::string>())(
      "level", "zstd level for .gds / .zst output", cxxopts::value<int>()->default_value("3"));
  add_reader_flags(o);
  o.parse_positional({"input"});
  o.positional_help("IN");
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, r)) return 0;
  const std::string in = single_input(r, "input file");
  if (!r.count("output")) fail("missing -o/--output (see --help)");
  const auto start = std::chrono::steady_clock::now();
  const Dataset d = r.count("labels")
                        ? read_xc_split(in, r["labels"].as<std::string>(), reader_options(r))
                        : read_dataset(in, reader_options(r));
  write_and_report(r["output"].as<std::string>(), d, r["threads"].as<int>(), r["level"].as<int>(),
                   seconds_since(start));
  return 0;
}

int stats(int argc, char** argv) {
  cxxopts::Options o("glide data stats",
                     "Prints a dataset's sizes, sparsity and label frequency distribution.");
  o.add_options()("input", "input file", cxxopts::value<std::vector<std::string>>());
  add_reader_flags(o);
  o.parse_positional({"input"});
  o.positional_help("FILE");
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, r)) return 0;
  const std::string in = single_input(r, "input file");
  const auto start = std::chrono::steady_clock::now();
  ReadReport report;
  const Dataset d = read_dataset(in, reader_options(r), &report);
  std::printf("file                %s (read in %.2fs%s)\n", in.c_str(), seconds_since(start),
              report.skipped_lines
                  ? (", " + std::to_string(report.skipped_lines) + " bad lines skipped").c_str()
                  : "");
  std::printf("%s", format_stats(compute_stats(d)).c_str());
  return 0;
}

int text2xc(int argc, char** argv) {
  cxxopts::Options o("glide data text2xc",
                     "Turns a plain-text corpus (words separated by whitespace; a line is a "
                     "sentence) into an XC dataset for word2vec-style training: one point per "
                     "kept token, feature = the word's id, labels = the ids of the words within "
                     "the window. Also writes the vocabulary ('WORD COUNT' per line, line N = id "
                     "N-1).");
  o.add_options()("input", "corpus file (.zst read transparently)",
                  cxxopts::value<std::vector<std::string>>())(
      "o,output", "output dataset (.gds, .txt, .txt.zst)", cxxopts::value<std::string>())(
      "vocab", "vocabulary output (default: OUTPUT.vocab)", cxxopts::value<std::string>())(
      "window", "context words on each side", cxxopts::value<std::uint32_t>()->default_value("5"))(
      "min-count", "drop words seen fewer times",
      cxxopts::value<std::uint64_t>()->default_value("5"))(
      "max-vocab", "keep at most N most frequent words (0: no limit)",
      cxxopts::value<std::uint32_t>()->default_value("0"))(
      "subsample", "word2vec subsampling threshold t (0: keep every token)",
      cxxopts::value<double>()->default_value("1e-3"))(
      "seed", "random seed for subsampling", cxxopts::value<std::uint64_t>()->default_value("1"))(
      "threads", "threads (0: every core)", cxxopts::value<int>()->default_value("0"))(
      "level", "zstd level for .gds / .zst output", cxxopts::value<int>()->default_value("3"));
  o.parse_positional({"input"});
  o.positional_help("CORPUS");
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, r)) return 0;
  const std::string in = single_input(r, "corpus file");
  if (!r.count("output")) fail("missing -o/--output (see --help)");
  const std::string out = r["output"].as<std::string>();
  TextCorpusOptions c;
  c.window = r["window"].as<std::uint32_t>();
  c.min_count = r["min-count"].as<std::uint64_t>();
  c.max_vocab = r["max-vocab"].as<std::uint32_t>();
  c.subsample = r["subsample"].as<double>();
  c.seed = r["seed"].as<std::uint64_t>();
  c.threads = r["threads"].as<int>();
  const auto start = std::chrono::steady_clock::now();
  const TextCorpus corpus = read_text_corpus(in, c);
  std::fprintf(stderr,
               "%s: %llu words, %zu in the vocabulary (%llu tokens), %llu kept after subsampling\n",
               in.c_str(), static_cast<unsigned long long>(corpus.tokens), corpus.vocabulary.size(),
               static_cast<unsigned long long>(corpus.in_vocabulary),
               static_cast<unsigned long long>(corpus.kept));
  write_and_report(out, corpus.data, c.threads, r["level"].as<int>(), seconds_since(start));
  write_vocabulary(r.count("vocab") ? r["vocab"].as<std::string>() : out + ".vocab", corpus);
  return 0;
}

struct Sub {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};
const Sub kSubs[] = {
    {"synth", synth,
     "generate a synthetic dataset (XC or recommendation), optionally with a test split"},
    {"convert", convert, "convert between .gds, XC text and libsvm (.zst read and written)"},
    {"stats", stats, "print a dataset's statistics"},
    {"text2xc", text2xc, "turn a text corpus into a word2vec-style XC dataset"},
};

}  // namespace

int cmd_data(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::FILE* out = argc < 2 ? stderr : stdout;
    std::fprintf(out, "usage: glide data SUBCOMMAND [flags]\n\nsubcommands:\n");
    for (const auto& s : kSubs) std::fprintf(out, "  %-8s %s\n", s.name, s.help);
    std::fprintf(out,
                 "\n'glide data SUBCOMMAND --help' describes its flags. Formats: .gds (binary, "
                 "fast), XC repository text (header 'POINTS FEATURES LABELS'), libsvm; any text "
                 "may be zstd-compressed.\n");
    return argc < 2 ? 2 : 0;
  }
  for (const auto& s : kSubs) {
    if (std::strcmp(argv[1], s.name) != 0) continue;
    std::string name = std::string("glide data ") + s.name;
    std::vector<char*> args(argv + 1, argv + argc);
    args[0] = name.data();
    return s.run(static_cast<int>(args.size()), args.data());
  }
  fail("unknown subcommand '" + std::string(argv[1]) +
       "' (expected synth, convert, stats or text2xc)");
}

}  // namespace glide::cli
