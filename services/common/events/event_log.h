// Durable events for the EHR (EventService) and for live inboxes: one row per
// change, written by the service that makes the change, inside the very
// transaction of that change, carrying resource names only (never health
// data).
//
// Cursors. Each tenant has its own sequence: AppendEvent advances the
// tenant's row in `event_heads` (INSERT .. ON CONFLICT DO UPDATE ..
// RETURNING) and stores the event under the new value. The contract asks
// that once cursor c is visible no smaller cursor appears later, so cursors
// must follow commit order:
//  * SQLite: one writer thread commits batches serially, so any value
//    assigned inside the transaction (this one, or an INTEGER PRIMARY KEY)
//    is in commit order.
//  * PostgreSQL: a SEQUENCE/IDENTITY would NOT do (values are handed out at
//    insert time; a transaction holding 10 can commit after one holding 11,
//    and a reader could see 11, then 10). The head row does: its row lock is
//    held from the upsert until commit, so the tenant's event writers
//    serialize and commit in cursor order. Cost: event-writing transactions
//    of one tenant queue on that row from their AppendEvent to their commit;
//    append events last in a transaction. (Alternative if that ever hurts:
//    readers stop below the oldest in-flight transaction's cursor, tracked
//    with pg_snapshot_xmin.)
// The cursor survives restarts (it is a row), gaps never occur within a
// tenant's log, but a filtered view (one patient, some types) has gaps.
//
// Notification. AppendEvent registers an after-commit hook that rings
// EventBus::Default() (event_bus.h) with (tenant, cursor) once the write is
// durable; an undone job rings nothing.
//
// Retention. PurgeEventsBefore deletes old events and remembers the highest
// cursor it deleted, so that resuming from an older cursor is
// CURSOR_EXPIRED rather than a silent gap. (The scheduler that calls it
// daily is a later issue; until then nothing expires.)
#ifndef CARESEAL_SERVICES_COMMON_EVENTS_EVENT_LOG_H_
#define CARESEAL_SERVICES_COMMON_EVENTS_EVENT_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/common/events/event_bus.h"
#include "services/common/platform/call.h"
#include "services/common/sql/database.h"

namespace careseal::events {

// The values of careseal.v1.EventType (common.proto), same numbers.
enum class EventType : int {
  kUnspecified = 0,
  kConsentRequested = 1,
  kConsentSigned = 2,
  kConsentDeclined = 3,
  kConsentWithdrawn = 4,
  kConsentExpired = 5,
  kConsentSuperseded = 6,
  kInstructionsDelivered = 7,
  kInstructionsAcknowledged = 8,
  kReadinessChanged = 9,
  kReadinessOverridden = 10,
  kSessionMoved = 11,
  kSessionCancelled = 12,
  kSessionCompleted = 13,
  kFollowUpSent = 14,
  kFollowUpSubmitted = 15,
  kEscalationRaised = 16,
  kEscalationReescalated = 17,
  kEscalationAcknowledged = 18,
  kMessageReceived = 19,
  kMessageRead = 20,
  kMessageRetracted = 21,
  kBreakGlassStarted = 22,
  kBreakGlassEnded = 23,
  kSessionScheduled = 24,
};

// True for a defined value other than kUnspecified.
bool IsValidEventType(int value);

struct EventRecord {
  std::string tenant;  // tenant id
  EventType type = EventType::kUnspecified;
  std::string resource;  // resource name of what changed
  std::string patient;   // tenants/{t}/patients/{p}, or "" if none
  absl::Time time;       // commit time (the call's time)
  // Who caused it.
  std::string actor;
  Role actor_role = Role::kSystem;
  std::string actor_peer;
  std::string request_id;
  std::string correlation_id;
  // Assigned by AppendEvent; set on records read back.
  int64_t cursor = 0;

  std::string Name() const;  // tenants/{t}/events/{cursor}
};

// An event of `call`: tenant, patient, time, actor and ids from the call.
EventRecord EventFor(const CallContext& call, EventType type,
                     std::string resource);

const std::vector<sql::Migration>& EventMigrations();

// Appends `event` in `txn` (the transaction of the change it reports) and
// returns its cursor. Once the write is durable, `bus` rings, and the other
// processes sharing the store hear of it (kEventChannel). REQUIRES: inside
// Database::Write; event.tenant and event.type set.
absl::StatusOr<int64_t> AppendEvent(sql::Txn& txn, const EventRecord& event,
                                    EventBus* bus = &EventBus::Default());

// The channel on which AppendEvent announces "<tenant> <cursor>" to the
// other processes (replicas) sharing the store (sql::Txn::NotifyOthers).
inline constexpr char kEventChannel[] = "careseal_events";

// Rings `bus` for the events that other processes sharing `db` append, and
// rings all of its subscribers after announcements may have been missed.
// nullptr when no other process shares the store (SQLite). The bus hears
// them for as long as the listener lives.
absl::StatusOr<std::unique_ptr<sql::Database::Listener>> RingForOtherProcesses(
    sql::Database& db, EventBus& bus = EventBus::Default());

// The tenant's newest cursor (0 if it has no events).
absl::StatusOr<int64_t> HeadCursor(sql::Txn& txn, absl::string_view tenant);

// OK if a reader may resume after `after`: INVALID_ARGUMENT
// (CURSOR_IN_FUTURE) beyond the head, FAILED_PRECONDITION (CURSOR_EXPIRED)
// if events after it were purged. `after` == 0 means "from the oldest
// retained" when `zero_is_oldest`. `field` names the request field.
absl::Status CheckResumeCursor(sql::Txn& txn, absl::string_view tenant,
                               int64_t after, bool zero_is_oldest,
                               absl::string_view field);

struct EventQuery {
  std::string tenant;
  int64_t after = 0;             // exclusive
  std::vector<EventType> types;  // empty: all
  std::string patient;           // tenants/{t}/patients/{p}; empty: all
  int limit = 100;
};

struct EventBatch {
  std::vector<EventRecord> events;  // ascending cursor
  // Every cursor <= scanned_through has been considered (filtered-out
  // events included); resume after it.
  int64_t scanned_through = 0;
  // True if more events may match beyond scanned_through.
  bool more = false;
};

// Events after `query.after` in cursor order, in one snapshot.
absl::StatusOr<EventBatch> ReadEvents(sql::Txn& txn, const EventQuery& query);

// Adds up to `max_events` of the events appended since the last call, over
// all tenants, to the patient lookup that ReadEvents reads below each
// tenant's indexed cursor; returns how many were considered (0: none
// behind). Events above that cursor are found by scanning the log's tail,
// so a patient's reads are complete whether or not this has run.
absl::StatusOr<int64_t> IndexEventLogs(sql::Txn& txn, int64_t max_events);

// Deletes the tenant's events older than `before`, oldest first, up to the
// first event that is not; returns how many. Times follow cursors but not
// strictly (calls of one group commit append in their own order), so an old
// event just behind a younger one stays until the next purge.
absl::StatusOr<int64_t> PurgeEventsBefore(sql::Txn& txn,
                                          absl::string_view tenant,
                                          absl::Time before);

}  // namespace careseal::events

#endif  // CARESEAL_SERVICES_COMMON_EVENTS_EVENT_LOG_H_
