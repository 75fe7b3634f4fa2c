// Error reasons shared by the crypto primitives (see services/common/status.h
// for how errors are built). Reasons specific to one primitive live in its
// header: kReasonSignatureInvalid (ed25519.h), kReasonDecryptionFailed
// (aead.h), kReasonMalformedBase64 / kReasonMalformedHex (encoding.h),
// kReasonUnknownKeyId and friends (key_ring.h).
#ifndef CARESEAL_SERVICES_COMMON_CRYPTO_ERRORS_H_
#define CARESEAL_SERVICES_COMMON_CRYPTO_ERRORS_H_

#include "absl/strings/string_view.h"

namespace careseal::crypto {

// INVALID_ARGUMENT: unusable key material (wrong size, unparsable or
// encrypted PEM, a key of another algorithm).
inline constexpr absl::string_view kReasonKeyInvalid = "KEY_INVALID";
// INVALID_ARGUMENT: an input too large for the primitive (over 2 GiB).
inline constexpr absl::string_view kReasonInputTooLarge = "INPUT_TOO_LARGE";
// INTERNAL: OpenSSL itself failed (allocation, a missing algorithm); never
// caused by the caller's input. The message carries OpenSSL's error queue.
inline constexpr absl::string_view kReasonOpenSslFailure = "OPENSSL_FAILURE";

}  // namespace careseal::crypto

#endif  // CARESEAL_SERVICES_COMMON_CRYPTO_ERRORS_H_
