#include "services/consent/consent_module.h"

#include "services/common/macros.h"

namespace careseal::consent {

absl::StatusOr<std::unique_ptr<ConsentModule>> ConsentModule::Create(
    ServerEnv& env) {
  RETURN_IF_ERROR(ConsentManager::Migrate(*env.db));
  std::unique_ptr<ConsentModule> module(new ConsentModule());
  ASSIGN_OR_RETURN(module->keys_, SigningKeyStore::Open(env.db, env.key_dir,
                                                        "receipt", env.clock));
  module->manager_ = std::make_unique<ConsentManager>(ConsentDeps{
      env.db, env.clock, env.random, env.sealer, module->keys_.get()});
  module->grpc_ =
      std::make_unique<ConsentGrpc>(env.edge(), module->manager_.get());
  AddConsentPolicy(*env.policy);
  return module;
}

}  // namespace careseal::consent
