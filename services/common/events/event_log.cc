#include "services/common/events/event_log.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/log_index.h"
#include "services/common/status.h"

namespace careseal::events {
namespace {

using sql::Int;
using sql::Text;

Role RoleFromName(absl::string_view name) {
  for (Role r : kAllRoles) {
    if (RoleName(r) == name) return r;
  }
  return Role::kSystem;
}

constexpr char kColumns[] =
    "e.seq, e.type, e.resource, e.patient, e.time_us, e.actor, e.actor_role, "
    "e.actor_peer, e.request_id, e.correlation_id";

// Where the patient lookup (event_patient_index) has got to in each log.
constexpr LogHeads kEventLog = {"event_heads", "last_seq", "event_index_heads",
                                "indexed_through"};

EventRecord FromRow(absl::string_view tenant, const sql::Row& r) {
  EventRecord e;
  e.tenant = std::string(tenant);
  e.cursor = r.Int(0);
  e.type = static_cast<EventType>(r.Int(1));
  e.resource = r.Str(2);
  e.patient = r.Str(3);
  e.time = FromMicros(r.Int(4));
  e.actor = r.Str(5);
  e.actor_role = RoleFromName(r.Str(6));
  e.actor_peer = r.Str(7);
  e.request_id = r.Str(8);
  e.correlation_id = r.Str(9);
  return e;
}

}  // namespace

bool IsValidEventType(int value) {
  return value >= static_cast<int>(EventType::kConsentRequested) &&
         value <= static_cast<int>(EventType::kSessionScheduled);
}

std::string EventRecord::Name() const {
  return absl::StrCat("tenants/", tenant, "/events/", cursor);
}

EventRecord EventFor(const CallContext& call, EventType type,
                     std::string resource) {
  EventRecord e;
  e.tenant = call.tenant.empty() ? call.principal.tenant : call.tenant;
  e.type = type;
  e.resource = std::move(resource);
  e.patient = call.patient;
  e.time = call.now;
  e.actor = call.principal.actor;
  e.actor_role = call.principal.role;
  e.actor_peer = call.principal.peer;
  e.request_id = call.request_id;
  e.correlation_id = call.correlation_id;
  return e;
}

const std::vector<sql::Migration>& EventMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE event_heads (tenant TEXT PRIMARY KEY,"
       "  last_seq BIGINT NOT NULL);"
       "CREATE TABLE events ("
       "  tenant TEXT NOT NULL, seq BIGINT NOT NULL, type INTEGER NOT NULL,"
       "  resource TEXT NOT NULL, patient TEXT NOT NULL,"
       "  time_us BIGINT NOT NULL, actor TEXT NOT NULL,"
       "  actor_role TEXT NOT NULL, actor_peer TEXT NOT NULL,"
       "  request_id TEXT NOT NULL, correlation_id TEXT NOT NULL,"
       "  PRIMARY KEY (tenant, seq));"
       "CREATE INDEX events_patient ON events (tenant, patient, seq);"
       "CREATE INDEX events_time ON events (tenant, time_us);"
       "CREATE TABLE event_retention (tenant TEXT PRIMARY KEY,"
       "  purged_through BIGINT NOT NULL)"},
      // Every append wrote a row of events_time, which only the retention
      // purge read; the purge now walks the tenant's events by cursor.
      {2, "DROP INDEX events_time"},
      // A patient's events are looked up through a table built behind the
      // log (IndexEventLogs) instead of an index of events: keyed by
      // patient, that index took a random B-tree page, written twice (WAL
      // and checkpoint), on every append; built in sorted bulk, many events
      // share each page. Events after event_index_heads.indexed_through are
      // found by scanning the log's tail. (WITHOUT ROWID: the key is the
      // row, one B-tree.)
      {3,
       "DROP INDEX events_patient;"
       "CREATE TABLE event_patient_index (tenant TEXT NOT NULL,"
       "  patient TEXT NOT NULL, seq BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, patient, seq)) WITHOUT ROWID;"
       "CREATE TABLE event_index_heads (tenant TEXT PRIMARY KEY,"
       "  indexed_through BIGINT NOT NULL);"
       "INSERT INTO event_patient_index (tenant, patient, seq)"
       "  SELECT tenant, patient, seq FROM events WHERE patient <> ''"
       "  ORDER BY tenant, patient, seq;"
       "INSERT INTO event_index_heads (tenant, indexed_through)"
       "  SELECT tenant, last_seq FROM event_heads"},
  };
  return *migrations;
}

absl::StatusOr<int64_t> AppendEvent(sql::Txn& txn, const EventRecord& event,
                                    EventBus* bus) {
  if (event.tenant.empty() || !IsValidEventType(static_cast<int>(event.type))) {
    return Internal("EVENT_INVALID", "an event needs a tenant and a type");
  }
  ASSIGN_OR_RETURN(
      auto head,
      txn.Query("INSERT INTO event_heads (tenant, last_seq) VALUES (?, 1) "
                "ON CONFLICT (tenant) DO UPDATE SET last_seq = "
                "event_heads.last_seq + 1 RETURNING last_seq",
                {Text(event.tenant)}));
  if (head.size() != 1) {
    return Internal("EVENT_APPEND_FAILED", "the event head did not advance");
  }
  const int64_t cursor = head[0].Int(0);
  RETURN_IF_ERROR(
      txn.Exec(
             "INSERT INTO events (tenant, seq, type, resource, patient, "
             "time_us, actor, actor_role, actor_peer, request_id, "
             "correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             {Text(event.tenant), Int(cursor),
              Int(static_cast<int>(event.type)), Text(event.resource),
              Text(event.patient), Int(ToMicros(event.time)), Text(event.actor),
              Text(std::string(RoleName(event.actor_role))),
              Text(event.actor_peer), Text(event.request_id),
              Text(event.correlation_id)})
          .status());
  if (bus != nullptr) {
    RETURN_IF_ERROR(txn.NotifyOthers(kEventChannel,
                                     absl::StrCat(event.tenant, " ", cursor)));
    txn.AfterCommit(
        [bus, tenant = event.tenant, cursor] { bus->Publish(tenant, cursor); });
  }
  return cursor;
}

absl::StatusOr<std::unique_ptr<sql::Database::Listener>> RingForOtherProcesses(
    sql::Database& db, EventBus& bus) {
  return db.ListenToOthers(
      kEventChannel,
      [&bus](absl::string_view payload) {
        const size_t space = payload.rfind(' ');
        int64_t cursor = 0;
        if (space == absl::string_view::npos ||
            !absl::SimpleAtoi(payload.substr(space + 1), &cursor)) {
          return;  // not an announcement of ours
        }
        bus.Publish(payload.substr(0, space), cursor);
      },
      [&bus] { bus.RingAll(); });
}

absl::StatusOr<int64_t> HeadCursor(sql::Txn& txn, absl::string_view tenant) {
  ASSIGN_OR_RETURN(
      auto rows, txn.Query("SELECT last_seq FROM event_heads WHERE tenant = ?",
                           {Text(std::string(tenant))}));
  return rows.empty() ? 0 : rows[0].Int(0);
}

absl::Status CheckResumeCursor(sql::Txn& txn, absl::string_view tenant,
                               int64_t after, bool zero_is_oldest,
                               absl::string_view field) {
  if (after < 0) {
    return InvalidField(field, "INVALID_CURSOR",
                        absl::StrCat(field, " must not be negative"));
  }
  ASSIGN_OR_RETURN(int64_t head, HeadCursor(txn, tenant));
  if (after > head) {
    return InvalidField(field, "CURSOR_IN_FUTURE",
                        absl::StrCat(field,
                                     " is beyond the newest event; resume "
                                     "with a cursor this server returned"));
  }
  if (after == 0 && zero_is_oldest) return absl::OkStatus();
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT purged_through FROM event_retention WHERE tenant = ?",
                {Text(std::string(tenant))}));
  if (!rows.empty() && after < rows[0].Int(0)) {
    return FailedPrecondition(
        "CURSOR_EXPIRED",
        "events after this cursor are past retention; resynchronize with the "
        "List methods and watch from a fresh cursor");
  }
  return absl::OkStatus();
}

absl::StatusOr<EventBatch> ReadEvents(sql::Txn& txn, const EventQuery& query) {
  EventBatch batch;
  ASSIGN_OR_RETURN(int64_t head, HeadCursor(txn, query.tenant));
  batch.scanned_through = query.after;
  if (query.after >= head) return batch;
  const int limit = query.limit < 1 ? 1 : query.limit;
  // Events in (above, below], oldest first, up to what the limit leaves:
  // through the patient lookup (below the indexed cursor) or the log.
  auto scan = [&](bool lookup, int64_t above, int64_t below) -> absl::Status {
    const int want = limit - static_cast<int>(batch.events.size());
    if (want <= 0 || above >= below) return absl::OkStatus();
    // CROSS JOIN: SQLite keeps the lookup as the outer loop (a plain JOIN
    // let the planner walk the tenant's events by cursor and probe the
    // lookup for each). Its conditions are in WHERE, as PostgreSQL's CROSS
    // JOIN takes no ON.
    std::string sql =
        lookup ? absl::StrCat("SELECT ", kColumns,
                              " FROM event_patient_index x CROSS JOIN "
                              "events e WHERE e.tenant = x.tenant AND e.seq = "
                              "x.seq AND x.tenant = ? AND x.patient = ? "
                              "AND x.seq > ? AND x.seq <= ?")
               : absl::StrCat("SELECT ", kColumns,
                              " FROM events e WHERE e.tenant = ? AND e.seq > "
                              "? AND e.seq <= ?");
    std::vector<sql::Value> params = {Text(query.tenant)};
    if (lookup) params.push_back(Text(query.patient));
    params.push_back(Int(above));
    params.push_back(Int(below));
    if (!lookup && !query.patient.empty()) {
      absl::StrAppend(&sql, " AND e.patient = ?");
      params.push_back(Text(query.patient));
    }
    if (!query.types.empty()) {
      absl::StrAppend(&sql, " AND e.type IN (");
      for (size_t i = 0; i < query.types.size(); ++i) {
        absl::StrAppend(&sql, i == 0 ? "?" : ", ?");
        params.push_back(Int(static_cast<int>(query.types[i])));
      }
      absl::StrAppend(&sql, ")");
    }
    absl::StrAppend(
        &sql, lookup ? " ORDER BY x.seq LIMIT ?" : " ORDER BY e.seq LIMIT ?");
    params.push_back(Int(want));
    ASSIGN_OR_RETURN(auto rows, txn.Query(sql, absl::MakeConstSpan(params)));
    for (const sql::Row& r : rows) {
      batch.events.push_back(FromRow(query.tenant, r));
    }
    return absl::OkStatus();
  };
  if (query.patient.empty()) {
    RETURN_IF_ERROR(scan(false, query.after, head));
  } else {
    ASSIGN_OR_RETURN(const int64_t indexed,
                     IndexedPosition(txn, kEventLog, query.tenant));
    RETURN_IF_ERROR(scan(true, query.after, std::min(indexed, head)));
    RETURN_IF_ERROR(scan(false, std::max(query.after, indexed), head));
  }
  if (static_cast<int>(batch.events.size()) == limit) {
    batch.scanned_through = batch.events.back().cursor;
    batch.more = batch.scanned_through < head;
  } else {
    batch.scanned_through = head;
  }
  return batch;
}

absl::StatusOr<int64_t> IndexEventLogs(sql::Txn& txn, int64_t max_events) {
  // Cursors (from, to].
  return IndexLogsBehind(
      txn, kEventLog, max_events,
      [&txn](const std::string& tenant, int64_t from, int64_t to) {
        // Sorted by key, so that the inserts walk the table's pages in
        // order.
        return txn
            .Exec(
                "INSERT INTO event_patient_index (tenant, patient, seq) "
                "SELECT tenant, patient, seq FROM events WHERE tenant = ? AND "
                "seq > ? AND seq <= ? AND patient <> '' ORDER BY patient, seq "
                "ON CONFLICT DO NOTHING",
                {Text(tenant), Int(from), Int(to)})
            .status();
      });
}

absl::StatusOr<int64_t> PurgeEventsBefore(sql::Txn& txn,
                                          absl::string_view tenant,
                                          absl::Time before) {
  const std::string t(tenant);
  // Oldest first, through the (tenant, seq) key: the walk stops at the first
  // event that is not older than `before`, after the events a daily purge
  // deletes, so it reads about as many rows as it deletes.
  ASSIGN_OR_RETURN(auto kept,
                   txn.Query("SELECT seq FROM events WHERE tenant = ? AND "
                             "time_us >= ? ORDER BY seq LIMIT 1",
                             {Text(t), Int(ToMicros(before))}));
  int64_t through = 0;
  if (!kept.empty()) {
    through = kept[0].Int(0) - 1;
  } else {
    ASSIGN_OR_RETURN(
        auto newest,
        txn.Query("SELECT MAX(seq) FROM events WHERE tenant = ?", {Text(t)}));
    if (newest.empty() || newest[0].IsNull(0)) return 0;
    through = newest[0].Int(0);
  }
  // The lookup's rows of the events about to go, each through its key.
  RETURN_IF_ERROR(
      txn.Exec("DELETE FROM event_patient_index WHERE (tenant, patient, seq) "
               "IN (SELECT tenant, patient, seq FROM events WHERE tenant = ? "
               "AND seq <= ? AND patient <> '')",
               {Text(t), Int(through)})
          .status());
  ASSIGN_OR_RETURN(const int64_t deleted,
                   txn.Exec("DELETE FROM events WHERE tenant = ? AND seq <= ?",
                            {Text(t), Int(through)}));
  if (deleted == 0) return 0;
  RETURN_IF_ERROR(
      txn.Exec("INSERT INTO event_retention (tenant, purged_through) VALUES "
               "(?, ?) ON CONFLICT (tenant) DO UPDATE SET purged_through = "
               "excluded.purged_through WHERE event_retention.purged_through "
               "< excluded.purged_through",
               {Text(t), Int(through)})
          .status());
  return deleted;
}

}  // namespace careseal::events
