// careseal.v1.ConsentService for C++ callers. Every mutation carries a
// request_id (generated if the request has none, and kept across retries), so
// retrying on UNAVAILABLE never duplicates a consent or a signature.
#ifndef CARESEAL_CLIENTS_CPP_CONSENT_CLIENT_H_
#define CARESEAL_CLIENTS_CPP_CONSENT_CLIENT_H_

#include <memory>

#include "careseal/v1/consent.grpc.pb.h"
#include "clients/cpp/client.h"

namespace careseal::client {

class ConsentClient {
 public:
  explicit ConsentClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(careseal::v1::ConsentService::NewStub(channel)) {}

#define CARESEAL_CONSENT_RPC(Name)                   \
  absl::StatusOr<careseal::v1::Name##Response> Name( \
      careseal::v1::Name##Request request, const CallOptions& options = {});
  CARESEAL_CONSENT_RPC(GetConsentTemplate)
  CARESEAL_CONSENT_RPC(ListConsentTemplates)
  CARESEAL_CONSENT_RPC(CreateConsentTemplate)
  CARESEAL_CONSENT_RPC(GetConsentTemplateVersion)
  CARESEAL_CONSENT_RPC(ListConsentTemplateVersions)
  CARESEAL_CONSENT_RPC(PublishConsentTemplateVersion)
  CARESEAL_CONSENT_RPC(GetConsent)
  CARESEAL_CONSENT_RPC(ListConsents)
  CARESEAL_CONSENT_RPC(RequestConsent)
  CARESEAL_CONSENT_RPC(GetConsentDocument)
  CARESEAL_CONSENT_RPC(SignConsent)
  CARESEAL_CONSENT_RPC(DeclineConsent)
  CARESEAL_CONSENT_RPC(WithdrawConsent)
  CARESEAL_CONSENT_RPC(CheckConsent)
  CARESEAL_CONSENT_RPC(ListSigningKeys)
#undef CARESEAL_CONSENT_RPC

 private:
  std::unique_ptr<careseal::v1::ConsentService::Stub> stub_;
};

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_CONSENT_CLIENT_H_
