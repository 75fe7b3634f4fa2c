// SqlReplayCache: the token authenticator's memory of accepted (iss, jti)
// pairs, kept in the store so that a restarted process (and any process
// over the same database) refuses a token replayed within its lifetime.
//
// CheckAndRemember, on the calling (gRPC) thread and without waiting for a
// write:
//   1. this process's InMemoryReplayCache (exact within the process, fails
//      closed when full);
//   2. a point read of identity_token_jtis (the pair, keyed by the SHA-256
//      of the length-prefixed issuer and jti, with expire_us > now): found
//      is a replay; a failing read fails closed (the token is refused);
//   3. queues the pair's row through the store's group commit (not waited
//      for). Every call is answered only after a later job on the same
//      in-order writer is durable (its audit event or its change), so a
//      token whose call was answered is durably remembered before the
//      answer leaves.
// Rows are deleted once past expires_at (exp + clock skew): at most once a
// minute, inside one of those queued jobs.
//
// Limit: processes that share one database but not memory (replicas) can
// both accept a token replayed to them within the same few milliseconds,
// before either's row is committed; later replays are refused everywhere.
//
// Thread-safe.
#ifndef CARESEAL_SERVICES_IDENTITY_SQL_REPLAY_CACHE_H_
#define CARESEAL_SERVICES_IDENTITY_SQL_REPLAY_CACHE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "services/common/authn/jwt.h"
#include "services/common/clock.h"
#include "services/common/sql/database.h"

namespace careseal::identity {

const std::vector<sql::Migration>& ReplayCacheMigrations();

class SqlReplayCache final : public authn::ReplayCache {
 public:
  // REQUIRES: `db` and `clock` outlive the cache; the migrations applied.
  SqlReplayCache(sql::Database* db, const Clock* clock)
      : db_(db), clock_(clock), memory_(clock) {}

  bool CheckAndRemember(absl::string_view issuer, absl::string_view jti,
                        absl::Time expires_at) override;

  // The row key of a pair (exposed for tests).
  static std::string Key(absl::string_view issuer, absl::string_view jti);

 private:
  sql::Database* const db_;
  const Clock* const clock_;
  authn::InMemoryReplayCache memory_;
  std::atomic<int64_t> last_purge_us_{0};
};

}  // namespace careseal::identity

#endif  // CARESEAL_SERVICES_IDENTITY_SQL_REPLAY_CACHE_H_
