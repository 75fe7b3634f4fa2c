// Shared fixtures for tests that need a clinic's pre-session instructions.
#ifndef CARESEAL_TESTS_TESTING_INSTRUCTION_FIXTURES_H_
#define CARESEAL_TESTS_TESTING_INSTRUCTION_FIXTURES_H_

#include <string>

#include "absl/status/statusor.h"
#include "careseal/v1/presession.pb.h"
#include "clients/cpp/presession_client.h"

namespace careseal::testing {

// The clinic's pre-infusion instructions as a template version: solids 6 h
// and clear liquids 2 h before, an escort home, two medication holds
// ("benzodiazepines", "alcohol-cannabis"), a photo ID, arrival 30 minutes
// ahead and one required discharge acknowledgement ("no-driving").
v1::InstructionTemplateVersion PreInfusionInstructions();

// Creates the template "pre-infusion" in `tenant` ("tenants/clinic-a") as
// `ehr`, publishes PreInfusionInstructions() as its first version and makes
// it the tenant's default as `admin`. Returns the published version.
absl::StatusOr<v1::InstructionTemplateVersion> PublishDefaultInstructions(
    client::PreSessionClient& ehr, client::PreSessionClient& admin,
    const std::string& tenant);

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_TESTING_INSTRUCTION_FIXTURES_H_
