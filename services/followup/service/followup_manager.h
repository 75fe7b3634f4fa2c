// The follow-up service's domain: questionnaire responses (validated and
// scored by services/followup/instruments), outcome series, the safety
// escalation queue and per-tenant settings, stored in SQL. Plain C++: no
// gRPC, no protobuf (followup_grpc.* converts).
//
// SubmitResponse stores the response, raises its escalations, appends the
// EHR events (FOLLOW_UP_SUBMITTED, ESCALATION_RAISED) and the call's audit
// event in ONE group-commit transaction, so a patient at risk is escalated
// in the very request that reported it.
//
// Thread-safety: thread-safe; writes run on the store's writer thread.
#ifndef CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_MANAGER_H_
#define CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_MANAGER_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/clock.h"
#include "services/common/crypto/random.h"
#include "services/common/identity.h"
#include "services/common/platform/call.h"
#include "services/common/platform/sealer.h"
#include "services/common/scheduler/scheduler.h"
#include "services/common/sql/database.h"
#include "services/followup/instruments/crisis_resources.h"
#include "services/followup/instruments/registry.h"
#include "services/followup/instruments/scoring.h"

namespace careseal::followup {

struct FollowUpActor {
  std::string name;
  Role role = Role::kSystem;
  std::string peer;
};

// Values of careseal.v1.EscalationTrigger / Priority / State / Level.
enum class EscalationTrigger : int {
  kPhq9Item9 = 1,
  kCssrsHighRisk = 2,
  kCssrsModerateRisk = 3,
  kBloodPressureHigh = 4,
  kSideEffectSevere = 5,
  kHomeSafeNotConfirmed = 6,
};
enum class EscalationPriority : int { kUrgent = 1, kRoutine = 2 };
enum class EscalationState : int { kOpen = 1, kAcknowledged = 2 };
enum class EscalationLevel : int { kPrimary = 1, kBackup = 2 };

struct StoredResponse {
  std::string tenant;
  std::string patient;  // patient id
  std::string id;
  std::string instrument;  // instrument id, e.g. "phq-9"
  int instrument_version = 0;
  std::string check_in;  // resource name, or ""
  std::string session;   // resource name, or ""
  std::vector<AnswerValue> answers;
  std::optional<int> score;
  std::string band;
  std::string band_display_name;
  std::vector<ResponseFlag> flags;
  std::vector<std::string> escalations;  // resource names
  FollowUpActor submitted_by;
  absl::Time submit_time;

  std::string Name() const;
};

struct Escalation {
  std::string tenant;
  std::string patient;
  std::string id;
  EscalationTrigger trigger = EscalationTrigger::kPhq9Item9;
  EscalationPriority priority = EscalationPriority::kUrgent;
  std::string source;  // the questionnaire response
  EscalationState state = EscalationState::kOpen;
  EscalationLevel level = EscalationLevel::kPrimary;
  absl::Time create_time;
  std::optional<absl::Time> ack_deadline;  // urgent only
  std::optional<absl::Time> reescalate_time;
  std::optional<absl::Time> acknowledge_time;
  FollowUpActor acknowledged_by;
  std::string note;
  absl::Time update_time;
  // Clinicians currently notified (tenants/{t}/clinicians/{c}): at PRIMARY
  // level the tenant's care team (filled by a kNotifyJobKind job run at
  // once after the escalation is raised); at BACKUP level the on-call
  // clinicians, or the care team when nobody is on call.
  std::vector<std::string> recipients;

  std::string Name() const;
};

// Values of careseal.v1.CheckInState / CheckInKind.
enum class CheckInState : int {
  kScheduled = 1,
  kSent = 2,
  kCompleted = 3,
  kExpired = 4,
  kCancelled = 5,
};
enum class CheckInKind : int { kScheduled = 1, kAdHoc = 2 };

struct CheckIn {
  std::string tenant;
  std::string patient;
  std::string id;
  CheckInKind kind = CheckInKind::kAdHoc;
  std::string session;
  std::string rule_id;
  std::vector<std::string> instruments;  // instrument ids
  CheckInState state = CheckInState::kSent;
  absl::Time due_time;
  std::optional<absl::Time> send_time;
  absl::Time expire_time;
  int reminders_sent = 0;
  std::vector<std::string> responses;  // resource names
  std::string message;                 // inbox message resource name
  std::string note;
  FollowUpActor created_by;
  absl::Time create_time;

  std::string Name() const;
  // The state as seen at `now` (a sent check-in past expire_time is
  // expired).
  CheckInState StateAt(absl::Time now) const;
};

struct SendCheckInInput {
  std::string tenant;
  std::string patient;
  std::vector<std::string> instruments;  // instrument ids
  std::string session;                   // resource name or ""
  std::string note;
  std::optional<absl::Time> expire_time;
};

struct CheckInFilter {
  std::string tenant;
  std::string patient;  // "-" for all
  int state = 0;        // 0: all
  std::string session;  // "" for all
};

// Values of careseal.v1.CheckInAnchor.
enum class CheckInAnchor : int {
  kAfterSessionEnd = 1,
  kBeforeSessionStart = 2
};

// One FollowUpSettings rule: when a scheduled check-in is due, what it asks,
// and when it is reminded and expires.
struct CheckInRule {
  std::string id;
  CheckInAnchor anchor = CheckInAnchor::kAfterSessionEnd;
  absl::Duration offset;
  std::vector<std::string> instruments;  // instrument ids
  absl::Duration reminder_after;         // zero: no reminder
  absl::Duration expire_after = absl::Hours(72);
};

// CLINICAL.md "Follow-up cadence (defaults)": +2 h home safe; +24 h side
// effects and blood pressure; +72 h and +7 d PHQ-9 and GAD-7, after the
// session's end; PHQ-9 24 h before each session's start.
std::vector<CheckInRule> DefaultCheckInRules();

// Durable job kinds of this service (services/common/scheduler). Keys:
//   {session}/followup:{rule}          kCheckInJobKind, payload check-in name
//   {check-in}/remind:1                kRemindJobKind
//   {check-in}/expire                  kExpireJobKind
//   {escalation}/notify                kNotifyJobKind, payload escalation
//   {escalation}/reescalate:{n}        kReescalateJobKind, payload escalation
inline constexpr char kCheckInJobKind[] = "followup.checkin";
inline constexpr char kRemindJobKind[] = "followup.remind";
inline constexpr char kExpireJobKind[] = "followup.expire";
inline constexpr char kNotifyJobKind[] = "followup.notify";
inline constexpr char kReescalateJobKind[] = "followup.reescalate";

// What the follow-up service needs to know of a session (from
// PreSessionService.GetSession).
struct SessionTimes {
  absl::Time start;               // the current (possibly moved) start
  std::optional<absl::Time> end;  // set once completed
};
// Looks a session up by resource name; NOT_FOUND if it does not exist.
// Blocking; called outside any transaction.
using SessionLookup =
    std::function<absl::StatusOr<SessionTimes>(const std::string& session)>;

// Per-tenant settings this service applies (FollowUpSettings).
struct TenantSettings {
  // Default: DefaultCheckInRules().
  std::vector<CheckInRule> rules = DefaultCheckInRules();
  int bp_systolic_threshold = 180;
  int bp_diastolic_threshold = 120;
  absl::Duration escalation_ack_deadline = absl::Minutes(15);
  // Shown to a patient at risk; default DefaultCrisisResources() (988, 911).
  CrisisResources crisis_resources = DefaultCrisisResources();
  std::optional<absl::Time> update_time;
};

// INVALID_ARGUMENT naming the field (under settings.crisis_resources) unless
// `r` can be shown to a patient at risk: a headline of 1..200 code points;
// 1..10 resources, each with a display_name (1..100), at least one way to
// reach it (call_number or text_number of 1..32 of the characters
// "0-9 +*#()-" with a digit, or an https chat_url of at most 2048 bytes) and
// a note of at most 200 code points; and at least one emergency resource
// with a call_number (what a blood-pressure crisis shows). Single-line text
// only.
absl::Status ValidateCrisisResources(const CrisisResources& r);

struct SubmitInput {
  std::string tenant;
  std::string patient;
  std::string check_in;    // resource name or ""
  std::string instrument;  // instrument id
  int instrument_version = 0;
  std::vector<AnswerValue> answers;
};

struct SubmitResult {
  StoredResponse response;
  std::vector<Escalation> escalations;
  std::optional<CrisisResources> crisis_resources;
};

struct OutcomePointData {
  std::string response;  // resource name
  absl::Time time;
  int score = 0;
  std::string band;
  std::string session;
  OutcomeMarkers markers;
};

struct OutcomeSeries {
  std::optional<OutcomePointData> baseline;
  std::vector<OutcomePointData> points;
};

struct ResponseFilter {
  std::string tenant;
  std::string patient;     // "-" or "" for all
  std::string instrument;  // id or ""
  bool flagged_only = false;
  std::optional<absl::Time> start_time;
  std::optional<absl::Time> end_time;
};

struct EscalationFilter {
  std::string tenant;
  std::string patient;  // "-" for all
  int state = 0;        // 0: all
  int level = 0;
  int priority = 0;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;
};

template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

struct FollowUpDeps {
  sql::Database* db = nullptr;
  const Clock* clock = nullptr;
  crypto::RandomSource* random = nullptr;
  Sealer* sealer = nullptr;
  const InstrumentRegistry* instruments = nullptr;
  // Called after a write scheduled a job due now (an escalation's
  // notification), so that the scheduler runs it without waiting for its
  // next pass. May be empty.
  std::function<void()> wake;
};

class FollowUpManager {
 public:
  static absl::Status Migrate(sql::Database& db);
  explicit FollowUpManager(FollowUpDeps deps) : deps_(deps) {}

  const InstrumentRegistry& instruments() const { return *deps_.instruments; }

  // Validates, scores, stores, escalates, emits events and audits in one
  // transaction. Errors: see followup.proto SubmitResponse.
  void SubmitResponse(CallContext& call, SubmitInput in,
                      Done<SubmitResult> done);

  absl::StatusOr<StoredResponse> GetResponse(CallContext& call,
                                             absl::string_view tenant,
                                             absl::string_view patient,
                                             absl::string_view id);
  absl::StatusOr<Page<StoredResponse>> ListResponses(
      CallContext& call, const ResponseFilter& filter, int page_size,
      absl::string_view page_token);
  absl::StatusOr<OutcomeSeries> GetOutcomeSeries(
      CallContext& call, absl::string_view tenant, absl::string_view patient,
      const Instrument& instrument, std::optional<absl::Time> start,
      std::optional<absl::Time> end);

  absl::StatusOr<Escalation> GetEscalation(CallContext& call,
                                           absl::string_view tenant,
                                           absl::string_view patient,
                                           absl::string_view id);
  absl::StatusOr<Page<Escalation>> ListEscalations(
      CallContext& call, const EscalationFilter& filter, int page_size,
      absl::string_view page_token);
  void AcknowledgeEscalation(CallContext& call, std::string tenant,
                             std::string patient, std::string id,
                             std::string note, Done<Escalation> done);

  // Checks a SendCheckIn request before anything is delivered: instruments
  // (1..5, known, no repeats), note length, expire_time (future, at most 14
  // days; unset: 72 h) and the session's name.
  absl::Status ValidateSendCheckIn(const CallContext& call,
                                   SendCheckInInput& in) const;
  // Stores a check-in delivered as inbox message `message` (sent now), with
  // its audit event and FOLLOW_UP_SENT event. A retried request id returns
  // the check-in it created.
  void StoreSentCheckIn(CallContext& call, SendCheckInInput in,
                        std::string message, Done<CheckIn> done);
  absl::StatusOr<CheckIn> GetCheckIn(CallContext& call,
                                     absl::string_view tenant,
                                     absl::string_view patient,
                                     absl::string_view id);
  absl::StatusOr<Page<CheckIn>> ListCheckIns(CallContext& call,
                                             const CheckInFilter& filter,
                                             int page_size,
                                             absl::string_view page_token);

  absl::StatusOr<TenantSettings> GetSettings(CallContext& call,
                                             absl::string_view tenant);
  // Only the fields named in `paths` ("rules", "escalation_ack_deadline",
  // "blood_pressure_systolic_threshold", "blood_pressure_diastolic_threshold").
  void UpdateSettings(CallContext& call, std::string tenant,
                      TenantSettings settings, std::vector<std::string> paths,
                      Done<TenantSettings> done);

  // --- Scheduled work (driven by FollowUpModule's scheduler) ---

  // Reads the tenants' event logs after this service's durable cursors
  // (table followup_event_cursors) for SESSION_SCHEDULED, SESSION_MOVED,
  // SESSION_COMPLETED and SESSION_CANCELLED, and looks each session up
  // (its current times):
  //  * scheduled or moved, not yet started: one SCHEDULED check-in and one
  //    job per BEFORE_SESSION_START rule, due `offset` before the start (now
  //    if that has passed) and expiring at the start at the latest; a move
  //    moves the ones not yet sent;
  //  * completed: the ones not yet sent before it are cancelled, and each
  //    AFTER_SESSION_END rule gets its check-in, due `offset` after the end;
  //  * cancelled: its pending check-ins are cancelled.
  // Job keys are {session}/followup:{rule}, so a repeat is impossible. The
  // cursor moves in the same transaction. A lookup error other than
  // NOT_FOUND stops at that event (retried on the next call) and is
  // returned. Blocking: never on a gRPC or writer thread.
  absl::Status IngestSessionEvents(absl::Time now, const SessionLookup& lookup);

  // The check-in a kCheckInJobKind/kRemindJobKind job is about, as stored.
  absl::StatusOr<CheckIn> CheckInOfJob(const scheduler::Job& job);
  // Commit of a kCheckInJobKind job: the check-in (still SCHEDULED) becomes
  // SENT with `message`, FOLLOW_UP_SENT, audit, reminder and expiry jobs. It
  // is open for its rule's expire_after from now, and one before a session
  // no later than the session's start. With no `message` (not delivered), a
  // check-in whose expire_time has passed becomes EXPIRED.
  absl::Status CommitCheckInSent(sql::Txn& txn, const scheduler::Job& job,
                                 absl::Time now, const std::string& message);
  // Commit of a kRemindJobKind job: counts the reminder sent (if any).
  absl::Status CommitReminder(sql::Txn& txn, const scheduler::Job& job,
                              absl::Time now, bool sent);
  // Commit of a kExpireJobKind job: a still SENT check-in becomes EXPIRED.
  absl::Status CommitExpiry(sql::Txn& txn, const scheduler::Job& job,
                            absl::Time now);

  // The escalation a kNotifyJobKind or kReescalateJobKind job is about, as
  // stored.
  absl::StatusOr<Escalation> EscalationOfJob(const scheduler::Job& job);
  // Commit of a kNotifyJobKind job: if the escalation is still OPEN at
  // PRIMARY level, its recipients become `care_team` (with a system audit
  // event).
  absl::Status CommitNotification(sql::Txn& txn, const scheduler::Job& job,
                                  absl::Time now,
                                  const std::vector<std::string>& care_team);
  // Commit of a kReescalateJobKind job: if the escalation is still OPEN it
  // goes to BACKUP with `recipients`, reescalate_time (first time), a new
  // ack_deadline, EVENT_TYPE_ESCALATION_REESCALATED, a system audit event
  // and the next job at the next deadline.
  absl::Status CommitReescalation(sql::Txn& txn, const scheduler::Job& job,
                                  absl::Time now,
                                  const std::vector<std::string>& recipients);

 private:
  // INVALID_ARGUMENT naming the field for a bad rule list.
  absl::Status ValidateRules(const std::vector<CheckInRule>& rules) const;

  FollowUpDeps deps_;
};

}  // namespace careseal::followup

#endif  // CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_MANAGER_H_
