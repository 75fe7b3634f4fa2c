// The gRPC edge of the consent service: careseal.v1.ConsentService on the
// callback API. Each handler is thin: parse names, authorize the scope,
// convert, call ConsentManager, convert back. Authentication, role rows,
// request ids and auditing happen in RunUnary (unary_call.h).
#ifndef CARESEAL_SERVICES_CONSENT_CONSENT_GRPC_H_
#define CARESEAL_SERVICES_CONSENT_CONSENT_GRPC_H_

#include "careseal/v1/consent.grpc.pb.h"
#include "services/common/grpc/server_env.h"
#include "services/common/grpc/unary_call.h"
#include "services/consent/consent_manager.h"

namespace careseal::consent {

// Adds the consent service's rows (method x role) to `policy`.
void AddConsentPolicy(Policy& policy);

class ConsentGrpc final : public v1::ConsentService::CallbackService {
 public:
  // `internal` reaches IdentityService for a consent's signing link.
  ConsentGrpc(Edge edge, ConsentManager* manager, InternalChannel* internal)
      : edge_(edge), manager_(manager), internal_(internal) {}

  grpc::ServerUnaryReactor* GetConsentTemplate(
      grpc::CallbackServerContext* ctx,
      const v1::GetConsentTemplateRequest* req,
      v1::GetConsentTemplateResponse* resp) override;
  grpc::ServerUnaryReactor* ListConsentTemplates(
      grpc::CallbackServerContext* ctx,
      const v1::ListConsentTemplatesRequest* req,
      v1::ListConsentTemplatesResponse* resp) override;
  grpc::ServerUnaryReactor* CreateConsentTemplate(
      grpc::CallbackServerContext* ctx,
      const v1::CreateConsentTemplateRequest* req,
      v1::CreateConsentTemplateResponse* resp) override;
  grpc::ServerUnaryReactor* GetConsentTemplateVersion(
      grpc::CallbackServerContext* ctx,
      const v1::GetConsentTemplateVersionRequest* req,
      v1::GetConsentTemplateVersionResponse* resp) override;
  grpc::ServerUnaryReactor* ListConsentTemplateVersions(
      grpc::CallbackServerContext* ctx,
      const v1::ListConsentTemplateVersionsRequest* req,
      v1::ListConsentTemplateVersionsResponse* resp) override;
  grpc::ServerUnaryReactor* PublishConsentTemplateVersion(
      grpc::CallbackServerContext* ctx,
      const v1::PublishConsentTemplateVersionRequest* req,
      v1::PublishConsentTemplateVersionResponse* resp) override;
  grpc::ServerUnaryReactor* GetConsent(grpc::CallbackServerContext* ctx,
                                       const v1::GetConsentRequest* req,
                                       v1::GetConsentResponse* resp) override;
  grpc::ServerUnaryReactor* ListConsents(
      grpc::CallbackServerContext* ctx, const v1::ListConsentsRequest* req,
      v1::ListConsentsResponse* resp) override;
  grpc::ServerUnaryReactor* RequestConsent(
      grpc::CallbackServerContext* ctx, const v1::RequestConsentRequest* req,
      v1::RequestConsentResponse* resp) override;
  grpc::ServerUnaryReactor* GetConsentDocument(
      grpc::CallbackServerContext* ctx,
      const v1::GetConsentDocumentRequest* req,
      v1::GetConsentDocumentResponse* resp) override;
  grpc::ServerUnaryReactor* SignConsent(grpc::CallbackServerContext* ctx,
                                        const v1::SignConsentRequest* req,
                                        v1::SignConsentResponse* resp) override;
  grpc::ServerUnaryReactor* DeclineConsent(
      grpc::CallbackServerContext* ctx, const v1::DeclineConsentRequest* req,
      v1::DeclineConsentResponse* resp) override;
  grpc::ServerUnaryReactor* WithdrawConsent(
      grpc::CallbackServerContext* ctx, const v1::WithdrawConsentRequest* req,
      v1::WithdrawConsentResponse* resp) override;
  grpc::ServerUnaryReactor* CheckConsent(
      grpc::CallbackServerContext* ctx, const v1::CheckConsentRequest* req,
      v1::CheckConsentResponse* resp) override;
  grpc::ServerUnaryReactor* ListSigningKeys(
      grpc::CallbackServerContext* ctx, const v1::ListSigningKeysRequest* req,
      v1::ListSigningKeysResponse* resp) override;

 private:
  const Edge edge_;
  ConsentManager* const manager_;
  InternalChannel* const internal_;
};

}  // namespace careseal::consent

#endif  // CARESEAL_SERVICES_CONSENT_CONSENT_GRPC_H_
