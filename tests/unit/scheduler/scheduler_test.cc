#include "services/common/scheduler/scheduler.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/clock.h"
#include "services/common/macros.h"
#include "services/common/sql/sqlite_database.h"
#include "services/common/status.h"
#include "tests/testing/temp_dir.h"

namespace careseal::scheduler {
namespace {

constexpr char kKind[] = "test.deliver";

std::unique_ptr<sql::SqliteDatabase> OpenAt(const std::string& path) {
  auto db = sql::SqliteDatabase::Open({.path = path});
  EXPECT_TRUE(db.ok()) << db.status();
  EXPECT_TRUE(Migrate(**db).ok());
  EXPECT_TRUE((*db)
                  ->Migrate("scheduler_test",
                            {{1,
                              "CREATE TABLE effects (id INTEGER PRIMARY KEY "
                              "AUTOINCREMENT, job_key TEXT NOT NULL)"}})
                  .ok());
  return std::move(*db);
}

Job MakeJob(const std::string& key, absl::Time due) {
  return Job{.key = key,
             .tenant = "t1",
             .kind = kKind,
             .due = due,
             .payload = "payload-of-" + key};
}

absl::StatusOr<bool> ScheduleNow(sql::Database& db, const Job& job) {
  bool created = false;
  RETURN_IF_ERROR(db.WriteAndWait([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(created, Schedule(txn, job));
    return absl::OkStatus();
  }));
  return created;
}

Job Get(sql::Database& db, const std::string& key) {
  Job job;
  EXPECT_TRUE(db.Read([&](sql::Txn& txn) -> absl::Status {
                  ASSIGN_OR_RETURN(job, GetJob(txn, key));
                  return absl::OkStatus();
                }).ok());
  return job;
}

// The job keys whose handler committed, in commit order.
std::vector<std::string> Effects(sql::Database& db) {
  std::vector<std::string> keys;
  EXPECT_TRUE(db.Read([&](sql::Txn& txn) -> absl::Status {
                  ASSIGN_OR_RETURN(
                      auto rows,
                      txn.Query("SELECT job_key FROM effects ORDER BY id"));
                  for (const auto& row : rows) keys.push_back(row.Str(0));
                  return absl::OkStatus();
                }).ok());
  return keys;
}

// A handler that records the job in the same transaction that marks it done.
Handler RecordingHandler() {
  Handler h;
  h.commit = [](sql::Txn& txn, const Job& job, absl::Time) -> absl::Status {
    return txn
        .Exec("INSERT INTO effects (job_key) VALUES (?)", {sql::Text(job.key)})
        .status();
  };
  return h;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = OpenAt(dir_.File("db.sqlite")); }

  careseal::testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<sql::SqliteDatabase> db_;
};

TEST_F(SchedulerTest, RunsOnlyDueJobsInDueOrder) {
  const absl::Time t0 = clock_.Now();
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("c", t0 + absl::Hours(3))).ok());
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("a", t0 + absl::Hours(1))).ok());
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("b", t0 + absl::Hours(2))).ok());
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("late", t0 + absl::Hours(10))).ok());
  Scheduler scheduler(*db_, clock_, {.owner = "r1"});
  scheduler.Register(kKind, RecordingHandler());

  auto stats = scheduler.RunDue(t0 + absl::Minutes(30));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->claimed, 0);
  EXPECT_TRUE(Effects(*db_).empty());

  stats = scheduler.RunDue(t0 + absl::Hours(3));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->claimed, 3);
  EXPECT_EQ(stats->succeeded, 3);
  EXPECT_EQ(Effects(*db_), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Get(*db_, "a").state, JobState::kDone);
  EXPECT_EQ(Get(*db_, "late").state, JobState::kPending);

  // Done jobs never run again.
  stats = scheduler.RunDue(t0 + absl::Hours(5));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->claimed, 0);
  EXPECT_EQ(Effects(*db_).size(), 3u);
}

TEST_F(SchedulerTest, LeavesKindsWithoutHandlerForOthers) {
  const absl::Time t0 = clock_.Now();
  Job other = MakeJob("other", t0);
  other.kind = "followup.send";
  ASSERT_TRUE(ScheduleNow(*db_, other).ok());
  Scheduler scheduler(*db_, clock_, {.owner = "r1"});
  scheduler.Register(kKind, RecordingHandler());
  auto stats = scheduler.RunDue(t0 + absl::Hours(1));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->claimed, 0);
  EXPECT_EQ(Get(*db_, "other").state, JobState::kPending);
}

TEST_F(SchedulerTest, ScheduleIsIdempotentByKey) {
  const absl::Time t0 = clock_.Now();
  auto first = ScheduleNow(*db_, MakeJob("k", t0 + absl::Hours(1)));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  auto again = ScheduleNow(*db_, MakeJob("k", t0 + absl::Hours(7)));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(Get(*db_, "k").due, t0 + absl::Hours(1));  // first one kept

  Scheduler scheduler(*db_, clock_, {.owner = "r1"});
  scheduler.Register(kKind, RecordingHandler());
  ASSERT_TRUE(scheduler.RunDue(t0 + absl::Hours(2)).ok());
  // Scheduling a job that already ran does not revive it.
  auto after = ScheduleNow(*db_, MakeJob("k", t0 + absl::Hours(3)));
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(*after);
  ASSERT_TRUE(scheduler.RunDue(t0 + absl::Hours(4)).ok());
  EXPECT_EQ(Effects(*db_), (std::vector<std::string>{"k"}));
}

TEST_F(SchedulerTest, RejectsIncompleteJobs) {
  Job job = MakeJob("", clock_.Now());
  auto created = ScheduleNow(*db_, job);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(created.status()), "SCHEDULER_KEY_REQUIRED");
  job = MakeJob("x", clock_.Now());
  job.kind = "";
  EXPECT_EQ(ErrorReason(ScheduleNow(*db_, job).status()),
            "SCHEDULER_KIND_REQUIRED");
  job = MakeJob("x", absl::InfiniteFuture());
  EXPECT_EQ(ErrorReason(ScheduleNow(*db_, job).status()),
            "SCHEDULER_DUE_INVALID");
}

TEST_F(SchedulerTest, CancelledJobsDoNotRun) {
  const absl::Time t0 = clock_.Now();
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("s1/a", t0)).ok());
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("s1/b", t0)).ok());
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("s2/a", t0)).ok());
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("s3/a", t0)).ok());
  bool cancelled = false;
  int64_t by_prefix = 0;
  ASSERT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
                   ASSIGN_OR_RETURN(cancelled, Cancel(txn, "s3/a"));
                   ASSIGN_OR_RETURN(by_prefix, CancelPrefix(txn, "s1/"));
                   return absl::OkStatus();
                 })
                  .ok());
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(by_prefix, 2);
  Scheduler scheduler(*db_, clock_, {.owner = "r1"});
  scheduler.Register(kKind, RecordingHandler());
  ASSERT_TRUE(scheduler.RunDue(t0 + absl::Hours(1)).ok());
  EXPECT_EQ(Effects(*db_), (std::vector<std::string>{"s2/a"}));
  EXPECT_EQ(Get(*db_, "s1/a").state, JobState::kCancelled);
  // Cancelling what already ran changes nothing.
  ASSERT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
                   ASSIGN_OR_RETURN(cancelled, Cancel(txn, "s2/a"));
                   return absl::OkStatus();
                 })
                  .ok());
  EXPECT_FALSE(cancelled);
  EXPECT_EQ(Get(*db_, "s2/a").state, JobState::kDone);
}

TEST_F(SchedulerTest, RescheduleMovesAndRevives) {
  const absl::Time t0 = clock_.Now();
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("m", t0 + absl::Hours(1))).ok());
  Scheduler scheduler(*db_, clock_, {.owner = "r1"});
  scheduler.Register(kKind, RecordingHandler());
  ASSERT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) {
                   return Reschedule(txn, "m", t0 + absl::Hours(5));
                 })
                  .ok());
  ASSERT_TRUE(scheduler.RunDue(t0 + absl::Hours(2)).ok());
  EXPECT_TRUE(Effects(*db_).empty());
  ASSERT_TRUE(scheduler.RunDue(t0 + absl::Hours(5)).ok());
  EXPECT_EQ(Effects(*db_).size(), 1u);
  // A done job moved later runs again at its new time.
  ASSERT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) {
                   return Reschedule(txn, "m", t0 + absl::Hours(9));
                 })
                  .ok());
  EXPECT_EQ(Get(*db_, "m").state, JobState::kPending);
  ASSERT_TRUE(scheduler.RunDue(t0 + absl::Hours(9)).ok());
  EXPECT_EQ(Effects(*db_).size(), 2u);
  absl::Status missing = db_->WriteAndWait(
      [&](sql::Txn& txn) { return Reschedule(txn, "nope", t0); });
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorReason(missing), "SCHEDULER_JOB_NOT_FOUND");
}

TEST_F(SchedulerTest, ExpiredLeaseIsTakenOverAndJobRunsOnce) {
  const absl::Time t0 = clock_.Now();
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("j", t0)).ok());
  // Replica r1 claims the job, then "hangs" in its effect while the lease
  // runs out; r2 takes over and completes it; r1's late commit is refused.
  Scheduler r2(*db_, clock_, {.owner = "r2", .lease = absl::Minutes(5)});
  r2.Register(kKind, RecordingHandler());
  Scheduler r1(*db_, clock_, {.owner = "r1", .lease = absl::Minutes(5)});
  Handler slow = RecordingHandler();
  int r2_runs_during_r1 = -1;
  slow.effect = [&](const Job&, absl::Time now) -> absl::Status {
    // While r1 holds a live lease, r2 sees nothing to do.
    auto during = r2.RunDue(now + absl::Minutes(1));
    EXPECT_TRUE(during.ok());
    EXPECT_EQ(during->claimed, 0);
    // After the lease expired, r2 takes the job and finishes it.
    auto after = r2.RunDue(now + absl::Minutes(6));
    EXPECT_TRUE(after.ok());
    r2_runs_during_r1 = after->succeeded;
    return absl::OkStatus();
  };
  r1.Register(kKind, slow);
  auto stats = r1.RunDue(t0);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(r2_runs_during_r1, 1);
  EXPECT_EQ(stats->claimed, 1);
  EXPECT_EQ(stats->succeeded, 0);
  EXPECT_EQ(stats->lease_lost, 1);
  EXPECT_EQ(Effects(*db_), (std::vector<std::string>{"j"}));
  Job job = Get(*db_, "j");
  EXPECT_EQ(job.state, JobState::kDone);
  EXPECT_EQ(job.attempts, 2);
}

TEST_F(SchedulerTest, RunsOnceAcrossRestart) {
  const std::string path = dir_.File("restart.sqlite");
  const absl::Time t0 = clock_.Now();
  {
    auto db = OpenAt(path);
    ASSERT_TRUE(ScheduleNow(*db, MakeJob("a", t0)).ok());
    ASSERT_TRUE(ScheduleNow(*db, MakeJob("b", t0 + absl::Minutes(1))).ok());
    Scheduler s(*db, clock_, {.owner = "before", .lease = absl::Minutes(5)});
    s.Register(kKind, RecordingHandler());
    ASSERT_TRUE(s.RunDue(t0).ok());  // "a" done
    // The process claims "b" and dies before its commit: the row is left
    // leased by the dead owner, as after a crash mid-run.
    ASSERT_TRUE(
        db->WriteAndWait([&](sql::Txn& txn) {
            return txn
                .Exec(
                    "UPDATE scheduler_jobs SET lease_owner = "
                    "'dying', lease_expiry_us = ?, attempts = 1 "
                    "WHERE job_key = 'b'",
                    {sql::Int(absl::ToUnixMicros(t0 + absl::Minutes(6)))})
                .status();
          }).ok());
  }
  auto db = OpenAt(path);
  Scheduler after(*db, clock_, {.owner = "after"});
  after.Register(kKind, RecordingHandler());
  auto stats = after.RunDue(t0 + absl::Minutes(2));  // lease still live
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->claimed, 0);
  stats = after.RunDue(t0 + absl::Minutes(7));  // lease expired
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->succeeded, 1);
  stats = after.RunDue(t0 + absl::Hours(1));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->claimed, 0);
  EXPECT_EQ(Effects(*db), (std::vector<std::string>{"a", "b"}));
}

TEST_F(SchedulerTest, FailuresRetryWithBackoffThenGiveUp) {
  const absl::Time t0 = clock_.Now();
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("f", t0)).ok());
  Scheduler s(*db_, clock_,
              {.owner = "r1",
               .max_attempts = 3,
               .backoff_base = absl::Seconds(10),
               .backoff_max = absl::Seconds(15)});
  EXPECT_EQ(s.Backoff(1), absl::Seconds(10));
  EXPECT_EQ(s.Backoff(2), absl::Seconds(15));  // 20 s capped
  int calls = 0;
  Handler failing;
  failing.commit = [&](sql::Txn& txn, const Job& job,
                       absl::Time) -> absl::Status {
    ++calls;
    // Writes of a failed attempt are undone.
    RETURN_IF_ERROR(txn.Exec("INSERT INTO effects (job_key) VALUES (?)",
                             {sql::Text(job.key)})
                        .status());
    return Error(absl::StatusCode::kUnavailable, "DOWNSTREAM_DOWN", "down");
  };
  s.Register(kKind, failing);

  auto stats = s.RunDue(t0);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->retried, 1);
  Job job = Get(*db_, "f");
  EXPECT_EQ(job.state, JobState::kPending);
  EXPECT_EQ(job.attempts, 1);
  EXPECT_EQ(job.last_error, "DOWNSTREAM_DOWN");
  EXPECT_EQ(job.due, t0 + absl::Seconds(10));
  EXPECT_TRUE(job.lease_owner.empty());

  stats = s.RunDue(t0 + absl::Seconds(9));  // not yet
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->claimed, 0);
  stats = s.RunDue(t0 + absl::Seconds(10));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->retried, 1);
  EXPECT_EQ(Get(*db_, "f").due, t0 + absl::Seconds(25));
  stats = s.RunDue(t0 + absl::Seconds(25));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->failed, 1);
  job = Get(*db_, "f");
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.attempts, 3);
  EXPECT_EQ(calls, 3);
  stats = s.RunDue(t0 + absl::Hours(10));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->claimed, 0);
  EXPECT_TRUE(Effects(*db_).empty());
}

TEST_F(SchedulerTest, RetryThenSucceed) {
  const absl::Time t0 = clock_.Now();
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("r", t0)).ok());
  Scheduler s(*db_, clock_, {.owner = "r1", .backoff_base = absl::Minutes(1)});
  int effects = 0;
  Handler flaky = RecordingHandler();
  flaky.effect = [&](const Job&, absl::Time) -> absl::Status {
    return ++effects == 1 ? absl::UnavailableError("once") : absl::OkStatus();
  };
  s.Register(kKind, flaky);
  ASSERT_TRUE(s.RunDue(t0).ok());
  EXPECT_EQ(Get(*db_, "r").last_error, "UNAVAILABLE");
  ASSERT_TRUE(s.RunDue(t0 + absl::Minutes(1)).ok());
  EXPECT_EQ(Get(*db_, "r").state, JobState::kDone);
  EXPECT_EQ(Effects(*db_), (std::vector<std::string>{"r"}));
}

TEST_F(SchedulerTest, HandlerCanScheduleFollowOnJobInSameTransaction) {
  const absl::Time t0 = clock_.Now();
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("first", t0)).ok());
  Scheduler s(*db_, clock_, {.owner = "r1"});
  Handler chain = RecordingHandler();
  auto record = chain.commit;
  chain.commit = [record](sql::Txn& txn, const Job& job,
                          absl::Time now) -> absl::Status {
    RETURN_IF_ERROR(record(txn, job, now));
    if (job.key == "first") {
      RETURN_IF_ERROR(
          Schedule(txn, MakeJob("second", now + absl::Hours(1))).status());
    }
    return absl::OkStatus();
  };
  s.Register(kKind, chain);
  ASSERT_TRUE(s.RunDue(t0).ok());
  ASSERT_TRUE(s.RunDue(t0 + absl::Hours(1)).ok());
  EXPECT_EQ(Effects(*db_), (std::vector<std::string>{"first", "second"}));
}

TEST_F(SchedulerTest, BackgroundLoopRunsDueJobsFromTheClock) {
  ASSERT_TRUE(ScheduleNow(*db_, MakeJob("bg", clock_.Now())).ok());
  Scheduler s(*db_, clock_, {.owner = "r1"});
  absl::Mutex mu;
  bool ran = false;
  Handler h = RecordingHandler();
  h.effect = [&](const Job&, absl::Time) {
    absl::MutexLock lock(&mu);
    ran = true;
    return absl::OkStatus();
  };
  s.Register(kKind, h);
  s.Start(absl::Hours(1));  // the long interval: only Wake() makes it run
  s.Wake();
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&ran));
  }
  s.Stop();
  EXPECT_EQ(Effects(*db_), (std::vector<std::string>{"bg"}));
}

}  // namespace
}  // namespace careseal::scheduler
