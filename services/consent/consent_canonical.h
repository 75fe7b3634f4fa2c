// The canonical forms of consent: the document a patient reads (its SHA-256
// is what a signature binds) and the receipt payload CareSeal signs. Both are
// canonical JSON (services/common/platform/canonical_json.h), versioned by
// their "format" member, and stored as the exact bytes produced here.
// docs/RECEIPTS.md describes both for verifiers outside CareSeal.
#ifndef CARESEAL_SERVICES_CONSENT_CONSENT_CANONICAL_H_
#define CARESEAL_SERVICES_CONSENT_CONSENT_CANONICAL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/consent/consent_model.h"

namespace careseal::consent {

inline constexpr char kDocumentFormat[] = "careseal.consent-document.v1";
inline constexpr char kReceiptFormat[] = "careseal.consent-receipt.v1";

// Everything the patient is shown: template version name, title, body,
// acknowledgements (id, text, required), procedure codes, ESIGN disclosure
// and the meaning of the signature.
absl::StatusOr<std::string> RenderDocument(
    absl::string_view template_version_name,
    const TemplateVersionContent& content);

struct ReceiptFacts {
  std::string consent;  // names
  std::string tenant;
  std::string patient;
  std::string template_version;
  std::string procedure_code;
  std::string document_sha256;  // raw 32 bytes
  std::vector<std::string> acknowledged_ids;
  std::string printed_name;
  std::string signature_meaning;
  SigningMethod signing_method = SigningMethod::kTypedName;
  absl::Time sign_time;
  std::string drawn_signature_sha256;  // raw 32 bytes or empty
  std::string key_id;
  int64_t audit_leaf_index = 0;
};

absl::StatusOr<std::string> EncodeReceiptPayload(const ReceiptFacts& facts);
absl::StatusOr<ReceiptFacts> DecodeReceiptPayload(absl::string_view payload);

}  // namespace careseal::consent

#endif  // CARESEAL_SERVICES_CONSENT_CONSENT_CANONICAL_H_
