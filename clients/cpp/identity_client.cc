#include "clients/cpp/identity_client.h"

namespace careseal::client {
namespace {
using Stub = careseal::v1::IdentityService::Stub;
}  // namespace

#define CARESEAL_IDENTITY_RPC(Name)                                      \
  absl::StatusOr<careseal::v1::Name##Response> IdentityClient::Name(     \
      careseal::v1::Name##Request request, const CallOptions& options) { \
    return internal::CallUnary(*stub_, &Stub::Name, request, options);   \
  }
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
CARESEAL_IDENTITY_RPC(IssueLinkCode)
CARESEAL_IDENTITY_RPC(RevokePatientLink)
CARESEAL_IDENTITY_RPC(RedeemLink)
CARESEAL_IDENTITY_RPC(EndPatientSession)
CARESEAL_IDENTITY_RPC(StartBreakGlass)
CARESEAL_IDENTITY_RPC(EndBreakGlass)
CARESEAL_IDENTITY_RPC(ListBreakGlassGrants)
#undef CARESEAL_IDENTITY_RPC

}  // namespace careseal::client
