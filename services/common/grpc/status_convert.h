// The one place where an absl::Status becomes a grpc::Status: same code, the
// message, and google.rpc.Status details carrying ErrorInfo (reason, domain)
// and, for a field error, BadRequest.FieldViolation.
#ifndef CARESEAL_SERVICES_COMMON_GRPC_STATUS_CONVERT_H_
#define CARESEAL_SERVICES_COMMON_GRPC_STATUS_CONVERT_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace careseal {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_GRPC_STATUS_CONVERT_H_
