#include "services/followup/service/followup_module.h"

#include <chrono>
#include <cstdio>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "careseal/v1/identity.grpc.pb.h"
#include "careseal/v1/messaging.grpc.pb.h"
#include "careseal/v1/presession.grpc.pb.h"
#include "services/common/macros.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/resource_name.h"
#include "services/common/status.h"

ABSL_FLAG(int64_t, followup_scheduler_interval_seconds, 5,
          "how often the follow-up scheduler reads session events and sends "
          "due check-ins, reminders and re-escalations (seconds; 0 turns the "
          "loop off)");

namespace careseal::followup {

// What each job's effect found or sent, for its commit (same process, same
// pass; a crash in between re-runs the idempotent effect).
class JobResults {
 public:
  void Put(const std::string& key, std::vector<std::string> values) {
    absl::MutexLock lock(&mu_);
    results_[key] = std::move(values);
  }
  std::optional<std::vector<std::string>> Take(const std::string& key) {
    absl::MutexLock lock(&mu_);
    auto it = results_.find(key);
    if (it == results_.end()) return std::nullopt;
    std::vector<std::string> v = std::move(it->second);
    results_.erase(it);
    return v;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<std::string>> results_
      ABSL_GUARDED_BY(mu_);
};

namespace {

constexpr auto kCallTimeout = std::chrono::seconds(30);

// A job retried or taken over sends with the same request ids, so nothing is
// duplicated.
std::string JobRequestId(absl::string_view seed) {
  return DerivedRequestId(absl::StrCat("followup-job:", seed));
}

absl::Status Unavailable(absl::string_view reason, absl::string_view what,
                         const grpc::Status& s) {
  return Error(absl::StatusCode::kUnavailable, reason,
               absl::StrCat(what, " failed: ", s.error_message()));
}

std::string CheckInText(const FollowUpManager& manager, const CheckIn& c,
                        bool reminder) {
  std::string text = reminder ? "Reminder: your care team is waiting for your "
                                "check-in:"
                              : "Your care team asks you to answer a check-in:";
  for (const std::string& id : c.instruments) {
    const Instrument* instrument = manager.instruments().Find(id);
    absl::StrAppend(&text, " ",
                    instrument != nullptr ? instrument->display_name : id, ";");
  }
  text.pop_back();
  return text + ".";
}

// Sends `text` into the check-in's FOLLOW_UP thread of the patient's inbox
// (blocking; scheduler thread only). The thread's request id derives from
// the check-in, the message's from `message_seed`.
absl::StatusOr<std::string> SendToInbox(InternalChannel* internal,
                                        const CheckIn& c,
                                        absl::string_view message_seed,
                                        std::string text) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, internal->Get());
  auto stub = v1::MessagingService::NewStub(channel);
  const auto deadline = std::chrono::system_clock::now() + kCallTimeout;
  v1::CreateThreadRequest thread_req;
  thread_req.set_parent(PatientName(c.tenant, c.patient));
  thread_req.mutable_thread()->set_subject("Check-in from your care team");
  thread_req.mutable_thread()->set_category(v1::THREAD_CATEGORY_FOLLOW_UP);
  thread_req.set_request_id(JobRequestId(absl::StrCat(c.Name(), "/thread")));
  v1::CreateThreadResponse thread_resp;
  grpc::ClientContext thread_ctx;
  thread_ctx.set_deadline(deadline);
  grpc::Status s = stub->CreateThread(&thread_ctx, thread_req, &thread_resp);
  if (!s.ok()) return Unavailable("INBOX_DELIVERY_FAILED", "CreateThread", s);
  v1::SendMessageRequest message_req;
  message_req.set_parent(thread_resp.thread().name());
  message_req.set_text(std::move(text));
  message_req.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
  message_req.set_request_id(JobRequestId(message_seed));
  v1::SendMessageResponse message_resp;
  grpc::ClientContext message_ctx;
  message_ctx.set_deadline(deadline);
  s = stub->SendMessage(&message_ctx, message_req, &message_resp);
  if (!s.ok()) return Unavailable("INBOX_DELIVERY_FAILED", "SendMessage", s);
  return message_resp.message().name();
}

enum class Pool { kCareTeam, kOnCall };

// The tenant's care team or on-call clinicians
// (IdentityService.ListClinicians with that filter), every page. Any error
// fails the job (retried).
absl::StatusOr<std::vector<std::string>> Clinicians(InternalChannel* internal,
                                                    absl::string_view tenant,
                                                    Pool pool) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, internal->Get());
  auto stub = v1::IdentityService::NewStub(channel);
  std::vector<std::string> out;
  std::string token;
  do {
    v1::ListCliniciansRequest req;
    req.set_parent(absl::StrCat("tenants/", tenant));
    req.set_care_team_only(pool == Pool::kCareTeam);
    req.set_on_call_only(pool == Pool::kOnCall);
    req.set_page_size(100);
    req.set_page_token(token);
    v1::ListCliniciansResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    grpc::Status s = stub->ListClinicians(&ctx, req, &resp);
    if (!s.ok()) {
      return Unavailable("IDENTITY_SERVICE_UNAVAILABLE",
                         pool == Pool::kCareTeam
                             ? "listing the care team's clinicians"
                             : "listing the on-call clinicians",
                         s);
    }
    for (const v1::Clinician& c : resp.clinicians()) {
      if (pool == Pool::kCareTeam ? c.care_team() : c.on_call()) {
        out.push_back(c.name());
      }
    }
    token = resp.next_page_token();
  } while (!token.empty());
  return out;
}

// PreSessionService.GetSession over the in-process channel (blocking).
absl::StatusOr<SessionTimes> LookUpSession(InternalChannel* internal,
                                           const std::string& session) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, internal->Get());
  auto stub = v1::PreSessionService::NewStub(channel);
  v1::GetSessionRequest req;
  req.set_name(session);
  v1::GetSessionResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  grpc::Status s = stub->GetSession(&ctx, req, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
    return ResourceNotFound();
  }
  if (!s.ok()) {
    return Unavailable("PRESESSION_SERVICE_UNAVAILABLE", "GetSession", s);
  }
  SessionTimes t;
  t.start = absl::FromUnixSeconds(resp.session().start_time().seconds()) +
            absl::Nanoseconds(resp.session().start_time().nanos());
  if (resp.session().has_end_time()) {
    t.end = absl::FromUnixSeconds(resp.session().end_time().seconds()) +
            absl::Nanoseconds(resp.session().end_time().nanos());
  }
  return t;
}

absl::Status ResultLost() {
  return Error(absl::StatusCode::kAborted, "JOB_RESULT_LOST",
               "the job's outcome is unknown; it will be retried");
}

}  // namespace

FollowUpOptions FollowUpOptionsFromFlags() {
  FollowUpOptions options;
  options.scheduler_interval =
      absl::Seconds(absl::GetFlag(FLAGS_followup_scheduler_interval_seconds));
  return options;
}

FollowUpModule::~FollowUpModule() {
  {
    absl::MutexLock lock(&wake_mu_);
    wake_ = nullptr;
  }
  loop_.reset();
  if (scheduler_) scheduler_->Stop();
}

absl::StatusOr<scheduler::RunStats> FollowUpModule::RunDue(absl::Time now) {
  InternalChannel* internal = internal_;
  absl::Status ingest = manager_->IngestSessionEvents(
      now, [internal](const std::string& session) {
        return LookUpSession(internal, session);
      });
  ASSIGN_OR_RETURN(scheduler::RunStats stats, scheduler_->RunDue(now));
  if (!ingest.ok()) return ingest;
  return stats;
}

absl::StatusOr<std::unique_ptr<FollowUpModule>> FollowUpModule::Create(
    ServerEnv& env, FollowUpOptions options) {
  RETURN_IF_ERROR(FollowUpManager::Migrate(*env.db));
  std::unique_ptr<FollowUpModule> module(new FollowUpModule());
  FollowUpDeps deps;
  deps.db = env.db;
  deps.clock = env.clock;
  deps.random = env.random;
  deps.sealer = env.sealer;
  deps.instruments = &BuiltInInstruments();
  FollowUpModule* self = module.get();
  deps.wake = [self] {
    absl::MutexLock lock(&self->wake_mu_);
    if (self->wake_ != nullptr) self->wake_->RunSoon();
  };
  module->manager_ = std::make_unique<FollowUpManager>(deps);
  module->grpc_ = std::make_unique<FollowUpGrpc>(env.edge(), env.internal,
                                                 module->manager_.get());
  module->internal_ = env.internal;
  module->results_ = std::make_unique<JobResults>();
  module->scheduler_ =
      std::make_unique<scheduler::Scheduler>(*env.db, *env.clock);
  AddFollowUpPolicy(*env.policy);

  FollowUpManager* manager = module->manager_.get();
  JobResults* results = module->results_.get();
  InternalChannel* internal = env.internal;
  scheduler::Scheduler* sched = module->scheduler_.get();

  // A scheduled check-in: delivered like SendCheckIn, then SENT; one whose
  // time to be answered passed before it could be sent (the job ran late)
  // is not delivered and EXPIRES.
  scheduler::Handler checkin;
  checkin.effect = [manager, results, internal](
                       const scheduler::Job& job,
                       absl::Time now) -> absl::Status {
    ASSIGN_OR_RETURN(CheckIn c, manager->CheckInOfJob(job));
    std::string message;
    if (c.state == CheckInState::kScheduled && now < c.expire_time) {
      ASSIGN_OR_RETURN(message, SendToInbox(internal, c, job.key,
                                            CheckInText(*manager, c, false)));
    }
    results->Put(job.key, {std::move(message)});
    return absl::OkStatus();
  };
  checkin.commit = [manager, results](sql::Txn& txn, const scheduler::Job& job,
                                      absl::Time now) -> absl::Status {
    auto r = results->Take(job.key);
    if (!r) return ResultLost();
    return manager->CommitCheckInSent(txn, job, now, r->at(0));
  };
  sched->Register(kCheckInJobKind, checkin);

  // A reminder while a sent check-in is unanswered and not expired.
  scheduler::Handler remind;
  remind.effect = [manager, results, internal](const scheduler::Job& job,
                                               absl::Time now) -> absl::Status {
    ASSIGN_OR_RETURN(CheckIn c, manager->CheckInOfJob(job));
    std::vector<std::string> sent;
    if (c.StateAt(now) == CheckInState::kSent) {
      ASSIGN_OR_RETURN(
          std::string m,
          SendToInbox(internal, c, job.key, CheckInText(*manager, c, true)));
      sent.push_back(std::move(m));
    }
    results->Put(job.key, std::move(sent));
    return absl::OkStatus();
  };
  remind.commit = [manager, results](sql::Txn& txn, const scheduler::Job& job,
                                     absl::Time now) -> absl::Status {
    auto r = results->Take(job.key);
    if (!r) return ResultLost();
    return manager->CommitReminder(txn, job, now, !r->empty());
  };
  sched->Register(kRemindJobKind, remind);

  scheduler::Handler expire;
  expire.commit = [manager](sql::Txn& txn, const scheduler::Job& job,
                            absl::Time now) {
    return manager->CommitExpiry(txn, job, now);
  };
  sched->Register(kExpireJobKind, expire);

  // A new escalation's care team: its PRIMARY-level recipients. Identity
  // unavailable fails the attempt, so the scheduler retries it.
  scheduler::Handler notify;
  notify.effect = [manager, results, internal](const scheduler::Job& job,
                                               absl::Time) -> absl::Status {
    ASSIGN_OR_RETURN(Escalation e, manager->EscalationOfJob(job));
    std::vector<std::string> care_team;
    if (e.state == EscalationState::kOpen &&
        e.level == EscalationLevel::kPrimary) {
      ASSIGN_OR_RETURN(care_team,
                       Clinicians(internal, e.tenant, Pool::kCareTeam));
    }
    results->Put(job.key, std::move(care_team));
    return absl::OkStatus();
  };
  notify.commit = [manager, results](sql::Txn& txn, const scheduler::Job& job,
                                     absl::Time now) -> absl::Status {
    auto r = results->Take(job.key);
    if (!r) return ResultLost();
    return manager->CommitNotification(txn, job, now, *r);
  };
  sched->Register(kNotifyJobKind, notify);

  // Re-escalation to the on-call clinicians, or to the care team when nobody
  // is on call (never to no one while anyone is on the care team). Identity
  // unavailable fails the attempt, so the scheduler retries it; nothing is
  // dropped.
  scheduler::Handler reescalate;
  reescalate.effect = [manager, results, internal](const scheduler::Job& job,
                                                   absl::Time) -> absl::Status {
    ASSIGN_OR_RETURN(Escalation e, manager->EscalationOfJob(job));
    std::vector<std::string> recipients;
    if (e.state == EscalationState::kOpen) {
      ASSIGN_OR_RETURN(recipients,
                       Clinicians(internal, e.tenant, Pool::kOnCall));
      if (recipients.empty()) {
        ASSIGN_OR_RETURN(recipients,
                         Clinicians(internal, e.tenant, Pool::kCareTeam));
      }
    }
    results->Put(job.key, std::move(recipients));
    return absl::OkStatus();
  };
  reescalate.commit = [manager, results](sql::Txn& txn,
                                         const scheduler::Job& job,
                                         absl::Time now) -> absl::Status {
    auto r = results->Take(job.key);
    if (!r) return ResultLost();
    return manager->CommitReescalation(txn, job, now, *r);
  };
  sched->Register(kReescalateJobKind, reescalate);

  if (options.scheduler_interval > absl::ZeroDuration()) {
    const Clock* clock = env.clock;
    module->loop_ =
        std::make_unique<Periodic>(options.scheduler_interval, [self, clock] {
          auto stats = self->RunDue(clock->Now());
          if (!stats.ok()) {
            std::fprintf(stderr, "followup: scheduler pass failed: %s\n",
                         stats.status().ToString().c_str());
          }
        });
    absl::MutexLock lock(&module->wake_mu_);
    module->wake_ = module->loop_.get();
  }
  return module;
}

}  // namespace careseal::followup
