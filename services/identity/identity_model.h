// Identity records (tenants and token issuers) as plain structs. Enum values
// equal the contract's (proto/careseal/v1/identity.proto).
#ifndef CARESEAL_SERVICES_IDENTITY_IDENTITY_MODEL_H_
#define CARESEAL_SERVICES_IDENTITY_IDENTITY_MODEL_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

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

}  // namespace careseal::identity

#endif  // CARESEAL_SERVICES_IDENTITY_IDENTITY_MODEL_H_
