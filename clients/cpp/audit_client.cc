#include "clients/cpp/audit_client.h"

namespace careseal::client {
namespace {

namespace v1 = ::careseal::v1;
using Stub = v1::AuditService::Stub;
}  // namespace

#define CARESEAL_AUDIT_RPC(Name)                                         \
  absl::StatusOr<careseal::v1::Name##Response> AuditClient::Name(        \
      careseal::v1::Name##Request request, const CallOptions& options) { \
    return internal::CallUnary(*stub_, &Stub::Name, request, options);   \
  }
CARESEAL_AUDIT_RPC(GetAuditEvent)
CARESEAL_AUDIT_RPC(ListAuditEvents)
CARESEAL_AUDIT_RPC(GetCheckpoint)
CARESEAL_AUDIT_RPC(ListCheckpoints)
CARESEAL_AUDIT_RPC(CreateCheckpoint)
CARESEAL_AUDIT_RPC(GetInclusionProof)
CARESEAL_AUDIT_RPC(GetConsistencyProof)
CARESEAL_AUDIT_RPC(ListCheckpointKeys)
#undef CARESEAL_AUDIT_RPC

absl::Status AuditClient::ExportAuditLog(
    const v1::ExportAuditLogRequest& request,
    const std::function<absl::Status(const v1::ExportAuditLogResponse&)>&
        on_item,
    const CallOptions& options) {
  grpc::ClientContext context;
  internal::Prepare(context, options);
  std::unique_ptr<grpc::ClientReader<v1::ExportAuditLogResponse>> reader =
      stub_->ExportAuditLog(&context, request);
  v1::ExportAuditLogResponse item;
  absl::Status stopped;
  while (reader->Read(&item)) {
    stopped = on_item(item);
    if (!stopped.ok()) {
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (!stopped.ok()) return stopped;
  return FromGrpcStatus(status);
}

absl::StatusOr<ExportCounts> ExportAuditLogToStream(
    AuditClient& client, const std::string& tenant_name, std::ostream& out,
    const CallOptions& options, int64_t end_leaf_index) {
  v1::ExportAuditLogRequest request;
  request.set_parent(tenant_name);
  request.set_end_leaf_index(end_leaf_index);
  out << EncodeExportHeader(tenant_name, 0);
  ExportCounts counts;
  absl::Status status = client.ExportAuditLog(
      request,
      [&](const v1::ExportAuditLogResponse& item) -> absl::Status {
        absl::StatusOr<std::string> line = EncodeExportItem(item);
        if (!line.ok()) return line.status();
        out << *line;
        if (item.has_signing_key()) ++counts.signing_keys;
        if (item.has_checkpoint()) ++counts.checkpoints;
        if (item.has_event()) {
          ++counts.events;
          counts.next_leaf_index = item.event().leaf_index() + 1;
        }
        return absl::OkStatus();
      },
      options);
  if (!status.ok()) return status;
  out << EncodeExportEnd(counts);
  out.flush();
  if (!out) return absl::DataLossError("the export could not be written");
  return counts;
}

}  // namespace careseal::client
