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

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_IDEMPOTENCY_H_
