// The follow-up service as a module a server process hosts:
// careseal.v1.FollowUpService (questionnaires, scoring, outcome series,
// safety escalation, ad hoc check-ins delivered through MessagingService)
// plus its durable scheduler:
//  * scheduled check-ins: completed/cancelled sessions are read from the
//    durable event stream (a cursor per tenant in followup_event_cursors),
//    session times come from PreSessionService.GetSession over the
//    in-process channel, and each FollowUpSettings rule becomes a job that
//    delivers the check-in to the patient's inbox (MessagingService), then
//    a reminder and an expiry;
//  * re-escalation: an urgent escalation still open at its ack_deadline goes
//    to the tenant's on-call clinicians (IdentityService.ListClinicians) and
//    is re-notified at each further deadline.
// The in-process calls are made as CareSeal itself (Role::kSystem).
#ifndef CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_MODULE_H_
#define CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_MODULE_H_

#include <memory>

#include "absl/synchronization/mutex.h"
#include "services/common/grpc/server_env.h"
#include "services/common/periodic.h"
#include "services/common/scheduler/scheduler.h"
#include "services/followup/service/followup_grpc.h"
#include "services/followup/service/followup_manager.h"

namespace careseal::followup {

struct FollowUpOptions {
  // How often the module reads session events and runs due jobs; zero: no
  // loop (tests call RunDue(now) on their fake clock).
  absl::Duration scheduler_interval = absl::Seconds(5);
};

// FollowUpOptions from careseal-server's flags
// (--followup_scheduler_interval_seconds).
FollowUpOptions FollowUpOptionsFromFlags();

class JobResults;

class FollowUpModule final : public ServiceModule {
 public:
  // Applies the schema, registers the policy rows and the scheduler's
  // handlers and starts its loop.
  static absl::StatusOr<std::unique_ptr<FollowUpModule>> Create(
      ServerEnv& env, FollowUpOptions options = {});
  ~FollowUpModule() override;

  std::vector<std::string> ServiceNames() const override {
    return {"careseal.v1.FollowUpService"};
  }
  std::vector<grpc::Service*> GrpcServices() override { return {grpc_.get()}; }

  FollowUpManager& manager() { return *manager_; }
  scheduler::Scheduler& scheduler() { return *scheduler_; }

  // One pass at `now`: reads new session events (scheduling check-ins),
  // then runs the due jobs. An error of the event pass (e.g. PreSessionService
  // unavailable) is returned after the jobs ran; it is retried next pass.
  // Blocks: never call it on a gRPC thread.
  absl::StatusOr<scheduler::RunStats> RunDue(absl::Time now);

 private:
  FollowUpModule() = default;
  std::unique_ptr<JobResults> results_;
  std::unique_ptr<FollowUpManager> manager_;
  std::unique_ptr<FollowUpGrpc> grpc_;
  InternalChannel* internal_ = nullptr;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  // The loop that FollowUpDeps::wake makes run at once; cleared before the
  // loop goes away.
  absl::Mutex wake_mu_;
  Periodic* wake_ ABSL_GUARDED_BY(wake_mu_) = nullptr;
  // Last: stopped before anything it uses goes away.
  std::unique_ptr<Periodic> loop_;
};

}  // namespace careseal::followup

#endif  // CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_MODULE_H_
