#include "services/common/status.h"

#include "absl/strings/cord.h"

namespace careseal {
namespace {

constexpr absl::string_view kReasonUrl = "type.careseal.local/reason";
constexpr absl::string_view kFieldUrl = "type.careseal.local/field";

std::string Payload(const absl::Status& status, absl::string_view url) {
  auto payload = status.GetPayload(url);
  return payload ? std::string(*payload) : std::string();
}

}  // namespace

absl::Status Error(absl::StatusCode code, absl::string_view reason,
                   absl::string_view message) {
  absl::Status status(code, message);
  if (!status.ok()) status.SetPayload(kReasonUrl, absl::Cord(reason));
  return status;
}

absl::Status InvalidField(absl::string_view field, absl::string_view reason,
                          absl::string_view message) {
  absl::Status status =
      Error(absl::StatusCode::kInvalidArgument, reason, message);
  status.SetPayload(kFieldUrl, absl::Cord(field));
  return status;
}

absl::Status NotFound(absl::string_view reason, absl::string_view message) {
  return Error(absl::StatusCode::kNotFound, reason, message);
}
absl::Status FailedPrecondition(absl::string_view reason,
                                absl::string_view message) {
  return Error(absl::StatusCode::kFailedPrecondition, reason, message);
}
absl::Status PermissionDenied(absl::string_view reason,
                              absl::string_view message) {
  return Error(absl::StatusCode::kPermissionDenied, reason, message);
}
absl::Status Unauthenticated(absl::string_view reason,
                             absl::string_view message) {
  return Error(absl::StatusCode::kUnauthenticated, reason, message);
}
absl::Status AlreadyExists(absl::string_view reason,
                           absl::string_view message) {
  return Error(absl::StatusCode::kAlreadyExists, reason, message);
}
absl::Status Internal(absl::string_view reason, absl::string_view message) {
  return Error(absl::StatusCode::kInternal, reason, message);
}

std::string ErrorReason(const absl::Status& status) {
  return Payload(status, kReasonUrl);
}
std::string ErrorField(const absl::Status& status) {
  return Payload(status, kFieldUrl);
}

}  // namespace careseal
