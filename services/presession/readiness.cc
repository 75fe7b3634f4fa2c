#include "services/presession/readiness.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/common/status.h"

namespace careseal::presession {
namespace {

std::string Hours(absl::Duration d) {
  return absl::StrFormat("%.1fh", absl::ToDoubleHours(d));
}

std::optional<ReadinessReason> ConsentReason(ConsentVerdict verdict) {
  switch (verdict) {
    case ConsentVerdict::kValid:
      return std::nullopt;
    case ConsentVerdict::kMissing:
      return ReadinessReason::kConsentMissing;
    case ConsentVerdict::kPendingSignature:
      return ReadinessReason::kConsentPendingSignature;
    case ConsentVerdict::kExpired:
      return ReadinessReason::kConsentExpired;
    case ConsentVerdict::kWithdrawn:
      return ReadinessReason::kConsentWithdrawn;
    case ConsentVerdict::kSuperseded:
      return ReadinessReason::kConsentSuperseded;
    case ConsentVerdict::kRejected:
      return ReadinessReason::kConsentRejected;
  }
  return ReadinessReason::kConsentMissing;
}

void Add(std::vector<ReadinessIssue>& issues, ReadinessReason reason,
         std::string message,
         std::optional<Contraindication> flag = std::nullopt) {
  issues.push_back({.reason = reason,
                    .message = std::move(message),
                    .contraindication = flag,
                    .overridden = false});
}

void CheckChecklist(const ReadinessInput& in, const AttestationFacts& att,
                    std::vector<ReadinessIssue>& issues) {
  if (!att.checklist.has_value()) {
    Add(issues, ReadinessReason::kChecklistNotCompleted,
        "The instructions were acknowledged but the day-of checklist was not "
        "answered.");
    return;
  }
  const Checklist& c = *att.checklist;
  const absl::Time solids_limit = in.start - in.rules.solids_cutoff;
  const absl::Time liquids_limit = in.start - in.rules.clear_liquids_cutoff;
  if (att.create_time < solids_limit) {
    Add(issues, ReadinessReason::kFastingNotConfirmed,
        absl::StrCat("The checklist was answered more than ",
                     Hours(in.rules.solids_cutoff),
                     " before the start; fasting after it is not confirmed."));
  } else {
    if (c.last_solid_food > solids_limit) {
      Add(issues, ReadinessReason::kFastingSolidsNotMet,
          absl::StrCat("Last solid food ", Hours(in.start - c.last_solid_food),
                       " before start; cut-off is ",
                       Hours(in.rules.solids_cutoff), "."));
    }
    if (c.last_clear_liquid > liquids_limit) {
      Add(issues, ReadinessReason::kFastingClearLiquidsNotMet,
          absl::StrCat("Last clear liquid ",
                       Hours(in.start - c.last_clear_liquid),
                       " before start; cut-off is ",
                       Hours(in.rules.clear_liquids_cutoff), "."));
    }
  }
  if (in.rules.escort_required &&
      (c.escort_name.empty() || c.escort_phone.empty())) {
    Add(issues, ReadinessReason::kEscortMissing,
        "An adult escort (name and phone) is required to take the patient "
        "home.");
  }
  if (c.holds_followed == HoldsAnswer::kNo) {
    Add(issues, ReadinessReason::kMedicationHoldsNotFollowed,
        "The patient reports the medication instructions were not followed.");
  } else if (c.holds_followed == HoldsAnswer::kUnsure) {
    Add(issues, ReadinessReason::kMedicationHoldsUnsure,
        "The patient is unsure whether the medication instructions were "
        "followed.");
  }
  std::vector<Contraindication> flags = c.contraindications;
  std::sort(flags.begin(), flags.end());
  flags.erase(std::unique(flags.begin(), flags.end()), flags.end());
  for (Contraindication flag : flags) {
    Add(issues, ReadinessReason::kContraindicationFlagged,
        "The patient flagged a contraindication; clinician review needed.",
        flag);
  }
}

}  // namespace

bool IsOverridable(ReadinessReason reason) {
  return static_cast<int>(reason) >=
         static_cast<int>(ReadinessReason::kInstructionsNotAcknowledged);
}

Readiness EvaluateReadiness(const ReadinessInput& in) {
  Readiness out;
  std::vector<ReadinessIssue>& issues = out.issues;
  if (!in.scheduled) {
    Add(issues, ReadinessReason::kSessionNotScheduled,
        "The session is cancelled or completed.");
  }
  if (std::optional<ReadinessReason> r = ConsentReason(in.consent)) {
    Add(issues, *r,
        "No consent for the procedure is in force at the session start.");
  }
  if (!in.attestation.has_value() ||
      in.attestation->template_version != in.current_template_version) {
    Add(issues, ReadinessReason::kInstructionsNotAcknowledged,
        "The current instructions have not been acknowledged.");
  } else {
    CheckChecklist(in, *in.attestation, issues);
  }
  // Stable: contraindication issues keep their flag order.
  std::stable_sort(issues.begin(), issues.end(),
                   [](const ReadinessIssue& a, const ReadinessIssue& b) {
                     return a.reason < b.reason;
                   });
  if (issues.empty()) {
    out.state = ReadinessState::kReady;
    return out;
  }
  bool all_covered = true;
  for (ReadinessIssue& issue : issues) {
    issue.overridden = IsOverridable(issue.reason) &&
                       std::find(in.overridden.begin(), in.overridden.end(),
                                 issue.reason) != in.overridden.end();
    all_covered = all_covered && issue.overridden;
  }
  out.state =
      all_covered ? ReadinessState::kOverridden : ReadinessState::kNotReady;
  return out;
}

absl::Status ValidateOverride(const Readiness& current,
                              const std::vector<ReadinessReason>& reasons) {
  if (reasons.empty()) {
    return InvalidField("overridden_reasons", "FIELD_REQUIRED",
                        "name at least one failing readiness reason");
  }
  for (ReadinessReason reason : reasons) {
    if (!IsOverridable(reason)) {
      return FailedPrecondition(
          "NOT_OVERRIDABLE",
          "consent items and a session that is not scheduled cannot be "
          "overridden");
    }
    const bool failing = std::any_of(
        current.issues.begin(), current.issues.end(),
        [&](const ReadinessIssue& i) { return i.reason == reason; });
    if (!failing) {
      return InvalidField("overridden_reasons", "REASON_NOT_FAILING",
                          "only reasons failing now can be overridden");
    }
  }
  return absl::OkStatus();
}

std::vector<PlannedDelivery> PlanDeliveries(const DeliverySettings& settings,
                                            absl::Time start, absl::Time now) {
  std::vector<PlannedDelivery> plan;
  if (start <= now) return plan;
  std::vector<absl::Duration> offsets = settings.offsets;
  std::sort(offsets.begin(), offsets.end(), std::greater<>());
  bool past_added = false;
  for (absl::Duration offset : offsets) {
    const absl::Time due = start - offset;
    if (due <= now) {
      // Several offsets already past: one delivery now, at the latest one.
      if (past_added) plan.pop_back();
      plan.push_back({offset, now});
      past_added = true;
    } else {
      plan.push_back({offset, due});
    }
  }
  return plan;
}

std::optional<absl::Time> ReminderDue(const DeliverySettings& settings,
                                      absl::Time delivered, int n,
                                      absl::Time start) {
  if (settings.reminder_after <= absl::ZeroDuration() || n < 1 ||
      n > settings.max_reminders) {
    return std::nullopt;
  }
  const absl::Time due = delivered + settings.reminder_after * n;
  if (due >= start) return std::nullopt;
  return due;
}

}  // namespace careseal::presession
