#include "services/presession/presession_module.h"

#include <chrono>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "careseal/v1/identity.grpc.pb.h"
#include "careseal/v1/messaging.grpc.pb.h"
#include "services/common/macros.h"
#include "services/common/platform/idempotency.h"
#include "services/common/status.h"

ABSL_FLAG(int64_t, presession_scheduler_interval_seconds, 5,
          "how often the pre-session scheduler delivers due instructions and "
          "reminders (seconds; 0 turns the loop off)");

namespace careseal::presession {

// What each job's effect sent, for its commit (same process, same pass; a
// crash in between re-runs the idempotent effect).
class DeliveryResults {
 public:
  void Put(const std::string& key, std::string message) {
    absl::MutexLock lock(&mu_);
    results_[key] = std::move(message);
  }
  std::optional<std::string> Take(const std::string& key) {
    absl::MutexLock lock(&mu_);
    auto it = results_.find(key);
    if (it == results_.end()) return std::nullopt;
    std::string m = std::move(it->second);
    results_.erase(it);
    return m;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> results_ ABSL_GUARDED_BY(mu_);
};

namespace {

absl::Status InboxError(absl::string_view step, const grpc::Status& s) {
  return Error(absl::StatusCode::kUnavailable, "INBOX_DELIVERY_FAILED",
               absl::StrCat("delivering instructions to the inbox failed at ",
                            step, ": ", s.error_message()));
}

// Sends `work` to the patient's inbox (blocking; scheduler thread only).
absl::StatusOr<std::string> SendToInbox(InternalChannel* internal,
                                        const DeliveryWork& work) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, internal->Get());
  auto stub = v1::MessagingService::NewStub(channel);
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(30);
  v1::CreateThreadRequest thread_req;
  thread_req.set_parent(work.patient_name);
  thread_req.mutable_thread()->set_subject(work.thread_subject);
  thread_req.mutable_thread()->set_category(v1::THREAD_CATEGORY_INSTRUCTIONS);
  thread_req.set_request_id(DerivedRequestId(work.thread_request_seed));
  v1::CreateThreadResponse thread_resp;
  grpc::ClientContext thread_ctx;
  thread_ctx.set_deadline(deadline);
  grpc::Status s = stub->CreateThread(&thread_ctx, thread_req, &thread_resp);
  if (!s.ok()) return InboxError("CreateThread", s);
  v1::SendMessageRequest message_req;
  message_req.set_parent(thread_resp.thread().name());
  message_req.set_text(work.text);
  message_req.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
  message_req.set_request_id(DerivedRequestId(work.message_request_seed));
  v1::SendMessageResponse message_resp;
  grpc::ClientContext message_ctx;
  message_ctx.set_deadline(deadline);
  s = stub->SendMessage(&message_ctx, message_req, &message_resp);
  if (!s.ok()) return InboxError("SendMessage", s);
  return message_resp.message().name();
}

// The tenant's time zone from IdentityService.GetTenant over the in-process
// channel (blocking; scheduler thread only); see TenantZoneFrom.
absl::StatusOr<absl::TimeZone> TenantZone(InternalChannel* internal,
                                          const std::string& tenant) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, internal->Get());
  auto stub = v1::IdentityService::NewStub(channel);
  v1::GetTenantRequest req;
  req.set_name(absl::StrCat("tenants/", tenant));
  v1::GetTenantResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return TenantZoneFrom(stub->GetTenant(&ctx, req, &resp), resp);
}

}  // namespace

PreSessionOptions PreSessionOptionsFromFlags() {
  PreSessionOptions options;
  options.scheduler_interval =
      absl::Seconds(absl::GetFlag(FLAGS_presession_scheduler_interval_seconds));
  return options;
}

PreSessionModule::~PreSessionModule() {
  if (scheduler_) scheduler_->Stop();
}

absl::StatusOr<std::unique_ptr<PreSessionModule>> PreSessionModule::Create(
    ServerEnv& env, PreSessionOptions options) {
  RETURN_IF_ERROR(PreSessionManager::Migrate(*env.db));
  std::unique_ptr<PreSessionModule> module(new PreSessionModule());
  module->results_ = std::make_unique<DeliveryResults>();
  module->scheduler_ =
      std::make_unique<scheduler::Scheduler>(*env.db, *env.clock);
  scheduler::Scheduler* sched = module->scheduler_.get();
  PreSessionDeps deps;
  deps.db = env.db;
  deps.clock = env.clock;
  deps.random = env.random;
  deps.sealer = env.sealer;
  deps.wake = [sched] { sched->Wake(); };
  deps.tenant_zone = [internal = env.internal](const std::string& tenant) {
    return TenantZone(internal, tenant);
  };
  module->manager_ = std::make_unique<PreSessionManager>(deps);
  module->grpc_ = std::make_unique<PreSessionGrpc>(env.edge(), env.internal,
                                                   module->manager_.get());
  AddPreSessionPolicy(*env.policy);

  PreSessionManager* manager = module->manager_.get();
  DeliveryResults* results = module->results_.get();
  InternalChannel* internal = env.internal;
  scheduler::Handler handler;
  handler.effect = [manager, results, internal](
                       const scheduler::Job& job,
                       absl::Time now) -> absl::Status {
    ASSIGN_OR_RETURN(DeliveryWork work, manager->PrepareDelivery(job, now));
    std::string message;
    if (work.send) {
      ASSIGN_OR_RETURN(message, SendToInbox(internal, work));
    }
    results->Put(job.key, std::move(message));
    return absl::OkStatus();
  };
  handler.commit = [manager, results](sql::Txn& txn, const scheduler::Job& job,
                                      absl::Time now) -> absl::Status {
    std::optional<std::string> message = results->Take(job.key);
    if (!message) {
      return Error(absl::StatusCode::kAborted, "DELIVERY_RESULT_LOST",
                   "the delivery's outcome is unknown; it will be retried");
    }
    return manager->CommitDelivery(txn, job, now, *message);
  };
  sched->Register(kDeliverKind, handler);
  sched->Register(kRemindKind, handler);
  module->handler_ = std::move(handler);
  if (options.scheduler_interval > absl::ZeroDuration()) {
    sched->Start(options.scheduler_interval);
  }
  return module;
}

}  // namespace careseal::presession
