#include "services/common/scheduler/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/macros.h"
#include "services/common/status.h"

namespace careseal::scheduler {
namespace {

constexpr char kColumns[] =
    "job_key, tenant, kind, due_us, payload, state, attempts, last_error, "
    "lease_owner, lease_expiry_us";

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

JobState StateFromName(absl::string_view name) {
  if (name == "done") return JobState::kDone;
  if (name == "cancelled") return JobState::kCancelled;
  if (name == "failed") return JobState::kFailed;
  return JobState::kPending;
}

Job JobFromRow(const sql::Row& row) {
  Job job;
  job.key = row.Str(0);
  job.tenant = row.Str(1);
  job.kind = row.Str(2);
  job.due = FromMicros(row.Int(3));
  job.payload = row.Str(4);
  job.state = StateFromName(row.Str(5));
  job.attempts = static_cast<int>(row.Int(6));
  job.last_error = row.Str(7);
  job.lease_owner = row.Str(8);
  job.lease_expiry =
      row.IsNull(9) ? absl::InfinitePast() : FromMicros(row.Int(9));
  return job;
}

absl::Status JobNotFound() {
  return NotFound("SCHEDULER_JOB_NOT_FOUND", "no scheduled job has this key");
}

std::string DefaultOwner() {
  static std::atomic<int> counter{0};
  return absl::StrCat("scheduler-", getpid(), "-", counter.fetch_add(1));
}

}  // namespace

absl::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kPending:
      return "pending";
    case JobState::kDone:
      return "done";
    case JobState::kCancelled:
      return "cancelled";
    case JobState::kFailed:
      return "failed";
  }
  return "pending";
}

std::vector<sql::Migration> SchedulerMigrations() {
  return {
      {1,
       "CREATE TABLE scheduler_jobs ("
       " job_key TEXT PRIMARY KEY,"
       " tenant TEXT NOT NULL,"
       " kind TEXT NOT NULL,"
       " due_us BIGINT NOT NULL,"
       " payload BLOB NOT NULL,"
       " state TEXT NOT NULL,"
       " attempts BIGINT NOT NULL DEFAULT 0,"
       " last_error TEXT NOT NULL DEFAULT '',"
       " lease_owner TEXT NOT NULL DEFAULT '',"
       " lease_expiry_us BIGINT,"
       " updated_us BIGINT);"
       "CREATE INDEX scheduler_jobs_due ON scheduler_jobs (state, due_us);"
       "CREATE INDEX scheduler_jobs_tenant ON scheduler_jobs (tenant)"},
  };
}

absl::Status Migrate(sql::Database& db) {
  return db.Migrate("scheduler", SchedulerMigrations());
}

absl::StatusOr<bool> Schedule(sql::Txn& txn, const Job& job) {
  if (job.key.empty()) {
    return InvalidField("key", "SCHEDULER_KEY_REQUIRED", "a job needs a key");
  }
  if (job.tenant.empty()) {
    return InvalidField("tenant", "SCHEDULER_TENANT_REQUIRED",
                        "a job needs a tenant");
  }
  if (job.kind.empty()) {
    return InvalidField("kind", "SCHEDULER_KIND_REQUIRED",
                        "a job needs a kind");
  }
  if (job.due == absl::InfinitePast() || job.due == absl::InfiniteFuture()) {
    return InvalidField("due", "SCHEDULER_DUE_INVALID",
                        "a job needs a finite due time");
  }
  ASSIGN_OR_RETURN(
      int64_t changed,
      txn.Exec("INSERT INTO scheduler_jobs (job_key, tenant, kind, due_us, "
               "payload, state, attempts, last_error, lease_owner, "
               "lease_expiry_us, updated_us) VALUES (?, ?, ?, ?, ?, "
               "'pending', 0, '', '', NULL, NULL) "
               "ON CONFLICT (job_key) DO NOTHING",
               {sql::Text(job.key), sql::Text(job.tenant), sql::Text(job.kind),
                sql::Int(Micros(job.due)), sql::Bytes(job.payload)}));
  return changed == 1;
}

absl::StatusOr<bool> Cancel(sql::Txn& txn, absl::string_view key) {
  ASSIGN_OR_RETURN(int64_t changed,
                   txn.Exec("UPDATE scheduler_jobs SET state = 'cancelled', "
                            "lease_owner = '', lease_expiry_us = NULL "
                            "WHERE job_key = ? AND state = 'pending'",
                            {sql::Text(std::string(key))}));
  return changed == 1;
}

absl::StatusOr<int64_t> CancelPrefix(sql::Txn& txn, absl::string_view prefix) {
  if (prefix.empty()) {
    return InvalidField("prefix", "SCHEDULER_PREFIX_REQUIRED",
                        "cancelling by prefix needs a non-empty prefix");
  }
  return txn.Exec(
      "UPDATE scheduler_jobs SET state = 'cancelled', lease_owner = '', "
      "lease_expiry_us = NULL WHERE substr(job_key, 1, CAST(? AS INTEGER)) = ? "
      "AND state = 'pending'",
      {sql::Int(static_cast<int64_t>(prefix.size())),
       sql::Text(std::string(prefix))});
}

absl::Status Reschedule(sql::Txn& txn, absl::string_view key,
                        absl::Time new_due) {
  if (new_due == absl::InfinitePast() || new_due == absl::InfiniteFuture()) {
    return InvalidField("due", "SCHEDULER_DUE_INVALID",
                        "a job needs a finite due time");
  }
  ASSIGN_OR_RETURN(
      int64_t changed,
      txn.Exec("UPDATE scheduler_jobs SET due_us = ?, state = 'pending', "
               "attempts = 0, last_error = '', lease_owner = '', "
               "lease_expiry_us = NULL WHERE job_key = ?",
               {sql::Int(Micros(new_due)), sql::Text(std::string(key))}));
  if (changed == 0) return JobNotFound();
  return absl::OkStatus();
}

absl::StatusOr<Job> GetJob(sql::Txn& txn, absl::string_view key) {
  ASSIGN_OR_RETURN(
      std::vector<sql::Row> rows,
      txn.Query(absl::StrCat("SELECT ", kColumns,
                             " FROM scheduler_jobs WHERE job_key = ?"),
                {sql::Text(std::string(key))}));
  if (rows.empty()) return JobNotFound();
  return JobFromRow(rows[0]);
}

absl::StatusOr<std::vector<Job>> ListJobs(sql::Txn& txn,
                                          absl::string_view prefix) {
  ASSIGN_OR_RETURN(
      std::vector<sql::Row> rows,
      txn.Query(absl::StrCat("SELECT ", kColumns,
                             " FROM scheduler_jobs WHERE substr(job_key, 1, "
                             "CAST(? AS INTEGER)) = ? ORDER BY due_us, "
                             "job_key"),
                {sql::Int(static_cast<int64_t>(prefix.size())),
                 sql::Text(std::string(prefix))}));
  std::vector<Job> jobs;
  jobs.reserve(rows.size());
  for (const sql::Row& row : rows) jobs.push_back(JobFromRow(row));
  return jobs;
}

Scheduler::Scheduler(sql::Database& db, const Clock& clock,
                     SchedulerOptions options)
    : db_(db), clock_(clock), options_(std::move(options)) {
  if (options_.owner.empty()) options_.owner = DefaultOwner();
  options_.max_attempts = std::max(1, options_.max_attempts);
  options_.batch_size = std::max(1, options_.batch_size);
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Register(std::string kind, Handler handler) {
  absl::MutexLock lock(&mu_);
  handlers_[std::move(kind)] = std::move(handler);
}

absl::Duration Scheduler::Backoff(int attempts) const {
  absl::Duration d = options_.backoff_base;
  for (int i = 1; i < attempts && d < options_.backoff_max; ++i) d *= 2;
  return std::min(d, options_.backoff_max);
}

absl::StatusOr<std::vector<Job>> Scheduler::Claim(absl::Time now) {
  std::vector<std::string> kinds;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [kind, handler] : handlers_) kinds.push_back(kind);
  }
  std::vector<Job> claimed;
  if (kinds.empty()) return claimed;
  std::string placeholders;
  for (size_t i = 0; i < kinds.size(); ++i) {
    absl::StrAppend(&placeholders, i == 0 ? "?" : ", ?");
  }
  const std::string select = absl::StrCat(
      "SELECT ", kColumns,
      " FROM scheduler_jobs WHERE state = 'pending' AND due_us <= ? AND "
      "(lease_expiry_us IS NULL OR lease_expiry_us <= ?) AND kind IN (",
      placeholders, ") ORDER BY due_us, job_key LIMIT ?",
      db_.dialect() == sql::Dialect::kPostgres ? " FOR UPDATE SKIP LOCKED"
                                               : "");
  const int64_t now_us = Micros(now);
  const int64_t expiry_us = Micros(now + options_.lease);
  absl::Status status = db_.WriteAndWait([&](sql::Txn& txn) -> absl::Status {
    claimed.clear();
    std::vector<sql::Value> params = {sql::Int(now_us), sql::Int(now_us)};
    for (const std::string& kind : kinds) params.push_back(sql::Text(kind));
    params.push_back(sql::Int(options_.batch_size));
    ASSIGN_OR_RETURN(std::vector<sql::Row> rows, txn.Query(select, params));
    for (const sql::Row& row : rows) {
      Job job = JobFromRow(row);
      // Conditional on the same predicate: a concurrent claimer (another
      // replica) that won the row makes this update change nothing.
      ASSIGN_OR_RETURN(
          int64_t changed,
          txn.Exec("UPDATE scheduler_jobs SET lease_owner = ?, "
                   "lease_expiry_us = ?, attempts = attempts + 1, "
                   "updated_us = ? WHERE job_key = ? AND state = 'pending' "
                   "AND (lease_expiry_us IS NULL OR lease_expiry_us <= ?)",
                   {sql::Text(options_.owner), sql::Int(expiry_us),
                    sql::Int(now_us), sql::Text(job.key), sql::Int(now_us)}));
      if (changed != 1) continue;
      job.attempts += 1;
      job.lease_owner = options_.owner;
      job.lease_expiry = FromMicros(expiry_us);
      claimed.push_back(std::move(job));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return claimed;
}

absl::Status Scheduler::RecordFailure(const Job& job, absl::Time now,
                                      const absl::Status& error,
                                      RunStats& stats) {
  const bool final_attempt = job.attempts >= options_.max_attempts;
  const absl::Time next_due = now + Backoff(job.attempts);
  // The reason (or code) only: messages of other services' errors are not
  // ours to store, and none may carry health data anyway.
  std::string what = ErrorReason(error);
  if (what.empty()) what = absl::StatusCodeToString(error.code());
  bool recorded = false;
  RETURN_IF_ERROR(db_.WriteAndWait([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        int64_t changed,
        txn.Exec("UPDATE scheduler_jobs SET state = ?, due_us = ?, "
                 "last_error = ?, lease_owner = '', lease_expiry_us = NULL, "
                 "updated_us = ? WHERE job_key = ? AND lease_owner = ? AND "
                 "state = 'pending'",
                 {sql::Text(final_attempt ? "failed" : "pending"),
                  sql::Int(Micros(final_attempt ? job.due : next_due)),
                  sql::Text(what), sql::Int(Micros(now)), sql::Text(job.key),
                  sql::Text(options_.owner)}));
    recorded = changed == 1;
    return absl::OkStatus();
  }));
  if (!recorded) {
    ++stats.lease_lost;
  } else if (final_attempt) {
    ++stats.failed;
  } else {
    ++stats.retried;
  }
  return absl::OkStatus();
}

void Scheduler::RunOne(const Job& job, absl::Time now, RunStats& stats) {
  Handler handler;
  {
    absl::MutexLock lock(&mu_);
    auto it = handlers_.find(job.kind);
    if (it != handlers_.end()) handler = it->second;
  }
  absl::Status status = absl::OkStatus();
  if (handler.effect) status = handler.effect(job, now);
  bool lost = false;
  if (status.ok()) {
    status = db_.WriteAndWait([&](sql::Txn& txn) -> absl::Status {
      // Mark done first, guarded by our lease: if another owner took the job
      // over, nothing of this run commits.
      ASSIGN_OR_RETURN(
          int64_t changed,
          txn.Exec("UPDATE scheduler_jobs SET state = 'done', last_error = "
                   "'', lease_owner = '', lease_expiry_us = NULL, updated_us "
                   "= ? WHERE job_key = ? AND lease_owner = ? AND state = "
                   "'pending'",
                   {sql::Int(Micros(now)), sql::Text(job.key),
                    sql::Text(options_.owner)}));
      if (changed != 1) {
        lost = true;
        return Error(absl::StatusCode::kAborted, "SCHEDULER_LEASE_LOST",
                     "another scheduler took this job over");
      }
      if (handler.commit) return handler.commit(txn, job, now);
      return absl::OkStatus();
    });
  }
  if (status.ok()) {
    ++stats.succeeded;
    return;
  }
  if (lost) {
    ++stats.lease_lost;
    return;
  }
  if (absl::Status s = RecordFailure(job, now, status, stats); !s.ok()) {
    // The lease expires and the job is taken over later.
    ++stats.lease_lost;
  }
}

absl::StatusOr<RunStats> Scheduler::RunDue(absl::Time now) {
  absl::MutexLock run_lock(&run_mu_);
  RunStats stats;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<Job> jobs, Claim(now));
    stats.claimed += static_cast<int>(jobs.size());
    for (const Job& job : jobs) RunOne(job, now, stats);
    if (static_cast<int>(jobs.size()) < options_.batch_size) break;
  }
  return stats;
}

void Scheduler::Start(absl::Duration interval) {
  absl::MutexLock lock(&start_mu_);
  if (loop_.joinable()) return;
  {
    absl::MutexLock l(&loop_mu_);
    stopping_ = false;
  }
  loop_ = std::thread([this, interval] { Loop(interval); });
}

void Scheduler::Wake() {
  absl::MutexLock lock(&loop_mu_);
  wake_ = true;
}

void Scheduler::Stop() {
  absl::MutexLock lock(&start_mu_);
  if (!loop_.joinable()) return;
  {
    absl::MutexLock l(&loop_mu_);
    stopping_ = true;
  }
  loop_.join();
}

bool Scheduler::LoopReady() const { return stopping_ || wake_; }

void Scheduler::Loop(absl::Duration interval) {
  while (true) {
    {
      absl::MutexLock lock(&loop_mu_);
      loop_mu_.AwaitWithTimeout(absl::Condition(this, &Scheduler::LoopReady),
                                interval);
      if (stopping_) return;
      wake_ = false;
    }
    // Errors (e.g. a database hiccup) are retried on the next tick.
    (void)RunDue(clock_.Now());
  }
}

}  // namespace careseal::scheduler
