// The follow-up service as a module a server process hosts:
// careseal.v1.FollowUpService (questionnaires, scoring, outcome series,
// safety escalation, ad hoc check-ins delivered through MessagingService).
#ifndef CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_MODULE_H_
#define CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_MODULE_H_

#include <memory>

#include "services/common/grpc/server_env.h"
#include "services/followup/service/followup_grpc.h"
#include "services/followup/service/followup_manager.h"

namespace careseal::followup {

class FollowUpModule final : public ServiceModule {
 public:
  // Applies the schema and registers the policy rows.
  static absl::StatusOr<std::unique_ptr<FollowUpModule>> Create(ServerEnv& env);

  std::vector<std::string> ServiceNames() const override {
    return {"careseal.v1.FollowUpService"};
  }
  std::vector<grpc::Service*> GrpcServices() override { return {grpc_.get()}; }

  FollowUpManager& manager() { return *manager_; }

 private:
  FollowUpModule() = default;
  std::unique_ptr<FollowUpManager> manager_;
  std::unique_ptr<FollowUpGrpc> grpc_;
};

}  // namespace careseal::followup

#endif  // CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_MODULE_H_
