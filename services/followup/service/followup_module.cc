#include "services/followup/service/followup_module.h"

#include "services/common/macros.h"

namespace careseal::followup {

absl::StatusOr<std::unique_ptr<FollowUpModule>> FollowUpModule::Create(
    ServerEnv& env) {
  RETURN_IF_ERROR(FollowUpManager::Migrate(*env.db));
  std::unique_ptr<FollowUpModule> module(new FollowUpModule());
  FollowUpDeps deps;
  deps.db = env.db;
  deps.clock = env.clock;
  deps.random = env.random;
  deps.sealer = env.sealer;
  deps.instruments = &BuiltInInstruments();
  module->manager_ = std::make_unique<FollowUpManager>(deps);
  module->grpc_ = std::make_unique<FollowUpGrpc>(env.edge(), env.internal,
                                                 module->manager_.get());
  AddFollowUpPolicy(*env.policy);
  return module;
}

}  // namespace careseal::followup
