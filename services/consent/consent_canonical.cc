#include "services/consent/consent_canonical.h"

#include "services/common/crypto/encoding.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/status.h"

namespace careseal::consent {

absl::StatusOr<std::string> RenderDocument(
    absl::string_view template_version_name,
    const TemplateVersionContent& content) {
  Json acks = Json::array();
  for (const Acknowledgement& a : content.acknowledgements) {
    acks.push_back({{"id", a.id}, {"text", a.text}, {"required", a.required}});
  }
  Json doc = {
      {"format", kDocumentFormat},
      {"template_version", std::string(template_version_name)},
      {"title", content.title},
      {"body_markdown", content.body_markdown},
      {"acknowledgements", acks},
      {"procedure_codes", content.procedure_codes},
      {"esign_disclosure", content.esign_disclosure},
      {"signature_meaning", content.signature_meaning},
  };
  return CanonicalJson(doc);
}

absl::StatusOr<std::string> EncodeReceiptPayload(const ReceiptFacts& f) {
  // Written straight into canonical bytes, members in key order (one per
  // signature, on the store's writer); receipt_payload_test checks the bytes
  // against CanonicalJson() of the same object.
  CanonicalStringObject doc;
  doc.AddStrings("acknowledged_ids", f.acknowledged_ids);
  doc.AddInt("audit_leaf_index", f.audit_leaf_index);
  doc.Add("consent", f.consent);
  doc.Add("document_sha256", crypto::HexEncode(f.document_sha256));
  doc.Add("drawn_signature_sha256",
          crypto::HexEncode(f.drawn_signature_sha256));
  doc.Add("format", kReceiptFormat);
  doc.Add("key_id", f.key_id);
  doc.Add("patient", f.patient);
  doc.Add("printed_name", f.printed_name);
  doc.Add("procedure_code", f.procedure_code);
  doc.Add("sign_time", Rfc3339(f.sign_time));
  doc.Add("signature_meaning", f.signature_meaning);
  doc.Add("signing_method", SigningMethodName(f.signing_method));
  doc.Add("template_version", f.template_version);
  doc.Add("tenant", f.tenant);
  return std::move(doc).Finish();
}

absl::StatusOr<ReceiptFacts> DecodeReceiptPayload(absl::string_view payload) {
  Json doc = Json::parse(payload.begin(), payload.end(), nullptr,
                         /*allow_exceptions=*/false);
  auto corrupt = [] {
    return Internal("RECEIPT_CORRUPT", "a stored receipt cannot be decoded");
  };
  if (doc.is_discarded() || !doc.is_object() ||
      doc.value("format", "") != kReceiptFormat) {
    return corrupt();
  }
  ReceiptFacts f;
  f.consent = doc.value("consent", "");
  f.tenant = doc.value("tenant", "");
  f.patient = doc.value("patient", "");
  f.template_version = doc.value("template_version", "");
  f.procedure_code = doc.value("procedure_code", "");
  ASSIGN_OR_RETURN(f.document_sha256,
                   crypto::HexDecode(doc.value("document_sha256", "")));
  ASSIGN_OR_RETURN(f.drawn_signature_sha256,
                   crypto::HexDecode(doc.value("drawn_signature_sha256", "")));
  if (doc.contains("acknowledged_ids") && doc["acknowledged_ids"].is_array()) {
    for (const Json& a : doc["acknowledged_ids"]) {
      if (a.is_string()) f.acknowledged_ids.push_back(a.get<std::string>());
    }
  }
  f.printed_name = doc.value("printed_name", "");
  f.signature_meaning = doc.value("signature_meaning", "");
  f.signing_method = doc.value("signing_method", "") == "TYPED_NAME_WITH_DRAWN"
                         ? SigningMethod::kTypedNameWithDrawn
                         : SigningMethod::kTypedName;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, doc.value("sign_time", ""),
                       &f.sign_time, &err)) {
    return corrupt();
  }
  f.key_id = doc.value("key_id", "");
  f.audit_leaf_index = doc.value("audit_leaf_index", int64_t{0});
  return f;
}

}  // namespace careseal::consent
