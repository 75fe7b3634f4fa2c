#include "services/common/sql/sqlite_database.h"

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "services/common/macros.h"
#include "services/common/sql/sqlite_config.h"
#include "services/common/sql/sqlite_page_cache.h"
#include "services/common/sql/sqlite_wal_vfs.h"
#include "services/common/status.h"
#include "tests/testing/temp_dir.h"

namespace careseal::sql {
namespace {

const std::vector<Migration> kSchema = {
    {1,
     "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL, "
     "data BLOB)"},
    {2, "CREATE INDEX items_label ON items (label)"},
};

std::unique_ptr<SqliteDatabase> OpenAt(const std::string& path) {
  auto db = SqliteDatabase::Open({.path = path, .checkpoint_pages = 16});
  EXPECT_TRUE(db.ok()) << db.status();
  EXPECT_TRUE((*db)->Migrate("test", kSchema).ok());
  return std::move(*db);
}

int64_t CountItems(Database& db) {
  int64_t count = -1;
  EXPECT_TRUE(db.Read([&](Txn& txn) -> absl::Status {
                  auto rows = txn.Query("SELECT COUNT(*) FROM items");
                  if (!rows.ok()) return rows.status();
                  count = (*rows)[0].Int(0);
                  return absl::OkStatus();
                }).ok());
  return count;
}

TEST(SqliteDatabaseTest, WriteIsVisibleAndSurvivesReopen) {
  testing::TempDir dir;
  const std::string path = dir.File("db.sqlite");
  {
    auto db = OpenAt(path);
    ASSERT_TRUE(db->WriteAndWait([](Txn& txn) {
                    return txn
                        .Exec(
                            "INSERT INTO items (id, label, data) VALUES (?, "
                            "?, ?)",
                            {Int(1), Text("a"), Bytes(std::string("\0x", 2))})
                        .status();
                  }).ok());
  }
  auto db = OpenAt(path);  // migrations are not applied twice
  ASSERT_TRUE(db->Read([](Txn& txn) -> absl::Status {
                  auto row =
                      txn.QueryOne("SELECT label, data FROM items WHERE id = ?",
                                   {Int(1)}, "item");
                  EXPECT_TRUE(row.ok());
                  EXPECT_EQ(row->Str(0), "a");
                  EXPECT_EQ(row->Str(1), std::string("\0x", 2));
                  return absl::OkStatus();
                }).ok());
}

// The store configures SQLite before its first use: no memory statistics
// (a process-wide mutex in every malloc and free) and the page cache
// wrapper, which sees the store's end-of-transaction truncations.
TEST(SqliteDatabaseTest, StoreConfiguresSqliteBeforeItsFirstUse) {
  testing::TempDir dir;
  const PageCacheCounters before = PageCacheCountersNow();
  auto db = OpenAt(dir.File("db.sqlite"));
  ASSERT_TRUE(db->WriteAndWait([](Txn& txn) {
                  return txn
                      .Exec("INSERT INTO items (id, label) VALUES (1, 'a')")
                      .status();
                }).ok());
  EXPECT_EQ(CountItems(*db), 1);
  EXPECT_TRUE(ConfigureSqlite());
  EXPECT_EQ(sqlite3_memory_used(), 0) << "memory statistics are on";
  EXPECT_GT(PageCacheCountersNow().truncations, before.truncations);
}

TEST(SqliteDatabaseTest, FailedJobIsUndoneAloneInItsBatch) {
  testing::TempDir dir;
  auto db = OpenAt(dir.File("db.sqlite"));
  // Queue three writes back to back so that they share a batch; the middle
  // one inserts a row and then fails.
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
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(ErrorReason(results[1]), "TEST_FAILURE");
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ(CountItems(*db), 2);
}

TEST(SqliteDatabaseTest, UniqueViolationIsRecognised) {
  testing::TempDir dir;
  auto db = OpenAt(dir.File("db.sqlite"));
  auto insert = [](Txn& txn) {
    return txn.Exec("INSERT INTO items (id, label) VALUES (7, 'x')").status();
  };
  ASSERT_TRUE(db->WriteAndWait(insert).ok());
  absl::Status again = db->WriteAndWait(insert);
  EXPECT_TRUE(IsUniqueViolation(again)) << again;
}

TEST(SqliteDatabaseTest, ConcurrentWritesAreGroupCommitted) {
  testing::TempDir dir;
  auto db = OpenAt(dir.File("db.sqlite"));
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        int64_t id = t * kPerThread + i;
        absl::Status s = db->WriteAndWait([id](Txn& txn) {
          return txn
              .Exec("INSERT INTO items (id, label) VALUES (?, 'g')", {Int(id)})
              .status();
        });
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(CountItems(*db), kThreads * kPerThread);
  EXPECT_EQ(db->committed_writes(), kThreads * kPerThread + 1);  // + migration
  // Eight writers waiting on each other's commits must share transactions.
  EXPECT_LT(db->commits(), kThreads * kPerThread);
}

// The WAL is copied back by the checkpointer thread (SQLite's automatic
// checkpoint inside COMMIT is off): with a small threshold, many commits
// under a reader that keeps reading leave the WAL file bounded, every row
// readable, and the data intact after reopening.
TEST(SqliteDatabaseTest, CheckpointerKeepsTheWalBoundedUnderReaders) {
  testing::TempDir dir;
  const std::string path = dir.File("db.sqlite");
  constexpr int kRows = 3000;
  {
    auto opened = SqliteDatabase::Open({.path = path, .checkpoint_pages = 16});
    ASSERT_TRUE(opened.ok()) << opened.status();
    std::unique_ptr<SqliteDatabase> db = std::move(*opened);
    ASSERT_TRUE(db->Migrate("test", kSchema).ok());
    std::atomic<bool> stop{false};
    std::thread reader([&] {
      while (!stop) CountItems(*db);
    });
    const std::string blob(2000, 'x');  // about half a page per row
    for (int i = 0; i < kRows; ++i) {
      ASSERT_TRUE(db->WriteAndWait([&](Txn& txn) {
                      return txn
                          .Exec(
                              "INSERT INTO items (id, label, data) VALUES "
                              "(?, 'w', ?)",
                              {Int(i), Bytes(blob)})
                          .status();
                    }).ok());
    }
    stop = true;
    reader.join();
    EXPECT_EQ(CountItems(*db), kRows);
    EXPECT_GT(db->checkpoints(), 0);
    // ~6 MB went through the WAL; restarting it after each checkpoint keeps
    // the file far below that.
    std::error_code ec;
    const auto wal = std::filesystem::file_size(path + "-wal", ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_LT(wal, 2u << 20) << "WAL file bytes";
  }
  auto db = OpenAt(path);
  EXPECT_EQ(CountItems(*db), kRows);
}

// Completions run off the writer thread but in commit order, each after its
// own commit: a job's done sees the commit counter include it.
TEST(SqliteDatabaseTest, CompletionsRunInCommitOrder) {
  testing::TempDir dir;
  auto db = OpenAt(dir.File("db.sqlite"));
  constexpr int kJobs = 500;
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
  for (int i = 0; i < kJobs; ++i) EXPECT_EQ(order[i], i);
}

TEST(SqliteDatabaseTest, BadSqlIsAnErrorNotACrash) {
  testing::TempDir dir;
  auto db = OpenAt(dir.File("db.sqlite"));
  absl::Status s = db->WriteAndWait([](Txn& txn) {
    return txn.Exec("INSERT INTO nowhere VALUES (1)").status();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  absl::Status p = db->Read(
      [](Txn& txn) { return txn.Query("SELECT ? + ?", {Int(1)}).status(); });
  EXPECT_FALSE(p.ok());
}

// The writer's WAL writes are gathered into one write per commit
// (sqlite_wal_vfs.h). Readers on other connections, which read the WAL
// through the default VFS, must never see a commit whose frames are not in
// the file: every batch writes a marker row and blobs of one batch-wide
// size; a reader that sees the marker must read every blob whole. Sizes run
// from one page to past the 4 MiB early write, and past the default VFS's
// 128 KiB limit per write. Two stores are open on the file and take turns,
// so that two writer connections of the VFS share the WAL's name.
TEST(SqliteDatabaseTest, ReadersNeverSeeACommitBeforeItsWalFrames) {
  testing::TempDir dir;
  auto db = OpenAt(dir.File("db.sqlite"));
  auto second = OpenAt(dir.File("db.sqlite"));
  const WalVfsCounters before = WalVfsCountersNow();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> checked{0};
  std::vector<std::thread> readers;
  absl::Mutex failure_mu;
  std::string failure;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        absl::Status s = db->Read([&](Txn& txn) -> absl::Status {
          auto rows = txn.Query(
              "SELECT label, length(data), COUNT(*) FROM items WHERE label "
              "LIKE 'batch-%' GROUP BY label");
          if (!rows.ok()) return rows.status();
          for (const Row& row : *rows) {
            auto blobs = txn.Query(
                "SELECT COUNT(*), MIN(length(data)), MAX(length(data)), "
                "MIN(hex(substr(data, -8))) = MAX(hex(substr(data, -8))) "
                "FROM items WHERE label = ?",
                {Text("blob-" + row.Str(0).substr(6))});
            if (!blobs.ok()) return blobs.status();
            const Row& b = (*blobs)[0];
            if (b.Int(0) != 4 || b.Int(1) != row.Int(1) ||
                b.Int(2) != row.Int(1) || b.Int(3) != 1) {
              return absl::InternalError("a batch is seen in part: " +
                                         row.Str(0));
            }
            checked.fetch_add(1);
          }
          return absl::OkStatus();
        });
        if (!s.ok()) {
          absl::MutexLock lock(&failure_mu);
          failure = s.ToString();
          return;
        }
      }
    });
  }
  const int sizes[] = {100, 5000, 40000, 70000, 200000, 1500000};
  int64_t id = 1;
  int turn = 0;
  for (int round = 0; round < 3; ++round) {
    for (int size : sizes) {
      const std::string batch = absl::StrCat(round, "-", size);
      Database& store = ++turn % 2 == 0 ? *second : *db;
      ASSERT_TRUE(
          store
              .WriteAndWait([&](Txn& txn) -> absl::Status {
                const std::string blob(size, static_cast<char>('a' + round));
                for (int i = 0; i < 4; ++i) {
                  RETURN_IF_ERROR(
                      txn.Exec("INSERT INTO items (id, label, data) "
                               "VALUES (?, ?, ?)",
                               {Int(id++), Text("blob-" + batch), Bytes(blob)})
                          .status());
                }
                return txn
                    .Exec(
                        "INSERT INTO items (id, label, data) VALUES "
                        "(?, ?, ?)",
                        {Int(id++), Text("batch-" + batch),
                         Bytes(std::string(size, 'm'))})
                    .status();
              })
              .ok());
    }
  }
  stop.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(failure, "");
  EXPECT_GT(checked.load(), 0);
  // Gathered: far fewer writes reached the file than SQLite asked for.
  const WalVfsCounters after = WalVfsCountersNow();
  const int64_t asked = after.wal_writes - before.wal_writes;
  const int64_t made = after.file_writes - before.file_writes;
  EXPECT_GT(asked, 1000);
  EXPECT_LT(made * 4, asked);
  // And all of it is there after a reopen.
  db.reset();
  second.reset();
  auto reopened = OpenAt(dir.File("db.sqlite"));
  EXPECT_EQ(CountItems(*reopened), id - 1);
}

TEST(SqliteDatabaseTest, ReadersNeverSeeACheckpointedPageBeforeItIsInTheFile) {
  // Two groups of 24 rows (about 36 pages each) and a ledger row. Commit v
  // rewrites one group with version v and records in the ledger which
  // version each group holds. The checkpointer copies the WAL back every 64
  // pages, mostly in runs of neighbouring pages that reach the file as one
  // write each. Once a checkpoint has recorded a group's pages as copied, a
  // reader takes them from the database file while the ledger (rewritten by
  // every commit) still comes from the WAL: had the copy not reached the
  // file by then, the reader would see the group older than the ledger says.
  testing::TempDir dir;
  auto opened = SqliteDatabase::Open(
      {.path = dir.File("db.sqlite"), .checkpoint_pages = 64});
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<SqliteDatabase> db = *std::move(opened);
  ASSERT_TRUE(db->Migrate("test", kSchema).ok());
  constexpr int kRows = 24;
  constexpr int kLedger = 1000;
  int versions[2] = {0, 0};
  auto write_version = [&](int version) {
    const int group = version % 2;
    versions[group] = version;
    return db->WriteAndWait([&](Txn& txn) -> absl::Status {
      const std::string blob(5000, static_cast<char>('a' + version % 26));
      for (int i = 0; i < kRows; ++i) {
        RETURN_IF_ERROR(
            txn.Exec("INSERT OR REPLACE INTO items (id, label, data) VALUES "
                     "(?, ?, ?)",
                     {Int(group * 100 + i + 1), Text(absl::StrCat(version)),
                      Bytes(blob)})
                .status());
      }
      return txn
          .Exec(
              "INSERT OR REPLACE INTO items (id, label, data) VALUES "
              "(?, ?, NULL)",
              {Int(kLedger), Text(absl::StrCat(versions[0], " ", versions[1]))})
          .status();
    });
  };
  ASSERT_TRUE(write_version(0).ok());
  ASSERT_TRUE(write_version(1).ok());
  const WalVfsCounters before = WalVfsCountersNow();
  const int64_t checkpoints_before = db->checkpoints();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> checked{0};
  absl::Mutex failure_mu;
  std::string failure;
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        absl::Status s = db->Read([&](Txn& txn) -> absl::Status {
          auto ledger = txn.QueryOne("SELECT label FROM items WHERE id = ?",
                                     {Int(kLedger)}, "ledger");
          if (!ledger.ok()) return ledger.status();
          auto groups = txn.Query(
              "SELECT id / 100, MIN(label), MAX(label), COUNT(*), "
              "MIN(hex(substr(data, 1, 1) || substr(data, -1))), "
              "MAX(hex(substr(data, 1, 1) || substr(data, -1))) "
              "FROM items WHERE id < ? GROUP BY id / 100 ORDER BY 1",
              {Int(kLedger)});
          if (!groups.ok()) return groups.status();
          std::string seen;
          for (const Row& g : *groups) {
            if (g.Str(1) != g.Str(2) || g.Int(3) != kRows ||
                g.Str(4) != g.Str(5)) {
              return absl::InternalError("a group mixes versions");
            }
            absl::StrAppend(&seen, seen.empty() ? "" : " ", g.Str(1));
          }
          if (seen != ledger->Str(0)) {
            return absl::InternalError(absl::StrCat("groups hold versions ",
                                                    seen, ", the ledger says ",
                                                    ledger->Str(0)));
          }
          checked.fetch_add(1);
          return absl::OkStatus();
        });
        if (!s.ok()) {
          absl::MutexLock lock(&failure_mu);
          failure = s.ToString();
          return;
        }
      }
    });
  }
  for (int version = 2; version <= 400; ++version) {
    ASSERT_TRUE(write_version(version).ok());
  }
  stop.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(failure, "");
  EXPECT_GT(checked.load(), 0);
  EXPECT_GT(db->checkpoints() - checkpoints_before, 10);
  const WalVfsCounters after = WalVfsCountersNow();
  const int64_t copies = after.checkpoint_writes - before.checkpoint_writes;
  const int64_t asked = after.wal_writes - before.wal_writes + copies;
  const int64_t made = after.file_writes - before.file_writes;
  EXPECT_GT(copies, 1000);
  EXPECT_LT(made * 4, asked);
  db.reset();
  auto reopened = SqliteDatabase::Open({.path = dir.File("db.sqlite")});
  ASSERT_TRUE(reopened.ok());
  ASSERT_TRUE((*reopened)
                  ->Read([&](Txn& txn) -> absl::Status {
                    auto ledger =
                        txn.QueryOne("SELECT label FROM items WHERE id = ?",
                                     {Int(kLedger)}, "ledger");
                    if (!ledger.ok()) return ledger.status();
                    EXPECT_EQ(ledger->Str(0), "400 399");
                    return absl::OkStatus();
                  })
                  .ok());
}

}  // namespace
}  // namespace careseal::sql
