#include "services/common/events/event_log.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "services/common/events/event_bus.h"
#include "services/common/events/work_queue.h"
#include "services/common/sql/sqlite_database.h"
#include "services/common/status.h"
#include "tests/testing/temp_dir.h"

namespace careseal::events {
namespace {

EventQuery Q(std::string tenant, int64_t after = 0,
             std::vector<EventType> types = {}, std::string patient = "",
             int limit = 100) {
  EventQuery q;
  q.tenant = std::move(tenant);
  q.after = after;
  q.types = std::move(types);
  q.patient = std::move(patient);
  q.limit = limit;
  return q;
}

class EventLogTest : public ::testing::Test {
 protected:
  EventLogTest() { Open(); }

  void Open() {
    db_.reset();
    auto db = sql::SqliteDatabase::Open({.path = dir_.File("events.db")});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Migrate("events", EventMigrations()).ok());
  }

  EventRecord Event(const std::string& tenant, EventType type,
                    const std::string& patient = "") {
    EventRecord e;
    e.tenant = tenant;
    e.type = type;
    e.resource = "tenants/" + tenant + "/patients/p/threads/t/messages/m";
    e.patient = patient;
    e.time = absl::FromUnixSeconds(1767225600);
    e.actor = "tenants/" + tenant + "/clinicians/c";
    e.actor_role = Role::kClinician;
    return e;
  }

  int64_t Append(const EventRecord& e) {
    int64_t cursor = -1;
    EXPECT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
                     auto c = AppendEvent(txn, e, &bus_);
                     if (!c.ok()) return c.status();
                     cursor = *c;
                     return absl::OkStatus();
                   })
                    .ok());
    return cursor;
  }

  // Adds up to `max_events` unindexed events to the patient lookup.
  int64_t Index(int64_t max_events) {
    int64_t indexed = -1;
    EXPECT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
                     auto n = IndexEventLogs(txn, max_events);
                     if (!n.ok()) return n.status();
                     indexed = *n;
                     return absl::OkStatus();
                   })
                    .ok());
    return indexed;
  }

  // Rows of the patient lookup, as "tenant patient seq".
  std::vector<std::string> LookupRows() {
    std::vector<std::string> out;
    EXPECT_TRUE(db_->Read([&](sql::Txn& txn) -> absl::Status {
                     auto rows = txn.Query(
                         "SELECT tenant, patient, seq FROM "
                         "event_patient_index ORDER BY tenant, patient, seq");
                     if (!rows.ok()) return rows.status();
                     for (const sql::Row& r : *rows) {
                       out.push_back(r.Str(0) + " " + r.Str(1) + " " +
                                     std::to_string(r.Int(2)));
                     }
                     return absl::OkStatus();
                   })
                    .ok());
    return out;
  }

  // The cursors a patient's reads return, page by page from `after`.
  std::vector<int64_t> PatientCursors(const std::string& patient,
                                      std::vector<EventType> types, int limit,
                                      int64_t after = 0) {
    std::vector<int64_t> out;
    for (int pages = 0; pages < 100; ++pages) {
      EventBatch b = Read(Q("t1", after, types, patient, limit));
      for (const EventRecord& e : b.events) {
        EXPECT_EQ(e.patient, patient);
        out.push_back(e.cursor);
      }
      EXPECT_GT(b.scanned_through, after);
      after = b.scanned_through;
      if (!b.more) break;
    }
    return out;
  }

  EventBatch Read(EventQuery q) {
    EventBatch batch;
    EXPECT_TRUE(db_->Read([&](sql::Txn& txn) -> absl::Status {
                     auto b = ReadEvents(txn, q);
                     if (!b.ok()) return b.status();
                     batch = *std::move(b);
                     return absl::OkStatus();
                   })
                    .ok());
    return batch;
  }

  testing::TempDir dir_;
  EventBus bus_;
  std::unique_ptr<sql::SqliteDatabase> db_;
};

TEST_F(EventLogTest, CursorsArePerTenantDenseAndSurviveReopen) {
  EXPECT_EQ(Append(Event("t1", EventType::kMessageReceived)), 1);
  EXPECT_EQ(Append(Event("t1", EventType::kMessageRead)), 2);
  EXPECT_EQ(Append(Event("t2", EventType::kConsentSigned)), 1);
  Open();
  EXPECT_EQ(Append(Event("t1", EventType::kMessageReceived)), 3);
  EventBatch all = Read(Q("t1"));
  ASSERT_EQ(all.events.size(), 3u);
  EXPECT_EQ(all.events[1].type, EventType::kMessageRead);
  EXPECT_EQ(all.events[1].actor_role, Role::kClinician);
  EXPECT_EQ(all.events[2].Name(), "tenants/t1/events/3");
  EXPECT_EQ(all.scanned_through, 3);
  EXPECT_FALSE(all.more);
}

TEST_F(EventLogTest, BusRingsOnlyOnceTheWriteIsDurable) {
  std::vector<int64_t> rung;
  uint64_t id =
      bus_.Subscribe("t1", [&](int64_t cursor) { rung.push_back(cursor); });
  bool rung_inside_job = true;
  ASSERT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
                   auto c = AppendEvent(
                       txn, Event("t1", EventType::kMessageRead), &bus_);
                   rung_inside_job = !rung.empty();
                   return c.status();
                 })
                  .ok());
  EXPECT_FALSE(rung_inside_job);
  EXPECT_EQ(rung, (std::vector<int64_t>{1}));

  // A job that fails is undone: no event, no ring.
  absl::Status failed = db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
    auto c = AppendEvent(txn, Event("t1", EventType::kMessageRead), &bus_);
    if (!c.ok()) return c.status();
    return Internal("TEST", "undo me");
  });
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(rung.size(), 1u);
  EXPECT_EQ(Read(Q("t1")).events.size(), 1u);
  EXPECT_EQ(Append(Event("t1", EventType::kMessageRead)), 2);  // no gap

  // Other tenants' events do not ring; after Unsubscribe nothing rings.
  Append(Event("t2", EventType::kMessageRead));
  bus_.Unsubscribe(id);
  Append(Event("t1", EventType::kMessageRead));
  EXPECT_EQ(rung, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(bus_.subscriber_count(), 0u);
}

TEST_F(EventLogTest, FilteredReadsAdvancePastWhatTheySkip) {
  Append(Event("t1", EventType::kConsentSigned, "tenants/t1/patients/a"));
  Append(Event("t1", EventType::kMessageReceived, "tenants/t1/patients/b"));
  Append(Event("t1", EventType::kMessageReceived, "tenants/t1/patients/a"));
  Append(Event("t1", EventType::kConsentSigned, "tenants/t1/patients/b"));
  EventBatch a =
      Read(Q("t1", 0, {EventType::kMessageReceived}, "tenants/t1/patients/a"));
  ASSERT_EQ(a.events.size(), 1u);
  EXPECT_EQ(a.events[0].cursor, 3);
  EXPECT_EQ(a.scanned_through, 4);  // resume after 4, not 3
  EventBatch paged = Read(Q("t1", 0, {}, "", 2));
  EXPECT_EQ(paged.events.size(), 2u);
  EXPECT_EQ(paged.scanned_through, 2);
  EXPECT_TRUE(paged.more);
  EXPECT_TRUE(Read(Q("t1", 4)).events.empty());
}

TEST_F(EventLogTest, ResumeCursorsInTheFutureOrPurgedAreRefused) {
  for (int i = 0; i < 3; ++i) Append(Event("t1", EventType::kMessageRead));
  auto check = [&](int64_t after) {
    absl::Status s;
    EXPECT_TRUE(db_->Read([&](sql::Txn& txn) {
                     s = CheckResumeCursor(txn, "t1", after, true, "cursor");
                     return absl::OkStatus();
                   })
                    .ok());
    return s;
  };
  EXPECT_TRUE(check(0).ok());
  EXPECT_TRUE(check(3).ok());
  EXPECT_EQ(ErrorReason(check(4)), "CURSOR_IN_FUTURE");
  EXPECT_EQ(ErrorField(check(4)), "cursor");
  EventRecord late = Event("t1", EventType::kMessageRead);
  late.time += absl::Hours(24 * 31);
  Append(late);
  ASSERT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) {
                   return PurgeEventsBefore(txn, "t1", late.time).status();
                 })
                  .ok());
  EXPECT_EQ(ErrorReason(check(1)), "CURSOR_EXPIRED");
  EXPECT_TRUE(check(3).ok());
  EXPECT_TRUE(check(0).ok());  // 0: from the oldest retained
  EXPECT_EQ(Read(Q("t1")).events.size(), 1u);
}

TEST_F(EventLogTest, PurgeDeletesOldestFirstUpToTheFirstEventToKeep) {
  // Times out of cursor order: the third event is older than the second.
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  for (int hours : {0, 3, 1, 4}) {
    EventRecord e = Event("t1", EventType::kMessageRead);
    e.time = t0 + absl::Hours(hours);
    Append(e);
  }
  Append(Event("t2", EventType::kMessageRead));  // another tenant's: kept
  auto purge = [&](absl::Time before) {
    int64_t deleted = -1;
    EXPECT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
                     auto n = PurgeEventsBefore(txn, "t1", before);
                     if (!n.ok()) return n.status();
                     deleted = *n;
                     return absl::OkStatus();
                   })
                    .ok());
    return deleted;
  };
  EXPECT_EQ(purge(t0), 0);  // nothing older
  EXPECT_EQ(Read(Q("t1")).events.size(), 4u);
  // The walk stops at the second event (3 h): the third (1 h) waits.
  EXPECT_EQ(purge(t0 + absl::Hours(2)), 1);
  EventBatch left = Read(Q("t1"));
  ASSERT_EQ(left.events.size(), 3u);
  EXPECT_EQ(left.events[0].cursor, 2);
  EXPECT_EQ(purge(t0 + absl::Hours(2)), 0);
  EXPECT_EQ(purge(t0 + absl::Hours(5)), 3);  // all older: through the newest
  EXPECT_TRUE(Read(Q("t1")).events.empty());
  EXPECT_EQ(Read(Q("t2")).events.size(), 1u);
  absl::Status expired;
  EXPECT_TRUE(db_->Read([&](sql::Txn& txn) {
                   expired = CheckResumeCursor(txn, "t1", 3, true, "cursor");
                   return absl::OkStatus();
                 })
                  .ok());
  EXPECT_EQ(ErrorReason(expired), "CURSOR_EXPIRED");
}

// A patient's events come through the lookup below the tenant's indexed
// cursor and from the log's tail above it: the same events, pages and
// resume points however far the indexer has got.
TEST_F(EventLogTest, PatientReadsAreTheSameIndexedOrNot) {
  const std::string a = "tenants/t1/patients/a";
  const std::string b = "tenants/t1/patients/b";
  std::vector<int64_t> a_all, a_received;
  for (int i = 0; i < 40; ++i) {
    const std::string& patient = i % 3 == 0 ? b : a;
    const EventType type =
        i % 2 == 0 ? EventType::kMessageReceived : EventType::kMessageRead;
    const int64_t cursor = Append(Event("t1", type, i % 7 == 6 ? "" : patient));
    if (i % 7 != 6 && patient == a) {
      a_all.push_back(cursor);
      if (type == EventType::kMessageReceived) a_received.push_back(cursor);
    }
  }
  Append(Event("t2", EventType::kMessageRead, "tenants/t2/patients/a"));
  auto expect_same = [&](const char* when) {
    SCOPED_TRACE(when);
    for (int limit : {1, 3, 100}) {
      EXPECT_EQ(PatientCursors(a, {}, limit), a_all);
      EXPECT_EQ(PatientCursors(a, {EventType::kMessageReceived}, limit),
                a_received);
    }
    // Resuming from the middle of the log.
    std::vector<int64_t> after_20;
    for (int64_t c : a_all) {
      if (c > 20) after_20.push_back(c);
    }
    EXPECT_EQ(PatientCursors(a, {}, 2, 20), after_20);
    // The last page reports the whole log scanned.
    EventBatch last = Read(Q("t1", 0, {}, a, 100));
    EXPECT_EQ(last.scanned_through, 40);
    EXPECT_FALSE(last.more);
  };
  expect_same("nothing indexed");
  EXPECT_EQ(Index(17), 17);  // t1 first: its cursors 1..17
  expect_same("t1 indexed through 17");
  EXPECT_EQ(Index(1000), 23 + 1);  // the rest of t1, and t2's one event
  expect_same("all indexed");
  EXPECT_EQ(Index(1000), 0);  // nothing behind
  // Only events with a patient are in the lookup.
  const std::vector<std::string> rows = LookupRows();
  EXPECT_EQ(rows.size(), 40u - 5u + 1u);
  EXPECT_EQ(rows.back(), "t2 tenants/t2/patients/a 1");

  // New events land in the tail until the next pass.
  const int64_t late = Append(Event("t1", EventType::kMessageRead, a));
  a_all.push_back(late);
  EXPECT_EQ(PatientCursors(a, {}, 3), a_all);
  EXPECT_EQ(Index(1000), 1);
  EXPECT_EQ(PatientCursors(a, {}, 3), a_all);
}

// The migration that replaced the events_patient index fills the lookup
// from the events already stored; the purge takes their lookup rows along.
TEST_F(EventLogTest, LookupIsFilledByItsMigrationAndEmptiedByThePurge) {
  db_.reset();
  auto db = sql::SqliteDatabase::Open({.path = dir_.File("old.db")});
  ASSERT_TRUE(db.ok()) << db.status();
  db_ = std::move(*db);
  const std::vector<sql::Migration> all = EventMigrations();
  ASSERT_GE(all.size(), 3u);
  ASSERT_EQ(all[2].version, 3);
  ASSERT_TRUE(db_->Migrate("events", {all[0], all[1]}).ok());
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  for (int i = 0; i < 6; ++i) {
    EventRecord e = Event("t1", EventType::kMessageRead,
                          i == 2 ? "" : "tenants/t1/patients/a");
    e.time = t0 + absl::Hours(i);
    Append(e);
  }
  ASSERT_TRUE(db_->Migrate("events", all).ok());
  EXPECT_EQ(LookupRows().size(), 5u);
  EXPECT_EQ(Index(1000), 0);  // the migration indexed through the head
  EXPECT_EQ(PatientCursors("tenants/t1/patients/a", {}, 2),
            (std::vector<int64_t>{1, 2, 4, 5, 6}));

  ASSERT_TRUE(
      db_->WriteAndWait([&](sql::Txn& txn) {
           return PurgeEventsBefore(txn, "t1", t0 + absl::Hours(4)).status();
         })
          .ok());
  EXPECT_EQ(LookupRows(),
            (std::vector<std::string>{"t1 tenants/t1/patients/a 5",
                                      "t1 tenants/t1/patients/a 6"}));
  EXPECT_EQ(PatientCursors("tenants/t1/patients/a", {}, 2),
            (std::vector<int64_t>{5, 6}));
}

TEST(WorkQueueTest, RunsEveryQueuedTaskBeforeItIsDestroyed) {
  std::atomic<int> ran{0};
  {
    WorkQueue queue(2);
    for (int i = 0; i < 100; ++i) queue.Schedule([&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 100);
}

}  // namespace
}  // namespace careseal::events
