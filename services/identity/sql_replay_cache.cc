#include "services/identity/sql_replay_cache.h"

#include "absl/strings/str_cat.h"
#include "services/common/crypto/sha256.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"

namespace careseal::identity {

const std::vector<sql::Migration>& ReplayCacheMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE identity_token_jtis ("
       "  jti_key BLOB NOT NULL PRIMARY KEY, expire_us BIGINT NOT NULL);"
       "CREATE INDEX identity_token_jtis_by_expiry ON identity_token_jtis "
       "(expire_us)"},
  };
  return *migrations;
}

std::string SqlReplayCache::Key(absl::string_view issuer,
                                absl::string_view jti) {
  return crypto::Sha256(absl::StrCat(issuer.size(), ":", issuer, jti));
}

bool SqlReplayCache::CheckAndRemember(absl::string_view issuer,
                                      absl::string_view jti,
                                      absl::Time expires_at) {
  if (!memory_.CheckAndRemember(issuer, jti, expires_at)) return false;
  const absl::Time now = clock_->Now();
  const int64_t now_us = ToMicros(now);
  std::string key = Key(issuer, jti);
  bool seen = true;  // fails closed if the read fails
  absl::Status read = db_->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows,
                     txn.Query("SELECT 1 FROM identity_token_jtis WHERE "
                               "jti_key = ? AND expire_us > ?",
                               {sql::Bytes(key), sql::Int(now_us)}));
    seen = !rows.empty();
    return absl::OkStatus();
  });
  if (!read.ok() || seen) return false;
  // Purge expired rows at most once a minute, in the same job.
  int64_t last = last_purge_us_.load(std::memory_order_relaxed);
  const bool purge =
      now_us - last >= absl::ToInt64Microseconds(absl::Minutes(1)) &&
      last_purge_us_.compare_exchange_strong(last, now_us);
  db_->Write(
      [key = std::move(key), expire_us = ToMicros(expires_at), purge,
       now_us](sql::Txn& txn) -> absl::Status {
        if (purge) {
          RETURN_IF_ERROR(
              txn.Exec("DELETE FROM identity_token_jtis WHERE expire_us <= ?",
                       {sql::Int(now_us)})
                  .status());
        }
        return txn
            .Exec(
                "INSERT INTO identity_token_jtis (jti_key, expire_us) VALUES "
                "(?, ?) ON CONFLICT (jti_key) DO UPDATE SET expire_us = "
                "excluded.expire_us",
                {sql::Bytes(key), sql::Int(expire_us)})
            .status();
      },
      [](absl::Status) {});
  return true;
}

}  // namespace careseal::identity
