// Errors across CareSeal: an absl::Status with
//   * the most specific canonical code,
//   * an UPPER_SNAKE reason (machine readable, stable; becomes
//     google.rpc.ErrorInfo.reason at the gRPC edge),
//   * an actionable message for a developer, which never contains patient data,
//   * optionally the request field at fault (google.rpc.BadRequest).
// Build every error with Error() or one of the shorthands; read the parts back
// with ErrorReason() / ErrorField(). Never match on message text.
#ifndef CARESEAL_SERVICES_COMMON_STATUS_H_
#define CARESEAL_SERVICES_COMMON_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace careseal {

// The ErrorInfo domain carried on every error.
inline constexpr absl::string_view kErrorDomain = "careseal.local";

absl::Status Error(absl::StatusCode code, absl::string_view reason,
                   absl::string_view message);

// INVALID_ARGUMENT naming the offending request field (dotted path, e.g.
// "signature.printed_name").
absl::Status InvalidField(absl::string_view field, absl::string_view reason,
                          absl::string_view message);

absl::Status NotFound(absl::string_view reason, absl::string_view message);
absl::Status FailedPrecondition(absl::string_view reason,
                                absl::string_view message);
absl::Status PermissionDenied(absl::string_view reason,
                              absl::string_view message);
absl::Status Unauthenticated(absl::string_view reason,
                             absl::string_view message);
absl::Status AlreadyExists(absl::string_view reason, absl::string_view message);
absl::Status Internal(absl::string_view reason, absl::string_view message);

// The reason of an error built by Error(); "" for OK or a foreign status.
std::string ErrorReason(const absl::Status& status);
// The field of an error built by InvalidField(); "" otherwise.
std::string ErrorField(const absl::Status& status);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_STATUS_H_
