#include "services/followup/instruments/scoring.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/macros.h"
#include "services/common/status.h"

namespace careseal::followup {
namespace {

// C-SSRS screener risk levels (the score of the CSSRS_SCREENER rule).
constexpr int kCssrsNoRisk = 0;
constexpr int kCssrsLowRisk = 1;
constexpr int kCssrsModerateRisk = 2;
constexpr int kCssrsHighRisk = 3;

std::string AnswerField(size_t index) {
  return absl::StrCat("answers[", index, "]");
}

absl::string_view ExpectedValueKind(ItemType type) {
  switch (type) {
    case ItemType::kInteger:
    case ItemType::kChoice:
      return "int_value";
    case ItemType::kBoolean:
      return "bool_value";
    case ItemType::kBloodPressure:
      return "blood_pressure";
  }
  return "";
}

bool TypeMatches(ItemType type, const AnswerValue& answer) {
  switch (type) {
    case ItemType::kInteger:
    case ItemType::kChoice:
      return std::holds_alternative<int>(answer.value);
    case ItemType::kBoolean:
      return std::holds_alternative<bool>(answer.value);
    case ItemType::kBloodPressure:
      return std::holds_alternative<BloodPressure>(answer.value);
  }
  return false;
}

absl::Status OutOfRange(absl::string_view field, absl::string_view item_id,
                        absl::string_view accepted) {
  return InvalidField(field, kReasonAnswerOutOfRange,
                      absl::StrCat(field, " (item \"", item_id,
                                   "\") is out of range: ", accepted));
}

absl::Status CheckBloodPressure(const BloodPressure& bp,
                                const std::string& field,
                                absl::string_view item_id) {
  if (bp.systolic_mmhg < kMinSystolicMmhg ||
      bp.systolic_mmhg > kMaxSystolicMmhg) {
    return OutOfRange(absl::StrCat(field, ".blood_pressure.systolic_mmhg"),
                      item_id,
                      absl::StrCat("systolic must be ", kMinSystolicMmhg, "..",
                                   kMaxSystolicMmhg, " mmHg"));
  }
  if (bp.diastolic_mmhg < kMinDiastolicMmhg ||
      bp.diastolic_mmhg > kMaxDiastolicMmhg ||
      bp.diastolic_mmhg >= bp.systolic_mmhg) {
    return OutOfRange(
        absl::StrCat(field, ".blood_pressure.diastolic_mmhg"), item_id,
        absl::StrCat("diastolic must be ", kMinDiastolicMmhg, "..",
                     kMaxDiastolicMmhg, " mmHg and below systolic"));
  }
  if (bp.pulse_bpm != 0 &&
      (bp.pulse_bpm < kMinPulseBpm || bp.pulse_bpm > kMaxPulseBpm)) {
    return OutOfRange(
        absl::StrCat(field, ".blood_pressure.pulse_bpm"), item_id,
        absl::StrCat("pulse must be ", kMinPulseBpm, "..", kMaxPulseBpm,
                     " beats/min, or 0 when not measured"));
  }
  return absl::OkStatus();
}

absl::Status CheckValue(const InstrumentItem& item, const AnswerValue& answer,
                        const std::string& field) {
  if (!TypeMatches(item.type, answer)) {
    return InvalidField(
        field, kReasonAnswerTypeMismatch,
        absl::StrCat(field, " answers ", ItemTypeName(item.type), " item \"",
                     item.id, "\", which takes ",
                     ExpectedValueKind(item.type)));
  }
  switch (item.type) {
    case ItemType::kChoice: {
      const int value = std::get<int>(answer.value);
      const bool known = std::any_of(item.options.begin(), item.options.end(),
                                     [value](const AnswerOption& option) {
                                       return option.value == value;
                                     });
      if (!known) {
        return OutOfRange(
            field, item.id,
            absl::StrCat(
                "the value must be one of the item's options (",
                absl::StrJoin(item.options, ", ",
                              [](std::string* out, const AnswerOption& option) {
                                absl::StrAppend(out, option.value);
                              }),
                ")"));
      }
      break;
    }
    case ItemType::kInteger: {
      const int value = std::get<int>(answer.value);
      if (value < item.min_value || value > item.max_value) {
        return OutOfRange(field, item.id,
                          absl::StrCat("the value must be ", item.min_value,
                                       "..", item.max_value));
      }
      break;
    }
    case ItemType::kBloodPressure:
      return CheckBloodPressure(std::get<BloodPressure>(answer.value), field,
                                item.id);
    case ItemType::kBoolean:
      break;
  }
  return absl::OkStatus();
}

std::string DescribeCondition(const EnableWhen& when) {
  if (const bool* b = std::get_if<bool>(&when.equals)) {
    return absl::StrCat("item \"", when.item_id, "\" is answered ",
                        *b ? "yes" : "no");
  }
  return absl::StrCat("item \"", when.item_id, "\" is answered ",
                      std::get<int>(when.equals));
}

// The answers of one response, by item id, after per-answer validation.
class AnswerIndex {
 public:
  AnswerIndex(const Instrument& instrument,
              const std::vector<AnswerValue>& answers)
      : instrument_(instrument), answers_(answers) {}

  absl::Status Build() {
    for (size_t i = 0; i < answers_.size(); ++i) {
      const AnswerValue& answer = answers_[i];
      const std::string field = AnswerField(i);
      const InstrumentItem* item = instrument_.FindItem(answer.item_id);
      if (item == nullptr) {
        // The unknown id is not echoed: it is caller-supplied free text.
        return InvalidField(
            field, kReasonUnknownItem,
            absl::StrCat(field, " names an item that instrument \"",
                         instrument_.id, "\" version ", instrument_.version,
                         " does not have; use the item ids of that version"));
      }
      auto [it, inserted] = by_item_.emplace(item->id, i);
      if (!inserted) {
        return InvalidField(field, kReasonDuplicateItem,
                            absl::StrCat(field, " answers item \"", item->id,
                                         "\" again (first answered at ",
                                         AnswerField(it->second),
                                         "); send one answer per item"));
      }
      RETURN_IF_ERROR(CheckValue(*item, answer, field));
    }
    // Items refer only to earlier items (ValidateInstrument), so one pass in
    // item order settles enablement, including chains.
    for (const InstrumentItem& item : instrument_.items) {
      enabled_[item.id] = ComputeEnabled(item);
    }
    for (const InstrumentItem& item : instrument_.items) {
      if (item.required && enabled_[item.id] && !by_item_.contains(item.id)) {
        const std::string field = absl::StrCat("answers.", item.id);
        return InvalidField(
            field, kReasonAnswerRequired,
            absl::StrCat("item \"", item.id, "\" of instrument \"",
                         instrument_.id, "\" is required; answer it"));
      }
    }
    for (size_t i = 0; i < answers_.size(); ++i) {
      const InstrumentItem& item = *instrument_.FindItem(answers_[i].item_id);
      if (!enabled_[item.id]) {
        const std::string field = AnswerField(i);
        return InvalidField(field, kReasonAnswerNotEnabled,
                            absl::StrCat(field, " answers item \"", item.id,
                                         "\", which is asked only when ",
                                         DescribeCondition(*item.enable_when),
                                         "; leave it out"));
      }
    }
    return absl::OkStatus();
  }

  const AnswerValue* Find(absl::string_view item_id) const {
    auto it = by_item_.find(item_id);
    return it == by_item_.end() ? nullptr : &answers_[it->second];
  }
  std::optional<int> Int(absl::string_view item_id) const {
    const AnswerValue* answer = Find(item_id);
    if (answer == nullptr) return std::nullopt;
    const int* value = std::get_if<int>(&answer->value);
    return value ? std::optional<int>(*value) : std::nullopt;
  }
  bool Yes(absl::string_view item_id) const {
    const AnswerValue* answer = Find(item_id);
    if (answer == nullptr) return false;
    const bool* value = std::get_if<bool>(&answer->value);
    return value != nullptr && *value;
  }

 private:
  bool ComputeEnabled(const InstrumentItem& item) const {
    if (!item.enable_when) return true;
    const EnableWhen& when = *item.enable_when;
    auto controller_enabled = enabled_.find(when.item_id);
    if (controller_enabled == enabled_.end() || !controller_enabled->second) {
      return false;
    }
    const AnswerValue* answer = Find(when.item_id);
    if (answer == nullptr) return false;
    if (const bool* expected = std::get_if<bool>(&when.equals)) {
      const bool* given = std::get_if<bool>(&answer->value);
      return given != nullptr && *given == *expected;
    }
    const int* given = std::get_if<int>(&answer->value);
    return given != nullptr && *given == std::get<int>(when.equals);
  }

  const Instrument& instrument_;
  const std::vector<AnswerValue>& answers_;
  absl::flat_hash_map<std::string, size_t> by_item_;
  absl::flat_hash_map<std::string, bool> enabled_;
};

// C-SSRS screener triage (CLINICAL.md): high if Q4 or Q5 yes, or Q6 yes
// within the past 3 months; moderate if Q3 yes, or Q6 yes longer ago; low if
// Q1 or Q2 yes only.
int CssrsRiskLevel(const AnswerIndex& answers) {
  const bool behavior = answers.Yes(kCssrsBehavior);
  const bool recent = answers.Yes(kCssrsBehaviorRecent);
  if (answers.Yes(kCssrsIntent) || answers.Yes(kCssrsPlan) ||
      (behavior && recent)) {
    return kCssrsHighRisk;
  }
  if (answers.Yes(kCssrsMethod) || behavior) return kCssrsModerateRisk;
  if (answers.Yes(kCssrsWishDead) || answers.Yes(kCssrsThoughts)) {
    return kCssrsLowRisk;
  }
  return kCssrsNoRisk;
}

const BloodPressure* FindBloodPressure(const Instrument& instrument,
                                       const AnswerIndex& answers) {
  for (const InstrumentItem& item : instrument.items) {
    if (item.type != ItemType::kBloodPressure) continue;
    const AnswerValue* answer = answers.Find(item.id);
    if (answer != nullptr) return std::get_if<BloodPressure>(&answer->value);
  }
  return nullptr;
}

bool AtOrAbove(const BloodPressure& bp, int systolic, int diastolic) {
  return bp.systolic_mmhg >= systolic || bp.diastolic_mmhg >= diastolic;
}

bool RuleFires(ResponseFlag flag, const Instrument& instrument,
               const AnswerIndex& answers, const std::optional<int>& score,
               const SafetyThresholds& thresholds) {
  switch (flag) {
    case ResponseFlag::kPhq9Item9Positive:
      return answers.Int(kPhq9Item9).value_or(0) > 0;
    case ResponseFlag::kCssrsHighRisk:
      return score == kCssrsHighRisk;
    case ResponseFlag::kCssrsModerateRisk:
      return score == kCssrsModerateRisk;
    case ResponseFlag::kCssrsLowRisk:
      return score == kCssrsLowRisk;
    case ResponseFlag::kBloodPressureCrisis:
    case ResponseFlag::kBloodPressureHigh: {
      const BloodPressure* bp = FindBloodPressure(instrument, answers);
      if (bp == nullptr) return false;
      const bool crisis = AtOrAbove(*bp, thresholds.crisis_systolic_mmhg,
                                    thresholds.crisis_diastolic_mmhg);
      if (flag == ResponseFlag::kBloodPressureCrisis) return crisis;
      // Only the more severe blood-pressure flag is raised.
      const bool crisis_raised =
          crisis &&
          instrument.EvaluatesRule(ResponseFlag::kBloodPressureCrisis);
      return !crisis_raised && AtOrAbove(*bp, thresholds.high_systolic_mmhg,
                                         thresholds.high_diastolic_mmhg);
    }
    case ResponseFlag::kSideEffectSevere:
      return std::any_of(instrument.items.begin(), instrument.items.end(),
                         [&](const InstrumentItem& item) {
                           return item.scored && answers.Int(item.id).value_or(
                                                     0) >= kSevereRating;
                         });
    case ResponseFlag::kHomeSafeNotConfirmed:
      return std::any_of(instrument.items.begin(), instrument.items.end(),
                         [&](const InstrumentItem& item) {
                           if (item.type != ItemType::kBoolean) return false;
                           const AnswerValue* answer = answers.Find(item.id);
                           return answer != nullptr &&
                                  !std::get<bool>(answer->value);
                         });
  }
  return false;
}

absl::Status ThresholdError(absl::string_view field, absl::string_view what) {
  return InvalidField(field, kReasonThresholdOutOfRange,
                      absl::StrCat(field, " ", what));
}

}  // namespace

absl::Status ValidateSafetyThresholds(const SafetyThresholds& t) {
  const struct {
    absl::string_view field;
    int value;
    int min;
    int max;
  } ranges[] = {
      {"crisis_systolic_mmhg", t.crisis_systolic_mmhg, kMinSystolicMmhg,
       kMaxSystolicMmhg},
      {"crisis_diastolic_mmhg", t.crisis_diastolic_mmhg, kMinDiastolicMmhg,
       kMaxDiastolicMmhg},
      {"high_systolic_mmhg", t.high_systolic_mmhg, kMinSystolicMmhg,
       kMaxSystolicMmhg},
      {"high_diastolic_mmhg", t.high_diastolic_mmhg, kMinDiastolicMmhg,
       kMaxDiastolicMmhg},
  };
  for (const auto& range : ranges) {
    if (range.value < range.min || range.value > range.max) {
      return ThresholdError(
          range.field,
          absl::StrCat("must be ", range.min, "..", range.max, " mmHg"));
    }
  }
  if (t.crisis_diastolic_mmhg >= t.crisis_systolic_mmhg) {
    return ThresholdError("crisis_diastolic_mmhg", "must be below systolic");
  }
  if (t.high_diastolic_mmhg >= t.high_systolic_mmhg) {
    return ThresholdError("high_diastolic_mmhg", "must be below systolic");
  }
  if (t.high_systolic_mmhg > t.crisis_systolic_mmhg) {
    return ThresholdError("high_systolic_mmhg",
                          "must be at or below crisis_systolic_mmhg");
  }
  if (t.high_diastolic_mmhg > t.crisis_diastolic_mmhg) {
    return ThresholdError("high_diastolic_mmhg",
                          "must be at or below crisis_diastolic_mmhg");
  }
  return absl::OkStatus();
}

FlagPolicy PolicyFor(ResponseFlag flag) {
  switch (flag) {
    case ResponseFlag::kPhq9Item9Positive:
    case ResponseFlag::kCssrsHighRisk:
      return {Urgency::kUrgent, /*show_crisis_resources=*/true,
              /*seek_urgent_care=*/false};
    case ResponseFlag::kCssrsModerateRisk:
      return {Urgency::kNotify, true, false};
    case ResponseFlag::kCssrsLowRisk:
      return {Urgency::kNone, true, false};
    case ResponseFlag::kBloodPressureCrisis:
      return {Urgency::kUrgent, false, /*seek_urgent_care=*/true};
    case ResponseFlag::kBloodPressureHigh:
    case ResponseFlag::kSideEffectSevere:
    case ResponseFlag::kHomeSafeNotConfirmed:
      return {Urgency::kNotify, false, false};
  }
  return {};
}

absl::StatusOr<ScoredResponse> Score(const Instrument& instrument,
                                     const std::vector<AnswerValue>& answers,
                                     const SafetyThresholds& thresholds) {
  AnswerIndex index(instrument, answers);
  RETURN_IF_ERROR(index.Build());

  ScoredResponse result;
  switch (instrument.scoring_rule) {
    case ScoringRule::kSum:
    case ScoringRule::kMaxSeverity: {
      // Scored items are required and always enabled (ValidateInstrument).
      const bool sum = instrument.scoring_rule == ScoringRule::kSum;
      int score = sum ? 0 : instrument.min_score;
      for (const InstrumentItem& item : instrument.items) {
        if (!item.scored) continue;
        const int value = index.Int(item.id).value_or(0);
        score = sum ? score + value : std::max(score, value);
      }
      result.score = score;
      break;
    }
    case ScoringRule::kCssrsScreener:
      result.score = CssrsRiskLevel(index);
      break;
    case ScoringRule::kBloodPressure:
    case ScoringRule::kNone:
      break;
  }
  if (result.score) {
    if (const ScoreBand* band = instrument.FindBand(*result.score)) {
      result.band_code = band->code;
      result.band_display_name = band->display_name;
    }
  }
  for (ResponseFlag flag : instrument.safety_rules) {
    if (!RuleFires(flag, instrument, index, result.score, thresholds)) continue;
    result.flags.push_back(flag);
    const FlagPolicy policy = PolicyFor(flag);
    result.urgency = std::max(result.urgency, policy.urgency);
    result.show_crisis_resources |= policy.show_crisis_resources;
    result.seek_urgent_care |= policy.seek_urgent_care;
  }
  return result;
}

OutcomeMarkers ComputeMarkers(const Instrument& instrument, int baseline,
                              int score) {
  OutcomeMarkers markers;
  if (baseline != 0) {
    markers.change_from_baseline_percent =
        (static_cast<double>(score) - baseline) * 100.0 / baseline;
  }
  // Integer arithmetic: a drop of exactly the percentage counts.
  if (instrument.response_drop_percent > 0 && baseline > 0) {
    markers.response =
        static_cast<long long>(baseline - score) * 100 >=
        static_cast<long long>(instrument.response_drop_percent) * baseline;
  }
  if (instrument.remission_below > 0) {
    markers.remission = score < instrument.remission_below;
  }
  return markers;
}

}  // namespace careseal::followup
