// Durable jobs: scheduled deliveries, reminders, retries and expiries that
// survive restarts and run once even when several replicas share one
// database.
//
// A job is a row of the `scheduler_jobs` table (migration component
// "scheduler") identified by a caller-chosen key. Callers create, cancel and
// move jobs inside their own write transaction, so a job exists exactly when
// the change that needs it was committed:
//
//   db.Write([&](sql::Txn& txn) -> absl::Status {
//     RETURN_IF_ERROR(store.InsertSession(txn, session));
//     return Schedule(txn, {.key = SessionName(s) + "/deliver:t-48h",
//                           .tenant = s.tenant, .kind = "presession.deliver",
//                           .due = s.start - absl::Hours(48),
//                           .payload = SessionName(s)})
//         .status();
//   }, done);
//
// A Scheduler runs the due jobs of the kinds it has handlers for:
//
//   Scheduler scheduler(db, clock, {.owner = "replica-1"});
//   scheduler.Register("presession.deliver", handler);
//   scheduler.Start(absl::Seconds(5));     // background loop, or
//   scheduler.RunDue(clock.Now());         // one pass (tests, FakeClock)
//
// Run-once: RunDue claims a due job by taking a lease (owner + expiry) in one
// write; the handler's `commit` part then runs in the same transaction that
// marks the job done, guarded by the lease. If the process dies mid-run the
// lease expires and another replica (or the restarted process) takes the job
// over; because the handler's database work and the "done" mark commit
// together, that work happens once. A handler's `effect` part (work outside
// the database, e.g. a call to another service's contract) may run again
// after a crash or a lost lease and must therefore be idempotent, e.g. by
// passing a request_id derived from the job key.
//
// Failures are retried with exponential backoff (backoff_base * 2^(n-1),
// capped at backoff_max) until max_attempts, after which the job is left in
// state "failed" with its last error. Payloads are opaque bytes and must not
// carry health data (store a resource name, not the content).
#ifndef CARESEAL_SERVICES_COMMON_SCHEDULER_SCHEDULER_H_
#define CARESEAL_SERVICES_COMMON_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/clock.h"
#include "services/common/sql/database.h"

namespace careseal::scheduler {

enum class JobState { kPending, kDone, kCancelled, kFailed };
absl::string_view JobStateName(JobState state);

struct Job {
  // Unique across the database; idempotency and cancellation key. Callers
  // build it from resource names (which carry the tenant), e.g.
  // "tenants/t1/sessions/s1/deliver:t-48h".
  std::string key{};
  std::string tenant{};
  std::string kind{};  // selects the handler, e.g. "presession.deliver"
  absl::Time due = absl::InfinitePast();
  std::string payload{};  // opaque bytes; never health data

  // Read back only (ignored by Schedule):
  JobState state = JobState::kPending;
  int attempts = 0;  // claims so far, including the running one
  std::string last_error{};
  std::string lease_owner{};
  absl::Time lease_expiry = absl::InfinitePast();
};

// The migrations of component "scheduler".
std::vector<sql::Migration> SchedulerMigrations();
// Applies them; call once at start-up before any other function here.
absl::Status Migrate(sql::Database& db);

// Creates `job` in the caller's transaction. Idempotent by key: if a job with
// this key already exists (in any state) nothing changes and false is
// returned; true when created. INVALID_ARGUMENT for an empty key, tenant or
// kind or a non-finite due time.
absl::StatusOr<bool> Schedule(sql::Txn& txn, const Job& job);

// Cancels the pending job `key`; true if a pending job was cancelled, false if
// there is none or it already ran, failed or was cancelled.
absl::StatusOr<bool> Cancel(sql::Txn& txn, absl::string_view key);

// Cancels every pending job whose key starts with `prefix` (non-empty);
// returns how many.
absl::StatusOr<int64_t> CancelPrefix(sql::Txn& txn, absl::string_view prefix);

// Moves job `key` to `new_due` and makes it pending again with no attempts
// and no lease, whatever its state (a done delivery for a moved session is
// delivered again). NOT_FOUND (SCHEDULER_JOB_NOT_FOUND) if there is no such
// job.
absl::Status Reschedule(sql::Txn& txn, absl::string_view key,
                        absl::Time new_due);

// The job `key`; NOT_FOUND (SCHEDULER_JOB_NOT_FOUND) if absent.
absl::StatusOr<Job> GetJob(sql::Txn& txn, absl::string_view key);

// Jobs whose key starts with `prefix`, ordered by due time then key.
absl::StatusOr<std::vector<Job>> ListJobs(sql::Txn& txn,
                                          absl::string_view prefix);

// What a job kind does when due. Both parts are optional.
struct Handler {
  // Runs first, outside any transaction, on the thread calling RunDue. May
  // block (with a deadline). Must be idempotent: it can run again for the same
  // job after a crash or a lost lease. An error fails this attempt.
  std::function<absl::Status(const Job& job, absl::Time now)> effect;
  // Runs inside the write transaction that marks the job done; its writes
  // commit with that mark or not at all. It may Schedule/Cancel other jobs.
  // It runs on the database writer thread: it must not block. An error undoes
  // its writes and fails this attempt.
  std::function<absl::Status(sql::Txn& txn, const Job& job, absl::Time now)>
      commit;
};

struct SchedulerOptions {
  // Lease owner id; unique per running Scheduler (e.g. host:pid:n). Empty
  // picks "scheduler-<pid>-<n>".
  std::string owner{};
  absl::Duration lease = absl::Minutes(5);
  int max_attempts = 5;
  absl::Duration backoff_base = absl::Seconds(30);
  absl::Duration backoff_max = absl::Hours(1);
  int batch_size = 32;  // jobs claimed per write
};

struct RunStats {
  int claimed = 0;
  int succeeded = 0;
  int retried = 0;     // failed, will run again after backoff
  int failed = 0;      // failed for the last time (state "failed")
  int lease_lost = 0;  // another owner took the job over meanwhile
};

// Runs due jobs. Register handlers before RunDue/Start. RunDue and the
// background loop block on database writes: never call RunDue on a gRPC
// callback thread or the database writer thread. Thread-safe.
class Scheduler {
 public:
  // `db` and `clock` must outlive the Scheduler.
  Scheduler(sql::Database& db, const Clock& clock,
            SchedulerOptions options = {});
  ~Scheduler();  // stops the background loop
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Handles jobs of `kind`. Jobs of kinds without a handler are left for
  // another Scheduler (e.g. another service's process).
  void Register(std::string kind, Handler handler);

  // Claims and runs every job due at `now` (due <= now, not leased by a live
  // lease) in due order, until none is left. Returns what happened; an error
  // only if the database failed.
  absl::StatusOr<RunStats> RunDue(absl::Time now);

  // Starts a background thread that calls RunDue(clock.Now()) every
  // `interval` (and at once after Wake()). Idempotent.
  void Start(absl::Duration interval);
  // Makes the background loop run now (e.g. after scheduling a job due now).
  void Wake();
  // Stops and joins the background loop. Idempotent.
  void Stop();

  const std::string& owner() const { return options_.owner; }
  // The retry delay after the `attempts`-th failed attempt.
  absl::Duration Backoff(int attempts) const;

 private:
  absl::StatusOr<std::vector<Job>> Claim(absl::Time now);
  // Runs one claimed job; adds to stats.
  void RunOne(const Job& job, absl::Time now, RunStats& stats);
  absl::Status RecordFailure(const Job& job, absl::Time now,
                             const absl::Status& error, RunStats& stats);
  void Loop(absl::Duration interval);
  bool LoopReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_mu_);

  sql::Database& db_;
  const Clock& clock_;
  SchedulerOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Handler> handlers_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex loop_mu_;
  bool stopping_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool wake_ ABSL_GUARDED_BY(loop_mu_) = false;
  std::thread loop_;  // guarded by start_mu_
  absl::Mutex start_mu_;
  absl::Mutex run_mu_;  // one RunDue at a time per Scheduler
};

}  // namespace careseal::scheduler

#endif  // CARESEAL_SERVICES_COMMON_SCHEDULER_SCHEDULER_H_
