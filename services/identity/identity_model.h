// Identity records (tenants and token issuers) as plain structs. Enum values
// equal the contract's (proto/careseal/v1/identity.proto).
#ifndef CARESEAL_SERVICES_IDENTITY_IDENTITY_MODEL_H_
#define CARESEAL_SERVICES_IDENTITY_IDENTITY_MODEL_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/common/platform/principal.h"

namespace careseal::identity {

enum class TenantState { kUnspecified = 0, kActive = 1, kSuspended = 2 };
enum class IssuerKind { kUnspecified = 0, kEhr = 1, kPortal = 2 };
enum class IssuerState { kUnspecified = 0, kActive = 1, kRevoked = 2 };

struct Tenant {
  std::string id;
  std::string display_name;
  std::string time_zone;
  TenantState state = TenantState::kActive;
  absl::Time create_time;
  absl::Time update_time;

  std::string Name() const { return "tenants/" + id; }
};

struct Issuer {
  std::string tenant;
  std::string id;
  std::string display_name;
  std::string issuer_uri;
  IssuerKind kind = IssuerKind::kUnspecified;
  std::vector<std::string> peer_identities;
  std::string jwks_json;
  std::vector<std::string> key_ids;
  IssuerState state = IssuerState::kActive;
  absl::Time create_time;
  absl::Time update_time;
  std::optional<absl::Time> revoke_time;

  std::string Name() const { return "tenants/" + tenant + "/issuers/" + id; }
};

enum class PrincipalState { kUnspecified = 0, kActive = 1, kDisabled = 2 };

// Contract role values a clinician record may hold.
inline constexpr int kRoleClinician = 2;
inline constexpr int kRoleAuditor = 4;

struct Clinician {
  std::string tenant;
  std::string id;
  std::string display_name;
  std::string issuer_id;  // an EHR issuer of the same tenant
  std::string subject;
  std::vector<int> roles;  // contract Role values, sorted
  bool care_team = false;
  bool on_call = false;
  PrincipalState state = PrincipalState::kActive;
  absl::Time create_time;
  absl::Time update_time;

  std::string Name() const { return "tenants/" + tenant + "/clinicians/" + id; }
  std::string IssuerName() const {
    return "tenants/" + tenant + "/issuers/" + issuer_id;
  }
};

// A patient of a tenant. external_id and display_name are sealed at rest;
// the date of birth is kept only as a keyed hash (never in this struct).
struct Patient {
  std::string tenant;
  std::string id;  // server-assigned, opaque
  std::string external_id;
  std::string display_name;
  PrincipalState state = PrincipalState::kActive;
  absl::Time create_time;
  absl::Time update_time;

  std::string Name() const { return "tenants/" + tenant + "/patients/" + id; }
};

// A calendar date (the contract's Date).
struct Date {
  int year = 0;
  int month = 0;
  int day = 0;
};

enum class LinkFactor { kUnspecified = 0, kDateOfBirth = 1, kOneTimeCode = 2 };
enum class LinkState {
  kUnspecified = 0,
  kActive = 1,
  kRedeemed = 2,
  kLocked = 3,
  kExpired = 4,
  kRevoked = 5
};

// Link verification limits (identity.proto).
inline constexpr int kMaxLinkAttempts = 5;
inline constexpr absl::Duration kLinkCodeLifetime = absl::Minutes(10);
inline constexpr absl::Duration kDefaultLinkLifetime = absl::Hours(72);
inline constexpr absl::Duration kMaxLinkLifetime = absl::Hours(24 * 30);
inline constexpr absl::Duration kSessionIdleLimit = absl::Minutes(15);
inline constexpr absl::Duration kSessionAbsoluteLimit = absl::Hours(12);

// A one-time portal link. The token and the one-time code are kept only as
// hashes (store fields).
struct PatientLink {
  std::string tenant;
  std::string patient_id;
  std::string id;
  std::string target;
  LinkFactor factor = LinkFactor::kUnspecified;
  LinkState state = LinkState::kActive;
  int failed_attempts = 0;
  std::string created_by_name;
  Role created_by_role = Role::kSystem;
  std::string created_by_peer;
  absl::Time create_time;
  absl::Time expire_time;
  std::optional<absl::Time> redeem_time;
  // Store only.
  std::string token_hash;  // SHA-256 of the link token
  std::string code_mac;    // keyed hash of the current one-time code
  std::optional<absl::Time> code_expire_time;

  std::string PatientName() const {
    return "tenants/" + tenant + "/patients/" + patient_id;
  }
  std::string Name() const { return PatientName() + "/links/" + id; }
  // The state as of `now` (an active link past its expiry is expired).
  LinkState StateAt(absl::Time now) const {
    return state == LinkState::kActive && now >= expire_time
               ? LinkState::kExpired
               : state;
  }
};

enum class SessionState { kUnspecified = 0, kActive = 1, kEnded = 2 };

// A verified patient's portal session; the token is kept only as a hash.
struct PatientSession {
  std::string tenant;
  std::string patient_id;
  std::string id;
  std::string link;
  std::string target;
  SessionState state = SessionState::kActive;
  absl::Time create_time;
  absl::Time idle_expire_time;
  absl::Time expire_time;
  std::optional<absl::Time> end_time;
  std::string token_hash;  // store only

  std::string PatientName() const {
    return "tenants/" + tenant + "/patients/" + patient_id;
  }
  std::string Name() const { return PatientName() + "/portalSessions/" + id; }
  // Ended once logged out, idle past idle_expire_time or past expire_time.
  SessionState StateAt(absl::Time now) const {
    return state == SessionState::kActive &&
                   (now >= idle_expire_time || now >= expire_time)
               ? SessionState::kEnded
               : state;
  }
};

enum class BreakGlassState {
  kUnspecified = 0,
  kActive = 1,
  kEnded = 2,
  kExpired = 3
};

// Break-glass limits (identity.proto).
inline constexpr size_t kMinBreakGlassReason = 10;
inline constexpr size_t kMaxBreakGlassReason = 1000;
inline constexpr absl::Duration kMinBreakGlass = absl::Minutes(5);
inline constexpr absl::Duration kMaxBreakGlass = absl::Hours(4);
inline constexpr absl::Duration kDefaultBreakGlass = absl::Hours(1);

// A clinician's time-boxed emergency access to one patient. The reason is
// sealed at rest (store field `reason_sealed`).
struct BreakGlassGrant {
  std::string tenant;
  std::string clinician_id;
  std::string id;
  std::string patient_id;
  std::string reason;
  BreakGlassState state = BreakGlassState::kActive;
  absl::Time start_time;
  absl::Time expire_time;
  std::optional<absl::Time> end_time;

  std::string ClinicianName() const {
    return "tenants/" + tenant + "/clinicians/" + clinician_id;
  }
  std::string Name() const {
    return ClinicianName() + "/breakGlassGrants/" + id;
  }
  std::string PatientName() const {
    return "tenants/" + tenant + "/patients/" + patient_id;
  }
  // The state as of `now` (an active grant past its expiry is expired).
  BreakGlassState StateAt(absl::Time now) const {
    return state == BreakGlassState::kActive && now >= expire_time
               ? BreakGlassState::kExpired
               : state;
  }
  // Until when it grants access (InfinitePast once ended).
  absl::Time LiveUntil() const {
    return state == BreakGlassState::kActive ? expire_time
                                             : absl::InfinitePast();
  }
};

}  // namespace careseal::identity

#endif  // CARESEAL_SERVICES_IDENTITY_IDENTITY_MODEL_H_
