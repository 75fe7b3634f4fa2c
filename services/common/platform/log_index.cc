#include "services/common/platform/log_index.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "services/common/macros.h"

namespace careseal {

absl::StatusOr<int64_t> IndexLogsBehind(
    sql::Txn& txn, const LogHeads& log, int64_t max_events,
    absl::FunctionRef<absl::Status(const std::string& tenant, int64_t from,
                                   int64_t to)>
        add) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat(
          "SELECT h.tenant, h.", log.newest, ", COALESCE(i.", log.indexed,
          ", 0) FROM ", log.heads, " h LEFT JOIN ", log.index_heads,
          " i ON i.tenant = h.tenant WHERE h.", log.newest, " > COALESCE(i.",
          log.indexed, ", 0) ORDER BY h.tenant")));
  const std::string advance = absl::StrCat(
      "INSERT INTO ", log.index_heads, " (tenant, ", log.indexed,
      ") VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET ", log.indexed,
      " = excluded.", log.indexed, " WHERE ", log.index_heads, ".", log.indexed,
      " < excluded.", log.indexed);
  int64_t handed_out = 0;
  for (const sql::Row& row : rows) {
    if (handed_out >= max_events) break;
    const std::string& tenant = row.Str(0);
    const int64_t from = row.Int(2);
    const int64_t to = std::min(row.Int(1), from + (max_events - handed_out));
    RETURN_IF_ERROR(add(tenant, from, to));
    RETURN_IF_ERROR(
        txn.Exec(advance, {sql::Text(tenant), sql::Int(to)}).status());
    handed_out += to - from;
  }
  return handed_out;
}

absl::StatusOr<int64_t> IndexedPosition(sql::Txn& txn, const LogHeads& log,
                                        absl::string_view tenant) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query(absl::StrCat("SELECT ", log.indexed, " FROM ",
                                          log.index_heads, " WHERE tenant = ?"),
                             {sql::Text(std::string(tenant))}));
  return rows.empty() ? 0 : rows[0].Int(0);
}

void RunIndexPass(
    sql::Database& db, int64_t chunk, int chunks,
    absl::FunctionRef<absl::StatusOr<int64_t>(sql::Txn&, int64_t)> index,
    const char* what) {
  for (int i = 0; i < chunks; ++i) {
    int64_t handed_out = 0;
    absl::Status s = db.WriteAndWait([&](sql::Txn& txn) -> absl::Status {
      ASSIGN_OR_RETURN(handed_out, index(txn, chunk));
      return absl::OkStatus();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "%s failed: %s\n", what, s.ToString().c_str());
      return;
    }
    if (handed_out < chunk) return;
  }
}

}  // namespace careseal
