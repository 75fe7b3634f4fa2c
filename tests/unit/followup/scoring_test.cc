// Scoring, safety flags and validation of responses to the built-in
// instruments, against hand-worked examples; outcome markers.
#include "services/followup/instruments/scoring.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/status.h"
#include "services/followup/instruments/registry.h"

namespace careseal::followup {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const Instrument& Get(absl::string_view id) {
  const Instrument* instrument = BuiltInInstruments().Find(id);
  EXPECT_NE(instrument, nullptr) << id;
  return *instrument;
}

// Answers "<prefix>1".."<prefix>N" with the given values.
std::vector<AnswerValue> Numbered(absl::string_view prefix,
                                  const std::vector<int>& values) {
  std::vector<AnswerValue> answers;
  for (size_t i = 0; i < values.size(); ++i) {
    answers.push_back({absl::StrCat(prefix, i + 1), values[i]});
  }
  return answers;
}

std::vector<AnswerValue> Phq9(const std::array<int, 9>& items) {
  return Numbered("phq9_", std::vector<int>(items.begin(), items.end()));
}

// A PHQ-9 response with this total and item 9 = 0, spread over items 1-8.
std::vector<AnswerValue> Phq9Total(int total) {
  std::array<int, 9> items{};
  for (int i = 0; i < 8 && total > 0; ++i) {
    items[i] = std::min(total, 3);
    total -= items[i];
  }
  return Phq9(items);
}

ScoredResponse MustScore(absl::string_view id,
                         const std::vector<AnswerValue>& answers,
                         const SafetyThresholds& thresholds = {}) {
  absl::StatusOr<ScoredResponse> scored = Score(Get(id), answers, thresholds);
  EXPECT_TRUE(scored.ok()) << scored.status();
  return scored.ok() ? *scored : ScoredResponse{};
}

void ExpectInvalid(absl::string_view id,
                   const std::vector<AnswerValue>& answers,
                   absl::string_view reason, absl::string_view field) {
  absl::StatusOr<ScoredResponse> scored = Score(Get(id), answers);
  ASSERT_FALSE(scored.ok());
  EXPECT_EQ(scored.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(scored.status()), reason) << scored.status();
  EXPECT_EQ(ErrorField(scored.status()), field) << scored.status();
}

// --- PHQ-9 -------------------------------------------------------------------

TEST(Phq9ScoringTest, HandWorkedExample) {
  // 1+2+0+3+1+1+2+0+0 = 10: moderate.
  const ScoredResponse r =
      MustScore("phq-9", Phq9({1, 2, 0, 3, 1, 1, 2, 0, 0}));
  EXPECT_EQ(r.score, 10);
  EXPECT_EQ(r.band_code, "moderate");
  EXPECT_EQ(r.band_display_name, "Moderate");
  EXPECT_THAT(r.flags, IsEmpty());
  EXPECT_EQ(r.urgency, Urgency::kNone);
  EXPECT_FALSE(r.escalate());
  EXPECT_FALSE(r.show_crisis_resources);
}

TEST(Phq9ScoringTest, BandBoundaries) {
  const struct {
    int total;
    const char* band;
  } cases[] = {
      {0, "minimal"},
      {4, "minimal"},
      {5, "mild"},
      {9, "mild"},
      {10, "moderate"},
      {14, "moderate"},
      {15, "moderately_severe"},
      {19, "moderately_severe"},
      {20, "severe"},
  };
  for (const auto& c : cases) {
    const ScoredResponse r = MustScore("phq-9", Phq9Total(c.total));
    EXPECT_EQ(r.score, c.total);
    EXPECT_EQ(r.band_code, c.band) << c.total;
  }
  // 27 needs item 9 = 3 as well: severe, and item 9 escalates.
  const ScoredResponse max =
      MustScore("phq-9", Phq9({3, 3, 3, 3, 3, 3, 3, 3, 3}));
  EXPECT_EQ(max.score, 27);
  EXPECT_EQ(max.band_code, "severe");
  EXPECT_TRUE(max.escalate());
}

TEST(Phq9ScoringTest, Item9PositiveEscalatesWhateverTheTotal) {
  // Total 3 (minimal), but item 9 = 1 ("several days").
  const ScoredResponse r =
      MustScore("phq-9", Phq9({1, 0, 1, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(r.score, 3);
  EXPECT_EQ(r.band_code, "minimal");
  EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kPhq9Item9Positive));
  EXPECT_EQ(r.urgency, Urgency::kUrgent);
  EXPECT_TRUE(r.escalate());
  EXPECT_TRUE(r.show_crisis_resources);
}

TEST(Phq9ScoringTest, OptionalDifficultyQuestionIsNotScored) {
  std::vector<AnswerValue> answers = Phq9({1, 1, 1, 1, 1, 0, 0, 0, 0});
  answers.push_back({"phq9_10", 3});
  const ScoredResponse r = MustScore("phq-9", answers);
  EXPECT_EQ(r.score, 5);
  EXPECT_EQ(r.band_code, "mild");
}

// --- GAD-7 -------------------------------------------------------------------

TEST(Gad7ScoringTest, HandWorkedExample) {
  // 2+1+3+0+1+2+1 = 10: moderate.
  const ScoredResponse r =
      MustScore("gad-7", Numbered("gad7_", {2, 1, 3, 0, 1, 2, 1}));
  EXPECT_EQ(r.score, 10);
  EXPECT_EQ(r.band_code, "moderate");
  EXPECT_THAT(r.flags, IsEmpty());
}

TEST(Gad7ScoringTest, BandBoundaries) {
  const struct {
    std::vector<int> items;
    int total;
    const char* band;
  } cases[] = {
      {{0, 0, 0, 0, 0, 0, 0}, 0, "minimal"},
      {{3, 1, 0, 0, 0, 0, 0}, 4, "minimal"},
      {{3, 2, 0, 0, 0, 0, 0}, 5, "mild"},
      {{3, 3, 3, 0, 0, 0, 0}, 9, "mild"},
      {{3, 3, 3, 1, 0, 0, 0}, 10, "moderate"},
      {{3, 3, 3, 3, 2, 0, 0}, 14, "moderate"},
      {{3, 3, 3, 3, 3, 0, 0}, 15, "severe"},
      {{3, 3, 3, 3, 3, 3, 3}, 21, "severe"},
  };
  for (const auto& c : cases) {
    const ScoredResponse r = MustScore("gad-7", Numbered("gad7_", c.items));
    EXPECT_EQ(r.score, c.total);
    EXPECT_EQ(r.band_code, c.band) << c.total;
    EXPECT_FALSE(r.escalate());
  }
}

// --- C-SSRS screener ---------------------------------------------------------

struct Cssrs {
  bool q1 = false, q2 = false, q3 = false, q4 = false, q5 = false, q6 = false;
  bool recent = false;

  // Only the questions the screener asks: Q3-Q5 when Q2 is yes, the timing
  // question when Q6 is yes.
  std::vector<AnswerValue> Answers() const {
    std::vector<AnswerValue> a = {{"cssrs_1", q1}, {"cssrs_2", q2}};
    if (q2) {
      a.push_back({"cssrs_3", q3});
      a.push_back({"cssrs_4", q4});
      a.push_back({"cssrs_5", q5});
    }
    a.push_back({"cssrs_6", q6});
    if (q6) a.push_back({"cssrs_6_recent", recent});
    return a;
  }
};

TEST(CssrsScoringTest, AllNoIsNoRisk) {
  const ScoredResponse r = MustScore("cssrs-screener", Cssrs{}.Answers());
  EXPECT_EQ(r.score, 0);
  EXPECT_EQ(r.band_code, "no_risk");
  EXPECT_THAT(r.flags, IsEmpty());
  EXPECT_FALSE(r.show_crisis_resources);
}

TEST(CssrsScoringTest, WishToBeDeadOnlyIsLowRisk) {
  const ScoredResponse r =
      MustScore("cssrs-screener", Cssrs{.q1 = true}.Answers());
  EXPECT_EQ(r.band_code, "low_risk");
  EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kCssrsLowRisk));
  EXPECT_EQ(r.urgency, Urgency::kNone);
  EXPECT_TRUE(r.show_crisis_resources);
}

TEST(CssrsScoringTest, ThoughtsWithoutMethodIntentOrPlanIsLowRisk) {
  const ScoredResponse r =
      MustScore("cssrs-screener", Cssrs{.q1 = true, .q2 = true}.Answers());
  EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kCssrsLowRisk));
}

TEST(CssrsScoringTest, MethodIsModerateRisk) {
  const ScoredResponse r =
      MustScore("cssrs-screener", Cssrs{.q2 = true, .q3 = true}.Answers());
  EXPECT_EQ(r.score, 2);
  EXPECT_EQ(r.band_code, "moderate_risk");
  EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kCssrsModerateRisk));
  EXPECT_EQ(r.urgency, Urgency::kNotify);
  EXPECT_FALSE(r.escalate());
  EXPECT_TRUE(r.show_crisis_resources);
}

TEST(CssrsScoringTest, BehaviorLongerAgoIsModerateRisk) {
  const ScoredResponse r =
      MustScore("cssrs-screener", Cssrs{.q6 = true, .recent = false}.Answers());
  EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kCssrsModerateRisk));
}

TEST(CssrsScoringTest, IntentIsHighRisk) {
  const ScoredResponse r =
      MustScore("cssrs-screener", Cssrs{.q2 = true, .q4 = true}.Answers());
  EXPECT_EQ(r.score, 3);
  EXPECT_EQ(r.band_code, "high_risk");
  EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kCssrsHighRisk));
  EXPECT_EQ(r.urgency, Urgency::kUrgent);
  EXPECT_TRUE(r.escalate());
  EXPECT_TRUE(r.show_crisis_resources);
}

TEST(CssrsScoringTest, PlanWithIntentIsHighRisk) {
  const ScoredResponse r = MustScore(
      "cssrs-screener", Cssrs{.q1 = true, .q2 = true, .q5 = true}.Answers());
  EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kCssrsHighRisk));
}

TEST(CssrsScoringTest, BehaviorWithinThreeMonthsIsHighRisk) {
  const ScoredResponse r =
      MustScore("cssrs-screener", Cssrs{.q6 = true, .recent = true}.Answers());
  EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kCssrsHighRisk));
  EXPECT_TRUE(r.escalate());
}

TEST(CssrsScoringTest, Q3ToQ5AreRequiredOnceQ2IsYes) {
  ExpectInvalid("cssrs-screener",
                {{"cssrs_1", false}, {"cssrs_2", true}, {"cssrs_6", false}},
                kReasonAnswerRequired, "answers.cssrs_3");
}

TEST(CssrsScoringTest, Q3ToQ5MustNotBeAnsweredWhenQ2IsNo) {
  ExpectInvalid("cssrs-screener",
                {{"cssrs_1", true},
                 {"cssrs_2", false},
                 {"cssrs_4", false},
                 {"cssrs_6", false}},
                kReasonAnswerNotEnabled, "answers[2]");
}

TEST(CssrsScoringTest, TimingIsAskedOnlyAfterBehavior) {
  ExpectInvalid("cssrs-screener",
                {{"cssrs_1", false}, {"cssrs_2", false}, {"cssrs_6", true}},
                kReasonAnswerRequired, "answers.cssrs_6_recent");
  ExpectInvalid("cssrs-screener",
                {{"cssrs_1", false},
                 {"cssrs_2", false},
                 {"cssrs_6", false},
                 {"cssrs_6_recent", true}},
                kReasonAnswerNotEnabled, "answers[3]");
}

// --- Side effects ------------------------------------------------------------

std::vector<AnswerValue> SideEffects(const std::array<int, 7>& ratings) {
  const char* ids[] = {"se_dissociation", "se_nausea_vomiting",
                       "se_dizziness",    "se_blurred_vision",
                       "se_headache",     "se_sleepiness",
                       "se_urinary"};
  std::vector<AnswerValue> answers;
  for (size_t i = 0; i < ratings.size(); ++i) {
    answers.push_back({ids[i], ratings[i]});
  }
  return answers;
}

TEST(SideEffectScoringTest, ScoreIsTheMaximumSeverity) {
  const ScoredResponse r =
      MustScore("side-effects", SideEffects({2, 1, 0, 0, 1, 2, 0}));
  EXPECT_EQ(r.score, 2);
  EXPECT_EQ(r.band_code, "moderate");
  EXPECT_THAT(r.flags, IsEmpty());
  EXPECT_EQ(r.urgency, Urgency::kNone);

  const ScoredResponse none = MustScore("side-effects", SideEffects({}));
  EXPECT_EQ(none.score, 0);
  EXPECT_EQ(none.band_code, "none");
}

TEST(SideEffectScoringTest, AnySevereNotifiesTheCareTeam) {
  const ScoredResponse r =
      MustScore("side-effects", SideEffects({0, 0, 0, 0, 0, 0, 3}));
  EXPECT_EQ(r.score, 3);
  EXPECT_EQ(r.band_code, "severe");
  EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kSideEffectSevere));
  EXPECT_EQ(r.urgency, Urgency::kNotify);
  EXPECT_FALSE(r.escalate());
  EXPECT_FALSE(r.show_crisis_resources);
}

// --- Blood pressure ----------------------------------------------------------

ScoredResponse Bp(int systolic, int diastolic, int pulse = 0,
                  const SafetyThresholds& thresholds = {}) {
  return MustScore("blood-pressure",
                   {{"bp", BloodPressure{systolic, diastolic, pulse}}},
                   thresholds);
}

TEST(BloodPressureScoringTest, NormalReadingHasNoScoreAndNoFlag) {
  const ScoredResponse r = Bp(124, 82, 71);
  EXPECT_FALSE(r.score.has_value());
  EXPECT_EQ(r.band_code, "");
  EXPECT_THAT(r.flags, IsEmpty());
}

TEST(BloodPressureScoringTest, CrisisThresholdIsInclusive) {
  const ScoredResponse below = Bp(179, 119);
  EXPECT_THAT(below.flags, ElementsAre(ResponseFlag::kBloodPressureHigh));
  EXPECT_FALSE(below.escalate());
  EXPECT_FALSE(below.seek_urgent_care);

  for (const ScoredResponse& r : {Bp(180, 119), Bp(179, 120)}) {
    EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kBloodPressureCrisis));
    EXPECT_EQ(r.urgency, Urgency::kUrgent);
    EXPECT_TRUE(r.escalate());
    EXPECT_TRUE(r.seek_urgent_care);
    EXPECT_FALSE(r.show_crisis_resources);
  }
}

TEST(BloodPressureScoringTest, HighThresholdIsInclusive) {
  EXPECT_THAT(Bp(159, 99).flags, IsEmpty());
  const ScoredResponse high = Bp(160, 99);
  EXPECT_THAT(high.flags, ElementsAre(ResponseFlag::kBloodPressureHigh));
  EXPECT_EQ(high.urgency, Urgency::kNotify);
  EXPECT_THAT(Bp(159, 100).flags,
              ElementsAre(ResponseFlag::kBloodPressureHigh));
}

TEST(BloodPressureScoringTest, TenantThresholdsApply) {
  SafetyThresholds strict;
  strict.high_systolic_mmhg = 150;
  strict.high_diastolic_mmhg = 95;
  strict.crisis_systolic_mmhg = 170;
  strict.crisis_diastolic_mmhg = 110;
  ASSERT_TRUE(ValidateSafetyThresholds(strict).ok());
  EXPECT_THAT(Bp(150, 80, 0, strict).flags,
              ElementsAre(ResponseFlag::kBloodPressureHigh));
  EXPECT_THAT(Bp(170, 80, 0, strict).flags,
              ElementsAre(ResponseFlag::kBloodPressureCrisis));
}

TEST(BloodPressureScoringTest, ReadingRanges) {
  EXPECT_THAT(Bp(50, 30, 20).flags, IsEmpty());
  EXPECT_THAT(Bp(300, 200, 250).flags,
              ElementsAre(ResponseFlag::kBloodPressureCrisis));
  const struct {
    BloodPressure bp;
    const char* field;
  } bad[] = {
      {{49, 30, 0}, "answers[0].blood_pressure.systolic_mmhg"},
      {{301, 120, 0}, "answers[0].blood_pressure.systolic_mmhg"},
      {{120, 29, 0}, "answers[0].blood_pressure.diastolic_mmhg"},
      {{250, 201, 0}, "answers[0].blood_pressure.diastolic_mmhg"},
      {{120, 120, 0}, "answers[0].blood_pressure.diastolic_mmhg"},
      {{120, 80, 19}, "answers[0].blood_pressure.pulse_bpm"},
      {{120, 80, 251}, "answers[0].blood_pressure.pulse_bpm"},
  };
  for (const auto& b : bad) {
    ExpectInvalid("blood-pressure", {{"bp", b.bp}}, kReasonAnswerOutOfRange,
                  b.field);
  }
}

TEST(SafetyThresholdsTest, DefaultsFollowClinicalReference) {
  const SafetyThresholds defaults;
  EXPECT_EQ(defaults.crisis_systolic_mmhg, 180);
  EXPECT_EQ(defaults.crisis_diastolic_mmhg, 120);
  EXPECT_EQ(defaults.high_systolic_mmhg, 160);
  EXPECT_EQ(defaults.high_diastolic_mmhg, 100);
  EXPECT_TRUE(ValidateSafetyThresholds(defaults).ok());
}

TEST(SafetyThresholdsTest, RejectsImpossibleThresholds) {
  SafetyThresholds t;
  t.crisis_systolic_mmhg = 400;
  absl::Status status = ValidateSafetyThresholds(t);
  EXPECT_EQ(ErrorReason(status), kReasonThresholdOutOfRange);
  EXPECT_EQ(ErrorField(status), "crisis_systolic_mmhg");

  t = SafetyThresholds{};
  t.high_systolic_mmhg = 190;  // above the crisis value
  status = ValidateSafetyThresholds(t);
  EXPECT_EQ(ErrorReason(status), kReasonThresholdOutOfRange);
  EXPECT_EQ(ErrorField(status), "high_systolic_mmhg");
}

// --- Home safe ---------------------------------------------------------------

TEST(HomeSafeScoringTest, YesToBothRaisesNothing) {
  const ScoredResponse r =
      MustScore("home-safe", {{"home_safe", true}, {"adult_present", true}});
  EXPECT_FALSE(r.score.has_value());
  EXPECT_THAT(r.flags, IsEmpty());
}

TEST(HomeSafeScoringTest, NoToEitherNotifiesTheCareTeam) {
  for (const auto& answers : std::vector<std::vector<AnswerValue>>{
           {{"home_safe", false}, {"adult_present", true}},
           {{"home_safe", true}, {"adult_present", false}}}) {
    const ScoredResponse r = MustScore("home-safe", answers);
    EXPECT_THAT(r.flags, ElementsAre(ResponseFlag::kHomeSafeNotConfirmed));
    EXPECT_EQ(r.urgency, Urgency::kNotify);
    EXPECT_FALSE(r.escalate());
  }
}

// --- Invalid answers ---------------------------------------------------------

TEST(ScoreValidationTest, MissingRequiredAnswer) {
  std::vector<AnswerValue> answers = Phq9Total(5);
  answers.erase(answers.begin() + 3);  // phq9_4
  ExpectInvalid("phq-9", answers, kReasonAnswerRequired, "answers.phq9_4");
}

TEST(ScoreValidationTest, ChoiceOutOfRange) {
  std::vector<AnswerValue> answers = Phq9Total(5);
  answers[2].value = 4;
  ExpectInvalid("phq-9", answers, kReasonAnswerOutOfRange, "answers[2]");
  answers[2].value = -1;
  ExpectInvalid("phq-9", answers, kReasonAnswerOutOfRange, "answers[2]");
}

TEST(ScoreValidationTest, UnknownItem) {
  std::vector<AnswerValue> answers = Phq9Total(5);
  answers.push_back({"gad7_1", 1});
  ExpectInvalid("phq-9", answers, kReasonUnknownItem, "answers[9]");
}

TEST(ScoreValidationTest, DuplicateAnswer) {
  std::vector<AnswerValue> answers = Phq9Total(5);
  answers.push_back({"phq9_1", 0});
  ExpectInvalid("phq-9", answers, kReasonDuplicateItem, "answers[9]");
}

TEST(ScoreValidationTest, TypeMismatch) {
  std::vector<AnswerValue> answers = Phq9Total(5);
  answers[0].value = true;
  ExpectInvalid("phq-9", answers, kReasonAnswerTypeMismatch, "answers[0]");
  ExpectInvalid("home-safe", {{"home_safe", 1}, {"adult_present", true}},
                kReasonAnswerTypeMismatch, "answers[0]");
  ExpectInvalid("blood-pressure", {{"bp", 120}}, kReasonAnswerTypeMismatch,
                "answers[0]");
}

TEST(ScoreValidationTest, AnswerToItemNotEnabled) {
  ExpectInvalid("cssrs-screener",
                {{"cssrs_1", false},
                 {"cssrs_2", false},
                 {"cssrs_3", false},
                 {"cssrs_6", false}},
                kReasonAnswerNotEnabled, "answers[2]");
}

TEST(ScoreValidationTest, EmptyResponseNamesTheFirstRequiredItem) {
  ExpectInvalid("gad-7", {}, kReasonAnswerRequired, "answers.gad7_1");
}

TEST(ScoreValidationTest, MessagesNameTheItemButNeverTheAnswer) {
  std::vector<AnswerValue> answers = Phq9Total(5);
  answers[8].value = 17;
  absl::StatusOr<ScoredResponse> scored = Score(Get("phq-9"), answers);
  ASSERT_FALSE(scored.ok());
  const std::string message(scored.status().message());
  EXPECT_THAT(message, HasSubstr("phq9_9"));
  EXPECT_THAT(message, Not(HasSubstr("17")));
}

TEST(ScoreValidationTest, AnswersInAnyOrderScoreTheSame) {
  std::vector<AnswerValue> answers = Phq9({3, 0, 0, 0, 0, 0, 0, 2, 0});
  std::reverse(answers.begin(), answers.end());
  EXPECT_EQ(MustScore("phq-9", answers).score, 5);
}

// --- Outcome markers ---------------------------------------------------------

TEST(OutcomeMarkersTest, ResponseIsAtLeastHalfTheBaseline) {
  const Instrument& phq9 = Get("phq-9");
  const OutcomeMarkers half = ComputeMarkers(phq9, 20, 10);
  EXPECT_TRUE(half.response);
  EXPECT_DOUBLE_EQ(*half.change_from_baseline_percent, -50.0);
  const OutcomeMarkers short_of_half = ComputeMarkers(phq9, 20, 11);
  EXPECT_FALSE(short_of_half.response);
  EXPECT_DOUBLE_EQ(*short_of_half.change_from_baseline_percent, -45.0);
  // Odd baseline: 15 -> 7 is a 53% drop, 15 -> 8 only 47%.
  EXPECT_TRUE(ComputeMarkers(phq9, 15, 7).response);
  EXPECT_FALSE(ComputeMarkers(phq9, 15, 8).response);
}

TEST(OutcomeMarkersTest, RemissionIsBelowFive) {
  const Instrument& phq9 = Get("phq-9");
  EXPECT_TRUE(ComputeMarkers(phq9, 20, 4).remission);
  EXPECT_FALSE(ComputeMarkers(phq9, 20, 5).remission);
}

TEST(OutcomeMarkersTest, ZeroBaselineHasNoResponseMarker) {
  const OutcomeMarkers m = ComputeMarkers(Get("phq-9"), 0, 0);
  EXPECT_FALSE(m.response);
  EXPECT_TRUE(m.remission);
  EXPECT_FALSE(m.change_from_baseline_percent.has_value());
}

TEST(OutcomeMarkersTest, InstrumentsWithoutMarkersNeverSetThem) {
  const OutcomeMarkers m = ComputeMarkers(Get("gad-7"), 20, 0);
  EXPECT_FALSE(m.response);
  EXPECT_FALSE(m.remission);
  EXPECT_DOUBLE_EQ(*m.change_from_baseline_percent, -100.0);
}

}  // namespace
}  // namespace careseal::followup
