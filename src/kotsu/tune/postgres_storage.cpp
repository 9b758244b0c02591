// PostgreSQL storage of studies (kotsu/tune/storage), through libpqxx: workers on many machines share a
// study the way Optuna's RDB storage lets them. Several studies live in one database (kotsu_studies,
// kotsu_trials, kotsu_reports, keyed by the study's name). A claim locks the study's row (SELECT ... FOR
// UPDATE) for its transaction, so claims are serialised per study while reports and heartbeats of
// running trials go on; heartbeats use the server's clock, so machines with skewed clocks agree on what
// is stale.
#include <pqxx/pqxx>

#include <cmath>
#include <optional>

#include "kotsu/core/error.hpp"
#include "kotsu/tune/storage.hpp"

namespace kotsu {

namespace {

constexpr const char* kNow = "extract(epoch from clock_timestamp())";

nlohmann::json parse(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where, "params", std::string("not JSON: ") + e.what());
  }
}

std::optional<double> nullable(double v) { return std::isnan(v) ? std::nullopt : std::optional<double>(v); }

class PostgresStorage : public Storage {
 public:
  PostgresStorage(const std::string& url, std::string study) try : url_(url), study_(std::move(study)), c_(url) {
    pqxx::work w(c_);
    w.exec("SELECT pg_advisory_xact_lock(7301955)");  // one creator at a time: CREATE IF NOT EXISTS races otherwise
    w.exec(
        "CREATE TABLE IF NOT EXISTS kotsu_studies (name TEXT PRIMARY KEY, direction TEXT NOT NULL, space TEXT NOT NULL, "
        "settings TEXT NOT NULL, created DOUBLE PRECISION NOT NULL);"
        "CREATE TABLE IF NOT EXISTS kotsu_trials (study TEXT NOT NULL REFERENCES kotsu_studies (name), number BIGINT NOT NULL, "
        "state TEXT NOT NULL, params TEXT NOT NULL, value DOUBLE PRECISION, worker TEXT, heartbeat DOUBLE PRECISION, "
        "started DOUBLE PRECISION, seconds DOUBLE PRECISION, PRIMARY KEY (study, number));"
        "CREATE TABLE IF NOT EXISTS kotsu_reports (study TEXT NOT NULL, number BIGINT NOT NULL, step BIGINT NOT NULL, "
        "value DOUBLE PRECISION, PRIMARY KEY (study, number, step));");
    w.commit();
  } catch (const pqxx::failure& e) {
    throw Error(redact(url), "postgresql", first_line(e.what()));
  }

  StudyConfig open(const StudyConfig& c) override {
    return guarded([&] {
      if (c.name != study_) throw Error(redact(url_), "name", "storage opened for study '" + study_ + "', not '" + c.name + "'");
      const std::string dir = c.direction == Direction::Minimize ? "minimize" : "maximize";
      pqxx::work w(c_);
      w.exec_params(std::string("INSERT INTO kotsu_studies (name, direction, space, settings, created) VALUES ($1, $2, $3, $4, ") + kNow +
                        ") ON CONFLICT (name) DO NOTHING",
                    study_, dir, c.space.dump(), c.settings.dump());
      pqxx::result r = w.exec_params("SELECT direction, space, settings FROM kotsu_studies WHERE name = $1", study_);
      w.commit();
      const std::string have_dir = r[0][0].as<std::string>();
      const nlohmann::json space = parse(r[0][1].as<std::string>(), "study " + study_), settings = parse(r[0][2].as<std::string>(), "study " + study_);
      auto differ = [&](const char* what, const std::string& a, const std::string& b) {
        throw Error(redact(url_), what, "study '" + study_ + "' was created with " + a + ", not " + b + " (use another study name)");
      };
      if (have_dir != dir) differ("direction", have_dir, dir);
      if (space != c.space) differ("space", space.dump(), c.space.dump());
      if (settings != c.settings) differ("settings", settings.dump(), c.settings.dump());
      return c;
    });
  }

  Claim claim(const std::string& worker, const Budget& budget, double stale_seconds,
              const std::function<nlohmann::json(const std::vector<Trial>&, int64_t)>& sample) override {
    return guarded([&] {
      pqxx::work w(c_);
      w.exec_params("SELECT 1 FROM kotsu_studies WHERE name = $1 FOR UPDATE", study_);  // claims of this study, one at a time
      pqxx::result dead = w.exec_params(std::string("UPDATE kotsu_trials SET state = 'failed' WHERE study = $1 AND state = 'running' AND heartbeat < ") +
                                            kNow + " - $2 RETURNING number, params",
                                        study_, stale_seconds);
      for (const auto& row : dead)
        w.exec_params("INSERT INTO kotsu_trials (study, number, state, params) VALUES ($1, (SELECT COALESCE(MAX(number), -1) + 1 FROM "
                      "kotsu_trials WHERE study = $1), 'waiting', $2)",
                      study_, row[1].as<std::string>());
      Claim out;
      pqxx::result waiting = w.exec_params("SELECT number, params FROM kotsu_trials WHERE study = $1 AND state = 'waiting' ORDER BY number LIMIT 1", study_);
      Trial t;
      if (!waiting.empty()) {
        t.number = waiting[0][0].as<int64_t>();
        t.params = parse(waiting[0][1].as<std::string>(), "trial " + std::to_string(t.number));
        w.exec_params(std::string("UPDATE kotsu_trials SET state = 'running', worker = $3, heartbeat = ") + kNow + ", started = " + kNow +
                          " WHERE study = $1 AND number = $2",
                      study_, t.number, worker);
      } else {
        pqxx::result count = w.exec_params(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END), 0) FROM kotsu_trials WHERE study = $1 AND state != 'failed'", study_);
        const int64_t running = count[0][1].as<int64_t>();
        auto wait_or_done = [&] {
          w.commit();
          out.status = running > 0 ? Claim::Wait : Claim::Done;
          return out;
        };
        if (count[0][0].as<int64_t>() >= budget.trials) return wait_or_done();
        if (budget.reports > 0 &&
            w.exec_params("SELECT COUNT(*) FROM kotsu_reports WHERE study = $1", study_)[0][0].as<int64_t>() >= budget.reports)
          return wait_or_done();
        t.number = w.exec_params("SELECT COALESCE(MAX(number), -1) + 1 FROM kotsu_trials WHERE study = $1", study_)[0][0].as<int64_t>();
        t.params = sample(read_trials(w), t.number);
        if (t.params.is_null()) return wait_or_done();
        w.exec_params(std::string("INSERT INTO kotsu_trials (study, number, state, params, worker, heartbeat, started) VALUES ($1, $2, 'running', $3, $4, ") +
                          kNow + ", " + kNow + ")",
                      study_, t.number, t.params.dump(), worker);
      }
      w.commit();
      t.state = TrialState::Running;
      t.worker = worker;
      out.status = Claim::Claimed;
      out.trial = std::move(t);
      return out;
    });
  }

  void heartbeat(int64_t number) override {
    guarded([&] {
      pqxx::work w(c_);
      w.exec_params(std::string("UPDATE kotsu_trials SET heartbeat = ") + kNow + " WHERE study = $1 AND number = $2 AND state = 'running'", study_, number);
      w.commit();
      return 0;
    });
  }

  void report(int64_t number, int64_t step, double value) override {
    guarded([&] {
      pqxx::work w(c_);
      w.exec_params("INSERT INTO kotsu_reports (study, number, step, value) VALUES ($1, $2, $3, $4) ON CONFLICT (study, number, step) DO UPDATE SET value = $4",
                    study_, number, step, nullable(value));
      w.exec_params(std::string("UPDATE kotsu_trials SET heartbeat = ") + kNow + " WHERE study = $1 AND number = $2 AND state = 'running'", study_, number);
      w.commit();
      return 0;
    });
  }

  void finish(int64_t number, TrialState state, double value, double seconds) override {
    guarded([&] {
      pqxx::work w(c_);
      w.exec_params("UPDATE kotsu_trials SET state = $3, value = $4, seconds = $5 WHERE study = $1 AND number = $2", study_, number,
                    std::string(trial_state_name(state)), nullable(value), seconds);
      w.commit();
      return 0;
    });
  }

  std::vector<Trial> trials() override {
    return guarded([&] {
      pqxx::work w(c_);
      auto out = read_trials(w);
      w.commit();
      return out;
    });
  }

 private:
  // A URL without its password, for messages.
  static std::string redact(const std::string& url) {
    const auto at = url.find('@'), scheme = url.find("://");
    if (at == std::string::npos || scheme == std::string::npos) return url;
    const auto colon = url.find(':', scheme + 3);
    return colon != std::string::npos && colon < at ? url.substr(0, colon) + ":***" + url.substr(at) : url;
  }
  static std::string first_line(const std::string& s) {
    std::string l = s.substr(0, s.find('\n'));
    return l.empty() ? "PostgreSQL error" : l;
  }
  template <class F>
  auto guarded(F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const pqxx::failure& e) {
      throw Error(redact(url_), "postgresql", first_line(e.what()));
    }
  }

  std::vector<Trial> read_trials(pqxx::work& w) {
    std::vector<Trial> out;
    pqxx::result r = w.exec_params("SELECT number, state, params, value, worker, seconds FROM kotsu_trials WHERE study = $1 ORDER BY number", study_);
    for (const auto& row : r) {
      Trial t;
      t.number = row[0].as<int64_t>();
      t.state = parse_trial_state(row[1].as<std::string>());
      t.params = parse(row[2].as<std::string>(), "trial " + std::to_string(t.number));
      t.value = row[3].is_null() ? std::nan("") : row[3].as<double>();
      t.worker = row[4].is_null() ? "" : row[4].as<std::string>();
      t.seconds = row[5].is_null() ? 0 : row[5].as<double>();
      out.push_back(std::move(t));
    }
    pqxx::result rep = w.exec_params("SELECT number, step, value FROM kotsu_reports WHERE study = $1 ORDER BY number, step", study_);
    size_t i = 0;
    for (const auto& row : rep) {
      const int64_t n = row[0].as<int64_t>();
      while (i < out.size() && out[i].number < n) ++i;
      if (i < out.size() && out[i].number == n) out[i].intermediate[row[1].as<int64_t>()] = row[2].is_null() ? std::nan("") : row[2].as<double>();
    }
    return out;
  }

  std::string url_, study_;
  pqxx::connection c_;
};

}  // namespace

std::unique_ptr<Storage> open_postgres_storage(const std::string& url, const std::string& study) {
  return std::make_unique<PostgresStorage>(url, study);
}

}  // namespace kotsu
