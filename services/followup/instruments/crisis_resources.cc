#include "services/followup/instruments/crisis_resources.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "services/common/status.h"

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
  for (const CrisisResource& r : tenant_resources.resources) {
    if (r.emergency) resources.resources.push_back(r);
  }
  if (resources.resources.empty())
    resources.resources.push_back(Emergency911());
  const CrisisResource& first = resources.resources.front();
  resources.headline = absl::StrCat(
      "Your blood pressure is very high. Call ",
      first.call_number.empty() ? first.display_name : first.call_number,
      " or go to the nearest emergency department.");
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

std::string CrisisResourcesToJson(const CrisisResources& resources) {
  nlohmann::json list = nlohmann::json::array();
  for (const CrisisResource& r : resources.resources) {
    list.push_back({{"display_name", r.display_name},
                    {"call_number", r.call_number},
                    {"text_number", r.text_number},
                    {"chat_url", r.chat_url},
                    {"note", r.note},
                    {"emergency", r.emergency}});
  }
  return nlohmann::json{{"headline", resources.headline}, {"resources", list}}
      .dump();
}

absl::StatusOr<CrisisResources> CrisisResourcesFromJson(
    absl::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("resources") ||
      !j["resources"].is_array()) {
    return Internal("CORRUPT_RECORD", "stored crisis resources");
  }
  CrisisResources out;
  out.headline = j.value("headline", "");
  for (const auto& e : j["resources"]) {
    if (!e.is_object()) {
      return Internal("CORRUPT_RECORD", "stored crisis resources");
    }
    CrisisResource r;
    r.display_name = e.value("display_name", "");
    r.call_number = e.value("call_number", "");
    r.text_number = e.value("text_number", "");
    r.chat_url = e.value("chat_url", "");
    r.note = e.value("note", "");
    r.emergency = e.value("emergency", false);
    out.resources.push_back(std::move(r));
  }
  return out;
}

}  // namespace careseal::followup
