// AuditManager: the audit domain. Plain C++: no gRPC, no protobuf.
//
// Reads run on the caller's thread over a read snapshot. CreateCheckpoint is
// one group-commit job (idempotency check, tree head, signature, checkpoint
// row, the call's audit event and the request id in one transaction) whose
// `done` runs on the writer thread once it is durable and must not block.
//
// The tree of a checkpoint never includes the audit event of the call that
// created it: that event is the first leaf of the next tree.
//
// REQUIRES for every call taking a CallContext: `call` outlives the call
// (until `done` ran) and the caller has authorized `call.principal` for the
// tenant.
#ifndef CARESEAL_SERVICES_AUDIT_AUDIT_MANAGER_H_
#define CARESEAL_SERVICES_AUDIT_AUDIT_MANAGER_H_

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/audit/audit_model.h"
#include "services/audit/sql_audit_store.h"
#include "services/common/clock.h"
#include "services/common/platform/call.h"
#include "services/common/platform/signing_keys.h"
#include "services/common/sql/database.h"

namespace careseal::audit {

template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;
};

// How many stored events one ListAuditEvents call examines at most; a page
// can come back short (with a next_page_token) when a filter is sparse.
inline constexpr int kMaxScannedEventsPerPage = 10000;

struct InclusionProofResult {
  AuditEvent event;
  Checkpoint checkpoint;
  std::vector<std::string> audit_path;
};

struct ConsistencyProofResult {
  int64_t first_tree_size = 0;
  int64_t second_tree_size = 0;
  std::vector<std::string> proof;
  std::optional<Checkpoint> first_checkpoint;
  std::optional<Checkpoint> second_checkpoint;
};

// What an export streams: leaves start <= i < end, the keys first.
struct ExportPlan {
  std::string tenant;
  int64_t start = 0;
  int64_t end = 0;
  std::vector<CheckpointKey> keys;
};

// Events from <= i < next, and the checkpoints whose tree size lies in
// (from, next]: each goes right after the event that completes it.
struct ExportChunk {
  std::vector<AuditEvent> events;
  std::vector<Checkpoint> checkpoints;
  int64_t next = 0;
};

struct AuditDeps {
  sql::Database* db = nullptr;
  const Clock* clock = nullptr;
  const SigningKeyStore* checkpoint_keys = nullptr;
};

// Thread-safe.
class AuditManager {
 public:
  explicit AuditManager(AuditDeps deps) : deps_(deps) {}

  // Applies the audit service's schema (and the shared audit, idempotency
  // and signing-key schemas it reads).
  static absl::Status Migrate(sql::Database& db);

  absl::StatusOr<AuditEvent> GetEvent(CallContext& call,
                                      absl::string_view tenant,
                                      int64_t leaf_index);
  absl::StatusOr<Page<AuditEvent>> ListEvents(CallContext& call,
                                              const EventFilter& filter,
                                              int page_size,
                                              absl::string_view page_token);
  // tree_size 0: the latest. NOT_FOUND (NO_CHECKPOINT) if none.
  absl::StatusOr<Checkpoint> GetCheckpoint(CallContext& call,
                                           absl::string_view tenant,
                                           int64_t tree_size);
  absl::StatusOr<Page<Checkpoint>> ListCheckpoints(
      CallContext& call, absl::string_view tenant, int64_t min_tree_size,
      int page_size, absl::string_view page_token);
  void CreateCheckpoint(CallContext& call, std::string tenant,
                        Done<Checkpoint> done);
  // tree_size 0: the latest checkpoint's.
  absl::StatusOr<InclusionProofResult> GetInclusionProof(
      CallContext& call, absl::string_view tenant, int64_t leaf_index,
      int64_t tree_size);
  // second_tree_size 0: the latest checkpoint's.
  absl::StatusOr<ConsistencyProofResult> GetConsistencyProof(
      CallContext& call, absl::string_view tenant, int64_t first_tree_size,
      int64_t second_tree_size);
  absl::StatusOr<Page<CheckpointKey>> ListCheckpointKeys(
      CallContext& call, int page_size, absl::string_view page_token);

  // end_leaf_index 0: up to the latest checkpoint (nothing if none).
  absl::StatusOr<ExportPlan> PlanExport(CallContext& call,
                                        absl::string_view tenant,
                                        int64_t start_leaf_index,
                                        int64_t end_leaf_index);
  // Reads the chunk of `plan` that starts at leaf `from`, at most
  // `max_events` events. Returns an empty chunk with next == plan.end at the
  // end. Events missing from storage are skipped (the verifier names them).
  absl::StatusOr<ExportChunk> ReadExportChunk(const ExportPlan& plan,
                                              int64_t from, int max_events);

  // Signs a checkpoint for every tenant whose tree grew since its latest
  // one, timestamped with the injected clock; returns the new checkpoints.
  // Blocks until they are durable: call it from a background thread or a
  // test, never from a gRPC callback.
  absl::StatusOr<std::vector<Checkpoint>> CheckpointGrownTenants();

 private:
  // The latest checkpoint if the tree has not grown since, else a new one
  // (FAILED_PRECONDITION / EMPTY_LOG for an empty tree).
  absl::StatusOr<Checkpoint> CheckpointLocked(sql::Txn& txn,
                                              absl::string_view tenant,
                                              absl::Time now);

  AuditDeps deps_;
  SqlAuditStore store_;
};

// The canonical signed payload of a checkpoint (careseal.audit-checkpoint.v1):
// {"format","key_id","root_hash" (hex),"tenant" (tenants/{t}),"time"
// (RFC 3339 UTC, microseconds),"tree_size"}.
absl::StatusOr<std::string> EncodeCheckpointPayload(const Checkpoint& c);

}  // namespace careseal::audit

#endif  // CARESEAL_SERVICES_AUDIT_AUDIT_MANAGER_H_
