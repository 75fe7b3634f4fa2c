#include "services/consent/consent_manager.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/events/event_log.h"
#include "services/common/identity.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_batcher.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/pagination.h"
#include "services/common/platform/policy.h"
#include "services/common/platform/resource_name.h"
#include "services/common/platform/text.h"
#include "services/common/status.h"
#include "services/consent/consent_canonical.h"

namespace careseal::consent {
namespace {

bool IsProcedureChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

bool IsAckIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string TokenHash(absl::string_view token) {
  return crypto::Sha256(absl::StrCat("careseal.signing-token.v1:", token));
}

std::string ConsentResourceName(absl::string_view tenant,
                                absl::string_view patient,
                                absl::string_view id) {
  return absl::StrCat("tenants/", tenant, "/patients/", patient, "/consents/",
                      id);
}

// Records what the call touches, for its audit event.
void Touch(CallContext& call, absl::string_view tenant,
           absl::string_view resource, absl::string_view patient_id = "") {
  call.tenant = std::string(tenant);
  call.resource = std::string(resource);
  if (!patient_id.empty()) call.patient = PatientName(tenant, patient_id);
}

// The expiry jobs of a new consent request (see ConsentManager::ExpireDue).
absl::Status ScheduleExpiries(sql::Txn& txn, const Consent& c) {
  scheduler::Job job;
  job.tenant = c.tenant;
  job.kind = ConsentManager::kExpireKind;
  job.payload = c.Name();
  job.key = c.Name() + "/expire";
  job.due = c.expire_time;
  RETURN_IF_ERROR(scheduler::Schedule(txn, job).status());
  if (c.valid_until) {
    job.key = c.Name() + "/lapse";
    job.due = *c.valid_until;
    RETURN_IF_ERROR(scheduler::Schedule(txn, job).status());
  }
  return absl::OkStatus();
}

absl::Status Audit(sql::Txn& txn, CallContext& call) {
  ASSIGN_OR_RETURN(call.audit_leaf_index,
                   AppendAuditEvent(txn, call, absl::OkStatus()));
  call.audited = true;
  return absl::OkStatus();
}

bool IsPng(absl::string_view bytes) {
  static constexpr char kMagic[] = "\x89PNG\r\n\x1a\n";
  return bytes.size() > 33 &&
         bytes.substr(0, 8) == absl::string_view(kMagic, 8) &&
         bytes.substr(12, 4) == "IHDR";
}

}  // namespace

const char* SigningMethodName(SigningMethod m) {
  return m == SigningMethod::kTypedNameWithDrawn ? "TYPED_NAME_WITH_DRAWN"
                                                 : "TYPED_NAME";
}

std::string ConsentTemplate::Name() const {
  return absl::StrCat("tenants/", tenant, "/consentTemplates/", id);
}
std::string TemplateVersion::Name() const {
  return absl::StrCat("tenants/", tenant, "/consentTemplates/", template_id,
                      "/versions/", version);
}
std::string Consent::Name() const {
  return ConsentResourceName(tenant, patient, id);
}
std::string Consent::PatientName() const {
  return careseal::PatientName(tenant, patient);
}
std::string Consent::TemplateVersionName() const {
  return absl::StrCat("tenants/", tenant, "/consentTemplates/", template_id,
                      "/versions/", version);
}

absl::Status ValidateProcedureCode(absl::string_view field,
                                   absl::string_view code) {
  if (code.empty()) {
    return InvalidField(field, "FIELD_REQUIRED",
                        absl::StrCat(field, " is required"));
  }
  if (code.size() > 64 ||
      !std::all_of(code.begin(), code.end(), IsProcedureChar)) {
    return InvalidField(field, "INVALID_PROCEDURE_CODE",
                        absl::StrCat(field,
                                     " must be 1-64 characters of "
                                     "[A-Za-z0-9._:-]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateContent(const TemplateVersionContent& c) {
  RETURN_IF_ERROR(CheckSingleLine("version.title", c.title, 1, kMaxTitle));
  RETURN_IF_ERROR(CheckMultiLine("version.body_markdown", c.body_markdown, 1,
                                 kMaxBodyBytes));
  RETURN_IF_ERROR(CheckMultiLine("version.esign_disclosure", c.esign_disclosure,
                                 1, kMaxDisclosureBytes));
  RETURN_IF_ERROR(CheckSingleLine("version.signature_meaning",
                                  c.signature_meaning, 1, kMaxTitle));
  if (c.acknowledgements.empty() ||
      c.acknowledgements.size() > kMaxAcknowledgements) {
    return InvalidField("version.acknowledgements", "TOO_MANY_ITEMS",
                        "a consent version needs 1 to 50 acknowledgements");
  }
  absl::flat_hash_set<std::string> ack_ids;
  for (size_t i = 0; i < c.acknowledgements.size(); ++i) {
    const Acknowledgement& a = c.acknowledgements[i];
    const std::string field = absl::StrCat("version.acknowledgements[", i, "]");
    if (a.id.empty() || a.id.size() > 64 ||
        !std::all_of(a.id.begin(), a.id.end(), IsAckIdChar)) {
      return InvalidField(absl::StrCat(field, ".id"), "INVALID_NAME",
                          "acknowledgement ids are 1-64 characters of "
                          "[a-z0-9_-]");
    }
    if (!ack_ids.insert(a.id).second) {
      return InvalidField(absl::StrCat(field, ".id"),
                          "DUPLICATE_ACKNOWLEDGEMENT_ID",
                          "acknowledgement ids must be unique in a version");
    }
    RETURN_IF_ERROR(
        CheckSingleLine(absl::StrCat(field, ".text"), a.text, 1, kMaxAckText));
  }
  if (c.procedure_codes.empty() ||
      c.procedure_codes.size() > kMaxProcedureCodes) {
    return InvalidField("version.procedure_codes", "TOO_MANY_ITEMS",
                        "a consent version covers 1 to 50 procedure codes");
  }
  absl::flat_hash_set<std::string> codes;
  for (size_t i = 0; i < c.procedure_codes.size(); ++i) {
    const std::string field = absl::StrCat("version.procedure_codes[", i, "]");
    RETURN_IF_ERROR(ValidateProcedureCode(field, c.procedure_codes[i]));
    if (!codes.insert(c.procedure_codes[i]).second) {
      return InvalidField(field, "DUPLICATE_PROCEDURE_CODE",
                          "procedure codes must be unique in a version");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSignInput(const SignInput& in) {
  if (in.signing_token.empty()) {
    return InvalidField("signing_token", "FIELD_REQUIRED",
                        "signing_token (from the patient's link) is required");
  }
  if (in.document_sha256.size() != crypto::kSha256Size) {
    return InvalidField("document_sha256", "FIELD_REQUIRED",
                        "document_sha256 must be the 32-byte SHA-256 of the "
                        "document that was displayed");
  }
  if (!in.intent_to_sign) {
    return InvalidField("intent_to_sign", "INTENT_REQUIRED",
                        "the signer must confirm the intent to sign");
  }
  absl::Status name =
      CheckSingleLine("printed_name", in.printed_name, 2, kMaxPrintedName);
  if (!name.ok()) {
    return InvalidField("printed_name", "INVALID_PRINTED_NAME",
                        absl::StrCat(name.message(),
                                     " (2-200 characters, one line, no "
                                     "control or bidi characters)"));
  }
  RETURN_IF_ERROR(
      CheckSingleLine("signature_meaning", in.signature_meaning, 1, kMaxTitle));
  if (in.signing_method != static_cast<int>(SigningMethod::kTypedName) &&
      in.signing_method !=
          static_cast<int>(SigningMethod::kTypedNameWithDrawn)) {
    return InvalidField("signing_method", "INVALID_ENUM_VALUE",
                        "signing_method must be SIGNING_METHOD_TYPED_NAME or "
                        "SIGNING_METHOD_TYPED_NAME_WITH_DRAWN");
  }
  const bool drawn =
      in.signing_method == static_cast<int>(SigningMethod::kTypedNameWithDrawn);
  if (drawn != !in.drawn_signature_png.empty()) {
    return InvalidField("drawn_signature_png", "INVALID_SIGNATURE_IMAGE",
                        drawn ? "a drawn signature PNG is required for "
                                "SIGNING_METHOD_TYPED_NAME_WITH_DRAWN"
                              : "a drawn signature is only accepted with "
                                "SIGNING_METHOD_TYPED_NAME_WITH_DRAWN");
  }
  if (drawn && (in.drawn_signature_png.size() > kMaxDrawnSignatureBytes ||
                !IsPng(in.drawn_signature_png))) {
    return InvalidField("drawn_signature_png", "INVALID_SIGNATURE_IMAGE",
                        "the drawn signature must be a PNG of at most 256 KiB");
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& id : in.acknowledged_ids) {
    if (!seen.insert(id).second) {
      return InvalidField("acknowledged_ids", "UNKNOWN_ACKNOWLEDGEMENT",
                          "an acknowledgement id is repeated");
    }
  }
  RETURN_IF_ERROR(CheckSingleLine("client_address", in.client_address, 0, 64));
  RETURN_IF_ERROR(CheckSingleLine("user_agent", in.user_agent, 0, 512));
  return absl::OkStatus();
}

absl::Status ConsentManager::Migrate(sql::Database& db) {
  RETURN_IF_ERROR(db.Migrate("audit", AuditMigrations()));
  RETURN_IF_ERROR(db.Migrate("idempotency", IdempotencyMigrations()));
  RETURN_IF_ERROR(db.Migrate("sealer", SealerMigrations()));
  RETURN_IF_ERROR(db.Migrate("signing_keys", SigningKeyMigrations()));
  RETURN_IF_ERROR(db.Migrate("events", events::EventMigrations()));
  RETURN_IF_ERROR(scheduler::Migrate(db));
  return db.Migrate("consent", ConsentMigrations());
}

template <typename T>
void ConsentManager::RunWrite(
    absl::AnyInvocable<absl::StatusOr<T>(sql::Txn&)> fn, Done<T> done) {
  sql::WriteValue<T>(*deps_.db, std::move(fn), std::move(done));
}

void ConsentManager::CreateTemplate(CallContext& call, CreateTemplateInput in,
                                    Done<ConsentTemplate> done) {
  absl::Status valid = CheckSingleLine("consent_template.display_name",
                                       in.display_name, 1, kMaxTitle);
  if (valid.ok() && !in.template_id.empty() &&
      (!IsValidId(in.template_id) || in.template_id.size() < 3 ||
       !absl::ascii_isalpha(static_cast<unsigned char>(in.template_id[0])))) {
    valid = InvalidField("consent_template_id", "INVALID_NAME",
                         "consent_template_id must be [a-z][a-z0-9-]{2,62}");
  }
  if (!valid.ok()) return done(valid);
  if (in.template_id.empty())
    in.template_id = crypto::NewOpaqueId(*deps_.random);
  RunWrite<ConsentTemplate>(
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<ConsentTemplate> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          Touch(call, in.tenant, *prior);
          ResourceName name = *ResourceName::Parse(
              "tenants/{tenant}/consentTemplates/{template}", *prior, "name");
          ASSIGN_OR_RETURN(
              ConsentTemplate t,
              store_.GetTemplate(txn, in.tenant, name.Get("template")));
          RETURN_IF_ERROR(Audit(txn, call));
          return t;
        }
        ConsentTemplate t;
        t.tenant = in.tenant;
        t.id = in.template_id;
        t.display_name = in.display_name;
        t.create_time = t.update_time = call.now;
        Touch(call, in.tenant, t.Name());
        RETURN_IF_ERROR(store_.InsertTemplate(txn, t));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, t.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return t;
      },
      std::move(done));
}

void ConsentManager::PublishVersion(CallContext& call, PublishInput in,
                                    Done<TemplateVersion> done) {
  absl::Status valid = ValidateContent(in.content);
  if (!valid.ok()) return done(valid);
  RunWrite<TemplateVersion>(
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<TemplateVersion> {
        Touch(call, in.tenant,
              absl::StrCat("tenants/", in.tenant, "/consentTemplates/",
                           in.template_id));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          ResourceName name = *ResourceName::Parse(
              "tenants/{tenant}/consentTemplates/{template}/versions/{version}",
              *prior, "name");
          int number = 0;
          (void)absl::SimpleAtoi(name.Get("version"), &number);
          ASSIGN_OR_RETURN(
              TemplateVersion v,
              store_.GetVersion(txn, in.tenant, in.template_id, number));
          RETURN_IF_ERROR(Audit(txn, call));
          return v;
        }
        ASSIGN_OR_RETURN(ConsentTemplate t,
                         store_.GetTemplate(txn, in.tenant, in.template_id));
        TemplateVersion v;
        v.tenant = in.tenant;
        v.template_id = in.template_id;
        v.version = t.latest_version + 1;
        v.content = in.content;
        v.publish_time = call.now;
        v.publisher = call.principal.actor;
        ASSIGN_OR_RETURN(v.canonical_document,
                         RenderDocument(v.Name(), v.content));
        v.document_sha256 = crypto::Sha256(v.canonical_document);
        call.resource = v.Name();
        RETURN_IF_ERROR(store_.InsertVersion(txn, v));
        if (v.content.requires_reconsent) {
          RETURN_IF_ERROR(
              store_.SupersedeOlderVersions(txn, v, call.now).status());
        }
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, v.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return v;
      },
      std::move(done));
}

void ConsentManager::RequestConsent(CallContext& call, RequestInput in,
                                    Done<RequestResult> done) {
  absl::Status valid =
      ValidateProcedureCode("procedure_code", in.procedure_code);
  const absl::Time expire =
      in.expire_time.value_or(call.now + kDefaultSigningWindow);
  if (valid.ok() &&
      (expire <= call.now || expire > call.now + kMaxSigningWindow)) {
    valid = InvalidField("expire_time", "EXPIRE_TIME_OUT_OF_RANGE",
                         "expire_time must be in the future and at most 30 "
                         "days ahead");
  }
  if (valid.ok() && in.valid_until && *in.valid_until <= expire) {
    valid = InvalidField("valid_until", "INVALID_TIME",
                         "valid_until must be after expire_time");
  }
  if (!valid.ok()) return done(valid);
  RunWrite<RequestResult>(
      [this, &call, in = std::move(in),
       expire](sql::Txn& txn) -> absl::StatusOr<RequestResult> {
        Touch(call, in.tenant,
              absl::StrCat(PatientName(in.tenant, in.patient), "/consents"),
              in.patient);
        const std::string token =
            crypto::Base64UrlEncode(deps_.random->Bytes(16));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          ResourceName name = *ResourceName::Parse(
              "tenants/{tenant}/patients/{patient}/consents/{consent}", *prior,
              "name");
          ASSIGN_OR_RETURN(Consent c,
                           store_.GetConsent(txn, in.tenant, in.patient,
                                             name.Get("consent"), call.now));
          // Tokens are stored hashed: a retry gets a fresh one that replaces
          // the first (if it is still unused).
          RETURN_IF_ERROR(store_.ReplaceToken(txn, c, TokenHash(token)));
          call.resource = c.Name();
          RETURN_IF_ERROR(Audit(txn, call));
          return RequestResult{std::move(c), token};
        }
        std::string template_id = in.template_id;
        if (template_id.empty()) {
          ASSIGN_OR_RETURN(
              auto covering,
              store_.TemplatesCovering(txn, in.tenant, in.procedure_code));
          if (covering.empty()) {
            return FailedPrecondition(
                "NO_TEMPLATE_FOR_PROCEDURE",
                "no published consent template covers this procedure code; "
                "publish one or name the template version");
          }
          if (covering.size() > 1) {
            return InvalidField("template_version", "AMBIGUOUS_TEMPLATE",
                                "several consent templates cover this "
                                "procedure; name the template version");
          }
          template_id = covering[0];
        }
        ASSIGN_OR_RETURN(
            TemplateVersion v,
            store_.GetVersion(txn, in.tenant, template_id, in.version));
        const auto& codes = v.content.procedure_codes;
        if (std::find(codes.begin(), codes.end(), in.procedure_code) ==
            codes.end()) {
          return InvalidField("procedure_code", "PROCEDURE_NOT_COVERED",
                              "the template version does not cover this "
                              "procedure code");
        }
        Consent c;
        c.tenant = in.tenant;
        c.patient = in.patient;
        c.id = crypto::NewOpaqueId(*deps_.random);
        c.template_id = v.template_id;
        c.version = v.version;
        c.procedure_code = in.procedure_code;
        c.state = ConsentState::kPending;
        c.document_sha256 = v.document_sha256;
        c.requested_by = call.principal.actor;
        c.create_time = c.update_time = call.now;
        c.expire_time = expire;
        c.valid_until = in.valid_until;
        call.resource = c.Name();
        RETURN_IF_ERROR(
            store_.SupersedeSiblings(txn, c, ConsentState::kPending, call.now));
        RETURN_IF_ERROR(store_.InsertConsent(txn, c, TokenHash(token)));
        RETURN_IF_ERROR(ScheduleExpiries(txn, c));
        RETURN_IF_ERROR(
            events::AppendEvent(
                txn, events::EventFor(
                         call, events::EventType::kConsentRequested, c.Name()))
                .status());
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, c.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return RequestResult{std::move(c), token};
      },
      std::move(done));
}

void ConsentManager::AttachSigningLink(CallContext& call, Consent consent,
                                       std::string link, std::string link_token,
                                       Done<RequestResult> done) {
  RunWrite<RequestResult>(
      [this, &call, consent = std::move(consent), link = std::move(link),
       link_token = std::move(link_token)](
          sql::Txn& txn) -> absl::StatusOr<RequestResult> {
        RETURN_IF_ERROR(store_.AttachSigningLink(txn, consent,
                                                 TokenHash(link_token), link));
        ASSIGN_OR_RETURN(Consent c,
                         store_.GetConsent(txn, consent.tenant, consent.patient,
                                           consent.id, call.now));
        return RequestResult{std::move(c), link_token};
      },
      std::move(done));
}

void ConsentManager::SignConsent(CallContext& call, SignInput in,
                                 Done<SignResult> done) {
  Touch(call, in.tenant,
        ConsentResourceName(in.tenant, in.patient, in.consent_id), in.patient);
  absl::Status valid = ValidateSignInput(in);
  if (!valid.ok()) return done(valid);
  RunWrite<SignResult>(
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<SignResult> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ConsentSecrets secrets;
        ASSIGN_OR_RETURN(Consent c,
                         store_.GetConsent(txn, in.tenant, in.patient,
                                           in.consent_id, call.now, &secrets));
        if (prior) {
          if (!c.receipt) {
            return Internal("RECEIPT_MISSING",
                            "a signed consent lost its receipt");
          }
          RETURN_IF_ERROR(Audit(txn, call));
          Receipt receipt = *c.receipt;
          return SignResult{std::move(c), std::move(receipt)};
        }
        if (!crypto::ConstantTimeEquals(TokenHash(in.signing_token),
                                        secrets.token_hash)) {
          return PermissionDenied("SIGNING_TOKEN_INVALID",
                                  "the signing token does not belong to this "
                                  "consent");
        }
        if (secrets.token_used) {
          return FailedPrecondition("SIGNING_TOKEN_USED",
                                    "this signing link was already used");
        }
        switch (c.state) {
          case ConsentState::kPending:
            break;
          case ConsentState::kExpired:
            return FailedPrecondition(
                "REQUEST_EXPIRED",
                "the consent request expired before it "
                "was signed; ask the clinic for a new one");
          case ConsentState::kWithdrawn:
            return FailedPrecondition("CONSENT_WITHDRAWN",
                                      "the consent request was withdrawn");
          case ConsentState::kSuperseded:
            return FailedPrecondition("CONSENT_SUPERSEDED",
                                      "a newer consent request replaced this "
                                      "one; use the newest link");
          default:
            return FailedPrecondition("CONSENT_NOT_PENDING",
                                      "the consent is not awaiting signature");
        }
        if (!crypto::ConstantTimeEquals(in.document_sha256,
                                        c.document_sha256)) {
          return InvalidField("document_sha256", "DIGEST_MISMATCH",
                              "the document displayed is not the document of "
                              "this consent; reload it and sign again");
        }
        ASSIGN_OR_RETURN(
            TemplateVersion v,
            store_.GetVersion(txn, c.tenant, c.template_id, c.version));
        absl::flat_hash_set<std::string> given(in.acknowledged_ids.begin(),
                                               in.acknowledged_ids.end());
        std::vector<std::string> ordered;
        for (const Acknowledgement& a : v.content.acknowledgements) {
          if (given.erase(a.id) > 0) {
            ordered.push_back(a.id);
          } else if (a.required) {
            return InvalidField(
                "acknowledged_ids", "ACKNOWLEDGEMENT_MISSING",
                absl::StrCat("the acknowledgement '", a.id, "' is required"));
          }
        }
        if (!given.empty()) {
          return InvalidField("acknowledged_ids", "UNKNOWN_ACKNOWLEDGEMENT",
                              "an acknowledged id is not in this document");
        }
        if (in.signature_meaning != v.content.signature_meaning) {
          return InvalidField("signature_meaning", "SIGNATURE_MEANING_MISMATCH",
                              "signature_meaning must be the meaning the "
                              "document displays");
        }
        // The signing event's leaf index goes into the receipt.
        RETURN_IF_ERROR(Audit(txn, call));
        std::shared_ptr<const crypto::Signer> signer =
            deps_.receipt_keys->ring().Current();
        ReceiptFacts facts;
        facts.consent = c.Name();
        facts.tenant = absl::StrCat("tenants/", c.tenant);
        facts.patient = c.PatientName();
        facts.template_version = c.TemplateVersionName();
        facts.procedure_code = c.procedure_code;
        facts.document_sha256 = c.document_sha256;
        facts.acknowledged_ids = ordered;
        facts.printed_name = in.printed_name;
        facts.signature_meaning = in.signature_meaning;
        facts.signing_method = static_cast<SigningMethod>(in.signing_method);
        // The payload's time has microseconds; so do the facts the answer
        // is built from (Receipt::facts).
        facts.sign_time = FromMicros(ToMicros(call.now));
        if (!in.drawn_signature_png.empty()) {
          facts.drawn_signature_sha256 = crypto::Sha256(in.drawn_signature_png);
        }
        facts.key_id = signer->key_id();
        facts.audit_leaf_index = call.audit_leaf_index;
        Receipt receipt;
        ASSIGN_OR_RETURN(receipt.payload, EncodeReceiptPayload(facts));
        ASSIGN_OR_RETURN(receipt.signature, signer->Sign(receipt.payload));
        receipt.key_id = signer->key_id();
        receipt.facts = std::make_shared<const ReceiptFacts>(std::move(facts));
        Json evidence = {{"client_address", in.client_address},
                         {"user_agent", in.user_agent},
                         {"drawn_signature_png_b64",
                          crypto::Base64Encode(in.drawn_signature_png)}};
        ASSIGN_OR_RETURN(std::string evidence_text, CanonicalJson(evidence));
        ASSIGN_OR_RETURN(
            std::string sealed,
            deps_.sealer->Seal(txn, c.tenant, evidence_text,
                               absl::StrCat("consent-evidence:", c.Name())));
        RETURN_IF_ERROR(store_.MarkSigned(txn, c, receipt, sealed, call.now));
        RETURN_IF_ERROR(
            store_.SupersedeSiblings(txn, c, ConsentState::kActive, call.now));
        RETURN_IF_ERROR(
            events::AppendEvent(
                txn, events::EventFor(call, events::EventType::kConsentSigned,
                                      c.Name()))
                .status());
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, c.Name()));
        c.state = ConsentState::kActive;
        c.sign_time = call.now;
        c.update_time = call.now;
        c.receipt = receipt;
        return SignResult{std::move(c), std::move(receipt)};
      },
      std::move(done));
}

absl::StatusOr<Consent> ConsentManager::EndLocked(sql::Txn& txn,
                                                  CallContext& call,
                                                  const EndInput& in,
                                                  bool decline) {
  ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
  ConsentSecrets secrets;
  ASSIGN_OR_RETURN(Consent c,
                   store_.GetConsent(txn, in.tenant, in.patient, in.consent_id,
                                     call.now, &secrets));
  if (prior) {
    RETURN_IF_ERROR(Audit(txn, call));
    return c;
  }
  ConsentState next;
  if (decline) {
    if (!crypto::ConstantTimeEquals(TokenHash(in.signing_token),
                                    secrets.token_hash)) {
      return PermissionDenied("SIGNING_TOKEN_INVALID",
                              "the signing token does not belong to this "
                              "consent");
    }
    if (secrets.token_used) {
      return FailedPrecondition("SIGNING_TOKEN_USED",
                                "this signing link was already used");
    }
    if (c.state == ConsentState::kExpired) {
      return FailedPrecondition("REQUEST_EXPIRED",
                                "the consent request has expired");
    }
    if (c.state != ConsentState::kPending) {
      return FailedPrecondition("CONSENT_NOT_PENDING",
                                "the consent is not awaiting signature");
    }
    next = ConsentState::kRejected;
  } else {
    if (c.state != ConsentState::kActive && c.state != ConsentState::kPending) {
      return FailedPrecondition(
          "CONSENT_NOT_WITHDRAWABLE",
          "only an active consent or a pending request can be withdrawn");
    }
    next = ConsentState::kWithdrawn;
  }
  std::string sealed;
  if (!in.reason.empty()) {
    ASSIGN_OR_RETURN(
        sealed,
        deps_.sealer->Seal(txn, c.tenant, in.reason,
                           absl::StrCat("consent-end-reason:", c.Name())));
  }
  RETURN_IF_ERROR(
      store_.MarkEnded(txn, c, next, call.principal.actor, sealed, call.now));
  // Nothing left to expire.
  RETURN_IF_ERROR(scheduler::CancelPrefix(txn, c.Name() + "/").status());
  RETURN_IF_ERROR(
      events::AppendEvent(
          txn, events::EventFor(call,
                                decline ? events::EventType::kConsentDeclined
                                        : events::EventType::kConsentWithdrawn,
                                c.Name()))
          .status());
  RETURN_IF_ERROR(RememberIdempotentResult(txn, call, c.Name()));
  RETURN_IF_ERROR(Audit(txn, call));
  c.state = next;
  c.update_time = call.now;
  c.end_reason = in.reason;
  if (decline) {
    c.decline_time = call.now;
  } else {
    c.withdraw_time = call.now;
    c.withdrawn_by = call.principal.actor;
  }
  return c;
}

absl::Status ConsentManager::ExpireDue(sql::Txn& txn, const scheduler::Job& job,
                                       absl::Time now) {
  auto name = ResourceName::Parse(
      "tenants/{tenant}/patients/{patient}/consents/{consent}", job.payload,
      "payload");
  if (!name.ok()) return name.status();
  ASSIGN_OR_RETURN(Consent c, store_.GetConsent(txn, name->Get("tenant"),
                                                name->Get("patient"),
                                                name->Get("consent"), now));
  if (c.state != ConsentState::kExpired) return absl::OkStatus();
  ASSIGN_OR_RETURN(const bool changed, store_.MarkExpired(txn, c, job.due));
  if (!changed) return absl::OkStatus();  // recorded before
  CallContext sys;
  sys.principal = SystemPrincipal();
  sys.method = "careseal.system/ExpireConsent";
  sys.correlation_id = crypto::HexEncode(deps_.random->Bytes(12));
  sys.now = now;
  sys.tenant = c.tenant;
  sys.resource = c.Name();
  sys.patient = c.PatientName();
  RETURN_IF_ERROR(
      events::AppendEvent(
          txn,
          events::EventFor(sys, events::EventType::kConsentExpired, c.Name()))
          .status());
  return AppendAuditEvent(txn, sys, absl::OkStatus()).status();
}

void ConsentManager::DeclineConsent(CallContext& call, EndInput in,
                                    Done<Consent> done) {
  Touch(call, in.tenant,
        ConsentResourceName(in.tenant, in.patient, in.consent_id), in.patient);
  absl::Status valid = CheckSingleLine("reason", in.reason, 0, kMaxReason);
  if (valid.ok() && in.signing_token.empty()) {
    valid = InvalidField("signing_token", "FIELD_REQUIRED",
                         "signing_token (from the patient's link) is required");
  }
  if (!valid.ok()) return done(valid);
  RunWrite<Consent>(
      [this, &call, in = std::move(in)](sql::Txn& txn) {
        return EndLocked(txn, call, in, /*decline=*/true);
      },
      std::move(done));
}

void ConsentManager::WithdrawConsent(CallContext& call, EndInput in,
                                     Done<Consent> done) {
  Touch(call, in.tenant,
        ConsentResourceName(in.tenant, in.patient, in.consent_id), in.patient);
  const bool needs_reason = call.principal.role == Role::kClinician ||
                            call.principal.role == Role::kBreakGlass;
  absl::Status valid =
      CheckSingleLine("reason", in.reason, needs_reason ? 1 : 0, kMaxReason);
  if (!valid.ok()) return done(valid);
  RunWrite<Consent>(
      [this, &call, in = std::move(in)](sql::Txn& txn) {
        return EndLocked(txn, call, in, /*decline=*/false);
      },
      std::move(done));
}

absl::StatusOr<ConsentTemplate> ConsentManager::GetTemplate(
    CallContext& call, absl::string_view tenant, absl::string_view id) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/consentTemplates/", id));
  absl::StatusOr<ConsentTemplate> out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) {
    out = store_.GetTemplate(txn, tenant, id);
    return out.status();
  }));
  return out;
}

absl::StatusOr<Page<ConsentTemplate>> ConsentManager::ListTemplates(
    CallContext& call, absl::string_view tenant, int page_size,
    absl::string_view page_token) {
  Touch(call, tenant, absl::StrCat("tenants/", tenant, "/consentTemplates"));
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter = absl::StrCat("templates|", tenant);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter, &first));
  Page<ConsentTemplate> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        page.items, store_.ListTemplates(txn, tenant, after, first, limit + 1));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token = EncodePageToken({0, page.items.back().id}, filter);
  }
  return page;
}

absl::StatusOr<TemplateVersion> ConsentManager::GetVersion(
    CallContext& call, absl::string_view tenant, absl::string_view template_id,
    int version) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/consentTemplates/", template_id,
                     "/versions/",
                     version == 0 ? "latest" : absl::StrCat(version)));
  absl::StatusOr<TemplateVersion> out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) {
    out = store_.GetVersion(txn, tenant, template_id, version);
    return out.status();
  }));
  return out;
}

absl::StatusOr<Page<TemplateVersion>> ConsentManager::ListVersions(
    CallContext& call, absl::string_view tenant, absl::string_view template_id,
    int page_size, absl::string_view page_token) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/consentTemplates/", template_id));
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter =
      absl::StrCat("versions|", tenant, "|", template_id);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter, &first));
  Page<TemplateVersion> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(store_.GetTemplate(txn, tenant, template_id).status());
    ASSIGN_OR_RETURN(
        page.items,
        store_.ListVersions(txn, tenant, template_id,
                            first ? 1 << 30 : static_cast<int>(after.key),
                            limit + 1));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token =
        EncodePageToken({page.items.back().version, ""}, filter);
  }
  return page;
}

absl::StatusOr<Consent> ConsentManager::GetConsent(CallContext& call,
                                                   absl::string_view tenant,
                                                   absl::string_view patient,
                                                   absl::string_view id) {
  Touch(call, tenant, ConsentResourceName(tenant, patient, id), patient);
  absl::StatusOr<Consent> out;
  ConsentSecrets secrets;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    out = store_.GetConsent(txn, tenant, patient, id, call.now, &secrets);
    if (out.ok() && !secrets.end_reason_sealed.empty()) {
      ASSIGN_OR_RETURN(
          out->end_reason,
          deps_.sealer->Open(txn, tenant, secrets.end_reason_sealed,
                             absl::StrCat("consent-end-reason:", out->Name())));
    }
    return out.status();
  }));
  return out;
}

absl::StatusOr<Page<Consent>> ConsentManager::ListConsents(
    CallContext& call, const ConsentFilter& filter, int page_size,
    absl::string_view page_token) {
  Touch(call, filter.tenant,
        absl::StrCat(PatientName(filter.tenant, filter.patient), "/consents"),
        filter.patient == "-" ? "" : filter.patient);
  if (!filter.procedure_code.empty()) {
    RETURN_IF_ERROR(
        ValidateProcedureCode("procedure_code", filter.procedure_code));
  }
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter_key =
      absl::StrCat("consents|", filter.tenant, "|", filter.patient, "|",
                   filter.state ? static_cast<int>(*filter.state) : 0, "|",
                   filter.procedure_code);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter_key, &first));
  Page<Consent> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(page.items, store_.ListConsents(txn, filter, after, first,
                                                     limit + 1, call.now));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    const Consent& last = page.items.back();
    page.next_page_token =
        EncodePageToken({ToMicros(last.create_time), last.id}, filter_key);
  }
  return page;
}

absl::StatusOr<DocumentView> ConsentManager::GetDocument(
    CallContext& call, absl::string_view tenant, absl::string_view patient,
    absl::string_view id, absl::string_view signing_token) {
  DocumentView view;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    if (!signing_token.empty()) {
      ConsentSecrets secrets;
      ASSIGN_OR_RETURN(view.consent,
                       store_.GetConsentByToken(txn, TokenHash(signing_token),
                                                call.now, &secrets));
      Touch(call, view.consent.tenant, view.consent.Name(),
            view.consent.patient);
      if (secrets.token_used) {
        return FailedPrecondition("SIGNING_TOKEN_USED",
                                  "this signing link was already used");
      }
    } else {
      Touch(call, tenant, ConsentResourceName(tenant, patient, id), patient);
      ASSIGN_OR_RETURN(view.consent,
                       store_.GetConsent(txn, tenant, patient, id, call.now));
    }
    ASSIGN_OR_RETURN(view.version, store_.GetVersion(txn, view.consent.tenant,
                                                     view.consent.template_id,
                                                     view.consent.version));
    return absl::OkStatus();
  }));
  return view;
}

namespace {

// Whether `consents` (a patient's consents for one procedure, newest
// first) make a session at `t` valid, and if not, why.
CheckResult EvaluateCheck(const std::vector<Consent>& consents, absl::Time t) {
  CheckResult result;
  result.check_time = t;
  for (const Consent& c : consents) {
    const bool active_at_t = c.sign_time && *c.sign_time <= t &&
                             (!c.withdraw_time || t < *c.withdraw_time) &&
                             (!c.supersede_time || t < *c.supersede_time) &&
                             (!c.valid_until || t < *c.valid_until);
    if (active_at_t) {
      result.valid = true;
      result.reason = CheckReason::kNone;
      result.consent = c;
      return result;
    }
  }
  if (consents.empty()) return result;  // NO_CONSENT
  const Consent& latest = consents.front();
  result.consent = latest;
  switch (latest.state) {
    case ConsentState::kPending:
      result.reason = t >= latest.expire_time ? CheckReason::kExpired
                                              : CheckReason::kPendingSignature;
      break;
    case ConsentState::kActive:
      result.reason = latest.valid_until && t >= *latest.valid_until
                          ? CheckReason::kExpired
                          : CheckReason::kPendingSignature;
      break;
    case ConsentState::kExpired:
      result.reason = CheckReason::kExpired;
      break;
    case ConsentState::kWithdrawn:
      result.reason = CheckReason::kWithdrawn;
      break;
    case ConsentState::kSuperseded:
      result.reason = CheckReason::kSuperseded;
      break;
    case ConsentState::kRejected:
      result.reason = CheckReason::kRejected;
      break;
  }
  return result;
}

}  // namespace

void ConsentManager::CheckConsent(CallContext& call, absl::string_view tenant,
                                  absl::string_view patient,
                                  absl::string_view procedure_code,
                                  std::optional<absl::Time> at_time,
                                  Done<CheckResult> done) {
  Touch(call, tenant, PatientName(tenant, patient), patient);
  if (absl::Status s = ValidateProcedureCode("procedure_code", procedure_code);
      !s.ok()) {
    return done(s);
  }
  auto consents = std::make_shared<std::vector<Consent>>();
  AuditBatcher::For(deps_.db).ReadAudited(
      call,
      [this, consents, tenant = std::string(tenant),
       patient = std::string(patient), code = std::string(procedure_code),
       now = call.now](sql::Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(
            *consents, store_.CheckCandidates(txn, tenant, patient, code, now));
        return absl::OkStatus();
      },
      [consents, t = at_time.value_or(call.now),
       done = std::move(done)](absl::Status s) mutable {
        if (!s.ok()) return done(s);
        done(EvaluateCheck(*consents, t));
      });
}

std::vector<crypto::PublicKeyInfo> ConsentManager::SigningKeys() const {
  return deps_.receipt_keys->ring().ListPublicKeys();
}

}  // namespace careseal::consent
