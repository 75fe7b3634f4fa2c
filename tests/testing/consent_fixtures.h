// Shared fixtures for tests that publish consent templates.
#ifndef CARESEAL_TESTS_TESTING_CONSENT_FIXTURES_H_
#define CARESEAL_TESTS_TESTING_CONSENT_FIXTURES_H_

#include <string>

#include "careseal/v1/consent.pb.h"

namespace careseal::testing {

// A ketamine consent template version covering "ketamine-iv-induction" and
// "ketamine-iv-maintenance": risks, alternatives, six required
// acknowledgements, the ESIGN disclosure.
v1::ConsentTemplateVersion KetamineConsent();

// Signs `pending` (a RequestConsent answer) for `doc` as it was published:
// every acknowledgement, the intent, a typed name. No request_id.
v1::SignConsentRequest SignEverything(const v1::ConsentTemplateVersion& doc,
                                      const v1::RequestConsentResponse& pending,
                                      const std::string& printed_name);

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_TESTING_CONSENT_FIXTURES_H_
