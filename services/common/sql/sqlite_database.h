// The embedded default store: SQLite in WAL mode; one writer thread that
// batches queued writes into one transaction (group commit); a completion
// thread that flushes the WAL to stable storage (one fdatasync for every
// batch committed since its last one) and only then runs the batches'
// callbacks, answering the calls, while the writer already runs the next
// batch; a checkpointer thread that copies the WAL back into the database
// off the writer's path; and a pool of reader connections used on callers'
// threads.
#ifndef CARESEAL_SERVICES_COMMON_SQL_SQLITE_DATABASE_H_
#define CARESEAL_SERVICES_COMMON_SQL_SQLITE_DATABASE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "services/common/sql/database.h"
#include "services/common/sql/write_batch.h"

struct sqlite3;

namespace careseal::sql {

class SqliteConnection;

struct SqliteOptions {
  std::string path;        // database file; created if missing
  size_t max_batch = 256;  // writes per group commit
  size_t max_readers = 8;  // pooled reader connections
  int busy_timeout_ms = 5000;
  int writer_cache_kib = 32 << 10;  // page cache of the writer connection
  // New WAL pages after which the checkpointer copies the WAL back into the
  // database (SQLite's own automatic checkpoint is off).
  int checkpoint_pages = 16384;  // 64 MiB of 4 KiB pages
  // The writer's WAL writes gathered into one write per commit, and a
  // checkpoint's copies into runs (sqlite_wal_vfs.h); off: SQLite's own
  // writes, two per WAL page and one per copied page.
  bool coalesce_wal_writes = true;
};

class SqliteDatabase final : public Database {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteDatabase>> Open(
      SqliteOptions options);
  ~SqliteDatabase() override;  // drains queued writes, then closes

  void Write(WriteFn fn, DoneFn done) override;
  absl::Status Read(ReadFn fn) override;
  absl::Status Migrate(absl::string_view component,
                       const std::vector<Migration>& migrations) override;
  Dialect dialect() const override { return Dialect::kSqlite; }

  // Counters for tests and benchmarks.
  int64_t commits() const;
  int64_t committed_writes() const;
  int64_t checkpoints() const;

 private:
  // A batch whose transaction ended: its hooks (if committed) and each job's
  // outcome, for the completion thread.
  struct Outcome {
    bool committed = false;
    std::vector<absl::AnyInvocable<void()>> hooks;
    std::vector<DoneFn> dones;
    std::vector<absl::Status> results;
  };
  explicit SqliteDatabase(SqliteOptions options);
  void WriterLoop();
  void RunBatch(std::vector<internal::WriteJob>& batch);
  void CompletionLoop();
  void CheckpointLoop();
  void RestartWalIfDue();
  void SyncWal();  // on the completion thread
  static int OnWalCommit(void* self, sqlite3* db, const char* name, int pages);
  // The writer and the checkpointer open the file through the coalescing
  // VFS (sqlite_wal_vfs.h) unless options_.coalesce_wal_writes is off.
  enum class Role { kWriter, kCheckpointer, kReader };
  absl::StatusOr<std::unique_ptr<SqliteConnection>> Connect(Role role);

  const SqliteOptions options_;
  std::unique_ptr<SqliteConnection> writer_conn_;

  internal::WriteQueue queue_;

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_
      ABSL_GUARDED_BY(readers_mu_);

  absl::Mutex done_mu_;
  std::deque<Outcome> outcomes_ ABSL_GUARDED_BY(done_mu_);
  bool writer_stopped_ ABSL_GUARDED_BY(done_mu_) = false;

  std::unique_ptr<SqliteConnection> checkpoint_conn_;
  mutable absl::Mutex checkpoint_mu_;
  int wal_pages_ ABSL_GUARDED_BY(checkpoint_mu_) = 0;   // at the last commit
  int wal_copied_ ABSL_GUARDED_BY(checkpoint_mu_) = 0;  // of those, copied
  bool checkpoint_stop_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  int64_t checkpoints_ ABSL_GUARDED_BY(checkpoint_mu_) = 0;
  std::atomic<bool> restart_due_{false};

  int wal_fd_ = -1;  // the completion thread's own descriptor of the WAL
  int db_fd_ = -1;   // the checkpointer's own descriptor of the database

  std::thread writer_;
  std::thread completer_;
  std::thread checkpointer_;
};

}  // namespace careseal::sql

#endif  // CARESEAL_SERVICES_COMMON_SQL_SQLITE_DATABASE_H_
