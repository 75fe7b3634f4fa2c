#include "services/audit/audit_module.h"

#include <cstdio>

#include "absl/flags/flag.h"
#include "services/common/macros.h"

ABSL_FLAG(int64_t, audit_checkpoint_interval_seconds, 60,
          "sign a checkpoint of every tenant's audit log that grew, this "
          "often (seconds); 0 signs only on demand (CreateCheckpoint)");

namespace careseal::audit {

AuditOptions AuditOptionsFromFlags() {
  AuditOptions options;
  options.checkpoint_interval =
      absl::Seconds(absl::GetFlag(FLAGS_audit_checkpoint_interval_seconds));
  return options;
}

absl::StatusOr<std::unique_ptr<AuditModule>> AuditModule::Create(
    ServerEnv& env, AuditOptions options) {
  RETURN_IF_ERROR(AuditManager::Migrate(*env.db));
  std::unique_ptr<AuditModule> module(new AuditModule());
  ASSIGN_OR_RETURN(
      module->keys_,
      SigningKeyStore::Open(env.db, env.key_dir, "checkpoint", env.clock));
  module->manager_ = std::make_unique<AuditManager>(
      AuditDeps{env.db, env.clock, module->keys_.get()});
  module->grpc_ =
      std::make_unique<AuditGrpc>(env.edge(), module->manager_.get());
  AddAuditPolicy(*env.policy);
  if (options.checkpoint_interval > absl::ZeroDuration()) {
    // The wait is the only use of real time; checkpoint times come from
    // the manager's injected clock.
    AuditManager* manager = module->manager_.get();
    module->checkpointer_ =
        std::make_unique<Periodic>(options.checkpoint_interval, [manager] {
          absl::StatusOr<std::vector<Checkpoint>> made =
              manager->CheckpointGrownTenants();
          if (!made.ok()) {
            std::fprintf(stderr, "audit: periodic checkpoint failed: %s\n",
                         made.status().ToString().c_str());
          }
        });
  }
  return module;
}

}  // namespace careseal::audit
