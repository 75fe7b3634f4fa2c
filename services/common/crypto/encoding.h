// Binary-to-text encodings (RFC 4648). Encoders never fail; decoders are
// strict and accept exactly the strings the matching encoder produces (up to
// hex letter case), so every byte string has one textual form: no whitespace,
// no missing or extra padding, no characters from the other base64 alphabet,
// and no non-zero bits in the unused low bits of the last character.
// All functions are thread-safe.
#ifndef CARESEAL_SERVICES_COMMON_CRYPTO_ENCODING_H_
#define CARESEAL_SERVICES_COMMON_CRYPTO_ENCODING_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace careseal::crypto {

// Reasons of INVALID_ARGUMENT errors from the decoders. Messages name the
// offset of the fault but never echo the input (it may be secret).
inline constexpr absl::string_view kReasonMalformedBase64 = "MALFORMED_BASE64";
inline constexpr absl::string_view kReasonMalformedHex = "MALFORMED_HEX";

// Standard alphabet (A-Z a-z 0-9 + /) with '=' padding (RFC 4648 section 4).
std::string Base64Encode(absl::string_view data);
absl::StatusOr<std::string> Base64Decode(absl::string_view encoded);

// URL and filename safe alphabet (A-Z a-z 0-9 - _) without padding (RFC 4648
// section 5, as in JWS). The decoder rejects '='.
std::string Base64UrlEncode(absl::string_view data);
absl::StatusOr<std::string> Base64UrlDecode(absl::string_view encoded);

// Lowercase hex. The decoder accepts either case but needs an even length.
std::string HexEncode(absl::string_view data);
absl::StatusOr<std::string> HexDecode(absl::string_view hex);

}  // namespace careseal::crypto

#endif  // CARESEAL_SERVICES_COMMON_CRYPTO_ENCODING_H_
