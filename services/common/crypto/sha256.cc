#include "services/common/crypto/sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

#include "services/common/crypto/openssl_util.h"

namespace careseal::crypto {
namespace {

// Fetched once: EVP_sha256() would repeat the provider lookup on every call.
// Never freed, so it stays valid during static destruction.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) {
      std::fprintf(stderr, "careseal: SHA-256 unavailable: %s\n",
                   OpenSslErrorString().c_str());
      std::abort();
    }
    return fetched;
  }();
  return md;
}

}  // namespace

std::string Sha256(absl::string_view data) {
  std::string digest(kSha256Size, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(),
                 reinterpret_cast<unsigned char*>(digest.data()), &len,
                 Sha256Md(), nullptr) != 1 ||
      len != kSha256Size) {
    std::fprintf(stderr, "careseal: SHA-256 failed: %s\n",
                 OpenSslErrorString().c_str());
    std::abort();
  }
  return digest;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace careseal::crypto
