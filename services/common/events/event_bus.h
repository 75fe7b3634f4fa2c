// EventBus: the in-process doorbell of durable events. AppendEvent
// (event_log.h) rings it for (tenant, cursor) once the transaction that wrote
// the event is durable (sql::Txn::AfterCommit, on the store's thread right
// before the write's `done`), never before. Subscribers, e.g. WatchEvents and
// WatchInbox streams, then read what is new from the events table: the bell
// carries no data, so a missed or spurious ring costs at most one query, and
// the table stays the only source of truth. This is what lets streams push
// without polling the database in a loop.
//
// Scope: one process. Replicas sharing one PostgreSQL need the commit itself
// to ring every process's bus (LISTEN/NOTIFY, which PostgreSQL delivers only
// on commit, bridged into Publish).
//
// Thread-safe. Callbacks run on the publisher's thread (the store's writer):
// they must be quick, must not block, and must not call Subscribe or
// Unsubscribe.
#ifndef CARESEAL_SERVICES_COMMON_EVENTS_EVENT_BUS_H_
#define CARESEAL_SERVICES_COMMON_EVENTS_EVENT_BUS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace careseal::events {

class EventBus {
 public:
  // Called with the cursor of a newly durable event of the tenant.
  using Callback = absl::AnyInvocable<void(int64_t cursor)>;

  EventBus() = default;
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // The process's bus (never destroyed). Stores ring it; services and tests
  // subscribe to it. A test that wants isolation makes its own EventBus.
  static EventBus& Default();

  // Registers `fn` for events of `tenant`; returns a non-zero id.
  uint64_t Subscribe(absl::string_view tenant, Callback fn);
  // After it returns, the subscription's callback is not running and never
  // runs again. Unknown ids are ignored.
  void Unsubscribe(uint64_t id);

  // Rings the subscribers of `tenant`.
  void Publish(absl::string_view tenant, int64_t cursor);
  // Rings every subscriber with the largest cursor: something may be new
  // (after rings may have been missed), so each reads what is.
  void RingAll();

  size_t subscriber_count() const;

 private:
  struct Entry {
    std::string tenant;
    absl::Mutex mu;
    bool active ABSL_GUARDED_BY(mu) = true;
    Callback fn ABSL_GUARDED_BY(mu);
  };

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace careseal::events

#endif  // CARESEAL_SERVICES_COMMON_EVENTS_EVENT_BUS_H_
