// Health data at rest (message bodies, answers, signature evidence) is sealed
// with AES-256-GCM under a per-tenant data key. Data keys are random, stored
// only wrapped by the master key (crypto::KeyRing, not in the database), and
// versioned: RotateDataKey adds a version that seals new data while older
// versions keep opening old data. Deleting a tenant's wrapped keys
// crypto-shreds its sealed data.
//
// Sealed format: "cs1" | 4-byte big-endian key version | AEAD output.
// Associated data binds each blob to its tenant and its purpose (e.g.
// "consent-evidence:tenants/t/patients/p/consents/c").
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_SEALER_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_SEALER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/common/clock.h"
#include "services/common/crypto/aead.h"
#include "services/common/crypto/key_ring.h"
#include "services/common/crypto/random.h"
#include "services/common/sql/database.h"

namespace careseal {

const std::vector<sql::Migration>& SealerMigrations();

// Thread-safe. The key ring and random source outlive the sealer.
class Sealer {
 public:
  Sealer(const crypto::KeyRing* key_ring, crypto::RandomSource* random,
         const Clock* clock)
      : key_ring_(key_ring), random_(random), clock_(clock) {}

  // Seals under the tenant's newest data key, creating version 1 in `txn`
  // if the tenant has none.
  absl::StatusOr<std::string> Seal(sql::Txn& txn, absl::string_view tenant,
                                   absl::string_view plaintext,
                                   absl::string_view associated_data);
  absl::StatusOr<std::string> Open(sql::Txn& txn, absl::string_view tenant,
                                   absl::string_view sealed,
                                   absl::string_view associated_data);
  // HMAC-SHA256 of `data` under a key derived from the tenant's first data
  // key: a stable keyed hash for looking up or comparing low-entropy values
  // (dates of birth, external ids) without storing them. 32 bytes.
  absl::StatusOr<std::string> Mac(sql::Txn& txn, absl::string_view tenant,
                                  absl::string_view data);
  // Mac for lookups inside a read: writes nothing, and is nullopt when the
  // tenant has no data key yet (so nothing was ever stored under a MAC).
  absl::StatusOr<std::optional<std::string>> MacIfKeyed(
      sql::Txn& txn, absl::string_view tenant, absl::string_view data);

  // Adds a new newest data key version for the tenant; returns it.
  absl::StatusOr<int64_t> RotateDataKey(sql::Txn& txn,
                                        absl::string_view tenant);

 private:
  struct Key {
    std::unique_ptr<crypto::Aead> aead;
    std::string mac_key;
  };
  absl::StatusOr<const Key*> KeyFor(absl::string_view tenant, int64_t version,
                                    const std::string& wrapped);
  absl::StatusOr<int64_t> InsertKey(sql::Txn& txn, absl::string_view tenant,
                                    int64_t version);

  const crypto::KeyRing* const key_ring_;
  crypto::RandomSource* const random_;
  const Clock* const clock_;
  absl::Mutex mu_;
  // Unwrapped keys by "tenant|version|sha256(wrapped)": an entry is only
  // used for the exact wrapped bytes the current transaction read, so a
  // rolled-back key can never be used again.
  absl::flat_hash_map<std::string, std::unique_ptr<Key>> cache_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_SEALER_H_
