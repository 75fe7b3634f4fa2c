// IdentityManager: the identity domain (tenants, token issuers, clinicians).
// Plain C++: no gRPC, no protobuf.
//
// Writes run as one group-commit job each (request id, read, change, audit
// event in one transaction); `done` runs on a writer thread once durable and
// must not block. Reads run on the caller's thread.
//
// REQUIRES for every call: `call` outlives the call (until `done` ran), and
// the caller has authorized `call.principal` for the resource.
//
// Not built yet (see identity.proto): links, patient sessions, break-glass
// grants.
#ifndef CARESEAL_SERVICES_IDENTITY_IDENTITY_MANAGER_H_
#define CARESEAL_SERVICES_IDENTITY_IDENTITY_MANAGER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "services/common/clock.h"
#include "services/common/crypto/random.h"
#include "services/common/platform/call.h"
#include "services/common/platform/sealer.h"
#include "services/common/sql/database.h"
#include "services/identity/identity_model.h"
#include "services/identity/sql_identity_store.h"

namespace careseal::identity {

template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;
};

// Limits of the contract (identity.proto).
inline constexpr size_t kMaxDisplayName = 200;
inline constexpr size_t kMaxIssuerUriBytes = 512;
inline constexpr size_t kMaxPeerIdentities = 20;
inline constexpr size_t kMaxIssuerKeys = 10;

// "[a-z][a-z0-9-]{2,62}" (tenant, issuer and clinician ids).
bool IsValidChosenId(absl::string_view id);

struct CreateTenantInput {
  std::string tenant_id;
  std::string display_name;
  std::string time_zone;
};

struct UpdateTenantInput {
  std::string tenant_id;
  // Set fields are the update mask's paths.
  std::optional<std::string> display_name;
  std::optional<std::string> time_zone;
  std::optional<int> state;  // contract enum value; validated
};

struct RegisterIssuerInput {
  std::string tenant;
  std::string issuer_id;  // optional
  std::string display_name;
  std::string issuer_uri;
  int kind = 0;  // contract enum value; validated
  std::vector<std::string> peer_identities;
  std::string jwks_json;
};

struct CreateClinicianInput {
  std::string tenant;
  std::string clinician_id;  // optional
  std::string display_name;
  std::string issuer_id;  // from the issuer's resource name
  std::string subject;
  std::vector<int> roles;  // contract Role values; empty: [clinician]
  bool care_team = false;
  bool on_call = false;
};

struct UpdateIssuerInput {
  std::string tenant;
  std::string issuer_id;
  // Set fields are the update mask's paths.
  std::optional<std::string> display_name;
  std::optional<std::string> jwks_json;
  std::optional<std::vector<std::string>> peer_identities;
};

struct UpdateClinicianInput {
  std::string tenant;
  std::string clinician_id;
  // Set fields are the update mask's paths.
  std::optional<std::string> display_name;
  std::optional<std::vector<int>> roles;  // contract Role values; validated
  std::optional<bool> care_team;
  std::optional<bool> on_call;
  std::optional<int> state;  // contract enum value; validated
};

struct CreatePatientInput {
  std::string tenant;
  std::string external_id;   // required, 1..128 bytes, one line
  std::string display_name;  // optional, at most 200 code points
  Date date_of_birth;        // required
};

struct UpdatePatientInput {
  std::string tenant;
  std::string patient_id;
  // Set fields are the update mask's paths.
  std::optional<std::string> external_id;
  std::optional<std::string> display_name;
  std::optional<Date> date_of_birth;
  std::optional<int> state;  // contract enum value; validated
};

// INVALID_ARGUMENT (INVALID_DATE) naming `field` unless `d` is a real date in
// 1900..9999 and not after `today`.
absl::Status CheckDateOfBirth(absl::string_view field, const Date& d,
                              absl::Time now);

struct IdentityDeps {
  sql::Database* db;
  const Clock* clock;
  crypto::RandomSource* random;
  // Seals patients' PII and hashes their dates of birth; patient calls fail
  // (FAILED_PRECONDITION) without it.
  Sealer* sealer = nullptr;
};

class IdentityManager {
 public:
  explicit IdentityManager(IdentityDeps deps) : deps_(deps) {}

  static absl::Status Migrate(sql::Database& db);

  void CreateTenant(CallContext& call, CreateTenantInput in, Done<Tenant> done);
  void UpdateTenant(CallContext& call, UpdateTenantInput in, Done<Tenant> done);
  absl::StatusOr<Tenant> GetTenant(CallContext& call,
                                   absl::string_view tenant_id);
  absl::StatusOr<Page<Tenant>> ListTenants(CallContext& call, int page_size,
                                           absl::string_view page_token);

  void RegisterIssuer(CallContext& call, RegisterIssuerInput in,
                      Done<Issuer> done);
  void RevokeIssuer(CallContext& call, std::string tenant,
                    std::string issuer_id, Done<Issuer> done);
  absl::StatusOr<Issuer> GetIssuer(CallContext& call, absl::string_view tenant,
                                   absl::string_view issuer_id);
  absl::StatusOr<Page<Issuer>> ListIssuers(CallContext& call,
                                           absl::string_view tenant,
                                           int page_size,
                                           absl::string_view page_token);

  // FAILED_PRECONDITION (ISSUER_REVOKED) for a revoked issuer.
  void UpdateIssuer(CallContext& call, UpdateIssuerInput in, Done<Issuer> done);

  // NOT_FOUND for an absent tenant or issuer (or an issuer of another kind
  // or a revoked one: only active EHR issuers speak for clinicians).
  void CreateClinician(CallContext& call, CreateClinicianInput in,
                       Done<Clinician> done);
  void UpdateClinician(CallContext& call, UpdateClinicianInput in,
                       Done<Clinician> done);
  absl::StatusOr<Clinician> GetClinician(CallContext& call,
                                         absl::string_view tenant,
                                         absl::string_view clinician_id);
  absl::StatusOr<Page<Clinician>> ListClinicians(
      CallContext& call, absl::string_view tenant, bool care_team_only,
      bool on_call_only, int page_size, absl::string_view page_token);

  // Patients: external_id and display_name sealed under the tenant's data
  // key, external_id and date of birth also kept as keyed hashes (lookup,
  // verification). The date of birth is never returned.
  void CreatePatient(CallContext& call, CreatePatientInput in,
                     Done<Patient> done);
  void UpdatePatient(CallContext& call, UpdatePatientInput in,
                     Done<Patient> done);
  absl::StatusOr<Patient> GetPatient(CallContext& call,
                                     absl::string_view tenant,
                                     absl::string_view patient_id);
  absl::StatusOr<Page<Patient>> ListPatients(CallContext& call,
                                             absl::string_view tenant,
                                             absl::string_view external_id,
                                             int page_size,
                                             absl::string_view page_token);

  // Look-ups for the token authenticator (no call, no audit of their own:
  // the call they authenticate is audited).
  // Every tenant's issuers with this `iss`.
  absl::StatusOr<std::vector<Issuer>> IssuersByUri(
      absl::string_view issuer_uri) const;
  // NOT_FOUND unless the issuer's `sub` names a clinician.
  absl::StatusOr<Clinician> ClinicianBySubject(absl::string_view tenant,
                                               absl::string_view issuer_id,
                                               absl::string_view subject) const;
  // NOT_FOUND if the patient does not exist.
  absl::StatusOr<PrincipalState> PatientState(
      absl::string_view tenant, absl::string_view patient_id) const;

  // INVALID_ARGUMENT naming the field, or the roles to store (sorted, unique,
  // default [clinician]).
  static absl::StatusOr<std::vector<int>> ValidateClinician(
      const CreateClinicianInput& in);

  // INVALID_ARGUMENT naming the field, or the key ids of the JWK Set.
  static absl::StatusOr<std::vector<std::string>> ValidateIssuer(
      const RegisterIssuerInput& in);

 private:
  // The model of a stored patient (opens the sealed fields).
  absl::StatusOr<Patient> Open(sql::Txn& txn, const PatientRow& row);
  absl::StatusOr<std::string> DobMac(sql::Txn& txn, absl::string_view tenant,
                                     const Date& d);

  IdentityDeps deps_;
  mutable SqlIdentityStore store_;
};

}  // namespace careseal::identity

#endif  // CARESEAL_SERVICES_IDENTITY_IDENTITY_MANAGER_H_
