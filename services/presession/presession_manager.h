// PreSessionManager: the pre-session domain (sessions, series, instruction
// templates, settings, deliveries, attestations, readiness). Plain C++: no
// gRPC, no protobuf.
//
// Every write runs as one group-commit job: request id, read, change, the
// scheduler's Schedule/Reschedule/CancelPrefix calls, the event
// (events::AppendEvent) and the audit event, all in one transaction. `done`
// runs on the writer thread once durable and must not block. Reads run on
// the caller's thread over a snapshot.
//
// Delivery jobs (services/common/scheduler): kind presession.deliver, key
// `{session}/deliver:{offset}`, and presession.remind, key
// `{session}/remind:{offset}:{n}`, payload the session name (plus the base
// delivery time for reminders). PrepareDelivery (read) decides what the job
// sends; the edge's handler sends it through MessagingService; CommitDelivery
// (in the scheduler's transaction) records it.
//
// REQUIRES for every call with a CallContext: `call` outlives the call
// (until `done` ran) and the caller has authorized `call.principal` for the
// tenant and patient.
#ifndef CARESEAL_SERVICES_PRESESSION_PRESESSION_MANAGER_H_
#define CARESEAL_SERVICES_PRESESSION_PRESESSION_MANAGER_H_

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "services/common/clock.h"
#include "services/common/crypto/random.h"
#include "services/common/events/event_bus.h"
#include "services/common/platform/call.h"
#include "services/common/platform/sealer.h"
#include "services/common/scheduler/scheduler.h"
#include "services/common/sql/database.h"
#include "services/presession/presession_model.h"
#include "services/presession/session_plan.h"
#include "services/presession/sql_presession_store.h"

namespace careseal::presession {

template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;
};

inline constexpr char kDeliverKind[] = "presession.deliver";
inline constexpr char kRemindKind[] = "presession.remind";

struct PreSessionDeps {
  sql::Database* db = nullptr;
  const Clock* clock = nullptr;
  crypto::RandomSource* random = nullptr;
  Sealer* sealer = nullptr;
  events::EventBus* bus = &events::EventBus::Default();
  // Called after a write scheduled a job that may be due now (wakes the
  // scheduler loop); may be empty.
  std::function<void()> wake;
  // The tenant's time zone (IdentityService's Tenant.time_zone), in which
  // instruction messages give times; blocking (scheduler thread only). An
  // error fails the delivery attempt (retried). Empty: UTC.
  std::function<absl::StatusOr<absl::TimeZone>(const std::string& tenant)>
      tenant_zone;
};

struct SettingsUpdate {
  std::string tenant;
  Settings settings;
  std::set<std::string> paths;  // update_mask
};

struct SessionInput {
  std::string tenant;
  std::string patient;
  std::string series;  // name, optional
  std::string procedure_code;
  int kind = 0;
  std::optional<absl::Time> start;
  std::optional<absl::Duration> duration;
  std::string location;
  std::string clinician;
  std::string dose_plan_ref;
  std::string external_id;
  std::string instruction_template;  // template or version name; optional
};

struct SeriesInput {
  std::string tenant;
  std::string patient;
  Series series;  // procedure_code, clinician, location, template, dose ref
  SessionPlan plan;
  std::optional<absl::Duration> session_duration;
  // The clinic's time zone: a pattern's days keep the first session's local
  // time of day across daylight-saving changes.
  absl::TimeZone zone = absl::UTCTimeZone();
};

struct SeriesResult {
  Series series;
  std::vector<Session> sessions;
};

struct MoveInput {
  std::string tenant;
  std::string patient;
  std::string session;
  std::optional<absl::Time> start;
  std::string location;
  std::string clinician;
  std::string reason;
};

struct AcknowledgeInput {
  std::string tenant;
  std::string patient;
  std::string session;
  std::string content_sha256;
  std::vector<std::string> acknowledged_ids;
  std::optional<ChecklistAnswers> checklist;
  // For checklist validation: proto enum values as given (0 = unspecified).
  int holds_answer = 0;
  std::vector<int> contraindication_values;
  bool escort_given = false;
};

struct AcknowledgeResult {
  Attestation attestation;
  SessionReadiness readiness;
};

struct OverrideInput {
  std::string tenant;
  std::string patient;
  std::string session;
  std::string reason;
  std::vector<ReadinessReason> reasons;
};

struct InstructionsView {
  Session session;
  TemplateVersion version;
  std::optional<Attestation> latest_attestation;
};

struct DeliveryFilter {
  std::string tenant;
  std::string patient;
  std::string session;  // "-": all of the patient's
  int state = 0;
};

// What a due delivery job should do (PrepareDelivery).
struct DeliveryWork {
  bool send = false;         // false: record as cancelled, send nothing
  std::string patient_name;  // tenants/{t}/patients/{p}
  std::string thread_subject;
  std::string text;
  // Stable across retries of this job for this session start.
  std::string thread_request_seed;
  std::string message_request_seed;
};

class PreSessionManager {
 public:
  explicit PreSessionManager(PreSessionDeps deps) : deps_(std::move(deps)) {}

  // Applies the pre-session schema and those it relies on.
  static absl::Status Migrate(sql::Database& db);

  // Settings.
  absl::StatusOr<Settings> GetSettings(CallContext& call,
                                       absl::string_view tenant);
  void UpdateSettings(CallContext& call, SettingsUpdate in,
                      Done<Settings> done);

  // Templates.
  void CreateTemplate(CallContext& call, std::string tenant, std::string id,
                      std::string display_name, Done<InstructionTemplate> done);
  void PublishVersion(CallContext& call, std::string tenant,
                      std::string template_id, InstructionContent content,
                      Done<TemplateVersion> done);
  absl::StatusOr<InstructionTemplate> GetTemplate(CallContext& call,
                                                  absl::string_view tenant,
                                                  absl::string_view id);
  absl::StatusOr<Page<InstructionTemplate>> ListTemplates(
      CallContext& call, absl::string_view tenant, int page_size,
      absl::string_view page_token);
  // version 0: the latest.
  absl::StatusOr<TemplateVersion> GetVersion(CallContext& call,
                                             absl::string_view tenant,
                                             absl::string_view template_id,
                                             int version);
  absl::StatusOr<Page<TemplateVersion>> ListVersions(
      CallContext& call, absl::string_view tenant,
      absl::string_view template_id, int page_size,
      absl::string_view page_token);

  // Series and sessions.
  void CreateSeries(CallContext& call, SeriesInput in, Done<SeriesResult> done);
  absl::StatusOr<Series> GetSeries(CallContext& call, absl::string_view tenant,
                                   absl::string_view patient,
                                   absl::string_view id);
  absl::StatusOr<Page<Series>> ListSeries(CallContext& call,
                                          absl::string_view tenant,
                                          absl::string_view patient, int state,
                                          int page_size,
                                          absl::string_view page_token);
  void CancelSeries(CallContext& call, std::string tenant, std::string patient,
                    std::string id, std::string reason,
                    Done<SeriesResult> done);

  void CreateSession(CallContext& call, SessionInput in, Done<Session> done);
  absl::StatusOr<Session> GetSession(CallContext& call,
                                     absl::string_view tenant,
                                     absl::string_view patient,
                                     absl::string_view id);
  absl::StatusOr<Page<Session>> ListSessions(CallContext& call,
                                             const SessionFilter& filter,
                                             int page_size,
                                             absl::string_view page_token);
  void MoveSession(CallContext& call, MoveInput in, Done<Session> done);
  void CancelSession(CallContext& call, std::string tenant, std::string patient,
                     std::string id, std::string reason, Done<Session> done);
  void CompleteSession(CallContext& call, std::string tenant,
                       std::string patient, std::string id,
                       std::optional<absl::Time> end_time, Done<Session> done);

  // Deliveries, instructions, attestations.
  absl::StatusOr<Page<InstructionDelivery>> ListDeliveries(
      CallContext& call, const DeliveryFilter& filter, int page_size,
      absl::string_view page_token);
  absl::StatusOr<InstructionsView> GetInstructions(CallContext& call,
                                                   absl::string_view tenant,
                                                   absl::string_view patient,
                                                   absl::string_view id);
  absl::StatusOr<Page<Attestation>> ListAttestations(
      CallContext& call, absl::string_view tenant, absl::string_view patient,
      absl::string_view session, int page_size, absl::string_view page_token);
  // Validation that needs no storage (INVALID_ARGUMENT naming the field).
  static absl::Status ValidateAcknowledge(const AcknowledgeInput& in,
                                          absl::Time now);
  void Acknowledge(CallContext& call, AcknowledgeInput in,
                   ConsentAnswer consent, Done<AcknowledgeResult> done);

  // The session's procedure and start, for the consent question; NOT_FOUND
  // like GetSession.
  absl::StatusOr<Session> SessionForReadiness(CallContext& call,
                                              absl::string_view tenant,
                                              absl::string_view patient,
                                              absl::string_view id);
  // Evaluates readiness with the consent answer, stores the state and emits
  // EVENT_TYPE_READINESS_CHANGED when it changed; audited.
  void CheckReadiness(CallContext& call, std::string tenant,
                      std::string patient, std::string id,
                      ConsentAnswer consent, Done<SessionReadiness> done);
  void OverrideReadiness(CallContext& call, OverrideInput in,
                         ConsentAnswer consent, Done<SessionReadiness> done);

  // Scheduler side (blocking reads / inside the scheduler's transaction).
  absl::StatusOr<DeliveryWork> PrepareDelivery(const scheduler::Job& job,
                                               absl::Time now);
  // `message`: the inbox message sent, or "" if nothing was sent.
  absl::Status CommitDelivery(sql::Txn& txn, const scheduler::Job& job,
                              absl::Time now, const std::string& message);

 private:
  template <typename T>
  void RunWrite(absl::AnyInvocable<absl::StatusOr<T>(sql::Txn&)> fn,
                Done<T> done, bool wake = false);
  absl::StatusOr<Settings> LoadSettings(sql::Txn& txn,
                                        absl::string_view tenant);
  absl::StatusOr<Session> OpenSession(sql::Txn& txn, SessionRow row);
  absl::StatusOr<SessionRow> LoadSession(sql::Txn& txn,
                                         absl::string_view tenant,
                                         absl::string_view patient,
                                         absl::string_view id);
  absl::StatusOr<std::optional<Attestation>> LatestAttestation(
      sql::Txn& txn, const Session& s);
  // Resolves a template or version name (empty: series/tenant default).
  absl::StatusOr<TemplateVersion> ResolveVersion(sql::Txn& txn,
                                                 absl::string_view tenant,
                                                 absl::string_view name,
                                                 absl::string_view field);
  absl::StatusOr<TemplateVersion> VersionOf(sql::Txn& txn, const Session& s);
  // Stores a new SCHEDULED session with its delivery jobs and
  // EVENT_TYPE_SESSION_SCHEDULED.
  absl::StatusOr<Session> InsertNewSession(sql::Txn& txn, CallContext& call,
                                           Session s, const Settings& settings);
  absl::Status ScheduleDeliveries(sql::Txn& txn, const Session& s,
                                  const Settings& settings, absl::Time now,
                                  bool reschedule);
  absl::StatusOr<SessionReadiness> Evaluate(sql::Txn& txn, const Session& s,
                                            const ConsentAnswer& consent,
                                            absl::Time now);
  absl::Status StoreReadiness(sql::Txn& txn, CallContext& call, SessionRow& row,
                              const SessionReadiness& r);
  absl::Status RenumberSeries(sql::Txn& txn, const std::string& tenant,
                              const std::string& patient,
                              const std::string& series, absl::Time now);
  absl::StatusOr<InstructionDelivery> DeliveryOf(sql::Txn& txn,
                                                 const scheduler::Job& job,
                                                 const Session& s);

  PreSessionDeps deps_;
  SqlPreSessionStore store_;
};

// Validation, exposed for tests. INVALID_ARGUMENT naming the field.
absl::Status ValidateContent(const InstructionContent& c);
absl::Status ValidateSettings(const Settings& s,
                              const std::set<std::string>& paths);
absl::Status ValidateProcedureCode(absl::string_view field,
                                   absl::string_view code);

// "48h", "90m", "45s": how offsets appear in job keys and delivery ids.
std::string OffsetLabel(absl::Duration offset);

}  // namespace careseal::presession

#endif  // CARESEAL_SERVICES_PRESESSION_PRESESSION_MANAGER_H_
