#include "services/common/grpc/proto_role.h"

namespace careseal {

v1::Role ToProtoRole(Role role) {
  switch (role) {
    case Role::kEhrSystem:
      return v1::ROLE_EHR_SYSTEM;
    case Role::kClinician:
      return v1::ROLE_CLINICIAN;
    case Role::kPatient:
      return v1::ROLE_PATIENT;
    case Role::kAuditor:
      return v1::ROLE_AUDITOR;
    case Role::kAdmin:
      return v1::ROLE_ADMIN;
    case Role::kBreakGlass:
      return v1::ROLE_BREAK_GLASS;
    case Role::kPortal:
      return v1::ROLE_PORTAL;
    case Role::kSystem:
      return v1::ROLE_SYSTEM;
  }
  return v1::ROLE_UNSPECIFIED;
}

}  // namespace careseal
