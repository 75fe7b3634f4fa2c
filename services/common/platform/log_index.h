// Lookups built behind an append-only, per-tenant log (the audit logs'
// patient and actor lookups, the event log's patient lookup): instead of an
// index row per append, which takes a random B-tree page in every commit,
// each tenant's log has a newest position and an indexed one, and a pass
// adds the positions in between to the lookups in sorted bulk, a chunk per
// transaction. Readers take the lookup below the indexed position and scan
// the log's tail above it.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_LOG_INDEX_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_LOG_INDEX_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/common/sql/database.h"

namespace careseal {

// Where a log's positions are kept: `heads` has a row (tenant, `newest`)
// per tenant's log, `index_heads` a row (tenant, `indexed`) per tenant whose
// log has been indexed at least once.
struct LogHeads {
  const char* heads;
  const char* newest;
  const char* index_heads;
  const char* indexed;
};

// For each tenant whose log grew past its lookups, in tenant order, calls
// add(tenant, from, to) with `from` its indexed position and `to` its
// newest, capped so that no more than `max_events` positions are handed out
// in all (the caller's numbering decides which end is inclusive), then moves
// the tenant's indexed position to `to` (only forward: an indexer that read
// an older position cannot move it back). Returns how many were handed out;
// fewer than `max_events` means every log is caught up as of this
// transaction.
absl::StatusOr<int64_t> IndexLogsBehind(
    sql::Txn& txn, const LogHeads& log, int64_t max_events,
    absl::FunctionRef<absl::Status(const std::string& tenant, int64_t from,
                                   int64_t to)>
        add);

// The tenant's indexed position in `log` (0 before its first pass): the
// lookups hold the log's entries up to it.
absl::StatusOr<int64_t> IndexedPosition(sql::Txn& txn, const LogHeads& log,
                                        absl::string_view tenant);

// One periodic pass: up to `chunks` write transactions of
// index(txn, chunk), until one hands out fewer than `chunk` (caught up), so
// that a long backlog is caught up over several passes without holding the
// store's writer for long. A failure is reported on stderr as "`what`
// failed: ..." and ends the pass.
void RunIndexPass(
    sql::Database& db, int64_t chunk, int chunks,
    absl::FunctionRef<absl::StatusOr<int64_t>(sql::Txn&, int64_t)> index,
    const char* what);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_LOG_INDEX_H_
