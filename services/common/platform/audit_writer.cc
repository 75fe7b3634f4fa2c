#include "services/common/platform/audit_writer.h"

#include "services/common/crypto/sha256.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/status.h"

namespace careseal {

const std::vector<sql::Migration>& AuditMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE audit_heads (tenant TEXT PRIMARY KEY, size BIGINT NOT "
       "NULL);"
       "CREATE TABLE audit_events ("
       "  tenant TEXT NOT NULL, leaf_index BIGINT NOT NULL,"
       "  time_us BIGINT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,"
       "  action TEXT NOT NULL, resource TEXT NOT NULL, patient TEXT NOT NULL,"
       "  outcome TEXT NOT NULL, request_id TEXT NOT NULL,"
       "  correlation_id TEXT NOT NULL, leaf BLOB NOT NULL,"
       "  leaf_hash BLOB NOT NULL, PRIMARY KEY (tenant, leaf_index));"
       "CREATE INDEX audit_events_patient ON audit_events (tenant, patient, "
       "leaf_index);"
       "CREATE INDEX audit_events_actor ON audit_events (tenant, actor, "
       "leaf_index);"
       "CREATE INDEX audit_events_time ON audit_events (tenant, time_us)"},
  };
  return *migrations;
}

std::string AuditTenantOf(const CallContext& call) {
  if (!call.tenant.empty()) return call.tenant;
  if (!call.principal.tenant.empty()) return call.principal.tenant;
  return kNoTenantLog;
}

absl::StatusOr<std::string> AuditLeaf(const CallContext& call,
                                      const absl::Status& outcome) {
  Json leaf = {
      {"format", "careseal.audit-event.v1"},
      {"tenant", AuditTenantOf(call)},
      {"time", Rfc3339(call.now)},
      {"actor", call.principal.actor},
      {"role", std::string(RoleName(call.principal.role))},
      {"peer", call.principal.peer},
      {"action", call.method},
      {"resource", call.resource},
      {"patient", call.patient},
      {"outcome", absl::StatusCodeToString(outcome.code())},
      {"reason", ErrorReason(outcome)},
      {"request_id", call.request_id},
      {"correlation_id", call.correlation_id},
  };
  if (!call.principal.break_glass_grant.empty()) {
    leaf["break_glass_grant"] = call.principal.break_glass_grant;
  }
  return CanonicalJson(leaf);
}

absl::StatusOr<int64_t> AppendAuditEvent(sql::Txn& txn, const CallContext& call,
                                         const absl::Status& outcome) {
  const std::string tenant = AuditTenantOf(call);
  ASSIGN_OR_RETURN(std::string leaf, AuditLeaf(call, outcome));
  ASSIGN_OR_RETURN(
      auto head,
      txn.Query(
          "INSERT INTO audit_heads (tenant, size) VALUES (?, 1) "
          "ON CONFLICT (tenant) DO UPDATE SET size = audit_heads.size + 1 "
          "RETURNING size",
          {sql::Text(tenant)}));
  if (head.size() != 1) {
    return Internal("AUDIT_APPEND_FAILED", "the audit head did not advance");
  }
  const int64_t index = head[0].Int(0) - 1;
  std::string leaf_hash = crypto::Sha256(std::string(1, '\0') + leaf);
  RETURN_IF_ERROR(
      txn.Exec("INSERT INTO audit_events (tenant, leaf_index, time_us, actor, "
               "role, action, resource, patient, outcome, request_id, "
               "correlation_id, leaf, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, "
               "?, ?, ?, ?, ?, ?)",
               {sql::Text(tenant), sql::Int(index),
                sql::Int(ToMicros(call.now)), sql::Text(call.principal.actor),
                sql::Text(std::string(RoleName(call.principal.role))),
                sql::Text(call.method), sql::Text(call.resource),
                sql::Text(call.patient),
                sql::Text(absl::StatusCodeToString(outcome.code())),
                sql::Text(call.request_id), sql::Text(call.correlation_id),
                sql::Bytes(std::move(leaf)), sql::Bytes(std::move(leaf_hash))})
          .status());
  return index;
}

}  // namespace careseal
