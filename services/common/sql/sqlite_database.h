// The embedded default store: SQLite in WAL mode with synchronous=FULL, one
// writer thread that batches queued writes into one durable transaction
// (group commit), and a pool of reader connections used on callers' threads.
#ifndef CARESEAL_SERVICES_COMMON_SQL_SQLITE_DATABASE_H_
#define CARESEAL_SERVICES_COMMON_SQL_SQLITE_DATABASE_H_

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "services/common/sql/database.h"

struct sqlite3;

namespace careseal::sql {

class SqliteConnection;

struct SqliteOptions {
  std::string path;        // database file; created if missing
  size_t max_batch = 256;  // writes per group commit
  size_t max_readers = 8;  // pooled reader connections
  int busy_timeout_ms = 5000;
  int writer_cache_kib = 32 << 10;  // page cache of the writer connection
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

 private:
  struct Job {
    WriteFn fn;
    DoneFn done;
  };
  explicit SqliteDatabase(SqliteOptions options);
  void WriterLoop();
  void RunBatch(std::vector<Job>& batch);
  absl::StatusOr<std::unique_ptr<SqliteConnection>> Connect(bool writer);

  const SqliteOptions options_;
  std::unique_ptr<SqliteConnection> writer_conn_;

  mutable absl::Mutex queue_mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  int64_t commits_ ABSL_GUARDED_BY(queue_mu_) = 0;
  int64_t committed_writes_ ABSL_GUARDED_BY(queue_mu_) = 0;

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_
      ABSL_GUARDED_BY(readers_mu_);

  std::thread writer_;
};

}  // namespace careseal::sql

#endif  // CARESEAL_SERVICES_COMMON_SQL_SQLITE_DATABASE_H_
