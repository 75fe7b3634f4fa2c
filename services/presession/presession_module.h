// The pre-session service as a module a server process hosts:
// careseal.v1.PreSessionService plus its durable scheduler, which delivers
// instructions and reminders into the patient's inbox through
// MessagingService over the in-process channel (as CareSeal itself).
#ifndef CARESEAL_SERVICES_PRESESSION_PRESESSION_MODULE_H_
#define CARESEAL_SERVICES_PRESESSION_PRESESSION_MODULE_H_

#include <memory>

#include "services/common/grpc/server_env.h"
#include "services/common/scheduler/scheduler.h"
#include "services/presession/presession_grpc.h"
#include "services/presession/presession_manager.h"

namespace careseal::presession {

struct PreSessionOptions {
  // How often the scheduler loop looks for due deliveries; zero: no loop
  // (tests call scheduler().RunDue(now) on their fake clock).
  absl::Duration scheduler_interval = absl::Seconds(5);
};

// PreSessionOptions from careseal-server's flags
// (--presession_scheduler_interval_seconds).
PreSessionOptions PreSessionOptionsFromFlags();

class DeliveryResults;

class PreSessionModule final : public ServiceModule {
 public:
  // Applies the schema, registers the policy rows and the scheduler's
  // handlers (presession.deliver, presession.remind) and starts its loop.
  static absl::StatusOr<std::unique_ptr<PreSessionModule>> Create(
      ServerEnv& env, PreSessionOptions options = {});
  ~PreSessionModule() override;

  std::vector<std::string> ServiceNames() const override {
    return {"careseal.v1.PreSessionService"};
  }
  std::vector<grpc::Service*> GrpcServices() override { return {grpc_.get()}; }

  PreSessionManager& manager() { return *manager_; }
  // Runs due deliveries; blocks: never call it on a gRPC thread.
  scheduler::Scheduler& scheduler() { return *scheduler_; }

 private:
  PreSessionModule() = default;
  std::unique_ptr<DeliveryResults> results_;
  std::unique_ptr<PreSessionManager> manager_;
  std::unique_ptr<PreSessionGrpc> grpc_;
  // Last: stopped before anything it uses goes away.
  std::unique_ptr<scheduler::Scheduler> scheduler_;
};

}  // namespace careseal::presession

#endif  // CARESEAL_SERVICES_PRESESSION_PRESESSION_MODULE_H_
