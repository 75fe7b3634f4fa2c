// Authorization in one place: a table of method x role (deny by default)
// plus ownership rules, checked before any lookup.
//   1. The caller's role must be listed for the method, else
//      PERMISSION_DENIED (ROLE_NOT_ALLOWED).
//   2. Ownership: a tenant-bound principal only reaches its own tenant; a
//      patient only their own records; break-glass only the grant's
//      patient (and the tenant's patient-less resources) while its grant
//      lasts (else PERMISSION_DENIED (BREAK_GLASS_EXPIRED)). A miss is
//      NOT_FOUND (RESOURCE_NOT_FOUND) with the very same message as a resource
//      that does not exist, so probing other tenants reveals nothing.
// Each service registers its rows at start-up; a test walks every RPC of
// every service descriptor and fails if one has no row.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_POLICY_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_POLICY_H_

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/common/platform/principal.h"

namespace careseal {

// The one NOT_FOUND answer for absent and foreign resources alike.
absl::Status ResourceNotFound();

// PERMISSION_DENIED (BREAK_GLASS_EXPIRED): a break-glass grant that has
// ended or expired.
absl::Status BreakGlassExpired();

// What a call reaches: the tenant and, if the resource belongs to a patient,
// the patient id ("-" for "all patients" in list calls).
struct Scope {
  std::string tenant;
  std::string patient;
};

class Policy {
 public:
  // REQUIRES: each method is added once (a duplicate aborts: programming
  // error, not bad traffic).
  void Allow(absl::string_view method, std::initializer_list<Role> roles);

  bool HasRule(absl::string_view method) const;
  bool Allows(absl::string_view method, Role role) const;

  absl::Status Authorize(const Principal& principal, absl::string_view method,
                         const Scope& scope, absl::Time now) const;

 private:
  absl::flat_hash_map<std::string, std::vector<Role>> rules_;
};

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_POLICY_H_
