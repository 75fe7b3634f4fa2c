// Audit persistence: portable SQL over sql::Txn. Events live in the shared
// audit_events / audit_heads tables that every service appends to
// (services/common/platform/audit_writer.h); this store only reads them.
// Signed checkpoints live in audit_checkpoints, each with the frontier of the
// tree at its size (compact range: one hash per set bit of the size), so the
// next checkpoint hashes only the leaves appended since.
#ifndef CARESEAL_SERVICES_AUDIT_SQL_AUDIT_STORE_H_
#define CARESEAL_SERVICES_AUDIT_SQL_AUDIT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/audit/audit_model.h"
#include "services/common/sql/database.h"

namespace careseal::audit {

const std::vector<sql::Migration>& AuditServiceMigrations();

// A checkpoint with the tree frontier saved at its size.
struct StoredCheckpoint {
  Checkpoint checkpoint;
  std::vector<std::string> frontier;
};

// A tenant whose tree has grown past its latest checkpoint.
struct GrownTenant {
  std::string tenant;
  int64_t tree_size = 0;
};

// Stateless; every method runs inside the caller's transaction.
class SqlAuditStore {
 public:
  // The number of events in the tenant's log (0 for an unknown tenant).
  absl::StatusOr<int64_t> TreeSize(sql::Txn& txn, absl::string_view tenant);

  // NOT_FOUND (RESOURCE_NOT_FOUND) if there is no such event.
  absl::StatusOr<AuditEvent> GetEvent(sql::Txn& txn, absl::string_view tenant,
                                      int64_t leaf_index);
  // Events with leaf_index > after (in leaf order) that match the filter's
  // SQL-expressible parts (everything but the category), at most `limit`.
  absl::StatusOr<std::vector<AuditEvent>> ScanEvents(sql::Txn& txn,
                                                     const EventFilter& filter,
                                                     int64_t after, int limit);
  // Events with from <= leaf_index < to, in leaf order (gaps are the
  // caller's to notice).
  absl::StatusOr<std::vector<AuditEvent>> EventRange(sql::Txn& txn,
                                                     absl::string_view tenant,
                                                     int64_t from, int64_t to);
  // The stored leaf hashes of leaves from <= i < to, in order. INTERNAL
  // (AUDIT_LOG_GAP) if one is missing.
  absl::StatusOr<std::vector<std::string>> LeafHashes(sql::Txn& txn,
                                                      absl::string_view tenant,
                                                      int64_t from, int64_t to);

  absl::Status InsertCheckpoint(sql::Txn& txn, const Checkpoint& c,
                                const std::vector<std::string>& frontier);
  // tree_size 0: the latest. nullopt if none.
  absl::StatusOr<std::optional<StoredCheckpoint>> GetCheckpoint(
      sql::Txn& txn, absl::string_view tenant, int64_t tree_size);
  // Checkpoints with tree_size >= min_size and > after, ascending, at most
  // `limit`.
  absl::StatusOr<std::vector<Checkpoint>> ListCheckpoints(
      sql::Txn& txn, absl::string_view tenant, int64_t min_size, int64_t after,
      int limit);
  // Checkpoints with from < tree_size <= to, ascending.
  absl::StatusOr<std::vector<Checkpoint>> CheckpointsBetween(
      sql::Txn& txn, absl::string_view tenant, int64_t from, int64_t to);
  absl::StatusOr<std::vector<GrownTenant>> GrownTenants(sql::Txn& txn);

  // The public keys recorded for a signing purpose ("checkpoint"), newest
  // first.
  absl::StatusOr<std::vector<CheckpointKey>> SigningKeys(
      sql::Txn& txn, absl::string_view purpose);
};

// The leaf's own fields over the columns stored beside it (they were written
// from the same call); leaves that do not parse keep the column values.
void DecodeLeafInto(AuditEvent& event);

}  // namespace careseal::audit

#endif  // CARESEAL_SERVICES_AUDIT_SQL_AUDIT_STORE_H_
