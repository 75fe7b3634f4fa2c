// The gRPC edge of identity: careseal.v1.IdentityService on the callback
// API. Handlers are thin (parse names, authorize the scope, convert, call
// IdentityManager, convert back) and run through RunUnary.

#ifndef CARESEAL_SERVICES_IDENTITY_IDENTITY_GRPC_H_
#define CARESEAL_SERVICES_IDENTITY_IDENTITY_GRPC_H_

#include "careseal/v1/identity.grpc.pb.h"
#include "services/common/grpc/unary_call.h"
#include "services/identity/identity_manager.h"

namespace careseal::identity {

// Adds the identity service's rows (method x role) to `policy`.
void AddIdentityPolicy(Policy& policy);

#define CARESEAL_IDENTITY_RPC(Name)                                \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx, \
                                 const v1::Name##Request* req,     \
                                 v1::Name##Response* resp) override;

class IdentityGrpc final : public v1::IdentityService::CallbackService {
 public:
  IdentityGrpc(Edge edge, IdentityManager* manager)
      : edge_(edge), manager_(manager) {}

  CARESEAL_IDENTITY_RPC(GetTenant)
  CARESEAL_IDENTITY_RPC(ListTenants)
  CARESEAL_IDENTITY_RPC(CreateTenant)
  CARESEAL_IDENTITY_RPC(UpdateTenant)
  CARESEAL_IDENTITY_RPC(GetIssuer)
  CARESEAL_IDENTITY_RPC(ListIssuers)
  CARESEAL_IDENTITY_RPC(RegisterIssuer)
  CARESEAL_IDENTITY_RPC(UpdateIssuer)
  CARESEAL_IDENTITY_RPC(RevokeIssuer)
  CARESEAL_IDENTITY_RPC(GetClinician)
  CARESEAL_IDENTITY_RPC(ListClinicians)
  CARESEAL_IDENTITY_RPC(CreateClinician)
  CARESEAL_IDENTITY_RPC(UpdateClinician)
  CARESEAL_IDENTITY_RPC(GetPatient)
  CARESEAL_IDENTITY_RPC(ListPatients)
  CARESEAL_IDENTITY_RPC(CreatePatient)
  CARESEAL_IDENTITY_RPC(UpdatePatient)
  CARESEAL_IDENTITY_RPC(CreatePatientLink)
  CARESEAL_IDENTITY_RPC(ListBreakGlassGrants)
  CARESEAL_IDENTITY_RPC(IssueLinkCode)
  CARESEAL_IDENTITY_RPC(RevokePatientLink)
  CARESEAL_IDENTITY_RPC(RedeemLink)
  CARESEAL_IDENTITY_RPC(EndPatientSession)
  CARESEAL_IDENTITY_RPC(StartBreakGlass)
  CARESEAL_IDENTITY_RPC(EndBreakGlass)

 private:
  const Edge edge_;
  IdentityManager* const manager_;
};

#undef CARESEAL_IDENTITY_RPC

}  // namespace careseal::identity

#endif  // CARESEAL_SERVICES_IDENTITY_IDENTITY_GRPC_H_
