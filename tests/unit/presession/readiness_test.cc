#include "services/presession/readiness.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/status.h"

namespace careseal::presession {
namespace {

const absl::Time kStart =
    absl::FromUnixSeconds(1767254400);  // 2026-01-01 08:00

// Everything in order: consent valid, current instructions acknowledged on
// the morning, fasted 8 h from solids and 3 h from clear liquids, escort
// given, holds followed, nothing flagged.
ReadinessInput Clean() {
  ReadinessInput in;
  in.scheduled = true;
  in.start = kStart;
  in.consent = ConsentVerdict::kValid;
  in.current_template_version = "tenants/t1/instructionTemplates/iv/versions/2";
  in.rules = Rules{};
  Checklist c;
  c.last_solid_food = kStart - absl::Hours(8);
  c.last_clear_liquid = kStart - absl::Hours(3);
  c.escort_name = "Escort Person";
  c.escort_phone = "+15555550123";
  c.holds_followed = HoldsAnswer::kYes;
  in.attestation =
      AttestationFacts{.template_version = in.current_template_version,
                       .create_time = kStart - absl::Hours(2),
                       .checklist = c};
  return in;
}

std::vector<ReadinessReason> Reasons(const Readiness& r) {
  std::vector<ReadinessReason> out;
  for (const auto& issue : r.issues) out.push_back(issue.reason);
  return out;
}

TEST(ReadinessTest, AllCleanIsReady) {
  Readiness r = EvaluateReadiness(Clean());
  EXPECT_EQ(r.state, ReadinessState::kReady);
  EXPECT_TRUE(r.issues.empty());
}

TEST(ReadinessTest, FastingExactlyAtTheCutOffPasses) {
  ReadinessInput in = Clean();
  in.attestation->checklist->last_solid_food = kStart - absl::Hours(6);
  in.attestation->checklist->last_clear_liquid = kStart - absl::Hours(2);
  EXPECT_EQ(EvaluateReadiness(in).state, ReadinessState::kReady);
}

struct Case {
  std::string name;
  void (*mutate)(ReadinessInput&);
  ReadinessReason expected;
};

// Each failing item alone gives NOT_READY with exactly that reason.
TEST(ReadinessTest, EachFailingItemAloneGivesExactlyItsReason) {
  const std::vector<Case> cases = {
      {"cancelled", [](ReadinessInput& in) { in.scheduled = false; },
       ReadinessReason::kSessionNotScheduled},
      {"no consent",
       [](ReadinessInput& in) { in.consent = ConsentVerdict::kMissing; },
       ReadinessReason::kConsentMissing},
      {"consent unsigned",
       [](ReadinessInput& in) {
         in.consent = ConsentVerdict::kPendingSignature;
       },
       ReadinessReason::kConsentPendingSignature},
      {"consent expired",
       [](ReadinessInput& in) { in.consent = ConsentVerdict::kExpired; },
       ReadinessReason::kConsentExpired},
      {"consent withdrawn",
       [](ReadinessInput& in) { in.consent = ConsentVerdict::kWithdrawn; },
       ReadinessReason::kConsentWithdrawn},
      {"consent superseded",
       [](ReadinessInput& in) { in.consent = ConsentVerdict::kSuperseded; },
       ReadinessReason::kConsentSuperseded},
      {"consent rejected",
       [](ReadinessInput& in) { in.consent = ConsentVerdict::kRejected; },
       ReadinessReason::kConsentRejected},
      {"no attestation", [](ReadinessInput& in) { in.attestation.reset(); },
       ReadinessReason::kInstructionsNotAcknowledged},
      {"old version acknowledged",
       [](ReadinessInput& in) {
         in.attestation->template_version =
             "tenants/t1/instructionTemplates/iv/versions/1";
       },
       ReadinessReason::kInstructionsNotAcknowledged},
      {"no checklist",
       [](ReadinessInput& in) { in.attestation->checklist.reset(); },
       ReadinessReason::kChecklistNotCompleted},
      {"answered too early",
       [](ReadinessInput& in) {
         in.attestation->create_time = kStart - absl::Hours(7);
       },
       ReadinessReason::kFastingNotConfirmed},
      {"ate 4 h before",
       [](ReadinessInput& in) {
         in.attestation->checklist->last_solid_food = kStart - absl::Hours(4);
       },
       ReadinessReason::kFastingSolidsNotMet},
      {"drank 1 h before",
       [](ReadinessInput& in) {
         in.attestation->checklist->last_clear_liquid = kStart - absl::Hours(1);
       },
       ReadinessReason::kFastingClearLiquidsNotMet},
      {"no escort",
       [](ReadinessInput& in) {
         in.attestation->checklist->escort_name.clear();
         in.attestation->checklist->escort_phone.clear();
       },
       ReadinessReason::kEscortMissing},
      {"escort without phone",
       [](ReadinessInput& in) {
         in.attestation->checklist->escort_phone.clear();
       },
       ReadinessReason::kEscortMissing},
      {"holds not followed",
       [](ReadinessInput& in) {
         in.attestation->checklist->holds_followed = HoldsAnswer::kNo;
       },
       ReadinessReason::kMedicationHoldsNotFollowed},
      {"holds unsure",
       [](ReadinessInput& in) {
         in.attestation->checklist->holds_followed = HoldsAnswer::kUnsure;
       },
       ReadinessReason::kMedicationHoldsUnsure},
      {"chest pain",
       [](ReadinessInput& in) {
         in.attestation->checklist->contraindications = {
             Contraindication::kChestPain};
       },
       ReadinessReason::kContraindicationFlagged},
      {"pregnancy",
       [](ReadinessInput& in) {
         in.attestation->checklist->contraindications = {
             Contraindication::kPregnancy};
       },
       ReadinessReason::kContraindicationFlagged},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ReadinessInput in = Clean();
    c.mutate(in);
    Readiness r = EvaluateReadiness(in);
    EXPECT_EQ(r.state, ReadinessState::kNotReady);
    EXPECT_EQ(Reasons(r), std::vector<ReadinessReason>{c.expected});
    EXPECT_FALSE(r.issues[0].message.empty());
  }
}

TEST(ReadinessTest, EscortNotRequiredByTemplate) {
  ReadinessInput in = Clean();
  in.rules.escort_required = false;
  in.attestation->checklist->escort_name.clear();
  in.attestation->checklist->escort_phone.clear();
  EXPECT_EQ(EvaluateReadiness(in).state, ReadinessState::kReady);
}

TEST(ReadinessTest, TemplateCutOffsDecideFasting) {
  ReadinessInput in = Clean();
  in.attestation->checklist->last_solid_food = kStart - absl::Hours(5);
  EXPECT_EQ(EvaluateReadiness(in).state, ReadinessState::kNotReady);
  in.rules.solids_cutoff = absl::Hours(4);  // a clinic using 4 h / 2 h
  EXPECT_EQ(EvaluateReadiness(in).state, ReadinessState::kReady);
}

TEST(ReadinessTest, OneIssuePerFlagAndReasonOrder) {
  ReadinessInput in = Clean();
  in.consent = ConsentVerdict::kExpired;
  in.attestation->checklist->holds_followed = HoldsAnswer::kNo;
  in.attestation->checklist->contraindications = {Contraindication::kPregnancy,
                                                  Contraindication::kChestPain};
  in.attestation->checklist->last_solid_food = kStart - absl::Hours(1);
  Readiness r = EvaluateReadiness(in);
  EXPECT_EQ(Reasons(r), (std::vector<ReadinessReason>{
                            ReadinessReason::kConsentExpired,
                            ReadinessReason::kFastingSolidsNotMet,
                            ReadinessReason::kMedicationHoldsNotFollowed,
                            ReadinessReason::kContraindicationFlagged,
                            ReadinessReason::kContraindicationFlagged}));
  EXPECT_EQ(r.issues[3].contraindication, Contraindication::kChestPain);
  EXPECT_EQ(r.issues[4].contraindication, Contraindication::kPregnancy);
}

TEST(ReadinessTest, OverrideCoversOnlyNamedOverridableReasons) {
  ReadinessInput in = Clean();
  in.attestation->checklist->holds_followed = HoldsAnswer::kUnsure;
  Readiness before = EvaluateReadiness(in);
  ASSERT_TRUE(
      ValidateOverride(before, {ReadinessReason::kMedicationHoldsUnsure}).ok());
  in.overridden = {ReadinessReason::kMedicationHoldsUnsure};
  Readiness r = EvaluateReadiness(in);
  EXPECT_EQ(r.state, ReadinessState::kOverridden);
  ASSERT_EQ(r.issues.size(), 1u);
  EXPECT_TRUE(r.issues[0].overridden);

  // A new failing item makes the session NOT_READY again.
  in.attestation->checklist->escort_phone.clear();
  r = EvaluateReadiness(in);
  EXPECT_EQ(r.state, ReadinessState::kNotReady);
  ASSERT_EQ(Reasons(r), (std::vector<ReadinessReason>{
                            ReadinessReason::kEscortMissing,
                            ReadinessReason::kMedicationHoldsUnsure}));
  EXPECT_FALSE(r.issues[0].overridden);
  EXPECT_TRUE(r.issues[1].overridden);

  // Consent cannot be overridden, even if listed.
  in = Clean();
  in.consent = ConsentVerdict::kWithdrawn;
  in.overridden = {ReadinessReason::kConsentWithdrawn};
  r = EvaluateReadiness(in);
  EXPECT_EQ(r.state, ReadinessState::kNotReady);
  absl::Status s = ValidateOverride(r, {ReadinessReason::kConsentWithdrawn});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(s), "NOT_OVERRIDABLE");
  s = ValidateOverride(r, {ReadinessReason::kEscortMissing});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(s), "REASON_NOT_FAILING");
  EXPECT_EQ(ErrorReason(ValidateOverride(r, {})), "FIELD_REQUIRED");
}

TEST(DeliveryPlanTest, DefaultOffsetsAndReminders) {
  DeliverySettings settings;  // T-48 h, T-24 h; remind after 12 h, twice
  const absl::Time now = kStart - absl::Hours(24 * 7);
  auto plan = PlanDeliveries(settings, kStart, now);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].due, kStart - absl::Hours(48));
  EXPECT_EQ(plan[1].due, kStart - absl::Hours(24));
  EXPECT_EQ(ReminderDue(settings, plan[1].due, 1, kStart),
            kStart - absl::Hours(12));
  // The second reminder would fall on the start: none.
  EXPECT_EQ(ReminderDue(settings, plan[1].due, 2, kStart), std::nullopt);
  EXPECT_EQ(ReminderDue(settings, plan[0].due, 3, kStart), std::nullopt);
  settings.reminder_after = absl::ZeroDuration();
  EXPECT_EQ(ReminderDue(settings, plan[0].due, 1, kStart), std::nullopt);
}

TEST(DeliveryPlanTest, ShortNoticeDeliversOnceNow) {
  DeliverySettings settings;
  const absl::Time now = kStart - absl::Hours(30);  // T-48 h already past
  auto plan = PlanDeliveries(settings, kStart, now);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].due, now);
  EXPECT_EQ(plan[1].due, kStart - absl::Hours(24));
  plan = PlanDeliveries(settings, kStart, kStart - absl::Hours(3));
  ASSERT_EQ(plan.size(), 1u);  // both past: one delivery now
  EXPECT_EQ(plan[0].due, kStart - absl::Hours(3));
  EXPECT_TRUE(PlanDeliveries(settings, kStart, kStart).empty());
}

}  // namespace
}  // namespace careseal::presession
