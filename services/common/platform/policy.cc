#include "services/common/platform/policy.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "services/common/status.h"

namespace careseal {

absl::Status ResourceNotFound() {
  return NotFound("RESOURCE_NOT_FOUND",
                  "the resource does not exist or is not visible to the "
                  "caller");
}

absl::Status BreakGlassExpired() {
  return PermissionDenied("BREAK_GLASS_EXPIRED",
                          "the break-glass grant has ended or expired; start "
                          "a new one with a reason");
}

void Policy::Allow(absl::string_view method,
                   std::initializer_list<Role> roles) {
  if (!rules_.emplace(std::string(method), std::vector<Role>(roles)).second) {
    std::fprintf(stderr, "policy: duplicate rule for %s\n",
                 std::string(method).c_str());
    std::abort();
  }
}

bool Policy::HasRule(absl::string_view method) const {
  return rules_.contains(method);
}

bool Policy::Allows(absl::string_view method, Role role) const {
  auto it = rules_.find(method);
  return it != rules_.end() && std::find(it->second.begin(), it->second.end(),
                                         role) != it->second.end();
}

absl::Status Policy::Authorize(const Principal& principal,
                               absl::string_view method, const Scope& scope,
                               absl::Time now) const {
  if (!Allows(method, principal.role)) {
    return PermissionDenied("ROLE_NOT_ALLOWED",
                            absl::StrCat("the role ", RoleName(principal.role),
                                         " may not call ", method));
  }
  switch (principal.role) {
    case Role::kAdmin:
    case Role::kSystem:
    case Role::kPortal:  // the domain checks the link token it presents
      return absl::OkStatus();
    case Role::kBreakGlass:
      if (now >= principal.break_glass_until) return BreakGlassExpired();
      // Only the grant's patient; a tenant-level resource that belongs to
      // no patient (a template) is readable like for any clinician.
      if (!scope.patient.empty() && scope.patient != principal.patient) {
        return ResourceNotFound();
      }
      break;
    case Role::kPatient:
      if (scope.patient.empty() || scope.patient != principal.patient) {
        return ResourceNotFound();
      }
      break;
    case Role::kEhrSystem:
    case Role::kClinician:
    case Role::kAuditor:
      break;
  }
  if (scope.tenant.empty() || scope.tenant != principal.tenant) {
    return ResourceNotFound();
  }
  return absl::OkStatus();
}

}  // namespace careseal
