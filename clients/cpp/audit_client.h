// careseal.v1.AuditService for C++ callers (auditors and admins), plus the
// export to a file that clients/cpp/audit_verify.h checks offline.
//
//   careseal::client::AuditClient audit(channel);
//   std::ofstream out("clinic-a.audit.jsonl");
//   auto counts = careseal::client::ExportAuditLogToStream(
//       audit, "tenants/clinic-a", out);
//
// Unary reads are retried on UNAVAILABLE; CreateCheckpoint carries a
// request_id (generated if empty, kept across retries). The export stream is
// not retried (a caller may restart it).
#ifndef CARESEAL_CLIENTS_CPP_AUDIT_CLIENT_H_
#define CARESEAL_CLIENTS_CPP_AUDIT_CLIENT_H_

#include <functional>
#include <memory>
#include <ostream>

#include "careseal/v1/audit.grpc.pb.h"
#include "clients/cpp/audit_verify.h"
#include "clients/cpp/client.h"

namespace careseal::client {

class AuditClient {
 public:
  explicit AuditClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(careseal::v1::AuditService::NewStub(channel)) {}

#define CARESEAL_AUDIT_RPC(Name)                     \
  absl::StatusOr<careseal::v1::Name##Response> Name( \
      careseal::v1::Name##Request request, const CallOptions& options = {});
  CARESEAL_AUDIT_RPC(GetAuditEvent)
  CARESEAL_AUDIT_RPC(ListAuditEvents)
  CARESEAL_AUDIT_RPC(GetCheckpoint)
  CARESEAL_AUDIT_RPC(ListCheckpoints)
  CARESEAL_AUDIT_RPC(CreateCheckpoint)
  CARESEAL_AUDIT_RPC(GetInclusionProof)
  CARESEAL_AUDIT_RPC(GetConsistencyProof)
  CARESEAL_AUDIT_RPC(ListCheckpointKeys)
#undef CARESEAL_AUDIT_RPC

  // Streams the export; `on_item` sees every item in order and may stop the
  // stream by returning an error (which is then returned).
  absl::Status ExportAuditLog(
      const careseal::v1::ExportAuditLogRequest& request,
      const std::function<
          absl::Status(const careseal::v1::ExportAuditLogResponse&)>& on_item,
      const CallOptions& options = {});

 private:
  std::unique_ptr<careseal::v1::AuditService::Stub> stub_;
};

// Exports a tenant's log (tenants/{t}) from leaf 0 up to the latest
// checkpoint (or to end_leaf_index if non-zero) as an export file
// (careseal.audit-export.v1) written to `out`.
absl::StatusOr<ExportCounts> ExportAuditLogToStream(
    AuditClient& client, const std::string& tenant_name, std::ostream& out,
    const CallOptions& options = {}, int64_t end_leaf_index = 0);

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_AUDIT_CLIENT_H_
