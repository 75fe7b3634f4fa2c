#include "clients/cpp/consent_client.h"

namespace careseal::client {
namespace {

using Stub = careseal::v1::ConsentService::Stub;

// Gives a mutation its request id once, before any attempt.
template <typename Request>
void EnsureRequestId(Request& request) {
  if constexpr (requires { request.request_id(); }) {
    if (request.request_id().empty()) request.set_request_id(NewRequestId());
  }
}

template <typename Request, typename Response>
absl::StatusOr<Response> Call(Stub& stub,
                              grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                           const Request&,
                                                           Response*),
                              Request& request, const CallOptions& options) {
  EnsureRequestId(request);
  Response response;
  absl::Status status = internal::Invoke(
      options, /*retry_safe=*/true, [&](grpc::ClientContext& context) {
        response.Clear();
        return (stub.*method)(&context, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}

}  // namespace

#define CARESEAL_CONSENT_RPC(Name)                                       \
  absl::StatusOr<careseal::v1::Name##Response> ConsentClient::Name(      \
      careseal::v1::Name##Request request, const CallOptions& options) { \
    return Call(*stub_, &Stub::Name, request, options);                  \
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
