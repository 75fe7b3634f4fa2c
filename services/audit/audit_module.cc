#include "services/audit/audit_module.h"

#include <cstdio>

#include "absl/flags/flag.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/log_index.h"

ABSL_FLAG(int64_t, audit_checkpoint_interval_seconds, 60,
          "sign a checkpoint of every tenant's audit log that grew, this "
          "often (seconds); 0 signs only on demand (CreateCheckpoint)");

ABSL_FLAG(int64_t, audit_index_interval_ms, 1000,
          "add the audit events logged since the last pass to the patient "
          "and actor lookups, this often (milliseconds; until then they are "
          "found by scanning the log's tail); 0 turns the indexer off");

namespace careseal::audit {
namespace {

// Events per indexing transaction: large enough that many events share each
// lookup page, small enough that the store's writer is not held for long.
constexpr int64_t kIndexChunk = 8192;
// Chunks per pass, so that a long backlog is caught up over several passes.
constexpr int kIndexChunksPerPass = 16;

}  // namespace

AuditOptions AuditOptionsFromFlags() {
  AuditOptions options;
  options.checkpoint_interval =
      absl::Seconds(absl::GetFlag(FLAGS_audit_checkpoint_interval_seconds));
  options.index_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_audit_index_interval_ms));
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
  if (options.index_interval > absl::ZeroDuration()) {
    sql::Database* db = env.db;
    module->indexer_ = std::make_unique<Periodic>(options.index_interval, [db] {
      RunIndexPass(*db, kIndexChunk, kIndexChunksPerPass, IndexAuditLogs,
                   "audit: indexing the logs");
    });
  }
  return module;
}

}  // namespace careseal::audit
