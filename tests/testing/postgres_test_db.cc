#include "tests/testing/postgres_test_db.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace careseal::testing {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "postgres test database: %s\n", message.c_str());
  std::abort();
}

// Runs `sql` on a connection to `conninfo`; returns the rows' first columns.
std::vector<std::string> RunOrDie(const std::string& conninfo,
                                  const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string error = PQerrorMessage(conn);
    PQfinish(conn);
    Die("cannot connect: " + error);
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  PGresult* res = PQexec(conn, sql.c_str());
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string error = PQerrorMessage(conn);
    PQclear(res);
    PQfinish(conn);
    Die(sql + ": " + error);
  }
  std::vector<std::string> out;
  for (int r = 0; r < PQntuples(res); ++r) {
    out.emplace_back(PQgetvalue(res, r, 0), PQgetlength(res, r, 0));
  }
  PQclear(res);
  PQfinish(conn);
  return out;
}

}  // namespace

bool TestStoreIsPostgres() {
  const char* store = std::getenv("CARESEAL_TEST_STORE");
  return store != nullptr && std::string(store) == "postgres";
}

std::string TestPostgresConninfo() {
  if (const char* direct = std::getenv("CARESEAL_TEST_POSTGRES")) {
    return direct;
  }
  if (const char* file = std::getenv("CARESEAL_TEST_POSTGRES_FILE")) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    std::string conninfo(absl::StripAsciiWhitespace(text.str()));
    if (!conninfo.empty()) return conninfo;
    Die(absl::StrCat("no cluster's connection string in ", file,
                     ": run through ctest (the postgres_cluster_start "
                     "fixture starts one) or start one with "
                     "tests/postgres/cluster.sh start DIR"));
  }
  Die("set CARESEAL_TEST_POSTGRES to a libpq connection string, or run "
      "through ctest -L postgres, which starts a cluster");
}

TempPgDatabase::TempPgDatabase() {
  static std::atomic<int> counter{0};
  const std::string cluster = TestPostgresConninfo();
  name_ = absl::StrCat("careseal_t", getpid(), "_", counter++);
  RunOrDie(cluster, absl::StrCat("CREATE DATABASE ", name_));
  // A later keyword of a connection string overrides an earlier one.
  conninfo_ = absl::StrCat(cluster, " dbname=", name_);
}

TempPgDatabase::~TempPgDatabase() {
  RunOrDie(TestPostgresConninfo(),
           absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)"));
}

std::string TempPgDatabase::DumpAllRows() const {
  std::string out;
  for (const std::string& table :
       RunOrDie(conninfo_,
                "SELECT tablename FROM pg_tables WHERE schemaname = "
                "'public' ORDER BY tablename")) {
    for (const std::string& row :
         RunOrDie(conninfo_,
                  absl::StrCat("SELECT t::text FROM \"", table, "\" t"))) {
      absl::StrAppend(&out, table, ": ", row, "\n");
    }
  }
  return out;
}

}  // namespace careseal::testing
