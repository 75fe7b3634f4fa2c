#include "services/common/crypto/ed25519.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/status.h"

namespace careseal::crypto {
namespace {

constexpr absl::string_view kKeyIdPrefix = "ed25519-";
constexpr size_t kKeyIdHexChars = 16;

// OpenSSL wants a non-null pointer even for empty input.
const unsigned char* DataPtr(absl::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

// Refuses to decrypt encrypted PEM (and so never prompts on a terminal).
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

absl::Status KeyInvalid(absl::string_view message) {
  return Error(absl::StatusCode::kInvalidArgument, kReasonKeyInvalid, message);
}

absl::Status KeyInvalidWithOpenSslDetail(absl::string_view message) {
  return KeyInvalid(absl::StrCat(message, ": ", OpenSslErrorString()));
}

absl::Status RequireEd25519(const EVP_PKEY* key) {
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    return KeyInvalid(absl::StrCat("expected an Ed25519 key, got ",
                                   OBJ_nid2sn(EVP_PKEY_get_id(key))));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RawPublicKey(const EVP_PKEY* key) {
  std::string raw(kEd25519PublicKeySize, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(
          key, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 ||
      len != kEd25519PublicKeySize) {
    return OpenSslFailure("EVP_PKEY_get_raw_public_key");
  }
  return raw;
}

absl::StatusOr<std::string> PublicKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return OpenSslFailure("PEM_write_bio_PUBKEY");
  }
  return MemBioContents(bio.get());
}

}  // namespace

std::string Ed25519KeyId(absl::string_view public_key_raw) {
  return absl::StrCat(
      kKeyIdPrefix,
      HexEncode(Sha256(public_key_raw)).substr(0, kKeyIdHexChars));
}

// ---------------------------------------------------------------- Signer

OpenSslEd25519Signer::OpenSslEd25519Signer(EvpPkeyPtr key,
                                           std::string public_key_raw,
                                           std::string public_key_pem)
    : key_(std::move(key)),
      public_key_raw_(std::move(public_key_raw)),
      public_key_pem_(std::move(public_key_pem)),
      key_id_(Ed25519KeyId(public_key_raw_)) {}

absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>>
OpenSslEd25519Signer::FromKey(EvpPkeyPtr key) {
  absl::Status type = RequireEd25519(key.get());
  if (!type.ok()) return type;
  absl::StatusOr<std::string> raw = RawPublicKey(key.get());
  if (!raw.ok()) return raw.status();
  absl::StatusOr<std::string> pem = PublicKeyPem(key.get());
  if (!pem.ok()) return pem.status();
  return std::unique_ptr<OpenSslEd25519Signer>(new OpenSslEd25519Signer(
      std::move(key), *std::move(raw), *std::move(pem)));
}

absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>>
OpenSslEd25519Signer::Create(absl::string_view private_key_pem) {
  BioPtr bio = NewReadOnlyMemBio(private_key_pem);
  if (bio == nullptr) return KeyInvalid("private key PEM is too large");
  EvpPkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return KeyInvalidWithOpenSslDetail(
        "cannot read an unencrypted PKCS#8 PEM private key");
  }
  return FromKey(std::move(key));
}

absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>>
OpenSslEd25519Signer::CreateFromRawPrivateKey(
    absl::string_view private_key_raw) {
  if (private_key_raw.size() != kEd25519PrivateKeySize) {
    return KeyInvalid(absl::StrCat("an Ed25519 private key is ",
                                   kEd25519PrivateKeySize, " bytes, got ",
                                   private_key_raw.size()));
  }
  EvpPkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                              DataPtr(private_key_raw),
                                              private_key_raw.size()));
  if (key == nullptr) {
    return KeyInvalidWithOpenSslDetail("cannot load raw Ed25519 private key");
  }
  return FromKey(std::move(key));
}

absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>>
OpenSslEd25519Signer::Generate() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (key == nullptr) return OpenSslFailure("Ed25519 key generation");
  return FromKey(std::move(key));
}

absl::StatusOr<std::string> OpenSslEd25519Signer::Sign(
    absl::string_view data) const {
  EvpMdCtxPool::Lease ctx = contexts_.Acquire();
  if (ctx.get() == nullptr) return OpenSslFailure("EVP_MD_CTX_new");
  // Re-initialising a used context is cheaper than a fresh one, and unlike
  // calling EVP_DigestSign twice after one init it is supported by every
  // OpenSSL 3 release (newer ones mark the context finalised).
  if (EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr,
                            key_.get(), nullptr) != 1) {
    ctx.Discard();
    return OpenSslFailure("EVP_DigestSignInit_ex (Ed25519)");
  }
  std::string signature(kEd25519SignatureSize, '\0');
  size_t len = signature.size();
  if (EVP_DigestSign(ctx.get(),
                     reinterpret_cast<unsigned char*>(signature.data()), &len,
                     DataPtr(data), data.size()) != 1 ||
      len != kEd25519SignatureSize) {
    ctx.Discard();
    return OpenSslFailure("EVP_DigestSign (Ed25519)");
  }
  return signature;
}

absl::StatusOr<std::string> OpenSslEd25519Signer::private_key_pem() const {
  // A secure-memory BIO wipes its buffer when freed.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    return OpenSslFailure("PEM_write_bio_PrivateKey");
  }
  return MemBioContents(bio.get());
}

// -------------------------------------------------------------- Verifier

OpenSslEd25519Verifier::OpenSslEd25519Verifier(EvpPkeyPtr key,
                                               std::string public_key_raw)
    : key_(std::move(key)),
      public_key_raw_(std::move(public_key_raw)),
      key_id_(Ed25519KeyId(public_key_raw_)) {}

absl::StatusOr<std::unique_ptr<OpenSslEd25519Verifier>>
OpenSslEd25519Verifier::FromKey(EvpPkeyPtr key) {
  absl::Status type = RequireEd25519(key.get());
  if (!type.ok()) return type;
  absl::StatusOr<std::string> raw = RawPublicKey(key.get());
  if (!raw.ok()) return raw.status();
  return std::unique_ptr<OpenSslEd25519Verifier>(
      new OpenSslEd25519Verifier(std::move(key), *std::move(raw)));
}

absl::StatusOr<std::string> Ed25519PublicKeyPem(absl::string_view raw) {
  if (raw.size() != kEd25519PublicKeySize) {
    return KeyInvalid(absl::StrCat("an Ed25519 public key is ",
                                   kEd25519PublicKeySize, " bytes, got ",
                                   raw.size()));
  }
  EvpPkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                             DataPtr(raw), raw.size()));
  if (key == nullptr) {
    return KeyInvalidWithOpenSslDetail("cannot load raw Ed25519 public key");
  }
  return PublicKeyPem(key.get());
}

absl::StatusOr<std::unique_ptr<OpenSslEd25519Verifier>>
OpenSslEd25519Verifier::Create(absl::string_view public_key_raw) {
  if (public_key_raw.size() != kEd25519PublicKeySize) {
    return KeyInvalid(absl::StrCat("an Ed25519 public key is ",
                                   kEd25519PublicKeySize, " bytes, got ",
                                   public_key_raw.size()));
  }
  EvpPkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                             DataPtr(public_key_raw),
                                             public_key_raw.size()));
  if (key == nullptr) {
    return KeyInvalidWithOpenSslDetail("cannot load raw Ed25519 public key");
  }
  return FromKey(std::move(key));
}

absl::StatusOr<std::unique_ptr<OpenSslEd25519Verifier>>
OpenSslEd25519Verifier::CreateFromPem(absl::string_view public_key_pem) {
  BioPtr bio = NewReadOnlyMemBio(public_key_pem);
  if (bio == nullptr) return KeyInvalid("public key PEM is too large");
  EvpPkeyPtr key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return KeyInvalidWithOpenSslDetail("cannot read a PEM public key");
  }
  return FromKey(std::move(key));
}

absl::Status OpenSslEd25519Verifier::Verify(absl::string_view signature,
                                            absl::string_view data) const {
  if (signature.size() != kEd25519SignatureSize) {
    return Error(absl::StatusCode::kInvalidArgument, kReasonSignatureInvalid,
                 absl::StrCat("an Ed25519 signature is ", kEd25519SignatureSize,
                              " bytes, got ", signature.size()));
  }
  EvpMdCtxPool::Lease ctx = contexts_.Acquire();
  if (ctx.get() == nullptr) return OpenSslFailure("EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr,
                              key_.get(), nullptr) != 1) {
    ctx.Discard();
    return OpenSslFailure("EVP_DigestVerifyInit_ex (Ed25519)");
  }
  const int rc = EVP_DigestVerify(ctx.get(), DataPtr(signature),
                                  signature.size(), DataPtr(data), data.size());
  if (rc == 1) return absl::OkStatus();
  // 0 is a well-formed "no". Anything else is an error from OpenSSL itself;
  // either way the signature is not accepted. Leave no error queue behind.
  ERR_clear_error();
  if (rc != 0) ctx.Discard();
  return Error(
      absl::StatusCode::kInvalidArgument, kReasonSignatureInvalid,
      absl::StrCat("Ed25519 signature does not verify under key ", key_id_));
}

}  // namespace careseal::crypto
