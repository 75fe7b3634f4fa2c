// Server-side validation and scoring of one response to an instrument, and
// the safety flags it raises. Pure functions: no clock, no storage, no I/O.
//
// The caller (the follow-up service) stores the response and, in the same
// request, raises an escalation for every flag whose urgency is not kNone and
// shows crisis resources when ScoredResponse says so (crisis_resources.h).
#ifndef CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_SCORING_H_
#define CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_SCORING_H_

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/followup/instruments/instrument.h"

namespace careseal::followup {

// Reasons of the INVALID_ARGUMENT errors of Score(), as documented on
// FollowUpService.SubmitResponse in followup.proto. The error's field is
// "answers[<i>]" (or "answers[<i>].blood_pressure.<part>") for a bad answer,
// "answers.<item_id>" for a missing one. Messages never contain the answer.
inline constexpr absl::string_view kReasonUnknownItem = "UNKNOWN_ITEM";
inline constexpr absl::string_view kReasonDuplicateItem = "DUPLICATE_ITEM";
inline constexpr absl::string_view kReasonAnswerRequired = "ANSWER_REQUIRED";
inline constexpr absl::string_view kReasonAnswerOutOfRange =
    "ANSWER_OUT_OF_RANGE";
inline constexpr absl::string_view kReasonAnswerTypeMismatch =
    "ANSWER_TYPE_MISMATCH";
inline constexpr absl::string_view kReasonAnswerNotEnabled =
    "ANSWER_NOT_ENABLED";
// Reason of ValidateSafetyThresholds() errors.
inline constexpr absl::string_view kReasonThresholdOutOfRange =
    "THRESHOLD_OUT_OF_RANGE";

// Accepted home blood-pressure readings (BloodPressure in followup.proto).
inline constexpr int kMinSystolicMmhg = 50;
inline constexpr int kMaxSystolicMmhg = 300;
inline constexpr int kMinDiastolicMmhg = 30;
inline constexpr int kMaxDiastolicMmhg = 200;
inline constexpr int kMinPulseBpm = 20;
inline constexpr int kMaxPulseBpm = 250;

struct BloodPressure {
  // 50..300 mmHg.
  int systolic_mmhg = 0;
  // 30..200 mmHg and below systolic.
  int diastolic_mmhg = 0;
  // 20..250 beats/min; 0: not measured.
  int pulse_bpm = 0;
};

// One answer: int for CHOICE (the option's value) and INTEGER items, bool for
// BOOLEAN items, BloodPressure for BLOOD_PRESSURE items.
struct AnswerValue {
  std::string item_id;
  std::variant<int, bool, BloodPressure> value;
};

// Per-tenant blood-pressure thresholds; a reading at or above either value of
// a pair raises the flag. Defaults follow /work/shared/CLINICAL.md.
struct SafetyThresholds {
  // BLOOD_PRESSURE_CRISIS (urgent; "seek urgent care"). Default 180/120 mmHg:
  // CLINICAL.md "Home blood pressure" (hypertensive crisis range: escalate
  // at once and tell the patient to seek urgent care).
  int crisis_systolic_mmhg = 180;
  int crisis_diastolic_mmhg = 120;
  // BLOOD_PRESSURE_HIGH (the care team is notified). Default 160/100 mmHg:
  // CLINICAL.md "Pre-session instructions", the pre-infusion hold threshold
  // at which a clinician must review before the next infusion.
  int high_systolic_mmhg = 160;
  int high_diastolic_mmhg = 100;
};

// Checks tenant-supplied thresholds: each within the accepted reading range,
// diastolic below systolic, and high at or below crisis.
// Errors: INVALID_ARGUMENT (THRESHOLD_OUT_OF_RANGE) naming the field.
absl::Status ValidateSafetyThresholds(const SafetyThresholds& thresholds);

// How fast the care team must act on a flag (EscalationPriority).
enum class Urgency {
  // No escalation (the response is stored and visible as usual).
  kNone = 0,
  // Routine: an item in the care team's queue; no re-escalation.
  kNotify = 1,
  // Immediate: must be acknowledged by the deadline or it re-escalates.
  kUrgent = 2,
};

// What one flag calls for.
struct FlagPolicy {
  Urgency urgency = Urgency::kNone;
  // Show 988/911 at once on the screen where the answer was given.
  bool show_crisis_resources = false;
  // Tell the patient to seek urgent care (call 911 / emergency department).
  bool seek_urgent_care = false;
};

// PHQ9_ITEM9_POSITIVE, CSSRS_HIGH_RISK: urgent + crisis resources.
// CSSRS_MODERATE_RISK: notify + crisis resources. CSSRS_LOW_RISK: crisis
// resources. BLOOD_PRESSURE_CRISIS: urgent + seek urgent care.
// BLOOD_PRESSURE_HIGH, SIDE_EFFECT_SEVERE, HOME_SAFE_NOT_CONFIRMED: notify.
FlagPolicy PolicyFor(ResponseFlag flag);

struct ScoredResponse {
  // Unset for instruments without a score (blood pressure, home safe).
  std::optional<int> score;
  // The band's code and display name; empty when there is no score.
  std::string band_code;
  std::string band_display_name;
  // In the order of Instrument::safety_rules; at most one C-SSRS risk flag
  // and at most one blood-pressure flag (the most severe).
  std::vector<ResponseFlag> flags;
  // The highest urgency among the flags.
  Urgency urgency = Urgency::kNone;
  bool show_crisis_resources = false;
  bool seek_urgent_care = false;

  // True when an urgent escalation must be raised now.
  bool escalate() const { return urgency == Urgency::kUrgent; }
};

// Validates answers against the definition and scores them.
//
// Every enabled required item must be answered exactly once; no unknown items;
// no answers to items not enabled (enable_when is evaluated on the answers
// given); values of the item's type and range (CHOICE among its options,
// INTEGER in [min_value, max_value], BloodPressure in the ranges above).
// Errors are checked in this order: per answer in order (UNKNOWN_ITEM,
// DUPLICATE_ITEM, ANSWER_TYPE_MISMATCH, ANSWER_OUT_OF_RANGE), then
// ANSWER_REQUIRED in item order, then ANSWER_NOT_ENABLED in answer order; the
// first one found is returned as INVALID_ARGUMENT.
//
// REQUIRES: ValidateInstrument(instrument).ok() (true of BuiltInInstruments).
absl::StatusOr<ScoredResponse> Score(const Instrument& instrument,
                                     const std::vector<AnswerValue>& answers,
                                     const SafetyThresholds& thresholds = {});

// Response/remission markers of one score against the patient's baseline.
struct OutcomeMarkers {
  // Score dropped by at least Instrument::response_drop_percent from a
  // non-zero baseline.
  bool response = false;
  // Score below Instrument::remission_below.
  bool remission = false;
  // (score - baseline) / baseline * 100; negative is improvement for PHQ-9 and
  // GAD-7. Unset when the baseline is 0.
  std::optional<double> change_from_baseline_percent;
};

// REQUIRES: instrument.HasScore().
OutcomeMarkers ComputeMarkers(const Instrument& instrument, int baseline,
                              int score);

}  // namespace careseal::followup

#endif  // CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_SCORING_H_
