// What the SQLite and PostgreSQL stores share around their writer thread:
// the queue of write jobs it drains, running a batch's jobs each in its own
// savepoint, settling the jobs' results with the commit's, and the
// schema_migrations bookkeeping. Internal to the stores (services/common/sql).
#ifndef CARESEAL_SERVICES_COMMON_SQL_WRITE_BATCH_H_
#define CARESEAL_SERVICES_COMMON_SQL_WRITE_BATCH_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "services/common/sql/database.h"

namespace careseal::sql::internal {

struct WriteJob {
  Database::WriteFn fn;
  Database::DoneFn done;
};

// Write jobs queued by any thread for one writer thread, with the counters
// both stores expose. Thread-safe.
class WriteQueue {
 public:
  // Queues a job; once stopping, answers `done` at once with UNAVAILABLE
  // (SHUTTING_DOWN).
  void Push(Database::WriteFn fn, Database::DoneFn done);
  // Waits for jobs and moves up to `max` of them into `batch`; false once
  // stopping and nothing is left.
  bool Take(size_t max, std::vector<WriteJob>& batch);
  // Refuses new jobs; Take drains the queued ones, then returns false.
  void Stop();

  // Counts a batch that ended (committed or not) with `ok` jobs committed.
  void CountBatch(int64_t ok);
  int64_t commits() const;
  int64_t committed_writes() const;

 private:
  mutable absl::Mutex mu_;
  std::deque<WriteJob> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t committed_writes_ ABSL_GUARDED_BY(mu_) = 0;
};

// Runs the jobs of `batch`, inside the transaction open on `conn`, each in
// its own savepoint: a failed job is rolled back alone and its AfterCommit
// hooks dropped. Stops early if `conn` is lost (the rest keep OK and get the
// commit's error). Returns each job's status.
//
// Conn: a Txn with Run(sql) -> Status, Healthy(), after_commit_count() and
// DropAfterCommitFrom(n).
template <typename Conn>
std::vector<absl::Status> RunJobsInSavepoints(Conn& conn,
                                              std::vector<WriteJob>& batch) {
  std::vector<absl::Status> results(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const size_t hooks = conn.after_commit_count();
    absl::Status s = conn.Run("SAVEPOINT job");
    if (s.ok()) {
      s = batch[i].fn(conn);
      if (s.ok()) {
        s = conn.Run("RELEASE SAVEPOINT job");
      } else {
        // Undo this job only; its error goes to its own caller.
        (void)conn.Run("ROLLBACK TO SAVEPOINT job");
        (void)conn.Run("RELEASE SAVEPOINT job");
      }
    }
    if (!s.ok()) conn.DropAfterCommitFrom(hooks);
    results[i] = std::move(s);
    if (!conn.Healthy()) break;
  }
  return results;
}

// After the batch's commit (or its failure): a job that succeeded, or failed
// without a reason of its own, gets the commit's error. Returns how many
// jobs are committed.
int64_t SettleResults(const absl::Status& commit,
                      std::vector<absl::Status>& results);

// Inside `txn`: creates schema_migrations if missing and applies the
// migrations of `component` it does not record yet, each statement (split at
// ';') through `run`, recording each.
absl::Status ApplyMigrations(
    Txn& txn, absl::string_view component,
    const std::vector<Migration>& migrations,
    absl::FunctionRef<absl::Status(absl::string_view statement)> run);

}  // namespace careseal::sql::internal

#endif  // CARESEAL_SERVICES_COMMON_SQL_WRITE_BATCH_H_
