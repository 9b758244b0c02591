#include "kotsu/tune/space.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {

double number(const nlohmann::json& v, const std::string& source, const std::string& field) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {  // YAML may hand "1e-5" over as a string
    try {
      size_t used = 0;
      const double d = std::stod(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size()) return d;
    } catch (const std::exception&) {
    }
  }
  throw Error(source, field, "must be a number, got " + v.dump());
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(s.begin());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// "8" -> 8, "0.5" -> 0.5, "true" -> true, anything else -> the string.
nlohmann::json scalar(const std::string& s) {
  if (s == "true") return true;
  if (s == "false") return false;
  try {
    size_t used = 0;
    const long long i = std::stoll(s, &used);
    if (used == s.size()) return i;
    const double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (const std::exception&) {
  }
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  return out;
}

void validate(Param& p, const std::string& source) {
  const std::string field = "search." + p.name;
  if (p.kind == Param::Kind::Categorical) {
    if (p.choices.empty()) throw Error(source, field, "a categorical parameter needs choices");
    return;
  }
  if (!(p.low <= p.high)) throw Error(source, field, fmt::format("low {} is above high {}", p.low, p.high));
  if (p.log && p.low <= 0) throw Error(source, field, "a log-scale parameter needs low > 0");
  if (p.log && p.step > 0 && p.kind == Param::Kind::Float) throw Error(source, field, "log and step cannot be combined");
  if (p.step < 0) throw Error(source, field, "step must be > 0");
  if (p.kind == Param::Kind::Int) {
    if (p.low != std::floor(p.low) || p.high != std::floor(p.high)) throw Error(source, field, "int bounds must be whole numbers");
    if (p.step == 0) p.step = 1;
    if (p.step != std::floor(p.step)) throw Error(source, field, "an int step must be a whole number");
  }
}

}  // namespace

double Param::internal_low() const {
  if (kind == Kind::Categorical) return 0;
  if (log) return std::log(kind == Kind::Int ? low - 0.5 : low);
  return step > 0 ? low - 0.5 * step : low;
}

double Param::internal_high() const {
  if (kind == Kind::Categorical) return static_cast<double>(choices.size()) - 1;
  if (log) return std::log(kind == Kind::Int ? high + 0.5 : high);
  return step > 0 ? high + 0.5 * step : high;
}

double Param::internal_step() const { return kind == Kind::Categorical || log ? 0.0 : step; }

double Param::to_internal(const nlohmann::json& value) const {
  if (kind == Kind::Categorical) {
    for (size_t i = 0; i < choices.size(); ++i)
      if (choices[i] == value) return static_cast<double>(i);
    throw Error("", name, "value " + value.dump() + " is not among the choices");
  }
  const double v = value.get<double>();
  return log ? std::log(v) : v;
}

nlohmann::json Param::from_internal(double x) const {
  if (kind == Kind::Categorical) {
    const auto i = static_cast<size_t>(std::clamp(std::lround(x), 0L, static_cast<long>(choices.size()) - 1));
    return choices[i];
  }
  double v = log ? std::exp(x) : x;
  if (step > 0) v = std::round((v - low) / step) * step + low;
  else if (kind == Kind::Int) v = std::round(v);
  v = std::clamp(v, low, high);
  if (kind == Kind::Int) return static_cast<int64_t>(std::llround(v));
  return v;
}

bool Param::contains(const nlohmann::json& value) const {
  if (kind == Kind::Categorical) return std::find(choices.begin(), choices.end(), value) != choices.end();
  if (!value.is_number()) return false;
  const double v = value.get<double>();
  if (v < low || v > high) return false;
  if (kind == Kind::Int && !value.is_number_integer()) return false;
  if (step > 0) {
    const double k = (v - low) / step;
    if (std::abs(k - std::round(k)) > 1e-6) return false;
  }
  return true;
}

const Param* SearchSpace::find(const std::string& name) const {
  for (const auto& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

bool SearchSpace::active(const Param& p, const nlohmann::json& values) const {
  if (p.parent.empty()) return true;
  if (!values.contains(p.parent)) return false;
  const Param* parent = find(p.parent);
  if (parent && !active(*parent, values)) return false;
  return std::find(p.parent_values.begin(), p.parent_values.end(), values[p.parent]) != p.parent_values.end();
}

void SearchSpace::check(const nlohmann::json& values, const std::string& source) const {
  if (!values.is_object()) throw Error(source, "params", "not an object");
  for (const auto& p : params) {
    const bool on = active(p, values);
    if (on && !values.contains(p.name)) throw Error(source, "params." + p.name, "missing");
    if (!on && values.contains(p.name)) throw Error(source, "params." + p.name, "set although its condition does not hold");
    if (on && !p.contains(values[p.name])) throw Error(source, "params." + p.name, "value " + values[p.name].dump() + " is outside the search space");
  }
  for (auto& [k, v] : values.items())
    if (!find(k)) throw Error(source, "params." + k, "not in the search space");
}

SearchSpace SearchSpace::from_json(const nlohmann::json& search, const std::string& source) {
  if (!search.is_object() || search.empty()) throw Error(source, "search", "must be a map of parameter name -> {type, ...}");
  std::vector<Param> parsed;
  for (auto& [name, spec] : search.items()) {
    const std::string field = "search." + name;
    if (!spec.is_object()) throw Error(source, field, "must be a map with a type");
    Param p;
    p.name = name;
    const std::string type = spec.value("type", std::string());
    for (auto& [k, v] : spec.items())
      if (k != "type" && k != "low" && k != "high" && k != "log" && k != "step" && k != "choices" && k != "when")
        throw Error(source, field + "." + k, "unknown key (type, low, high, log, step, choices, when)");
    if (type == "float" || type == "int") {
      p.kind = type == "float" ? Param::Kind::Float : Param::Kind::Int;
      if (!spec.contains("low") || !spec.contains("high")) throw Error(source, field, "needs low and high");
      p.low = number(spec["low"], source, field + ".low");
      p.high = number(spec["high"], source, field + ".high");
      if (spec.contains("step")) p.step = number(spec["step"], source, field + ".step");
      if (spec.contains("log")) {
        if (!spec["log"].is_boolean()) throw Error(source, field + ".log", "must be true or false");
        p.log = spec["log"].get<bool>();
      }
    } else if (type == "categorical") {
      p.kind = Param::Kind::Categorical;
      if (!spec.contains("choices") || !spec["choices"].is_array()) throw Error(source, field + ".choices", "must be a list");
      for (const auto& c : spec["choices"]) p.choices.push_back(c);
    } else {
      throw Error(source, field + ".type", "must be float, int or categorical, got '" + type + "'");
    }
    if (spec.contains("when")) {
      const auto& w = spec["when"];
      if (!w.is_object() || w.size() != 1) throw Error(source, field + ".when", "must name one parent: {parent: value or [values]}");
      p.parent = w.begin().key();
      const auto& v = w.begin().value();
      if (v.is_array()) for (const auto& x : v) p.parent_values.push_back(x);
      else p.parent_values.push_back(v);
    }
    validate(p, source);
    parsed.push_back(std::move(p));
  }
  // parents before children (whatever the order of the map's keys); a missing parent or a cycle is refused
  SearchSpace s;
  while (!parsed.empty()) {
    const size_t before = parsed.size();
    for (auto it = parsed.begin(); it != parsed.end();) {
      if (it->parent.empty() || s.find(it->parent)) {
        if (!it->parent.empty()) {
          const Param* parent = s.find(it->parent);
          for (const auto& x : it->parent_values)
            if (!parent->contains(x)) throw Error(source, "search." + it->name + ".when", x.dump() + " is not a value of " + it->parent);
        }
        s.params.push_back(std::move(*it));
        it = parsed.erase(it);
      } else {
        ++it;
      }
    }
    if (parsed.size() == before) {
      const Param& p = parsed.front();
      throw Error(source, "search." + p.name + ".when",
                  std::find_if(parsed.begin(), parsed.end(), [&](const Param& q) { return q.name == p.parent; }) == parsed.end()
                      ? "parent '" + p.parent + "' is not in the search space"
                      : "conditions form a cycle");
    }
  }
  return s;
}

SearchSpace SearchSpace::from_specs(const std::vector<std::string>& specs) {
  nlohmann::json search = nlohmann::json::object();
  for (const auto& raw : specs) {
    const std::string src = "--param " + raw;
    const auto bar = raw.find('|');
    const std::string def = trim(raw.substr(0, bar));
    const auto eq = def.find('=');
    const auto open = def.find('('), close = def.rfind(')');
    if (eq == std::string::npos || open == std::string::npos || close != def.size() - 1 || open < eq)
      throw Error(src, "", "expected NAME=KIND(ARGS)[|PARENT=VALUE[,VALUE...]] with KIND float, log, int, intlog or cat");
    const std::string name = trim(def.substr(0, eq)), kind = trim(def.substr(eq + 1, open - eq - 1));
    const auto args = split(def.substr(open + 1, close - open - 1), ',');
    nlohmann::json spec;
    if (kind == "cat") {
      spec["type"] = "categorical";
      spec["choices"] = nlohmann::json::array();
      for (const auto& a : args) spec["choices"].push_back(scalar(a));
    } else if (kind == "float" || kind == "log" || kind == "int" || kind == "intlog") {
      if (args.size() != 2 && args.size() != 3) throw Error(src, "", kind + "(low, high[, step]) takes two or three numbers");
      spec["type"] = kind == "float" || kind == "log" ? "float" : "int";
      spec["low"] = scalar(args[0]);
      spec["high"] = scalar(args[1]);
      if (args.size() == 3) spec["step"] = scalar(args[2]);
      if (kind == "log" || kind == "intlog") spec["log"] = true;
    } else {
      throw Error(src, "", "unknown kind '" + kind + "' (float, log, int, intlog, cat)");
    }
    if (bar != std::string::npos) {
      const std::string cond = trim(raw.substr(bar + 1));
      const auto ceq = cond.find('=');
      if (ceq == std::string::npos) throw Error(src, "", "a condition reads PARENT=VALUE[,VALUE...]");
      nlohmann::json vals = nlohmann::json::array();
      for (const auto& v : split(cond.substr(ceq + 1), ',')) vals.push_back(scalar(v));
      spec["when"] = {{trim(cond.substr(0, ceq)), vals}};
    }
    if (search.contains(name)) throw Error(src, "", "parameter '" + name + "' given twice");
    search[name] = spec;
  }
  return from_json(search, "--param");
}

nlohmann::json SearchSpace::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& p : params) {
    nlohmann::json spec;
    if (p.kind == Param::Kind::Categorical) {
      spec = {{"type", "categorical"}, {"choices", p.choices}};
    } else {
      spec = {{"type", p.kind == Param::Kind::Float ? "float" : "int"}, {"low", p.low}, {"high", p.high}};
      if (p.kind == Param::Kind::Int) spec["low"] = static_cast<int64_t>(p.low), spec["high"] = static_cast<int64_t>(p.high);
      if (p.log) spec["log"] = true;
      if (p.step > 0 && !(p.kind == Param::Kind::Int && p.step == 1)) spec["step"] = p.step;
    }
    if (!p.parent.empty()) spec["when"] = {{p.parent, p.parent_values}};
    out[p.name] = spec;
  }
  return out;
}

}  // namespace kotsu
