#include "tests/testing/instruction_fixtures.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace careseal::testing {
namespace {

google::protobuf::Duration Dur(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::ToInt64Seconds(d));
  return out;
}

}  // namespace

v1::InstructionTemplateVersion PreInfusionInstructions() {
  v1::InstructionTemplateVersion v;
  v.set_title("Before your ketamine infusion");
  v.set_body_markdown("Wear comfortable clothes.");
  *v.mutable_solids_cutoff() = Dur(absl::Hours(6));
  *v.mutable_clear_liquids_cutoff() = Dur(absl::Hours(2));
  v.set_escort_required(true);
  auto* hold = v.add_medication_holds();
  hold->set_id("benzodiazepines");
  hold->set_text(
      "Benzodiazepines: take or hold only as your clinician directed.");
  hold = v.add_medication_holds();
  hold->set_id("alcohol-cannabis");
  hold->set_text("No alcohol or cannabis for 24 hours before.");
  v.add_what_to_bring("photo ID");
  *v.mutable_arrival_lead() = Dur(absl::Minutes(30));
  auto* ack = v.add_discharge_acknowledgements();
  ack->set_id("no-driving");
  ack->set_text("No driving, machinery or legal decisions for 24 hours.");
  ack->set_required(true);
  return v;
}

absl::StatusOr<v1::InstructionTemplateVersion> PublishDefaultInstructions(
    client::PreSessionClient& ehr, client::PreSessionClient& admin,
    const std::string& tenant) {
  v1::CreateInstructionTemplateRequest create;
  create.set_parent(tenant);
  create.set_instruction_template_id("pre-infusion");
  create.mutable_instruction_template()->set_display_name("Before infusion");
  auto t = ehr.CreateInstructionTemplate(create);
  if (!t.ok()) return t.status();
  v1::PublishInstructionTemplateVersionRequest publish;
  publish.set_parent(t->instruction_template().name());
  *publish.mutable_version() = PreInfusionInstructions();
  auto published = ehr.PublishInstructionTemplateVersion(publish);
  if (!published.ok()) return published.status();
  v1::UpdatePreSessionSettingsRequest settings;
  settings.mutable_settings()->set_name(
      absl::StrCat(tenant, "/preSessionSettings"));
  settings.mutable_settings()->set_default_instruction_template(
      t->instruction_template().name());
  settings.mutable_update_mask()->add_paths("default_instruction_template");
  auto updated = admin.UpdatePreSessionSettings(settings);
  if (!updated.ok()) return updated.status();
  return published->version();
}

}  // namespace careseal::testing
