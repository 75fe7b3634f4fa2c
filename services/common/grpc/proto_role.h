// The contract's spelling of a principal's role, shared by every service's
// gRPC edge (actors in messages, events, escalations, links, ...).
#ifndef CARESEAL_SERVICES_COMMON_GRPC_PROTO_ROLE_H_
#define CARESEAL_SERVICES_COMMON_GRPC_PROTO_ROLE_H_

#include "careseal/v1/common.pb.h"
#include "services/common/platform/principal.h"

namespace careseal {

// careseal.v1.Role of `role`; ROLE_UNSPECIFIED for a value outside the enum.
v1::Role ToProtoRole(Role role);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_GRPC_PROTO_ROLE_H_
