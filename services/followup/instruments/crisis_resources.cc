#include "services/followup/instruments/crisis_resources.h"

namespace careseal::followup {
namespace {

CrisisResource Emergency911() {
  CrisisResource r;
  r.display_name = "Emergency services";
  r.call_number = "911";
  r.note = "If you are in immediate danger, call 911.";
  r.emergency = true;
  return r;
}

}  // namespace

CrisisResources DefaultCrisisResources() {
  CrisisResource lifeline;
  lifeline.display_name = "988 Suicide & Crisis Lifeline";
  lifeline.call_number = "988";
  lifeline.text_number = "988";
  lifeline.chat_url = "https://988lifeline.org/chat";
  lifeline.note = "Veterans: press 1";

  CrisisResources resources;
  resources.headline = "You are not alone. Help is available now.";
  resources.resources = {std::move(lifeline), Emergency911()};
  return resources;
}

CrisisResources BloodPressureCrisisResources(
    const CrisisResources& tenant_resources) {
  CrisisResources resources;
  resources.headline =
      "Your blood pressure is very high. Call 911 or go to the nearest "
      "emergency department.";
  for (const CrisisResource& r : tenant_resources.resources) {
    if (r.emergency) resources.resources.push_back(r);
  }
  if (resources.resources.empty())
    resources.resources.push_back(Emergency911());
  return resources;
}

std::optional<CrisisResources> ResourcesToShow(
    const ScoredResponse& response, const CrisisResources& tenant_resources) {
  if (response.show_crisis_resources) return tenant_resources;
  if (response.seek_urgent_care) {
    return BloodPressureCrisisResources(tenant_resources);
  }
  return std::nullopt;
}

}  // namespace careseal::followup
