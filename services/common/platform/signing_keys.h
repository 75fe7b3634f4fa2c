// Signing keys that outlive the process: the current Ed25519 private key is
// a PEM file in the key directory (never in the database); every public key
// the deployment ever signed with is recorded in the database with its state
// and times, so receipts and checkpoints signed before a rotation keep
// verifying and ListSigningKeys can publish them.
//
// Files: <key_dir>/<purpose>-signing.pem (current); rotation renames it to
// <purpose>-signing.<key id>.retired.pem and writes a new current key.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_SIGNING_KEYS_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_SIGNING_KEYS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/clock.h"
#include "services/common/crypto/key_ring.h"
#include "services/common/sql/database.h"

namespace careseal {

const std::vector<sql::Migration>& SigningKeyMigrations();

class SigningKeyStore {
 public:
  // Loads or creates the current key for `purpose` ("receipt", "checkpoint")
  // and restores the retired public keys. If the database records another
  // key as current for the purpose (the key file was replaced), that key is
  // marked retired now.
  static absl::StatusOr<std::unique_ptr<SigningKeyStore>> Open(
      sql::Database* db, std::string key_dir, std::string purpose,
      const Clock* clock);

  const crypto::SigningKeyRing& ring() const { return *ring_; }
  const std::string& purpose() const { return purpose_; }

  // Generates a new current key, retires the old one (file kept, renamed).
  absl::Status Rotate();

 private:
  SigningKeyStore() = default;
  absl::Status Record(const crypto::OpenSslEd25519Signer& current);

  sql::Database* db_ = nullptr;
  std::string key_dir_;
  std::string purpose_;
  const Clock* clock_ = nullptr;
  std::unique_ptr<crypto::SigningKeyRing> ring_;
};

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_SIGNING_KEYS_H_
