// The consent service as a module a server process hosts.
#ifndef CARESEAL_SERVICES_CONSENT_CONSENT_MODULE_H_
#define CARESEAL_SERVICES_CONSENT_CONSENT_MODULE_H_

#include <memory>

#include "services/common/grpc/server_env.h"
#include "services/common/platform/signing_keys.h"
#include "services/common/scheduler/scheduler.h"
#include "services/consent/consent_grpc.h"
#include "services/consent/consent_manager.h"

namespace careseal::consent {

class ConsentModule final : public ServiceModule {
 public:
  // Applies the schema, loads (or creates) the receipt signing key from
  // env.key_dir, registers the service's policy rows and runs the expiry
  // jobs every --consent_scheduler_interval_seconds (0: never on its own;
  // tests call scheduler().RunDue on their fake clock).
  static absl::StatusOr<std::unique_ptr<ConsentModule>> Create(ServerEnv& env);
  ~ConsentModule() override;

  std::vector<std::string> ServiceNames() const override {
    return {"careseal.v1.ConsentService"};
  }
  std::vector<grpc::Service*> GrpcServices() override { return {grpc_.get()}; }

  ConsentManager& manager() { return *manager_; }
  SigningKeyStore& receipt_keys() { return *keys_; }
  scheduler::Scheduler& scheduler() { return *scheduler_; }

 private:
  ConsentModule() = default;
  std::unique_ptr<SigningKeyStore> keys_;
  std::unique_ptr<ConsentManager> manager_;
  std::unique_ptr<ConsentGrpc> grpc_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
};

}  // namespace careseal::consent

#endif  // CARESEAL_SERVICES_CONSENT_CONSENT_MODULE_H_
