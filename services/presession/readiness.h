// The pre-session readiness gate as plain domain logic (no gRPC, no storage):
// given what the service knows about a session, which items fail, in
// ReadinessReason order (proto/careseal/v1/presession.proto), and how a
// clinician override applies. The gRPC edge converts these types to
// careseal.v1.SessionReadiness; the consent verdict comes from
// ConsentService.CheckConsent (never the consent tables).
//
// Also the delivery plan: when the instructions of a session are due, from
// the tenant's configured offsets (default T-48 h and T-24 h) and reminder
// settings.
#ifndef CARESEAL_SERVICES_PRESESSION_READINESS_H_
#define CARESEAL_SERVICES_PRESESSION_READINESS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace careseal::presession {

// Values equal the proto enum numbers so the edge converts with a cast.
enum class ReadinessReason {
  kSessionNotScheduled = 1,
  kConsentMissing = 2,
  kConsentPendingSignature = 3,
  kConsentExpired = 4,
  kConsentWithdrawn = 5,
  kConsentSuperseded = 6,
  kConsentRejected = 7,
  kInstructionsNotAcknowledged = 8,
  kChecklistNotCompleted = 9,
  kFastingNotConfirmed = 10,
  kFastingSolidsNotMet = 11,
  kFastingClearLiquidsNotMet = 12,
  kEscortMissing = 13,
  kMedicationHoldsNotFollowed = 14,
  kMedicationHoldsUnsure = 15,
  kContraindicationFlagged = 16,
};

enum class Contraindication {
  kChestPain = 1,
  kHighHomeBloodPressure = 2,
  kPregnancy = 3,
  kRecentSubstanceUse = 4,
  kNewMedication = 5,
  kAcuteIllness = 6,
  kOther = 7,
};

enum class HoldsAnswer { kYes = 1, kNo = 2, kUnsure = 3 };

// ConsentService.CheckConsent's answer for the procedure at the session
// start.
enum class ConsentVerdict {
  kValid,
  kMissing,
  kPendingSignature,
  kExpired,
  kWithdrawn,
  kSuperseded,
  kRejected,
};

enum class ReadinessState { kReady = 1, kNotReady = 2, kOverridden = 3 };

// Consent items and SESSION_NOT_SCHEDULED can never be overridden.
bool IsOverridable(ReadinessReason reason);

struct Checklist {
  absl::Time last_solid_food = absl::InfinitePast();
  absl::Time last_clear_liquid = absl::InfinitePast();
  std::string escort_name{};
  std::string escort_phone{};
  HoldsAnswer holds_followed = HoldsAnswer::kUnsure;
  std::vector<Contraindication> contraindications{};
};

// The latest attestation of the session.
struct AttestationFacts {
  std::string template_version{};  // the version acknowledged
  absl::Time create_time = absl::InfinitePast();
  std::optional<Checklist> checklist{};
};

// The template's rules (defaults from CLINICAL.md: no solids for 6 h, clear
// liquids until 2 h before, an adult escort).
struct Rules {
  absl::Duration solids_cutoff = absl::Hours(6);
  absl::Duration clear_liquids_cutoff = absl::Hours(2);
  bool escort_required = true;
};

struct ReadinessInput {
  bool scheduled = true;  // false once cancelled or completed
  absl::Time start = absl::InfinitePast();
  ConsentVerdict consent = ConsentVerdict::kMissing;
  // The template version the session's instructions were delivered with.
  std::string current_template_version{};
  Rules rules{};
  std::optional<AttestationFacts> attestation{};
  // Reasons covered by the override in force (empty if none).
  std::vector<ReadinessReason> overridden{};
};

struct ReadinessIssue {
  ReadinessReason reason = ReadinessReason::kSessionNotScheduled;
  // For staff; names times and cut-offs, never checklist free text.
  std::string message{};
  std::optional<Contraindication> contraindication{};
  bool overridden = false;
};

struct Readiness {
  ReadinessState state = ReadinessState::kNotReady;
  std::vector<ReadinessIssue> issues{};  // in ReadinessReason order
};

// Every failing item, one issue each (one per contraindication flagged).
// Without an attestation of the current template version only
// INSTRUCTIONS_NOT_ACKNOWLEDGED is reported for the patient's part; without a
// checklist only CHECKLIST_NOT_COMPLETED. A checklist answered before
// start - solids_cutoff cannot exclude later eating: FASTING_NOT_CONFIRMED
// instead of the fasting comparisons. State: READY with no issues; OVERRIDDEN
// if every issue is overridable and covered by `overridden`; else NOT_READY.
Readiness EvaluateReadiness(const ReadinessInput& input);

// Checks an override request against the current evaluation: each reason
// must be failing now (INVALID_ARGUMENT REASON_NOT_FAILING, field
// "overridden_reasons") and overridable (FAILED_PRECONDITION
// NOT_OVERRIDABLE); at least one reason (INVALID_ARGUMENT FIELD_REQUIRED).
absl::Status ValidateOverride(const Readiness& current,
                              const std::vector<ReadinessReason>& reasons);

// When the instructions (and reminders) of a session are due.
struct DeliverySettings {
  // Before the start; default T-48 h and T-24 h (DESIGN.md).
  std::vector<absl::Duration> offsets = {absl::Hours(48), absl::Hours(24)};
  // Remind this long after a delivery while unacknowledged; 0 disables.
  absl::Duration reminder_after = absl::Hours(12);
  int max_reminders = 2;
};

struct PlannedDelivery {
  absl::Duration offset;  // before the start
  absl::Time due;
};

// One delivery per offset, earliest first. An offset already past at `now`
// (a session booked or moved at short notice) is delivered at once, but
// several past offsets collapse into one delivery at `now`. None for a start
// at or before `now`.
std::vector<PlannedDelivery> PlanDeliveries(const DeliverySettings& settings,
                                            absl::Time start, absl::Time now);

// When the `n`-th reminder (1-based) after a delivery at `delivered` is due,
// or nullopt if reminders are off, n exceeds max_reminders, or the reminder
// would fall at or after the session start.
std::optional<absl::Time> ReminderDue(const DeliverySettings& settings,
                                      absl::Time delivered, int n,
                                      absl::Time start);

}  // namespace careseal::presession

#endif  // CARESEAL_SERVICES_PRESESSION_READINESS_H_
