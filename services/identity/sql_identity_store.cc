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

}  // namespace careseal::identity
