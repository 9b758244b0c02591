#include "kotsu/tune/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/core/hash.hpp"

namespace kotsu {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::mt19937_64 trial_rng(uint64_t seed, int64_t number) { return std::mt19937_64(mix64(seed ^ mix64(static_cast<uint64_t>(number) + 1))); }

// log(Phi(b) - Phi(a)) for a < b, accurate in both tails.
double log_gauss_mass(double a, double b) {
  constexpr double r2 = 1.4142135623730951;
  double m;
  if (a >= 0) m = 0.5 * (std::erfc(a / r2) - std::erfc(b / r2));
  else if (b <= 0) m = 0.5 * (std::erfc(-b / r2) - std::erfc(-a / r2));
  else m = 1.0 - 0.5 * (std::erfc(-a / r2) + std::erfc(b / r2));
  return std::log(std::max(m, 1e-300));
}

// Optuna's default_weights: equal weights, older trials ramped down once there are more than 25.
std::vector<double> observation_weights(size_t n) {
  std::vector<double> w(n, 1.0);
  if (n >= 25) {
    const size_t ramp = n - 25;
    for (size_t i = 0; i < ramp; ++i) w[i] = ramp == 1 ? 1.0 / static_cast<double>(n) : 1.0 / static_cast<double>(n) + (1.0 - 1.0 / static_cast<double>(n)) * static_cast<double>(i) / static_cast<double>(ramp - 1);
  }
  return w;
}

// A Parzen estimator over a group of parameters, in their internal representation: one component per
// observation plus the prior (last).
struct Parzen {
  std::vector<const Param*> params;
  std::vector<double> weights;
  std::vector<std::vector<double>> mu, sigma;             // [param][component] (numerical)
  std::vector<std::vector<std::vector<double>>> probs;    // [param][component][choice] (categorical)
};

Parzen build_parzen(const std::vector<const Param*>& params, const std::vector<std::vector<double>>& obs, const TpeOptions& o) {
  Parzen z;
  z.params = params;
  const size_t n = obs.size(), d = params.size();
  z.weights = observation_weights(n);
  z.weights.push_back(o.prior_weight);
  const double total = std::accumulate(z.weights.begin(), z.weights.end(), 0.0);
  for (auto& w : z.weights) w /= total;
  z.mu.resize(d);
  z.sigma.resize(d);
  z.probs.resize(d);
  const double sigma0 = 0.2 * std::pow(static_cast<double>(std::max<size_t>(n, 1)), -1.0 / (static_cast<double>(d) + 4));
  for (size_t p = 0; p < d; ++p) {
    const Param& par = *params[p];
    if (par.kind == Param::Kind::Categorical) {
      const size_t c = par.choices.size();
      const double base = o.prior_weight / static_cast<double>(n + 1);
      z.probs[p].assign(n + 1, std::vector<double>(c, base));
      for (size_t k = 0; k < n; ++k) z.probs[p][k][static_cast<size_t>(std::lround(obs[k][p]))] += 1;
      for (auto& row : z.probs[p]) {
        const double s = std::accumulate(row.begin(), row.end(), 0.0);
        for (auto& v : row) v /= s;
      }
      continue;
    }
    const double lo = par.internal_low(), hi = par.internal_high(), range = hi - lo;
    std::vector<double> mus(n + 1), sig(n + 1);
    for (size_t k = 0; k < n; ++k) mus[k] = obs[k][p];
    mus[n] = 0.5 * (lo + hi);
    if (o.multivariate) {
      std::fill(sig.begin(), sig.end(), sigma0 * range);
    } else {  // the larger gap to the neighbours (observations and prior sorted, bounds as end points)
      std::vector<size_t> idx(n + 1);
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return mus[a] < mus[b]; });
      std::vector<double> ext = {lo};
      for (size_t i : idx) ext.push_back(mus[i]);
      ext.push_back(hi);
      std::vector<double> s(n + 1);
      for (size_t i = 0; i <= n; ++i) s[i] = std::max(ext[i + 1] - ext[i], ext[i + 2] - ext[i + 1]);
      if (ext.size() >= 4) {  // consider_endpoints = False
        s[0] = ext[2] - ext[1];
        s[n] = ext[ext.size() - 2] - ext[ext.size() - 3];
      }
      for (size_t i = 0; i <= n; ++i) sig[idx[i]] = s[i];
    }
    const double min_sigma = range / std::min(100.0, 1.0 + static_cast<double>(n + 1)), max_sigma = range;  // the magic clip
    for (auto& v : sig) v = std::clamp(v, min_sigma, max_sigma);
    sig[n] = range;  // the prior
    z.mu[p] = std::move(mus);
    z.sigma[p] = std::move(sig);
  }
  return z;
}

// One point drawn from the mixture, rounded to each parameter's grid (internal representation).
std::vector<double> draw(const Parzen& z, std::mt19937_64& rng) {
  std::discrete_distribution<size_t> pick(z.weights.begin(), z.weights.end());
  const size_t k = pick(rng);
  std::vector<double> x(z.params.size());
  for (size_t p = 0; p < z.params.size(); ++p) {
    const Param& par = *z.params[p];
    if (par.kind == Param::Kind::Categorical) {
      std::discrete_distribution<size_t> c(z.probs[p][k].begin(), z.probs[p][k].end());
      x[p] = static_cast<double>(c(rng));
      continue;
    }
    const double lo = par.internal_low(), hi = par.internal_high();
    std::normal_distribution<double> g(z.mu[p][k], z.sigma[p][k]);
    double v = std::clamp(z.mu[p][k], lo, hi);
    for (int tries = 0; tries < 1000; ++tries) {  // the truncated normal by rejection (acceptance >= 1/3 here)
      const double t = g(rng);
      if (t >= lo && t <= hi) {
        v = t;
        break;
      }
    }
    x[p] = par.to_internal(par.from_internal(v));
  }
  return x;
}

double log_pdf(const Parzen& z, const std::vector<double>& x) {
  const size_t comps = z.weights.size();
  std::vector<double> lp(comps);
  for (size_t k = 0; k < comps; ++k) lp[k] = std::log(z.weights[k]);
  for (size_t p = 0; p < z.params.size(); ++p) {
    const Param& par = *z.params[p];
    if (par.kind == Param::Kind::Categorical) {
      const auto c = static_cast<size_t>(std::lround(x[p]));
      for (size_t k = 0; k < comps; ++k) lp[k] += std::log(z.probs[p][k][c]);
      continue;
    }
    const double lo = par.internal_low(), hi = par.internal_high(), q = par.internal_step();
    for (size_t k = 0; k < comps; ++k) {
      const double mu = z.mu[p][k], s = z.sigma[p][k];
      const double accept = log_gauss_mass((lo - mu) / s, (hi - mu) / s);
      if (q > 0) {
        const double a = std::max(x[p] - q / 2, lo), b = std::min(x[p] + q / 2, hi);
        lp[k] += log_gauss_mass((a - mu) / s, (b - mu) / s) - accept;
      } else {
        const double zz = (x[p] - mu) / s;
        // no -log(s): Optuna 3.1's truncated-normal density leaves the scale out, which flattens the narrow
        // components against the prior; kept because it searches better here (bench/hpo) and equals Optuna's
        lp[k] += -0.5 * zz * zz - 0.9189385332046727 - accept;
      }
    }
  }
  const double mx = *std::max_element(lp.begin(), lp.end());
  double sum = 0;
  for (double v : lp) sum += std::exp(v - mx);
  return mx + std::log(sum);
}

nlohmann::json random_values(const SearchSpace& space, std::mt19937_64& rng) {
  nlohmann::json values = nlohmann::json::object();
  for (const auto& p : space.params) {
    if (!space.active(p, values)) continue;
    if (p.kind == Param::Kind::Categorical) {
      std::uniform_int_distribution<size_t> u(0, p.choices.size() - 1);
      values[p.name] = p.choices[u(rng)];
    } else {
      std::uniform_real_distribution<double> u(p.internal_low(), p.internal_high());
      values[p.name] = p.from_internal(u(rng));
    }
  }
  return values;
}

class RandomSampler : public Sampler {
 public:
  explicit RandomSampler(uint64_t seed) : seed_(seed) {}
  nlohmann::json sample(const SearchSpace& space, const std::vector<Trial>&, Direction, int64_t number) override {
    auto rng = trial_rng(seed_, number);
    return random_values(space, rng);
  }

 private:
  uint64_t seed_;
};

class GridSampler : public Sampler {
 public:
  GridSampler(uint64_t seed, int points) : seed_(seed), points_(points) {}
  nlohmann::json sample(const SearchSpace& space, const std::vector<Trial>& history, Direction, int64_t) override {
    std::vector<nlohmann::json> grid = grid_points(space, points_);
    std::vector<size_t> order(grid.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(mix64(seed_));
    std::shuffle(order.begin(), order.end(), rng);
    std::set<std::string> seen;
    for (const auto& t : history) seen.insert(t.params.dump());
    for (size_t i : order)
      if (!seen.count(grid[i].dump())) return grid[i];
    return nullptr;
  }

 private:
  uint64_t seed_;
  int points_;
};

class TpeSampler : public Sampler {
 public:
  TpeSampler(uint64_t seed, TpeOptions o) : seed_(seed), o_(o) {}

  nlohmann::json sample(const SearchSpace& space, const std::vector<Trial>& history, Direction direction, int64_t number) override {
    auto rng = trial_rng(seed_, number);
    // observations: complete and pruned trials ranked as Optuna ranks them: (-last step, value), complete
    // trials first (-inf); lower is better after the direction's sign
    struct Obs {
      const Trial* t;
      double step_key, value;
    };
    const double sign = direction == Direction::Minimize ? 1.0 : -1.0;
    std::vector<Obs> obs;
    for (const auto& t : history) {
      if (t.state == TrialState::Complete && !std::isnan(t.value)) {
        obs.push_back({&t, -kInf, sign * t.value});
      } else if (t.state == TrialState::Pruned) {
        if (t.intermediate.empty()) {
          obs.push_back({&t, 1.0, 0.0});
        } else {
          const auto& [step, v] = *t.intermediate.rbegin();
          obs.push_back({&t, -static_cast<double>(step), std::isnan(v) ? kInf : sign * v});
        }
      }
    }
    if (static_cast<int>(obs.size()) < o_.n_startup_trials) return random_values(space, rng);
    std::sort(obs.begin(), obs.end(), [](const Obs& a, const Obs& b) { return a.t->number < b.t->number; });  // trial order
    std::vector<size_t> rank(obs.size());
    std::iota(rank.begin(), rank.end(), 0);
    std::stable_sort(rank.begin(), rank.end(), [&](size_t a, size_t b) {
      return obs[a].step_key < obs[b].step_key || (obs[a].step_key == obs[b].step_key && obs[a].value < obs[b].value);
    });
    const size_t n_below = std::min<size_t>(static_cast<size_t>(std::ceil(0.1 * static_cast<double>(obs.size()))), 25);
    std::vector<bool> below(obs.size(), false);
    for (size_t i = 0; i < n_below; ++i) below[rank[i]] = true;

    // groups: parameters that share a condition (parent and its values), in the space's order
    std::vector<std::vector<const Param*>> groups;
    std::map<std::string, size_t> group_of;
    for (const auto& p : space.params) {
      const std::string key = p.parent + "\x1f" + nlohmann::json(p.parent_values).dump();
      auto [it, fresh] = group_of.emplace(key, groups.size());
      if (fresh) groups.emplace_back();
      groups[it->second].push_back(&p);
    }
    nlohmann::json values = nlohmann::json::object();
    for (const auto& g : groups) {
      if (!space.active(*g.front(), values)) continue;
      if (o_.multivariate) {
        sample_group(g, obs, below, rng, values);
      } else {
        for (const Param* p : g) sample_group({p}, obs, below, rng, values);
      }
    }
    return values;
  }

 private:
  template <class Obs>
  void sample_group(const std::vector<const Param*>& g, const std::vector<Obs>& obs, const std::vector<bool>& below, std::mt19937_64& rng,
                    nlohmann::json& values) const {
    std::vector<std::vector<double>> good, bad;
    for (size_t i = 0; i < obs.size(); ++i) {
      const auto& params = obs[i].t->params;
      bool present = true;
      for (const Param* p : g) present = present && params.contains(p->name) && p->contains(params[p->name]);
      if (!present) continue;
      std::vector<double> x;
      for (const Param* p : g) x.push_back(p->to_internal(params[p->name]));
      (below[i] ? good : bad).push_back(std::move(x));
    }
    const Parzen l = build_parzen(g, good, o_), gz = build_parzen(g, bad, o_);
    std::vector<double> best;
    double best_score = -kInf;
    for (int c = 0; c < o_.n_ei_candidates; ++c) {
      std::vector<double> x = draw(l, rng);
      const double score = log_pdf(l, x) - log_pdf(gz, x);
      if (best.empty() || score > best_score) best = std::move(x), best_score = score;
    }
    for (size_t p = 0; p < g.size(); ++p) values[g[p]->name] = g[p]->from_internal(best[p]);
  }

  uint64_t seed_;
  TpeOptions o_;
};

// The grid values of one parameter.
std::vector<nlohmann::json> param_grid(const Param& p, int k) {
  std::vector<nlohmann::json> out;
  if (p.kind == Param::Kind::Categorical) return p.choices;
  if (p.kind == Param::Kind::Int && !p.log && (p.high - p.low) / p.step + 1 <= k) {
    for (double v = p.low; v <= p.high + 1e-9; v += p.step) out.push_back(static_cast<int64_t>(std::llround(v)));
    return out;
  }
  const double lo = p.log ? std::log(p.low) : p.low, hi = p.log ? std::log(p.high) : p.high;
  std::set<std::string> seen;
  for (int i = 0; i < k; ++i) {
    const double t = k == 1 ? 0.5 : static_cast<double>(i) / (k - 1);
    const nlohmann::json v = p.from_internal(lo + t * (hi - lo));
    if (seen.insert(v.dump()).second) out.push_back(v);
  }
  return out;
}

void expand(const SearchSpace& space, size_t i, nlohmann::json& values, int k, std::vector<nlohmann::json>& out) {
  if (i == space.params.size()) {
    out.push_back(values);
    return;
  }
  const Param& p = space.params[i];
  if (!space.active(p, values)) {
    expand(space, i + 1, values, k, out);
    return;
  }
  for (const auto& v : param_grid(p, k)) {
    values[p.name] = v;
    expand(space, i + 1, values, k, out);
    values.erase(p.name);
  }
}

}  // namespace

double parzen_log_pdf(const std::vector<const Param*>& params, const std::vector<std::vector<double>>& observations, const std::vector<double>& x,
                      const TpeOptions& o) {
  return log_pdf(build_parzen(params, observations, o), x);
}

std::vector<nlohmann::json> grid_points(const SearchSpace& space, int points_per_float) {
  std::vector<nlohmann::json> out;
  nlohmann::json values = nlohmann::json::object();
  expand(space, 0, values, std::max(1, points_per_float), out);
  return out;
}

std::unique_ptr<Sampler> make_sampler(const std::string& name, uint64_t seed, const TpeOptions& tpe, int grid) {
  if (name == "random") return std::make_unique<RandomSampler>(seed);
  if (name == "grid") return std::make_unique<GridSampler>(seed, grid);
  if (name == "tpe") return std::make_unique<TpeSampler>(seed, tpe);
  throw Error("options", "sampler", "must be tpe, random or grid, got '" + name + "'");
}

}  // namespace kotsu
