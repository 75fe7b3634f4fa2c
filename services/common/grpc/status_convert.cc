#include "services/common/grpc/status_convert.h"

#include <string>

#include "absl/strings/strip.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "services/common/error_metadata.h"
#include "services/common/status.h"

namespace careseal {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const std::string message(status.message());
  google::rpc::Status rpc_status;
  rpc_status.set_code(static_cast<int>(status.code()));
  rpc_status.set_message(message);
  std::string reason = ErrorReason(status);
  if (reason.empty()) reason = "UNSPECIFIED";
  google::rpc::ErrorInfo info;
  info.set_reason(reason);
  info.set_domain(std::string(kErrorDomain));
  status.ForEachPayload([&info](absl::string_view url, const absl::Cord& v) {
    absl::string_view key = url;
    if (absl::ConsumePrefix(&key, kErrorMetadataUrlPrefix) && !key.empty()) {
      (*info.mutable_metadata())[std::string(key)] = std::string(v);
    }
  });
  rpc_status.add_details()->PackFrom(info);
  std::string field = ErrorField(status);
  if (!field.empty()) {
    google::rpc::BadRequest bad_request;
    auto* violation = bad_request.add_field_violations();
    violation->set_field(field);
    violation->set_description(message);
    rpc_status.add_details()->PackFrom(bad_request);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message,
                      rpc_status.SerializeAsString());
}

}  // namespace careseal
