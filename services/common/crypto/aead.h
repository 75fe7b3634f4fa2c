// Authenticated encryption with associated data: the Aead interface and its
// AES-256-GCM implementation on OpenSSL.
#ifndef CARESEAL_SERVICES_COMMON_CRYPTO_AEAD_H_
#define CARESEAL_SERVICES_COMMON_CRYPTO_AEAD_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/common/crypto/errors.h"
#include "services/common/crypto/openssl_util.h"

namespace careseal::crypto {

// Reason of every Decrypt() failure (wrong key, wrong associated data,
// altered, truncated or unknown-version ciphertext); code INVALID_ARGUMENT.
// Deliberately one reason: callers learn nothing about why.
inline constexpr absl::string_view kReasonDecryptionFailed =
    "DECRYPTION_FAILED";

// Encrypts and authenticates plaintext, and authenticates associated data
// (which is not encrypted and not included in the output; the same bytes
// must be given to Decrypt). Implementations are immutable and thread-safe.
class Aead {
 public:
  virtual ~Aead() = default;
  virtual absl::StatusOr<std::string> Encrypt(
      absl::string_view plaintext, absl::string_view associated_data) const = 0;
  // Returns the plaintext only if `ciphertext` is unaltered output of Encrypt
  // under the same key and `associated_data`; otherwise returns
  // INVALID_ARGUMENT / DECRYPTION_FAILED and no plaintext at all.
  virtual absl::StatusOr<std::string> Decrypt(
      absl::string_view ciphertext,
      absl::string_view associated_data) const = 0;
};

// AES-256-GCM with a fresh random 96-bit nonce per message (from OpenSSL's
// CSPRNG) and a 128-bit tag. Output format, version 1:
//   byte 0        0x01 (format version)
//   bytes 1..12   nonce
//   then          ciphertext (same length as the plaintext)
//   last 16       GCM tag
// so the output is plaintext.size() + kOverhead bytes. Random nonces bound
// the use of one key to about 2^32 messages (NIST SP 800-38D); per-tenant
// data keys stay far below that. The key is wiped on destruction.
// Thread-safe.
class OpenSslAes256Gcm final : public Aead {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  static constexpr uint8_t kVersion = 1;
  static constexpr size_t kOverhead = 1 + kNonceSize + kTagSize;

  // REQUIRES: `key` is 32 bytes (else INVALID_ARGUMENT / KEY_INVALID).
  static absl::StatusOr<std::unique_ptr<OpenSslAes256Gcm>> Create(
      absl::string_view key);

  ~OpenSslAes256Gcm() override;
  OpenSslAes256Gcm(const OpenSslAes256Gcm&) = delete;
  OpenSslAes256Gcm& operator=(const OpenSslAes256Gcm&) = delete;

  absl::StatusOr<std::string> Encrypt(
      absl::string_view plaintext,
      absl::string_view associated_data) const override;
  absl::StatusOr<std::string> Decrypt(
      absl::string_view ciphertext,
      absl::string_view associated_data) const override;

 private:
  OpenSslAes256Gcm(EvpCipherPtr cipher, absl::string_view key);

  const EvpCipherPtr cipher_;
  std::array<unsigned char, kKeySize> key_;
};

}  // namespace careseal::crypto

#endif  // CARESEAL_SERVICES_COMMON_CRYPTO_AEAD_H_
