// The gRPC edge of the pre-session service: careseal.v1.PreSessionService on
// the callback API. Handlers are thin (parse names, authorize the scope,
// convert, call PreSessionManager, convert back) and run through RunUnary.
// Readiness asks ConsentService.CheckConsent over the in-process channel as
// CareSeal itself (Role::kSystem) and fails closed (UNAVAILABLE
// CONSENT_SERVICE_UNAVAILABLE) when it cannot answer.
#ifndef CARESEAL_SERVICES_PRESESSION_PRESESSION_GRPC_H_
#define CARESEAL_SERVICES_PRESESSION_PRESESSION_GRPC_H_

#include "careseal/v1/identity.pb.h"
#include "careseal/v1/presession.grpc.pb.h"
#include "services/common/grpc/server_env.h"
#include "services/common/grpc/unary_call.h"
#include "services/presession/presession_manager.h"

namespace careseal::presession {

// Adds the pre-session service's rows (method x role) to `policy`.
void AddPreSessionPolicy(Policy& policy);

// The clinic's time zone from IdentityService.GetTenant's answer (`status`,
// `resp`): the tenant's time_zone; UTC when it has none (or an unknown
// one), the tenant is not registered there (NOT_FOUND) or no
// IdentityService is hosted (UNIMPLEMENTED); UNAVAILABLE
// (IDENTITY_SERVICE_UNAVAILABLE) on any other error.
absl::StatusOr<absl::TimeZone> TenantZoneFrom(
    const grpc::Status& status, const v1::GetTenantResponse& resp);

class PreSessionGrpc final : public v1::PreSessionService::CallbackService {
 public:
  PreSessionGrpc(Edge edge, InternalChannel* internal,
                 PreSessionManager* manager)
      : edge_(edge), internal_(internal), manager_(manager) {}

#define CARESEAL_PS_RPC(Name)                                      \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx, \
                                 const v1::Name##Request* req,     \
                                 v1::Name##Response* resp) override;
  CARESEAL_PS_RPC(GetSessionSeries)
  CARESEAL_PS_RPC(ListSessionSeries)
  CARESEAL_PS_RPC(CreateSessionSeries)
  CARESEAL_PS_RPC(GetSession)
  CARESEAL_PS_RPC(ListSessions)
  CARESEAL_PS_RPC(CreateSession)
  CARESEAL_PS_RPC(GetInstructionTemplate)
  CARESEAL_PS_RPC(ListInstructionTemplates)
  CARESEAL_PS_RPC(CreateInstructionTemplate)
  CARESEAL_PS_RPC(GetInstructionTemplateVersion)
  CARESEAL_PS_RPC(ListInstructionTemplateVersions)
  CARESEAL_PS_RPC(ListInstructionDeliveries)
  CARESEAL_PS_RPC(GetInstructions)
  CARESEAL_PS_RPC(ListAttestations)
  CARESEAL_PS_RPC(GetPreSessionSettings)
  CARESEAL_PS_RPC(UpdatePreSessionSettings)
  CARESEAL_PS_RPC(CancelSessionSeries)
  CARESEAL_PS_RPC(MoveSession)
  CARESEAL_PS_RPC(CancelSession)
  CARESEAL_PS_RPC(CompleteSession)
  CARESEAL_PS_RPC(PublishInstructionTemplateVersion)
  CARESEAL_PS_RPC(AcknowledgeInstructions)
  CARESEAL_PS_RPC(CheckSessionReadiness)
  CARESEAL_PS_RPC(OverrideReadiness)
#undef CARESEAL_PS_RPC

 private:
  const Edge edge_;
  InternalChannel* const internal_;
  PreSessionManager* const manager_;
};

}  // namespace careseal::presession

#endif  // CARESEAL_SERVICES_PRESESSION_PRESESSION_GRPC_H_
