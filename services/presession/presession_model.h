// The pre-session service's records as plain structs (no gRPC, no protobuf).
// Enum values equal the numbers of proto/careseal/v1/presession.proto so the
// edge converts with a cast.
#ifndef CARESEAL_SERVICES_PRESESSION_PRESESSION_MODEL_H_
#define CARESEAL_SERVICES_PRESESSION_PRESESSION_MODEL_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/common/platform/principal.h"
#include "services/presession/readiness.h"

namespace careseal::presession {

enum class SessionKind { kInduction = 1, kMaintenance = 2, kOther = 3 };
enum class SessionState { kScheduled = 1, kCompleted = 2, kCancelled = 3 };
enum class SeriesState { kActive = 1, kCancelled = 2 };
enum class DeliveryKind { kInstructions = 1, kReminder = 2 };
enum class DeliveryState {
  kScheduled = 1,
  kDelivered = 2,
  kCancelled = 3,
  kFailed = 4
};

struct Actor {
  std::string name;  // tenants/{t}/clinicians/{c}, a peer, or "system"
  Role role = Role::kSystem;
  std::string peer;
};

// Per-tenant settings (defaults when the tenant never changed them).
struct Settings {
  std::string tenant;
  DeliverySettings delivery{};
  std::string default_template{};  // tenants/{t}/instructionTemplates/{it}
  std::optional<absl::Time> update_time{};
  std::string Name() const;
};

struct MedicationHold {
  std::string id;
  std::string text;
};

struct DischargeAcknowledgement {
  std::string id;
  std::string text;
  bool required = false;
};

// The content of one instruction version (what its digest covers).
struct InstructionContent {
  std::string title;
  std::string body_markdown;
  absl::Duration solids_cutoff = absl::Hours(6);
  absl::Duration clear_liquids_cutoff = absl::Hours(2);
  bool escort_required = false;
  std::vector<MedicationHold> medication_holds;
  std::vector<std::string> what_to_bring;
  absl::Duration arrival_lead = absl::ZeroDuration();
  std::vector<DischargeAcknowledgement> discharge_acknowledgements;
};

inline constexpr char kCanonicalFormat[] = "careseal.instructions.v1";

struct InstructionTemplate {
  std::string tenant;
  std::string id;
  std::string display_name;
  int latest_version = 0;  // 0: none published
  absl::Time create_time;
  absl::Time update_time;
  std::string Name() const;
  std::string LatestVersionName() const;  // "" before the first
};

struct TemplateVersion {
  std::string tenant;
  std::string template_id;
  int version = 0;
  InstructionContent content;
  std::string canonical;  // the bytes content_sha256 is computed over
  std::string content_sha256;
  absl::Time publish_time;
  Actor publisher;
  std::string Name() const;
};

struct Series {
  std::string tenant;
  std::string patient;
  std::string id;
  std::string procedure_code;
  std::string clinician;
  std::string location;
  std::string instruction_template;
  std::string dose_plan_ref;
  SeriesState state = SeriesState::kActive;
  int session_count = 0;
  absl::Time create_time;
  absl::Time update_time;
  std::string Name() const;
};

struct ReadinessOverride {
  Actor clinician;
  std::string reason;  // sealed at rest
  std::vector<ReadinessReason> reasons;
  absl::Time create_time;
};

struct Session {
  std::string tenant;
  std::string patient;
  std::string id;
  std::string series;  // series name or ""
  std::string procedure_code;
  SessionKind kind = SessionKind::kOther;
  int sequence_number = 0;
  absl::Time start;
  absl::Duration duration = absl::Minutes(60);
  std::string location;
  std::string clinician;
  std::string dose_plan_ref;
  std::string external_id;
  std::string template_version;  // version name
  SessionState state = SessionState::kScheduled;
  int readiness = 0;  // ReadinessState value of the latest evaluation; 0 none
  absl::Time create_time;
  absl::Time update_time;
  std::optional<absl::Time> cancel_time;
  std::string cancel_reason;
  std::optional<absl::Time> end_time;
  std::optional<ReadinessOverride> readiness_override;  // reason opened
  std::string Name() const;
  std::string PatientName() const;
};

// The day-of checklist as answered (sealed at rest).
struct ChecklistAnswers {
  Checklist facts;
  std::string symptoms_note;
};

struct Attestation {
  std::string tenant;
  std::string patient;
  std::string session;  // session id
  std::string id;
  std::string template_version;
  std::string content_sha256;
  std::vector<std::string> acknowledged_ids;
  std::optional<ChecklistAnswers> checklist;
  Actor attested_by;
  absl::Time create_time;
  std::string Name() const;
};

struct InstructionDelivery {
  std::string name;
  DeliveryKind kind = DeliveryKind::kInstructions;
  std::string template_version;
  absl::Duration offset;
  absl::Time due;
  DeliveryState state = DeliveryState::kScheduled;
  std::optional<absl::Time> deliver_time;
  std::string message;
  int attempts = 0;
  absl::Time create_time;
};

// ConsentService.CheckConsent's answer, as the edge received it.
struct ConsentAnswer {
  ConsentVerdict verdict = ConsentVerdict::kMissing;
  std::string consent;  // the deciding consent, "" if none
};

struct SessionReadiness {
  std::string session;  // name
  Readiness readiness;
  std::string consent;
  std::string attestation;
  std::optional<ReadinessOverride> readiness_override;
  absl::Time evaluate_time;
};

}  // namespace careseal::presession

#endif  // CARESEAL_SERVICES_PRESESSION_PRESESSION_MODEL_H_
