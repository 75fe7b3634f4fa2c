// Table tests of the pre-session manager's input checks and of the canonical
// rendering that content_sha256 covers (plain C++, no server).
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "services/common/status.h"
#include "services/presession/presession_manager.h"

namespace careseal::presession {
namespace {

InstructionContent Valid() {
  InstructionContent c;
  c.title = "Before your infusion";
  c.body_markdown = "Wear comfortable clothes.";
  c.escort_required = true;
  c.medication_holds = {{"benzodiazepines", "Only as directed."}};
  c.what_to_bring = {"photo ID"};
  c.arrival_lead = absl::Minutes(30);
  c.discharge_acknowledgements = {{"no-driving", "No driving for 24 h.", true}};
  return c;
}

TEST(ValidateContentTest, EachBadFieldIsNamed) {
  ASSERT_TRUE(ValidateContent(Valid()).ok());
  struct Case {
    void (*mutate)(InstructionContent&);
    const char* field;
    const char* reason;
  };
  const Case cases[] = {
      {[](InstructionContent& c) { c.title.clear(); }, "version.title",
       "FIELD_REQUIRED"},
      {[](InstructionContent& c) { c.solids_cutoff = absl::Hours(25); },
       "version.solids_cutoff", "CUTOFF_OUT_OF_RANGE"},
      {[](InstructionContent& c) { c.clear_liquids_cutoff = absl::Hours(7); },
       "version.clear_liquids_cutoff", "CUTOFF_OUT_OF_RANGE"},
      {[](InstructionContent& c) { c.arrival_lead = absl::Hours(3); },
       "version.arrival_lead", "CUTOFF_OUT_OF_RANGE"},
      {[](InstructionContent& c) {
         c.medication_holds.push_back({"benzodiazepines", "again"});
       },
       "version.medication_holds[1].id", "DUPLICATE_ID"},
      {[](InstructionContent& c) { c.medication_holds[0].id = "Bad Id"; },
       "version.medication_holds[0].id", "INVALID_ID"},
      {[](InstructionContent& c) { c.what_to_bring.assign(21, "item"); },
       "version.what_to_bring", "TOO_MANY_ITEMS"},
      {[](InstructionContent& c) {
         c.discharge_acknowledgements[0].text.clear();
       },
       "version.discharge_acknowledgements[0].text", "FIELD_REQUIRED"},
  };
  for (const Case& c : cases) {
    InstructionContent content = Valid();
    c.mutate(content);
    absl::Status s = ValidateContent(content);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(ErrorField(s), c.field);
    EXPECT_EQ(ErrorReason(s), c.reason) << c.field;
  }
}

TEST(ValidateSettingsTest, OffsetsAndReminders) {
  Settings s;
  const std::set<std::string> all = {"delivery_offsets", "reminder_after",
                                     "max_reminders"};
  EXPECT_TRUE(ValidateSettings(s, all).ok());
  s.delivery.offsets = {absl::Minutes(30)};
  EXPECT_EQ(ErrorField(ValidateSettings(s, all)),
            "settings.delivery_offsets[0]");
  s.delivery.offsets = {absl::Hours(48), absl::Hours(48)};
  EXPECT_EQ(ErrorField(ValidateSettings(s, all)),
            "settings.delivery_offsets[1]");
  s.delivery.offsets = {};
  EXPECT_EQ(ErrorReason(ValidateSettings(s, all)), "OFFSET_OUT_OF_RANGE");
  // Only the paths in the mask are checked.
  EXPECT_TRUE(ValidateSettings(s, {"max_reminders"}).ok());
  s = Settings{};
  s.delivery.max_reminders = 11;
  EXPECT_EQ(ErrorField(ValidateSettings(s, all)), "settings.max_reminders");
}

TEST(CanonicalContentTest, StableAndSensitiveToEveryField) {
  const std::string a = CanonicalContent(Valid());
  EXPECT_EQ(a, CanonicalContent(Valid()));
  InstructionContent changed = Valid();
  changed.escort_required = false;
  EXPECT_NE(a, CanonicalContent(changed));
  changed = Valid();
  changed.discharge_acknowledgements[0].required = false;
  EXPECT_NE(a, CanonicalContent(changed));
  EXPECT_NE(a.find("careseal.instructions.v1"), std::string::npos);
}

TEST(OffsetLabelTest, HoursMinutesSeconds) {
  EXPECT_EQ(OffsetLabel(absl::Hours(48)), "48h");
  EXPECT_EQ(OffsetLabel(absl::Minutes(90)), "90m");
  EXPECT_EQ(OffsetLabel(absl::Seconds(3601)), "3601s");
}

}  // namespace
}  // namespace careseal::presession
