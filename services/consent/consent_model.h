// The consent domain's own types (plain C++; the gRPC edge converts them to
// and from careseal.v1 messages).
#ifndef CARESEAL_SERVICES_CONSENT_CONSENT_MODEL_H_
#define CARESEAL_SERVICES_CONSENT_CONSENT_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace careseal::consent {

// Values equal the contract's enum numbers.
enum class ConsentState {
  kPending = 1,
  kActive = 2,
  kWithdrawn = 3,
  kExpired = 4,
  kSuperseded = 5,
  kRejected = 6,
};

enum class SigningMethod { kTypedName = 1, kTypedNameWithDrawn = 2 };

enum class CheckReason {
  kNone = 1,
  kExpired = 2,
  kWithdrawn = 3,
  kSuperseded = 4,
  kPendingSignature = 5,
  kNoConsent = 6,
  kRejected = 7,
};

const char* SigningMethodName(SigningMethod m);  // "TYPED_NAME", ...

struct Acknowledgement {
  std::string id;
  std::string text;
  bool required = true;
};

struct ConsentTemplate {
  std::string tenant;
  std::string id;
  std::string display_name;
  int latest_version = 0;  // 0: none published yet
  absl::Time create_time;
  absl::Time update_time;

  std::string Name() const;  // tenants/{t}/consentTemplates/{id}
};

struct TemplateVersionContent {
  std::string title;
  std::string body_markdown;
  std::vector<Acknowledgement> acknowledgements;
  std::vector<std::string> procedure_codes;
  std::string esign_disclosure;
  std::string signature_meaning;
  bool requires_reconsent = false;
};

struct TemplateVersion {
  std::string tenant;
  std::string template_id;
  int version = 0;
  TemplateVersionContent content;
  std::string canonical_document;  // exact bytes whose SHA-256 is below
  std::string document_sha256;     // 32 bytes
  absl::Time publish_time;
  std::string publisher;  // actor

  std::string Name() const;  // .../consentTemplates/{id}/versions/{n}
};

struct ReceiptFacts;  // consent_canonical.h

struct Receipt {
  std::string payload;    // exact signed bytes (canonical JSON)
  std::string signature;  // Ed25519, 64 bytes
  std::string key_id;
  // What `payload` encodes, kept by the call that signed it so that its
  // answer does not parse the bytes it has just written; null for a receipt
  // read from the store (the payload is then decoded).
  std::shared_ptr<const ReceiptFacts> facts;
};

struct Consent {
  std::string tenant;
  std::string patient;  // patient id
  std::string id;
  std::string template_id;
  int version = 0;
  std::string procedure_code;
  ConsentState state = ConsentState::kPending;  // effective at read time
  std::string document_sha256;
  std::string requested_by;
  absl::Time create_time;
  absl::Time update_time;
  absl::Time expire_time;
  std::optional<absl::Time> valid_until;
  std::optional<absl::Time> sign_time;
  std::optional<absl::Time> withdraw_time;
  std::string withdrawn_by;
  std::string end_reason;  // opened from its sealed form
  std::optional<absl::Time> decline_time;
  std::optional<absl::Time> supersede_time;
  std::string superseded_by;  // consent name
  std::optional<Receipt> receipt;
  // The patient link whose token is the signing token
  // (tenants/{t}/patients/{p}/links/{l}); empty when the patient has no
  // identity record to link to.
  std::string signing_link;

  std::string Name() const;  // tenants/{t}/patients/{p}/consents/{id}
  std::string PatientName() const;
  std::string TemplateVersionName() const;
};

}  // namespace careseal::consent

#endif  // CARESEAL_SERVICES_CONSENT_CONSENT_MODEL_H_
