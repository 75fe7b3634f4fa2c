// The store for clinics that outgrow one machine: PostgreSQL through libpq,
// shared by any number of stateless replicas.
//
// Writes: one writer connection per process batches queued writes into one
// transaction (group commit, a savepoint per job), as the SQLite store does.
// Every write transaction first takes one transaction-scoped advisory lock
// (kWriterLockKey), so the write batches of all replicas sharing the
// database run one after another: the stores' single-writer invariants (the
// audit tree's head, the event log's sequence, the lookups' watermarks)
// hold across replicas, and each batch sees every batch committed before it
// (READ COMMITTED). A job's completion runs after COMMIT has returned with
// synchronous_commit on, i.e. once the batch is durable.
//
// Reads: a pool of at most max_readers connections, each read one
// REPEATABLE READ READ ONLY transaction (one consistent snapshot).
//
// SQL is the stores' portable text: `?` placeholders become `$1..$n`,
// statements are prepared once per connection, and migrations written for
// SQLite are translated (TranslateDdlForPostgres). Results are read as text
// and typed by their column's type: integers, numerics and booleans as
// integers, bytea as bytes, the rest as text.
#ifndef CARESEAL_SERVICES_COMMON_SQL_POSTGRES_DATABASE_H_
#define CARESEAL_SERVICES_COMMON_SQL_POSTGRES_DATABASE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "services/common/sql/database.h"
#include "services/common/sql/write_batch.h"

namespace careseal::sql {

class PgConnection;

struct PostgresOptions {
  // A libpq connection string ("host=... dbname=...") or URI
  // ("postgresql://user@host:port/db"). Passwords are best left to
  // PGPASSFILE / ~/.pgpass rather than put here.
  std::string conninfo;
  size_t max_batch = 256;   // writes per group commit
  size_t max_readers = 16;  // reader connections open at most
};

// The advisory lock every write transaction takes first.
inline constexpr int64_t kWriterLockKey = 0x43617265'5365616cLL;  // "CareSeal"

// `?` placeholders outside quoted text and comments become $1, $2, ...
std::string NumberPlaceholders(absl::string_view sql);

// A migration statement written for SQLite, in PostgreSQL's terms: BLOB ->
// BYTEA, INTEGER -> BIGINT (SQLite's integers are 64-bit), no WITHOUT ROWID.
// Words inside quoted text are left alone.
std::string TranslateDdlForPostgres(absl::string_view sql);

class PostgresDatabase final : public Database {
 public:
  // Connects the writer (fails if the server cannot be reached).
  static absl::StatusOr<std::unique_ptr<PostgresDatabase>> Open(
      PostgresOptions options);
  ~PostgresDatabase() override;  // drains queued writes, then closes

  void Write(WriteFn fn, DoneFn done) override;
  absl::Status Read(ReadFn fn) override;
  absl::Status Migrate(absl::string_view component,
                       const std::vector<Migration>& migrations) override;
  Dialect dialect() const override { return Dialect::kPostgres; }
  // LISTEN on a connection of its own; announcements made by this process's
  // writer are skipped (its AfterCommit hooks ran for them).
  absl::StatusOr<std::unique_ptr<Listener>> ListenToOthers(
      const std::string& channel,
      absl::AnyInvocable<void(absl::string_view payload)> fn,
      absl::AnyInvocable<void()> missed) override;

  // Counters for tests and benchmarks.
  int64_t commits() const;
  int64_t committed_writes() const;

 private:
  explicit PostgresDatabase(PostgresOptions options);
  void WriterLoop();
  void RunBatch(std::vector<internal::WriteJob>& batch);

  const PostgresOptions options_;
  std::unique_ptr<PgConnection> writer_conn_;
  std::atomic<int> writer_pid_{0};  // the writer's server process

  internal::WriteQueue queue_;

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<PgConnection>> idle_readers_
      ABSL_GUARDED_BY(readers_mu_);
  size_t readers_open_ ABSL_GUARDED_BY(readers_mu_) = 0;  // idle or in use

  std::thread writer_;
};

}  // namespace careseal::sql

#endif  // CARESEAL_SERVICES_COMMON_SQL_POSTGRES_DATABASE_H_
