// Test helper (header only): a private PostgreSQL cluster for one test binary — initdb into
// a temp dir (as the `postgres` user via runuser when root: initdb refuses root), the
// server listening only on a unix socket in that dir (-k DIR -h '': no TCP port, nothing
// shared with other tests), fsync off. Stopped (pg_ctl -m immediate) and removed by the
// destructor, so a fixture's TearDownTestSuite stops it also when a test failed.
// Test thread only.
#pragma once

#include <glob.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "base/status.h"
#include "tests/testing.h"

namespace lim::attest {

class PgTestServer {
 public:
  // The error says why no server could be started (no binaries, initdb failed, …): tests skip.
  static Result<std::unique_ptr<PgTestServer>> Start() {
    std::string bin = BinDir();
    if (bin.empty()) return Status::Unavailable("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)");
    auto s = std::unique_ptr<PgTestServer>(new PgTestServer());
    s->bin_ = bin;
    s->dir_ = lim::testing::MakeTempDir();
    bool root = ::geteuid() == 0;
    s->as_ = root ? "runuser -u postgres -- " : "";
    std::string q = lim::testing::ShellQuote(s->dir_);
    std::string setup = "chmod 0755 " + q + (root ? " && chown postgres " + q : "");
    auto r = lim::testing::Run(setup + " && " + s->as_ + bin + "/initdb -D " + q + "/data -A trust -U postgres -E UTF8 --no-sync");
    if (r.exit_code != 0) return Status::Unavailable("initdb failed: " + r.err + r.out);
    r = lim::testing::Run(s->as_ + bin + "/pg_ctl -D " + q + "/data -l " + q + "/log -w -t 30 -o \"-k " + q +
                          " -h '' -F\" start");
    if (r.exit_code != 0) {
      auto log = lim::testing::Run("cat " + q + "/log");
      return Status::Unavailable("pg_ctl start failed: " + r.err + r.out + log.out);
    }
    s->started_ = true;
    return s;
  }

  ~PgTestServer() {
    if (started_) {
      lim::testing::Run(as_ + bin_ + "/pg_ctl -D " + lim::testing::ShellQuote(dir_) + "/data -m immediate -w stop");
    }
    if (!dir_.empty()) lim::testing::Run("rm -rf " + lim::testing::ShellQuote(dir_));
  }

  const std::string& dir() const { return dir_; }

  // The server stopped (fast: connections cut, as when the database host restarts) and
  // started again on the same socket: what a verifier sees of a database restart.
  Status Stop() {
    auto r = lim::testing::Run(as_ + bin_ + "/pg_ctl -D " + lim::testing::ShellQuote(dir_) + "/data -m fast -w stop");
    if (r.exit_code != 0) return Status::IoError("pg_ctl stop: " + r.err + r.out);
    return Status::Ok();
  }
  Status Restart() {
    std::string q = lim::testing::ShellQuote(dir_);
    auto r = lim::testing::Run(as_ + bin_ + "/pg_ctl -D " + q + "/data -l " + q + "/log -w -t 30 -o \"-k " + q +
                               " -h '' -F\" start");
    if (r.exit_code != 0) return Status::IoError("pg_ctl start: " + r.err + r.out);
    return Status::Ok();
  }

  // The URI of database `db` on this server.
  std::string Uri(const std::string& db) const { return "postgresql:///" + db + "?host=" + dir_ + "&user=postgres"; }

  // A new empty database; its URI.
  Result<std::string> CreateDatabase() {
    std::string name = "t" + std::to_string(++databases_);
    LIM_RETURN_IF_ERROR(Exec(Uri("postgres"), "CREATE DATABASE " + name));
    return Uri(name);
  }

  // One SQL text on its own connection (test setup only: the text is the test's own).
  static Status Exec(const std::string& uri, const std::string& sql) {
    PGconn* c = PQconnectdb(uri.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      std::string m = PQerrorMessage(c);
      PQfinish(c);
      return Status::Unavailable("connecting to " + uri + ": " + m);
    }
    PGresult* r = PQexec(c, sql.c_str());
    ExecStatusType st = PQresultStatus(r);
    std::string m = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Status::IoError(sql + ": " + m);
    return Status::Ok();
  }

 private:
  PgTestServer() = default;
  static std::string BinDir() {
    glob_t g{};
    std::string out;
    if (::glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &g) == 0 && g.gl_pathc > 0) {
      out = g.gl_pathv[g.gl_pathc - 1];  // the newest version installed
      out.resize(out.size() - std::string("/initdb").size());
    }
    globfree(&g);
    return out;
  }

  std::string bin_, dir_, as_;
  bool started_ = false;
  int databases_ = 0;
};

}  // namespace lim::attest
