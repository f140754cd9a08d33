// The glide command line: dispatches to a subcommand; every error becomes one clear line.
#include <cctype>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "apps/commands.h"
#include "common/error.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};

const Command kCommands[] = {
    {"data", glide::cli::cmd_data, "datasets: synth, convert, stats, text2xc"},
    {"train", glide::cli::cmd_train, "train a sparse network"},
    {"eval", glide::cli::cmd_eval, "P@k and nDCG@k of a model on a test set"},
    {"predict", glide::cli::cmd_predict, "top-k labels for inputs on stdin"},
    {"index", glide::cli::cmd_index, "build a model's output index for sampled inference"},
    {"quantize", glide::cli::cmd_quantize, "an fp32 model to an int8 or bf16 inference model"},
    {"serve", glide::cli::cmd_serve, "serve models over HTTP (REST, KServe v2, metrics)"},
    {"report", glide::cli::cmd_report, "time-to-accuracy chart and table from training logs"},
    {"bench", glide::cli::cmd_bench,
     "benchmarks: data, train, hidden, serve, infer, quant, cache, hash"},
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "glide: train and serve very large sparse neural networks on CPUs\n\n"
               "usage: glide COMMAND [ARGS...]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-8s %s\n", c.name, c.help);
  std::fprintf(out, "  %-8s %s\n", "version", "print glide's version (also --version)");
  std::fprintf(out, "\n'glide COMMAND --help' describes a command's flags.\n");
}

// cxxopts says "Argument 'abc' failed to parse" without the flag. The flag is found in the
// command line: the first "--flag=VALUE", "-fVALUE" or "--flag VALUE" whose value is the one the
// message names. Returns "invalid value 'abc' for --flag", or cxxopts' message when no flag is.
std::string describe_bad_value(const cxxopts::exceptions::incorrect_argument_type& e, int argc,
                               char** argv) {
  const auto named = [&](const std::string& value) {
    return std::strcmp(cxxopts::exceptions::incorrect_argument_type(value).what(), e.what()) == 0;
  };
  const auto message = [](const std::string& flag, const std::string& value) {
    return "invalid value '" + value + "' for " + flag;
  };
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.size() < 2 || a[0] != '-' || a == "--") continue;
    const std::size_t eq = a.find('=');
    if (eq != std::string::npos) {
      if (named(a.substr(eq + 1))) return message(a.substr(0, eq), a.substr(eq + 1));
      continue;
    }
    if (a[1] != '-' && a.size() > 2 && named(a.substr(2)))
      return message(a.substr(0, 2), a.substr(2));
    if (i + 1 < argc && named(argv[i + 1])) return message(a, argv[i + 1]);
  }
  return e.what();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0) {
    std::printf("glide %s\n", GLIDE_CLI_VERSION);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    std::string name = std::string("glide ") + c.name;
    // cxxopts takes one-letter names as short options only; accept the documented "--k 5",
    // "--K 6" and "--L 50" (and "--k=5") by rewriting them to "-k 5".
    std::vector<std::string> storage;
    storage.reserve(2 * argc);
    std::vector<char*> args{name.data()};
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (a.size() >= 3 && a.compare(0, 2, "--") == 0 &&
          std::isalpha(static_cast<unsigned char>(a[2])) && (a.size() == 3 || a[3] == '=')) {
        storage.push_back(a.substr(1, 2));
        args.push_back(storage.back().data());
        if (a.size() > 3) {
          storage.push_back(a.substr(4));
          args.push_back(storage.back().data());
        }
      } else {
        args.push_back(argv[i]);
      }
    }
    try {
      return c.run(static_cast<int>(args.size()), args.data());
    } catch (const glide::Error& e) {
      std::fprintf(stderr, "glide %s: error: %s\n", c.name, e.what());
    } catch (const cxxopts::exceptions::incorrect_argument_type& e) {
      std::fprintf(stderr, "glide %s: error: %s (see 'glide %s --help')\n", c.name,
                   describe_bad_value(e, argc, argv).c_str(), c.name);
    } catch (const cxxopts::exceptions::exception& e) {
      std::fprintf(stderr, "glide %s: error: %s (see 'glide %s --help')\n", c.name, e.what(),
                   c.name);
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "glide %s: error: out of memory\n", c.name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "glide %s: error: %s\n", c.name, e.what());
    }
    return 1;
  }
  std::fprintf(stderr, "glide: unknown command '%s' (see 'glide --help')\n", argv[1]);
  return 2;
}
