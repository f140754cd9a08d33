// Reading, writing, checking and flag-setting of a Config: each is a walk of the field table
// (engine/config_fields.h) with a visitor, so no field is listed here.
#include "engine/config.h"

#include <cmath>
#include <cstdio>
#include <iterator>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "engine/config_fields.h"

namespace glide::engine {

using nlohmann::json;
using namespace config_fields;

namespace config_fields {

std::span<const Named<hashing::HashKind>> hash_kind_names() {
  using K = hashing::HashKind;
  static const Named<K> names[] = {{K::kSimHash, hashing::hash_kind_name(K::kSimHash)},
                                   {K::kWta, hashing::hash_kind_name(K::kWta)},
                                   {K::kDwta, hashing::hash_kind_name(K::kDwta)},
                                   {K::kDoph, hashing::hash_kind_name(K::kDoph)}};
  return names;
}
std::span<const Named<hashing::InsertPolicy>> insert_policy_names() {
  using P = hashing::InsertPolicy;
  static const Named<P> names[] = {{P::kFifo, hashing::insert_policy_name(P::kFifo)},
                                   {P::kReservoir, hashing::insert_policy_name(P::kReservoir)}};
  return names;
}
std::span<const Named<hashing::SampleStrategy>> sample_strategy_names() {
  using S = hashing::SampleStrategy;
  static const Named<S> names[] = {{S::kUnion, hashing::sample_strategy_name(S::kUnion)},
                                   {S::kTopK, hashing::sample_strategy_name(S::kTopK)},
                                   {S::kThreshold, hashing::sample_strategy_name(S::kThreshold)}};
  return names;
}

}  // namespace config_fields

namespace {

// Who an error blames: `name` (a key path, "config key 'x'" or a flag), in file `where` if any.
struct Source {
  std::string where;
  std::string name;
  [[noreturn]] void fail(const std::string& what) const {
    if (where.empty()) glide::fail(name + " " + what);
    glide::fail(where, name + " " + what);
  }
};

// --- names -------------------------------------------------------------------------------------

template <class Names, class E>
const char* name_in(const Names& names, E value) {
  for (const auto& n : names)
    if (n.value == value) return n.name;
  return nullptr;
}

template <class Names>
std::string name_list(const Names& names) {  // "a, b or c"
  std::string s;
  const std::size_t count = std::size(names);
  std::size_t i = 0;
  for (const auto& n : names) {
    if (i > 0) s += i + 1 == count ? " or " : ", ";
    s += n.name;
    ++i;
  }
  return s;
}

template <class Names>
auto parse_in(const Names& names, std::string_view text, const Source& source) {
  for (const auto& n : names)
    if (text == n.name) return n.value;
  source.fail("must be " + name_list(names) + ", got '" + std::string(text) + "'");
}

std::span<const Named<LossKind>> names_of(LossKind) {
  return kLossNames;
}
std::span<const Named<OutputSampling>> names_of(OutputSampling) {
  return kSamplingNames;
}
std::span<const Named<LshNegatives>> names_of(LshNegatives) {
  return kLshNegativesNames;
}
std::span<const Named<Optimizer>> names_of(Optimizer) {
  return kOptimizerNames;
}
std::span<const Named<TrainPrecision>> names_of(TrainPrecision) {
  return kTrainPrecisionNames;
}
std::span<const Named<LrSchedule>> names_of(LrSchedule) {
  return kLrScheduleNames;
}
std::span<const Named<SampledCorrection>> names_of(SampledCorrection) {
  return kSampledCorrectionNames;
}
std::span<const Named<hashing::HashKind>> names_of(hashing::HashKind) {
  return hash_kind_names();
}
std::span<const Named<hashing::InsertPolicy>> names_of(hashing::InsertPolicy) {
  return insert_policy_names();
}
std::span<const Named<hashing::SampleStrategy>> names_of(hashing::SampleStrategy) {
  return sample_strategy_names();
}

template <class E>
const char* name_of(E value) {
  const char* n = name_in(names_of(value), value);
  return n ? n : "?";
}

// --- ranges ------------------------------------------------------------------------------------

bool bounded(const Range& r) {
  return std::isfinite(r.min) || std::isfinite(r.max);
}
bool contains(const Range& r, double v) {  // false for NaN
  return (r.min_open ? v > r.min : v >= r.min) && (r.max_open ? v < r.max : v <= r.max);
}
std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
// "in 1..32" (integers), "in (0, 1]", "> 0", ">= 1".
std::string range_text(const Range& r, bool integer) {
  if (!std::isfinite(r.max)) return (r.min_open ? "> " : ">= ") + number_text(r.min);
  if (!std::isfinite(r.min)) return (r.max_open ? "< " : "<= ") + number_text(r.max);
  if (integer && !r.min_open && !r.max_open)
    return "in " + number_text(r.min) + ".." + number_text(r.max);
  return std::string("in ") + (r.min_open ? "(" : "[") + number_text(r.min) + ", " +
         number_text(r.max) + (r.max_open ? ")" : "]");
}

template <class T>
void check_number(T value, const Range& r, const Source& source, const char* what = "") {
  if (!bounded(r) || contains(r, static_cast<double>(value))) return;
  const std::string got =
      std::is_integral_v<T> ? std::to_string(value) : number_text(static_cast<double>(value));
  source.fail(std::string(what) + "must be " + range_text(r, std::is_integral_v<T>) + ", got " +
              got);
}

void check_sizes(const std::vector<std::uint32_t>& sizes, const Range& r, const Source& source) {
  for (std::uint32_t s : sizes) check_number(s, r, source, "sizes ");
}

// --- JSON --------------------------------------------------------------------------------------

// The keys a struct's table has (for the unknown-key check).
struct KeyLister {
  std::vector<std::string_view> keys;
  template <class T>
  void number(T&, const FieldInfo& f) {
    keys.push_back(f.key);
  }
  template <class T>
  void sizes(T&, const FieldInfo& f) {
    keys.push_back(f.key);
  }
  template <class T, class Names>
  void choice(T&, const Names&, const FieldInfo& f) {
    keys.push_back(f.key);
  }
  template <class T>
  void section(T&, const FieldInfo& f) {
    keys.push_back(f.key);
  }
  template <class T>
  void list(T&, const FieldInfo& f) {
    keys.push_back(f.key);
  }
};

template <class S>
void read_object(const json& j, S& out, const std::string& file, const std::string& path);

// Reads the keys present in one JSON object into the fields of a struct, checking each value's
// type, name or range; `path` ("network.lsh.") prefixes the keys in errors.
class JsonReader {
 public:
  JsonReader(const json& j, const std::string& file, const std::string& path)
      : j_(j), file_(file), path_(path) {}

  template <class T>
  void number(T& out, const FieldInfo& f) {
    if (const json* v = find(f.key)) {
      const T value = get<T>(*v, f.key);
      check_number(value, f.range, source(f.key));
      out = value;
    }
  }
  void sizes(std::vector<std::uint32_t>& out, const FieldInfo& f) {
    if (const json* v = find(f.key)) {
      auto sizes = get<std::vector<std::uint32_t>>(*v, f.key);
      check_sizes(sizes, f.range, source(f.key));
      out = std::move(sizes);
    }
  }
  template <class E, class Names>
  void choice(E& out, const Names& names, const FieldInfo& f) {
    if (const json* v = find(f.key))
      out = parse_in(names, get<std::string>(*v, f.key), source(f.key));
  }
  template <class S>
  void section(S& out, const FieldInfo& f) {
    if (const json* v = find(f.key)) read_object(*v, out, file_, path_ + f.key + ".");
  }
  // Replaces the list; keys left out of an entry keep the entry type's defaults.
  template <class S>
  void list(std::vector<S>& out, const FieldInfo& f) {
    const json* v = find(f.key);
    if (!v) return;
    if (!v->is_array()) source(f.key).fail("must be a JSON array");
    out.assign(v->size(), S{});
    for (std::size_t i = 0; i < out.size(); ++i)
      read_object((*v)[i], out[i], file_, path_ + f.key + "[" + std::to_string(i) + "].");
  }

 private:
  const json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  Source source(const char* key) const { return {file_, "config key '" + path_ + key + "'"}; }
  template <class T>
  T get(const json& v, const char* key) const {
    try {
      return v.get<T>();
    } catch (const json::exception&) {
      source(key).fail("has the wrong type (" + v.dump() + ")");
    }
  }

  const json& j_;
  const std::string& file_;
  const std::string path_;
};

template <class S>
void read_object(const json& j, S& out, const std::string& file, const std::string& path) {
  if (!j.is_object())
    fail(file,
         (path.empty() ? "the config" : "config key '" + path.substr(0, path.size() - 1) + "'") +
             " must be a JSON object");
  KeyLister known;
  visit_fields(std::as_const(out), known);
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known.keys) ok |= it.key() == k;
    if (!ok) fail(file, "unknown config key '" + path + it.key() + "'");
  }
  JsonReader reader(j, file, path);
  visit_fields(out, reader);
}

template <class S>
json write_object(const S& s);

struct JsonWriter {
  json& j;
  template <class T>
  void number(const T& v, const FieldInfo& f) {
    if (f.written) j[f.key] = v;
  }
  void sizes(const std::vector<std::uint32_t>& v, const FieldInfo& f) {
    if (f.written) j[f.key] = v;
  }
  template <class E, class Names>
  void choice(const E& v, const Names& names, const FieldInfo& f) {
    const char* n = name_in(names, v);
    if (f.written) j[f.key] = n ? n : "?";
  }
  template <class S>
  void section(const S& v, const FieldInfo& f) {
    if (f.written) j[f.key] = write_object(v);
  }
  template <class S>
  void list(const std::vector<S>& v, const FieldInfo& f) {
    if (!f.written) return;
    json a = json::array();
    for (const S& s : v) a.push_back(write_object(s));
    j[f.key] = std::move(a);
  }
};

template <class S>
json write_object(const S& s) {
  json j = json::object();
  JsonWriter w{j};
  visit_fields(s, w);
  return j;
}

// --- validation --------------------------------------------------------------------------------

// Checks every field against its range (and names), naming it by its key path.
struct Checker {
  std::string path;  // "network.lsh."
  template <class T>
  void number(const T& v, const FieldInfo& f) {
    if (f.checked) check_number(v, f.range, {"", path + f.key});
  }
  void sizes(const std::vector<std::uint32_t>& v, const FieldInfo& f) {
    check_sizes(v, f.range, {"", path + f.key});
  }
  template <class E, class Names>
  void choice(const E& v, const Names& names, const FieldInfo& f) {
    if (!name_in(names, v)) Source{"", path + f.key}.fail("must be " + name_list(names));
  }
  template <class S>
  void section(const S& v, const FieldInfo& f) {
    if (!f.checked) return;
    Checker sub{path + f.key + "."};
    visit_fields(v, sub);
  }
  template <class S>
  void list(const std::vector<S>& v, const FieldInfo& f) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      Checker sub{path + f.key + "[" + std::to_string(i) + "]."};
      visit_fields(v[i], sub);
    }
  }
};

// --- flags -------------------------------------------------------------------------------------

// Collects the fields that have a flag; lists (per-layer settings) are not entered.
struct FlagLister {
  std::string path;
  std::vector<ConfigFlag>& out;
  void add(const FieldInfo& f, ConfigFlag::Type type) {
    if (f.flag) out.push_back({f.flag, path + f.key, f.help, type});
  }
  template <class T>
  void number(const T&, const FieldInfo& f) {
    using Type = ConfigFlag::Type;
    add(f, std::is_same_v<T, double>          ? Type::kReal
           : std::is_same_v<T, std::uint64_t> ? Type::kU64
                                              : Type::kU32);
  }
  template <class T>
  void sizes(const T&, const FieldInfo& f) {
    add(f, ConfigFlag::Type::kText);
  }
  template <class T, class Names>
  void choice(const T&, const Names&, const FieldInfo& f) {
    add(f, ConfigFlag::Type::kText);
  }
  template <class S>
  void section(const S& v, const FieldInfo& f) {
    FlagLister sub{path + f.key + ".", out};
    visit_fields(v, sub);
  }
  template <class S>
  void list(const S&, const FieldInfo&) {}
};

// Sets the one field whose flag is `flag`.
struct FlagSetter {
  std::string_view flag;
  const FlagValue& value;
  bool found = false;

  bool mine(const FieldInfo& f) {
    if (!f.flag || f.flag != flag) return false;
    found = true;
    return true;
  }
  // As typed: cxxopts takes one-letter flags as -K.
  Source source() const { return {"", (flag.size() == 1 ? "-" : "--") + std::string(flag)}; }
  template <class T>
  const T& value_as() const {
    const T* v = std::get_if<T>(&value);
    if (!v) source().fail("was given a value of the wrong type");
    return *v;
  }
  template <class T>
  void number(T& out, const FieldInfo& f) {
    if (!mine(f)) return;
    check_number(value_as<T>(), f.range, source());
    out = value_as<T>();
  }
  // "1024,512,128".
  void sizes(std::vector<std::uint32_t>& out, const FieldInfo& f) {
    if (!mine(f)) return;
    const std::string& text = value_as<std::string>();
    std::vector<std::uint32_t> sizes;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
      std::size_t used = 0;
      unsigned long v = 0;
      try {
        v = std::stoul(item, &used);
      } catch (const std::exception&) {
      }
      if (used == 0 || used != item.size() || item[0] == '-' || v > 0xFFFFFFFFul)
        source().fail("expects sizes like 128 or 1024,512,128, got '" + text + "'");
      sizes.push_back(static_cast<std::uint32_t>(v));
    }
    if (sizes.empty()) source().fail("expects at least one size");
    check_sizes(sizes, f.range, source());
    out = std::move(sizes);
  }
  template <class E, class Names>
  void choice(E& out, const Names& names, const FieldInfo& f) {
    if (mine(f)) out = parse_in(names, value_as<std::string>(), source());
  }
  template <class S>
  void section(S& v, const FieldInfo&) {
    visit_fields(v, *this);
  }
  template <class S>
  void list(S&, const FieldInfo&) {}
};

}  // namespace

// --- the interface -----------------------------------------------------------------------------

const char* name(OutputSampling s) {
  return name_of(s);
}
const char* name(LshNegatives n) {
  return name_of(n);
}
const char* name(LossKind l) {
  return name_of(l);
}
const char* name(Optimizer o) {
  return name_of(o);
}
const char* name(TrainPrecision p) {
  return name_of(p);
}
const char* name(LrSchedule s) {
  return name_of(s);
}
const char* name(SampledCorrection c) {
  return name_of(c);
}
const char* name(hashing::HashKind k) {
  return name_of(k);
}
const char* name(hashing::InsertPolicy p) {
  return name_of(p);
}
const char* name(hashing::SampleStrategy s) {
  return name_of(s);
}

template <class E>
E parse_enum(std::string_view text, const std::string& what) {
  return parse_in(names_of(E{}), text, Source{"", what});
}
template OutputSampling parse_enum(std::string_view, const std::string&);
template LshNegatives parse_enum(std::string_view, const std::string&);
template LossKind parse_enum(std::string_view, const std::string&);
template Optimizer parse_enum(std::string_view, const std::string&);
template TrainPrecision parse_enum(std::string_view, const std::string&);
template LrSchedule parse_enum(std::string_view, const std::string&);
template SampledCorrection parse_enum(std::string_view, const std::string&);
template hashing::HashKind parse_enum(std::string_view, const std::string&);
template hashing::InsertPolicy parse_enum(std::string_view, const std::string&);
template hashing::SampleStrategy parse_enum(std::string_view, const std::string&);

double parse_wide_norm_power(std::string_view text, const std::string& what) {
  return parse_in(kWideNormPowerNames, text, Source{"", what});
}
const char* wide_norm_power_name(double power) {
  return name_in(kWideNormPowerNames, power);
}
double parse_wide_share_rounds(std::string_view text, const std::string& what) {
  return parse_in(kWideShareRoundsNames, text, Source{"", what});
}
const char* wide_share_rounds_name(double rounds) {
  return name_in(kWideShareRoundsNames, rounds);
}
double parse_wide_contrast(std::string_view text, const std::string& what) {
  return parse_in(kWideContrastNames, text, Source{"", what});
}
const char* wide_contrast_name(double contrast) {
  return name_in(kWideContrastNames, contrast);
}

OutputSampling parse_sampling(const std::string& s) {
  return parse_enum<OutputSampling>(s, "output sampling");
}
LossKind parse_loss(const std::string& s) {
  return parse_enum<LossKind>(s, "loss");
}

std::string to_json(const Config& c, int indent) {
  return write_object(c).dump(indent);
}

void merge_json(Config& c, const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    fail(where, std::string("invalid JSON: ") + e.what());
  }
  read_object(j, c, where, "");
}

Config config_from_json(const std::string& text, const std::string& where) {
  Config c;
  merge_json(c, text, where);
  return c;
}

void validate(const NetworkConfig& c) {
  Checker fields{"network."};
  visit_fields(c, fields);
  if (c.hidden.empty()) fail("network.hidden needs at least one hidden layer");
  if (!c.hidden_sampling.empty() && c.hidden_sampling.size() != c.hidden.size())
    fail("network.hidden_sampling needs one entry per hidden layer (" +
         std::to_string(c.hidden.size()) + "), got " + std::to_string(c.hidden_sampling.size()));
  if (!c.hidden_sampling.empty() && c.hidden_sampling[0].sampled)
    fail(
        "network.hidden_sampling[0].mode: the first hidden layer reads the sparse input and must "
        "be dense (its weights are stored one row per input feature)");
}

void validate(const TrainConfig& c) {
  Checker fields{"train."};
  visit_fields(c, fields);
}

TrainConfig with_network_defaults(TrainConfig train, WideMode wide) {
  const auto fill = [leads = wide_leads(wide)](double& v, double beside_wide, double alone) {
    if (v == 0) v = leads ? beside_wide : alone;
  };
  fill(train.output_lr, 0.002, 0.035);
  fill(train.output_eps, 0.1, 1e-7);
  fill(train.lr, 3e-4, 0.01);
  fill(train.wide_lr, 0.05, 0.5);
  return train;
}

const std::vector<ConfigFlag>& config_flags() {
  static const std::vector<ConfigFlag> flags = [] {
    std::vector<ConfigFlag> out;
    FlagLister lister{"", out};
    const Config defaults;
    visit_fields(defaults, lister);
    return out;
  }();
  return flags;
}

void set_config_flag(Config& c, std::string_view flag, const FlagValue& value) {
  FlagSetter setter{flag, value};
  visit_fields(c, setter);
  if (!setter.found) fail("'" + std::string(flag) + "' is not a config flag");
}

}  // namespace glide::engine
