// Appends audit events: one per call (allowed or denied, read or write),
// into the tenant's append-only log. Each event is a canonical JSON leaf with
// its RFC 6962 leaf hash and a per-tenant leaf index; the Merkle tree,
// checkpoints and proofs over these leaves are served by the AuditService.
// No health data goes into an event beyond resource names.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_AUDIT_WRITER_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_AUDIT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/common/platform/call.h"
#include "services/common/sql/database.h"

namespace careseal {

// The log of events that belong to no tenant (e.g. an unknown peer, admin
// actions on the deployment).
inline constexpr char kNoTenantLog[] = "_";

const std::vector<sql::Migration>& AuditMigrations();

// The tenant log a call's event goes to.
std::string AuditTenantOf(const CallContext& call);

// Appends the event for `call` finishing with `outcome` inside `txn`;
// returns its leaf index. Thread-compatible (uses only txn).
absl::StatusOr<int64_t> AppendAuditEvent(sql::Txn& txn, const CallContext& call,
                                         const absl::Status& outcome);

// The canonical leaf bytes of an event (exposed for tests and verifiers).
absl::StatusOr<std::string> AuditLeaf(const CallContext& call,
                                      const absl::Status& outcome);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_AUDIT_WRITER_H_
