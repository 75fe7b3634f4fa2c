// The PostgreSQL cluster that tests labelled `postgres` run against
// (tests/postgres/cluster.sh, started by the `postgres_cluster_start`
// fixture), and a database of its own for each test.
#ifndef CARESEAL_TESTS_TESTING_POSTGRES_TEST_DB_H_
#define CARESEAL_TESTS_TESTING_POSTGRES_TEST_DB_H_

#include <string>

namespace careseal::testing {

// True when this test binary runs against PostgreSQL:
// CARESEAL_TEST_STORE=postgres (set by the `_postgres` ctest variants).
bool TestStoreIsPostgres();

// The cluster's libpq connection string: CARESEAL_TEST_POSTGRES, else the
// contents of the file CARESEAL_TEST_POSTGRES_FILE names. Aborts with a
// message that says how to start one if neither is there.
std::string TestPostgresConninfo();

// A fresh database in that cluster, dropped (with its connections) when this
// object goes.
class TempPgDatabase {
 public:
  TempPgDatabase();
  ~TempPgDatabase();
  TempPgDatabase(const TempPgDatabase&) = delete;
  TempPgDatabase& operator=(const TempPgDatabase&) = delete;

  const std::string& name() const { return name_; }
  // The cluster's connection string with this database.
  const std::string& conninfo() const { return conninfo_; }

  // Every row of every table of this database as text (bytea as hex): for
  // tests that check what is stored in clear.
  std::string DumpAllRows() const;

 private:
  std::string name_;
  std::string conninfo_;
};

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_TESTING_POSTGRES_TEST_DB_H_
