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
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
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

// An event made ready outside the store's writer (its canonical leaf and
// leaf hash computed on the caller's thread): everything but its leaf index,
// which the leaf does not contain.
struct PreparedAuditEvent {
  std::string tenant;
  int64_t time_us = 0;
  std::string actor;
  std::string role;
  std::string action;
  std::string resource;
  std::string patient;
  std::string outcome;
  std::string request_id;
  std::string correlation_id;
  std::string leaf;       // canonical JSON (AuditLeaf)
  std::string leaf_hash;  // RFC 6962: SHA-256(0x00 || leaf)
};

absl::StatusOr<PreparedAuditEvent> PrepareAuditEvent(
    const CallContext& call, const absl::Status& outcome);

// Appends `events` in order inside `txn`, exactly as AppendAuditEvent would
// one after the other (consecutive leaf indexes per tenant), but advancing
// each tenant's head once. Thread-compatible (uses only txn).
absl::Status AppendPreparedAuditEvents(
    sql::Txn& txn, absl::Span<const PreparedAuditEvent* const> events);

// A tenant's patient and actor lookups (audit_patient_index,
// audit_actor_index) are built behind its log: they hold every event below
// the tenant's indexed size, and readers scan the log from there on. The
// size of that indexed prefix (0 for a log never indexed).
absl::StatusOr<int64_t> AuditIndexedSize(sql::Txn& txn,
                                         absl::string_view tenant);

// Adds up to `max_events` of the oldest unindexed events (tenant by tenant)
// to the lookups and advances the indexed sizes; returns how many it added
// (fewer than `max_events`: every log is indexed as of this transaction).
// Idempotent: events already indexed are skipped and a size never moves
// back.
absl::StatusOr<int64_t> IndexAuditLogs(sql::Txn& txn, int64_t max_events);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_AUDIT_WRITER_H_
