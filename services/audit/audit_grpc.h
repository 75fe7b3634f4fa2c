// The gRPC edge of the audit service: careseal.v1.AuditService on the
// callback API. Unary handlers are thin (parse names, authorize the tenant,
// convert, call AuditManager, convert back) and run through RunUnary, which
// authenticates, applies the role rows and audits the call. ExportAuditLog is
// a server-streaming ServerWriteReactor that does the same steps itself and
// then streams the log in chunks read between writes, never blocking a gRPC
// thread on anything but a short store read.
#ifndef CARESEAL_SERVICES_AUDIT_AUDIT_GRPC_H_
#define CARESEAL_SERVICES_AUDIT_AUDIT_GRPC_H_

#include "careseal/v1/audit.grpc.pb.h"
#include "services/audit/audit_manager.h"
#include "services/common/grpc/unary_call.h"

namespace careseal::audit {

// Adds the audit service's rows (method x role) to `policy`.
void AddAuditPolicy(Policy& policy);

// Conversions, exposed for tests.
void ToProto(const AuditEvent& e, v1::AuditEvent* out);
void ToProto(const Checkpoint& c, v1::SignedCheckpoint* out);
absl::Status ToProto(const CheckpointKey& k, v1::SigningKey* out);

// Events exported per store read.
inline constexpr int kExportChunkEvents = 512;

class AuditGrpc final : public v1::AuditService::CallbackService {
 public:
  AuditGrpc(Edge edge, AuditManager* manager)
      : edge_(edge), manager_(manager) {}

  grpc::ServerUnaryReactor* GetAuditEvent(
      grpc::CallbackServerContext* ctx, const v1::GetAuditEventRequest* req,
      v1::GetAuditEventResponse* resp) override;
  grpc::ServerUnaryReactor* ListAuditEvents(
      grpc::CallbackServerContext* ctx, const v1::ListAuditEventsRequest* req,
      v1::ListAuditEventsResponse* resp) override;
  grpc::ServerUnaryReactor* GetCheckpoint(
      grpc::CallbackServerContext* ctx, const v1::GetCheckpointRequest* req,
      v1::GetCheckpointResponse* resp) override;
  grpc::ServerUnaryReactor* ListCheckpoints(
      grpc::CallbackServerContext* ctx, const v1::ListCheckpointsRequest* req,
      v1::ListCheckpointsResponse* resp) override;
  grpc::ServerUnaryReactor* CreateCheckpoint(
      grpc::CallbackServerContext* ctx, const v1::CreateCheckpointRequest* req,
      v1::CreateCheckpointResponse* resp) override;
  grpc::ServerUnaryReactor* GetInclusionProof(
      grpc::CallbackServerContext* ctx, const v1::GetInclusionProofRequest* req,
      v1::GetInclusionProofResponse* resp) override;
  grpc::ServerUnaryReactor* GetConsistencyProof(
      grpc::CallbackServerContext* ctx,
      const v1::GetConsistencyProofRequest* req,
      v1::GetConsistencyProofResponse* resp) override;
  grpc::ServerUnaryReactor* ListCheckpointKeys(
      grpc::CallbackServerContext* ctx,
      const v1::ListCheckpointKeysRequest* req,
      v1::ListCheckpointKeysResponse* resp) override;
  grpc::ServerWriteReactor<v1::ExportAuditLogResponse>* ExportAuditLog(
      grpc::CallbackServerContext* ctx,
      const v1::ExportAuditLogRequest* req) override;

 private:
  const Edge edge_;
  AuditManager* const manager_;
};

}  // namespace careseal::audit

#endif  // CARESEAL_SERVICES_AUDIT_AUDIT_GRPC_H_
