// AIP-155 request ids, remembered per (tenant, caller, request_id) in the same
// transaction as the change they made: a retry with the same body finds the
// resource it created; the same id with another body is REQUEST_ID_REUSED.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_IDEMPOTENCY_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_IDEMPOTENCY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/common/platform/call.h"
#include "services/common/sql/database.h"

namespace careseal {

const std::vector<sql::Migration>& IdempotencyMigrations();

// INVALID_ARGUMENT unless `request_id` is an RFC 4122 UUID in text form.
absl::Status CheckRequestId(absl::string_view request_id);

// The resource the first call with this request id produced, nullopt for a
// new request id, or ALREADY_EXISTS (REQUEST_ID_REUSED).
absl::StatusOr<std::optional<std::string>> FindIdempotentResult(
    sql::Txn& txn, const CallContext& call);

// Records that `call` produced `resource`.
absl::Status RememberIdempotentResult(sql::Txn& txn, const CallContext& call,
                                      absl::string_view resource);

// A request id for a call one service makes to another on behalf of work of
// its own (a scheduled job, a step of a caller's request): an RFC 4122
// (version 4 layout) UUID taken from SHA-256 of `seed`. The same seed always
// gives the same id, so a retried or taken-over step is not done twice.
std::string DerivedRequestId(absl::string_view seed);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_IDEMPOTENCY_H_
