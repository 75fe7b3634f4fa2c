// The PostgreSQL store against a real server (the test cluster of
// tests/postgres): group commit, a failed job undone alone, unique
// violations, typed values, migrations once, two stores (replicas) sharing
// one database, and the SQL translation it applies.
#include "services/common/sql/postgres_database.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "services/common/macros.h"
#include "services/common/status.h"
#include "tests/testing/postgres_test_db.h"

namespace careseal::sql {
namespace {

using ::careseal::testing::TempPgDatabase;

// Written for SQLite, as every store's migrations are.
const std::vector<Migration> kSchema = {
    {1,
     "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL, "
     "data BLOB);"
     "CREATE TABLE pairs (a TEXT NOT NULL, b INTEGER NOT NULL, "
     "PRIMARY KEY (a, b)) WITHOUT ROWID"},
    {2, "CREATE INDEX items_label ON items (label)"},
};

std::unique_ptr<PostgresDatabase> OpenOn(const TempPgDatabase& pg) {
  auto db = PostgresDatabase::Open({.conninfo = pg.conninfo()});
  EXPECT_TRUE(db.ok()) << db.status();
  absl::Status migrated = (*db)->Migrate("test", kSchema);
  EXPECT_TRUE(migrated.ok()) << migrated;
  return std::move(*db);
}

int64_t CountItems(Database& db) {
  int64_t count = -1;
  absl::Status s = db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT COUNT(*) FROM items"));
    count = rows[0].Int(0);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return count;
}

absl::Status Insert(Database& db, int64_t id, std::string label) {
  return db.WriteAndWait([&](Txn& txn) {
    return txn
        .Exec("INSERT INTO items (id, label) VALUES (?, ?)",
              {Int(id), Text(label)})
        .status();
  });
}

TEST(PostgresTranslationTest, PlaceholdersAreNumberedOutsideQuotes) {
  EXPECT_EQ(NumberPlaceholders("SELECT a FROM t WHERE a = ? AND b IN (?, ?)"),
            "SELECT a FROM t WHERE a = $1 AND b IN ($2, $3)");
  EXPECT_EQ(NumberPlaceholders("SELECT '?', \"q?\" -- why?\n, ? /* ? */ ?"),
            "SELECT '?', \"q?\" -- why?\n, $1 /* ? */ $2");
  EXPECT_EQ(NumberPlaceholders("SELECT 'it''s ?' || ?"),
            "SELECT 'it''s ?' || $1");
}

TEST(PostgresTranslationTest, SqliteDdlBecomesPostgres) {
  EXPECT_EQ(TranslateDdlForPostgres(
                "CREATE TABLE x (n INTEGER NOT NULL, b blob, t TEXT "
                "DEFAULT 'INTEGER BLOB', PRIMARY KEY (n)) WITHOUT  ROWID"),
            "CREATE TABLE x (n BIGINT NOT NULL, b BYTEA, t TEXT "
            "DEFAULT 'INTEGER BLOB', PRIMARY KEY (n)) ");
  // Words that merely contain the keywords stay.
  EXPECT_EQ(TranslateDdlForPostgres("CREATE INDEX integers_blobby ON x (n)"),
            "CREATE INDEX integers_blobby ON x (n)");
}

TEST(PostgresDatabaseTest, TypedValuesRoundTrip) {
  TempPgDatabase pg;
  auto db = OpenOn(pg);
  const std::string bytes("\0\x01\xff\\x'\"", 7);
  ASSERT_TRUE(
      db->WriteAndWait([&](Txn& txn) {
          return txn
              .Exec(
                  "INSERT INTO items (id, label, data) VALUES (?, "
                  "?, ?)",
                  {Int(int64_t{1} << 62), Text("ünïcode ' ?"), Bytes(bytes)})
              .status();
        }).ok());
  ASSERT_TRUE(db->Read([&](Txn& txn) -> absl::Status {
                  ASSIGN_OR_RETURN(
                      auto rows,
                      txn.Query("SELECT id, label, data, NULL, COUNT(*) > 0, "
                                "SUM(id) FROM items GROUP BY id, label, data"));
                  EXPECT_EQ(rows.size(), 1u);
                  EXPECT_EQ(rows[0].Int(0), int64_t{1} << 62);
                  EXPECT_EQ(rows[0].Str(1), "ünïcode ' ?");
                  EXPECT_EQ(rows[0].Str(2), bytes);
                  EXPECT_TRUE(rows[0].IsNull(3));
                  EXPECT_EQ(rows[0].Int(4), 1);
                  EXPECT_EQ(rows[0].Int(5), int64_t{1} << 62);
                  return absl::OkStatus();
                }).ok());
  // A statement with NULL where an integer went before is prepared anew.
  ASSERT_TRUE(db->WriteAndWait([](Txn& txn) {
                  return txn
                      .Exec(
                          "INSERT INTO items (id, label, data) VALUES (?, "
                          "?, ?)",
                          {Int(2), Text("n"), Null()})
                      .status();
                }).ok());
  EXPECT_EQ(CountItems(*db), 2);
  // Text with a NUL is refused whole, not cut short at the NUL.
  absl::Status nul = db->WriteAndWait([](Txn& txn) {
    return txn
        .Exec("INSERT INTO items (id, label) VALUES (?, ?)",
              {Int(3), Text(std::string("before\0after", 12))})
        .status();
  });
  EXPECT_EQ(nul.code(), absl::StatusCode::kInvalidArgument) << nul;
  EXPECT_EQ(ErrorReason(nul), "TEXT_HAS_NUL");
  EXPECT_EQ(CountItems(*db), 2);
}

TEST(PostgresDatabaseTest, FailedJobIsUndoneAloneInItsBatch) {
  TempPgDatabase pg;
  auto db = OpenOn(pg);
  std::atomic<int> pending{3};
  absl::Notification all_done;
  std::vector<absl::Status> results(3);
  auto done = [&](int i) {
    return [&, i](absl::Status s) {
      results[i] = s;
      if (--pending == 0) all_done.Notify();
    };
  };
  db->Write(
      [](Txn& txn) {
        return txn.Exec("INSERT INTO items (id, label) VALUES (1, 'x')")
            .status();
      },
      done(0));
  db->Write(
      [](Txn& txn) -> absl::Status {
        auto s = txn.Exec("INSERT INTO items (id, label) VALUES (2, 'y')");
        if (!s.ok()) return s.status();
        // A failed statement inside the job, then the job's own error.
        EXPECT_FALSE(txn.Exec("INSERT INTO nowhere VALUES (1)").ok());
        return FailedPrecondition("TEST_FAILURE", "job fails after writing");
      },
      done(1));
  db->Write(
      [](Txn& txn) {
        return txn.Exec("INSERT INTO items (id, label) VALUES (3, 'z')")
            .status();
      },
      done(2));
  all_done.WaitForNotification();
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_EQ(ErrorReason(results[1]), "TEST_FAILURE");
  EXPECT_TRUE(results[2].ok()) << results[2];
  EXPECT_EQ(CountItems(*db), 2);
}

TEST(PostgresDatabaseTest, UniqueViolationIsRecognisedWithoutRowValues) {
  TempPgDatabase pg;
  auto db = OpenOn(pg);
  ASSERT_TRUE(Insert(*db, 7, "secret-label").ok());
  absl::Status again = Insert(*db, 7, "secret-label");
  EXPECT_TRUE(IsUniqueViolation(again)) << again;
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  // The server's detail ("Key (id)=(7) already exists") is not passed on.
  EXPECT_EQ(again.message().find("(7)"), absl::string_view::npos) << again;
}

TEST(PostgresDatabaseTest, BadSqlIsAnErrorNotACrash) {
  TempPgDatabase pg;
  auto db = OpenOn(pg);
  absl::Status s = db->WriteAndWait([](Txn& txn) {
    return txn.Exec("INSERT INTO nowhere VALUES (1)").status();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrorReason(s), "STORE_ERROR");
  // A value the column cannot take: refused without quoting it.
  absl::Status bad = db->WriteAndWait([](Txn& txn) {
    return txn
        .Exec("INSERT INTO items (id, label) VALUES (CAST(? AS BIGINT), 'v')",
              {Text("patient-name-here")})
        .status();
  });
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.message().find("patient-name-here"), absl::string_view::npos)
      << bad;
  // The writer goes on.
  EXPECT_TRUE(Insert(*db, 1, "after").ok());
}

TEST(PostgresDatabaseTest, ReadsAreReadOnly) {
  TempPgDatabase pg;
  auto db = OpenOn(pg);
  absl::Status s = db->Read([](Txn& txn) {
    return txn.Exec("INSERT INTO items (id, label) VALUES (1, 'r')").status();
  });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(CountItems(*db), 0);
}

TEST(PostgresDatabaseTest, ConcurrentWritesAreGroupCommittedInOrder) {
  TempPgDatabase pg;
  auto db = OpenOn(pg);
  constexpr int kJobs = 2000;
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification all_done;
  for (int i = 0; i < kJobs; ++i) {
    db->Write(
        [i](Txn& txn) {
          return txn
              .Exec("INSERT INTO items (id, label) VALUES (?, 'o')", {Int(i)})
              .status();
        },
        [&, i](absl::Status s) {
          EXPECT_TRUE(s.ok()) << s;
          absl::MutexLock lock(&mu);
          order.push_back(i);
          if (order.size() == kJobs) all_done.Notify();
        });
  }
  all_done.WaitForNotification();
  for (int i = 0; i < kJobs; ++i) ASSERT_EQ(order[i], i);
  EXPECT_EQ(CountItems(*db), kJobs);
  EXPECT_EQ(db->committed_writes(), kJobs + 1);  // + the migration
  EXPECT_LT(db->commits(), kJobs / 4);
}

TEST(PostgresDatabaseTest, MigrationsRunOnceAcrossReplicas) {
  TempPgDatabase pg;
  // Two stores (replicas) start at once on one database.
  std::unique_ptr<PostgresDatabase> a, b;
  std::thread ta([&] { a = OpenOn(pg); });
  std::thread tb([&] { b = OpenOn(pg); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a && b);
  int64_t versions = 0;
  ASSERT_TRUE(a->Read([&](Txn& txn) -> absl::Status {
                 ASSIGN_OR_RETURN(auto rows,
                                  txn.Query("SELECT COUNT(*) FROM "
                                            "schema_migrations WHERE "
                                            "component = 'test'"));
                 versions = rows[0].Int(0);
                 return absl::OkStatus();
               }).ok());
  EXPECT_EQ(versions, 2);
}

// Replicas' write batches run one after another (the writer lock): a job
// that reads the current maximum and writes the next one never loses an
// increment, as the stores' logs (the audit tree's size, event sequences)
// need.
TEST(PostgresDatabaseTest, ReplicasWritesAreSerialized) {
  TempPgDatabase pg;
  auto a = OpenOn(pg);
  auto b = OpenOn(pg);
  constexpr int kPerReplica = 300;
  auto next = [](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows,
                     txn.Query("SELECT COALESCE(MAX(id), 0) FROM items"));
    return txn
        .Exec("INSERT INTO items (id, label) VALUES (?, 'n')",
              {Int(rows[0].Int(0) + 1)})
        .status();
  };
  std::atomic<int> failures{0};
  auto run = [&](PostgresDatabase* db) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, db] {
        for (int i = 0; i < kPerReplica / 4; ++i) {
          absl::Status s = db->WriteAndWait(next);
          if (!s.ok()) {
            ++failures;
            ADD_FAILURE() << s;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  };
  std::thread ra([&] { run(a.get()); });
  std::thread rb([&] { run(b.get()); });
  ra.join();
  rb.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(CountItems(*a), 2 * kPerReplica);
  ASSERT_TRUE(b->Read([&](Txn& txn) -> absl::Status {
                 ASSIGN_OR_RETURN(auto rows,
                                  txn.Query("SELECT MAX(id) FROM items"));
                 EXPECT_EQ(rows[0].Int(0), 2 * kPerReplica);
                 return absl::OkStatus();
               }).ok());
}

// Reads share at most max_readers connections however many threads read.
TEST(PostgresDatabaseTest, ReaderConnectionsAreBounded) {
  TempPgDatabase pg;
  auto opened =
      PostgresDatabase::Open({.conninfo = pg.conninfo(), .max_readers = 3});
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<PostgresDatabase> db = *std::move(opened);
  auto watcher = PostgresDatabase::Open({.conninfo = pg.conninfo()});
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> most{0};
  std::thread sampler([&] {
    while (!stop) {
      ASSERT_TRUE((*watcher)
                      ->Read([&](Txn& txn) -> absl::Status {
                        ASSIGN_OR_RETURN(
                            auto rows,
                            txn.Query("SELECT COUNT(*) FROM pg_stat_activity "
                                      "WHERE datname = current_database()"));
                        most = std::max(most.load(), rows[0].Int(0));
                        return absl::OkStatus();
                      })
                      .ok());
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        absl::Status s = db->Read([](Txn& txn) {
          return txn.Query("SELECT pg_sleep(0.02)").status();
        });
        EXPECT_TRUE(s.ok()) << s;
      }
    });
  }
  for (auto& t : threads) t.join();
  stop = true;
  sampler.join();
  // Each store's writer, the watcher's one reader, and at most 3 readers.
  EXPECT_GE(most.load(), 3);
  EXPECT_LE(most.load(), 2 + 1 + 3);
}

// NotifyOthers reaches the other stores' listeners at commit (not this
// store's own, and not for an undone job); a listener whose connection is
// lost makes it again and reports the possible gap.
TEST(PostgresDatabaseTest, OtherProcessesHearCommittedAnnouncements) {
  TempPgDatabase pg;
  auto a = OpenOn(pg);
  auto b = OpenOn(pg);
  absl::Mutex mu;
  std::vector<std::string> heard_by_a, heard_by_b;
  int gaps = 0;
  auto listen = [&](PostgresDatabase& db, std::vector<std::string>& heard) {
    auto l = db.ListenToOthers(
        "test_channel",
        [&](absl::string_view p) {
          absl::MutexLock lock(&mu);
          heard.emplace_back(p);
        },
        [&] {
          absl::MutexLock lock(&mu);
          ++gaps;
        });
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *std::move(l) : nullptr;
  };
  auto la = listen(*a, heard_by_a);
  auto lb = listen(*b, heard_by_b);
  ASSERT_TRUE(
      a->ListenToOthers("Bad-Channel", nullptr, nullptr).status().code() ==
      absl::StatusCode::kInvalidArgument);
  auto announce = [&](const std::string& payload, bool fail) {
    return a->WriteAndWait([&](Txn& txn) -> absl::Status {
      RETURN_IF_ERROR(txn.NotifyOthers("test_channel", payload));
      if (fail) return FailedPrecondition("TEST_FAILURE", "undone");
      return absl::OkStatus();
    });
  };
  EXPECT_EQ(ErrorReason(announce("undone", true)), "TEST_FAILURE");
  ASSERT_TRUE(announce("tenant-a 17", false).ok());
  auto heard = [&](size_t n) {
    return [&, n] {
      mu.AssertReaderHeld();
      return heard_by_b.size() >= n;
    };
  };
  {
    absl::MutexLock lock(&mu);
    const auto ready = heard(1);
    ASSERT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(30)));
    EXPECT_EQ(heard_by_b, std::vector<std::string>{"tenant-a 17"});
  }
  // The listener's connection is cut: it comes back and says so.
  ASSERT_TRUE(b->WriteAndWait([](Txn& txn) {
                 return txn
                     .Query(
                         "SELECT pg_terminate_backend(pid) FROM "
                         "pg_stat_activity WHERE query = 'LISTEN "
                         "test_channel' AND datname = current_database()")
                     .status();
               }).ok());
  {
    absl::MutexLock lock(&mu);
    const auto reconnected = [&] {
      mu.AssertReaderHeld();
      return gaps >= 2;  // both listeners were cut
    };
    ASSERT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&reconnected), absl::Seconds(30)));
  }
  ASSERT_TRUE(announce("tenant-a 18", false).ok());
  {
    absl::MutexLock lock(&mu);
    const auto ready = heard(2);
    ASSERT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(30)));
    EXPECT_EQ(heard_by_b.back(), "tenant-a 18");
    EXPECT_TRUE(heard_by_a.empty());  // its own announcements
  }
}

// AfterCommit hooks run once their job is committed, before its done; a
// failed job's hooks are dropped.
TEST(PostgresDatabaseTest, AfterCommitHooksFollowTheirJob) {
  TempPgDatabase pg;
  auto db = OpenOn(pg);
  std::atomic<int> hooks{0};
  std::atomic<bool> hook_before_done{false};
  absl::Notification done;
  db->Write(
      [&](Txn& txn) {
        txn.AfterCommit([&] { ++hooks; });
        return txn.Exec("INSERT INTO items (id, label) VALUES (5, 'h')")
            .status();
      },
      [&](absl::Status s) {
        EXPECT_TRUE(s.ok()) << s;
        hook_before_done = hooks.load() == 1;
        done.Notify();
      });
  done.WaitForNotification();
  EXPECT_TRUE(hook_before_done);
  absl::Status failed = db->WriteAndWait([&](Txn& txn) -> absl::Status {
    txn.AfterCommit([&] { ++hooks; });
    return FailedPrecondition("TEST_FAILURE", "undone");
  });
  EXPECT_EQ(ErrorReason(failed), "TEST_FAILURE");
  EXPECT_EQ(hooks, 1);
}

}  // namespace
}  // namespace careseal::sql
