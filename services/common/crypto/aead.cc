#include "services/common/crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <climits>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/crypto/random.h"
#include "services/common/status.h"

namespace careseal::crypto {
namespace {

// Lengths pass through OpenSSL as int; stay well clear of the edge.
constexpr size_t kMaxInput = static_cast<size_t>(INT_MAX) - 1024;

unsigned char* Bytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}
const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

absl::Status DecryptionFailed(absl::string_view why) {
  return Error(absl::StatusCode::kInvalidArgument, kReasonDecryptionFailed,
               absl::StrCat("AES-256-GCM decryption failed: ", why));
}

}  // namespace

absl::StatusOr<std::unique_ptr<OpenSslAes256Gcm>> OpenSslAes256Gcm::Create(
    absl::string_view key) {
  if (key.size() != kKeySize) {
    return Error(absl::StatusCode::kInvalidArgument, kReasonKeyInvalid,
                 absl::StrCat("an AES-256-GCM key is ", kKeySize,
                              " bytes, got ", key.size()));
  }
  EvpCipherPtr cipher(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
  if (cipher == nullptr) return OpenSslFailure("EVP_CIPHER_fetch AES-256-GCM");
  return std::unique_ptr<OpenSslAes256Gcm>(
      new OpenSslAes256Gcm(std::move(cipher), key));
}

OpenSslAes256Gcm::OpenSslAes256Gcm(EvpCipherPtr cipher, absl::string_view key)
    : cipher_(std::move(cipher)) {
  std::memcpy(key_.data(), key.data(), kKeySize);
}

OpenSslAes256Gcm::~OpenSslAes256Gcm() {
  OPENSSL_cleanse(key_.data(), key_.size());
}

absl::StatusOr<std::string> OpenSslAes256Gcm::Encrypt(
    absl::string_view plaintext, absl::string_view associated_data) const {
  if (plaintext.size() > kMaxInput || associated_data.size() > kMaxInput) {
    return Error(absl::StatusCode::kInvalidArgument, kReasonInputTooLarge,
                 "AES-256-GCM input exceeds 2 GiB");
  }
  std::string out(kOverhead + plaintext.size(), '\0');
  out[0] = static_cast<char>(kVersion);
  unsigned char* nonce = Bytes(out) + 1;
  unsigned char* body = nonce + kNonceSize;
  unsigned char* tag = body + plaintext.size();
  FillRandom(nonce, kNonceSize);

  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr || EVP_EncryptInit_ex2(ctx.get(), cipher_.get(),
                                            key_.data(), nonce, nullptr) != 1) {
    return OpenSslFailure("EVP_EncryptInit_ex2 (AES-256-GCM)");
  }
  int len = 0;
  if (!associated_data.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1) {
    return OpenSslFailure("EVP_EncryptUpdate (associated data)");
  }
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), body, &len, Bytes(plaintext),
                          static_cast<int>(plaintext.size())) != 1 ||
        static_cast<size_t>(len) != plaintext.size()) {
      return OpenSslFailure("EVP_EncryptUpdate (plaintext)");
    }
  }
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), tag, &final_len) != 1 || final_len != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kTagSize, tag) !=
          1) {
    return OpenSslFailure("EVP_EncryptFinal_ex (AES-256-GCM)");
  }
  return out;
}

absl::StatusOr<std::string> OpenSslAes256Gcm::Decrypt(
    absl::string_view ciphertext, absl::string_view associated_data) const {
  if (ciphertext.size() < kOverhead) {
    return DecryptionFailed("ciphertext is too short");
  }
  if (static_cast<uint8_t>(ciphertext[0]) != kVersion) {
    return DecryptionFailed("unknown ciphertext version");
  }
  if (ciphertext.size() > kMaxInput || associated_data.size() > kMaxInput) {
    return DecryptionFailed("input exceeds 2 GiB");
  }
  const unsigned char* nonce = Bytes(ciphertext) + 1;
  const unsigned char* body = nonce + kNonceSize;
  const size_t body_size = ciphertext.size() - kOverhead;
  unsigned char tag[kTagSize];
  std::memcpy(tag, body + body_size, kTagSize);

  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr || EVP_DecryptInit_ex2(ctx.get(), cipher_.get(),
                                            key_.data(), nonce, nullptr) != 1) {
    return OpenSslFailure("EVP_DecryptInit_ex2 (AES-256-GCM)");
  }
  int len = 0;
  if (!associated_data.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1) {
    return OpenSslFailure("EVP_DecryptUpdate (associated data)");
  }
  std::string plaintext(body_size, '\0');
  if (body_size > 0 &&
      (EVP_DecryptUpdate(ctx.get(), Bytes(plaintext), &len, body,
                         static_cast<int>(body_size)) != 1 ||
       static_cast<size_t>(len) != body_size)) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return OpenSslFailure("EVP_DecryptUpdate (ciphertext)");
  }
  int final_len = 0;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kTagSize, tag) !=
          1 ||
      EVP_DecryptFinal_ex(ctx.get(), Bytes(plaintext) + body_size,
                          &final_len) != 1) {
    // Unauthenticated plaintext must not escape, not even in freed memory.
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    ERR_clear_error();
    return DecryptionFailed("authentication failed");
  }
  return plaintext;
}

}  // namespace careseal::crypto
