#include "services/consent/consent_grpc.h"

#include <chrono>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "careseal/v1/identity.grpc.pb.h"
#include "services/common/crypto/key_ring.h"
#include "services/common/macros.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/resource_name.h"
#include "services/common/status.h"
#include "services/consent/consent_canonical.h"

namespace careseal::consent {
namespace {

#define CONSENT_METHOD(name) "careseal.v1.ConsentService/" #name

constexpr char kTenantPattern[] = "tenants/{tenant}";
constexpr char kTemplatePattern[] =
    "tenants/{tenant}/consentTemplates/{template}";
constexpr char kVersionPattern[] =
    "tenants/{tenant}/consentTemplates/{template}/versions/{version}";
constexpr char kPatientPattern[] = "tenants/{tenant}/patients/{patient}";
constexpr char kConsentPattern[] =
    "tenants/{tenant}/patients/{patient}/consents/{consent}";

absl::Status Authorize(const Edge& edge, const CallContext& call,
                       const ResourceName& name) {
  return edge.policy->Authorize(call.principal, call.method,
                                Scope{name.Get("tenant"), name.Get("patient")},
                                call.now);
}

// "latest" -> 0; a positive decimal -> itself.
absl::StatusOr<int> VersionNumber(const ResourceName& name,
                                  absl::string_view field) {
  const std::string& v = name.Get("version");
  int n = 0;
  if (v == "latest") return 0;
  if (!absl::SimpleAtoi(v, &n) || n <= 0) {
    return InvalidField(field, "INVALID_NAME",
                        absl::StrCat(field,
                                     ": the version is a positive number or "
                                     "'latest'"));
  }
  return n;
}

void ToProto(const ConsentTemplate& t, v1::ConsentTemplate* out) {
  out->set_name(t.Name());
  out->set_display_name(t.display_name);
  if (t.latest_version > 0) {
    out->set_latest_version(
        absl::StrCat(t.Name(), "/versions/", t.latest_version));
  }
  ToTimestamp(t.create_time, out->mutable_create_time());
  ToTimestamp(t.update_time, out->mutable_update_time());
}

void ToProto(const TemplateVersion& v, v1::ConsentTemplateVersion* out) {
  out->set_name(v.Name());
  out->set_version_number(v.version);
  out->set_title(v.content.title);
  out->set_body_markdown(v.content.body_markdown);
  for (const Acknowledgement& a : v.content.acknowledgements) {
    auto* ack = out->add_acknowledgements();
    ack->set_id(a.id);
    ack->set_text(a.text);
    ack->set_required(a.required);
  }
  for (const std::string& code : v.content.procedure_codes) {
    out->add_procedure_codes(code);
  }
  out->set_esign_disclosure(v.content.esign_disclosure);
  out->set_signature_meaning(v.content.signature_meaning);
  out->set_requires_reconsent(v.content.requires_reconsent);
  out->set_canonical_format(kDocumentFormat);
  out->set_document_sha256(v.document_sha256);
  ToTimestamp(v.publish_time, out->mutable_publish_time());
  out->mutable_publisher()->set_name(v.publisher);
}

absl::Status ToProto(const Receipt& r, v1::ConsentReceipt* out) {
  ReceiptFacts decoded;
  if (r.facts == nullptr) {
    ASSIGN_OR_RETURN(decoded, DecodeReceiptPayload(r.payload));
  }
  const ReceiptFacts& f = r.facts != nullptr ? *r.facts : decoded;
  out->set_payload(r.payload);
  out->set_signature(r.signature);
  out->set_key_id(r.key_id);
  out->set_algorithm("Ed25519");
  out->set_format(kReceiptFormat);
  out->set_consent(f.consent);
  out->set_tenant(f.tenant);
  out->set_patient(f.patient);
  out->set_template_version(f.template_version);
  out->set_procedure_code(f.procedure_code);
  out->set_document_sha256(f.document_sha256);
  for (const std::string& id : f.acknowledged_ids)
    out->add_acknowledged_ids(id);
  out->set_printed_name(f.printed_name);
  out->set_signature_meaning(f.signature_meaning);
  out->set_signing_method(static_cast<v1::SigningMethod>(f.signing_method));
  ToTimestamp(f.sign_time, out->mutable_sign_time());
  out->set_drawn_signature_sha256(f.drawn_signature_sha256);
  out->set_audit_leaf_index(f.audit_leaf_index);
  return absl::OkStatus();
}

absl::Status ToProto(const Consent& c, v1::Consent* out) {
  out->set_name(c.Name());
  out->set_template_version(c.TemplateVersionName());
  out->set_procedure_code(c.procedure_code);
  out->set_state(static_cast<v1::ConsentState>(c.state));
  out->set_document_sha256(c.document_sha256);
  out->mutable_requested_by()->set_name(c.requested_by);
  ToTimestamp(c.create_time, out->mutable_create_time());
  ToTimestamp(c.update_time, out->mutable_update_time());
  ToTimestamp(c.expire_time, out->mutable_expire_time());
  if (c.valid_until) ToTimestamp(*c.valid_until, out->mutable_valid_until());
  if (c.sign_time) ToTimestamp(*c.sign_time, out->mutable_sign_time());
  if (c.receipt) RETURN_IF_ERROR(ToProto(*c.receipt, out->mutable_receipt()));
  if (c.withdraw_time) {
    ToTimestamp(*c.withdraw_time, out->mutable_withdraw_time());
    out->mutable_withdrawn_by()->set_name(c.withdrawn_by);
  }
  out->set_end_reason(c.end_reason);
  if (c.decline_time) ToTimestamp(*c.decline_time, out->mutable_decline_time());
  if (c.supersede_time) {
    ToTimestamp(*c.supersede_time, out->mutable_supersede_time());
  }
  out->set_superseded_by(c.superseded_by);
  out->set_signing_link(c.signing_link);
  return absl::OkStatus();
}

TemplateVersionContent FromProto(const v1::ConsentTemplateVersion& v) {
  TemplateVersionContent c;
  c.title = v.title();
  c.body_markdown = v.body_markdown();
  for (const auto& a : v.acknowledgements()) {
    c.acknowledgements.push_back({a.id(), a.text(), a.required()});
  }
  c.procedure_codes.assign(v.procedure_codes().begin(),
                           v.procedure_codes().end());
  c.esign_disclosure = v.esign_disclosure();
  c.signature_meaning = v.signature_meaning();
  c.requires_reconsent = v.requires_reconsent();
  return c;
}

// Completion of an asynchronous domain call: convert on success, then finish.
template <typename T, typename Convert>
Done<T> Reply(Finisher finish, Convert convert) {
  return [finish = std::move(finish),
          convert = std::move(convert)](absl::StatusOr<T> result) mutable {
    if (!result.ok()) return finish(result.status());
    finish(convert(*result));
  };
}

// The second step of RequestConsent: a patient link (IdentityService, over the
// in-process channel, as CareSeal) that targets the new consent and needs the
// date of birth, whose token then becomes the consent's signing token. So the
// one token the EHR sends opens the portal (RedeemLink) and signs
// (SignConsent). The link's request id is derived from the consent, so a
// retried RequestConsent gets the same link with a fresh token.
class SigningLinkStep : public std::enable_shared_from_this<SigningLinkStep> {
 public:
  SigningLinkStep(std::shared_ptr<grpc::Channel> channel,
                  ConsentManager* manager, CallContext& call,
                  RequestResult first, Done<RequestResult> done)
      : stub_(v1::IdentityService::NewStub(channel)),
        manager_(manager),
        call_(call),
        first_(std::move(first)),
        done_(std::move(done)) {
    const Consent& c = first_.consent;
    req_.set_parent(c.PatientName());
    req_.set_target(c.Name());
    req_.set_factor(v1::LINK_FACTOR_DATE_OF_BIRTH);
    ToTimestamp(c.expire_time, req_.mutable_expire_time());
    req_.set_request_id(
        DerivedRequestId(absl::StrCat("consent-signing-link:", c.Name())));
  }

  void Start() {
    ctx_.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(10));
    auto self = shared_from_this();
    stub_->async()->CreatePatientLink(
        &ctx_, &req_, &resp_,
        [self](grpc::Status s) { self->Finish(std::move(s)); });
  }

 private:
  void Finish(grpc::Status s) {
    switch (s.error_code()) {
      case grpc::StatusCode::OK:
        return manager_->AttachSigningLink(
            call_, std::move(first_.consent), resp_.link().name(),
            resp_.link_token(), std::move(done_));
      // No identity record for the patient (or disabled, or no identity
      // service hosted): the consent keeps its own signing token, which
      // SignConsent accepts; only RedeemLink does not know it.
      case grpc::StatusCode::NOT_FOUND:
      case grpc::StatusCode::FAILED_PRECONDITION:
      case grpc::StatusCode::UNIMPLEMENTED:
        return done_(std::move(first_));
      default:
        return done_(Error(
            absl::StatusCode::kUnavailable, "SIGNING_LINK_UNAVAILABLE",
            absl::StrCat("the consent was requested but its portal link could "
                         "not be made (",
                         s.error_message(),
                         "); retry with the same request_id")));
    }
  }

  std::unique_ptr<v1::IdentityService::Stub> stub_;
  ConsentManager* const manager_;
  CallContext& call_;
  RequestResult first_;
  Done<RequestResult> done_;
  grpc::ClientContext ctx_;
  v1::CreatePatientLinkRequest req_;
  v1::CreatePatientLinkResponse resp_;
};

}  // namespace

void AddConsentPolicy(Policy& policy) {
  using R = Role;
  policy.Allow(CONSENT_METHOD(GetConsentTemplate),
               {R::kAdmin, R::kEhrSystem, R::kClinician, R::kBreakGlass});
  policy.Allow(CONSENT_METHOD(ListConsentTemplates),
               {R::kAdmin, R::kEhrSystem, R::kClinician, R::kBreakGlass});
  policy.Allow(CONSENT_METHOD(CreateConsentTemplate),
               {R::kAdmin, R::kEhrSystem});
  policy.Allow(CONSENT_METHOD(GetConsentTemplateVersion),
               {R::kAdmin, R::kEhrSystem, R::kClinician, R::kBreakGlass});
  policy.Allow(CONSENT_METHOD(ListConsentTemplateVersions),
               {R::kAdmin, R::kEhrSystem, R::kClinician, R::kBreakGlass});
  policy.Allow(CONSENT_METHOD(PublishConsentTemplateVersion),
               {R::kAdmin, R::kEhrSystem});
  policy.Allow(CONSENT_METHOD(GetConsent),
               {R::kEhrSystem, R::kClinician, R::kBreakGlass, R::kPatient});
  policy.Allow(CONSENT_METHOD(ListConsents),
               {R::kEhrSystem, R::kClinician, R::kBreakGlass, R::kPatient});
  policy.Allow(CONSENT_METHOD(RequestConsent), {R::kEhrSystem, R::kClinician});
  // The portal acts for a link holder: only with the consent's signing
  // token, which the domain checks.
  policy.Allow(
      CONSENT_METHOD(GetConsentDocument),
      {R::kPatient, R::kPortal, R::kEhrSystem, R::kClinician, R::kBreakGlass});
  policy.Allow(CONSENT_METHOD(SignConsent), {R::kPatient, R::kPortal});
  policy.Allow(CONSENT_METHOD(DeclineConsent), {R::kPatient, R::kPortal});
  policy.Allow(CONSENT_METHOD(WithdrawConsent),
               {R::kPatient, R::kClinician, R::kBreakGlass});
  // System: the pre-session service's readiness gate (in-process).
  policy.Allow(
      CONSENT_METHOD(CheckConsent),
      {R::kEhrSystem, R::kClinician, R::kBreakGlass, R::kPatient, R::kSystem});
  policy.Allow(CONSENT_METHOD(ListSigningKeys),
               {R::kEhrSystem, R::kClinician, R::kPatient, R::kAuditor,
                R::kAdmin, R::kBreakGlass, R::kPortal, R::kSystem});
}

grpc::ServerUnaryReactor* ConsentGrpc::GetConsentTemplate(
    grpc::CallbackServerContext* ctx, const v1::GetConsentTemplateRequest* req,
    v1::GetConsentTemplateResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(GetConsentTemplate), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTemplatePattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        ASSIGN_OR_RETURN(ConsentTemplate t,
                         manager_->GetTemplate(call, name.Get("tenant"),
                                               name.Get("template")));
        ToProto(t, resp->mutable_consent_template());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::ListConsentTemplates(
    grpc::CallbackServerContext* ctx,
    const v1::ListConsentTemplatesRequest* req,
    v1::ListConsentTemplatesResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(ListConsentTemplates), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        ASSIGN_OR_RETURN(auto page, manager_->ListTemplates(
                                        call, name.Get("tenant"),
                                        req->page_size(), req->page_token()));
        for (const auto& t : page.items) {
          ToProto(t, resp->add_consent_templates());
        }
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::CreateConsentTemplate(
    grpc::CallbackServerContext* ctx,
    const v1::CreateConsentTemplateRequest* req,
    v1::CreateConsentTemplateResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(CreateConsentTemplate), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        manager_->CreateTemplate(
            call,
            {name.Get("tenant"), req->consent_template_id(),
             req->consent_template().display_name()},
            Reply<ConsentTemplate>(finish, [resp](const ConsentTemplate& t) {
              ToProto(t, resp->mutable_consent_template());
              return absl::OkStatus();
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::GetConsentTemplateVersion(
    grpc::CallbackServerContext* ctx,
    const v1::GetConsentTemplateVersionRequest* req,
    v1::GetConsentTemplateVersionResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(GetConsentTemplateVersion), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kVersionPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        ASSIGN_OR_RETURN(int number, VersionNumber(name, "name"));
        ASSIGN_OR_RETURN(TemplateVersion v,
                         manager_->GetVersion(call, name.Get("tenant"),
                                              name.Get("template"), number));
        ToProto(v, resp->mutable_version());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::ListConsentTemplateVersions(
    grpc::CallbackServerContext* ctx,
    const v1::ListConsentTemplateVersionsRequest* req,
    v1::ListConsentTemplateVersionsResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(ListConsentTemplateVersions), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTemplatePattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        ASSIGN_OR_RETURN(auto page,
                         manager_->ListVersions(
                             call, name.Get("tenant"), name.Get("template"),
                             req->page_size(), req->page_token()));
        for (const auto& v : page.items) ToProto(v, resp->add_versions());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::PublishConsentTemplateVersion(
    grpc::CallbackServerContext* ctx,
    const v1::PublishConsentTemplateVersionRequest* req,
    v1::PublishConsentTemplateVersionResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(PublishConsentTemplateVersion), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTemplatePattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        manager_->PublishVersion(
            call,
            {name.Get("tenant"), name.Get("template"),
             FromProto(req->version())},
            Reply<TemplateVersion>(finish, [resp](const TemplateVersion& v) {
              ToProto(v, resp->mutable_version());
              return absl::OkStatus();
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::GetConsent(
    grpc::CallbackServerContext* ctx, const v1::GetConsentRequest* req,
    v1::GetConsentResponse* resp) {
  return RunUnary(ctx, edge_, CONSENT_METHOD(GetConsent), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName name,
                                     ResourceName::Parse(kConsentPattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_, call, name));
                    ASSIGN_OR_RETURN(Consent c, manager_->GetConsent(
                                                    call, name.Get("tenant"),
                                                    name.Get("patient"),
                                                    name.Get("consent")));
                    RETURN_IF_ERROR(ToProto(c, resp->mutable_consent()));
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* ConsentGrpc::ListConsents(
    grpc::CallbackServerContext* ctx, const v1::ListConsentsRequest* req,
    v1::ListConsentsResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(ListConsents), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(ResourceName name, ResourceName::ParseWithWildcard(
                                                kPatientPattern, req->parent(),
                                                "parent", "patient"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        ConsentFilter filter;
        filter.tenant = name.Get("tenant");
        filter.patient = name.Get("patient");
        if (req->state() != v1::CONSENT_STATE_UNSPECIFIED) {
          if (!v1::ConsentState_IsValid(req->state())) {
            return InvalidField("state", "INVALID_ENUM_VALUE",
                                "state is not a ConsentState value");
          }
          filter.state = static_cast<ConsentState>(req->state());
        }
        filter.procedure_code = req->procedure_code();
        ASSIGN_OR_RETURN(auto page,
                         manager_->ListConsents(call, filter, req->page_size(),
                                                req->page_token()));
        for (const auto& c : page.items) {
          RETURN_IF_ERROR(ToProto(c, resp->add_consents()));
        }
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::RequestConsent(
    grpc::CallbackServerContext* ctx, const v1::RequestConsentRequest* req,
    v1::RequestConsentResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(RequestConsent), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kPatientPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        RequestInput in;
        in.tenant = name.Get("tenant");
        in.patient = name.Get("patient");
        in.procedure_code = req->procedure_code();
        if (!req->template_version().empty()) {
          auto version = ResourceName::Parse(
              kVersionPattern, req->template_version(), "template_version");
          if (version.ok()) {
            in.template_id = version->Get("template");
            ASSIGN_OR_RETURN(in.version,
                             VersionNumber(*version, "template_version"));
          } else {
            ASSIGN_OR_RETURN(
                ResourceName t,
                ResourceName::Parse(kTemplatePattern, req->template_version(),
                                    "template_version"));
            in.template_id = t.Get("template");
          }
          if (version.ok() ? version->Get("tenant") != in.tenant : false) {
            return ResourceNotFound();
          }
        }
        if (req->has_expire_time()) {
          ASSIGN_OR_RETURN(in.expire_time,
                           FromTimestamp(req->expire_time(), "expire_time"));
        }
        if (req->has_valid_until()) {
          ASSIGN_OR_RETURN(in.valid_until,
                           FromTimestamp(req->valid_until(), "valid_until"));
        }
        Done<RequestResult> reply =
            Reply<RequestResult>(finish, [resp](const RequestResult& r) {
              RETURN_IF_ERROR(ToProto(r.consent, resp->mutable_consent()));
              resp->set_signing_token(r.signing_token);
              ToTimestamp(r.consent.expire_time,
                          resp->mutable_signing_token_expire_time());
              return absl::OkStatus();
            });
        manager_->RequestConsent(
            call, std::move(in),
            [this, &call, reply = std::move(reply)](
                absl::StatusOr<RequestResult> first) mutable {
              auto channel = internal_->Get();
              if (!first.ok() || !channel.ok()) return reply(std::move(first));
              std::make_shared<SigningLinkStep>(
                  *channel, manager_, call, *std::move(first), std::move(reply))
                  ->Start();
            });
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::GetConsentDocument(
    grpc::CallbackServerContext* ctx, const v1::GetConsentDocumentRequest* req,
    v1::GetConsentDocumentResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(GetConsentDocument), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        absl::StatusOr<DocumentView> view;
        if (req->has_signing_token()) {
          if (req->signing_token().empty()) {
            return InvalidField("signing_token", "FIELD_REQUIRED",
                                "signing_token is empty");
          }
          view = manager_->GetDocument(call, "", "", "", req->signing_token());
        } else {
          if (call.principal.role == Role::kPortal) {
            return InvalidField("signing_token", "FIELD_REQUIRED",
                                "the portal reads a document by its signing "
                                "token");
          }
          ASSIGN_OR_RETURN(
              ResourceName name,
              ResourceName::Parse(kConsentPattern, req->name(), "name"));
          RETURN_IF_ERROR(Authorize(edge_, call, name));
          view = manager_->GetDocument(call, name.Get("tenant"),
                                       name.Get("patient"), name.Get("consent"),
                                       "");
        }
        if (!view.ok()) return view.status();
        if (call.principal.role != Role::kPortal) {
          // A token lookup by a tenant-bound caller must still stay inside
          // its own tenant (and patient).
          RETURN_IF_ERROR(edge_.policy->Authorize(
              call.principal, call.method,
              Scope{view->consent.tenant, view->consent.patient}, call.now));
        }
        const TemplateVersion& v = view->version;
        resp->set_consent(view->consent.Name());
        resp->set_state(static_cast<v1::ConsentState>(view->consent.state));
        resp->set_template_version(v.Name());
        resp->set_procedure_code(view->consent.procedure_code);
        resp->set_title(v.content.title);
        resp->set_body_markdown(v.content.body_markdown);
        for (const Acknowledgement& a : v.content.acknowledgements) {
          auto* ack = resp->add_acknowledgements();
          ack->set_id(a.id);
          ack->set_text(a.text);
          ack->set_required(a.required);
        }
        resp->set_esign_disclosure(v.content.esign_disclosure);
        resp->set_signature_meaning(v.content.signature_meaning);
        resp->set_canonical_document(v.canonical_document);
        resp->set_canonical_format(kDocumentFormat);
        resp->set_document_sha256(v.document_sha256);
        ToTimestamp(view->consent.expire_time, resp->mutable_expire_time());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::SignConsent(
    grpc::CallbackServerContext* ctx, const v1::SignConsentRequest* req,
    v1::SignConsentResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(SignConsent), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kConsentPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        SignInput in;
        in.tenant = name.Get("tenant");
        in.patient = name.Get("patient");
        in.consent_id = name.Get("consent");
        in.signing_token = req->signing_token();
        in.document_sha256 = req->document_sha256();
        in.acknowledged_ids.assign(req->acknowledged_ids().begin(),
                                   req->acknowledged_ids().end());
        in.intent_to_sign = req->intent_to_sign();
        in.printed_name = req->printed_name();
        in.signature_meaning = req->signature_meaning();
        in.signing_method = req->signing_method();
        in.drawn_signature_png = req->drawn_signature_png();
        in.client_address = req->client_address();
        in.user_agent = req->user_agent();
        manager_->SignConsent(
            call, std::move(in),
            Reply<SignResult>(finish, [resp](const SignResult& r) {
              RETURN_IF_ERROR(ToProto(r.consent, resp->mutable_consent()));
              return ToProto(r.receipt, resp->mutable_receipt());
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::DeclineConsent(
    grpc::CallbackServerContext* ctx, const v1::DeclineConsentRequest* req,
    v1::DeclineConsentResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(DeclineConsent), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kConsentPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        manager_->DeclineConsent(
            call,
            {name.Get("tenant"), name.Get("patient"), name.Get("consent"),
             req->signing_token(), req->reason()},
            Reply<Consent>(finish, [resp](const Consent& c) {
              return ToProto(c, resp->mutable_consent());
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::WithdrawConsent(
    grpc::CallbackServerContext* ctx, const v1::WithdrawConsentRequest* req,
    v1::WithdrawConsentResponse* resp) {
  return RunUnary(ctx, edge_, CONSENT_METHOD(WithdrawConsent), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName name,
                                     ResourceName::Parse(kConsentPattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_, call, name));
                    manager_->WithdrawConsent(
                        call,
                        {name.Get("tenant"), name.Get("patient"),
                         name.Get("consent"), "", req->reason()},
                        Reply<Consent>(finish, [resp](const Consent& c) {
                          return ToProto(c, resp->mutable_consent());
                        }));
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* ConsentGrpc::CheckConsent(
    grpc::CallbackServerContext* ctx, const v1::CheckConsentRequest* req,
    v1::CheckConsentResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(CheckConsent), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kPatientPattern, req->patient(), "patient"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        std::optional<absl::Time> at;
        if (req->has_at_time()) {
          ASSIGN_OR_RETURN(at, FromTimestamp(req->at_time(), "at_time"));
        }
        manager_->CheckConsent(
            call, name.Get("tenant"), name.Get("patient"),
            req->procedure_code(), at,
            Reply<CheckResult>(finish, [resp](const CheckResult& r) {
              resp->set_valid(r.valid);
              resp->set_reason(static_cast<v1::ConsentCheckReason>(r.reason));
              if (r.consent) {
                resp->set_consent(r.consent->Name());
                resp->set_template_version(r.consent->TemplateVersionName());
              }
              ToTimestamp(r.check_time, resp->mutable_check_time());
              return absl::OkStatus();
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ConsentGrpc::ListSigningKeys(
    grpc::CallbackServerContext* ctx, const v1::ListSigningKeysRequest* req,
    v1::ListSigningKeysResponse* resp) {
  return RunUnary(
      ctx, edge_, CONSENT_METHOD(ListSigningKeys), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        call.resource = "signingKeys";
        if (req->page_size() < 0) {
          return InvalidField("page_size", "INVALID_PAGE_SIZE",
                              "page_size must not be negative");
        }
        for (const crypto::PublicKeyInfo& k : manager_->SigningKeys()) {
          auto* key = resp->add_signing_keys();
          key->set_name(absl::StrCat("signingKeys/", k.key_id));
          key->set_key_id(k.key_id);
          key->set_purpose(v1::KEY_PURPOSE_CONSENT_RECEIPT);
          key->set_algorithm("Ed25519");
          key->set_public_key(k.public_key_raw);
          ASSIGN_OR_RETURN(std::string pem,
                           crypto::Ed25519PublicKeyPem(k.public_key_raw));
          key->set_public_key_pem(pem);
          key->set_state(k.state == crypto::KeyState::kCurrent
                             ? v1::SIGNING_KEY_STATE_ACTIVE
                             : v1::SIGNING_KEY_STATE_RETIRED);
          ToTimestamp(k.create_time, key->mutable_create_time());
          if (k.state == crypto::KeyState::kRetired) {
            ToTimestamp(k.retire_time, key->mutable_retire_time());
          }
        }
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

}  // namespace careseal::consent
