// SQL storage of identity records over sql::Txn (portable SQL).
#ifndef CARESEAL_SERVICES_IDENTITY_SQL_IDENTITY_STORE_H_
#define CARESEAL_SERVICES_IDENTITY_SQL_IDENTITY_STORE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/sql/database.h"
#include "services/identity/identity_model.h"

namespace careseal::identity {

const std::vector<sql::Migration>& IdentityMigrations();

// A patient as stored: PII sealed, lookups by keyed hash (Sealer::Mac).
struct PatientRow {
  std::string tenant;
  std::string id;
  std::string external_id_sealed;
  std::string external_id_mac;
  std::string display_name_sealed;
  std::string dob_mac;
  PrincipalState state = PrincipalState::kActive;
  absl::Time create_time;
  absl::Time update_time;
};

// A break-glass grant as stored: the reason sealed.
struct BreakGlassRow {
  BreakGlassGrant grant;  // grant.reason is empty
  std::string reason_sealed;
};

class SqlIdentityStore {
 public:
  // ALREADY_EXISTS (TENANT_ID_TAKEN) if the id is taken.
  absl::Status InsertTenant(sql::Txn& txn, const Tenant& t);
  absl::Status UpdateTenant(sql::Txn& txn, const Tenant& t);
  // NOT_FOUND (RESOURCE_NOT_FOUND) if absent.
  absl::StatusOr<Tenant> GetTenant(sql::Txn& txn, absl::string_view id);
  // Tenants with id > after, by id, at most `limit`.
  absl::StatusOr<std::vector<Tenant>> ListTenants(sql::Txn& txn,
                                                  absl::string_view after,
                                                  int limit);

  // ALREADY_EXISTS (ISSUER_ALREADY_REGISTERED) if the tenant already has the
  // id or the issuer_uri.
  absl::Status InsertIssuer(sql::Txn& txn, const Issuer& i);
  absl::Status UpdateIssuer(sql::Txn& txn, const Issuer& i);
  absl::StatusOr<Issuer> GetIssuer(sql::Txn& txn, absl::string_view tenant,
                                   absl::string_view id);
  // Every tenant's issuers whose `iss` is `issuer_uri`.
  absl::StatusOr<std::vector<Issuer>> FindIssuersByUri(
      sql::Txn& txn, absl::string_view issuer_uri);
  absl::StatusOr<std::vector<Issuer>> ListIssuers(sql::Txn& txn,
                                                  absl::string_view tenant,
                                                  absl::string_view after,
                                                  int limit);

  // ALREADY_EXISTS (CLINICIAN_ID_TAKEN or SUBJECT_TAKEN).
  absl::Status InsertClinician(sql::Txn& txn, const Clinician& c);
  absl::Status UpdateClinician(sql::Txn& txn, const Clinician& c);
  absl::StatusOr<Clinician> GetClinician(sql::Txn& txn,
                                         absl::string_view tenant,
                                         absl::string_view id);
  // NOT_FOUND (RESOURCE_NOT_FOUND) if no clinician has this subject.
  absl::StatusOr<Clinician> FindClinicianBySubject(sql::Txn& txn,
                                                   absl::string_view tenant,
                                                   absl::string_view issuer_id,
                                                   absl::string_view subject);
  absl::StatusOr<std::vector<Clinician>> ListClinicians(
      sql::Txn& txn, absl::string_view tenant, bool care_team_only,
      bool on_call_only, absl::string_view after, int limit);

  // ALREADY_EXISTS (EXTERNAL_ID_TAKEN) if the tenant has the external id.
  absl::Status InsertPatient(sql::Txn& txn, const PatientRow& p);
  // ALREADY_EXISTS (EXTERNAL_ID_TAKEN) likewise.
  absl::Status UpdatePatient(sql::Txn& txn, const PatientRow& p);
  absl::StatusOr<PatientRow> GetPatient(sql::Txn& txn, absl::string_view tenant,
                                        absl::string_view id);
  // Patients with id > after, by id, at most `limit`; only those whose
  // external id has this keyed hash if `external_id_mac` is non-empty.
  absl::StatusOr<std::vector<PatientRow>> ListPatients(
      sql::Txn& txn, absl::string_view tenant,
      absl::string_view external_id_mac, absl::string_view after, int limit);

  absl::Status InsertLink(sql::Txn& txn, const PatientLink& l);
  // Writes every mutable field (token hash, state, attempts, code, ...).
  absl::Status UpdateLink(sql::Txn& txn, const PatientLink& l);
  absl::StatusOr<PatientLink> GetLink(sql::Txn& txn, absl::string_view tenant,
                                      absl::string_view patient_id,
                                      absl::string_view id);
  // NOT_FOUND (RESOURCE_NOT_FOUND) if no link has this token hash.
  absl::StatusOr<PatientLink> FindLinkByTokenHash(sql::Txn& txn,
                                                  absl::string_view hash);

  absl::Status InsertSession(sql::Txn& txn, const PatientSession& s);
  absl::Status UpdateSession(sql::Txn& txn, const PatientSession& s);
  absl::StatusOr<PatientSession> GetSession(sql::Txn& txn,
                                            absl::string_view tenant,
                                            absl::string_view patient_id,
                                            absl::string_view id);
  absl::StatusOr<PatientSession> FindSessionByTokenHash(sql::Txn& txn,
                                                        absl::string_view hash);

  absl::Status InsertGrant(sql::Txn& txn, const BreakGlassRow& g);
  // Writes state and end_time.
  absl::Status UpdateGrant(sql::Txn& txn, const BreakGlassGrant& g);
  // NOT_FOUND (RESOURCE_NOT_FOUND) if absent.
  absl::StatusOr<BreakGlassRow> GetGrant(sql::Txn& txn,
                                         absl::string_view tenant,
                                         absl::string_view clinician_id,
                                         absl::string_view id);
  // Newest first (start time, then id, descending), strictly after the
  // keyset position (after_start_us, after_id) unless `first`; only the
  // clinician's (unless empty) and the patient's (unless empty).
  absl::StatusOr<std::vector<BreakGlassRow>> ListGrants(
      sql::Txn& txn, absl::string_view tenant, absl::string_view clinician_id,
      absl::string_view patient_id, bool first, int64_t after_start_us,
      absl::string_view after_id, int limit);
};

}  // namespace careseal::identity

#endif  // CARESEAL_SERVICES_IDENTITY_SQL_IDENTITY_STORE_H_
