// Shared fixtures for tests that publish consent templates.
#ifndef CARESEAL_TESTS_TESTING_CONSENT_FIXTURES_H_
#define CARESEAL_TESTS_TESTING_CONSENT_FIXTURES_H_

#include "careseal/v1/consent.pb.h"

namespace careseal::testing {

// A ketamine consent template version covering "ketamine-iv-induction" and
// "ketamine-iv-maintenance": risks, alternatives, six required
// acknowledgements, the ESIGN disclosure.
v1::ConsentTemplateVersion KetamineConsent();

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_TESTING_CONSENT_FIXTURES_H_
