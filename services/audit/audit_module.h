// The audit service as a module a server process hosts: AuditService plus a
// background thread that signs a checkpoint of every tenant whose tree grew,
// every --audit_checkpoint_interval_seconds (default 60; 0 turns it off), and
// one that keeps the audit logs' patient and actor lookups close behind the
// logs (--audit_index_interval_ms, default 1000).
#ifndef CARESEAL_SERVICES_AUDIT_AUDIT_MODULE_H_
#define CARESEAL_SERVICES_AUDIT_AUDIT_MODULE_H_

#include <memory>

#include "absl/time/time.h"
#include "services/audit/audit_grpc.h"
#include "services/audit/audit_manager.h"
#include "services/common/grpc/server_env.h"
#include "services/common/periodic.h"
#include "services/common/platform/signing_keys.h"

namespace careseal::audit {

struct AuditOptions {
  // How often grown trees get a checkpoint; <= 0: only on demand.
  absl::Duration checkpoint_interval = absl::Seconds(60);
  // How often the events logged since the last pass are added to the
  // patient and actor lookups (IndexAuditLogs); <= 0: never (the lookups
  // then scan the log).
  absl::Duration index_interval = absl::Seconds(1);
};

// The options given by the process's flags.
AuditOptions AuditOptionsFromFlags();

class AuditModule final : public ServiceModule {
 public:
  // Applies the schema, loads (or creates) the checkpoint signing key from
  // env.key_dir, registers the policy rows and starts the periodic
  // checkpointer.
  static absl::StatusOr<std::unique_ptr<AuditModule>> Create(
      ServerEnv& env, AuditOptions options = AuditOptionsFromFlags());

  std::vector<std::string> ServiceNames() const override {
    return {"careseal.v1.AuditService"};
  }
  std::vector<grpc::Service*> GrpcServices() override { return {grpc_.get()}; }

  AuditManager& manager() { return *manager_; }
  SigningKeyStore& checkpoint_keys() { return *keys_; }

 private:
  AuditModule() = default;
  std::unique_ptr<SigningKeyStore> keys_;
  std::unique_ptr<AuditManager> manager_;
  std::unique_ptr<AuditGrpc> grpc_;
  // Last: stopped before anything it uses goes away.
  std::unique_ptr<Periodic> checkpointer_;
  std::unique_ptr<Periodic> indexer_;
};

}  // namespace careseal::audit

#endif  // CARESEAL_SERVICES_AUDIT_AUDIT_MODULE_H_
