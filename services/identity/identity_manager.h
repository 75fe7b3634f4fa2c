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
// Break-glass grants: started by a clinician for themselves, sealed
// reason, time-boxed; start and early end are audited (flagged by their
// method) and emitted on the event stream in the change's transaction.
#ifndef CARESEAL_SERVICES_IDENTITY_IDENTITY_MANAGER_H_
#define CARESEAL_SERVICES_IDENTITY_IDENTITY_MANAGER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
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

struct CreateLinkInput {
  std::string tenant;
  std::string patient_id;
  std::string target;  // empty or a resource of the same patient
  int factor = 0;      // contract enum value; validated
  std::optional<absl::Time> expire_time;
};

struct CreatedLink {
  PatientLink link;
  std::string link_token;  // returned once; only its hash is kept
};

struct IssuedCode {
  std::string code;  // 8 decimal digits; returned once; kept as a keyed hash
  absl::Time expire_time;
};

struct RedeemInput {
  std::string link_token;
  std::optional<Date> date_of_birth;
  std::optional<std::string> one_time_code;
  std::string client_address;
  std::string user_agent;
};

struct StartBreakGlassInput {
  std::string tenant;
  std::string clinician_id;  // the caller (checked by the edge)
  std::string patient_id;
  std::string reason;                      // 10..1000 code points, one line
  std::optional<absl::Duration> duration;  // 5 min..4 h; unset: 1 h
};

struct Redeemed {
  std::string patient;  // tenants/{t}/patients/{p}
  PatientSession session;
  std::string session_token;  // returned once; only its hash is kept
};

// INVALID_ARGUMENT (INVALID_DATE) naming `field` unless `d` is a real date in
// 1900..9999 and not after `today`.
absl::Status CheckDateOfBirth(absl::string_view field, const Date& d,
                              absl::Time now);

// RedeemLink attempts allowed per client address (as the portal reports
// it) in a sliding window; more are RESOURCE_EXHAUSTED (RATE_LIMITED).
inline constexpr int kRedeemAttemptsPerAddress = 20;
inline constexpr absl::Duration kRedeemWindow = absl::Minutes(10);

// Counts attempts per key in a sliding window on the injected clock, in
// this process's memory (a restart or another replica starts afresh; the
// per-link lock after 5 failed tries is durable). At most `max_keys` keys
// are tracked; beyond that, keys whose window has passed are dropped first,
// and a new key is refused rather than forgetting a live one. Thread-safe.
class AttemptLimiter {
 public:
  AttemptLimiter(int max_attempts, absl::Duration window,
                 size_t max_keys = 100000)
      : max_attempts_(max_attempts), window_(window), max_keys_(max_keys) {}
  // Records an attempt for `key` at `now`; false if over the limit.
  bool Allow(absl::string_view key, absl::Time now);

 private:
  const int max_attempts_;
  const absl::Duration window_;
  const size_t max_keys_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<absl::Time>> attempts_
      ABSL_GUARDED_BY(mu_);
};

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

  // Links and portal sessions. Link and session tokens are 128 random bits
  // (base64url) kept as SHA-256; one-time codes are kept as keyed hashes.
  void CreatePatientLink(CallContext& call, CreateLinkInput in,
                         Done<CreatedLink> done);
  void IssueLinkCode(CallContext& call, std::string tenant,
                     std::string patient_id, std::string link_id,
                     Done<IssuedCode> done);
  void RevokePatientLink(CallContext& call, std::string tenant,
                         std::string patient_id, std::string link_id,
                         Done<PatientLink> done);
  // A wrong second factor is counted in its own committed transaction, then
  // answered PERMISSION_DENIED (SECOND_FACTOR_MISMATCH); the 5th locks the
  // link. More than kRedeemAttemptsPerAddress attempts from one non-empty
  // client address within kRedeemWindow: RESOURCE_EXHAUSTED (RATE_LIMITED).
  void RedeemLink(CallContext& call, RedeemInput in, Done<Redeemed> done);
  void EndPatientSession(CallContext& call, std::string tenant,
                         std::string patient_id, std::string session_id,
                         Done<PatientSession> done);

  // Break-glass. StartBreakGlass: INVALID_ARGUMENT (REASON_TOO_SHORT,
  // DURATION_OUT_OF_RANGE, ...), NOT_FOUND for an absent patient; emits
  // EVENT_TYPE_BREAK_GLASS_STARTED. EndBreakGlass ends an active grant at
  // once (EVENT_TYPE_BREAK_GLASS_ENDED); an ended or expired one is returned
  // unchanged. `owner` non-empty: NOT_FOUND unless the grant belongs to that
  // clinician id (a clinician ends only their own).
  void StartBreakGlass(CallContext& call, StartBreakGlassInput in,
                       Done<BreakGlassGrant> done);
  void EndBreakGlass(CallContext& call, std::string tenant,
                     std::string clinician_id, std::string grant_id,
                     Done<BreakGlassGrant> done);
  // Newest first; `clinician_id` and `patient_id` empty: all.
  absl::StatusOr<Page<BreakGlassGrant>> ListBreakGlassGrants(
      CallContext& call, absl::string_view tenant,
      absl::string_view clinician_id, absl::string_view patient_id,
      int page_size, absl::string_view page_token);
  // For the token authenticator: the stored grant without its reason
  // (NOT_FOUND if absent). No audit of its own.
  absl::StatusOr<BreakGlassGrant> GrantForUse(absl::string_view tenant,
                                              absl::string_view clinician_id,
                                              absl::string_view grant_id) const;

  // For the token authenticator: UNAUTHENTICATED (SESSION_EXPIRED) unless
  // `session_token` names an active session of this patient that is within
  // its idle and absolute limits at `now`. Extends the idle limit (at most
  // up to the absolute one) without waiting for the write.
  absl::Status CheckSession(absl::string_view session_token,
                            absl::string_view tenant,
                            absl::string_view patient_id, absl::Time now) const;

  // Look-ups for the token authenticator (no call, no audit of their own:
  // the call they authenticate is audited).
  // Every tenant's issuers with this `iss`.
  absl::StatusOr<std::vector<Issuer>> IssuersByUri(
      absl::string_view issuer_uri) const;
  // NOT_FOUND unless the issuer's `sub` names a clinician.
  absl::StatusOr<Clinician> ClinicianBySubject(absl::string_view tenant,
                                               absl::string_view issuer_id,
                                               absl::string_view subject) const;
  // True if the tenant exists and is suspended (false if absent). Read for
  // every call, so cached: a change made through this process applies from
  // its commit on; one made by another replica sharing the store, within
  // kTenantStateTtl.
  absl::StatusOr<bool> TenantSuspended(absl::string_view tenant) const;
  static constexpr absl::Duration kTenantStateTtl = absl::Seconds(2);
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
  absl::StatusOr<BreakGlassGrant> OpenGrant(sql::Txn& txn,
                                            const BreakGlassRow& row);
  absl::StatusOr<std::string> DobMac(sql::Txn& txn, absl::string_view tenant,
                                     const Date& d);

  // Forgets the cached state of `tenant` once `txn` commits.
  void ForgetTenantStateAfterCommit(sql::Txn& txn, absl::string_view tenant);

  IdentityDeps deps_;
  mutable SqlIdentityStore store_;
  AttemptLimiter redeem_limiter_{kRedeemAttemptsPerAddress, kRedeemWindow};

  struct TenantStateEntry {
    bool suspended = false;
    absl::Time read_at;
  };
  mutable absl::Mutex tenant_state_mu_;
  mutable absl::flat_hash_map<std::string, TenantStateEntry> tenant_state_
      ABSL_GUARDED_BY(tenant_state_mu_);
  // Bumped by every forget, so that a read that began before a change does
  // not store what it read after the change was forgotten.
  mutable uint64_t tenant_state_generation_ ABSL_GUARDED_BY(tenant_state_mu_) =
      0;
};

}  // namespace careseal::identity

#endif  // CARESEAL_SERVICES_IDENTITY_IDENTITY_MANAGER_H_
