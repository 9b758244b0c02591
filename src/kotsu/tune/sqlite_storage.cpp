// SQLite storage of a study (kotsu/tune/storage): WAL journal, a 60 s busy timeout, claims in
// BEGIN IMMEDIATE transactions.
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "kotsu/core/error.hpp"
#include "kotsu/tune/storage.hpp"

namespace kotsu {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Db {
 public:
  explicit Db(const std::string& path) : path_(path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw Error(path, "", "cannot open the study database: " + why);
    }
    sqlite3_busy_timeout(db_, 60000);
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string why = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw Error(path_, "sqlite", why + " (in: " + sql.substr(0, 60) + ")");
    }
  }
  sqlite3* get() { return db_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

class Stmt {
 public:
  Stmt(Db& db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &s_, nullptr) != SQLITE_OK)
      throw Error(db.path(), "sqlite", std::string(sqlite3_errmsg(db.get())) + " (in: " + sql.substr(0, 60) + ")");
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
  Stmt& bind(int i, double v) { return check(std::isnan(v) ? sqlite3_bind_null(s_, i) : sqlite3_bind_double(s_, i, v)); }
  Stmt& bind(int i, const std::string& v) { return check(sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT)); }
  bool step() {  // true: a row
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw Error(db_.path(), "sqlite", sqlite3_errmsg(db_.get()));
  }
  int64_t integer(int c) { return sqlite3_column_int64(s_, c); }
  double real(int c) { return sqlite3_column_type(s_, c) == SQLITE_NULL ? std::nan("") : sqlite3_column_double(s_, c); }
  std::string text(int c) {
    const auto* t = sqlite3_column_text(s_, c);
    return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }

 private:
  Stmt& check(int rc) {
    if (rc != SQLITE_OK) throw Error(db_.path(), "sqlite", sqlite3_errmsg(db_.get()));
    return *this;
  }
  Db& db_;
  sqlite3_stmt* s_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when an exception leaves the scope.
class Transaction {
 public:
  explicit Transaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    db_.exec("COMMIT");
    done_ = true;
  }

 private:
  Db& db_;
  bool done_ = false;
};

nlohmann::json parse(const std::string& text, const std::string& path, const std::string& field) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, field, std::string("not JSON: ") + e.what());
  }
}

class SqliteStorage : public Storage {
 public:
  explicit SqliteStorage(const std::string& path) : db_(path) {
    db_.exec("PRAGMA journal_mode=WAL");
    db_.exec("PRAGMA synchronous=NORMAL");
    db_.exec(
        "CREATE TABLE IF NOT EXISTS study (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, direction TEXT NOT NULL, "
        "space TEXT NOT NULL, settings TEXT NOT NULL, created REAL NOT NULL);"
        "CREATE TABLE IF NOT EXISTS trials (number INTEGER PRIMARY KEY, state TEXT NOT NULL, params TEXT NOT NULL, value REAL, "
        "worker TEXT, heartbeat REAL, started REAL, seconds REAL);"
        "CREATE TABLE IF NOT EXISTS reports (number INTEGER NOT NULL, step INTEGER NOT NULL, value REAL, PRIMARY KEY (number, step));");
  }

  StudyConfig open(const StudyConfig& c) override {
    Transaction tx(db_);
    Stmt q(db_, "SELECT name, direction, space, settings FROM study WHERE id = 1");
    const std::string dir = c.direction == Direction::Minimize ? "minimize" : "maximize";
    if (!q.step()) {
      Stmt ins(db_, "INSERT INTO study (id, name, direction, space, settings, created) VALUES (1, ?, ?, ?, ?, ?)");
      ins.bind(1, c.name).bind(2, dir).bind(3, c.space.dump()).bind(4, c.settings.dump()).bind(5, now_seconds()).step();
      tx.commit();
      return c;
    }
    StudyConfig have{q.text(0), q.text(1) == "minimize" ? Direction::Minimize : Direction::Maximize, parse(q.text(2), db_.path(), "space"),
                     parse(q.text(3), db_.path(), "settings")};
    auto differ = [&](const char* what, const std::string& a, const std::string& b) {
      throw Error(db_.path(), what, "this study was created with " + a + ", not " + b + " (use another storage file for another study)");
    };
    if (have.name != c.name) differ("name", have.name, c.name);
    if (have.direction != c.direction) differ("direction", q.text(1), dir);
    if (have.space != c.space) differ("space", have.space.dump(), c.space.dump());
    if (have.settings != c.settings) differ("settings", have.settings.dump(), c.settings.dump());
    tx.commit();
    return have;
  }

  Claim claim(const std::string& worker, const Budget& budget, double stale_seconds,
              const std::function<nlohmann::json(const std::vector<Trial>&, int64_t)>& sample) override {
    Transaction tx(db_);
    const double now = now_seconds();
    // a running trial whose worker stopped beating: failed, its parameters queued again
    {
      Stmt stale(db_, "SELECT number, params FROM trials WHERE state = 'running' AND heartbeat < ?");
      stale.bind(1, now - stale_seconds);
      std::vector<std::pair<int64_t, std::string>> dead;
      while (stale.step()) dead.emplace_back(stale.integer(0), stale.text(1));
      for (auto& [n, params] : dead) {
        Stmt fail(db_, "UPDATE trials SET state = 'failed' WHERE number = ?");
        fail.bind(1, n).step();
        Stmt again(db_, "INSERT INTO trials (number, state, params) VALUES ((SELECT COALESCE(MAX(number), -1) + 1 FROM trials), 'waiting', ?)");
        again.bind(1, params).step();
      }
    }
    Trial t;
    {
      Stmt waiting(db_, "SELECT number, params FROM trials WHERE state = 'waiting' ORDER BY number LIMIT 1");
      if (waiting.step()) {
        t.number = waiting.integer(0);
        t.params = parse(waiting.text(1), db_.path(), "trial " + std::to_string(t.number));
      }
    }
    if (t.number >= 0) {
      Stmt run(db_, "UPDATE trials SET state = 'running', worker = ?, heartbeat = ?, started = ? WHERE number = ?");
      run.bind(1, worker).bind(2, now).bind(3, now).bind(4, t.number).step();
    } else {
      Stmt count(db_, "SELECT COUNT(*), COALESCE(SUM(state = 'running'), 0) FROM trials WHERE state != 'failed'");
      count.step();
      const int64_t running = count.integer(1);
      auto wait_or_done = [&] {
        tx.commit();  // keeps the reaping above
        Claim c;
        c.status = running > 0 ? Claim::Wait : Claim::Done;
        return c;
      };
      if (count.integer(0) >= budget.trials) return wait_or_done();
      if (budget.reports > 0) {
        Stmt reports(db_, "SELECT COUNT(*) FROM reports");
        reports.step();
        if (reports.integer(0) >= budget.reports) return wait_or_done();
      }
      Stmt next(db_, "SELECT COALESCE(MAX(number), -1) + 1 FROM trials");
      next.step();
      t.number = next.integer(0);
      t.params = sample(read_trials(), t.number);
      if (t.params.is_null()) return wait_or_done();
      Stmt ins(db_, "INSERT INTO trials (number, state, params, worker, heartbeat, started) VALUES (?, 'running', ?, ?, ?, ?)");
      ins.bind(1, t.number).bind(2, t.params.dump()).bind(3, worker).bind(4, now).bind(5, now).step();
    }
    tx.commit();
    t.state = TrialState::Running;
    t.worker = worker;
    Claim c;
    c.status = Claim::Claimed;
    c.trial = std::move(t);
    return c;
  }

  void heartbeat(int64_t number) override {
    Stmt s(db_, "UPDATE trials SET heartbeat = ? WHERE number = ? AND state = 'running'");
    s.bind(1, now_seconds()).bind(2, number).step();
  }

  void report(int64_t number, int64_t step, double value) override {
    Stmt s(db_, "INSERT OR REPLACE INTO reports (number, step, value) VALUES (?, ?, ?)");
    s.bind(1, number).bind(2, step).bind(3, value).step();
    heartbeat(number);
  }

  void finish(int64_t number, TrialState state, double value, double seconds) override {
    Stmt s(db_, "UPDATE trials SET state = ?, value = ?, seconds = ? WHERE number = ?");
    s.bind(1, std::string(trial_state_name(state))).bind(2, value).bind(3, seconds).bind(4, number).step();
  }

  std::vector<Trial> trials() override {
    Transaction tx(db_);  // one consistent snapshot
    auto out = read_trials();
    tx.commit();
    return out;
  }

 private:
  std::vector<Trial> read_trials() {
    std::vector<Trial> out;
    Stmt q(db_, "SELECT number, state, params, value, worker, seconds FROM trials ORDER BY number");
    while (q.step()) {
      Trial t;
      t.number = q.integer(0);
      t.state = parse_trial_state(q.text(1));
      t.params = parse(q.text(2), db_.path(), "trial " + std::to_string(t.number));
      t.value = q.real(3);
      t.worker = q.text(4);
      t.seconds = std::isnan(q.real(5)) ? 0 : q.real(5);
      out.push_back(std::move(t));
    }
    Stmt r(db_, "SELECT number, step, value FROM reports ORDER BY number, step");
    size_t i = 0;
    while (r.step()) {
      const int64_t n = r.integer(0);
      while (i < out.size() && out[i].number < n) ++i;
      if (i < out.size() && out[i].number == n) out[i].intermediate[r.integer(1)] = r.real(2);
    }
    return out;
  }

  Db db_;
};

}  // namespace

std::unique_ptr<Storage> open_storage(const std::string& url, const std::string& study) {
  std::string path = url;
  if (path.rfind("sqlite:", 0) == 0) path = path.substr(7);
  if (path.rfind("postgresql://", 0) == 0 || path.rfind("postgres://", 0) == 0) return open_postgres_storage(url, study);
  if (path.empty()) throw Error("options", "storage", "is empty");
  return std::make_unique<SqliteStorage>(path);
}

}  // namespace kotsu
