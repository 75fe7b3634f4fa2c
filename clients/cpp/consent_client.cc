#include "clients/cpp/consent_client.h"

namespace careseal::client {
namespace {

using Stub = careseal::v1::ConsentService::Stub;
}  // namespace

#define CARESEAL_CONSENT_RPC(Name)                                       \
  absl::StatusOr<careseal::v1::Name##Response> ConsentClient::Name(      \
      careseal::v1::Name##Request request, const CallOptions& options) { \
    return internal::CallUnary(*stub_, &Stub::Name, request, options);   \
  }
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

}  // namespace careseal::client
