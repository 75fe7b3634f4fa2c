// Questionnaire definitions ("instruments") as plain data: PHQ-9, GAD-7, the
// post-infusion side-effect checklist, home blood pressure, the C-SSRS
// screener and the "home safe" check. An instrument is a versioned definition
// (items, answer options, scoring rule, severity bands, safety rules), read
// from JSON and checked by ValidateInstrument(); nothing here is code per form.
//
// This is the domain model behind careseal.v1.Instrument (followup.proto);
// the gRPC edge converts. No gRPC or protobuf here.
//
// Thread-safety: the types are plain values; const access is thread-safe.
#ifndef CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_INSTRUMENT_H_
#define CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_INSTRUMENT_H_

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace careseal::followup {

// Reason of every error about a malformed definition (INVALID_ARGUMENT).
inline constexpr absl::string_view kReasonInvalidInstrument =
    "INVALID_INSTRUMENT_DEFINITION";

// Answer type of an item (ItemType in followup.proto).
enum class ItemType {
  // A whole number in [min_value, max_value].
  kInteger,
  // One of the item's options, answered by its value (e.g. PHQ-9 0..3).
  kChoice,
  // Yes/no (e.g. C-SSRS questions).
  kBoolean,
  // Systolic/diastolic mmHg and optional pulse.
  kBloodPressure,
};

// Server-side scoring rule (Instrument.scoring_rule).
enum class ScoringRule {
  // Sum of the scored items (PHQ-9, GAD-7).
  kSum,
  // C-SSRS screener risk level: 0 none, 1 low, 2 moderate, 3 high.
  kCssrsScreener,
  // No score; the reading is checked against SafetyThresholds.
  kBloodPressure,
  // Highest value among the scored items (side-effect checklist).
  kMaxSeverity,
  // No score (home-safe check).
  kNone,
};

// A safety or clinical flag computed from a response (ResponseFlag in
// followup.proto). Instrument::safety_rules names the ones it evaluates.
enum class ResponseFlag {
  // PHQ-9 item 9 > 0, whatever the total.
  kPhq9Item9Positive,
  // C-SSRS Q4 or Q5 yes, or Q6 yes within the past 3 months.
  kCssrsHighRisk,
  // C-SSRS Q3 yes, or Q6 yes longer ago.
  kCssrsModerateRisk,
  // C-SSRS Q1 or Q2 yes only.
  kCssrsLowRisk,
  // Home reading at or above SafetyThresholds' crisis values (180/120).
  kBloodPressureCrisis,
  // Home reading at or above SafetyThresholds' high values (160/100).
  kBloodPressureHigh,
  // Any side effect rated severe.
  kSideEffectSevere,
  // "Did you get home safely?" or "Is an adult with you?" answered no.
  kHomeSafeNotConfirmed,
};

// Stable UPPER_SNAKE names: "SUM", "CHOICE", "PHQ9_ITEM9_POSITIVE", ...
absl::string_view ItemTypeName(ItemType type);
absl::string_view ScoringRuleName(ScoringRule rule);
absl::string_view ResponseFlagName(ResponseFlag flag);
std::optional<ItemType> ParseItemType(absl::string_view name);
std::optional<ScoringRule> ParseScoringRule(absl::string_view name);
std::optional<ResponseFlag> ParseResponseFlag(absl::string_view name);

// Item ids that safety and scoring rules read; a definition using the rule
// must contain them (ValidateInstrument checks).
inline constexpr absl::string_view kPhq9Item9 = "phq9_9";
inline constexpr absl::string_view kCssrsWishDead = "cssrs_1";
inline constexpr absl::string_view kCssrsThoughts = "cssrs_2";
inline constexpr absl::string_view kCssrsMethod = "cssrs_3";
inline constexpr absl::string_view kCssrsIntent = "cssrs_4";
inline constexpr absl::string_view kCssrsPlan = "cssrs_5";
inline constexpr absl::string_view kCssrsBehavior = "cssrs_6";
inline constexpr absl::string_view kCssrsBehaviorRecent = "cssrs_6_recent";
// The side-effect rating that is "severe" (none 0, mild 1, moderate 2).
inline constexpr int kSevereRating = 3;

struct AnswerOption {
  // The scored value, e.g. 0..3.
  int value = 0;
  // The published label, e.g. "Not at all".
  std::string label;
};

// Show (and require) an item only when an earlier item's answer equals a
// value, e.g. C-SSRS Q3-Q5 only if Q2 is yes. int for CHOICE/INTEGER
// controllers, bool for BOOLEAN ones.
struct EnableWhen {
  std::string item_id;
  std::variant<int, bool> equals;
};

struct InstrumentItem {
  // Stable within the instrument, [a-z0-9_]{1,64}, e.g. "phq9_9".
  std::string id;
  // The published wording, verbatim.
  std::string text;
  ItemType type = ItemType::kChoice;
  // kChoice only, in display order; values unique.
  std::vector<AnswerOption> options;
  // kInteger only: inclusive range and unit (e.g. "beats/min").
  int min_value = 0;
  int max_value = 0;
  std::string unit;
  // Must be answered when enabled.
  bool required = true;
  // Counts toward the score.
  bool scored = false;
  // LOINC code of the item; empty if none.
  std::string loinc_code;
  // Unset: always enabled.
  std::optional<EnableWhen> enable_when;
};

// A band of a scored instrument, e.g. PHQ-9 10-14 "moderate". Inclusive.
struct ScoreBand {
  int min_score = 0;
  int max_score = 0;
  // Stable code, e.g. "moderately_severe"; and its display name.
  std::string code;
  std::string display_name;
};

struct Instrument {
  // E.g. "phq-9", "gad-7", "side-effects", "blood-pressure",
  // "cssrs-screener", "home-safe"; [a-z0-9-]{1,64}.
  std::string id;
  // 1, 2, ...; responses record the version answered.
  int version = 0;
  std::string display_name;
  // The published preamble, e.g. "Over the last 2 weeks, ...".
  std::string preamble;
  // LOINC panel and total-score codes; empty if none.
  std::string loinc_panel_code;
  std::string loinc_total_code;
  // In display order.
  std::vector<InstrumentItem> items;
  ScoringRule scoring_rule = ScoringRule::kNone;
  // Score range; both 0 when there is no score (kBloodPressure, kNone).
  int min_score = 0;
  int max_score = 0;
  // Ascending, covering [min_score, max_score] without gap or overlap; empty
  // when there is no score.
  std::vector<ScoreBand> bands;
  // The flags this instrument's responses are checked for.
  std::vector<ResponseFlag> safety_rules;
  // Response marker: score dropped by at least this percent from baseline;
  // 0: none. Remission marker: score below this; 0: none.
  int response_drop_percent = 0;
  int remission_below = 0;
  // Source and permission to reproduce.
  std::string attribution;

  // The item with this id, or nullptr.
  const InstrumentItem* FindItem(absl::string_view item_id) const;
  // The band containing score, or nullptr.
  const ScoreBand* FindBand(int score) const;
  bool HasScore() const {
    return scoring_rule != ScoringRule::kBloodPressure &&
           scoring_rule != ScoringRule::kNone;
  }
  bool EvaluatesRule(ResponseFlag flag) const;
};

// Parses one definition from JSON (the format of builtin_definitions.cc):
// unknown keys, wrong types and unknown enum names are rejected. Also runs
// ValidateInstrument(). Errors: INVALID_ARGUMENT
// (INVALID_INSTRUMENT_DEFINITION) naming the JSON path at fault.
absl::StatusOr<Instrument> ParseInstrumentJson(absl::string_view json);

// Checks that a definition is well-formed: ids unique and well-spelled;
// options present and unique for kChoice only; enable_when refers to an
// earlier item with a matching value type; the scoring rule's items exist and
// its score range matches the items; bands cover [min_score, max_score]
// without gap or overlap; each safety rule's items exist; markers in range.
// Errors: INVALID_ARGUMENT (INVALID_INSTRUMENT_DEFINITION).
absl::Status ValidateInstrument(const Instrument& instrument);

}  // namespace careseal::followup

#endif  // CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_INSTRUMENT_H_
