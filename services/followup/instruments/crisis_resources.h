// Crisis resources shown to a patient at once, on the very screen where a
// risky answer was given (never only in a later message). Mirrors
// careseal.v1.CrisisResources (common.proto); tenants may configure their own
// (FollowUpSettings.crisis_resources), these are the defaults.
#ifndef CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_CRISIS_RESOURCES_H_
#define CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_CRISIS_RESOURCES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/followup/instruments/scoring.h"

namespace careseal::followup {

struct CrisisResource {
  // E.g. "988 Suicide & Crisis Lifeline".
  std::string display_name;
  // Number to call / to text; empty if none.
  std::string call_number;
  std::string text_number;
  // Chat address; empty if none.
  std::string chat_url;
  // Extra line, e.g. "Veterans: press 1".
  std::string note;
  // True for emergency services (911).
  bool emergency = false;
};

struct CrisisResources {
  std::string headline;
  std::vector<CrisisResource> resources;
};

// Source: /work/shared/CLINICAL.md "Crisis resources shown to a patient at
// risk": 988 Suicide & Crisis Lifeline (call or text 988, chat at
// 988lifeline.org, veterans press 1); emergency: 911.
CrisisResources DefaultCrisisResources();

// For a blood-pressure crisis (CLINICAL.md: escalate at once and tell the
// patient to seek urgent care): the given resources' emergency entries (911
// when there are none) under a headline telling the patient to call the
// first one's number or go to the nearest emergency department.
CrisisResources BloodPressureCrisisResources(
    const CrisisResources& tenant_resources = DefaultCrisisResources());

// What the patient must see now for this response, if anything: the tenant's
// crisis resources when a suicide-risk flag was raised, else the
// blood-pressure crisis resources when the reading calls for urgent care.
std::optional<CrisisResources> ResourcesToShow(
    const ScoredResponse& response,
    const CrisisResources& tenant_resources = DefaultCrisisResources());

// The stored form of a tenant's resources (FollowUpSettings.crisis_resources
// in followup_settings): a JSON object. FromJson fails (INTERNAL,
// CORRUPT_RECORD) on anything that is not such an object.
std::string CrisisResourcesToJson(const CrisisResources& resources);
absl::StatusOr<CrisisResources> CrisisResourcesFromJson(absl::string_view json);

}  // namespace careseal::followup

#endif  // CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_CRISIS_RESOURCES_H_
