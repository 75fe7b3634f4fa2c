// Key management:
//  * KeyRing: envelope encryption for health data at rest. A master key that
//    lives outside the database (a file) wraps per-tenant data keys; the
//    wrapped data keys are what the database stores.
//  * SigningKeyRing: the current Ed25519 signing key plus the public keys of
//    retired ones, so receipts signed before a rotation keep verifying.
//  * Loading key files with safe permissions.
#ifndef CARESEAL_SERVICES_COMMON_CRYPTO_KEY_RING_H_
#define CARESEAL_SERVICES_COMMON_CRYPTO_KEY_RING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/clock.h"
#include "services/common/crypto/aead.h"
#include "services/common/crypto/ed25519.h"
#include "services/common/crypto/random.h"

namespace careseal::crypto {

// NOT_FOUND: no key with this id is in the SigningKeyRing.
inline constexpr absl::string_view kReasonUnknownKeyId = "UNKNOWN_KEY_ID";
// FAILED_PRECONDITION: a wrapped data key names a master key that is not
// configured (a retired master key was dropped too early).
inline constexpr absl::string_view kReasonUnknownMasterKeyId =
    "UNKNOWN_MASTER_KEY_ID";
// ALREADY_EXISTS: a key with this id is already in the SigningKeyRing.
inline constexpr absl::string_view kReasonKeyIdExists = "KEY_ID_EXISTS";
// FAILED_PRECONDITION: a key file is missing, unreadable, not a regular file
// or of the wrong size.
inline constexpr absl::string_view kReasonKeyFileUnreadable =
    "KEY_FILE_UNREADABLE";
// FAILED_PRECONDITION: a key file is accessible to group or others; fix with
// `chmod 600`.
inline constexpr absl::string_view kReasonKeyFileInsecure = "KEY_FILE_INSECURE";
// INTERNAL: a new key file could not be written.
inline constexpr absl::string_view kReasonKeyFileWriteFailed =
    "KEY_FILE_WRITE_FAILED";

// Wraps and unwraps per-tenant data keys under master keys. Immutable after
// Create(); thread-safe.
//
// Wrapped data key format, version 1:
//   byte 0      0x01 (format version)
//   byte 1      L, the length of the master key id
//   next L      the master key id (ASCII, see MasterKeyId)
//   rest        OpenSslAes256Gcm output (aead.h) over the raw data key, with
//               associated data "careseal.data-key.v1" 0x00 <master key id>
//               0x00 <tenant>, so a wrapped key only unwraps for its tenant.
//
// Master key rotation: create the KeyRing with the new master key and the old
// one as retired; WrapDataKey always uses the current one; rewrap every data
// key whose WrappingKeyId() is not master_key_id(); then drop the old key.
class KeyRing {
 public:
  static constexpr size_t kMasterKeySize = 32;
  static constexpr size_t kDataKeySize = 32;
  static constexpr uint8_t kWrappedVersion = 1;

  // `master_key` wraps and unwraps; `retired_master_keys` only unwrap. All
  // are 32 bytes (else INVALID_ARGUMENT / KEY_INVALID).
  static absl::StatusOr<std::unique_ptr<KeyRing>> Create(
      absl::string_view master_key,
      const std::vector<std::string>& retired_master_keys = {});

  // "aes256gcm:" + first 16 hex chars of
  // SHA-256("careseal.master-key-id.v1" 0x00 <master key>). Identifies a
  // master key without revealing it.
  static std::string MasterKeyId(absl::string_view master_key);
  // The master key id recorded in a wrapped data key (not authenticated
  // until UnwrapDataKey succeeds). INVALID_ARGUMENT / DECRYPTION_FAILED if
  // `wrapped` is malformed.
  static absl::StatusOr<std::string> WrappingKeyId(absl::string_view wrapped);
  // A new random 32-byte data key.
  static std::string NewDataKey(RandomSource& random);

  KeyRing(const KeyRing&) = delete;
  KeyRing& operator=(const KeyRing&) = delete;

  // The id of the master key that WrapDataKey uses.
  const std::string& master_key_id() const { return master_key_id_; }

  // REQUIRES: `tenant` is non-empty and `raw_key` is 32 bytes.
  absl::StatusOr<std::string> WrapDataKey(absl::string_view tenant,
                                          absl::string_view raw_key) const;
  // The raw data key, if `wrapped` came from WrapDataKey for the same
  // tenant under a master key of this ring. Errors: FAILED_PRECONDITION /
  // UNKNOWN_MASTER_KEY_ID, INVALID_ARGUMENT / DECRYPTION_FAILED (altered,
  // other tenant, malformed).
  absl::StatusOr<std::string> UnwrapDataKey(absl::string_view tenant,
                                            absl::string_view wrapped) const;

 private:
  KeyRing() = default;

  std::string master_key_id_;
  absl::flat_hash_map<std::string, std::unique_ptr<OpenSslAes256Gcm>>
      master_keys_;  // By id; includes the current one.
};

enum class KeyState {
  kCurrent,  // Signs new data.
  kRetired,  // Only verifies old signatures.
};

// A published public key, for GetPublicKeys-style endpoints.
struct PublicKeyInfo {
  std::string key_id;          // "ed25519-..." (see ed25519.h).
  std::string public_key_raw;  // 32 bytes.
  KeyState state = KeyState::kRetired;
  absl::Time create_time;  // When it became current (or as restored).
  absl::Time retire_time;  // absl::InfiniteFuture() while current.
};

// The current Ed25519 signer plus verifiers for every key the ring has
// known, by key id. Rotate() installs a new signer and keeps the old public
// key, so signatures made before stay verifiable. Retired keys do not
// survive a restart by themselves: persist ListPublicKeys() and restore them
// with AddRetiredKey(). Thread-safe.
class SigningKeyRing {
 public:
  // `clock` stamps create and retire times. REQUIRES: `current` non-null;
  // `clock` outlives the ring.
  static absl::StatusOr<std::unique_ptr<SigningKeyRing>> Create(
      std::unique_ptr<OpenSslEd25519Signer> current, const Clock* clock);

  SigningKeyRing(const SigningKeyRing&) = delete;
  SigningKeyRing& operator=(const SigningKeyRing&) = delete;

  // The signer for new signatures. Stays valid (and keeps signing with its
  // key) even if the ring rotates meanwhile.
  std::shared_ptr<const Signer> Current() const;
  // A verifier for the current or any retired key. NOT_FOUND /
  // UNKNOWN_KEY_ID if the ring never held `key_id`.
  absl::StatusOr<std::shared_ptr<const Verifier>> VerifierFor(
      absl::string_view key_id) const;
  // Makes `next` current and retires the current key (public key kept).
  // ALREADY_EXISTS / KEY_ID_EXISTS if the ring already holds next's key.
  absl::Status Rotate(std::unique_ptr<OpenSslEd25519Signer> next);
  // Restores a retired public key (e.g. from the database at startup).
  // INVALID_ARGUMENT / KEY_INVALID for a bad key; ALREADY_EXISTS /
  // KEY_ID_EXISTS if present.
  absl::Status AddRetiredKey(absl::string_view public_key_raw,
                             absl::Time create_time, absl::Time retire_time);
  // The current key first, then retired keys, most recently retired first.
  std::vector<PublicKeyInfo> ListPublicKeys() const;

 private:
  struct Entry {
    std::shared_ptr<const OpenSslEd25519Verifier> verifier;
    absl::Time create_time;
    absl::Time retire_time;
  };
  explicit SigningKeyRing(const Clock* clock) : clock_(clock) {}

  const Clock* const clock_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const OpenSslEd25519Signer> current_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Entry> keys_ ABSL_GUARDED_BY(mu_);
};

// Reads a master key file: exactly 32 raw bytes (e.g. from
// `head -c 32 /dev/urandom`), a regular file without group or other
// permissions. Never creates one: a lost master key means lost data, so its
// absence must be noticed. Errors: KEY_FILE_UNREADABLE, KEY_FILE_INSECURE.
absl::StatusOr<std::string> LoadMasterKeyFile(const std::string& path);

// Loads the PEM (PKCS#8) Ed25519 private key at `path` or, if no file is
// there, generates a key and writes it atomically with mode 0600 (a
// concurrent creator wins and its key is loaded). An existing file must have
// no group or other permissions. Errors: KEY_FILE_UNREADABLE,
// KEY_FILE_INSECURE, KEY_INVALID, KEY_FILE_WRITE_FAILED.
absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>> LoadOrCreateSigningKey(
    const std::string& path);

}  // namespace careseal::crypto

#endif  // CARESEAL_SERVICES_COMMON_CRYPTO_KEY_RING_H_
