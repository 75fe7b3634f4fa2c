// SHA-256 and constant-time comparison.
#ifndef CARESEAL_SERVICES_COMMON_CRYPTO_SHA256_H_
#define CARESEAL_SERVICES_COMMON_CRYPTO_SHA256_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace careseal::crypto {

inline constexpr size_t kSha256Size = 32;

// The 32-byte (raw, not hex) SHA-256 digest of `data`. Thread-safe. Aborts
// only if OpenSSL cannot hash at all (a broken installation).
std::string Sha256(absl::string_view data);

// True iff `a` and `b` hold the same bytes. The time taken depends on the
// lengths but not on the contents, so use it to compare MACs, tokens and
// other secrets of public length.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace careseal::crypto

#endif  // CARESEAL_SERVICES_COMMON_CRYPTO_SHA256_H_
