#include "services/common/platform/idempotency.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/sql/sqlite_database.h"
#include "tests/testing/temp_dir.h"

namespace careseal {
namespace {

CallContext Call(const std::string& actor, const std::string& request_id,
                 const std::string& fingerprint) {
  CallContext call;
  call.principal.tenant = "t1";
  call.principal.actor = actor;
  call.method = "careseal.v1.ConsentService/SignConsent";
  call.request_id = request_id;
  call.request_fingerprint = fingerprint;
  call.now = absl::FromUnixSeconds(1767225600);
  return call;
}

class IdempotencyTest : public ::testing::Test {
 protected:
  IdempotencyTest() {
    auto db = sql::SqliteDatabase::Open({.path = dir_.File("idem.db")});
    EXPECT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
  }

  absl::StatusOr<std::optional<std::string>> Find(const CallContext& call) {
    absl::StatusOr<std::optional<std::string>> found = std::nullopt;
    absl::Status s = db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
      found = FindIdempotentResult(txn, call);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return found;
  }

  absl::Status Remember(const CallContext& call, const std::string& resource) {
    return db_->WriteAndWait([&](sql::Txn& txn) {
      return RememberIdempotentResult(txn, call, resource);
    });
  }

  testing::TempDir dir_;
  std::unique_ptr<sql::Database> db_;
};

TEST_F(IdempotencyTest, FindsWhatWasRememberedForTheSameCallerAndBody) {
  ASSERT_TRUE(db_->Migrate("idempotency", IdempotencyMigrations()).ok());
  const std::string id = "0190b2c4-8f00-7abc-8def-0123456789ab";
  EXPECT_EQ(*Find(Call("ehr", id, "f1")), std::nullopt);
  ASSERT_TRUE(Remember(Call("ehr", id, "f1"), "tenants/t1/consents/c1").ok());
  EXPECT_EQ(*Find(Call("ehr", id, "f1")), "tenants/t1/consents/c1");
  // Another caller's request ids are its own.
  EXPECT_EQ(*Find(Call("clinician", id, "f1")), std::nullopt);
  ASSERT_TRUE(
      Remember(Call("clinician", id, "f2"), "tenants/t1/consents/c2").ok());
  EXPECT_EQ(*Find(Call("clinician", id, "f2")), "tenants/t1/consents/c2");
  // The same id with another body is a reuse.
  auto reused = Find(Call("ehr", id, "f2"));
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kAlreadyExists);
  // A second row for the same caller and id is refused by the key.
  EXPECT_FALSE(Remember(Call("ehr", id, "f1"), "tenants/t1/consents/c3").ok());
}

TEST_F(IdempotencyTest, RowsRememberedBeforeTheNewKeyAreFoundAfterIt) {
  const std::vector<sql::Migration> all = IdempotencyMigrations();
  ASSERT_GE(all.size(), 2u);
  ASSERT_EQ(all[1].version, 2);
  ASSERT_TRUE(db_->Migrate("idempotency", {all[0]}).ok());
  const std::string ids[] = {"ffffffff-0000-4000-8000-000000000001",
                             "00000000-0000-4000-8000-000000000002",
                             "0190b2c4-8f00-7abc-8def-0123456789ab"};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(db_->WriteAndWait([&](sql::Txn& txn) {
                     // Version 1's column order.
                     return txn
                         .Exec(
                             "INSERT INTO idempotency (tenant, actor, "
                             "request_id, method, fingerprint, resource, "
                             "create_time_us) VALUES ('t1', 'ehr', ?, "
                             "'careseal.v1.ConsentService/SignConsent', ?, "
                             "?, 1)",
                             {sql::Text(ids[i]), sql::Bytes("f"),
                              sql::Text("r" + std::to_string(i))})
                         .status();
                   })
                    .ok());
  }
  ASSERT_TRUE(db_->Migrate("idempotency", all).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*Find(Call("ehr", ids[i], "f")), "r" + std::to_string(i));
  }
  EXPECT_FALSE(Find(Call("ehr", ids[0], "g")).ok());
  // Keyed by (tenant, request_id, actor), nothing else left over.
  std::vector<std::string> schema;
  ASSERT_TRUE(db_->Read([&](sql::Txn& txn) -> absl::Status {
                   auto rows = txn.Query(
                       "SELECT type, name, sql FROM sqlite_master WHERE "
                       "tbl_name LIKE 'idempotency%' ORDER BY name");
                   if (!rows.ok()) return rows.status();
                   for (const sql::Row& r : *rows) {
                     schema.push_back(r.Str(0) + " " + r.Str(1));
                     if (r.Str(0) == "table") {
                       EXPECT_NE(r.Str(2).find(
                                     "PRIMARY KEY (tenant, request_id, actor)"),
                                 std::string::npos)
                           << r.Str(2);
                     }
                   }
                   return absl::OkStatus();
                 })
                  .ok());
  EXPECT_EQ(schema,
            (std::vector<std::string>{"table idempotency",
                                      "index sqlite_autoindex_idempotency_1"}));
}

}  // namespace
}  // namespace careseal
