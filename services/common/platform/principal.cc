#include "services/common/platform/principal.h"

namespace careseal {

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kEhrSystem:
      return "ehr_system";
    case Role::kClinician:
      return "clinician";
    case Role::kPatient:
      return "patient";
    case Role::kAuditor:
      return "auditor";
    case Role::kAdmin:
      return "admin";
    case Role::kBreakGlass:
      return "break_glass";
    case Role::kPortal:
      return "portal";
    case Role::kSystem:
      return "system";
  }
  return "unknown";
}

Principal PrincipalForPeer(const PeerIdentity& peer) {
  Principal p;
  p.peer = peer.uri;
  p.actor = peer.uri;
  p.tenant = peer.tenant;
  switch (peer.kind) {
    case PeerIdentity::Kind::kEhr:
      p.role = Role::kEhrSystem;
      break;
    case PeerIdentity::Kind::kClinician:
      p.role = Role::kClinician;
      p.actor = "tenants/" + peer.tenant + "/clinicians/" + peer.name;
      break;
    case PeerIdentity::Kind::kAuditor:
      p.role = Role::kAuditor;
      p.actor = "tenants/" + peer.tenant + "/clinicians/" + peer.name;
      break;
    case PeerIdentity::Kind::kPortal:
      p.role = Role::kPortal;
      break;
    case PeerIdentity::Kind::kAdmin:
      p.role = Role::kAdmin;
      break;
    case PeerIdentity::Kind::kService:
      p.role = Role::kSystem;
      p.actor = "system";
      break;
  }
  return p;
}

Principal SystemPrincipal() {
  Principal p;
  p.role = Role::kSystem;
  p.actor = "system";
  return p;
}

}  // namespace careseal
