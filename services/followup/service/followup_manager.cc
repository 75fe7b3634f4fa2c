#include "services/followup/service/followup_manager.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/events/event_log.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/pagination.h"
#include "services/common/platform/policy.h"
#include "services/common/platform/resource_name.h"
#include "services/common/platform/text.h"
#include "services/common/status.h"

namespace careseal::followup {
namespace {

constexpr char kComponent[] = "followup";
constexpr int kMaxNote = 2000;

const std::vector<sql::Migration>& Migrations() {
  static const auto* m = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE followup_responses ("
       " tenant TEXT NOT NULL, patient TEXT NOT NULL, id TEXT NOT NULL,"
       " instrument TEXT NOT NULL, version BIGINT NOT NULL,"
       " check_in TEXT NOT NULL, session TEXT NOT NULL,"
       " answers BLOB NOT NULL, has_score BIGINT NOT NULL,"
       " score BIGINT NOT NULL, band TEXT NOT NULL, band_display TEXT NOT NULL,"
       " flags TEXT NOT NULL, escalations TEXT NOT NULL,"
       " actor TEXT NOT NULL, actor_role BIGINT NOT NULL, actor_peer TEXT NOT "
       "NULL,"
       " submit_us BIGINT NOT NULL,"
       " PRIMARY KEY (tenant, patient, id));"
       "CREATE INDEX followup_responses_time ON followup_responses"
       " (tenant, submit_us);"
       "CREATE TABLE followup_escalations ("
       " tenant TEXT NOT NULL, patient TEXT NOT NULL, id TEXT NOT NULL,"
       " trigger_kind BIGINT NOT NULL, priority BIGINT NOT NULL,"
       " source TEXT NOT NULL, state BIGINT NOT NULL, level BIGINT NOT NULL,"
       " create_us BIGINT NOT NULL, ack_deadline_us BIGINT NOT NULL,"
       " reescalate_us BIGINT NOT NULL, ack_us BIGINT NOT NULL,"
       " ack_actor TEXT NOT NULL, ack_role BIGINT NOT NULL,"
       " ack_peer TEXT NOT NULL, note BLOB NOT NULL, update_us BIGINT NOT "
       "NULL,"
       " PRIMARY KEY (tenant, patient, id));"
       "CREATE INDEX followup_escalations_time ON followup_escalations"
       " (tenant, create_us);"
       "CREATE TABLE followup_check_ins ("
       " tenant TEXT NOT NULL, patient TEXT NOT NULL, id TEXT NOT NULL,"
       " kind BIGINT NOT NULL, session TEXT NOT NULL, rule_id TEXT NOT NULL,"
       " instruments TEXT NOT NULL, state BIGINT NOT NULL,"
       " due_us BIGINT NOT NULL, send_us BIGINT NOT NULL,"
       " expire_us BIGINT NOT NULL, reminders BIGINT NOT NULL,"
       " responses TEXT NOT NULL, message TEXT NOT NULL, note BLOB NOT NULL,"
       " actor TEXT NOT NULL, actor_role BIGINT NOT NULL,"
       " actor_peer TEXT NOT NULL, create_us BIGINT NOT NULL,"
       " PRIMARY KEY (tenant, patient, id));"
       "CREATE INDEX followup_check_ins_due ON followup_check_ins"
       " (tenant, due_us);"
       "CREATE TABLE followup_settings ("
       " tenant TEXT PRIMARY KEY, bp_systolic BIGINT NOT NULL,"
       " bp_diastolic BIGINT NOT NULL, ack_deadline_us BIGINT NOT NULL,"
       " update_us BIGINT NOT NULL)"},
      {2,
       "ALTER TABLE followup_escalations ADD COLUMN recipients TEXT NOT NULL "
       "DEFAULT '';"
       "CREATE TABLE followup_event_cursors ("
       " tenant TEXT PRIMARY KEY, cursor BIGINT NOT NULL)"},
      {3,
       "ALTER TABLE followup_settings ADD COLUMN rules TEXT NOT NULL DEFAULT "
       "''"},
      {4,
       "ALTER TABLE followup_settings ADD COLUMN crisis_resources TEXT NOT "
       "NULL DEFAULT ''"},
  };
  return *m;
}

int64_t Us(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromUs(int64_t us) { return absl::FromUnixMicros(us); }

constexpr int kMaxCheckInNote = 1000;
constexpr int kMaxCheckInInstruments = 5;

std::string CheckInNoteAd(const std::string& name) {
  return absl::StrCat("check-in-note:", name);
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    out.emplace_back(part);
  }
  return out;
}

std::string AnswersAd(const std::string& name) {
  return absl::StrCat("followup-answers:", name);
}
std::string NoteAd(const std::string& name) {
  return absl::StrCat("escalation-note:", name);
}

FollowUpActor ActorOf(const Principal& p) {
  return {p.actor, p.role, p.role == Role::kSystem ? "" : p.peer};
}

void Touch(CallContext& call, absl::string_view tenant, std::string resource,
           absl::string_view patient) {
  call.tenant = std::string(tenant);
  call.resource = std::move(resource);
  call.patient = patient.empty() || patient == "-"
                     ? std::string()
                     : PatientName(tenant, patient);
}

absl::Status Audit(sql::Txn& txn, CallContext& call) {
  ASSIGN_OR_RETURN(call.audit_leaf_index,
                   AppendAuditEvent(txn, call, absl::OkStatus()));
  call.audited = true;
  return absl::OkStatus();
}

std::string AnswersToJson(const std::vector<AnswerValue>& answers) {
  nlohmann::json out = nlohmann::json::array();
  for (const AnswerValue& a : answers) {
    nlohmann::json j;
    j["id"] = a.item_id;
    if (const int* i = std::get_if<int>(&a.value)) {
      j["i"] = *i;
    } else if (const bool* b = std::get_if<bool>(&a.value)) {
      j["b"] = *b;
    } else {
      const auto& bp = std::get<BloodPressure>(a.value);
      j["bp"] = {bp.systolic_mmhg, bp.diastolic_mmhg, bp.pulse_bpm};
    }
    out.push_back(std::move(j));
  }
  return out.dump();
}

absl::StatusOr<std::vector<AnswerValue>> AnswersFromJson(
    const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Internal("CORRUPT_RECORD", "stored answers");
  std::vector<AnswerValue> out;
  for (const auto& e : j) {
    AnswerValue a;
    a.item_id = e.value("id", "");
    if (e.contains("i")) {
      a.value = e["i"].get<int>();
    } else if (e.contains("b")) {
      a.value = e["b"].get<bool>();
    } else {
      const auto& bp = e["bp"];
      a.value =
          BloodPressure{bp[0].get<int>(), bp[1].get<int>(), bp[2].get<int>()};
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::string JoinInts(const std::vector<ResponseFlag>& flags) {
  std::vector<std::string> parts;
  for (ResponseFlag f : flags) {
    parts.push_back(std::string(ResponseFlagName(f)));
  }
  return absl::StrJoin(parts, ",");
}

std::vector<ResponseFlag> SplitFlags(const std::string& s) {
  std::vector<ResponseFlag> out;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    if (auto f = ParseResponseFlag(part)) out.push_back(*f);
  }
  return out;
}

std::optional<EscalationTrigger> TriggerOf(ResponseFlag flag) {
  switch (flag) {
    case ResponseFlag::kPhq9Item9Positive:
      return EscalationTrigger::kPhq9Item9;
    case ResponseFlag::kCssrsHighRisk:
      return EscalationTrigger::kCssrsHighRisk;
    case ResponseFlag::kCssrsModerateRisk:
      return EscalationTrigger::kCssrsModerateRisk;
    case ResponseFlag::kBloodPressureCrisis:
    case ResponseFlag::kBloodPressureHigh:
      return EscalationTrigger::kBloodPressureHigh;
    case ResponseFlag::kSideEffectSevere:
      return EscalationTrigger::kSideEffectSevere;
    case ResponseFlag::kHomeSafeNotConfirmed:
      return EscalationTrigger::kHomeSafeNotConfirmed;
    case ResponseFlag::kCssrsLowRisk:
      return std::nullopt;
  }
  return std::nullopt;
}

// The tenant's blood-pressure threshold is the one that escalates at once
// (followup.proto BLOOD_PRESSURE_HIGH): the instruments' crisis pair. The
// lower "high" pair is set equal so that one reading raises one flag.
SafetyThresholds ThresholdsOf(const TenantSettings& s) {
  SafetyThresholds t;
  t.crisis_systolic_mmhg = s.bp_systolic_threshold;
  t.crisis_diastolic_mmhg = s.bp_diastolic_threshold;
  t.high_systolic_mmhg = s.bp_systolic_threshold;
  t.high_diastolic_mmhg = s.bp_diastolic_threshold;
  return t;
}

ScoredResponse Rescored(const StoredResponse& r) {
  ScoredResponse s;
  s.score = r.score;
  s.flags = r.flags;
  for (ResponseFlag f : r.flags) {
    FlagPolicy p = PolicyFor(f);
    s.urgency = std::max(s.urgency, p.urgency);
    s.show_crisis_resources |= p.show_crisis_resources;
    s.seek_urgent_care |= p.seek_urgent_care;
  }
  return s;
}

// Rules as stored in followup_settings.rules (durations in seconds).
std::string RulesToJson(const std::vector<CheckInRule>& rules) {
  nlohmann::json out = nlohmann::json::array();
  for (const CheckInRule& r : rules) {
    out.push_back({{"id", r.id},
                   {"anchor", static_cast<int>(r.anchor)},
                   {"offset", absl::ToInt64Seconds(r.offset)},
                   {"instruments", r.instruments},
                   {"remind", absl::ToInt64Seconds(r.reminder_after)},
                   {"expire", absl::ToInt64Seconds(r.expire_after)}});
  }
  return out.dump();
}

absl::StatusOr<std::vector<CheckInRule>> RulesFromJson(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Internal("CORRUPT_RECORD", "stored rules");
  std::vector<CheckInRule> out;
  for (const auto& e : j) {
    CheckInRule r;
    r.id = e.value("id", "");
    r.anchor = static_cast<CheckInAnchor>(e.value("anchor", 1));
    r.offset = absl::Seconds(e.value("offset", int64_t{0}));
    r.instruments = e.value("instruments", std::vector<std::string>{});
    r.reminder_after = absl::Seconds(e.value("remind", int64_t{0}));
    r.expire_after = absl::Seconds(e.value("expire", int64_t{0}));
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<TenantSettings> LoadSettings(sql::Txn& txn,
                                            absl::string_view tenant) {
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT bp_systolic, bp_diastolic, "
                                        "ack_deadline_us, update_us, rules, "
                                        "crisis_resources "
                                        "FROM followup_settings WHERE "
                                        "tenant = ?",
                                        {sql::Text(std::string(tenant))}));
  TenantSettings s;
  if (!rows.empty()) {
    s.bp_systolic_threshold = static_cast<int>(rows[0].Int(0));
    s.bp_diastolic_threshold = static_cast<int>(rows[0].Int(1));
    s.escalation_ack_deadline = absl::Microseconds(rows[0].Int(2));
    s.update_time = FromUs(rows[0].Int(3));
    if (!rows[0].Str(4).empty()) {
      ASSIGN_OR_RETURN(s.rules, RulesFromJson(rows[0].Str(4)));
    }
    if (!rows[0].Str(5).empty()) {
      ASSIGN_OR_RETURN(s.crisis_resources,
                       CrisisResourcesFromJson(rows[0].Str(5)));
    }
  }
  return s;
}

constexpr char kResponseCols[] =
    "tenant, patient, id, instrument, version, check_in, session, answers, "
    "has_score, score, band, band_display, flags, escalations, actor, "
    "actor_role, actor_peer, submit_us";

absl::StatusOr<StoredResponse> ResponseFromRow(sql::Txn& txn, Sealer& sealer,
                                               const sql::Row& row) {
  StoredResponse r;
  r.tenant = row.Str(0);
  r.patient = row.Str(1);
  r.id = row.Str(2);
  r.instrument = row.Str(3);
  r.instrument_version = static_cast<int>(row.Int(4));
  r.check_in = row.Str(5);
  r.session = row.Str(6);
  ASSIGN_OR_RETURN(std::string answers,
                   sealer.Open(txn, r.tenant, row.Str(7), AnswersAd(r.Name())));
  ASSIGN_OR_RETURN(r.answers, AnswersFromJson(answers));
  if (row.Int(8) != 0) r.score = static_cast<int>(row.Int(9));
  r.band = row.Str(10);
  r.band_display_name = row.Str(11);
  r.flags = SplitFlags(row.Str(12));
  for (absl::string_view e :
       absl::StrSplit(row.Str(13), ',', absl::SkipEmpty())) {
    r.escalations.emplace_back(e);
  }
  r.submitted_by = {row.Str(14), static_cast<Role>(row.Int(15)), row.Str(16)};
  r.submit_time = FromUs(row.Int(17));
  return r;
}

constexpr char kEscalationCols[] =
    "tenant, patient, id, trigger_kind, priority, source, state, level, "
    "create_us, ack_deadline_us, reescalate_us, ack_us, ack_actor, ack_role, "
    "ack_peer, note, update_us, recipients";

absl::StatusOr<Escalation> EscalationFromRow(sql::Txn& txn, Sealer& sealer,
                                             const sql::Row& row) {
  Escalation e;
  e.tenant = row.Str(0);
  e.patient = row.Str(1);
  e.id = row.Str(2);
  e.trigger = static_cast<EscalationTrigger>(row.Int(3));
  e.priority = static_cast<EscalationPriority>(row.Int(4));
  e.source = row.Str(5);
  e.state = static_cast<EscalationState>(row.Int(6));
  e.level = static_cast<EscalationLevel>(row.Int(7));
  e.create_time = FromUs(row.Int(8));
  if (row.Int(9) != 0) e.ack_deadline = FromUs(row.Int(9));
  if (row.Int(10) != 0) e.reescalate_time = FromUs(row.Int(10));
  if (row.Int(11) != 0) e.acknowledge_time = FromUs(row.Int(11));
  e.acknowledged_by = {row.Str(12), static_cast<Role>(row.Int(13)),
                       row.Str(14)};
  if (!row.Str(15).empty()) {
    ASSIGN_OR_RETURN(e.note,
                     sealer.Open(txn, e.tenant, row.Str(15), NoteAd(e.Name())));
  }
  e.update_time = FromUs(row.Int(16));
  e.recipients = SplitList(row.Str(17));
  return e;
}

absl::Status InsertEscalation(sql::Txn& txn, const Escalation& e) {
  return txn
      .Exec(absl::StrCat("INSERT INTO followup_escalations (", kEscalationCols,
                         ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
            {sql::Text(e.tenant), sql::Text(e.patient), sql::Text(e.id),
             sql::Int(static_cast<int>(e.trigger)),
             sql::Int(static_cast<int>(e.priority)), sql::Text(e.source),
             sql::Int(static_cast<int>(e.state)),
             sql::Int(static_cast<int>(e.level)), sql::Int(Us(e.create_time)),
             sql::Int(e.ack_deadline ? Us(*e.ack_deadline) : 0), sql::Int(0),
             sql::Int(0), sql::Text(""), sql::Int(0), sql::Text(""),
             sql::Bytes(""), sql::Int(Us(e.update_time)),
             sql::Text(absl::StrJoin(e.recipients, ","))})
      .status();
}

absl::StatusOr<Escalation> LoadEscalation(sql::Txn& txn, Sealer& sealer,
                                          absl::string_view tenant,
                                          absl::string_view patient,
                                          absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kEscalationCols,
                             " FROM followup_escalations WHERE tenant = ? AND "
                             "patient = ? AND id = ?"),
                {sql::Text(std::string(tenant)),
                 sql::Text(std::string(patient)), sql::Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return EscalationFromRow(txn, sealer, rows[0]);
}

absl::StatusOr<StoredResponse> LoadResponse(sql::Txn& txn, Sealer& sealer,
                                            absl::string_view tenant,
                                            absl::string_view patient,
                                            absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kResponseCols,
                             " FROM followup_responses WHERE tenant = ? AND "
                             "patient = ? AND id = ?"),
                {sql::Text(std::string(tenant)),
                 sql::Text(std::string(patient)), sql::Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return ResponseFromRow(txn, sealer, rows[0]);
}

constexpr char kCheckInCols[] =
    "tenant, patient, id, kind, session, rule_id, instruments, state, due_us, "
    "send_us, expire_us, reminders, responses, message, note, actor, "
    "actor_role, actor_peer, create_us";

absl::StatusOr<CheckIn> CheckInFromRow(sql::Txn& txn, Sealer& sealer,
                                       const sql::Row& row) {
  CheckIn c;
  c.tenant = row.Str(0);
  c.patient = row.Str(1);
  c.id = row.Str(2);
  c.kind = static_cast<CheckInKind>(row.Int(3));
  c.session = row.Str(4);
  c.rule_id = row.Str(5);
  c.instruments = SplitList(row.Str(6));
  c.state = static_cast<CheckInState>(row.Int(7));
  c.due_time = FromUs(row.Int(8));
  if (row.Int(9) != 0) c.send_time = FromUs(row.Int(9));
  c.expire_time = FromUs(row.Int(10));
  c.reminders_sent = static_cast<int>(row.Int(11));
  c.responses = SplitList(row.Str(12));
  c.message = row.Str(13);
  if (!row.Str(14).empty()) {
    ASSIGN_OR_RETURN(c.note, sealer.Open(txn, c.tenant, row.Str(14),
                                         CheckInNoteAd(c.Name())));
  }
  c.created_by = {row.Str(15), static_cast<Role>(row.Int(16)), row.Str(17)};
  c.create_time = FromUs(row.Int(18));
  return c;
}

absl::StatusOr<CheckIn> LoadCheckIn(sql::Txn& txn, Sealer& sealer,
                                    absl::string_view tenant,
                                    absl::string_view patient,
                                    absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kCheckInCols,
                             " FROM followup_check_ins WHERE tenant = ? AND "
                             "patient = ? AND id = ?"),
                {sql::Text(std::string(tenant)),
                 sql::Text(std::string(patient)), sql::Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return CheckInFromRow(txn, sealer, rows[0]);
}

std::string ReescalatePrefix(const Escalation& e) {
  return absl::StrCat(e.Name(), "/reescalate:");
}

absl::Status ScheduleReescalation(sql::Txn& txn, const Escalation& e,
                                  int round) {
  scheduler::Job job;
  job.key = absl::StrCat(ReescalatePrefix(e), round);
  job.tenant = e.tenant;
  job.kind = kReescalateJobKind;
  job.due = *e.ack_deadline;
  job.payload = e.Name();
  return scheduler::Schedule(txn, job).status();
}

// The care team's notification of a new escalation, due at once.
absl::Status ScheduleNotification(sql::Txn& txn, const Escalation& e) {
  scheduler::Job job;
  job.key = absl::StrCat(e.Name(), "/notify");
  job.tenant = e.tenant;
  job.kind = kNotifyJobKind;
  job.due = e.create_time;
  job.payload = e.Name();
  return scheduler::Schedule(txn, job).status();
}

// A CallContext for work CareSeal does on its own (scheduled jobs): the
// system principal, audited under `method`.
CallContext SystemCall(crypto::RandomSource& random, absl::string_view method,
                       absl::Time now, absl::string_view tenant,
                       std::string resource, absl::string_view patient) {
  CallContext sys;
  sys.principal = SystemPrincipal();
  sys.method = std::string(method);
  sys.correlation_id = crypto::HexEncode(random.Bytes(12));
  sys.now = now;
  Touch(sys, tenant, std::move(resource), patient);
  return sys;
}

// A stable opaque id for the check-in of `rule` after `session`: the same
// session and rule always give the same check-in.
std::string ScheduledCheckInId(absl::string_view session,
                               absl::string_view rule) {
  return crypto::HexEncode(
             crypto::Sha256(absl::StrCat(
                 "followup-scheduled-check-in:", session, "|", rule)))
      .substr(0, 26);
}

}  // namespace

std::vector<CheckInRule> DefaultCheckInRules() {
  std::vector<CheckInRule> rules;
  auto add = [&](std::string id, absl::Duration offset,
                 std::vector<std::string> instruments, absl::Duration remind,
                 absl::Duration expire,
                 CheckInAnchor anchor = CheckInAnchor::kAfterSessionEnd) {
    CheckInRule r;
    r.id = std::move(id);
    r.anchor = anchor;
    r.offset = offset;
    r.instruments = std::move(instruments);
    r.reminder_after = remind;
    r.expire_after = expire;
    rules.push_back(std::move(r));
  };
  // CLINICAL.md "Follow-up cadence (defaults)".
  add("plus-2h", absl::Hours(2), {"home-safe"}, absl::Hours(1),
      absl::Hours(24));
  add("plus-24h", absl::Hours(24), {"side-effects", "blood-pressure"},
      absl::Hours(12), absl::Hours(72));
  add("plus-72h", absl::Hours(72), {"phq-9", "gad-7"}, absl::Hours(24),
      absl::Hours(72));
  add("plus-7d", absl::Hours(24 * 7), {"phq-9", "gad-7"}, absl::Hours(24),
      absl::Hours(72));
  // "PHQ-9 also before each infusion": sent 24 h ahead, reminded after 12 h,
  // expired at the session's start at the latest.
  add("before-24h", absl::Hours(24), {"phq-9"}, absl::Hours(12),
      absl::Hours(24), CheckInAnchor::kBeforeSessionStart);
  return rules;
}

std::string CheckIn::Name() const {
  return absl::StrCat(PatientName(tenant, patient), "/checkIns/", id);
}

CheckInState CheckIn::StateAt(absl::Time now) const {
  if (state == CheckInState::kSent && now >= expire_time) {
    return CheckInState::kExpired;
  }
  return state;
}

absl::Status FollowUpManager::ValidateSendCheckIn(const CallContext& call,
                                                  SendCheckInInput& in) const {
  if (in.instruments.empty() ||
      static_cast<int>(in.instruments.size()) > kMaxCheckInInstruments) {
    return InvalidField("instruments", "UNKNOWN_INSTRUMENT",
                        "instruments must name 1 to 5 instruments");
  }
  for (size_t i = 0; i < in.instruments.size(); ++i) {
    const std::string field = absl::StrCat("instruments[", i, "]");
    if (deps_.instruments->Find(in.instruments[i]) == nullptr) {
      return InvalidField(field, "UNKNOWN_INSTRUMENT",
                          "no such instrument (instruments/{instrument})");
    }
    for (size_t j = 0; j < i; ++j) {
      if (in.instruments[j] == in.instruments[i]) {
        return InvalidField(field, "UNKNOWN_INSTRUMENT",
                            "an instrument is listed twice");
      }
    }
  }
  if (!in.note.empty()) {
    RETURN_IF_ERROR(CheckMultiLine("note", in.note, 0, 4 * kMaxCheckInNote));
    if (CodePoints(in.note) > kMaxCheckInNote) {
      return InvalidField("note", "NOTE_TOO_LONG",
                          "note must be at most 1000 code points");
    }
  }
  if (!in.session.empty()) {
    RETURN_IF_ERROR(
        ResourceName::Parse("tenants/{tenant}/patients/{patient}/sessions/"
                            "{session}",
                            in.session, "session")
            .status());
  }
  if (!in.expire_time) {
    in.expire_time = call.now + absl::Hours(72);
  } else if (*in.expire_time <= call.now ||
             *in.expire_time > call.now + absl::Hours(24 * 14)) {
    return InvalidField("expire_time", "EXPIRE_TIME_OUT_OF_RANGE",
                        "expire_time must be in the future, at most 14 days "
                        "ahead");
  }
  return absl::OkStatus();
}

void FollowUpManager::StoreSentCheckIn(CallContext& call, SendCheckInInput in,
                                       std::string message,
                                       Done<CheckIn> done) {
  Touch(call, in.tenant,
        absl::StrCat(PatientName(in.tenant, in.patient), "/checkIns"),
        in.patient);
  sql::WriteValue<CheckIn>(
      *deps_.db,
      [this, &call, in = std::move(in),
       message = std::move(message)](sql::Txn& txn) -> absl::StatusOr<CheckIn> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          ASSIGN_OR_RETURN(
              ResourceName n,
              ResourceName::Parse(
                  "tenants/{tenant}/patients/{patient}/checkIns/{c}", *prior,
                  "name"));
          ASSIGN_OR_RETURN(CheckIn c, LoadCheckIn(txn, *deps_.sealer, in.tenant,
                                                  in.patient, n.Get("c")));
          call.resource = *prior;
          RETURN_IF_ERROR(Audit(txn, call));
          return c;
        }
        CheckIn c;
        c.tenant = in.tenant;
        c.patient = in.patient;
        c.id = crypto::NewOpaqueId(*deps_.random);
        c.kind = CheckInKind::kAdHoc;
        c.session = in.session;
        c.instruments = in.instruments;
        c.state = CheckInState::kSent;
        c.due_time = call.now;
        c.send_time = call.now;
        c.expire_time = *in.expire_time;
        c.message = message;
        c.note = in.note;
        c.created_by = ActorOf(call.principal);
        c.create_time = call.now;
        call.resource = c.Name();
        std::string sealed;
        if (!c.note.empty()) {
          ASSIGN_OR_RETURN(sealed, deps_.sealer->Seal(txn, c.tenant, c.note,
                                                      CheckInNoteAd(c.Name())));
        }
        RETURN_IF_ERROR(
            txn.Exec(
                   absl::StrCat("INSERT INTO followup_check_ins (",
                                kCheckInCols,
                                ") VALUES "
                                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
                   {sql::Text(c.tenant), sql::Text(c.patient), sql::Text(c.id),
                    sql::Int(static_cast<int>(c.kind)), sql::Text(c.session),
                    sql::Text(c.rule_id),
                    sql::Text(absl::StrJoin(c.instruments, ",")),
                    sql::Int(static_cast<int>(c.state)),
                    sql::Int(Us(c.due_time)), sql::Int(Us(*c.send_time)),
                    sql::Int(Us(c.expire_time)), sql::Int(0), sql::Text(""),
                    sql::Text(c.message), sql::Bytes(std::move(sealed)),
                    sql::Text(c.created_by.name),
                    sql::Int(static_cast<int>(c.created_by.role)),
                    sql::Text(c.created_by.peer), sql::Int(Us(c.create_time))})
                .status());
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, c.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        RETURN_IF_ERROR(
            events::AppendEvent(
                txn, events::EventFor(call, events::EventType::kFollowUpSent,
                                      c.Name()))
                .status());
        return c;
      },
      std::move(done));
}

absl::StatusOr<CheckIn> FollowUpManager::GetCheckIn(CallContext& call,
                                                    absl::string_view tenant,
                                                    absl::string_view patient,
                                                    absl::string_view id) {
  CheckIn out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(out, LoadCheckIn(txn, *deps_.sealer, tenant, patient, id));
    return absl::OkStatus();
  }));
  Touch(call, tenant, out.Name(), patient);
  out.state = out.StateAt(call.now);
  return out;
}

absl::StatusOr<Page<CheckIn>> FollowUpManager::ListCheckIns(
    CallContext& call, const CheckInFilter& f, int page_size,
    absl::string_view page_token) {
  Touch(call, f.tenant,
        absl::StrCat(PatientName(f.tenant, f.patient), "/checkIns"), f.patient);
  ASSIGN_OR_RETURN(int size, NormalizePageSize(page_size));
  const std::string filter = absl::StrCat("checkins|", f.tenant, "|", f.patient,
                                          "|", f.state, "|", f.session);
  bool first = true;
  ASSIGN_OR_RETURN(PageCursor cursor,
                   DecodePageToken(page_token, filter, &first));
  Page<CheckIn> page;
  const int64_t now = Us(call.now);
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    const bool all = f.patient == "-";
    // A SENT check-in past expire_time is EXPIRED.
    ASSIGN_OR_RETURN(
        auto rows,
        txn.Query(
            absl::StrCat(
                "SELECT ", kCheckInCols,
                " FROM followup_check_ins WHERE tenant = ?"
                " AND (? = 1 OR patient = ?) AND (? = '' OR session = ?)"
                " AND (? = 0 OR (CASE WHEN state = 2 AND expire_us <= ? THEN 4"
                " ELSE state END) = ?)"
                " AND (? = 1 OR due_us < ? OR (due_us = ? AND id < ?))"
                " ORDER BY due_us DESC, id DESC LIMIT ?"),
            {sql::Text(f.tenant), sql::Int(all ? 1 : 0), sql::Text(f.patient),
             sql::Text(f.session), sql::Text(f.session), sql::Int(f.state),
             sql::Int(now), sql::Int(f.state), sql::Int(first ? 1 : 0),
             sql::Int(cursor.key), sql::Int(cursor.key),
             sql::Text(cursor.tiebreak), sql::Int(size + 1)}));
    for (size_t i = 0; i < rows.size() && static_cast<int>(i) < size; ++i) {
      ASSIGN_OR_RETURN(CheckIn c, CheckInFromRow(txn, *deps_.sealer, rows[i]));
      c.state = c.StateAt(call.now);
      page.items.push_back(std::move(c));
    }
    if (static_cast<int>(rows.size()) > size) {
      const CheckIn& last = page.items.back();
      page.next_page_token =
          EncodePageToken({Us(last.due_time), last.id}, filter);
    }
    return absl::OkStatus();
  }));
  return page;
}

std::string StoredResponse::Name() const {
  return absl::StrCat(PatientName(tenant, patient), "/questionnaireResponses/",
                      id);
}

std::string Escalation::Name() const {
  return absl::StrCat(PatientName(tenant, patient), "/escalations/", id);
}

absl::Status FollowUpManager::Migrate(sql::Database& db) {
  RETURN_IF_ERROR(db.Migrate("events", events::EventMigrations()));
  RETURN_IF_ERROR(scheduler::Migrate(db));
  return db.Migrate(kComponent, Migrations());
}

void FollowUpManager::SubmitResponse(CallContext& call, SubmitInput in,
                                     Done<SubmitResult> done) {
  Touch(call, in.tenant,
        absl::StrCat(PatientName(in.tenant, in.patient),
                     "/questionnaireResponses"),
        in.patient);
  const Instrument* instrument = deps_.instruments->Find(in.instrument);
  if (instrument == nullptr) return done(ResourceNotFound());
  if (in.instrument_version != instrument->version) {
    return done(InvalidField(
        "instrument_version", "INSTRUMENT_VERSION_MISMATCH",
        absl::StrCat("instrument_version must be the current version ",
                     instrument->version)));
  }
  std::string check_in_id;
  if (!in.check_in.empty()) {
    auto n = ResourceName::Parse(
        "tenants/{tenant}/patients/{patient}/checkIns/{check_in}", in.check_in,
        "check_in");
    if (!n.ok()) return done(n.status());
    if (n->Get("tenant") != in.tenant || n->Get("patient") != in.patient) {
      return done(ResourceNotFound());
    }
    check_in_id = n->Get("check_in");
  }
  sql::WriteValue<SubmitResult>(
      *deps_.db,
      [this, &call, instrument, check_in_id = std::move(check_in_id),
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<SubmitResult> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(TenantSettings settings, LoadSettings(txn, in.tenant));
        SubmitResult result;
        if (prior) {
          ASSIGN_OR_RETURN(
              ResourceName n,
              ResourceName::Parse("tenants/{tenant}/patients/{patient}/"
                                  "questionnaireResponses/{response}",
                                  *prior, "name"));
          ASSIGN_OR_RETURN(result.response,
                           LoadResponse(txn, *deps_.sealer, in.tenant,
                                        in.patient, n.Get("response")));
          for (const std::string& e : result.response.escalations) {
            ASSIGN_OR_RETURN(ResourceName en,
                             ResourceName::Parse("tenants/{tenant}/patients/"
                                                 "{patient}/escalations/{e}",
                                                 e, "escalation"));
            ASSIGN_OR_RETURN(Escalation esc,
                             LoadEscalation(txn, *deps_.sealer, in.tenant,
                                            in.patient, en.Get("e")));
            result.escalations.push_back(std::move(esc));
          }
          result.crisis_resources = ResourcesToShow(Rescored(result.response),
                                                    settings.crisis_resources);
          call.resource = *prior;
          RETURN_IF_ERROR(Audit(txn, call));
          return result;
        }
        // Validation first: on any error nothing is written.
        std::optional<CheckIn> check_in;
        if (!check_in_id.empty()) {
          ASSIGN_OR_RETURN(check_in, LoadCheckIn(txn, *deps_.sealer, in.tenant,
                                                 in.patient, check_in_id));
          if (std::find(check_in->instruments.begin(),
                        check_in->instruments.end(),
                        instrument->id) == check_in->instruments.end()) {
            return InvalidField("instrument", "INSTRUMENT_NOT_IN_CHECK_IN",
                                "the check-in does not ask for this "
                                "instrument");
          }
          switch (check_in->StateAt(call.now)) {
            case CheckInState::kExpired:
              return FailedPrecondition("CHECK_IN_EXPIRED",
                                        "the check-in has expired");
            case CheckInState::kCancelled:
              return FailedPrecondition("CHECK_IN_CANCELLED",
                                        "the check-in was cancelled");
            case CheckInState::kScheduled:
              return ResourceNotFound();
            default:
              break;
          }
          ASSIGN_OR_RETURN(
              auto answered,
              txn.Query("SELECT id FROM followup_responses WHERE tenant = ? "
                        "AND patient = ? AND check_in = ? AND instrument = ?",
                        {sql::Text(in.tenant), sql::Text(in.patient),
                         sql::Text(in.check_in), sql::Text(instrument->id)}));
          if (!answered.empty()) {
            return FailedPrecondition(
                "ALREADY_ANSWERED",
                "this instrument of the check-in was already answered");
          }
        }
        ASSIGN_OR_RETURN(ScoredResponse scored, Score(*instrument, in.answers,
                                                      ThresholdsOf(settings)));
        StoredResponse& r = result.response;
        r.tenant = in.tenant;
        r.patient = in.patient;
        r.id = crypto::NewOpaqueId(*deps_.random);
        r.instrument = instrument->id;
        r.instrument_version = instrument->version;
        r.check_in = in.check_in;
        if (check_in) r.session = check_in->session;
        r.answers = in.answers;
        r.score = scored.score;
        r.band = scored.band_code;
        r.band_display_name = scored.band_display_name;
        r.flags = scored.flags;
        r.submitted_by = ActorOf(call.principal);
        r.submit_time = call.now;
        call.resource = r.Name();
        for (ResponseFlag flag : scored.flags) {
          const FlagPolicy policy = PolicyFor(flag);
          const auto trigger = TriggerOf(flag);
          if (policy.urgency == Urgency::kNone || !trigger) continue;
          Escalation e;
          e.tenant = r.tenant;
          e.patient = r.patient;
          e.id = crypto::NewOpaqueId(*deps_.random);
          e.trigger = *trigger;
          e.priority = policy.urgency == Urgency::kUrgent
                           ? EscalationPriority::kUrgent
                           : EscalationPriority::kRoutine;
          e.source = r.Name();
          e.create_time = e.update_time = call.now;
          if (e.priority == EscalationPriority::kUrgent) {
            e.ack_deadline = call.now + settings.escalation_ack_deadline;
          }
          RETURN_IF_ERROR(InsertEscalation(txn, e));
          RETURN_IF_ERROR(ScheduleNotification(txn, e));
          if (e.ack_deadline) {
            // Re-escalates at the deadline unless acknowledged first
            // (AcknowledgeEscalation cancels it in its transaction).
            RETURN_IF_ERROR(ScheduleReescalation(txn, e, 1));
          }
          r.escalations.push_back(e.Name());
          result.escalations.push_back(std::move(e));
        }
        ASSIGN_OR_RETURN(
            std::string sealed,
            deps_.sealer->Seal(txn, r.tenant, AnswersToJson(r.answers),
                               AnswersAd(r.Name())));
        RETURN_IF_ERROR(
            txn.Exec(absl::StrCat("INSERT INTO followup_responses (",
                                  kResponseCols,
                                  ") VALUES "
                                  "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
                     {sql::Text(r.tenant), sql::Text(r.patient),
                      sql::Text(r.id), sql::Text(r.instrument),
                      sql::Int(r.instrument_version), sql::Text(r.check_in),
                      sql::Text(r.session), sql::Bytes(std::move(sealed)),
                      sql::Int(r.score ? 1 : 0), sql::Int(r.score.value_or(0)),
                      sql::Text(r.band), sql::Text(r.band_display_name),
                      sql::Text(JoinInts(r.flags)),
                      sql::Text(absl::StrJoin(r.escalations, ",")),
                      sql::Text(r.submitted_by.name),
                      sql::Int(static_cast<int>(r.submitted_by.role)),
                      sql::Text(r.submitted_by.peer),
                      sql::Int(Us(r.submit_time))})
                .status());
        if (check_in) {
          check_in->responses.push_back(r.Name());
          const bool complete =
              check_in->responses.size() >= check_in->instruments.size();
          if (complete) {
            // No reminder or expiry for an answered check-in.
            RETURN_IF_ERROR(scheduler::CancelPrefix(
                                txn, absl::StrCat(check_in->Name(), "/"))
                                .status());
          }
          RETURN_IF_ERROR(
              txn.Exec("UPDATE followup_check_ins SET responses = ?, state = ? "
                       "WHERE tenant = ? AND patient = ? AND id = ?",
                       {sql::Text(absl::StrJoin(check_in->responses, ",")),
                        sql::Int(static_cast<int>(complete
                                                      ? CheckInState::kCompleted
                                                      : check_in->state)),
                        sql::Text(r.tenant), sql::Text(r.patient),
                        sql::Text(check_in->id)})
                  .status());
        }
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, r.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        RETURN_IF_ERROR(
            events::AppendEvent(
                txn, events::EventFor(
                         call, events::EventType::kFollowUpSubmitted, r.Name()))
                .status());
        for (const Escalation& e : result.escalations) {
          RETURN_IF_ERROR(
              events::AppendEvent(
                  txn,
                  events::EventFor(call, events::EventType::kEscalationRaised,
                                   e.Name()))
                  .status());
        }
        result.crisis_resources =
            ResourcesToShow(scored, settings.crisis_resources);
        return result;
      },
      [wake = deps_.wake,
       done = std::move(done)](absl::StatusOr<SubmitResult> r) mutable {
        // The care team's notification is due now: run it without waiting
        // for the scheduler's next pass.
        if (r.ok() && !r->escalations.empty() && wake) wake();
        done(std::move(r));
      });
}

absl::StatusOr<StoredResponse> FollowUpManager::GetResponse(
    CallContext& call, absl::string_view tenant, absl::string_view patient,
    absl::string_view id) {
  StoredResponse out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(out,
                     LoadResponse(txn, *deps_.sealer, tenant, patient, id));
    return absl::OkStatus();
  }));
  Touch(call, tenant, out.Name(), patient);
  return out;
}

absl::StatusOr<Page<StoredResponse>> FollowUpManager::ListResponses(
    CallContext& call, const ResponseFilter& f, int page_size,
    absl::string_view page_token) {
  Touch(call, f.tenant,
        absl::StrCat(PatientName(f.tenant, f.patient.empty() ? "-" : f.patient),
                     "/questionnaireResponses"),
        f.patient);
  if (f.start_time && f.end_time && *f.start_time >= *f.end_time) {
    return InvalidField("end_time", "INVALID_TIME_RANGE",
                        "end_time must be after start_time");
  }
  ASSIGN_OR_RETURN(int size, NormalizePageSize(page_size));
  const std::string filter = absl::StrCat(
      "responses|", f.tenant, "|", f.patient, "|", f.instrument, "|",
      f.flagged_only, "|", f.start_time ? Us(*f.start_time) : 0, "|",
      f.end_time ? Us(*f.end_time) : 0);
  bool first = true;
  ASSIGN_OR_RETURN(PageCursor cursor,
                   DecodePageToken(page_token, filter, &first));
  Page<StoredResponse> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    const bool all = f.patient.empty() || f.patient == "-";
    ASSIGN_OR_RETURN(
        auto rows,
        txn.Query(
            absl::StrCat(
                "SELECT ", kResponseCols,
                " FROM followup_responses WHERE tenant = ?"
                " AND (? = 1 OR patient = ?) AND (? = '' OR instrument = ?)"
                " AND (? = 0 OR flags <> '') AND submit_us >= ? AND "
                "submit_us < ?"
                " AND (? = 1 OR submit_us < ? OR (submit_us = ? AND id < ?))"
                " ORDER BY submit_us DESC, id DESC LIMIT ?"),
            {sql::Text(f.tenant), sql::Int(all ? 1 : 0), sql::Text(f.patient),
             sql::Text(f.instrument), sql::Text(f.instrument),
             sql::Int(f.flagged_only ? 1 : 0),
             sql::Int(f.start_time ? Us(*f.start_time) : INT64_MIN),
             sql::Int(f.end_time ? Us(*f.end_time) : INT64_MAX),
             sql::Int(first ? 1 : 0), sql::Int(cursor.key),
             sql::Int(cursor.key), sql::Text(cursor.tiebreak),
             sql::Int(size + 1)}));
    for (size_t i = 0; i < rows.size() && static_cast<int>(i) < size; ++i) {
      ASSIGN_OR_RETURN(StoredResponse r,
                       ResponseFromRow(txn, *deps_.sealer, rows[i]));
      page.items.push_back(std::move(r));
    }
    if (static_cast<int>(rows.size()) > size) {
      const StoredResponse& last = page.items.back();
      page.next_page_token =
          EncodePageToken({Us(last.submit_time), last.id}, filter);
    }
    return absl::OkStatus();
  }));
  return page;
}

absl::StatusOr<OutcomeSeries> FollowUpManager::GetOutcomeSeries(
    CallContext& call, absl::string_view tenant, absl::string_view patient,
    const Instrument& instrument, std::optional<absl::Time> start,
    std::optional<absl::Time> end) {
  Touch(call, tenant,
        absl::StrCat(PatientName(tenant, patient), "/questionnaireResponses"),
        patient);
  if (start && end && *start >= *end) {
    return InvalidField("end_time", "INVALID_TIME_RANGE",
                        "end_time must be after start_time");
  }
  std::vector<sql::Row> rows;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        rows,
        txn.Query("SELECT id, submit_us, score, band, session FROM "
                  "followup_responses WHERE tenant = ? AND patient = ? "
                  "AND instrument = ? AND has_score = 1 "
                  "ORDER BY submit_us ASC, id ASC",
                  {sql::Text(std::string(tenant)),
                   sql::Text(std::string(patient)), sql::Text(instrument.id)}));
    return absl::OkStatus();
  }));
  OutcomeSeries series;
  if (rows.empty()) return series;
  auto point_of = [&](const sql::Row& row) {
    OutcomePointData p;
    p.response = absl::StrCat(PatientName(tenant, patient),
                              "/questionnaireResponses/", row.Str(0));
    p.time = FromUs(row.Int(1));
    p.score = static_cast<int>(row.Int(2));
    p.band = row.Str(3);
    p.session = row.Str(4);
    return p;
  };
  // No session is known to this service yet (no completed infusions), so the
  // baseline is the patient's first response.
  OutcomePointData baseline = point_of(rows.front());
  baseline.markers = ComputeMarkers(instrument, baseline.score, baseline.score);
  std::vector<OutcomePointData> points;
  for (const sql::Row& row : rows) {
    OutcomePointData p = point_of(row);
    if ((start && p.time < *start) || (end && p.time >= *end)) continue;
    p.markers = ComputeMarkers(instrument, baseline.score, p.score);
    points.push_back(std::move(p));
  }
  constexpr size_t kMaxPoints = 1000;
  if (points.size() > kMaxPoints) {
    points.erase(points.begin(), points.end() - kMaxPoints);
  }
  series.baseline = std::move(baseline);
  series.points = std::move(points);
  return series;
}

absl::StatusOr<Escalation> FollowUpManager::GetEscalation(
    CallContext& call, absl::string_view tenant, absl::string_view patient,
    absl::string_view id) {
  Escalation out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(out,
                     LoadEscalation(txn, *deps_.sealer, tenant, patient, id));
    return absl::OkStatus();
  }));
  Touch(call, tenant, out.Name(), patient);
  return out;
}

absl::StatusOr<Page<Escalation>> FollowUpManager::ListEscalations(
    CallContext& call, const EscalationFilter& f, int page_size,
    absl::string_view page_token) {
  Touch(call, f.tenant,
        absl::StrCat(PatientName(f.tenant, f.patient), "/escalations"),
        f.patient);
  ASSIGN_OR_RETURN(int size, NormalizePageSize(page_size));
  const std::string filter =
      absl::StrCat("escalations|", f.tenant, "|", f.patient, "|", f.state, "|",
                   f.level, "|", f.priority);
  bool first = true;
  ASSIGN_OR_RETURN(PageCursor cursor,
                   DecodePageToken(page_token, filter, &first));
  Page<Escalation> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    const bool all = f.patient == "-";
    ASSIGN_OR_RETURN(
        auto rows,
        txn.Query(
            absl::StrCat(
                "SELECT ", kEscalationCols,
                " FROM followup_escalations WHERE tenant = ?"
                " AND (? = 1 OR patient = ?) AND (? = 0 OR state = ?)"
                " AND (? = 0 OR level = ?) AND (? = 0 OR priority = ?)"
                " AND (? = 1 OR create_us < ? OR (create_us = ? AND id < ?))"
                " ORDER BY create_us DESC, id DESC LIMIT ?"),
            {sql::Text(f.tenant), sql::Int(all ? 1 : 0), sql::Text(f.patient),
             sql::Int(f.state), sql::Int(f.state), sql::Int(f.level),
             sql::Int(f.level), sql::Int(f.priority), sql::Int(f.priority),
             sql::Int(first ? 1 : 0), sql::Int(cursor.key),
             sql::Int(cursor.key), sql::Text(cursor.tiebreak),
             sql::Int(size + 1)}));
    for (size_t i = 0; i < rows.size() && static_cast<int>(i) < size; ++i) {
      ASSIGN_OR_RETURN(Escalation e,
                       EscalationFromRow(txn, *deps_.sealer, rows[i]));
      page.items.push_back(std::move(e));
    }
    if (static_cast<int>(rows.size()) > size) {
      const Escalation& last = page.items.back();
      page.next_page_token =
          EncodePageToken({Us(last.create_time), last.id}, filter);
    }
    return absl::OkStatus();
  }));
  return page;
}

void FollowUpManager::AcknowledgeEscalation(CallContext& call,
                                            std::string tenant,
                                            std::string patient, std::string id,
                                            std::string note,
                                            Done<Escalation> done) {
  Touch(call, tenant,
        absl::StrCat(PatientName(tenant, patient), "/escalations/", id),
        patient);
  if (note.size() > static_cast<size_t>(kMaxNote) * 4 ||
      static_cast<int>(std::count_if(note.begin(), note.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
      })) > kMaxNote) {
    return done(InvalidField("note", "NOTE_TOO_LONG",
                             "note must be at most 2000 code points"));
  }
  sql::WriteValue<Escalation>(
      *deps_.db,
      [this, &call, tenant = std::move(tenant), patient = std::move(patient),
       id = std::move(id),
       note = std::move(note)](sql::Txn& txn) -> absl::StatusOr<Escalation> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(Escalation e, LoadEscalation(txn, *deps_.sealer,
                                                      tenant, patient, id));
        if (prior) {
          RETURN_IF_ERROR(Audit(txn, call));
          return e;
        }
        if (e.state == EscalationState::kAcknowledged) {
          return FailedPrecondition(
              "ESCALATION_ALREADY_ACKNOWLEDGED",
              absl::StrCat("already acknowledged by ", e.acknowledged_by.name));
        }
        e.state = EscalationState::kAcknowledged;
        e.acknowledge_time = e.update_time = call.now;
        e.acknowledged_by = ActorOf(call.principal);
        e.note = note;
        std::string sealed;
        if (!note.empty()) {
          ASSIGN_OR_RETURN(
              sealed, deps_.sealer->Seal(txn, tenant, note, NoteAd(e.Name())));
        }
        RETURN_IF_ERROR(
            txn.Exec("UPDATE followup_escalations SET state = ?, ack_us = ?, "
                     "ack_actor = ?, ack_role = ?, ack_peer = ?, note = ?, "
                     "update_us = ? WHERE tenant = ? AND patient = ? AND "
                     "id = ?",
                     {sql::Int(static_cast<int>(e.state)),
                      sql::Int(Us(call.now)), sql::Text(e.acknowledged_by.name),
                      sql::Int(static_cast<int>(e.acknowledged_by.role)),
                      sql::Text(e.acknowledged_by.peer),
                      sql::Bytes(std::move(sealed)), sql::Int(Us(call.now)),
                      sql::Text(tenant), sql::Text(patient), sql::Text(id)})
                .status());
        // Stops its notification (if not run yet) and re-escalation in the
        // same transaction.
        RETURN_IF_ERROR(
            scheduler::CancelPrefix(txn, absl::StrCat(e.Name(), "/")).status());
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, e.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        RETURN_IF_ERROR(
            events::AppendEvent(
                txn,
                events::EventFor(
                    call, events::EventType::kEscalationAcknowledged, e.Name()))
                .status());
        return e;
      },
      std::move(done));
}

absl::StatusOr<TenantSettings> FollowUpManager::GetSettings(
    CallContext& call, absl::string_view tenant) {
  Touch(call, tenant, absl::StrCat("tenants/", tenant, "/followUpSettings"),
        "");
  TenantSettings out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(out, LoadSettings(txn, tenant));
    return absl::OkStatus();
  }));
  return out;
}

namespace {

// A phone number or short code as a patient dials it: 1..32 of "0-9 +*#()-"
// with at least one digit.
bool IsDialable(absl::string_view n) {
  if (n.empty() || n.size() > 32) return false;
  bool digit = false;
  for (char c : n) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (!absl::StrContains(" +*#()-", c)) {
      return false;
    }
  }
  return digit;
}

}  // namespace

absl::Status ValidateCrisisResources(const CrisisResources& r) {
  constexpr char kField[] = "settings.crisis_resources";
  constexpr char kReason[] = "INVALID_CRISIS_RESOURCES";
  RETURN_IF_ERROR(
      CheckSingleLine(absl::StrCat(kField, ".headline"), r.headline, 1, 200));
  if (r.resources.empty() || r.resources.size() > 10) {
    return InvalidField(absl::StrCat(kField, ".resources"), kReason,
                        "crisis_resources must list 1 to 10 resources");
  }
  bool emergency_number = false;
  for (size_t i = 0; i < r.resources.size(); ++i) {
    const CrisisResource& e = r.resources[i];
    const std::string f = absl::StrCat(kField, ".resources[", i, "]");
    RETURN_IF_ERROR(CheckSingleLine(absl::StrCat(f, ".display_name"),
                                    e.display_name, 1, 100));
    RETURN_IF_ERROR(CheckSingleLine(absl::StrCat(f, ".note"), e.note, 0, 200));
    const std::pair<const char*, const std::string*> numbers[] = {
        {"call_number", &e.call_number}, {"text_number", &e.text_number}};
    for (const auto& [name, number] : numbers) {
      if (!number->empty() && !IsDialable(*number)) {
        return InvalidField(absl::StrCat(f, ".", name), kReason,
                            absl::StrCat(name,
                                         " must be 1 to 32 of the characters "
                                         "0-9 +*#()- with at least one digit"));
      }
    }
    if (!e.chat_url.empty()) {
      RETURN_IF_ERROR(
          CheckSingleLine(absl::StrCat(f, ".chat_url"), e.chat_url, 1, 2048));
      if (!absl::StartsWith(e.chat_url, "https://") || e.chat_url.size() <= 8 ||
          e.chat_url.size() > 2048 || absl::StrContains(e.chat_url, ' ')) {
        return InvalidField(absl::StrCat(f, ".chat_url"), kReason,
                            "chat_url must be an https:// address of at most "
                            "2048 bytes without spaces");
      }
    }
    if (e.call_number.empty() && e.text_number.empty() && e.chat_url.empty()) {
      return InvalidField(f, kReason,
                          "each resource needs a call_number, a text_number "
                          "or a chat_url");
    }
    emergency_number |= e.emergency && !e.call_number.empty();
  }
  if (!emergency_number) {
    return InvalidField(absl::StrCat(kField, ".resources"), kReason,
                        "crisis_resources must include an emergency resource "
                        "(emergency = true) with a call_number, e.g. 911");
  }
  return absl::OkStatus();
}

absl::Status FollowUpManager::ValidateRules(
    const std::vector<CheckInRule>& rules) const {
  if (rules.size() > 20) {
    return InvalidField("settings.rules", "OFFSET_OUT_OF_RANGE",
                        "at most 20 rules");
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    const CheckInRule& r = rules[i];
    const std::string f = absl::StrCat("settings.rules[", i, "]");
    bool id_ok = !r.id.empty() && r.id.size() <= 64;
    for (char ch : r.id) {
      id_ok &= (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
               ch == '_' || ch == '-';
    }
    if (!id_ok) {
      return InvalidField(absl::StrCat(f, ".id"), "INVALID_ID",
                          "id must match [a-z0-9_-]{1,64}");
    }
    for (size_t j = 0; j < i; ++j) {
      if (rules[j].id == r.id) {
        return InvalidField(absl::StrCat(f, ".id"), "DUPLICATE_ID",
                            "rule ids must be unique");
      }
    }
    if (r.anchor != CheckInAnchor::kAfterSessionEnd &&
        r.anchor != CheckInAnchor::kBeforeSessionStart) {
      return InvalidField(absl::StrCat(f, ".anchor"), "INVALID_ANCHOR",
                          "anchor must be CHECK_IN_ANCHOR_AFTER_SESSION_END "
                          "or CHECK_IN_ANCHOR_BEFORE_SESSION_START");
    }
    if (r.offset < absl::ZeroDuration() || r.offset > absl::Hours(24 * 30)) {
      return InvalidField(absl::StrCat(f, ".offset"), "OFFSET_OUT_OF_RANGE",
                          "offset must be 0..30 days");
    }
    if (r.anchor == CheckInAnchor::kBeforeSessionStart &&
        r.offset < absl::Minutes(1)) {
      return InvalidField(absl::StrCat(f, ".offset"), "OFFSET_OUT_OF_RANGE",
                          "a BEFORE_SESSION_START offset must be at least 1 "
                          "minute (the check-in expires when the session "
                          "starts)");
    }
    if (r.reminder_after < absl::ZeroDuration() ||
        r.reminder_after > absl::Hours(24 * 14)) {
      return InvalidField(absl::StrCat(f, ".reminder_after"),
                          "OFFSET_OUT_OF_RANGE",
                          "reminder_after must be 0..14 days");
    }
    if (r.expire_after <= absl::ZeroDuration() ||
        r.expire_after > absl::Hours(24 * 14)) {
      return InvalidField(absl::StrCat(f, ".expire_after"),
                          "OFFSET_OUT_OF_RANGE",
                          "expire_after must be more than 0, at most 14 days");
    }
    if (r.instruments.empty() || r.instruments.size() > 5) {
      return InvalidField(absl::StrCat(f, ".instruments"), "UNKNOWN_INSTRUMENT",
                          "a rule names 1 to 5 instruments");
    }
    for (size_t j = 0; j < r.instruments.size(); ++j) {
      if (deps_.instruments->Find(r.instruments[j]) == nullptr) {
        return InvalidField(absl::StrCat(f, ".instruments[", j, "]"),
                            "UNKNOWN_INSTRUMENT", "no such instrument");
      }
    }
  }
  return absl::OkStatus();
}

void FollowUpManager::UpdateSettings(CallContext& call, std::string tenant,
                                     TenantSettings in,
                                     std::vector<std::string> paths,
                                     Done<TenantSettings> done) {
  Touch(call, tenant, absl::StrCat("tenants/", tenant, "/followUpSettings"),
        "");
  if (paths.empty()) {
    return done(InvalidField("update_mask", "INVALID_UPDATE_MASK",
                             "update_mask must name at least one field"));
  }
  for (const std::string& p : paths) {
    if (p != "escalation_ack_deadline" &&
        p != "blood_pressure_systolic_threshold" &&
        p != "blood_pressure_diastolic_threshold" && p != "rules" &&
        p != "crisis_resources") {
      return done(InvalidField(
          "update_mask", "INVALID_UPDATE_MASK",
          absl::StrCat("'", p,
                       "' is not an updatable path of this server "
                       "(urgent_message_read_timeout is not supported yet)")));
    }
    if (p == "rules") {
      absl::Status valid = ValidateRules(in.rules);
      if (!valid.ok()) return done(valid);
    }
    if (p == "crisis_resources") {
      absl::Status valid = ValidateCrisisResources(in.crisis_resources);
      if (!valid.ok()) return done(valid);
    }
  }
  sql::WriteValue<TenantSettings>(
      *deps_.db,
      [this, &call, tenant = std::move(tenant), in, paths = std::move(paths)](
          sql::Txn& txn) -> absl::StatusOr<TenantSettings> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(TenantSettings s, LoadSettings(txn, tenant));
        if (prior) {
          RETURN_IF_ERROR(Audit(txn, call));
          return s;
        }
        for (const std::string& p : paths) {
          if (p == "rules") {
            s.rules = in.rules;
          } else if (p == "crisis_resources") {
            s.crisis_resources = in.crisis_resources;
          } else if (p == "escalation_ack_deadline") {
            s.escalation_ack_deadline = in.escalation_ack_deadline;
          } else if (p == "blood_pressure_systolic_threshold") {
            s.bp_systolic_threshold = in.bp_systolic_threshold;
          } else {
            s.bp_diastolic_threshold = in.bp_diastolic_threshold;
          }
        }
        if (s.escalation_ack_deadline < absl::Minutes(1) ||
            s.escalation_ack_deadline > absl::Hours(24)) {
          return InvalidField("settings.escalation_ack_deadline",
                              "OFFSET_OUT_OF_RANGE",
                              "escalation_ack_deadline must be 1 min..24 h");
        }
        absl::Status t = ValidateSafetyThresholds(ThresholdsOf(s));
        if (!t.ok()) {
          return InvalidField(
              "settings.blood_pressure_systolic_threshold",
              kReasonThresholdOutOfRange,
              "thresholds must be valid readings, diastolic below systolic");
        }
        s.update_time = call.now;
        RETURN_IF_ERROR(
            txn.Exec("INSERT INTO followup_settings (tenant, bp_systolic, "
                     "bp_diastolic, ack_deadline_us, update_us, rules, "
                     "crisis_resources) VALUES "
                     "(?,?,?,?,?,?,?) ON CONFLICT (tenant) DO UPDATE SET "
                     "bp_systolic = excluded.bp_systolic, bp_diastolic = "
                     "excluded.bp_diastolic, ack_deadline_us = "
                     "excluded.ack_deadline_us, update_us = "
                     "excluded.update_us, rules = excluded.rules, "
                     "crisis_resources = excluded.crisis_resources",
                     {sql::Text(tenant), sql::Int(s.bp_systolic_threshold),
                      sql::Int(s.bp_diastolic_threshold),
                      sql::Int(
                          absl::ToInt64Microseconds(s.escalation_ack_deadline)),
                      sql::Int(Us(call.now)), sql::Text(RulesToJson(s.rules)),
                      sql::Text(CrisisResourcesToJson(s.crisis_resources))})
                .status());
        RETURN_IF_ERROR(RememberIdempotentResult(
            txn, call, absl::StrCat("tenants/", tenant, "/followUpSettings")));
        RETURN_IF_ERROR(Audit(txn, call));
        return s;
      },
      std::move(done));
}

// --- Scheduled work ---

namespace {

constexpr char kCheckInPattern[] =
    "tenants/{tenant}/patients/{patient}/checkIns/{check_in}";
constexpr char kEscalationPattern[] =
    "tenants/{tenant}/patients/{patient}/escalations/{escalation}";
constexpr char kSessionPattern[] =
    "tenants/{tenant}/patients/{patient}/sessions/{session}";

// One session event to apply, with what the lookup found.
struct SessionWork {
  events::EventRecord event;
  std::optional<SessionTimes> times;  // unset for a cancelled session
};

absl::StatusOr<std::vector<std::string>> EventTenants(sql::Txn& txn) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT tenant FROM event_heads ORDER BY tenant", {}));
  std::vector<std::string> out;
  for (const sql::Row& r : rows) out.push_back(r.Str(0));
  return out;
}

absl::StatusOr<int64_t> LoadCursor(sql::Txn& txn, absl::string_view tenant) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT cursor FROM followup_event_cursors WHERE tenant = ?",
                {sql::Text(std::string(tenant))}));
  return rows.empty() ? 0 : rows[0].Int(0);
}

absl::Status UpdateCheckInState(sql::Txn& txn, const CheckIn& c) {
  return txn
      .Exec(
          "UPDATE followup_check_ins SET state = ?, send_us = ?, expire_us = ?,"
          " reminders = ?, message = ? WHERE tenant = ? AND patient = ? AND "
          "id = ?",
          {sql::Int(static_cast<int>(c.state)),
           sql::Int(c.send_time ? Us(*c.send_time) : 0),
           sql::Int(Us(c.expire_time)), sql::Int(c.reminders_sent),
           sql::Text(c.message), sql::Text(c.tenant), sql::Text(c.patient),
           sql::Text(c.id)})
      .status();
}

// A session's check-ins still SCHEDULED become CANCELLED, with their jobs.
absl::Status CancelPlannedCheckIns(sql::Txn& txn, const std::string& tenant,
                                   const std::string& patient,
                                   const std::string& session) {
  RETURN_IF_ERROR(
      scheduler::CancelPrefix(txn, absl::StrCat(session, "/followup:"))
          .status());
  return txn
      .Exec(
          "UPDATE followup_check_ins SET state = ? WHERE tenant = ? AND "
          "patient = ? AND session = ? AND state = ?",
          {sql::Int(static_cast<int>(CheckInState::kCancelled)),
           sql::Text(tenant), sql::Text(patient), sql::Text(session),
           sql::Int(static_cast<int>(CheckInState::kScheduled))})
      .status();
}

// Plans the SCHEDULED check-in of `rule` for `session`, due at `due` and
// open until `expire`, with its job (key {session}/followup:{rule}). If the
// job exists already, a check-in still SCHEDULED moves to the new times
// when `move` is set; one already sent, answered, expired or cancelled
// stays as it is.
absl::Status PlanCheckIn(sql::Txn& txn, const CallContext& sys,
                         const std::string& patient, const std::string& session,
                         const CheckInRule& rule, absl::Time due,
                         absl::Time expire, bool move) {
  CheckIn c;
  c.tenant = sys.tenant;
  c.patient = patient;
  c.id = ScheduledCheckInId(session, rule.id);
  c.kind = CheckInKind::kScheduled;
  c.session = session;
  c.rule_id = rule.id;
  c.instruments = rule.instruments;
  c.state = CheckInState::kScheduled;
  c.due_time = due;
  c.expire_time = expire;
  c.created_by = ActorOf(sys.principal);
  c.create_time = sys.now;
  scheduler::Job job;
  job.key = absl::StrCat(session, "/followup:", rule.id);
  job.tenant = c.tenant;
  job.kind = kCheckInJobKind;
  job.due = c.due_time;
  job.payload = c.Name();
  ASSIGN_OR_RETURN(bool created, scheduler::Schedule(txn, job));
  if (!created) {
    if (!move) return absl::OkStatus();
    ASSIGN_OR_RETURN(
        int64_t moved,
        txn.Exec("UPDATE followup_check_ins SET due_us = ?, expire_us = ? "
                 "WHERE tenant = ? AND patient = ? AND id = ? AND state = ?",
                 {sql::Int(Us(due)), sql::Int(Us(expire)), sql::Text(c.tenant),
                  sql::Text(patient), sql::Text(c.id),
                  sql::Int(static_cast<int>(CheckInState::kScheduled))}));
    if (moved == 0) return absl::OkStatus();
    return scheduler::Reschedule(txn, job.key, due);
  }
  return txn
      .Exec(
          absl::StrCat("INSERT INTO followup_check_ins (", kCheckInCols,
                       ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                       " ON CONFLICT (tenant, patient, id) DO NOTHING"),
          {sql::Text(c.tenant), sql::Text(c.patient), sql::Text(c.id),
           sql::Int(static_cast<int>(c.kind)), sql::Text(c.session),
           sql::Text(c.rule_id), sql::Text(absl::StrJoin(c.instruments, ",")),
           sql::Int(static_cast<int>(c.state)), sql::Int(Us(c.due_time)),
           sql::Int(0), sql::Int(Us(c.expire_time)), sql::Int(0), sql::Text(""),
           sql::Text(""), sql::Bytes(""), sql::Text(c.created_by.name),
           sql::Int(static_cast<int>(c.created_by.role)),
           sql::Text(c.created_by.peer), sql::Int(Us(c.create_time))})
      .status();
}

// What one session event means for the session's check-ins (see
// IngestSessionEvents).
absl::Status ApplySessionEvent(sql::Txn& txn, const CallContext& sys,
                               const TenantSettings& settings,
                               const std::string& patient,
                               const SessionWork& w) {
  const std::string& session = w.event.resource;
  if (!w.times) {
    return CancelPlannedCheckIns(txn, sys.tenant, patient, session);
  }
  if (w.event.type == events::EventType::kSessionCompleted) {
    // A check-in still waiting to go out before the session is too late
    // now; the ones after its end start here.
    RETURN_IF_ERROR(CancelPlannedCheckIns(txn, sys.tenant, patient, session));
    const absl::Time end = w.times->end.value_or(w.event.time);
    for (const CheckInRule& rule : settings.rules) {
      if (rule.anchor != CheckInAnchor::kAfterSessionEnd) continue;
      const absl::Time due = end + rule.offset;
      RETURN_IF_ERROR(PlanCheckIn(txn, sys, patient, session, rule, due,
                                  due + rule.expire_after, /*move=*/false));
    }
    return absl::OkStatus();
  }
  // Scheduled or moved: the check-ins before its (current) start. A session
  // that has started or ended by now gets none.
  const absl::Time start = w.times->start;
  if (w.times->end || start <= sys.now) return absl::OkStatus();
  for (const CheckInRule& rule : settings.rules) {
    if (rule.anchor != CheckInAnchor::kBeforeSessionStart) continue;
    const absl::Time due = std::max(start - rule.offset, sys.now);
    const absl::Time expire = std::min(due + rule.expire_after, start);
    RETURN_IF_ERROR(PlanCheckIn(txn, sys, patient, session, rule, due, expire,
                                /*move=*/true));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FollowUpManager::IngestSessionEvents(absl::Time now,
                                                  const SessionLookup& lookup) {
  std::vector<std::string> tenants;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(tenants, EventTenants(txn));
    return absl::OkStatus();
  }));
  absl::Status first_error;
  for (const std::string& tenant : tenants) {
    while (true) {
      events::EventBatch batch;
      int64_t cursor = 0;
      RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
        ASSIGN_OR_RETURN(cursor, LoadCursor(txn, tenant));
        events::EventQuery q;
        q.tenant = tenant;
        q.after = cursor;
        q.types = {events::EventType::kSessionScheduled,
                   events::EventType::kSessionMoved,
                   events::EventType::kSessionCompleted,
                   events::EventType::kSessionCancelled};
        q.limit = 100;
        ASSIGN_OR_RETURN(batch, events::ReadEvents(txn, q));
        return absl::OkStatus();
      }));
      if (batch.scanned_through <= cursor) break;
      // Lookups happen outside any transaction; an unavailable lookup stops
      // at that event so nothing after it is skipped.
      std::vector<SessionWork> work;
      int64_t through = batch.scanned_through;
      absl::Status stop;
      for (const events::EventRecord& e : batch.events) {
        SessionWork w{e, std::nullopt};
        if (e.type != events::EventType::kSessionCancelled) {
          absl::StatusOr<SessionTimes> t = lookup(e.resource);
          if (absl::IsNotFound(t.status())) continue;
          if (!t.ok()) {
            stop = t.status();
            through = e.cursor - 1;
            break;
          }
          w.times = *t;
        }
        work.push_back(std::move(w));
      }
      RETURN_IF_ERROR(deps_.db->WriteAndWait([&](sql::Txn& txn)
                                                 -> absl::Status {
        ASSIGN_OR_RETURN(int64_t stored, LoadCursor(txn, tenant));
        ASSIGN_OR_RETURN(TenantSettings settings, LoadSettings(txn, tenant));
        for (const SessionWork& w : work) {
          if (w.event.cursor <= stored) continue;  // another replica did it
          auto sn =
              ResourceName::Parse(kSessionPattern, w.event.resource, "session");
          if (!sn.ok() || sn->Get("tenant") != tenant) continue;
          const std::string patient = sn->Get("patient");
          CallContext sys =
              SystemCall(*deps_.random,
                         w.times ? "careseal.system/ScheduleFollowUpCheckIns"
                                 : "careseal.system/CancelFollowUpCheckIns",
                         now, tenant, w.event.resource, patient);
          RETURN_IF_ERROR(ApplySessionEvent(txn, sys, settings, patient, w));
          RETURN_IF_ERROR(Audit(txn, sys));
        }
        if (through > stored) {
          RETURN_IF_ERROR(
              txn.Exec("INSERT INTO followup_event_cursors (tenant, cursor) "
                       "VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET "
                       "cursor = excluded.cursor",
                       {sql::Text(tenant), sql::Int(through)})
                  .status());
        }
        return absl::OkStatus();
      }));
      if (!stop.ok()) {
        if (first_error.ok()) first_error = stop;
        break;
      }
      if (!batch.more) break;
    }
  }
  return first_error;
}

absl::StatusOr<CheckIn> FollowUpManager::CheckInOfJob(
    const scheduler::Job& job) {
  ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kCheckInPattern,
                                                       job.payload, "payload"));
  CheckIn out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(out, LoadCheckIn(txn, *deps_.sealer, n.Get("tenant"),
                                      n.Get("patient"), n.Get("check_in")));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status FollowUpManager::CommitCheckInSent(sql::Txn& txn,
                                                const scheduler::Job& job,
                                                absl::Time now,
                                                const std::string& message) {
  ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kCheckInPattern,
                                                       job.payload, "payload"));
  ASSIGN_OR_RETURN(CheckIn c, LoadCheckIn(txn, *deps_.sealer, n.Get("tenant"),
                                          n.Get("patient"), n.Get("check_in")));
  if (c.state != CheckInState::kScheduled) return absl::OkStatus();
  if (message.empty()) {
    // Not sent because its time to be answered had passed (the job ran
    // late): it expires unsent.
    if (now < c.expire_time) return absl::OkStatus();
    c.state = CheckInState::kExpired;
    RETURN_IF_ERROR(UpdateCheckInState(txn, c));
    CallContext sys = SystemCall(*deps_.random, "careseal.system/ExpireCheckIn",
                                 now, c.tenant, c.Name(), c.patient);
    return Audit(txn, sys);
  }
  ASSIGN_OR_RETURN(TenantSettings settings, LoadSettings(txn, c.tenant));
  absl::Duration remind = absl::ZeroDuration();
  absl::Duration expire = c.expire_time - c.due_time;
  bool before_start = false;
  for (const CheckInRule& r : settings.rules) {
    if (r.id == c.rule_id) {
      remind = r.reminder_after;
      expire = r.expire_after;
      before_start = r.anchor == CheckInAnchor::kBeforeSessionStart;
    }
  }
  c.state = CheckInState::kSent;
  c.send_time = now;
  // Open for expire_after from now; one before a session closes when the
  // session starts (the planned expiry) at the latest.
  c.expire_time =
      before_start ? std::min(now + expire, c.expire_time) : now + expire;
  c.message = message;
  RETURN_IF_ERROR(UpdateCheckInState(txn, c));
  CallContext sys = SystemCall(*deps_.random, "careseal.system/SendCheckIn",
                               now, c.tenant, c.Name(), c.patient);
  RETURN_IF_ERROR(Audit(txn, sys));
  RETURN_IF_ERROR(events::AppendEvent(
                      txn, events::EventFor(
                               sys, events::EventType::kFollowUpSent, c.Name()))
                      .status());
  scheduler::Job next;
  next.tenant = c.tenant;
  next.payload = c.Name();
  if (remind > absl::ZeroDuration() && now + remind < c.expire_time) {
    next.key = absl::StrCat(c.Name(), "/remind:1");
    next.kind = kRemindJobKind;
    next.due = now + remind;
    RETURN_IF_ERROR(scheduler::Schedule(txn, next).status());
  }
  next.key = absl::StrCat(c.Name(), "/expire");
  next.kind = kExpireJobKind;
  next.due = c.expire_time;
  return scheduler::Schedule(txn, next).status();
}

absl::Status FollowUpManager::CommitReminder(sql::Txn& txn,
                                             const scheduler::Job& job,
                                             absl::Time now, bool sent) {
  if (!sent) return absl::OkStatus();
  ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kCheckInPattern,
                                                       job.payload, "payload"));
  ASSIGN_OR_RETURN(CheckIn c, LoadCheckIn(txn, *deps_.sealer, n.Get("tenant"),
                                          n.Get("patient"), n.Get("check_in")));
  c.reminders_sent += 1;
  RETURN_IF_ERROR(UpdateCheckInState(txn, c));
  CallContext sys = SystemCall(*deps_.random, "careseal.system/RemindCheckIn",
                               now, c.tenant, c.Name(), c.patient);
  return Audit(txn, sys);
}

absl::Status FollowUpManager::CommitExpiry(sql::Txn& txn,
                                           const scheduler::Job& job,
                                           absl::Time now) {
  ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kCheckInPattern,
                                                       job.payload, "payload"));
  ASSIGN_OR_RETURN(CheckIn c, LoadCheckIn(txn, *deps_.sealer, n.Get("tenant"),
                                          n.Get("patient"), n.Get("check_in")));
  if (c.state != CheckInState::kSent) return absl::OkStatus();
  c.state = CheckInState::kExpired;
  RETURN_IF_ERROR(UpdateCheckInState(txn, c));
  RETURN_IF_ERROR(
      scheduler::CancelPrefix(txn, absl::StrCat(c.Name(), "/remind:"))
          .status());
  CallContext sys = SystemCall(*deps_.random, "careseal.system/ExpireCheckIn",
                               now, c.tenant, c.Name(), c.patient);
  return Audit(txn, sys);
}

namespace {

// The escalation named by an escalation job's payload, as stored.
absl::StatusOr<Escalation> LoadEscalationOfJob(sql::Txn& txn, Sealer& sealer,
                                               const scheduler::Job& job) {
  ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kEscalationPattern,
                                                       job.payload, "payload"));
  return LoadEscalation(txn, sealer, n.Get("tenant"), n.Get("patient"),
                        n.Get("escalation"));
}

}  // namespace

absl::StatusOr<Escalation> FollowUpManager::EscalationOfJob(
    const scheduler::Job& job) {
  Escalation out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(out, LoadEscalationOfJob(txn, *deps_.sealer, job));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status FollowUpManager::CommitNotification(
    sql::Txn& txn, const scheduler::Job& job, absl::Time now,
    const std::vector<std::string>& care_team) {
  ASSIGN_OR_RETURN(Escalation e, LoadEscalationOfJob(txn, *deps_.sealer, job));
  // Acknowledged or re-escalated meanwhile: nothing left to notify.
  if (e.state != EscalationState::kOpen ||
      e.level != EscalationLevel::kPrimary) {
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(
      txn.Exec("UPDATE followup_escalations SET recipients = ?, update_us = ? "
               "WHERE tenant = ? AND patient = ? AND id = ?",
               {sql::Text(absl::StrJoin(care_team, ",")), sql::Int(Us(now)),
                sql::Text(e.tenant), sql::Text(e.patient), sql::Text(e.id)})
          .status());
  CallContext sys =
      SystemCall(*deps_.random, "careseal.system/NotifyEscalation", now,
                 e.tenant, e.Name(), e.patient);
  return Audit(txn, sys);
}

absl::Status FollowUpManager::CommitReescalation(
    sql::Txn& txn, const scheduler::Job& job, absl::Time now,
    const std::vector<std::string>& recipients) {
  ASSIGN_OR_RETURN(Escalation e, LoadEscalationOfJob(txn, *deps_.sealer, job));
  if (e.state != EscalationState::kOpen) return absl::OkStatus();
  ASSIGN_OR_RETURN(TenantSettings settings, LoadSettings(txn, e.tenant));
  int round = 1;
  const std::string prefix = ReescalatePrefix(e);
  if (absl::StartsWith(job.key, prefix)) {
    if (!absl::SimpleAtoi(job.key.substr(prefix.size()), &round)) round = 1;
  }
  e.level = EscalationLevel::kBackup;
  if (!e.reescalate_time) e.reescalate_time = now;
  e.ack_deadline = now + settings.escalation_ack_deadline;
  e.recipients = recipients;
  e.update_time = now;
  RETURN_IF_ERROR(
      txn.Exec("UPDATE followup_escalations SET level = ?, reescalate_us = ?,"
               " ack_deadline_us = ?, recipients = ?, update_us = ? WHERE "
               "tenant = ? AND patient = ? AND id = ?",
               {sql::Int(static_cast<int>(e.level)),
                sql::Int(Us(*e.reescalate_time)), sql::Int(Us(*e.ack_deadline)),
                sql::Text(absl::StrJoin(e.recipients, ",")), sql::Int(Us(now)),
                sql::Text(e.tenant), sql::Text(e.patient), sql::Text(e.id)})
          .status());
  CallContext sys =
      SystemCall(*deps_.random, "careseal.system/ReescalateEscalation", now,
                 e.tenant, e.Name(), e.patient);
  RETURN_IF_ERROR(Audit(txn, sys));
  RETURN_IF_ERROR(
      events::AppendEvent(
          txn, events::EventFor(sys, events::EventType::kEscalationReescalated,
                                e.Name()))
          .status());
  // While unacknowledged, the on-call clinicians are notified again at each
  // further deadline.
  return ScheduleReescalation(txn, e, round + 1);
}

}  // namespace careseal::followup
