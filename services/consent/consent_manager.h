// ConsentManager: the consent domain. Plain C++: no gRPC, no protobuf.
//
// Writes are asynchronous: each runs as one job of the store's group commit
// (validate, read, change, sign, audit and remember the request id in one
// transaction) and its `done` runs on a writer thread once the transaction is
// durable, so a receipt is never returned before it is on disk. `done` must
// not block. Reads run on the caller's thread over a read snapshot.
//
// REQUIRES for every call: `call` outlives the call (until `done` ran), and
// the caller has authorized `call.principal` for the resource.
#ifndef CARESEAL_SERVICES_CONSENT_CONSENT_MANAGER_H_
#define CARESEAL_SERVICES_CONSENT_CONSENT_MANAGER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "services/common/clock.h"
#include "services/common/crypto/random.h"
#include "services/common/platform/call.h"
#include "services/common/platform/sealer.h"
#include "services/common/platform/signing_keys.h"
#include "services/common/scheduler/scheduler.h"
#include "services/common/sql/database.h"
#include "services/consent/consent_model.h"
#include "services/consent/sql_consent_store.h"

namespace careseal::consent {

template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;
};

// Limits of the contract (consent.proto).
inline constexpr size_t kMaxTitle = 200;
inline constexpr size_t kMaxBodyBytes = 256 << 10;
inline constexpr size_t kMaxDisclosureBytes = 16 << 10;
inline constexpr size_t kMaxAcknowledgements = 50;
inline constexpr size_t kMaxAckText = 1000;
inline constexpr size_t kMaxProcedureCodes = 50;
inline constexpr size_t kMaxPrintedName = 200;
inline constexpr size_t kMaxDrawnSignatureBytes = 256 << 10;
inline constexpr size_t kMaxReason = 1000;
inline constexpr absl::Duration kDefaultSigningWindow = absl::Hours(24 * 7);
inline constexpr absl::Duration kMaxSigningWindow = absl::Hours(24 * 30);

struct CreateTemplateInput {
  std::string tenant;
  std::string template_id;  // optional
  std::string display_name;
};

struct PublishInput {
  std::string tenant;
  std::string template_id;
  TemplateVersionContent content;
};

struct RequestInput {
  std::string tenant;
  std::string patient;
  std::string procedure_code;
  // Empty, a template id (its latest version), or template id + version.
  std::string template_id;
  int version = 0;
  std::optional<absl::Time> expire_time;
  std::optional<absl::Time> valid_until;
};

struct RequestResult {
  Consent consent;
  std::string signing_token;
};

struct SignInput {
  std::string tenant;
  std::string patient;
  std::string consent_id;
  std::string signing_token;
  std::string document_sha256;
  std::vector<std::string> acknowledged_ids;
  bool intent_to_sign = false;
  std::string printed_name;
  std::string signature_meaning;
  int signing_method = 0;  // contract enum value; validated
  std::string drawn_signature_png;
  std::string client_address;
  std::string user_agent;
};

struct SignResult {
  Consent consent;
  Receipt receipt;
};

struct EndInput {
  std::string tenant;
  std::string patient;
  std::string consent_id;
  std::string signing_token;  // decline only
  std::string reason;
};

struct DocumentView {
  Consent consent;
  TemplateVersion version;
};

struct CheckResult {
  bool valid = false;
  CheckReason reason = CheckReason::kNoConsent;
  std::optional<Consent> consent;
  absl::Time check_time;
};

struct ConsentDeps {
  sql::Database* db = nullptr;
  const Clock* clock = nullptr;
  crypto::RandomSource* random = nullptr;
  Sealer* sealer = nullptr;
  const SigningKeyStore* receipt_keys = nullptr;
};

class ConsentManager {
 public:
  explicit ConsentManager(ConsentDeps deps) : deps_(deps) {}

  // Applies the consent schema (and the shared audit, idempotency, sealing
  // and signing-key schemas).
  static absl::Status Migrate(sql::Database& db);

  // The scheduler job kind that records expiries: a signing request still
  // unsigned at its expire_time, or a signed consent reaching valid_until.
  // RequestConsent schedules one job per deadline (keys "<consent>/expire"
  // and "<consent>/lapse"); declining or withdrawing cancels them.
  static constexpr char kExpireKind[] = "consent.expire";
  // The commit part of a kExpireKind job (on the store's writer): if the
  // consent named by the payload is past the deadline and still stored as
  // pending or active, stores EXPIRED and appends EVENT_TYPE_CONSENT_EXPIRED
  // and CareSeal's audit event in the caller's transaction. Otherwise
  // (signed in time, declined, superseded, already recorded) nothing.
  absl::Status ExpireDue(sql::Txn& txn, const scheduler::Job& job,
                         absl::Time now);

  void CreateTemplate(CallContext& call, CreateTemplateInput in,
                      Done<ConsentTemplate> done);
  void PublishVersion(CallContext& call, PublishInput in,
                      Done<TemplateVersion> done);
  void RequestConsent(CallContext& call, RequestInput in,
                      Done<RequestResult> done);
  // Second step of RequestConsent when the patient has an identity record:
  // the token of patient link `link` (which targets the consent) becomes
  // the consent's signing token, so one token opens the portal
  // (RedeemLink) and signs (SignConsent). The request's audit event was
  // written by the first step.
  void AttachSigningLink(CallContext& call, Consent consent, std::string link,
                         std::string link_token, Done<RequestResult> done);
  void SignConsent(CallContext& call, SignInput in, Done<SignResult> done);
  void DeclineConsent(CallContext& call, EndInput in, Done<Consent> done);
  void WithdrawConsent(CallContext& call, EndInput in, Done<Consent> done);

  absl::StatusOr<ConsentTemplate> GetTemplate(CallContext& call,
                                              absl::string_view tenant,
                                              absl::string_view id);
  absl::StatusOr<Page<ConsentTemplate>> ListTemplates(
      CallContext& call, absl::string_view tenant, int page_size,
      absl::string_view page_token);
  // version 0: the latest.
  absl::StatusOr<TemplateVersion> GetVersion(CallContext& call,
                                             absl::string_view tenant,
                                             absl::string_view template_id,
                                             int version);
  absl::StatusOr<Page<TemplateVersion>> ListVersions(
      CallContext& call, absl::string_view tenant,
      absl::string_view template_id, int page_size,
      absl::string_view page_token);
  absl::StatusOr<Consent> GetConsent(CallContext& call,
                                     absl::string_view tenant,
                                     absl::string_view patient,
                                     absl::string_view id);
  absl::StatusOr<Page<Consent>> ListConsents(CallContext& call,
                                             const ConsentFilter& filter,
                                             int page_size,
                                             absl::string_view page_token);
  // By consent (tenant/patient/id) or, when `signing_token` is non-empty,
  // by token (the portal's lookup; the consent found sets call.tenant etc.).
  absl::StatusOr<DocumentView> GetDocument(CallContext& call,
                                           absl::string_view tenant,
                                           absl::string_view patient,
                                           absl::string_view id,
                                           absl::string_view signing_token);
  // The read runs in the audit batch (AuditBatcher::ReadAudited): with the
  // call's audit event, on the store's writer. `done` runs once the event
  // is durable.
  void CheckConsent(CallContext& call, absl::string_view tenant,
                    absl::string_view patient, absl::string_view procedure_code,
                    std::optional<absl::Time> at_time, Done<CheckResult> done);
  std::vector<crypto::PublicKeyInfo> SigningKeys() const;

  // The reason a consent's end (withdrawal, decline) gave, opened from its
  // sealed form; "" if none.
  absl::StatusOr<std::string> EndReason(const Consent& consent);

 private:
  template <typename T>
  void RunWrite(absl::AnyInvocable<absl::StatusOr<T>(sql::Txn&)> fn,
                Done<T> done);
  absl::StatusOr<Consent> EndLocked(sql::Txn& txn, CallContext& call,
                                    const EndInput& in, bool decline);

  ConsentDeps deps_;
  SqlConsentStore store_;
};

// Validation of inputs, exposed for tests. INVALID_ARGUMENT naming the field.
absl::Status ValidateProcedureCode(absl::string_view field,
                                   absl::string_view code);
absl::Status ValidateContent(const TemplateVersionContent& content);
absl::Status ValidateSignInput(const SignInput& in);

}  // namespace careseal::consent

#endif  // CARESEAL_SERVICES_CONSENT_CONSENT_MANAGER_H_
