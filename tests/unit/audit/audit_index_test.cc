// The audit logs' patient and actor lookups, built behind the logs
// (IndexAuditLogs): the migration that introduced them fills them from the
// events already logged, and indexing goes tenant by tenant within its
// budget, never twice and never back.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/sql/sqlite_database.h"
#include "tests/testing/temp_dir.h"

namespace careseal {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

class AuditIndexTest : public ::testing::Test {
 protected:
  void Open(const std::vector<sql::Migration>& migrations) {
    auto db = sql::SqliteDatabase::Open({.path = dir_.File("db.sqlite")});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Migrate("audit", migrations).ok());
  }

  // Logs `n` events to `tenant`: patient p-(i % 3) (none for i % 4 == 3),
  // actor a-(i % 2).
  void Log(const std::string& tenant, int n) {
    ASSERT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
                     for (int i = 0; i < n; ++i) {
                       CallContext call;
                       call.method = "careseal.v1.ConsentService/GetConsent";
                       call.tenant = tenant;
                       call.principal.actor = absl::StrCat("a-", i % 2);
                       if (i % 4 != 3) call.patient = absl::StrCat("p-", i % 3);
                       auto index =
                           AppendAuditEvent(txn, call, absl::OkStatus());
                       if (!index.ok()) return index.status();
                     }
                     return absl::OkStatus();
                   })
                    .ok());
  }

  // (key, leaf_index) rows of `tenant` in one lookup table, in key order.
  std::vector<std::pair<std::string, int64_t>> Lookup(
      const std::string& table, const std::string& tenant) {
    std::vector<std::pair<std::string, int64_t>> out;
    EXPECT_TRUE(db_->Read([&](sql::Txn& txn) -> absl::Status {
                     auto rows = txn.Query(
                         absl::StrCat("SELECT * FROM ", table,
                                      " WHERE tenant = ? ORDER BY 2, 3"),
                         {sql::Text(tenant)});
                     if (!rows.ok()) return rows.status();
                     for (const auto& r : *rows) {
                       out.emplace_back(r.Str(1), r.Int(2));
                     }
                     return absl::OkStatus();
                   })
                    .ok());
    return out;
  }

  int64_t IndexedSize(const std::string& tenant) {
    int64_t size = -1;
    EXPECT_TRUE(db_->Read([&](sql::Txn& txn) -> absl::Status {
                     auto s = AuditIndexedSize(txn, tenant);
                     if (s.ok()) size = *s;
                     return s.status();
                   })
                    .ok());
    return size;
  }

  int64_t Index(int64_t max_events) {
    int64_t indexed = -1;
    EXPECT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
                     auto n = IndexAuditLogs(txn, max_events);
                     if (n.ok()) indexed = *n;
                     return n.status();
                   })
                    .ok());
    return indexed;
  }

  testing::TempDir dir_;
  std::unique_ptr<sql::SqliteDatabase> db_;
};

TEST_F(AuditIndexTest, MigrationFillsTheLookupsFromTheEventsAlreadyLogged) {
  // The schema before the lookups: indexes on audit_events.
  const std::vector<sql::Migration>& all = AuditMigrations();
  ASSERT_GE(all.size(), 3u);
  Open({all[0], all[1]});
  Log("clinic-a", 8);
  Log("clinic-b", 2);
  ASSERT_TRUE(db_->Migrate("audit", all).ok());

  EXPECT_THAT(Lookup("audit_patient_index", "clinic-a"),
              ElementsAre(Pair("p-0", 0), Pair("p-0", 6), Pair("p-1", 1),
                          Pair("p-1", 4), Pair("p-2", 2), Pair("p-2", 5)));
  EXPECT_THAT(Lookup("audit_actor_index", "clinic-a"),
              ElementsAre(Pair("a-0", 0), Pair("a-0", 2), Pair("a-0", 4),
                          Pair("a-0", 6), Pair("a-1", 1), Pair("a-1", 3),
                          Pair("a-1", 5), Pair("a-1", 7)));
  EXPECT_EQ(IndexedSize("clinic-a"), 8);
  EXPECT_EQ(IndexedSize("clinic-b"), 2);
  EXPECT_EQ(IndexedSize("clinic-c"), 0);
  EXPECT_EQ(Index(100), 0);  // nothing behind
}

TEST_F(AuditIndexTest, IndexesTenantByTenantWithinItsBudgetOnce) {
  Open(AuditMigrations());
  Log("clinic-a", 5);
  Log("clinic-b", 3);
  EXPECT_EQ(IndexedSize("clinic-a"), 0);
  EXPECT_TRUE(Lookup("audit_actor_index", "clinic-a").empty());

  EXPECT_EQ(Index(4), 4);  // clinic-a's first four
  EXPECT_EQ(IndexedSize("clinic-a"), 4);
  EXPECT_EQ(IndexedSize("clinic-b"), 0);
  EXPECT_THAT(Lookup("audit_patient_index", "clinic-a"),
              ElementsAre(Pair("p-0", 0), Pair("p-1", 1), Pair("p-2", 2)));

  EXPECT_EQ(Index(3), 3);  // clinic-a's last, clinic-b's first two
  EXPECT_EQ(IndexedSize("clinic-a"), 5);
  EXPECT_EQ(IndexedSize("clinic-b"), 2);
  Log("clinic-a", 2);  // leaves 5 and 6
  EXPECT_EQ(Index(100), 3);
  EXPECT_EQ(Index(100), 0);
  EXPECT_EQ(IndexedSize("clinic-a"), 7);
  EXPECT_EQ(IndexedSize("clinic-b"), 3);
  EXPECT_THAT(Lookup("audit_patient_index", "clinic-a"),
              ElementsAre(Pair("p-0", 0), Pair("p-0", 5), Pair("p-1", 1),
                          Pair("p-1", 4), Pair("p-1", 6), Pair("p-2", 2)));
  EXPECT_EQ(Lookup("audit_actor_index", "clinic-b").size(), 3u);

  // Indexing from a smaller size (as an indexer that read an older one
  // would) re-reads events but adds none twice.
  ASSERT_TRUE(db_->WriteAndWait([](sql::Txn& txn) {
                   return txn
                       .Exec(
                           "UPDATE audit_index_heads SET indexed_size = 3 "
                           "WHERE tenant = 'clinic-a'")
                       .status();
                 })
                  .ok());
  EXPECT_EQ(Index(100), 4);
  EXPECT_EQ(IndexedSize("clinic-a"), 7);
  EXPECT_EQ(Lookup("audit_actor_index", "clinic-a").size(), 7u);
}

}  // namespace
}  // namespace careseal
