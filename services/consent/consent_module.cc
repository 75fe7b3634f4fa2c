#include "services/consent/consent_module.h"

#include "absl/flags/flag.h"
#include "services/common/macros.h"

ABSL_FLAG(int64_t, consent_scheduler_interval_seconds, 30,
          "how often expired consent requests (and consents past "
          "valid_until) are recorded as EXPIRED with an event; 0: never");

namespace careseal::consent {

ConsentModule::~ConsentModule() {
  if (scheduler_) scheduler_->Stop();
}

absl::StatusOr<std::unique_ptr<ConsentModule>> ConsentModule::Create(
    ServerEnv& env) {
  RETURN_IF_ERROR(ConsentManager::Migrate(*env.db));
  std::unique_ptr<ConsentModule> module(new ConsentModule());
  ASSIGN_OR_RETURN(module->keys_, SigningKeyStore::Open(env.db, env.key_dir,
                                                        "receipt", env.clock));
  module->manager_ = std::make_unique<ConsentManager>(ConsentDeps{
      env.db, env.clock, env.random, env.sealer, module->keys_.get()});
  module->grpc_ = std::make_unique<ConsentGrpc>(
      env.edge(), module->manager_.get(), env.internal);
  AddConsentPolicy(*env.policy);
  module->scheduler_ =
      std::make_unique<scheduler::Scheduler>(*env.db, *env.clock);
  ConsentManager* manager = module->manager_.get();
  scheduler::Handler expire;
  expire.commit = [manager](sql::Txn& txn, const scheduler::Job& job,
                            absl::Time now) {
    return manager->ExpireDue(txn, job, now);
  };
  module->scheduler_->Register(ConsentManager::kExpireKind, std::move(expire));
  const int64_t interval =
      absl::GetFlag(FLAGS_consent_scheduler_interval_seconds);
  if (interval > 0) module->scheduler_->Start(absl::Seconds(interval));
  return module;
}

}  // namespace careseal::consent
