#include "tests/testing/consent_fixtures.h"

#include <utility>

namespace careseal::testing {

v1::ConsentTemplateVersion KetamineConsent() {
  v1::ConsentTemplateVersion v;
  v.set_title("Consent to IV ketamine infusion therapy");
  v.set_body_markdown(
      "# IV ketamine infusions\n\nYou will receive a series of infusions "
      "(commonly six over 2-3 weeks) under monitoring.\n\n## Risks\n- "
      "dissociation and perceptual changes\n- a rise in blood pressure\n- "
      "nausea\n\n## Alternatives\nOther treatments remain available.\n");
  const std::pair<const char*, const char*> acks[] = {
      {"dissociation",
       "I understand ketamine can cause dissociation and "
       "perceptual changes."},
      {"blood-pressure",
       "I understand my blood pressure will rise and will be "
       "monitored."},
      {"nausea", "I understand nausea and vomiting can occur."},
      {"no-driving",
       "I will not drive or make important decisions for 24 "
       "hours after an infusion."},
      {"schedule-iii", "I understand ketamine is a Schedule III medication."},
      {"withdraw", "I know I can withdraw my consent at any time."},
  };
  for (const auto& [id, text] : acks) {
    auto* a = v.add_acknowledgements();
    a->set_id(id);
    a->set_text(text);
    a->set_required(true);
  }
  v.add_procedure_codes("ketamine-iv-induction");
  v.add_procedure_codes("ketamine-iv-maintenance");
  v.set_esign_disclosure(
      "You may ask for a paper copy. You may withdraw consent to electronic "
      "records at any time by telling the clinic.");
  v.set_signature_meaning("Consent to treatment");
  return v;
}

v1::SignConsentRequest SignEverything(const v1::ConsentTemplateVersion& doc,
                                      const v1::RequestConsentResponse& pending,
                                      const std::string& printed_name) {
  v1::SignConsentRequest sign;
  sign.set_name(pending.consent().name());
  sign.set_signing_token(pending.signing_token());
  sign.set_document_sha256(doc.document_sha256());
  for (const auto& a : doc.acknowledgements()) {
    sign.add_acknowledged_ids(a.id());
  }
  sign.set_intent_to_sign(true);
  sign.set_printed_name(printed_name);
  sign.set_signature_meaning(doc.signature_meaning());
  sign.set_signing_method(v1::SIGNING_METHOD_TYPED_NAME);
  return sign;
}

}  // namespace careseal::testing
