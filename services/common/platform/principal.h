// Who is calling: the authenticated principal of one call, derived by the
// gRPC edge from the peer certificate and (issue 4) the end user's token.
// Never taken from the request.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_PRINCIPAL_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_PRINCIPAL_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/common/identity.h"

namespace careseal {

enum class Role {
  kEhrSystem,   // a clinic's EHR acting for itself
  kClinician,   // a clinician of the tenant
  kPatient,     // a patient, through the portal
  kAuditor,     // reads the audit log of the tenant
  kAdmin,       // operator: tenants, issuers, clinicians
  kBreakGlass,  // a clinician's emergency access (reason, time-boxed)
  kPortal,      // the patient portal acting for itself (link holders)
  kSystem,      // CareSeal's own scheduled jobs
};

inline constexpr Role kAllRoles[] = {
    Role::kEhrSystem, Role::kClinician,  Role::kPatient, Role::kAuditor,
    Role::kAdmin,     Role::kBreakGlass, Role::kPortal,  Role::kSystem};

// "ehr_system", "clinician", ... (the names of DESIGN.md and the contracts).
absl::string_view RoleName(Role role);

struct Principal {
  Role role = Role::kSystem;
  // Tenant id the principal belongs to; empty for admin, portal and system.
  std::string tenant;
  // Who acts: tenants/{t}/clinicians/{c}, tenants/{t}/patients/{p}, or the
  // peer identity when a peer acts for itself; "system" for jobs.
  std::string actor;
  // URI SAN of the peer certificate the call came through.
  std::string peer;
  // For kPatient, and for kBreakGlass the grant's patient: the patient id
  // within `tenant`.
  std::string patient;
  // For kBreakGlass: the grant in force (its resource name) and the end of
  // its access (InfinitePast once ended).
  std::string break_glass_grant;
  absl::Time break_glass_until = absl::InfinitePast();
  // When the credentials this principal came from stop being valid: the
  // bearer token's exp (plus the clock skew the authenticator allows),
  // capped by a break-glass grant's end. A peer acting for itself (its
  // certificate checked at the handshake) has no end here. A watch stream
  // ends at this time (TOKEN_EXPIRED).
  absl::Time valid_until = absl::InfiniteFuture();
};

// The principal of a peer acting for itself (no end-user token).
Principal PrincipalForPeer(const PeerIdentity& peer);

// The principal of CareSeal's own jobs.
Principal SystemPrincipal();

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_PRINCIPAL_H_
