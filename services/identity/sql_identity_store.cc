#include "services/identity/sql_identity_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/policy.h"
#include "services/common/sql/database.h"
#include "services/common/status.h"

namespace careseal::identity {
namespace {

using sql::Int;
using sql::Null;
using sql::Text;

#define TENANT_COLUMNS \
  "tenant_id, display_name, time_zone, state, create_time_us, update_time_us"

#define ISSUER_COLUMNS                                                   \
  "tenant, issuer_id, display_name, issuer_uri, kind, peer_identities, " \
  "jwks_json, key_ids, state, create_time_us, update_time_us, revoke_time_us"

#define CLINICIAN_COLUMNS                                           \
  "tenant, clinician_id, display_name, issuer_id, subject, roles, " \
  "care_team, on_call, state, create_time_us, update_time_us"

#define PATIENT_COLUMNS                                       \
  "tenant, patient_id, external_id_sealed, external_id_mac, " \
  "display_name_sealed, dob_mac, state, create_time_us, update_time_us"

#define LINK_COLUMNS                                                      \
  "tenant, patient_id, link_id, target, factor, state, failed_attempts, " \
  "created_by_name, created_by_role, created_by_peer, create_time_us, "   \
  "expire_time_us, redeem_time_us, token_hash, code_mac, code_expire_us"

#define SESSION_COLUMNS                                                   \
  "tenant, patient_id, session_id, link, target, state, create_time_us, " \
  "idle_expire_us, expire_us, end_time_us, token_hash"

#define GRANT_COLUMNS                                                  \
  "tenant, clinician_id, grant_id, patient_id, reason_sealed, state, " \
  "start_time_us, expire_time_us, end_time_us"

std::optional<absl::Time> OptTime(const sql::Row& r, size_t i) {
  if (r.IsNull(i)) return std::nullopt;
  return FromMicros(r.Int(i));
}

sql::Value OptMicros(const std::optional<absl::Time>& t) {
  return t ? Int(ToMicros(*t)) : Null();
}

PatientLink LinkFromRow(const sql::Row& r) {
  PatientLink l;
  l.tenant = r.Str(0);
  l.patient_id = r.Str(1);
  l.id = r.Str(2);
  l.target = r.Str(3);
  l.factor = static_cast<LinkFactor>(r.Int(4));
  l.state = static_cast<LinkState>(r.Int(5));
  l.failed_attempts = static_cast<int>(r.Int(6));
  l.created_by_name = r.Str(7);
  l.created_by_role = static_cast<Role>(r.Int(8));
  l.created_by_peer = r.Str(9);
  l.create_time = FromMicros(r.Int(10));
  l.expire_time = FromMicros(r.Int(11));
  l.redeem_time = OptTime(r, 12);
  l.token_hash = r.Str(13);
  l.code_mac = r.Str(14);
  l.code_expire_time = OptTime(r, 15);
  return l;
}

PatientSession SessionFromRow(const sql::Row& r) {
  PatientSession s;
  s.tenant = r.Str(0);
  s.patient_id = r.Str(1);
  s.id = r.Str(2);
  s.link = r.Str(3);
  s.target = r.Str(4);
  s.state = static_cast<SessionState>(r.Int(5));
  s.create_time = FromMicros(r.Int(6));
  s.idle_expire_time = FromMicros(r.Int(7));
  s.expire_time = FromMicros(r.Int(8));
  s.end_time = OptTime(r, 9);
  s.token_hash = r.Str(10);
  return s;
}

// Lists are stored one item a line (validated items never hold a newline).
std::string JoinLines(const std::vector<std::string>& v) {
  return absl::StrJoin(v, "\n");
}

std::vector<std::string> SplitLines(const std::string& s) {
  if (s.empty()) return {};
  return absl::StrSplit(s, '\n');
}

Tenant TenantFromRow(const sql::Row& r) {
  Tenant t;
  t.id = r.Str(0);
  t.display_name = r.Str(1);
  t.time_zone = r.Str(2);
  t.state = static_cast<TenantState>(r.Int(3));
  t.create_time = FromMicros(r.Int(4));
  t.update_time = FromMicros(r.Int(5));
  return t;
}

Issuer IssuerFromRow(const sql::Row& r) {
  Issuer i;
  i.tenant = r.Str(0);
  i.id = r.Str(1);
  i.display_name = r.Str(2);
  i.issuer_uri = r.Str(3);
  i.kind = static_cast<IssuerKind>(r.Int(4));
  i.peer_identities = SplitLines(r.Str(5));
  i.jwks_json = r.Str(6);
  i.key_ids = SplitLines(r.Str(7));
  i.state = static_cast<IssuerState>(r.Int(8));
  i.create_time = FromMicros(r.Int(9));
  i.update_time = FromMicros(r.Int(10));
  if (!r.IsNull(11)) i.revoke_time = FromMicros(r.Int(11));
  return i;
}

std::string JoinRoles(const std::vector<int>& roles) {
  return absl::StrJoin(roles, ",");
}

std::vector<int> SplitRoles(const std::string& s) {
  std::vector<int> out;
  for (absl::string_view r : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    int v = 0;
    if (absl::SimpleAtoi(r, &v)) out.push_back(v);
  }
  return out;
}

Clinician ClinicianFromRow(const sql::Row& r) {
  Clinician c;
  c.tenant = r.Str(0);
  c.id = r.Str(1);
  c.display_name = r.Str(2);
  c.issuer_id = r.Str(3);
  c.subject = r.Str(4);
  c.roles = SplitRoles(r.Str(5));
  c.care_team = r.Int(6) != 0;
  c.on_call = r.Int(7) != 0;
  c.state = static_cast<PrincipalState>(r.Int(8));
  c.create_time = FromMicros(r.Int(9));
  c.update_time = FromMicros(r.Int(10));
  return c;
}

PatientRow PatientFromRow(const sql::Row& r) {
  PatientRow p;
  p.tenant = r.Str(0);
  p.id = r.Str(1);
  p.external_id_sealed = r.Str(2);
  p.external_id_mac = r.Str(3);
  p.display_name_sealed = r.Str(4);
  p.dob_mac = r.Str(5);
  p.state = static_cast<PrincipalState>(r.Int(6));
  p.create_time = FromMicros(r.Int(7));
  p.update_time = FromMicros(r.Int(8));
  return p;
}

}  // namespace

const std::vector<sql::Migration>& IdentityMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE identity_tenants ("
       "  tenant_id TEXT NOT NULL PRIMARY KEY, display_name TEXT NOT NULL,"
       "  time_zone TEXT NOT NULL, state BIGINT NOT NULL,"
       "  create_time_us BIGINT NOT NULL, update_time_us BIGINT NOT NULL);"
       "CREATE TABLE identity_issuers ("
       "  tenant TEXT NOT NULL, issuer_id TEXT NOT NULL,"
       "  display_name TEXT NOT NULL, issuer_uri TEXT NOT NULL,"
       "  kind BIGINT NOT NULL, peer_identities TEXT NOT NULL,"
       "  jwks_json TEXT NOT NULL, key_ids TEXT NOT NULL,"
       "  state BIGINT NOT NULL, create_time_us BIGINT NOT NULL,"
       "  update_time_us BIGINT NOT NULL, revoke_time_us BIGINT,"
       "  PRIMARY KEY (tenant, issuer_id));"
       "CREATE UNIQUE INDEX identity_issuers_by_uri ON identity_issuers "
       "(tenant, issuer_uri)"},
      {2,
       "CREATE TABLE identity_clinicians ("
       "  tenant TEXT NOT NULL, clinician_id TEXT NOT NULL,"
       "  display_name TEXT NOT NULL, issuer_id TEXT NOT NULL,"
       "  subject TEXT NOT NULL, roles TEXT NOT NULL,"
       "  care_team BIGINT NOT NULL, on_call BIGINT NOT NULL,"
       "  state BIGINT NOT NULL, create_time_us BIGINT NOT NULL,"
       "  update_time_us BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, clinician_id));"
       "CREATE UNIQUE INDEX identity_clinicians_by_subject ON "
       "identity_clinicians (tenant, issuer_id, subject)"},
      {3,
       "CREATE INDEX identity_issuers_by_iss ON identity_issuers "
       "(issuer_uri);"
       "CREATE TABLE identity_patients ("
       "  tenant TEXT NOT NULL, patient_id TEXT NOT NULL,"
       "  external_id_sealed BLOB NOT NULL, external_id_mac BLOB NOT NULL,"
       "  display_name_sealed BLOB NOT NULL, dob_mac BLOB NOT NULL,"
       "  state BIGINT NOT NULL, create_time_us BIGINT NOT NULL,"
       "  update_time_us BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, patient_id));"
       "CREATE UNIQUE INDEX identity_patients_by_external_id ON "
       "identity_patients (tenant, external_id_mac)"},
      {4,
       "CREATE TABLE identity_links ("
       "  tenant TEXT NOT NULL, patient_id TEXT NOT NULL,"
       "  link_id TEXT NOT NULL, target TEXT NOT NULL,"
       "  factor BIGINT NOT NULL, state BIGINT NOT NULL,"
       "  failed_attempts BIGINT NOT NULL, created_by_name TEXT NOT NULL,"
       "  created_by_role BIGINT NOT NULL, created_by_peer TEXT NOT NULL,"
       "  create_time_us BIGINT NOT NULL, expire_time_us BIGINT NOT NULL,"
       "  redeem_time_us BIGINT, token_hash BLOB NOT NULL,"
       "  code_mac BLOB NOT NULL, code_expire_us BIGINT,"
       "  PRIMARY KEY (tenant, patient_id, link_id));"
       "CREATE UNIQUE INDEX identity_links_by_token ON identity_links "
       "(token_hash);"
       "CREATE TABLE identity_sessions ("
       "  tenant TEXT NOT NULL, patient_id TEXT NOT NULL,"
       "  session_id TEXT NOT NULL, link TEXT NOT NULL, target TEXT NOT NULL,"
       "  state BIGINT NOT NULL, create_time_us BIGINT NOT NULL,"
       "  idle_expire_us BIGINT NOT NULL, expire_us BIGINT NOT NULL,"
       "  end_time_us BIGINT, token_hash BLOB NOT NULL,"
       "  PRIMARY KEY (tenant, patient_id, session_id));"
       "CREATE UNIQUE INDEX identity_sessions_by_token ON identity_sessions "
       "(token_hash)"},
      {5,
       "CREATE TABLE identity_break_glass ("
       "  tenant TEXT NOT NULL, clinician_id TEXT NOT NULL,"
       "  grant_id TEXT NOT NULL, patient_id TEXT NOT NULL,"
       "  reason_sealed BLOB NOT NULL, state BIGINT NOT NULL,"
       "  start_time_us BIGINT NOT NULL, expire_time_us BIGINT NOT NULL,"
       "  end_time_us BIGINT,"
       "  PRIMARY KEY (tenant, clinician_id, grant_id));"
       "CREATE INDEX identity_break_glass_by_time ON identity_break_glass "
       "(tenant, start_time_us, grant_id)"},
  };
  return *migrations;
}

absl::Status SqlIdentityStore::InsertTenant(sql::Txn& txn, const Tenant& t) {
  absl::Status s =
      txn.Exec("INSERT INTO identity_tenants (" TENANT_COLUMNS
               ") VALUES (?, ?, ?, ?, ?, ?)",
               {Text(t.id), Text(t.display_name), Text(t.time_zone),
                Int(static_cast<int64_t>(t.state)),
                Int(ToMicros(t.create_time)), Int(ToMicros(t.update_time))})
          .status();
  if (sql::IsUniqueViolation(s)) {
    return AlreadyExists("TENANT_ID_TAKEN", "a tenant with this id exists");
  }
  return s;
}

absl::Status SqlIdentityStore::UpdateTenant(sql::Txn& txn, const Tenant& t) {
  return txn
      .Exec(
          "UPDATE identity_tenants SET display_name = ?, time_zone = ?, "
          "state = ?, update_time_us = ? WHERE tenant_id = ?",
          {Text(t.display_name), Text(t.time_zone),
           Int(static_cast<int64_t>(t.state)), Int(ToMicros(t.update_time)),
           Text(t.id)})
      .status();
}

absl::StatusOr<Tenant> SqlIdentityStore::GetTenant(sql::Txn& txn,
                                                   absl::string_view id) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT " TENANT_COLUMNS " FROM identity_tenants "
                             "WHERE tenant_id = ?",
                             {Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return TenantFromRow(rows[0]);
}

absl::StatusOr<std::vector<Tenant>> SqlIdentityStore::ListTenants(
    sql::Txn& txn, absl::string_view after, int limit) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT " TENANT_COLUMNS
                             " FROM identity_tenants WHERE tenant_id > ? "
                             "ORDER BY tenant_id LIMIT ?",
                             {Text(std::string(after)), Int(limit)}));
  std::vector<Tenant> out;
  for (const sql::Row& r : rows) out.push_back(TenantFromRow(r));
  return out;
}

absl::Status SqlIdentityStore::InsertIssuer(sql::Txn& txn, const Issuer& i) {
  absl::Status s =
      txn.Exec("INSERT INTO identity_issuers (" ISSUER_COLUMNS
               ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               {Text(i.tenant), Text(i.id), Text(i.display_name),
                Text(i.issuer_uri), Int(static_cast<int64_t>(i.kind)),
                Text(JoinLines(i.peer_identities)), Text(i.jwks_json),
                Text(JoinLines(i.key_ids)), Int(static_cast<int64_t>(i.state)),
                Int(ToMicros(i.create_time)), Int(ToMicros(i.update_time)),
                i.revoke_time ? Int(ToMicros(*i.revoke_time)) : Null()})
          .status();
  if (sql::IsUniqueViolation(s)) {
    return AlreadyExists("ISSUER_ALREADY_REGISTERED",
                         "the tenant already has an issuer with this id or "
                         "issuer_uri");
  }
  return s;
}

absl::Status SqlIdentityStore::UpdateIssuer(sql::Txn& txn, const Issuer& i) {
  return txn
      .Exec(
          "UPDATE identity_issuers SET display_name = ?, peer_identities = ?, "
          "jwks_json = ?, key_ids = ?, state = ?, update_time_us = ?, "
          "revoke_time_us = ? WHERE tenant = ? AND issuer_id = ?",
          {Text(i.display_name), Text(JoinLines(i.peer_identities)),
           Text(i.jwks_json), Text(JoinLines(i.key_ids)),
           Int(static_cast<int64_t>(i.state)), Int(ToMicros(i.update_time)),
           i.revoke_time ? Int(ToMicros(*i.revoke_time)) : Null(),
           Text(i.tenant), Text(i.id)})
      .status();
}

absl::StatusOr<Issuer> SqlIdentityStore::GetIssuer(sql::Txn& txn,
                                                   absl::string_view tenant,
                                                   absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows, txn.Query("SELECT " ISSUER_COLUMNS
                           " FROM identity_issuers WHERE tenant = ? AND "
                           "issuer_id = ?",
                           {Text(std::string(tenant)), Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return IssuerFromRow(rows[0]);
}

absl::StatusOr<std::vector<Issuer>> SqlIdentityStore::FindIssuersByUri(
    sql::Txn& txn, absl::string_view issuer_uri) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT " ISSUER_COLUMNS
                             " FROM identity_issuers WHERE issuer_uri = ? "
                             "ORDER BY tenant, issuer_id",
                             {Text(std::string(issuer_uri))}));
  std::vector<Issuer> out;
  for (const sql::Row& r : rows) out.push_back(IssuerFromRow(r));
  return out;
}

absl::StatusOr<std::vector<Issuer>> SqlIdentityStore::ListIssuers(
    sql::Txn& txn, absl::string_view tenant, absl::string_view after,
    int limit) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(
          "SELECT " ISSUER_COLUMNS
          " FROM identity_issuers WHERE tenant = ? AND issuer_id > ? "
          "ORDER BY issuer_id LIMIT ?",
          {Text(std::string(tenant)), Text(std::string(after)), Int(limit)}));
  std::vector<Issuer> out;
  for (const sql::Row& r : rows) out.push_back(IssuerFromRow(r));
  return out;
}

absl::Status SqlIdentityStore::InsertClinician(sql::Txn& txn,
                                               const Clinician& c) {
  // Two unique keys: tell the caller which one is taken.
  ASSIGN_OR_RETURN(auto by_id,
                   txn.Query("SELECT 1 FROM identity_clinicians WHERE "
                             "tenant = ? AND clinician_id = ?",
                             {Text(c.tenant), Text(c.id)}));
  if (!by_id.empty()) {
    return AlreadyExists("CLINICIAN_ID_TAKEN",
                         "a clinician with this id exists");
  }
  absl::Status s =
      txn.Exec("INSERT INTO identity_clinicians (" CLINICIAN_COLUMNS
               ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               {Text(c.tenant), Text(c.id), Text(c.display_name),
                Text(c.issuer_id), Text(c.subject), Text(JoinRoles(c.roles)),
                Int(c.care_team ? 1 : 0), Int(c.on_call ? 1 : 0),
                Int(static_cast<int64_t>(c.state)),
                Int(ToMicros(c.create_time)), Int(ToMicros(c.update_time))})
          .status();
  if (sql::IsUniqueViolation(s)) {
    return AlreadyExists("SUBJECT_TAKEN",
                         "the issuer's subject already names a clinician");
  }
  return s;
}

absl::Status SqlIdentityStore::UpdateClinician(sql::Txn& txn,
                                               const Clinician& c) {
  return txn
      .Exec(
          "UPDATE identity_clinicians SET display_name = ?, roles = ?, "
          "care_team = ?, on_call = ?, state = ?, update_time_us = ? "
          "WHERE tenant = ? AND clinician_id = ?",
          {Text(c.display_name), Text(JoinRoles(c.roles)),
           Int(c.care_team ? 1 : 0), Int(c.on_call ? 1 : 0),
           Int(static_cast<int64_t>(c.state)), Int(ToMicros(c.update_time)),
           Text(c.tenant), Text(c.id)})
      .status();
}

absl::StatusOr<Clinician> SqlIdentityStore::GetClinician(
    sql::Txn& txn, absl::string_view tenant, absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " CLINICIAN_COLUMNS " FROM identity_clinicians WHERE "
                "tenant = ? AND clinician_id = ?",
                {Text(std::string(tenant)), Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return ClinicianFromRow(rows[0]);
}

absl::StatusOr<Clinician> SqlIdentityStore::FindClinicianBySubject(
    sql::Txn& txn, absl::string_view tenant, absl::string_view issuer_id,
    absl::string_view subject) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " CLINICIAN_COLUMNS
                " FROM identity_clinicians WHERE tenant = ? AND "
                "issuer_id = ? AND subject = ?",
                {Text(std::string(tenant)), Text(std::string(issuer_id)),
                 Text(std::string(subject))}));
  if (rows.empty()) return ResourceNotFound();
  return ClinicianFromRow(rows[0]);
}

absl::StatusOr<std::vector<Clinician>> SqlIdentityStore::ListClinicians(
    sql::Txn& txn, absl::string_view tenant, bool care_team_only,
    bool on_call_only, absl::string_view after, int limit) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " CLINICIAN_COLUMNS
                " FROM identity_clinicians WHERE tenant = ? AND "
                "clinician_id > ? AND (? = 0 OR care_team = 1) AND "
                "(? = 0 OR on_call = 1) ORDER BY clinician_id LIMIT ?",
                {Text(std::string(tenant)), Text(std::string(after)),
                 Int(care_team_only ? 1 : 0), Int(on_call_only ? 1 : 0),
                 Int(limit)}));
  std::vector<Clinician> out;
  for (const sql::Row& r : rows) out.push_back(ClinicianFromRow(r));
  return out;
}

absl::Status SqlIdentityStore::InsertPatient(sql::Txn& txn,
                                             const PatientRow& p) {
  absl::Status s =
      txn.Exec(
             "INSERT INTO identity_patients (" PATIENT_COLUMNS
             ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
             {Text(p.tenant), Text(p.id), sql::Bytes(p.external_id_sealed),
              sql::Bytes(p.external_id_mac), sql::Bytes(p.display_name_sealed),
              sql::Bytes(p.dob_mac), Int(static_cast<int64_t>(p.state)),
              Int(ToMicros(p.create_time)), Int(ToMicros(p.update_time))})
          .status();
  if (sql::IsUniqueViolation(s)) {
    return AlreadyExists("EXTERNAL_ID_TAKEN",
                         "the tenant already has a patient with this "
                         "external_id");
  }
  return s;
}

absl::Status SqlIdentityStore::UpdatePatient(sql::Txn& txn,
                                             const PatientRow& p) {
  absl::Status s =
      txn.Exec(
             "UPDATE identity_patients SET external_id_sealed = ?, "
             "external_id_mac = ?, display_name_sealed = ?, dob_mac = ?, "
             "state = ?, update_time_us = ? WHERE tenant = ? AND "
             "patient_id = ?",
             {sql::Bytes(p.external_id_sealed), sql::Bytes(p.external_id_mac),
              sql::Bytes(p.display_name_sealed), sql::Bytes(p.dob_mac),
              Int(static_cast<int64_t>(p.state)), Int(ToMicros(p.update_time)),
              Text(p.tenant), Text(p.id)})
          .status();
  if (sql::IsUniqueViolation(s)) {
    return AlreadyExists("EXTERNAL_ID_TAKEN",
                         "the tenant already has a patient with this "
                         "external_id");
  }
  return s;
}

absl::StatusOr<PatientRow> SqlIdentityStore::GetPatient(
    sql::Txn& txn, absl::string_view tenant, absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " PATIENT_COLUMNS " FROM identity_patients WHERE "
                "tenant = ? AND patient_id = ?",
                {Text(std::string(tenant)), Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return PatientFromRow(rows[0]);
}

absl::StatusOr<std::vector<PatientRow>> SqlIdentityStore::ListPatients(
    sql::Txn& txn, absl::string_view tenant, absl::string_view external_id_mac,
    absl::string_view after, int limit) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " PATIENT_COLUMNS
                " FROM identity_patients WHERE tenant = ? AND "
                "patient_id > ? AND (? = 0 OR external_id_mac = ?) "
                "ORDER BY patient_id LIMIT ?",
                {Text(std::string(tenant)), Text(std::string(after)),
                 Int(external_id_mac.empty() ? 0 : 1),
                 sql::Bytes(std::string(external_id_mac)), Int(limit)}));
  std::vector<PatientRow> out;
  for (const sql::Row& r : rows) out.push_back(PatientFromRow(r));
  return out;
}

absl::Status SqlIdentityStore::InsertLink(sql::Txn& txn, const PatientLink& l) {
  return txn
      .Exec("INSERT INTO identity_links (" LINK_COLUMNS
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            {Text(l.tenant), Text(l.patient_id), Text(l.id), Text(l.target),
             Int(static_cast<int64_t>(l.factor)),
             Int(static_cast<int64_t>(l.state)), Int(l.failed_attempts),
             Text(l.created_by_name),
             Int(static_cast<int64_t>(l.created_by_role)),
             Text(l.created_by_peer), Int(ToMicros(l.create_time)),
             Int(ToMicros(l.expire_time)), OptMicros(l.redeem_time),
             sql::Bytes(l.token_hash), sql::Bytes(l.code_mac),
             OptMicros(l.code_expire_time)})
      .status();
}

absl::Status SqlIdentityStore::UpdateLink(sql::Txn& txn, const PatientLink& l) {
  return txn
      .Exec(
          "UPDATE identity_links SET state = ?, failed_attempts = ?, "
          "redeem_time_us = ?, token_hash = ?, code_mac = ?, "
          "code_expire_us = ? WHERE tenant = ? AND patient_id = ? AND "
          "link_id = ?",
          {Int(static_cast<int64_t>(l.state)), Int(l.failed_attempts),
           OptMicros(l.redeem_time), sql::Bytes(l.token_hash),
           sql::Bytes(l.code_mac), OptMicros(l.code_expire_time),
           Text(l.tenant), Text(l.patient_id), Text(l.id)})
      .status();
}

absl::StatusOr<PatientLink> SqlIdentityStore::GetLink(
    sql::Txn& txn, absl::string_view tenant, absl::string_view patient_id,
    absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " LINK_COLUMNS
                " FROM identity_links WHERE tenant = ? AND "
                "patient_id = ? AND link_id = ?",
                {Text(std::string(tenant)), Text(std::string(patient_id)),
                 Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return LinkFromRow(rows[0]);
}

absl::StatusOr<PatientLink> SqlIdentityStore::FindLinkByTokenHash(
    sql::Txn& txn, absl::string_view hash) {
  ASSIGN_OR_RETURN(
      auto rows, txn.Query("SELECT " LINK_COLUMNS " FROM identity_links WHERE "
                           "token_hash = ?",
                           {sql::Bytes(std::string(hash))}));
  if (rows.empty()) return ResourceNotFound();
  return LinkFromRow(rows[0]);
}

absl::Status SqlIdentityStore::InsertSession(sql::Txn& txn,
                                             const PatientSession& s) {
  return txn
      .Exec("INSERT INTO identity_sessions (" SESSION_COLUMNS
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            {Text(s.tenant), Text(s.patient_id), Text(s.id), Text(s.link),
             Text(s.target), Int(static_cast<int64_t>(s.state)),
             Int(ToMicros(s.create_time)), Int(ToMicros(s.idle_expire_time)),
             Int(ToMicros(s.expire_time)), OptMicros(s.end_time),
             sql::Bytes(s.token_hash)})
      .status();
}

absl::Status SqlIdentityStore::UpdateSession(sql::Txn& txn,
                                             const PatientSession& s) {
  return txn
      .Exec(
          "UPDATE identity_sessions SET state = ?, idle_expire_us = ?, "
          "end_time_us = ?, token_hash = ? WHERE tenant = ? AND "
          "patient_id = ? AND session_id = ?",
          {Int(static_cast<int64_t>(s.state)),
           Int(ToMicros(s.idle_expire_time)), OptMicros(s.end_time),
           sql::Bytes(s.token_hash), Text(s.tenant), Text(s.patient_id),
           Text(s.id)})
      .status();
}

absl::StatusOr<PatientSession> SqlIdentityStore::GetSession(
    sql::Txn& txn, absl::string_view tenant, absl::string_view patient_id,
    absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " SESSION_COLUMNS
                " FROM identity_sessions WHERE tenant = ? AND "
                "patient_id = ? AND session_id = ?",
                {Text(std::string(tenant)), Text(std::string(patient_id)),
                 Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return SessionFromRow(rows[0]);
}

absl::StatusOr<PatientSession> SqlIdentityStore::FindSessionByTokenHash(
    sql::Txn& txn, absl::string_view hash) {
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT " SESSION_COLUMNS
                                        " FROM identity_sessions WHERE "
                                        "token_hash = ?",
                                        {sql::Bytes(std::string(hash))}));
  if (rows.empty()) return ResourceNotFound();
  return SessionFromRow(rows[0]);
}

namespace {

BreakGlassRow GrantFromRow(const sql::Row& r) {
  BreakGlassRow row;
  BreakGlassGrant& g = row.grant;
  g.tenant = r.Str(0);
  g.clinician_id = r.Str(1);
  g.id = r.Str(2);
  g.patient_id = r.Str(3);
  row.reason_sealed = r.Str(4);
  g.state = static_cast<BreakGlassState>(r.Int(5));
  g.start_time = FromMicros(r.Int(6));
  g.expire_time = FromMicros(r.Int(7));
  g.end_time = OptTime(r, 8);
  return row;
}

}  // namespace

absl::Status SqlIdentityStore::InsertGrant(sql::Txn& txn,
                                           const BreakGlassRow& row) {
  const BreakGlassGrant& g = row.grant;
  return txn
      .Exec("INSERT INTO identity_break_glass (" GRANT_COLUMNS
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            {Text(g.tenant), Text(g.clinician_id), Text(g.id),
             Text(g.patient_id), sql::Bytes(row.reason_sealed),
             Int(static_cast<int64_t>(g.state)), Int(ToMicros(g.start_time)),
             Int(ToMicros(g.expire_time)), OptMicros(g.end_time)})
      .status();
}

absl::Status SqlIdentityStore::UpdateGrant(sql::Txn& txn,
                                           const BreakGlassGrant& g) {
  return txn
      .Exec(
          "UPDATE identity_break_glass SET state = ?, end_time_us = ? WHERE "
          "tenant = ? AND clinician_id = ? AND grant_id = ?",
          {Int(static_cast<int64_t>(g.state)), OptMicros(g.end_time),
           Text(g.tenant), Text(g.clinician_id), Text(g.id)})
      .status();
}

absl::StatusOr<BreakGlassRow> SqlIdentityStore::GetGrant(
    sql::Txn& txn, absl::string_view tenant, absl::string_view clinician_id,
    absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " GRANT_COLUMNS
                " FROM identity_break_glass WHERE tenant = ? AND "
                "clinician_id = ? AND grant_id = ?",
                {Text(std::string(tenant)), Text(std::string(clinician_id)),
                 Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return GrantFromRow(rows[0]);
}

absl::StatusOr<std::vector<BreakGlassRow>> SqlIdentityStore::ListGrants(
    sql::Txn& txn, absl::string_view tenant, absl::string_view clinician_id,
    absl::string_view patient_id, bool first, int64_t after_start_us,
    absl::string_view after_id, int limit) {
  std::string sql =
      "SELECT " GRANT_COLUMNS " FROM identity_break_glass WHERE tenant = ?";
  std::vector<sql::Value> params = {Text(std::string(tenant))};
  if (!clinician_id.empty()) {
    sql += " AND clinician_id = ?";
    params.push_back(Text(std::string(clinician_id)));
  }
  if (!patient_id.empty()) {
    sql += " AND patient_id = ?";
    params.push_back(Text(std::string(patient_id)));
  }
  if (!first) {
    sql += " AND (start_time_us < ? OR (start_time_us = ? AND grant_id < ?))";
    params.push_back(Int(after_start_us));
    params.push_back(Int(after_start_us));
    params.push_back(Text(std::string(after_id)));
  }
  sql += " ORDER BY start_time_us DESC, grant_id DESC LIMIT ?";
  params.push_back(Int(limit));
  ASSIGN_OR_RETURN(auto rows, txn.Query(sql, params));
  std::vector<BreakGlassRow> out;
  out.reserve(rows.size());
  for (const sql::Row& r : rows) out.push_back(GrantFromRow(r));
  return out;
}

}  // namespace careseal::identity
