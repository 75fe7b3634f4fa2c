// The built-in instrument definitions: well-formed, versioned, published
// wording; the JSON reader's strictness; the registry; crisis resources.
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/status.h"
#include "services/followup/instruments/crisis_resources.h"
#include "services/followup/instruments/instrument.h"
#include "services/followup/instruments/registry.h"

namespace careseal::followup {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Instrument& Get(absl::string_view id) {
  const Instrument* instrument = BuiltInInstruments().Find(id);
  EXPECT_NE(instrument, nullptr) << id;
  return *instrument;
}

std::vector<std::string> ItemIds(const Instrument& instrument) {
  std::vector<std::string> ids;
  for (const InstrumentItem& item : instrument.items) ids.push_back(item.id);
  return ids;
}

TEST(BuiltInInstrumentsTest, AllSixArePresentInDisplayOrder) {
  std::vector<std::string> ids;
  for (const Instrument* instrument : BuiltInInstruments().Current()) {
    ids.push_back(instrument->id);
  }
  EXPECT_THAT(ids,
              ElementsAre("phq-9", "gad-7", "side-effects", "blood-pressure",
                          "cssrs-screener", "home-safe"));
}

// Independent of ValidateInstrument: re-checks the invariants a client relies
// on, so a bug in the validator cannot hide a malformed definition.
TEST(BuiltInInstrumentsTest, EveryDefinitionIsWellFormed) {
  std::set<std::string> instrument_ids;
  for (const Instrument& in : BuiltInInstruments().All()) {
    SCOPED_TRACE(in.id);
    EXPECT_TRUE(ValidateInstrument(in).ok()) << ValidateInstrument(in);
    EXPECT_TRUE(instrument_ids.insert(in.id).second) << "duplicate id";
    EXPECT_GE(in.version, 1);
    EXPECT_FALSE(in.display_name.empty());
    EXPECT_FALSE(in.attribution.empty());
    std::set<std::string> item_ids;
    for (const InstrumentItem& item : in.items) {
      SCOPED_TRACE(item.id);
      EXPECT_TRUE(item_ids.insert(item.id).second) << "duplicate item id";
      EXPECT_FALSE(item.text.empty());
      std::set<int> values;
      for (const AnswerOption& option : item.options) {
        EXPECT_TRUE(values.insert(option.value).second) << "duplicate value";
        EXPECT_FALSE(option.label.empty());
      }
      EXPECT_EQ(item.type == ItemType::kChoice, !item.options.empty());
      if (item.enable_when) {
        EXPECT_TRUE(item_ids.contains(item.enable_when->item_id))
            << "enable_when must refer to an earlier item";
      }
    }
    if (in.HasScore()) {
      ASSERT_FALSE(in.bands.empty());
      int next = in.min_score;
      for (const ScoreBand& band : in.bands) {
        EXPECT_EQ(band.min_score, next) << "gap or overlap at " << band.code;
        EXPECT_LE(band.min_score, band.max_score);
        next = band.max_score + 1;
      }
      EXPECT_EQ(next, in.max_score + 1) << "bands do not reach max_score";
      for (int score = in.min_score; score <= in.max_score; ++score) {
        EXPECT_NE(in.FindBand(score), nullptr) << score;
      }
    } else {
      EXPECT_TRUE(in.bands.empty());
      EXPECT_EQ(in.min_score, 0);
      EXPECT_EQ(in.max_score, 0);
    }
  }
}

TEST(BuiltInInstrumentsTest, Phq9MatchesThePublishedForm) {
  const Instrument& phq9 = Get("phq-9");
  EXPECT_EQ(phq9.loinc_panel_code, "44249-1");
  EXPECT_EQ(phq9.loinc_total_code, "44261-6");
  EXPECT_EQ(phq9.preamble,
            "Over the last 2 weeks, how often have you been bothered by any of "
            "the following problems?");
  EXPECT_THAT(ItemIds(phq9),
              ElementsAre("phq9_1", "phq9_2", "phq9_3", "phq9_4", "phq9_5",
                          "phq9_6", "phq9_7", "phq9_8", "phq9_9", "phq9_10"));
  EXPECT_EQ(phq9.items[0].text, "Little interest or pleasure in doing things");
  EXPECT_EQ(phq9.items[8].text,
            "Thoughts that you would be better off dead or of hurting yourself "
            "in some way");
  EXPECT_EQ(phq9.items[8].loinc_code, "44260-8");
  ASSERT_EQ(phq9.items[0].options.size(), 4u);
  EXPECT_EQ(phq9.items[0].options[0].label, "Not at all");
  EXPECT_EQ(phq9.items[0].options[1].label, "Several days");
  EXPECT_EQ(phq9.items[0].options[2].label, "More than half the days");
  EXPECT_EQ(phq9.items[0].options[3].label, "Nearly every day");
  // The tenth (difficulty) question is optional and not scored.
  const InstrumentItem& difficulty = phq9.items[9];
  EXPECT_FALSE(difficulty.required);
  EXPECT_FALSE(difficulty.scored);
  EXPECT_EQ(difficulty.options.back().label, "Extremely difficult");
  EXPECT_EQ(phq9.min_score, 0);
  EXPECT_EQ(phq9.max_score, 27);
  EXPECT_EQ(phq9.response_drop_percent, 50);
  EXPECT_EQ(phq9.remission_below, 5);
  EXPECT_THAT(phq9.safety_rules, ElementsAre(ResponseFlag::kPhq9Item9Positive));
  EXPECT_THAT(phq9.attribution, HasSubstr("Pfizer Inc."));
  EXPECT_THAT(phq9.attribution, HasSubstr("No permission required"));
}

TEST(BuiltInInstrumentsTest, Gad7MatchesThePublishedForm) {
  const Instrument& gad7 = Get("gad-7");
  EXPECT_EQ(gad7.loinc_panel_code, "69737-5");
  EXPECT_EQ(gad7.loinc_total_code, "70274-6");
  ASSERT_EQ(gad7.items.size(), 7u);
  EXPECT_EQ(gad7.items[0].text, "Feeling nervous, anxious, or on edge");
  EXPECT_EQ(gad7.items[6].text,
            "Feeling afraid, as if something awful might happen");
  EXPECT_EQ(gad7.max_score, 21);
  ASSERT_EQ(gad7.bands.size(), 4u);
  EXPECT_EQ(gad7.bands[3].min_score, 15);
  EXPECT_EQ(gad7.bands[3].max_score, 21);
  EXPECT_THAT(gad7.attribution, HasSubstr("Spitzer"));
}

TEST(BuiltInInstrumentsTest, CssrsAsksQ3ToQ5OnlyAfterQ2AndTimingAfterQ6) {
  const Instrument& cssrs = Get("cssrs-screener");
  EXPECT_THAT(ItemIds(cssrs),
              ElementsAre("cssrs_1", "cssrs_2", "cssrs_3", "cssrs_4", "cssrs_5",
                          "cssrs_6", "cssrs_6_recent"));
  for (absl::string_view id : {"cssrs_3", "cssrs_4", "cssrs_5"}) {
    const InstrumentItem* item = cssrs.FindItem(id);
    ASSERT_NE(item, nullptr);
    ASSERT_TRUE(item->enable_when.has_value()) << id;
    EXPECT_EQ(item->enable_when->item_id, "cssrs_2");
    EXPECT_EQ(std::get<bool>(item->enable_when->equals), true);
  }
  EXPECT_FALSE(cssrs.FindItem("cssrs_6")->enable_when.has_value());
  EXPECT_EQ(cssrs.FindItem("cssrs_6_recent")->enable_when->item_id, "cssrs_6");
  EXPECT_EQ(cssrs.items[0].text,
            "Have you wished you were dead or wished you could go to sleep and "
            "not wake up?");
  EXPECT_EQ(cssrs.items[1].text,
            "Have you actually had any thoughts of killing yourself?");
  EXPECT_EQ(cssrs.items[6].text, "Was this within the past 3 months?");
  EXPECT_THAT(cssrs.attribution, HasSubstr("Columbia Lighthouse Project"));
}

TEST(BuiltInInstrumentsTest, SideEffectChecklistCoversTheCommonEffects) {
  const Instrument& se = Get("side-effects");
  EXPECT_THAT(ItemIds(se),
              ElementsAre("se_dissociation", "se_nausea_vomiting",
                          "se_dizziness", "se_blurred_vision", "se_headache",
                          "se_sleepiness", "se_urinary"));
  for (const InstrumentItem& item : se.items) {
    ASSERT_EQ(item.options.size(), 4u);
    EXPECT_EQ(item.options[0].label, "None");
    EXPECT_EQ(item.options[3].label, "Severe");
    EXPECT_EQ(item.options[3].value, kSevereRating);
  }
  EXPECT_EQ(se.scoring_rule, ScoringRule::kMaxSeverity);
}

TEST(BuiltInInstrumentsTest, UnscoredInstruments) {
  EXPECT_FALSE(Get("blood-pressure").HasScore());
  EXPECT_FALSE(Get("home-safe").HasScore());
  EXPECT_EQ(Get("home-safe").items[0].text, "Did you get home safely?");
  EXPECT_EQ(Get("home-safe").items[1].text, "Is an adult with you?");
}

TEST(InstrumentRegistryTest, FindsCurrentAndSpecificVersions) {
  Instrument v1 = Get("home-safe");
  Instrument v2 = v1;
  v2.version = 2;
  v2.display_name = "Home safe check v2";
  auto registry = InstrumentRegistry::Create({v2, v1});
  ASSERT_TRUE(registry.ok()) << registry.status();
  EXPECT_EQ(registry->Find("home-safe")->version, 2);
  EXPECT_EQ(registry->Find("home-safe", 1)->version, 1);
  EXPECT_EQ(registry->Find("home-safe", 3), nullptr);
  EXPECT_EQ(registry->Find("phq-9"), nullptr);
  ASSERT_EQ(registry->Current().size(), 1u);
  EXPECT_EQ(registry->Current()[0]->version, 2);
}

TEST(InstrumentRegistryTest, RejectsTheSameVersionTwice) {
  auto registry = InstrumentRegistry::Create({Get("gad-7"), Get("gad-7")});
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(registry.status()), kReasonInvalidInstrument);
}

// A minimal valid definition, and mutations of it that must be refused.
constexpr absl::string_view kMinimal = R"json({
  "id": "mini", "version": 1, "display_name": "Mini",
  "items": [{"id": "q1", "text": "Q?", "type": "CHOICE", "required": true,
             "scored": true, "options": [{"value": 0, "label": "No"},
                                         {"value": 1, "label": "Yes"}]}],
  "scoring_rule": "SUM", "min_score": 0, "max_score": 1,
  "bands": [{"min": 0, "max": 1, "code": "all", "display_name": "All"}],
  "attribution": "test"
})json";

TEST(ParseInstrumentJsonTest, AcceptsAMinimalDefinition) {
  auto parsed = ParseInstrumentJson(kMinimal);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->id, "mini");
  EXPECT_EQ(parsed->items[0].options[1].label, "Yes");
}

void ExpectRejected(absl::string_view json, absl::string_view message_part) {
  auto parsed = ParseInstrumentJson(json);
  ASSERT_FALSE(parsed.ok()) << json;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(parsed.status()), kReasonInvalidInstrument);
  EXPECT_THAT(std::string(parsed.status().message()),
              HasSubstr(std::string(message_part)));
}

std::string Replace(absl::string_view from, absl::string_view to) {
  std::string json(kMinimal);
  const size_t at = json.find(std::string(from));
  EXPECT_NE(at, std::string::npos) << from;
  json.replace(at, from.size(), std::string(to));
  return json;
}

TEST(ParseInstrumentJsonTest, RejectsMalformedDefinitions) {
  ExpectRejected("{", "not valid JSON");
  ExpectRejected(Replace("\"display_name\": \"Mini\"",
                         "\"display_name\": \"Mini\", \"colour\": \"red\""),
                 "unknown key");
  ExpectRejected(Replace("\"attribution\": \"test\"", "\"attribution\": \"\""),
                 "attribution");
  ExpectRejected(Replace("\"SUM\"", "\"AVERAGE\""), "unknown scoring rule");
  ExpectRejected(Replace("\"CHOICE\"", "\"TEXT\""), "unknown item type");
  ExpectRejected(Replace("\"version\": 1", "\"version\": \"1\""),
                 "must be an integer");
  ExpectRejected(Replace("{\"value\": 1, \"label\": \"Yes\"}",
                         "{\"value\": 0, \"label\": \"Yes\"}"),
                 "more than once");
  ExpectRejected(Replace("\"max\": 1", "\"max\": 0"), "must end at max_score");
  ExpectRejected(Replace("\"min\": 0", "\"min\": 1"), "must start at 0");
  ExpectRejected(Replace("\"max_score\": 1", "\"max_score\": 2"),
                 "score range must be 0..1");
  ExpectRejected(Replace("\"id\": \"q1\"", "\"id\": \"Q 1\""),
                 "[a-z0-9_]{1,64}");
  ExpectRejected(Replace("\"attribution\": \"test\"",
                         "\"attribution\": \"test\", "
                         "\"safety_rules\": [\"PHQ9_ITEM9_POSITIVE\"]"),
                 "phq9_9");
}

TEST(ParseInstrumentJsonTest, RejectsEnableWhenOnALaterOrUnknownItem) {
  ExpectRejected(
      Replace("\"scored\": true,",
              "\"scored\": true, \"enable_when\": {\"item_id\": \"q1\", "
              "\"equals\": 1},"),
      "earlier item");
}

TEST(CrisisResourcesTest, DefaultsAre988AndEmergency911) {
  const CrisisResources resources = DefaultCrisisResources();
  EXPECT_FALSE(resources.headline.empty());
  ASSERT_EQ(resources.resources.size(), 2u);
  const CrisisResource& lifeline = resources.resources[0];
  EXPECT_EQ(lifeline.call_number, "988");
  EXPECT_EQ(lifeline.text_number, "988");
  EXPECT_THAT(lifeline.chat_url, HasSubstr("988lifeline.org"));
  EXPECT_THAT(lifeline.note, HasSubstr("press 1"));
  EXPECT_FALSE(lifeline.emergency);
  EXPECT_EQ(resources.resources[1].call_number, "911");
  EXPECT_TRUE(resources.resources[1].emergency);
}

TEST(CrisisResourcesTest, WhatToShowFollowsTheResponse) {
  ScoredResponse none;
  EXPECT_FALSE(ResourcesToShow(none).has_value());

  ScoredResponse suicide_risk;
  suicide_risk.show_crisis_resources = true;
  auto shown = ResourcesToShow(suicide_risk);
  ASSERT_TRUE(shown.has_value());
  EXPECT_EQ(shown->resources[0].call_number, "988");

  ScoredResponse bp_crisis;
  bp_crisis.seek_urgent_care = true;
  shown = ResourcesToShow(bp_crisis);
  ASSERT_TRUE(shown.has_value());
  EXPECT_THAT(shown->headline, HasSubstr("911"));
  ASSERT_EQ(shown->resources.size(), 1u);
  EXPECT_EQ(shown->resources[0].call_number, "911");
}

TEST(CrisisResourcesTest, StoredFormRoundTripsAndRefusesWhatIsNotOne) {
  CrisisResources in = DefaultCrisisResources();
  in.resources[0].note = "Quotes \" and \u00e9 survive";
  auto out = CrisisResourcesFromJson(CrisisResourcesToJson(in));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->headline, in.headline);
  ASSERT_EQ(out->resources.size(), 2u);
  EXPECT_EQ(out->resources[0].note, in.resources[0].note);
  EXPECT_EQ(out->resources[0].chat_url, in.resources[0].chat_url);
  EXPECT_EQ(out->resources[0].text_number, "988");
  EXPECT_TRUE(out->resources[1].emergency);
  EXPECT_FALSE(out->resources[0].emergency);
  for (const char* corrupt : {"", "[]", "{\"headline\": \"x\"}",
                              "{\"resources\": [1]}", "not json"}) {
    EXPECT_EQ(CrisisResourcesFromJson(corrupt).status().code(),
              absl::StatusCode::kInternal)
        << corrupt;
  }
}

TEST(CrisisResourcesTest, ABloodPressureCrisisNamesTheClinicsEmergencyNumber) {
  CrisisResources clinic;
  clinic.headline = "Help now";
  clinic.resources.push_back({"Crisis line", "0800 111", "", "", "", false});
  clinic.resources.push_back({"Emergency", "112", "", "", "", true});
  const CrisisResources shown = BloodPressureCrisisResources(clinic);
  ASSERT_EQ(shown.resources.size(), 1u);
  EXPECT_EQ(shown.resources[0].call_number, "112");
  EXPECT_THAT(shown.headline, HasSubstr("Call 112 "));
}

}  // namespace
}  // namespace careseal::followup
