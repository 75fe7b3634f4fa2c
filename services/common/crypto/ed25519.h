// Digital signatures: the Signer / Verifier interfaces and their Ed25519
// (RFC 8032, pure Ed25519) implementations on OpenSSL.
//
// Key ids: every Ed25519 key is named "ed25519-" followed by the first 16
// lowercase hex characters (64 bits) of SHA-256 over the raw 32-byte public
// key, e.g. "ed25519-21fe31dfa154a261". The id is a pure function of the
// public key, so it is stable across restarts, PEM round trips and machines.
#ifndef CARESEAL_SERVICES_COMMON_CRYPTO_ED25519_H_
#define CARESEAL_SERVICES_COMMON_CRYPTO_ED25519_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/common/crypto/errors.h"
#include "services/common/crypto/openssl_util.h"

namespace careseal::crypto {

// Reason of every verification failure (wrong key, altered data or
// signature, malformed signature); code INVALID_ARGUMENT.
inline constexpr absl::string_view kReasonSignatureInvalid =
    "SIGNATURE_INVALID";

inline constexpr size_t kEd25519PublicKeySize = 32;
inline constexpr size_t kEd25519PrivateKeySize = 32;  // The RFC 8032 seed.
inline constexpr size_t kEd25519SignatureSize = 64;

// Produces signatures over byte strings. Implementations are immutable after
// creation and thread-safe.
class Signer {
 public:
  virtual ~Signer() = default;
  // Returns the signature of `data`. Fails only if the crypto library fails.
  virtual absl::StatusOr<std::string> Sign(absl::string_view data) const = 0;
  // Names the key, so verifiers can pick the matching public key.
  virtual const std::string& key_id() const = 0;
};

// Checks signatures. Implementations are immutable and thread-safe.
class Verifier {
 public:
  virtual ~Verifier() = default;
  // OK iff `signature` is a valid signature of exactly `data` under this
  // verifier's key; otherwise INVALID_ARGUMENT / SIGNATURE_INVALID.
  virtual absl::Status Verify(absl::string_view signature,
                              absl::string_view data) const = 0;
};

// "ed25519-" + first 16 hex chars of SHA-256(public_key_raw); see above.
std::string Ed25519KeyId(absl::string_view public_key_raw);

// The SubjectPublicKeyInfo PEM of a raw 32-byte Ed25519 public key, as
// published for offline verifiers. INVALID_ARGUMENT / KEY_INVALID if `raw` is
// not 32 bytes.
absl::StatusOr<std::string> Ed25519PublicKeyPem(absl::string_view raw);

// Ed25519 signer holding one private key. Signatures are deterministic
// (RFC 8032): the same key and data always give the same 64 bytes.
// Thread-safe: Sign() may be called concurrently; each call borrows a pooled
// EVP_MD_CTX so steady-state signing does not allocate a context.
class OpenSslEd25519Signer final : public Signer {
 public:
  // From a PKCS#8 PEM private key ("-----BEGIN PRIVATE KEY-----", as written
  // by private_key_pem() or `openssl genpkey -algorithm ed25519`). Encrypted
  // PEM is rejected (never prompts). INVALID_ARGUMENT / KEY_INVALID on bad
  // input.
  static absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>> Create(
      absl::string_view private_key_pem);
  // From the raw 32-byte RFC 8032 private key (seed). For fixed test keys and
  // key import.
  static absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>>
  CreateFromRawPrivateKey(absl::string_view private_key_raw);
  // A fresh key from the system CSPRNG.
  static absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>> Generate();

  OpenSslEd25519Signer(const OpenSslEd25519Signer&) = delete;
  OpenSslEd25519Signer& operator=(const OpenSslEd25519Signer&) = delete;

  // Returns the 64-byte signature.
  absl::StatusOr<std::string> Sign(absl::string_view data) const override;
  const std::string& key_id() const override { return key_id_; }

  // The 32-byte raw public key.
  const std::string& public_key_raw() const { return public_key_raw_; }
  // The public key as SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----").
  const std::string& public_key_pem() const { return public_key_pem_; }
  // The private key as unencrypted PKCS#8 PEM, for writing a key file with
  // mode 0600. Secret: never log it; wipe it after use.
  absl::StatusOr<std::string> private_key_pem() const;

 private:
  static absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>> FromKey(
      EvpPkeyPtr key);
  OpenSslEd25519Signer(EvpPkeyPtr key, std::string public_key_raw,
                       std::string public_key_pem);

  const EvpPkeyPtr key_;
  const std::string public_key_raw_;
  const std::string public_key_pem_;
  const std::string key_id_;
  mutable EvpMdCtxPool contexts_;
};

// Ed25519 verifier for one public key. Thread-safe: Verify() may be called
// concurrently and reuses pooled contexts.
class OpenSslEd25519Verifier final : public Verifier {
 public:
  // From the raw 32-byte public key. INVALID_ARGUMENT / KEY_INVALID if it is
  // not 32 bytes. (A 32-byte string that is not a curve point is accepted
  // here and then fails every Verify().)
  static absl::StatusOr<std::unique_ptr<OpenSslEd25519Verifier>> Create(
      absl::string_view public_key_raw);
  // From a SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----") holding an
  // Ed25519 key.
  static absl::StatusOr<std::unique_ptr<OpenSslEd25519Verifier>> CreateFromPem(
      absl::string_view public_key_pem);

  OpenSslEd25519Verifier(const OpenSslEd25519Verifier&) = delete;
  OpenSslEd25519Verifier& operator=(const OpenSslEd25519Verifier&) = delete;

  // INVALID_ARGUMENT / SIGNATURE_INVALID if `signature` is not 64 bytes or
  // does not verify over `data`.
  absl::Status Verify(absl::string_view signature,
                      absl::string_view data) const override;

  const std::string& key_id() const { return key_id_; }
  const std::string& public_key_raw() const { return public_key_raw_; }

 private:
  static absl::StatusOr<std::unique_ptr<OpenSslEd25519Verifier>> FromKey(
      EvpPkeyPtr key);
  OpenSslEd25519Verifier(EvpPkeyPtr key, std::string public_key_raw);

  const EvpPkeyPtr key_;
  const std::string public_key_raw_;
  const std::string key_id_;
  mutable EvpMdCtxPool contexts_;
};

}  // namespace careseal::crypto

#endif  // CARESEAL_SERVICES_COMMON_CRYPTO_ED25519_H_
