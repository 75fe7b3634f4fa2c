#include "services/common/platform/signing_keys.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/status.h"

namespace careseal {

const std::vector<sql::Migration>& SigningKeyMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE signing_keys (key_id TEXT PRIMARY KEY, purpose TEXT NOT "
       "NULL, public_key BLOB NOT NULL, state TEXT NOT NULL, create_time_us "
       "BIGINT NOT NULL, retire_time_us BIGINT)"},
  };
  return *migrations;
}

absl::StatusOr<std::unique_ptr<SigningKeyStore>> SigningKeyStore::Open(
    sql::Database* db, std::string key_dir, std::string purpose,
    const Clock* clock) {
  std::unique_ptr<SigningKeyStore> store(new SigningKeyStore());
  store->db_ = db;
  store->key_dir_ = std::move(key_dir);
  store->purpose_ = std::move(purpose);
  store->clock_ = clock;
  std::error_code ec;
  std::filesystem::create_directories(store->key_dir_, ec);
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::OpenSslEd25519Signer> current,
                   crypto::LoadOrCreateSigningKey(absl::StrCat(
                       store->key_dir_, "/", store->purpose_, "-signing.pem")));
  const std::string current_id = current->key_id();
  const std::string current_raw = current->public_key_raw();
  RETURN_IF_ERROR(store->Record(*current));
  ASSIGN_OR_RETURN(store->ring_,
                   crypto::SigningKeyRing::Create(std::move(current), clock));
  std::vector<sql::Row> rows;
  RETURN_IF_ERROR(db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(rows, txn.Query("SELECT key_id, public_key, "
                                     "create_time_us, retire_time_us FROM "
                                     "signing_keys WHERE purpose = ? AND "
                                     "state = 'RETIRED'",
                                     {sql::Text(store->purpose_)}));
    return absl::OkStatus();
  }));
  for (const sql::Row& row : rows) {
    if (row.Str(0) == current_id) continue;
    RETURN_IF_ERROR(store->ring_->AddRetiredKey(
        row.Str(1), FromMicros(row.Int(2)), FromMicros(row.Int(3))));
  }
  return store;
}

absl::Status SigningKeyStore::Record(
    const crypto::OpenSslEd25519Signer& current) {
  const int64_t now = ToMicros(clock_->Now());
  return db_->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(txn.Exec("UPDATE signing_keys SET state = 'RETIRED', "
                             "retire_time_us = ? WHERE purpose = ? AND state "
                             "= 'CURRENT' AND key_id <> ?",
                             {sql::Int(now), sql::Text(purpose_),
                              sql::Text(current.key_id())})
                        .status());
    return txn
        .Exec(
            "INSERT INTO signing_keys (key_id, purpose, public_key, state, "
            "create_time_us) VALUES (?, ?, ?, 'CURRENT', ?) ON CONFLICT "
            "(key_id) DO NOTHING",
            {sql::Text(current.key_id()), sql::Text(purpose_),
             sql::Bytes(current.public_key_raw()), sql::Int(now)})
        .status();
  });
}

absl::Status SigningKeyStore::Rotate() {
  const std::string path =
      absl::StrCat(key_dir_, "/", purpose_, "-signing.pem");
  const std::string old_id = ring_->Current()->key_id();
  std::error_code ec;
  std::filesystem::rename(path,
                          absl::StrCat(key_dir_, "/", purpose_, "-signing.",
                                       old_id, ".retired.pem"),
                          ec);
  if (ec) {
    return Internal(
        "KEY_ROTATION_FAILED",
        absl::StrCat("cannot archive the current key file: ", ec.message()));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::OpenSslEd25519Signer> next,
                   crypto::LoadOrCreateSigningKey(path));
  RETURN_IF_ERROR(Record(*next));
  return ring_->Rotate(std::move(next));
}

}  // namespace careseal
