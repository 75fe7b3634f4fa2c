#include "services/audit/sql_audit_store.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/policy.h"
#include "services/common/status.h"

namespace careseal::audit {
namespace {

using sql::Bytes;
using sql::Int;
using sql::Text;

constexpr size_t kHashSize = 32;

constexpr char kEventColumns[] =
    "tenant, leaf_index, time_us, actor, role, action, resource, patient, "
    "outcome, request_id, correlation_id, leaf, leaf_hash";

AuditEvent EventFromRow(const sql::Row& r) {
  AuditEvent e;
  e.tenant = r.Str(0);
  e.leaf_index = r.Int(1);
  e.time = FromMicros(r.Int(2));
  e.actor = r.Str(3);
  e.role = r.Str(4);
  e.action = r.Str(5);
  e.resource = r.Str(6);
  e.patient = r.Str(7);
  e.outcome = r.Str(8);
  e.request_id = r.Str(9);
  e.correlation_id = r.Str(10);
  e.leaf = r.Str(11);
  e.leaf_hash = r.Str(12);
  DecodeLeafInto(e);
  return e;
}

constexpr char kCheckpointColumns[] =
    "tenant, tree_size, root_hash, time_us, key_id, payload, signature, "
    "frontier";

StoredCheckpoint CheckpointFromRow(const sql::Row& r) {
  StoredCheckpoint s;
  Checkpoint& c = s.checkpoint;
  c.tenant = r.Str(0);
  c.tree_size = r.Int(1);
  c.root_hash = r.Str(2);
  c.time = FromMicros(r.Int(3));
  c.key_id = r.Str(4);
  c.payload = r.Str(5);
  c.signature = r.Str(6);
  const std::string& frontier = r.Str(7);
  for (size_t i = 0; i + kHashSize <= frontier.size(); i += kHashSize) {
    s.frontier.push_back(frontier.substr(i, kHashSize));
  }
  return s;
}

std::string GetString(const Json& j, const char* key, std::string fallback) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

}  // namespace

void DecodeLeafInto(AuditEvent& e) {
  Json j = Json::parse(e.leaf, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return;
  e.actor = GetString(j, "actor", e.actor);
  e.role = GetString(j, "role", e.role);
  e.peer = GetString(j, "peer", e.peer);
  e.break_glass_grant = GetString(j, "break_glass_grant", e.break_glass_grant);
  e.action = GetString(j, "action", e.action);
  e.resource = GetString(j, "resource", e.resource);
  e.patient = GetString(j, "patient", e.patient);
  e.outcome = GetString(j, "outcome", e.outcome);
  e.outcome_reason = GetString(j, "reason", e.outcome_reason);
  e.request_id = GetString(j, "request_id", e.request_id);
  e.correlation_id = GetString(j, "correlation_id", e.correlation_id);
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, GetString(j, "time", ""), &t,
                      &error)) {
    e.time = t;
  }
}

const std::vector<sql::Migration>& AuditServiceMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE audit_checkpoints ("
       "  tenant TEXT NOT NULL, tree_size BIGINT NOT NULL,"
       "  root_hash BLOB NOT NULL, time_us BIGINT NOT NULL,"
       "  key_id TEXT NOT NULL, payload BLOB NOT NULL,"
       "  signature BLOB NOT NULL, frontier BLOB NOT NULL,"
       "  PRIMARY KEY (tenant, tree_size))"},
  };
  return *migrations;
}

absl::StatusOr<int64_t> SqlAuditStore::TreeSize(sql::Txn& txn,
                                                absl::string_view tenant) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT size FROM audit_heads WHERE tenant = ?",
                             {Text(std::string(tenant))}));
  return rows.empty() ? 0 : rows[0].Int(0);
}

absl::StatusOr<AuditEvent> SqlAuditStore::GetEvent(sql::Txn& txn,
                                                   absl::string_view tenant,
                                                   int64_t leaf_index) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query(absl::StrCat("SELECT ", kEventColumns,
                                          " FROM audit_events WHERE tenant = "
                                          "? AND leaf_index = ?"),
                             {Text(std::string(tenant)), Int(leaf_index)}));
  if (rows.empty()) return ResourceNotFound();
  return EventFromRow(rows[0]);
}

absl::StatusOr<std::vector<AuditEvent>> SqlAuditStore::ScanEvents(
    sql::Txn& txn, const EventFilter& f, int64_t after, int limit) {
  // A patient's events (accounting of disclosures) and an actor's come
  // through their lookup table below the tenant's indexed size, then from
  // a scan of the log's unindexed tail; anything else is the log in leaf
  // order. The other filters stay generic.
  static const std::string kColumns = absl::StrCat(
      "e.", absl::StrJoin(absl::StrSplit(kEventColumns, ", "), ", e."));
  static const std::string kRest =
      " AND (? = '' OR e.patient = ?) AND (? = '' OR e.actor = ?) AND (? = "
      "'' OR e.action = ?) AND (? = '' OR e.resource = ?) AND (? = 0 OR "
      "e.time_us >= ?) AND (? = 0 OR e.time_us < ?) AND (? = 0 OR e.outcome "
      "<> 'OK') ORDER BY ";
  auto lookup = [](absl::string_view table, absl::string_view key) {
    return absl::StrCat("SELECT ", kColumns, " FROM ", table,
                        " x JOIN audit_events e ON e.tenant = x.tenant AND "
                        "e.leaf_index = x.leaf_index WHERE x.tenant = ? AND x.",
                        key, " = ? AND x.leaf_index > ? AND x.leaf_index < ?",
                        kRest, "x.leaf_index LIMIT ?");
  };
  static const std::string kByPatient =
      lookup("audit_patient_index", "patient");
  static const std::string kByActor = lookup("audit_actor_index", "actor");
  static const std::string kLog = absl::StrCat(
      "SELECT ", kColumns,
      " FROM audit_events e WHERE e.tenant = ? AND ? = '' AND e.leaf_index > "
      "? AND e.leaf_index < ?",
      kRest, "e.leaf_index LIMIT ?");

  std::vector<AuditEvent> out;
  auto scan = [&](const std::string& sql, absl::string_view lead, int64_t above,
                  int64_t below) -> absl::Status {
    const int64_t want = limit - static_cast<int64_t>(out.size());
    if (want <= 0 || above + 1 >= below) return absl::OkStatus();
    ASSIGN_OR_RETURN(
        auto rows,
        txn.Query(
            sql, {Text(f.tenant), Text(std::string(lead)), Int(above),
                  Int(below), Text(f.patient), Text(f.patient), Text(f.actor),
                  Text(f.actor), Text(f.action), Text(f.action),
                  Text(f.resource), Text(f.resource), Int(f.start_time ? 1 : 0),
                  Int(f.start_time ? ToMicros(*f.start_time) : 0),
                  Int(f.end_time ? 1 : 0),
                  Int(f.end_time ? ToMicros(*f.end_time) : 0),
                  Int(f.failures_only ? 1 : 0), Int(want)}));
    for (const auto& r : rows) out.push_back(EventFromRow(r));
    return absl::OkStatus();
  };
  constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
  if (f.patient.empty() && f.actor.empty()) {
    RETURN_IF_ERROR(scan(kLog, "", after, kEnd));
    return out;
  }
  ASSIGN_OR_RETURN(const int64_t indexed, AuditIndexedSize(txn, f.tenant));
  RETURN_IF_ERROR(scan(!f.patient.empty() ? kByPatient : kByActor,
                       !f.patient.empty() ? f.patient : f.actor, after,
                       indexed));
  RETURN_IF_ERROR(scan(kLog, "", std::max(after, indexed - 1), kEnd));
  return out;
}

absl::StatusOr<std::vector<AuditEvent>> SqlAuditStore::EventRange(
    sql::Txn& txn, absl::string_view tenant, int64_t from, int64_t to) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kEventColumns,
                             " FROM audit_events WHERE tenant = ? AND "
                             "leaf_index >= ? AND leaf_index < ? ORDER BY "
                             "leaf_index"),
                {Text(std::string(tenant)), Int(from), Int(to)}));
  std::vector<AuditEvent> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(EventFromRow(r));
  return out;
}

absl::StatusOr<std::vector<std::string>> SqlAuditStore::LeafHashes(
    sql::Txn& txn, absl::string_view tenant, int64_t from, int64_t to) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT leaf_index, leaf_hash FROM "
                             "audit_events WHERE tenant = ? AND "
                             "leaf_index >= ? AND leaf_index < ? "
                             "ORDER BY leaf_index",
                             {Text(std::string(tenant)), Int(from), Int(to)}));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    const int64_t expected = from + static_cast<int64_t>(out.size());
    if (r.Int(0) != expected) {
      return Internal("AUDIT_LOG_GAP",
                      absl::StrCat("the audit log of a tenant has no leaf ",
                                   expected, ": it was altered in storage"));
    }
    out.push_back(r.Str(1));
  }
  if (static_cast<int64_t>(out.size()) != to - from) {
    return Internal("AUDIT_LOG_GAP",
                    absl::StrCat("the audit log of a tenant ends at leaf ",
                                 from + static_cast<int64_t>(out.size()),
                                 " below its recorded size ", to,
                                 ": it was altered in storage"));
  }
  return out;
}

absl::Status SqlAuditStore::InsertCheckpoint(
    sql::Txn& txn, const Checkpoint& c,
    const std::vector<std::string>& frontier) {
  return txn
      .Exec(absl::StrCat("INSERT INTO audit_checkpoints (", kCheckpointColumns,
                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            {Text(c.tenant), Int(c.tree_size), Bytes(c.root_hash),
             Int(ToMicros(c.time)), Text(c.key_id), Bytes(c.payload),
             Bytes(c.signature), Bytes(absl::StrJoin(frontier, ""))})
      .status();
}

absl::StatusOr<std::optional<StoredCheckpoint>> SqlAuditStore::GetCheckpoint(
    sql::Txn& txn, absl::string_view tenant, int64_t tree_size) {
  std::vector<sql::Row> rows;
  if (tree_size == 0) {
    ASSIGN_OR_RETURN(rows, txn.Query(absl::StrCat("SELECT ", kCheckpointColumns,
                                                  " FROM audit_checkpoints "
                                                  "WHERE tenant = ? ORDER BY "
                                                  "tree_size DESC LIMIT 1"),
                                     {Text(std::string(tenant))}));
  } else {
    ASSIGN_OR_RETURN(
        rows, txn.Query(absl::StrCat("SELECT ", kCheckpointColumns,
                                     " FROM audit_checkpoints WHERE tenant = "
                                     "? AND tree_size = ?"),
                        {Text(std::string(tenant)), Int(tree_size)}));
  }
  if (rows.empty()) return std::nullopt;
  return CheckpointFromRow(rows[0]);
}

absl::StatusOr<std::vector<Checkpoint>> SqlAuditStore::ListCheckpoints(
    sql::Txn& txn, absl::string_view tenant, int64_t min_size, int64_t after,
    int limit) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(
          absl::StrCat("SELECT ", kCheckpointColumns,
                       " FROM audit_checkpoints WHERE tenant = ? AND "
                       "tree_size >= ? AND tree_size > ? ORDER BY "
                       "tree_size LIMIT ?"),
          {Text(std::string(tenant)), Int(min_size), Int(after), Int(limit)}));
  std::vector<Checkpoint> out;
  for (const auto& r : rows) out.push_back(CheckpointFromRow(r).checkpoint);
  return out;
}

absl::StatusOr<std::vector<Checkpoint>> SqlAuditStore::CheckpointsBetween(
    sql::Txn& txn, absl::string_view tenant, int64_t from, int64_t to) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kCheckpointColumns,
                             " FROM audit_checkpoints WHERE tenant = ? AND "
                             "tree_size > ? AND tree_size <= ? ORDER BY "
                             "tree_size"),
                {Text(std::string(tenant)), Int(from), Int(to)}));
  std::vector<Checkpoint> out;
  for (const auto& r : rows) out.push_back(CheckpointFromRow(r).checkpoint);
  return out;
}

absl::StatusOr<std::vector<GrownTenant>> SqlAuditStore::GrownTenants(
    sql::Txn& txn) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT h.tenant, h.size FROM audit_heads h WHERE h.size > "
                "COALESCE((SELECT MAX(c.tree_size) FROM audit_checkpoints c "
                "WHERE c.tenant = h.tenant), 0) ORDER BY h.tenant"));
  std::vector<GrownTenant> out;
  for (const auto& r : rows) out.push_back({r.Str(0), r.Int(1)});
  return out;
}

absl::StatusOr<std::vector<CheckpointKey>> SqlAuditStore::SigningKeys(
    sql::Txn& txn, absl::string_view purpose) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT key_id, public_key, state, create_time_us, "
                "retire_time_us FROM signing_keys WHERE purpose = ? ORDER BY "
                "(state = 'CURRENT') DESC, create_time_us DESC, key_id",
                {Text(std::string(purpose))}));
  std::vector<CheckpointKey> out;
  for (const auto& r : rows) {
    CheckpointKey k;
    k.key_id = r.Str(0);
    k.public_key = r.Str(1);
    k.active = r.Str(2) == "CURRENT";
    k.create_time = FromMicros(r.Int(3));
    if (!r.IsNull(4)) k.retire_time = FromMicros(r.Int(4));
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace careseal::audit
