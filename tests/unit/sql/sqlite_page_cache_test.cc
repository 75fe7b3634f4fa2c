#include "services/common/sql/sqlite_page_cache.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace careseal::sql {
namespace {

// The lock-byte page's number with 4 KiB pages, where SQLite parks a page
// while it renumbers the pages of a split.
constexpr unsigned kLockPage = 262145;

class PageCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // This binary makes no SQLite call before, so the wrapper goes in.
    ASSERT_TRUE(InstallSqlitePageCache());
  }
};

// Drives the installed cache directly with random creations, renumberings
// (also to the lock-byte page) and truncations, lower and higher, and checks
// after each truncation that exactly the pages below its limit are cached.
TEST_F(PageCacheTest, TruncationDropsExactlyThePagesAtOrBeyondItsLimit) {
  // The installed methods can only be read while SQLite is not
  // initialized; shutting it down keeps the configuration.
  ASSERT_EQ(sqlite3_shutdown(), SQLITE_OK);
  sqlite3_pcache_methods2 m{};
  ASSERT_EQ(sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &m), SQLITE_OK);
  ASSERT_EQ(sqlite3_initialize(), SQLITE_OK);
  ASSERT_NE(m.xTruncate, nullptr);

  std::mt19937 rng(20261124);
  for (int round = 0; round < 20; ++round) {
    sqlite3_pcache* cache = m.xCreate(4096, 64, /*bPurgeable=*/1);
    ASSERT_NE(cache, nullptr);
    m.xCachesize(cache, 100000);  // nothing is recycled behind our back
    std::set<unsigned> present;
    unsigned end = 50;  // the "database size" the truncations follow
    for (int step = 0; step < 3000; ++step) {
      const int op = static_cast<int>(rng() % 10);
      if (op < 5) {  // fetch or create a page up to a little past the end
        const unsigned key = 1 + rng() % (end + 8);
        sqlite3_pcache_page* page = m.xFetch(cache, key, /*createFlag=*/2);
        ASSERT_NE(page, nullptr);
        m.xUnpin(cache, page, /*discard=*/0);
        present.insert(key);
      } else if (op < 8 && !present.empty()) {  // renumber a cached page
        auto it = present.begin();
        std::advance(it, rng() % present.size());
        const unsigned from = *it;
        const unsigned to = rng() % 4 == 0 ? kLockPage : 1 + rng() % (end + 8);
        if (to == from) continue;
        sqlite3_pcache_page* page = m.xFetch(cache, from, 0);
        ASSERT_NE(page, nullptr) << from;
        // As sqlite3PcacheMove does: a page already under `to` goes first.
        if (sqlite3_pcache_page* other = m.xFetch(cache, to, 0)) {
          m.xUnpin(cache, other, /*discard=*/1);
          present.erase(to);
        }
        m.xRekey(cache, page, from, to);
        m.xUnpin(cache, page, 0);
        present.erase(from);
        present.insert(to);
      } else {  // truncate: the database grew, shrank, or stayed
        const int move = static_cast<int>(rng() % 7) - 2;
        end = static_cast<unsigned>(
            std::max(1, static_cast<int>(end) + move * 3));
        const unsigned limit = rng() % 20 == 0 ? 1 : end + 1;
        m.xTruncate(cache, limit);
        for (auto it = present.lower_bound(limit); it != present.end();) {
          it = present.erase(it);
        }
        for (unsigned key : present) {
          sqlite3_pcache_page* page = m.xFetch(cache, key, 0);
          ASSERT_NE(page, nullptr)
              << "page " << key << " lost at limit " << limit;
          m.xUnpin(cache, page, 0);
        }
        ASSERT_EQ(m.xPagecount(cache), static_cast<int>(present.size()))
            << "a page at or beyond " << limit << " is still cached";
      }
    }
    m.xDestroy(cache);
  }
}

std::string RandomBytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

void Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK)
      << sql << ": " << (error ? error : "");
}

// Real transactions through SQLite: random inserts into two B-trees (many
// page splits), some transactions and savepoints rolled back after growing
// the file. The contents match a model, the file passes integrity_check, and
// most end-of-transaction truncations no longer reach pcache1.
TEST_F(PageCacheTest, SplitsAndRollbacksKeepTheDatabaseIntact) {
  testing::TempDir dir;
  const std::string path = dir.File("cache.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  Exec(db, "PRAGMA journal_mode=WAL");
  Exec(db, "PRAGMA cache_size=-32768");
  Exec(db,
       "CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;"
       "CREATE INDEX t_v ON t (v)");
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO t (k, v) VALUES (?, ?)", -1,
                               &insert, nullptr),
            SQLITE_OK);
  std::mt19937 rng(7);
  std::map<std::string, std::string> model;
  const PageCacheCounters before = PageCacheCountersNow();
  int commits = 0;
  for (int txn = 0; txn < 300; ++txn) {
    Exec(db, "BEGIN");
    std::map<std::string, std::string> added;
    std::map<std::string, std::string> in_savepoint;
    const bool use_savepoint = rng() % 4 == 0;
    const int rows = 1 + static_cast<int>(rng() % 120);
    for (int i = 0; i < rows; ++i) {
      if (use_savepoint && i == rows / 2) Exec(db, "SAVEPOINT s");
      std::string k = RandomBytes(rng, 16);
      std::string v = RandomBytes(rng, 40 + rng() % 300);
      sqlite3_bind_blob(insert, 1, k.data(), static_cast<int>(k.size()),
                        SQLITE_TRANSIENT);
      sqlite3_bind_blob(insert, 2, v.data(), static_cast<int>(v.size()),
                        SQLITE_TRANSIENT);
      ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
      sqlite3_reset(insert);
      (use_savepoint && i >= rows / 2 ? in_savepoint : added)[k] = v;
    }
    if (use_savepoint) {
      if (rng() % 2 == 0) {
        Exec(db, "ROLLBACK TO s");
        in_savepoint.clear();
      }
      Exec(db, "RELEASE s");
    }
    if (rng() % 4 == 0) {
      Exec(db, "ROLLBACK");
    } else {
      Exec(db, "COMMIT");
      ++commits;
      model.insert(added.begin(), added.end());
      model.insert(in_savepoint.begin(), in_savepoint.end());
    }
  }
  sqlite3_finalize(insert);
  const PageCacheCounters after = PageCacheCountersNow();

  auto check = [&model](sqlite3* conn) {
    sqlite3_stmt* scan = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(conn, "SELECT k, v FROM t ORDER BY k", -1,
                                 &scan, nullptr),
              SQLITE_OK);
    auto it = model.begin();
    while (sqlite3_step(scan) == SQLITE_ROW) {
      ASSERT_NE(it, model.end()) << "a rolled-back row is in the table";
      std::string k(static_cast<const char*>(sqlite3_column_blob(scan, 0)),
                    sqlite3_column_bytes(scan, 0));
      std::string v(static_cast<const char*>(sqlite3_column_blob(scan, 1)),
                    sqlite3_column_bytes(scan, 1));
      EXPECT_EQ(k, it->first);
      EXPECT_EQ(v, it->second);
      ++it;
    }
    EXPECT_EQ(it, model.end()) << "a committed row is missing";
    sqlite3_finalize(scan);
    ASSERT_EQ(
        sqlite3_prepare_v2(conn, "PRAGMA integrity_check", -1, &scan, nullptr),
        SQLITE_OK);
    ASSERT_EQ(sqlite3_step(scan), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(scan, 0)),
                 "ok");
    sqlite3_finalize(scan);
  };
  check(db);
  sqlite3* fresh = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &fresh), SQLITE_OK);
  check(fresh);
  sqlite3_close(fresh);
  sqlite3_close(db);

  const int64_t truncations = after.truncations - before.truncations;
  const int64_t passed_on = after.passed_on - before.passed_on;
  EXPECT_GE(truncations, commits);
  // Rollbacks that grew the file must reach pcache1; most commits need not.
  RecordProperty("truncations", static_cast<int>(truncations));
  RecordProperty("passed_on", static_cast<int>(passed_on));
  EXPECT_LT(passed_on * 2, truncations)
      << passed_on << " of " << truncations << " truncations passed on";
}

}  // namespace
}  // namespace careseal::sql
