#include "services/common/platform/audit_writer.h"

#include <algorithm>
#include <utility>

#include "services/common/crypto/sha256.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/log_index.h"
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
      // No query reads audit_events_time (a time window is a range of the
      // log in leaf order); it only cost a B-tree insert per call.
      {2, "DROP INDEX audit_events_time"},
      // A patient's and an actor's events are looked up through tables
      // built behind the log (IndexAuditLogs) instead of two indexes of
      // audit_events: an index keyed by patient took a random B-tree page,
      // written twice (WAL and checkpoint), on every audited call; built in
      // sorted bulk, many events share each page. Events from
      // audit_index_heads.indexed_size on are found by scanning the log.
      // (WITHOUT ROWID: the key is the row, one B-tree per table.)
      {3,
       "DROP INDEX audit_events_patient;"
       "DROP INDEX audit_events_actor;"
       "CREATE TABLE audit_patient_index (tenant TEXT NOT NULL,"
       "  patient TEXT NOT NULL, leaf_index BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, patient, leaf_index)) WITHOUT ROWID;"
       "CREATE TABLE audit_actor_index (tenant TEXT NOT NULL,"
       "  actor TEXT NOT NULL, leaf_index BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, actor, leaf_index)) WITHOUT ROWID;"
       "CREATE TABLE audit_index_heads (tenant TEXT PRIMARY KEY,"
       "  indexed_size BIGINT NOT NULL);"
       "INSERT INTO audit_patient_index (tenant, patient, leaf_index)"
       "  SELECT tenant, patient, leaf_index FROM audit_events"
       "  WHERE patient <> '' ORDER BY tenant, patient, leaf_index;"
       "INSERT INTO audit_actor_index (tenant, actor, leaf_index)"
       "  SELECT tenant, actor, leaf_index FROM audit_events"
       "  ORDER BY tenant, actor, leaf_index;"
       "INSERT INTO audit_index_heads (tenant, indexed_size)"
       "  SELECT tenant, size FROM audit_heads"},
  };
  return *migrations;
}

std::string AuditTenantOf(const CallContext& call) {
  if (!call.tenant.empty()) return call.tenant;
  if (!call.principal.tenant.empty()) return call.principal.tenant;
  return kNoTenantLog;
}

std::string AuditRoleOf(const CallContext& call) {
  if (call.unauthenticated) return "unauthenticated";
  return std::string(RoleName(call.principal.role));
}

absl::StatusOr<std::string> AuditLeaf(const CallContext& call,
                                      const absl::Status& outcome) {
  // Members in canonical (sorted) key order; the bytes equal CanonicalJson()
  // of the same object (audit_leaf_test checks that).
  CanonicalStringObject leaf;
  leaf.Add("action", call.method);
  leaf.Add("actor", call.principal.actor);
  if (!call.principal.break_glass_grant.empty()) {
    leaf.Add("break_glass_grant", call.principal.break_glass_grant);
  }
  leaf.Add("correlation_id", call.correlation_id);
  leaf.Add("format", "careseal.audit-event.v1");
  leaf.Add("outcome", absl::StatusCodeToString(outcome.code()));
  leaf.Add("patient", call.patient);
  leaf.Add("peer", call.principal.peer);
  leaf.Add("reason", ErrorReason(outcome));
  leaf.Add("request_id", call.request_id);
  leaf.Add("resource", call.resource);
  leaf.Add("role", AuditRoleOf(call));
  leaf.Add("tenant", AuditTenantOf(call));
  leaf.Add("time", Rfc3339(call.now));
  return std::move(leaf).Finish();
}

namespace {

constexpr char kInsertEvent[] =
    "INSERT INTO audit_events (tenant, leaf_index, time_us, actor, role, "
    "action, resource, patient, outcome, request_id, correlation_id, leaf, "
    "leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

// Advances the tenant's head by `count`; returns the first new leaf index.
absl::StatusOr<int64_t> AdvanceHead(sql::Txn& txn, const std::string& tenant,
                                    int64_t count) {
  ASSIGN_OR_RETURN(
      auto head,
      txn.Query("INSERT INTO audit_heads (tenant, size) VALUES (?, ?) "
                "ON CONFLICT (tenant) DO UPDATE SET size = audit_heads.size + "
                "excluded.size RETURNING size",
                {sql::Text(tenant), sql::Int(count)}));
  if (head.size() != 1) {
    return Internal("AUDIT_APPEND_FAILED", "the audit head did not advance");
  }
  return head[0].Int(0) - count;
}

absl::Status InsertEvent(sql::Txn& txn, const PreparedAuditEvent& e,
                         int64_t index) {
  // Statement parameters own their values: the event's strings are copied
  // once here, nothing else is.
  const sql::Value params[] = {
      sql::Text(e.tenant),         sql::Int(index),
      sql::Int(e.time_us),         sql::Text(e.actor),
      sql::Text(e.role),           sql::Text(e.action),
      sql::Text(e.resource),       sql::Text(e.patient),
      sql::Text(e.outcome),        sql::Text(e.request_id),
      sql::Text(e.correlation_id), sql::Bytes(e.leaf),
      sql::Bytes(e.leaf_hash)};
  return txn.Exec(kInsertEvent, params).status();
}

}  // namespace

absl::StatusOr<PreparedAuditEvent> PrepareAuditEvent(
    const CallContext& call, const absl::Status& outcome) {
  PreparedAuditEvent e;
  ASSIGN_OR_RETURN(e.leaf, AuditLeaf(call, outcome));
  std::string hashed;
  hashed.reserve(e.leaf.size() + 1);
  hashed.push_back('\0');
  hashed.append(e.leaf);
  e.leaf_hash = crypto::Sha256(hashed);
  e.tenant = AuditTenantOf(call);
  e.time_us = ToMicros(call.now);
  e.actor = call.principal.actor;
  e.role = AuditRoleOf(call);
  e.action = call.method;
  e.resource = call.resource;
  e.patient = call.patient;
  e.outcome = absl::StatusCodeToString(outcome.code());
  e.request_id = call.request_id;
  e.correlation_id = call.correlation_id;
  return e;
}

absl::Status AppendPreparedAuditEvents(
    sql::Txn& txn, absl::Span<const PreparedAuditEvent* const> events) {
  // Tenants in order of first appearance, each head advanced once.
  std::vector<std::pair<const std::string*, int64_t>> next;  // tenant, index
  for (const PreparedAuditEvent* e : events) {
    auto it = std::find_if(next.begin(), next.end(), [&](const auto& n) {
      return *n.first == e->tenant;
    });
    if (it == next.end()) {
      next.emplace_back(&e->tenant, 1);
    } else {
      ++it->second;
    }
  }
  for (auto& [tenant, count_then_index] : next) {
    ASSIGN_OR_RETURN(count_then_index,
                     AdvanceHead(txn, *tenant, count_then_index));
  }
  for (const PreparedAuditEvent* e : events) {
    auto it = std::find_if(next.begin(), next.end(), [&](const auto& n) {
      return *n.first == e->tenant;
    });
    RETURN_IF_ERROR(InsertEvent(txn, *e, it->second++));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> AppendAuditEvent(sql::Txn& txn, const CallContext& call,
                                         const absl::Status& outcome) {
  ASSIGN_OR_RETURN(PreparedAuditEvent e, PrepareAuditEvent(call, outcome));
  ASSIGN_OR_RETURN(const int64_t index, AdvanceHead(txn, e.tenant, 1));
  RETURN_IF_ERROR(InsertEvent(txn, e, index));
  return index;
}

// Where the patient and actor lookups have got to in each tenant's log.
constexpr LogHeads kAuditLog = {"audit_heads", "size", "audit_index_heads",
                                "indexed_size"};

absl::StatusOr<int64_t> AuditIndexedSize(sql::Txn& txn,
                                         absl::string_view tenant) {
  return IndexedPosition(txn, kAuditLog, tenant);
}

absl::StatusOr<int64_t> IndexAuditLogs(sql::Txn& txn, int64_t max_events) {
  // Leaf indexes [from, to).
  return IndexLogsBehind(
      txn, kAuditLog, max_events,
      [&txn](const std::string& tenant, int64_t from,
             int64_t to) -> absl::Status {
        const sql::Value range[] = {sql::Text(tenant), sql::Int(from),
                                    sql::Int(to)};
        // Sorted by key, so that the inserts walk each table's pages in
        // order.
        RETURN_IF_ERROR(
            txn.Exec("INSERT INTO audit_patient_index (tenant, patient, "
                     "leaf_index) SELECT tenant, patient, leaf_index FROM "
                     "audit_events WHERE tenant = ? AND leaf_index >= ? AND "
                     "leaf_index < ? AND patient <> '' ORDER BY patient, "
                     "leaf_index ON CONFLICT DO NOTHING",
                     range)
                .status());
        return txn
            .Exec(
                "INSERT INTO audit_actor_index (tenant, actor, leaf_index) "
                "SELECT tenant, actor, leaf_index FROM audit_events WHERE "
                "tenant = ? AND leaf_index >= ? AND leaf_index < ? ORDER BY "
                "actor, leaf_index ON CONFLICT DO NOTHING",
                range)
            .status();
      });
}

}  // namespace careseal
