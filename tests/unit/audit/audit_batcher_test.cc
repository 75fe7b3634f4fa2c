// AuditBatcher::ReadAudited: a read that rides in the audit batch. Its call
// is marked audited only when the read succeeded and its event is durable;
// a failed read appends nothing of its own and fails no other call.
#include "services/common/platform/audit_batcher.h"

#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "services/common/sql/sqlite_database.h"
#include "services/common/status.h"
#include "tests/testing/temp_dir.h"

namespace careseal {
namespace {

class AuditBatcherTest : public ::testing::Test {
 protected:
  AuditBatcherTest() {
    auto db = sql::SqliteDatabase::Open({.path = dir_.File("db.sqlite")});
    EXPECT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    EXPECT_TRUE(db_->Migrate("audit", AuditMigrations()).ok());
  }

  static CallContext Call(const std::string& patient) {
    CallContext call;
    call.method = "careseal.v1.ConsentService/CheckConsent";
    call.tenant = "clinic-a";
    call.principal.actor = "ehr-1";
    call.patient = patient;
    return call;
  }

  // Runs ReadAudited and waits for its answer.
  absl::Status ReadAudited(CallContext& call, AuditBatcher::ReadFn read) {
    absl::Notification answered;
    absl::Status out;
    AuditBatcher::For(db_.get()).ReadAudited(call, std::move(read),
                                             [&](absl::Status s) {
                                               out = s;
                                               answered.Notify();
                                             });
    answered.WaitForNotification();
    return out;
  }

  // (patient, outcome) of every event of clinic-a, in leaf order.
  std::vector<std::pair<std::string, std::string>> Logged() {
    std::vector<std::pair<std::string, std::string>> out;
    EXPECT_TRUE(db_->Read([&](sql::Txn& txn) -> absl::Status {
                     auto rows = txn.Query(
                         "SELECT patient, outcome FROM audit_events WHERE "
                         "tenant = 'clinic-a' ORDER BY leaf_index");
                     if (!rows.ok()) return rows.status();
                     for (const auto& r : *rows) {
                       out.emplace_back(r.Str(0), r.Str(1));
                     }
                     return absl::OkStatus();
                   })
                    .ok());
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<sql::SqliteDatabase> db_;
};

TEST_F(AuditBatcherTest, ReadRunsInTheBatchAndItsEventIsLogged) {
  CallContext call = Call("p-1");
  int64_t seen = -1;
  EXPECT_TRUE(ReadAudited(call, [&](sql::Txn& txn) -> absl::Status {
                auto rows = txn.Query("SELECT COUNT(*) FROM audit_events");
                if (!rows.ok()) return rows.status();
                seen = (*rows)[0].Int(0);
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(seen, 0);  // read before its own event was appended
  EXPECT_TRUE(call.audited);
  EXPECT_EQ(Logged(),
            (std::vector<std::pair<std::string, std::string>>{{"p-1", "OK"}}));
}

TEST_F(AuditBatcherTest, FailedReadAppendsNothingAndFailsNoOtherCall) {
  CallContext failing = Call("p-1");
  CallContext fine = Call("p-2");
  absl::Notification both;
  absl::Status failing_status, fine_status;
  int answers = 0;
  {
    // Queued together, so that (most likely) they share a batch; either
    // way each must get its own answer.
    auto& batcher = AuditBatcher::For(db_.get());
    auto answer = [&](absl::Status* into) {
      return [&, into](absl::Status s) {
        *into = s;
        if (++answers == 2) both.Notify();
      };
    };
    batcher.ReadAudited(
        failing,
        [](sql::Txn&) -> absl::Status {
          return Internal("STORE_READ_FAILED", "the read failed");
        },
        answer(&failing_status));
    batcher.ReadAudited(
        fine, [](sql::Txn&) { return absl::OkStatus(); }, answer(&fine_status));
  }
  both.WaitForNotification();
  EXPECT_EQ(failing_status.code(), absl::StatusCode::kInternal);
  EXPECT_FALSE(failing.audited);  // its edge audits the failure
  EXPECT_TRUE(fine_status.ok()) << fine_status;
  EXPECT_TRUE(fine.audited);
  EXPECT_EQ(Logged(),
            (std::vector<std::pair<std::string, std::string>>{{"p-2", "OK"}}));
}

}  // namespace
}  // namespace careseal
