// careseal.v1.IdentityService for C++ callers (admin tooling, EHR
// integrations, the portal). Every mutation carries a request_id (generated
// if empty and kept across retries), so a retried create never creates
// twice.
#ifndef CARESEAL_CLIENTS_CPP_IDENTITY_CLIENT_H_
#define CARESEAL_CLIENTS_CPP_IDENTITY_CLIENT_H_

#include <memory>

#include "careseal/v1/identity.grpc.pb.h"
#include "clients/cpp/client.h"

namespace careseal::client {

class IdentityClient {
 public:
  explicit IdentityClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(careseal::v1::IdentityService::NewStub(channel)) {}

#define CARESEAL_IDENTITY_RPC(Name)                  \
  absl::StatusOr<careseal::v1::Name##Response> Name( \
      careseal::v1::Name##Request request, const CallOptions& options = {});
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

 private:
  std::unique_ptr<careseal::v1::IdentityService::Stub> stub_;
};

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_IDENTITY_CLIENT_H_
