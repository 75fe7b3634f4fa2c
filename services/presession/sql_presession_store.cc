#include "services/presession/sql_presession_store.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "services/common/crypto/encoding.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/policy.h"
#include "services/common/status.h"

namespace careseal::presession {
namespace {

using Json = nlohmann::json;
using sql::Bytes;
using sql::Int;
using sql::Text;

int64_t Us(absl::Duration d) { return absl::ToInt64Microseconds(d); }
absl::Duration Dur(const Json& j) {
  return absl::Microseconds(j.get<int64_t>());
}
int64_t T(absl::Time t) { return ToMicros(t); }
absl::Time Tm(const Json& j) { return FromMicros(j.get<int64_t>()); }

Role RoleFromName(absl::string_view name) {
  for (Role r : kAllRoles) {
    if (RoleName(r) == name) return r;
  }
  return Role::kSystem;
}

Json ToJson(const Actor& a) {
  return Json{{"name", a.name},
              {"role", std::string(RoleName(a.role))},
              {"peer", a.peer}};
}
Actor ActorFrom(const Json& j) {
  return Actor{j.at("name").get<std::string>(),
               RoleFromName(j.at("role").get<std::string>()),
               j.at("peer").get<std::string>()};
}

absl::StatusOr<Json> ParseDoc(const std::string& doc) {
  Json j = Json::parse(doc, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Internal("CORRUPT_RECORD", "a pre-session record is unreadable");
  }
  return j;
}

std::string Dump(const Json& j) { return j.dump(); }

// --- settings
Json ToJson(const Settings& s) {
  Json offsets = Json::array();
  for (absl::Duration d : s.delivery.offsets) offsets.push_back(Us(d));
  Json j{{"offsets", offsets},
         {"reminder_after", Us(s.delivery.reminder_after)},
         {"max_reminders", s.delivery.max_reminders},
         {"default_template", s.default_template}};
  if (s.update_time) j["update_time"] = T(*s.update_time);
  return j;
}
Settings SettingsFrom(absl::string_view tenant, const Json& j) {
  Settings s;
  s.tenant = std::string(tenant);
  s.delivery.offsets.clear();
  for (const Json& o : j.at("offsets")) s.delivery.offsets.push_back(Dur(o));
  s.delivery.reminder_after = Dur(j.at("reminder_after"));
  s.delivery.max_reminders = j.at("max_reminders").get<int>();
  s.default_template = j.at("default_template").get<std::string>();
  if (j.contains("update_time")) s.update_time = Tm(j.at("update_time"));
  return s;
}

// --- templates
Json ToJson(const InstructionTemplate& t) {
  return Json{{"display_name", t.display_name},
              {"latest_version", t.latest_version},
              {"create_time", T(t.create_time)},
              {"update_time", T(t.update_time)}};
}
InstructionTemplate TemplateFrom(const sql::Row& r, const Json& j) {
  InstructionTemplate t;
  t.tenant = r.Str(0);
  t.id = r.Str(1);
  t.display_name = j.at("display_name").get<std::string>();
  t.latest_version = j.at("latest_version").get<int>();
  t.create_time = Tm(j.at("create_time"));
  t.update_time = Tm(j.at("update_time"));
  return t;
}

Json ContentToJson(const InstructionContent& c) {
  Json holds = Json::array(), bring = Json::array(), acks = Json::array();
  for (const auto& h : c.medication_holds) {
    holds.push_back(Json{{"id", h.id}, {"text", h.text}});
  }
  for (const auto& b : c.what_to_bring) bring.push_back(b);
  for (const auto& a : c.discharge_acknowledgements) {
    acks.push_back(
        Json{{"id", a.id}, {"text", a.text}, {"required", a.required}});
  }
  return Json{{"title", c.title},
              {"body_markdown", c.body_markdown},
              {"solids_cutoff", Us(c.solids_cutoff)},
              {"clear_liquids_cutoff", Us(c.clear_liquids_cutoff)},
              {"escort_required", c.escort_required},
              {"medication_holds", holds},
              {"what_to_bring", bring},
              {"arrival_lead", Us(c.arrival_lead)},
              {"discharge_acknowledgements", acks}};
}
InstructionContent ContentFrom(const Json& j) {
  InstructionContent c;
  c.title = j.at("title").get<std::string>();
  c.body_markdown = j.at("body_markdown").get<std::string>();
  c.solids_cutoff = Dur(j.at("solids_cutoff"));
  c.clear_liquids_cutoff = Dur(j.at("clear_liquids_cutoff"));
  c.escort_required = j.at("escort_required").get<bool>();
  for (const Json& h : j.at("medication_holds")) {
    c.medication_holds.push_back(
        {h.at("id").get<std::string>(), h.at("text").get<std::string>()});
  }
  for (const Json& b : j.at("what_to_bring")) {
    c.what_to_bring.push_back(b.get<std::string>());
  }
  c.arrival_lead = Dur(j.at("arrival_lead"));
  for (const Json& a : j.at("discharge_acknowledgements")) {
    c.discharge_acknowledgements.push_back({a.at("id").get<std::string>(),
                                            a.at("text").get<std::string>(),
                                            a.at("required").get<bool>()});
  }
  return c;
}

// --- series
Json ToJson(const Series& s) {
  return Json{{"procedure_code", s.procedure_code},
              {"clinician", s.clinician},
              {"location", s.location},
              {"instruction_template", s.instruction_template},
              {"dose_plan_ref", s.dose_plan_ref},
              {"session_count", s.session_count},
              {"create_time", T(s.create_time)},
              {"update_time", T(s.update_time)}};
}

// --- sessions
Json ToJson(const Session& s) {
  Json j{{"series", s.series},
         {"procedure_code", s.procedure_code},
         {"kind", static_cast<int>(s.kind)},
         {"sequence_number", s.sequence_number},
         {"duration", Us(s.duration)},
         {"location", s.location},
         {"clinician", s.clinician},
         {"dose_plan_ref", s.dose_plan_ref},
         {"external_id", s.external_id},
         {"template_version", s.template_version},
         {"readiness", s.readiness},
         {"create_time", T(s.create_time)},
         {"update_time", T(s.update_time)},
         {"cancel_reason", s.cancel_reason}};
  if (s.cancel_time) j["cancel_time"] = T(*s.cancel_time);
  if (s.end_time) j["end_time"] = T(*s.end_time);
  if (s.readiness_override) {
    Json reasons = Json::array();
    for (ReadinessReason r : s.readiness_override->reasons) {
      reasons.push_back(static_cast<int>(r));
    }
    j["override"] = Json{{"clinician", ToJson(s.readiness_override->clinician)},
                         {"reasons", reasons},
                         {"create_time", T(s.readiness_override->create_time)}};
  }
  return j;
}

constexpr char kSessionColumns[] =
    "tenant, patient, session_id, start_us, state, doc, override_sealed";

absl::StatusOr<SessionRow> SessionFrom(const sql::Row& r) {
  ASSIGN_OR_RETURN(Json j, ParseDoc(r.Str(5)));
  SessionRow row;
  Session& s = row.session;
  s.tenant = r.Str(0);
  s.patient = r.Str(1);
  s.id = r.Str(2);
  s.start = FromMicros(r.Int(3));
  s.state = static_cast<SessionState>(r.Int(4));
  s.series = j.at("series").get<std::string>();
  s.procedure_code = j.at("procedure_code").get<std::string>();
  s.kind = static_cast<SessionKind>(j.at("kind").get<int>());
  s.sequence_number = j.at("sequence_number").get<int>();
  s.duration = Dur(j.at("duration"));
  s.location = j.at("location").get<std::string>();
  s.clinician = j.at("clinician").get<std::string>();
  s.dose_plan_ref = j.at("dose_plan_ref").get<std::string>();
  s.external_id = j.at("external_id").get<std::string>();
  s.template_version = j.at("template_version").get<std::string>();
  s.readiness = j.at("readiness").get<int>();
  s.create_time = Tm(j.at("create_time"));
  s.update_time = Tm(j.at("update_time"));
  s.cancel_reason = j.at("cancel_reason").get<std::string>();
  if (j.contains("cancel_time")) s.cancel_time = Tm(j.at("cancel_time"));
  if (j.contains("end_time")) s.end_time = Tm(j.at("end_time"));
  if (j.contains("override")) {
    const Json& o = j.at("override");
    ReadinessOverride ov;
    ov.clinician = ActorFrom(o.at("clinician"));
    for (const Json& reason : o.at("reasons")) {
      ov.reasons.push_back(static_cast<ReadinessReason>(reason.get<int>()));
    }
    ov.create_time = Tm(o.at("create_time"));
    s.readiness_override = std::move(ov);
  }
  row.override_reason_sealed = r.IsNull(6) ? "" : r.Str(6);
  return row;
}

// --- attestations
Json ToJson(const Attestation& a) {
  return Json{{"template_version", a.template_version},
              {"content_sha256", crypto::HexEncode(a.content_sha256)},
              {"acknowledged_ids", a.acknowledged_ids},
              {"attested_by", ToJson(a.attested_by)},
              {"create_time", T(a.create_time)}};
}

}  // namespace

std::vector<sql::Migration> PreSessionMigrations() {
  return {
      {1,
       "CREATE TABLE ps_settings (tenant TEXT PRIMARY KEY, doc TEXT NOT NULL);"
       "CREATE TABLE ps_templates (tenant TEXT NOT NULL,"
       "  template_id TEXT NOT NULL, create_us BIGINT NOT NULL,"
       "  doc TEXT NOT NULL, PRIMARY KEY (tenant, template_id));"
       "CREATE TABLE ps_versions (tenant TEXT NOT NULL,"
       "  template_id TEXT NOT NULL, version BIGINT NOT NULL,"
       "  canonical BLOB NOT NULL, content_sha256 BLOB NOT NULL,"
       "  publish_us BIGINT NOT NULL, publisher TEXT NOT NULL,"
       "  PRIMARY KEY (tenant, template_id, version));"
       "CREATE TABLE ps_series (tenant TEXT NOT NULL, patient TEXT NOT NULL,"
       "  series_id TEXT NOT NULL, create_us BIGINT NOT NULL,"
       "  seq BIGINT NOT NULL, state BIGINT NOT NULL, doc TEXT NOT NULL,"
       "  PRIMARY KEY (tenant, patient, series_id));"
       "CREATE TABLE ps_sessions (tenant TEXT NOT NULL,"
       "  patient TEXT NOT NULL, session_id TEXT NOT NULL,"
       "  series TEXT NOT NULL, start_us BIGINT NOT NULL,"
       "  state BIGINT NOT NULL, doc TEXT NOT NULL, override_sealed BLOB,"
       "  PRIMARY KEY (tenant, patient, session_id));"
       "CREATE INDEX ps_sessions_start ON ps_sessions (tenant, start_us);"
       "CREATE TABLE ps_attestations (tenant TEXT NOT NULL,"
       "  patient TEXT NOT NULL, session_id TEXT NOT NULL,"
       "  attestation_id TEXT NOT NULL, seq BIGINT NOT NULL,"
       "  doc TEXT NOT NULL, checklist_sealed BLOB,"
       "  PRIMARY KEY (tenant, patient, session_id, attestation_id));"
       "CREATE TABLE ps_deliveries (job_key TEXT PRIMARY KEY,"
       "  tenant TEXT NOT NULL, state BIGINT NOT NULL,"
       "  deliver_us BIGINT NOT NULL, message TEXT NOT NULL,"
       "  template_version TEXT NOT NULL)"},
  };
}

std::string ChecklistDoc(const ChecklistAnswers& c) {
  Json flags = Json::array();
  for (Contraindication f : c.facts.contraindications) {
    flags.push_back(static_cast<int>(f));
  }
  return Json{{"last_solid_food", T(c.facts.last_solid_food)},
              {"last_clear_liquid", T(c.facts.last_clear_liquid)},
              {"escort_name", c.facts.escort_name},
              {"escort_phone", c.facts.escort_phone},
              {"holds", static_cast<int>(c.facts.holds_followed)},
              {"contraindications", flags},
              {"symptoms_note", c.symptoms_note}}
      .dump();
}

absl::StatusOr<ChecklistAnswers> ChecklistFromDoc(const std::string& doc) {
  ASSIGN_OR_RETURN(Json j, ParseDoc(doc));
  ChecklistAnswers c;
  c.facts.last_solid_food = Tm(j.at("last_solid_food"));
  c.facts.last_clear_liquid = Tm(j.at("last_clear_liquid"));
  c.facts.escort_name = j.at("escort_name").get<std::string>();
  c.facts.escort_phone = j.at("escort_phone").get<std::string>();
  c.facts.holds_followed = static_cast<HoldsAnswer>(j.at("holds").get<int>());
  for (const Json& f : j.at("contraindications")) {
    c.facts.contraindications.push_back(
        static_cast<Contraindication>(f.get<int>()));
  }
  c.symptoms_note = j.at("symptoms_note").get<std::string>();
  return c;
}

absl::StatusOr<std::optional<Settings>> SqlPreSessionStore::GetSettings(
    sql::Txn& txn, absl::string_view tenant) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT doc FROM ps_settings WHERE tenant = ?",
                             {Text(std::string(tenant))}));
  if (rows.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(Json j, ParseDoc(rows[0].Str(0)));
  return SettingsFrom(tenant, j);
}

absl::Status SqlPreSessionStore::PutSettings(sql::Txn& txn, const Settings& s) {
  return txn
      .Exec(
          "INSERT INTO ps_settings (tenant, doc) VALUES (?, ?) "
          "ON CONFLICT (tenant) DO UPDATE SET doc = excluded.doc",
          {Text(s.tenant), Text(Dump(ToJson(s)))})
      .status();
}

absl::Status SqlPreSessionStore::InsertTemplate(sql::Txn& txn,
                                                const InstructionTemplate& t) {
  return txn
      .Exec(
          "INSERT INTO ps_templates (tenant, template_id, create_us, doc) "
          "VALUES (?, ?, ?, ?)",
          {Text(t.tenant), Text(t.id), Int(T(t.create_time)),
           Text(Dump(ToJson(t)))})
      .status();
}

absl::Status SqlPreSessionStore::UpdateTemplate(sql::Txn& txn,
                                                const InstructionTemplate& t) {
  return txn
      .Exec(
          "UPDATE ps_templates SET doc = ? WHERE tenant = ? AND "
          "template_id = ?",
          {Text(Dump(ToJson(t))), Text(t.tenant), Text(t.id)})
      .status();
}

absl::StatusOr<InstructionTemplate> SqlPreSessionStore::GetTemplate(
    sql::Txn& txn, absl::string_view tenant, absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows, txn.Query("SELECT tenant, template_id, doc FROM "
                           "ps_templates WHERE tenant = ? AND "
                           "template_id = ?",
                           {Text(std::string(tenant)), Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  ASSIGN_OR_RETURN(Json j, ParseDoc(rows[0].Str(2)));
  return TemplateFrom(rows[0], j);
}

absl::StatusOr<std::vector<InstructionTemplate>>
SqlPreSessionStore::ListTemplates(sql::Txn& txn, absl::string_view tenant,
                                  int limit, int64_t offset) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT tenant, template_id, doc FROM ps_templates "
                "WHERE tenant = ? ORDER BY template_id "
                "LIMIT ? OFFSET ?",
                {Text(std::string(tenant)), Int(limit), Int(offset)}));
  std::vector<InstructionTemplate> out;
  for (const sql::Row& r : rows) {
    ASSIGN_OR_RETURN(Json j, ParseDoc(r.Str(2)));
    out.push_back(TemplateFrom(r, j));
  }
  return out;
}

absl::Status SqlPreSessionStore::InsertVersion(sql::Txn& txn,
                                               const TemplateVersion& v) {
  return txn
      .Exec(
          "INSERT INTO ps_versions (tenant, template_id, version, canonical, "
          "content_sha256, publish_us, publisher) VALUES (?, ?, ?, ?, ?, ?, ?)",
          {Text(v.tenant), Text(v.template_id), Int(v.version),
           Bytes(v.canonical), Bytes(v.content_sha256), Int(T(v.publish_time)),
           Text(Dump(ToJson(v.publisher)))})
      .status();
}

namespace {
absl::StatusOr<TemplateVersion> VersionFrom(const sql::Row& r) {
  TemplateVersion v;
  v.tenant = r.Str(0);
  v.template_id = r.Str(1);
  v.version = static_cast<int>(r.Int(2));
  v.canonical = r.Str(3);
  v.content_sha256 = r.Str(4);
  v.publish_time = FromMicros(r.Int(5));
  ASSIGN_OR_RETURN(Json publisher, ParseDoc(r.Str(6)));
  v.publisher = ActorFrom(publisher);
  ASSIGN_OR_RETURN(Json content, ParseDoc(v.canonical));
  v.content = ContentFrom(content);
  return v;
}
constexpr char kVersionColumns[] =
    "tenant, template_id, version, canonical, content_sha256, publish_us, "
    "publisher";
}  // namespace

std::string CanonicalContent(const InstructionContent& c) {
  // Keys sorted, no whitespace: nlohmann's default object order is sorted.
  Json j = ContentToJson(c);
  j["format"] = kCanonicalFormat;
  return j.dump();
}

absl::StatusOr<TemplateVersion> SqlPreSessionStore::GetVersion(
    sql::Txn& txn, absl::string_view tenant, absl::string_view template_id,
    int version) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kVersionColumns,
                             " FROM ps_versions WHERE tenant = ? AND "
                             "template_id = ? AND version = ?"),
                {Text(std::string(tenant)), Text(std::string(template_id)),
                 Int(version)}));
  if (rows.empty()) return ResourceNotFound();
  return VersionFrom(rows[0]);
}

absl::StatusOr<std::vector<TemplateVersion>> SqlPreSessionStore::ListVersions(
    sql::Txn& txn, absl::string_view tenant, absl::string_view template_id,
    int limit, int64_t offset) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kVersionColumns,
                             " FROM ps_versions WHERE tenant = ? AND "
                             "template_id = ? ORDER BY version DESC "
                             "LIMIT ? OFFSET ?"),
                {Text(std::string(tenant)), Text(std::string(template_id)),
                 Int(limit), Int(offset)}));
  std::vector<TemplateVersion> out;
  for (const sql::Row& r : rows) {
    ASSIGN_OR_RETURN(TemplateVersion v, VersionFrom(r));
    out.push_back(std::move(v));
  }
  return out;
}

namespace {
constexpr char kSeriesColumns[] = "tenant, patient, series_id, state, doc";
absl::StatusOr<Series> SeriesFrom(const sql::Row& r) {
  ASSIGN_OR_RETURN(Json j, ParseDoc(r.Str(4)));
  Series s;
  s.tenant = r.Str(0);
  s.patient = r.Str(1);
  s.id = r.Str(2);
  s.state = static_cast<SeriesState>(r.Int(3));
  s.procedure_code = j.at("procedure_code").get<std::string>();
  s.clinician = j.at("clinician").get<std::string>();
  s.location = j.at("location").get<std::string>();
  s.instruction_template = j.at("instruction_template").get<std::string>();
  s.dose_plan_ref = j.at("dose_plan_ref").get<std::string>();
  s.session_count = j.at("session_count").get<int>();
  s.create_time = Tm(j.at("create_time"));
  s.update_time = Tm(j.at("update_time"));
  return s;
}
}  // namespace

absl::Status SqlPreSessionStore::InsertSeries(sql::Txn& txn, const Series& s) {
  return txn
      .Exec(
          "INSERT INTO ps_series (tenant, patient, series_id, create_us, seq, "
          "state, doc) VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 "
          "FROM ps_series WHERE tenant = ?), ?, ?)",
          {Text(s.tenant), Text(s.patient), Text(s.id), Int(T(s.create_time)),
           Text(s.tenant), Int(static_cast<int>(s.state)),
           Text(Dump(ToJson(s)))})
      .status();
}

absl::Status SqlPreSessionStore::UpdateSeries(sql::Txn& txn, const Series& s) {
  return txn
      .Exec(
          "UPDATE ps_series SET state = ?, doc = ? WHERE tenant = ? AND "
          "patient = ? AND series_id = ?",
          {Int(static_cast<int>(s.state)), Text(Dump(ToJson(s))),
           Text(s.tenant), Text(s.patient), Text(s.id)})
      .status();
}

absl::StatusOr<Series> SqlPreSessionStore::GetSeries(sql::Txn& txn,
                                                     absl::string_view tenant,
                                                     absl::string_view patient,
                                                     absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kSeriesColumns,
                             " FROM ps_series WHERE tenant = ? AND patient = ? "
                             "AND series_id = ?"),
                {Text(std::string(tenant)), Text(std::string(patient)),
                 Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return SeriesFrom(rows[0]);
}

absl::StatusOr<std::vector<Series>> SqlPreSessionStore::ListSeries(
    sql::Txn& txn, absl::string_view tenant, absl::string_view patient,
    int state, int limit, int64_t offset) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(
          absl::StrCat("SELECT ", kSeriesColumns,
                       " FROM ps_series WHERE tenant = ? AND "
                       "(? = '-' OR patient = ?) AND (? = 0 OR state = ?) "
                       "ORDER BY create_us DESC, seq DESC "
                       "LIMIT ? OFFSET ?"),
          {Text(std::string(tenant)), Text(std::string(patient)),
           Text(std::string(patient)), Int(state), Int(state), Int(limit),
           Int(offset)}));
  std::vector<Series> out;
  for (const sql::Row& r : rows) {
    ASSIGN_OR_RETURN(Series s, SeriesFrom(r));
    out.push_back(std::move(s));
  }
  return out;
}

absl::Status SqlPreSessionStore::InsertSession(sql::Txn& txn,
                                               const SessionRow& row) {
  const Session& s = row.session;
  return txn
      .Exec(absl::StrCat("INSERT INTO ps_sessions (", kSessionColumns,
                         ", series) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            {Text(s.tenant), Text(s.patient), Text(s.id), Int(T(s.start)),
             Int(static_cast<int>(s.state)), Text(Dump(ToJson(s))),
             Bytes(row.override_reason_sealed), Text(s.series)})
      .status();
}

absl::Status SqlPreSessionStore::UpdateSession(sql::Txn& txn,
                                               const SessionRow& row) {
  const Session& s = row.session;
  return txn
      .Exec(
          "UPDATE ps_sessions SET start_us = ?, state = ?, doc = ?, "
          "override_sealed = ? WHERE tenant = ? AND patient = ? AND "
          "session_id = ?",
          {Int(T(s.start)), Int(static_cast<int>(s.state)),
           Text(Dump(ToJson(s))), Bytes(row.override_reason_sealed),
           Text(s.tenant), Text(s.patient), Text(s.id)})
      .status();
}

absl::StatusOr<SessionRow> SqlPreSessionStore::GetSession(
    sql::Txn& txn, absl::string_view tenant, absl::string_view patient,
    absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kSessionColumns,
                             " FROM ps_sessions WHERE tenant = ? AND "
                             "patient = ? AND session_id = ?"),
                {Text(std::string(tenant)), Text(std::string(patient)),
                 Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return SessionFrom(rows[0]);
}

absl::StatusOr<std::vector<SessionRow>> SqlPreSessionStore::ListSessions(
    sql::Txn& txn, const SessionFilter& f, int limit, int64_t offset) {
  const int64_t from =
      f.start_from ? T(*f.start_from) : std::numeric_limits<int64_t>::min();
  const int64_t before =
      f.start_before ? T(*f.start_before) : std::numeric_limits<int64_t>::max();
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(
          absl::StrCat("SELECT ", kSessionColumns,
                       " FROM ps_sessions WHERE tenant = ? AND "
                       "(? = '-' OR patient = ?) AND (? = '' OR series = ?) "
                       "AND (? = 0 OR state = ?) AND start_us >= ? AND "
                       "start_us < ? ORDER BY start_us, patient, session_id "
                       "LIMIT ? OFFSET ?"),
          {Text(f.tenant), Text(f.patient), Text(f.patient), Text(f.series),
           Text(f.series), Int(f.state), Int(f.state), Int(from), Int(before),
           Int(limit), Int(offset)}));
  std::vector<SessionRow> out;
  for (const sql::Row& r : rows) {
    ASSIGN_OR_RETURN(SessionRow s, SessionFrom(r));
    out.push_back(std::move(s));
  }
  return out;
}

absl::Status SqlPreSessionStore::InsertAttestation(sql::Txn& txn,
                                                   const AttestationRow& row) {
  const Attestation& a = row.attestation;
  return txn
      .Exec(
          "INSERT INTO ps_attestations (tenant, patient, session_id, "
          "attestation_id, seq, doc, checklist_sealed) VALUES (?, ?, ?, ?, "
          "(SELECT COALESCE(MAX(seq), 0) + 1 FROM ps_attestations WHERE "
          "tenant = ? AND patient = ? AND session_id = ?), ?, ?)",
          {Text(a.tenant), Text(a.patient), Text(a.session), Text(a.id),
           Text(a.tenant), Text(a.patient), Text(a.session),
           Text(Dump(ToJson(a))), Bytes(row.checklist_sealed)})
      .status();
}

absl::StatusOr<std::vector<AttestationRow>>
SqlPreSessionStore::ListAttestations(sql::Txn& txn, absl::string_view tenant,
                                     absl::string_view patient,
                                     absl::string_view session, int limit,
                                     int64_t offset) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT tenant, patient, session_id, attestation_id, doc, "
                "checklist_sealed FROM ps_attestations WHERE tenant = ? AND "
                "patient = ? AND session_id = ? ORDER BY seq DESC "
                "LIMIT ? OFFSET ?",
                {Text(std::string(tenant)), Text(std::string(patient)),
                 Text(std::string(session)), Int(limit), Int(offset)}));
  std::vector<AttestationRow> out;
  for (const sql::Row& r : rows) {
    ASSIGN_OR_RETURN(Json j, ParseDoc(r.Str(4)));
    AttestationRow row;
    Attestation& a = row.attestation;
    a.tenant = r.Str(0);
    a.patient = r.Str(1);
    a.session = r.Str(2);
    a.id = r.Str(3);
    a.template_version = j.at("template_version").get<std::string>();
    auto sha = crypto::HexDecode(j.at("content_sha256").get<std::string>());
    if (!sha.ok()) return sha.status();
    a.content_sha256 = *sha;
    a.acknowledged_ids =
        j.at("acknowledged_ids").get<std::vector<std::string>>();
    a.attested_by = ActorFrom(j.at("attested_by"));
    a.create_time = Tm(j.at("create_time"));
    row.checklist_sealed = r.IsNull(5) ? "" : r.Str(5);
    out.push_back(std::move(row));
  }
  return out;
}

absl::Status SqlPreSessionStore::PutDelivery(sql::Txn& txn,
                                             const DeliveryRecord& d) {
  return txn
      .Exec(
          "INSERT INTO ps_deliveries (job_key, tenant, state, deliver_us, "
          "message, template_version) VALUES (?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (job_key) DO UPDATE SET state = excluded.state, "
          "deliver_us = excluded.deliver_us, message = excluded.message, "
          "template_version = excluded.template_version",
          {Text(d.job_key), Text(d.tenant), Int(static_cast<int>(d.state)),
           Int(T(d.deliver_time)), Text(d.message), Text(d.template_version)})
      .status();
}

absl::StatusOr<std::optional<DeliveryRecord>> SqlPreSessionStore::GetDelivery(
    sql::Txn& txn, absl::string_view job_key) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT job_key, tenant, state, deliver_us, message, "
                "template_version FROM ps_deliveries WHERE job_key = ?",
                {Text(std::string(job_key))}));
  if (rows.empty()) return std::nullopt;
  const sql::Row& r = rows[0];
  DeliveryRecord d;
  d.job_key = r.Str(0);
  d.tenant = r.Str(1);
  d.state = static_cast<DeliveryState>(r.Int(2));
  d.deliver_time = FromMicros(r.Int(3));
  d.message = r.Str(4);
  d.template_version = r.Str(5);
  return d;
}

}  // namespace careseal::presession
