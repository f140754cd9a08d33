// `glide report`: time-to-accuracy charts (gnuplot) and a summary table from `glide train
// --log-jsonl` runs and peer results (benchmarks/peers writes peers.json).
//
// A run's JSONL holds "eval" records {seconds, samples, p1, p5, psp5, eval_seconds} (and
// "progress" records, and an optional "meta" record {name, peak_rss_mb} that benchmarks/peers
// appends).
// `seconds` in glide's log is wall time since the start of training, so it includes the time of
// the evaluations before it; the report subtracts those (eval_seconds) to put glide's curve on
// the same footing as the peers', whose train_seconds never include evaluation.
//
// A "setup" record {seconds} follows: the time glide train took before its first batch (reading
// the training data, the wide layer's start and check). It counts as training time: the run's
// curve starts there, as a peer's time includes its own reading and set-up; samples/s is over the
// batches' time and samples alone (older logs' setup records have "samples": those a setup
// trained that the run went on from).
//
// glide train starts each log with a "start" record {resume, samples}. A file holding several
// runs (older glide appended to the log) is reported by its last run: a run starts at a "start"
// record without "resume" or where `seconds` goes back. A resumed run ("resume": true) continues
// the curve of the run before it, its seconds counted on from there.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "common/error.h"
#include "common/file_util.h"

namespace glide::cli {

namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Point {
  double seconds = 0;  // training wall time, evaluation excluded
  double samples = kNaN;
  double p1 = 0;
  double p5 = kNaN;
  double psp5 = kNaN;  // PSP@5, where the record has it
};

// Training loss at a moment of a glide run (progress records).
struct LossPoint {
  double seconds = 0, samples = 0, loss = 0;
};

struct Series {
  std::string name;
  std::string source;  // file it came from
  bool glide = false;
  std::vector<Point> points;  // by increasing seconds
  std::vector<LossPoint> loss;
  double samples_per_second = kNaN;
  double setup_seconds = kNaN;  // glide runs: before their first batches (every segment's)
  double peak_rss_mb = kNaN;
};

std::string stem(const std::string& path) {
  std::string s = path.substr(path.find_last_of('/') + 1);
  for (const char* ext : {".jsonl", ".json", ".log"})
    if (ends_with(s, ext)) return s.substr(0, s.size() - std::string(ext).size());
  return s;
}

double number(const json& j, const char* key, const std::string& where, bool required) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(where, std::string("missing number '") + key + "'");
    return kNaN;
  }
  if (!it->is_number()) fail(where, std::string("'") + key + "' is not a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) fail(where, std::string("'") + key + "' is not finite");
  return v;
}

// One `glide train --log-jsonl` file (one run).
Series read_run(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot open");
  Series s;
  s.name = stem(path);
  s.source = path;
  s.glide = true;
  std::string line;
  std::size_t line_no = 0;
  double eval_total = 0;  // evaluation seconds of this run segment before the current record
  double last_seconds = -1;
  double last_samples = 0, last_train_seconds = 0;
  double segment_start = 0;  // training seconds before this segment (the runs it resumes)
  double setup_samples = 0;  // samples trained in setups (older logs' kept check networks)
  std::size_t runs = 1, last_run_line = 1;
  bool any_record = false;
  // A new run: what came before is another run's; a resumed one goes on from where it stopped.
  const auto start_segment = [&](bool resume) {
    if (!resume) {
      ++runs;
      last_run_line = line_no;
      s.points.clear();
      s.loss.clear();
      last_samples = last_train_seconds = setup_samples = 0;
      s.setup_seconds = kNaN;
    }
    segment_start = last_train_seconds;
    eval_total = 0;
    last_seconds = -1;
  };
  while (std::getline(in, line)) {
    ++line_no;
    const std::string where = path + ":" + std::to_string(line_no);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      std::string msg = e.what();
      const auto colon = msg.find(": ", msg.find("parse error"));
      fail(where,
           "malformed JSON (" + (colon == std::string::npos ? msg : msg.substr(colon + 2)) + ")");
    }
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
      fail(where, "expected a JSON object with a \"type\"");
    const std::string type = j["type"].get<std::string>();
    if (type == "meta") {
      if (j.contains("name")) {
        if (!j["name"].is_string()) fail(where, "'name' is not a string");
        s.name = j["name"].get<std::string>();
      }
      const double rss = number(j, "peak_rss_mb", where, false);
      if (!std::isnan(rss)) s.peak_rss_mb = rss;
      continue;
    }
    if (type == "start") {
      const auto resume = j.find("resume");
      if (resume != j.end() && !resume->is_boolean()) fail(where, "'resume' is not true or false");
      if (any_record) start_segment(resume != j.end() && resume->get<bool>());
      continue;
    }
    if (type == "setup") {
      const double setup = number(j, "seconds", where, true);
      if (setup < 0) fail(where, "'seconds' is negative");
      segment_start += setup;
      last_train_seconds += setup;
      s.setup_seconds = (std::isnan(s.setup_seconds) ? 0 : s.setup_seconds) + setup;
      const double trained = number(j, "samples", where, false);
      if (trained < 0) fail(where, "'samples' is negative");
      if (!std::isnan(trained)) setup_samples += trained;
      continue;
    }
    if (type != "eval" && type != "progress") continue;  // other records: not ours to judge
    const double seconds = number(j, "seconds", where, true);
    const double samples = number(j, "samples", where, true);
    if (seconds < last_seconds) start_segment(false);  // a log from before "start" records
    any_record = true;
    last_seconds = seconds;
    const double train_seconds = segment_start + std::max(0.0, seconds - eval_total);
    last_samples = samples;
    last_train_seconds = train_seconds;
    const double rss = number(j, "peak_rss_mb", where, false);
    if (!std::isnan(rss))
      s.peak_rss_mb = std::isnan(s.peak_rss_mb) ? rss : std::max(s.peak_rss_mb, rss);
    if (type == "progress") {
      const double loss = number(j, "loss", where, false);
      if (std::isfinite(loss)) s.loss.push_back({train_seconds, samples, loss});
    }
    if (type == "eval") {
      Point p;
      p.seconds = train_seconds;
      p.samples = samples;
      p.p1 = number(j, "p1", where, true);
      p.p5 = number(j, "p5", where, false);
      p.psp5 = number(j, "psp5", where, false);
      if (p.p1 < 0 || p.p1 > 1) fail(where, "'p1' is not within [0, 1]");
      if (p.psp5 < 0 || p.psp5 > 1) fail(where, "'psp5' is not within [0, 1]");
      s.points.push_back(p);
      const double es = number(j, "eval_seconds", where, false);
      if (!std::isnan(es)) eval_total += es;
    }
  }
  const double batch_seconds =
      last_train_seconds - (std::isnan(s.setup_seconds) ? 0 : s.setup_seconds);
  if (batch_seconds > 0 && last_samples > setup_samples)
    s.samples_per_second = (last_samples - setup_samples) / batch_seconds;
  if (runs > 1)
    std::fprintf(stderr, "%s: note: the file holds %zu runs; reporting the last (from line %zu)\n",
                 path.c_str(), runs, last_run_line);
  return s;
}

// peers.json: [{tool, config, epochs, train_seconds, p1, p5, psp5, samples, samples_per_second,
// peak_rss_mb}, ...]; entries with the same tool and config form one series.
std::vector<Series> read_peers(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  const std::string text(bytes.begin(), bytes.end());
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    const std::size_t at = std::min<std::size_t>(e.byte ? e.byte - 1 : 0, text.size());
    const std::size_t line = 1 + std::count(text.begin(), text.begin() + at, '\n');
    std::string msg = e.what();
    const auto colon = msg.find(": ", msg.find("parse error"));
    fail(path + ":" + std::to_string(line),
         "malformed JSON (" + (colon == std::string::npos ? msg : msg.substr(colon + 2)) + ")");
  }
  if (!j.is_array()) fail(path, "expected a JSON array of peer results");
  std::vector<Series> out;
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& e = j[i];
    const std::string where = path + ": entry " + std::to_string(i + 1);
    if (!e.is_object() || !e.contains("tool") || !e["tool"].is_string())
      fail(where, "expected an object with a string 'tool'");
    std::string name = e["tool"].get<std::string>();
    if (e.contains("config")) {
      if (!e["config"].is_string()) fail(where, "'config' is not a string");
      if (!e["config"].get<std::string>().empty())
        name += " (" + e["config"].get<std::string>() + ")";
    }
    auto [it, added] = index.emplace(name, out.size());
    if (added) {
      out.emplace_back();
      out.back().name = name;
      out.back().source = path;
    }
    Series& s = out[it->second];
    Point p;
    p.seconds = number(e, "train_seconds", where, true);
    p.p1 = number(e, "p1", where, true);
    if (p.p1 < 0 || p.p1 > 1) fail(where, "'p1' is not within [0, 1]");
    p.p5 = number(e, "p5", where, false);
    p.psp5 = number(e, "psp5", where, false);
    if (p.psp5 < 0 || p.psp5 > 1) fail(where, "'psp5' is not within [0, 1]");
    p.samples = number(e, "samples", where, false);
    const double sps = number(e, "samples_per_second", where, false);
    if (std::isnan(p.samples) && !std::isnan(sps)) p.samples = sps * p.seconds;
    s.points.push_back(p);
    // The series' figures come from its longest budget.
    const bool longest = std::all_of(s.points.begin(), s.points.end(),
                                     [&](const Point& q) { return q.seconds <= p.seconds; });
    if (longest && !std::isnan(sps)) s.samples_per_second = sps;
    const double rss = number(e, "peak_rss_mb", where, false);
    if (!std::isnan(rss))
      s.peak_rss_mb = std::isnan(s.peak_rss_mb) ? rss : std::max(rss, s.peak_rss_mb);
  }
  for (auto& s : out)
    std::stable_sort(s.points.begin(), s.points.end(),
                     [](const Point& a, const Point& b) { return a.seconds < b.seconds; });
  return out;
}

std::vector<double> parse_levels(const std::string& text) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(v > 0 && v <= 1))
      fail("--levels: expected P@1 levels in (0, 1] like 0.3,0.5,0.7, got '" + text + "'");
    out.push_back(v);
  }
  if (out.empty()) fail("--levels: expected at least one level");
  return out;
}

std::string fmt(const char* f, double v) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// The table: one row per series; the cells are strings.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

Table summary(const std::vector<Series>& all, const std::vector<double>& levels) {
  Table t;
  t.header.push_back("run");
  for (double l : levels) t.header.push_back("s to P@1 " + fmt("%g", l));
  for (const char* h :
       {"best P@1", "at s", "P@5 there", "PSP@5 there", "setup s", "samples/s", "peak MB"})
    t.header.push_back(h);
  for (const Series& s : all) {
    std::vector<std::string> row{s.name};
    for (double l : levels) {
      double first = kNaN;
      for (const Point& p : s.points)
        if (p.p1 >= l && (std::isnan(first) || p.seconds < first)) first = p.seconds;
      row.push_back(fmt("%.1f", first));
    }
    const Point* best = nullptr;
    for (const Point& p : s.points)
      if (!best || p.p1 > best->p1) best = &p;
    row.push_back(best ? fmt("%.4f", best->p1) : "-");
    row.push_back(best ? fmt("%.1f", best->seconds) : "-");
    row.push_back(best ? fmt("%.4f", best->p5) : "-");
    row.push_back(best ? fmt("%.4f", best->psp5) : "-");
    row.push_back(fmt("%.1f", s.setup_seconds));
    row.push_back(fmt("%.0f", s.samples_per_second));
    row.push_back(fmt("%.0f", s.peak_rss_mb));
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string markdown(const Table& t) {
  auto line = [](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (const auto& c : cells) s += " " + c + " |";
    return s + "\n";
  };
  std::string out = line(t.header) + "|";
  for (std::size_t i = 0; i < t.header.size(); ++i) out += i ? "---:|" : "---|";
  out += "\n";
  for (const auto& r : t.rows) out += line(r);
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A gnuplot string literal (single quotes: only '' needs escaping).
std::string gp_string(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else if (c != '\n' && c != '\r')
      out += c;
  }
  return out + "'";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string gnuplot_program() {
  const char* env = std::getenv("GLIDE_GNUPLOT");
  return env && *env ? env : "gnuplot";
}

// Renders the chart into `out_path` with `terminal` (gnuplot terminal line).
void plot(const std::vector<Series>& all, const std::string& terminal, const std::string& out_path,
          const std::string& title, bool logx) {
  const std::string gp = gnuplot_program();
  if (std::system((shell_quote(gp) + " --version >/dev/null 2>&1").c_str()) != 0)
    fail("gnuplot not found ('" + gp +
         "'): install it (apt-get install gnuplot-nox, or scripts/bootstrap), or point "
         "GLIDE_GNUPLOT at it");
  std::string script;
  script += terminal + "\n";
  script += "set output " + gp_string(out_path) + "\n";
  script += "set datafile missing 'NaN'\n";
  // $Si: P@1 points (seconds, samples, P@1); $Li: loss points (seconds, samples, loss).
  auto block = [&](const std::string& name, const auto& rows, auto value) {
    script += "$" + name + " << EOD\n";
    for (const auto& p : rows) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "%.6g %.6g %.6g\n", p.seconds, p.samples, value(p));
      script += buf;
    }
    if (rows.empty()) script += "NaN NaN NaN\n";
    script += "EOD\n";
  };
  for (std::size_t i = 0; i < all.size(); ++i) {
    block("S" + std::to_string(i), all[i].points, [](const Point& p) { return p.p1; });
    block("L" + std::to_string(i), all[i].loss, [](const LossPoint& p) { return p.loss; });
  }
  const bool any_p1 =
      std::any_of(all.begin(), all.end(), [](const Series& s) { return !s.points.empty(); });
  const bool any_loss =
      std::any_of(all.begin(), all.end(), [](const Series& s) { return !s.loss.empty(); });
  const int rows = (any_p1 ? 1 : 0) + (any_loss ? 1 : 0);
  script += "set multiplot layout " + std::to_string(std::max(rows, 1)) + ",2" +
            (title.empty() ? std::string() : " title " + gp_string(title)) + "\n";
  script += "set grid\nset key outside below maxrows 4\n";
  if (logx) script += "set logscale x\n";
  // One panel: `data` ("S" or "L") against x column `column` (1 seconds, 2 samples).
  auto plot_cmd = [&](const char* data, int column) {
    std::string cmd = "plot ";
    // Solid warm/blue lines for glide, dashed other colours with open markers for the peers.
    static const char* const kGlideColors[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd"};
    static const char* const kPeerColors[] = {"#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
                                              "#bcbd22", "#17becf", "#000000"};
    std::size_t glide_i = 0, peer_i = 0;
    bool first = true;
    const bool loss = data[0] == 'L';
    for (std::size_t i = 0; i < all.size(); ++i) {
      // Skip series that have nothing to draw in this panel (keeps gnuplot from erroring on
      // empty/NaN-only data with a log axis).
      const auto drawable = [&](const auto& p) {
        const double x = column == 1 ? p.seconds : p.samples;
        return std::isfinite(x) && (!logx || x > 0);
      };
      const bool any = loss ? std::any_of(all[i].loss.begin(), all[i].loss.end(), drawable)
                            : std::any_of(all[i].points.begin(), all[i].points.end(), drawable);
      const char* color = all[i].glide ? kGlideColors[glide_i++ % 4] : kPeerColors[peer_i % 7];
      const std::size_t peer = all[i].glide ? 0 : peer_i++;
      if (!any) continue;
      if (!first) cmd += ", \\\n  ";
      first = false;
      cmd += std::string("$") + data + std::to_string(i) + " using " + std::to_string(column) +
             ":3 with " + (loss ? "lines" : "linespoints");
      if (all[i].glide)
        cmd += std::string(" lw 2 pt 7 ps 0.6 dt 1 lc rgb '") + color + "'";
      else
        cmd += " lw 1 pt " + std::to_string(4 + 2 * (peer % 4)) + " ps 1.2 dt 2 lc rgb '" + color +
               "'";
      cmd += " title " + gp_string(all[i].name);
    }
    if (first) cmd = "set label 1 'no data' at graph 0.5, graph 0.5 center\nplot NaN notitle";
    return cmd + "\n";
  };
  const std::string log_note = logx ? " (log scale)" : "";
  for (const char* data : {"S", "L"}) {
    if (data[0] == 'S' ? !any_p1 : !any_loss) continue;
    script += data[0] == 'S' ? "set ylabel 'test P@1'\nset yrange [0:*]\n"
                             : "set ylabel 'training loss'\nset yrange [*:*]\n";
    script += "set xlabel 'training wall seconds" + log_note + "'\n" + plot_cmd(data, 1);
    script += "set xlabel 'samples seen" + log_note + "'\n" + plot_cmd(data, 2);
  }
  script += "unset multiplot\nset output\n";

  const std::string script_path = out_path + ".gp.tmp";
  const std::string err_path = out_path + ".gperr.tmp";
  {
    std::ofstream f(script_path);
    if (!f) fail(script_path, "cannot write");
    f << script;
    if (!f.flush()) fail(script_path, "cannot write");
  }
  const int rc = std::system(
      (shell_quote(gp) + " " + shell_quote(script_path) + " 2>" + shell_quote(err_path)).c_str());
  std::string err;
  {
    std::ifstream e(err_path);
    std::getline(e, err);
  }
  std::remove(err_path.c_str());
  if (rc != 0) {
    std::remove(out_path.c_str());
    fail("gnuplot failed" + (err.empty() ? std::string() : ": " + err) + " (script kept in " +
         script_path + ")");
  }
  std::remove(script_path.c_str());
}

std::string read_text(const std::string& path) {
  const auto b = read_file_bytes(path);
  return std::string(b.begin(), b.end());
}

}  // namespace

int cmd_report(int argc, char** argv) {
  cxxopts::Options o("glide report",
                     "Plots test P@1 against training wall seconds and against samples seen for "
                     "glide runs (glide train --log-jsonl files) and peer results (--peers, as "
                     "written by benchmarks/peers), and prints a summary table: time to reach "
                     "P@1 levels, best P@1, samples/s, peak memory. Output by name: .svg, .png "
                     "(gnuplot), or .html (a self-contained page: the SVG inline plus the table).");
  o.add_options()("runs", "glide train --log-jsonl files",
                  cxxopts::value<std::vector<std::string>>())("peers", "peer results (peers.json)",
                                                              cxxopts::value<std::string>())(
      "o,output", "report.svg, report.png or report.html (without: the table only)",
      cxxopts::value<std::string>())(
      "levels", "P@1 levels for the time-to-accuracy columns",
      cxxopts::value<std::string>()->default_value("0.3,0.5,0.6,0.7,0.75"))(
      "title", "chart title", cxxopts::value<std::string>()->default_value("Time to accuracy"))(
      "linear", "linear x axes (default: log scale)")(
      "table", "also write the summary table (Markdown) to this file",
      cxxopts::value<std::string>())("h,help", "this help");
  o.parse_positional({"runs"});
  o.positional_help("RUN.jsonl [RUN2.jsonl ...]");
  const auto r = o.parse(argc, argv);
  if (r.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  if (!r.unmatched().empty()) fail("unexpected argument '" + r.unmatched().front() + "'");
  if (!r.count("runs") && !r.count("peers"))
    fail("nothing to report: give RUN.jsonl files and/or --peers");
  const std::string out = r.count("output") ? r["output"].as<std::string>() : "";
  enum class Kind { kNone, kSvg, kPng, kHtml } kind = Kind::kNone;
  if (out.empty())
    kind = Kind::kNone;
  else if (ends_with(out, ".svg"))
    kind = Kind::kSvg;
  else if (ends_with(out, ".png"))
    kind = Kind::kPng;
  else if (ends_with(out, ".html") || ends_with(out, ".htm"))
    kind = Kind::kHtml;
  else
    fail(out, "unknown output type: name it .svg, .png or .html");
  const std::vector<double> levels = parse_levels(r["levels"].as<std::string>());

  std::vector<Series> all;
  if (r.count("runs"))
    for (const auto& path : r["runs"].as<std::vector<std::string>>()) all.push_back(read_run(path));
  if (r.count("peers"))
    for (auto& s : read_peers(r["peers"].as<std::string>())) all.push_back(std::move(s));
  if (std::all_of(all.begin(), all.end(),
                  [](const Series& s) { return s.points.empty() && s.loss.empty(); }))
    fail(
        "no P@1 or loss points in any input (glide runs log them with --log-jsonl; P@1 needs "
        "--test)");
  for (const Series& s : all)
    if (s.points.empty())
      std::fprintf(stderr, "glide report: note: %s: no P@1 points (no evaluation was logged)%s\n",
                   s.source.c_str(), s.loss.empty() ? "" : "; its loss is plotted");

  const Table table = summary(all, levels);
  const std::string md = markdown(table);
  std::printf("%s", md.c_str());
  if (r.count("table"))
    write_file_atomic(r["table"].as<std::string>(),
                      [&](std::FILE* f) { std::fputs(md.c_str(), f); });

  if (kind == Kind::kNone) return 0;  // the table alone
  const std::string title = r["title"].as<std::string>();
  const bool logx = r.count("linear") == 0;
  // Sized so that the text reads at 12-14 px where a page scales the chart to its width.
  const bool two_rows =
      std::any_of(all.begin(), all.end(), [](const Series& s) { return !s.points.empty(); }) &&
      std::any_of(all.begin(), all.end(), [](const Series& s) { return !s.loss.empty(); });
  const std::string size = two_rows ? "size 1100,900" : "size 1100,520";
  const char* font = "font 'sans,15'";
  if (kind == Kind::kPng) {
    const std::string tmp = out + ".tmp.png";
    plot(all, "set terminal pngcairo " + size + " noenhanced " + font, tmp, title, logx);
    if (std::rename(tmp.c_str(), out.c_str()) != 0) fail(out, "cannot rename into place");
  } else {
    const std::string tmp = out + ".tmp.svg";
    // The page shows the title as its heading: the chart does not repeat it.
    plot(all, "set terminal svg " + size + " dynamic noenhanced background 'white' " + font, tmp,
         kind == Kind::kHtml ? "" : title, logx);
    std::string svg = read_text(tmp);
    std::remove(tmp.c_str());
    // gnuplot names every SVG "Gnuplot".
    if (const auto at = svg.find("<title>Gnuplot</title>"); at != std::string::npos)
      svg.replace(at, 23, "<title>" + html_escape(title) + "</title>");
    if (kind == Kind::kSvg) {
      write_file_atomic(out, [&](std::FILE* f) { std::fwrite(svg.data(), 1, svg.size(), f); });
    } else {
      // Inline SVG: drop the XML prolog and doctype, keep from <svg on.
      const auto at = svg.find("<svg");
      if (at != std::string::npos) svg = svg.substr(at);
      std::string page =
          "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
          "</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
          "collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
          "td:first-child,th:first-child{text-align:left}svg{max-width:100%;height:auto}</style>"
          "</head><body>\n<h1>" +
          html_escape(title) + "</h1>\n" + svg +
          "\n<p>Training wall seconds exclude evaluation. \"-\": level not reached, or not "
          "known.</p>\n<table>\n<tr>";
      for (const auto& h : table.header) page += "<th>" + html_escape(h) + "</th>";
      page += "</tr>\n";
      for (const auto& row : table.rows) {
        page += "<tr>";
        for (const auto& c : row) page += "<td>" + html_escape(c) + "</td>";
        page += "</tr>\n";
      }
      page += "</table>\n<p>Sources:";
      std::vector<std::string> sources;
      for (const auto& s : all)
        if (std::find(sources.begin(), sources.end(), s.source) == sources.end())
          sources.push_back(s.source);
      for (const auto& s : sources) page += " " + html_escape(s) + ";";
      page += "</p>\n</body></html>\n";
      write_file_atomic(out, [&](std::FILE* f) { std::fwrite(page.data(), 1, page.size(), f); });
    }
  }
  std::fprintf(stderr, "wrote %s\n", out.c_str());
  return 0;
}

}  // namespace glide::cli
