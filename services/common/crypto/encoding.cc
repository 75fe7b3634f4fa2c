#include "services/common/crypto/encoding.h"

#include <array>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "services/common/status.h"

namespace careseal::crypto {
namespace {

constexpr absl::string_view kStdAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr absl::string_view kUrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

using ReverseTable = std::array<int8_t, 256>;

constexpr ReverseTable MakeReverse(absl::string_view alphabet) {
  ReverseTable table{};
  for (auto& entry : table) entry = -1;
  for (size_t i = 0; i < alphabet.size(); ++i) {
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  }
  return table;
}

constexpr ReverseTable kStdReverse = MakeReverse(kStdAlphabet);
constexpr ReverseTable kUrlReverse = MakeReverse(kUrlAlphabet);

absl::Status MalformedBase64(absl::string_view what, size_t offset) {
  return Error(absl::StatusCode::kInvalidArgument, kReasonMalformedBase64,
               absl::StrCat("malformed base64: ", what, " at offset ", offset));
}

// Decodes `encoded` with `table`. With `padded`, the length must be a
// multiple of 4 and a short final group is completed by '='; without, '=' is
// never allowed and the final group is simply short.
absl::StatusOr<std::string> DecodeBase64(absl::string_view encoded,
                                         const ReverseTable& table,
                                         bool padded) {
  size_t data_len = encoded.size();
  if (padded) {
    if (encoded.size() % 4 != 0) {
      return MalformedBase64("length is not a multiple of 4", encoded.size());
    }
    size_t pad = 0;
    while (pad < 2 && data_len > 0 && encoded[data_len - 1] == '=') {
      --data_len;
      ++pad;
    }
  }
  if (data_len % 4 == 1) {
    return MalformedBase64("truncated final group", data_len);
  }

  std::string out;
  out.reserve(data_len / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < data_len; ++i) {
    const int8_t value = table[static_cast<unsigned char>(encoded[i])];
    if (value < 0) return MalformedBase64("invalid character", i);
    acc = (acc << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits (2 or 4) must be zero: otherwise two strings would decode
  // to the same bytes.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return MalformedBase64("non-zero trailing bits", data_len - 1);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string Base64Encode(absl::string_view data) {
  return absl::Base64Escape(data);
}

absl::StatusOr<std::string> Base64Decode(absl::string_view encoded) {
  return DecodeBase64(encoded, kStdReverse, /*padded=*/true);
}

std::string Base64UrlEncode(absl::string_view data) {
  return absl::WebSafeBase64Escape(data);
}

absl::StatusOr<std::string> Base64UrlDecode(absl::string_view encoded) {
  return DecodeBase64(encoded, kUrlReverse, /*padded=*/false);
}

std::string HexEncode(absl::string_view data) {
  return absl::BytesToHexString(data);
}

absl::StatusOr<std::string> HexDecode(absl::string_view hex) {
  if (hex.size() % 2 != 0) {
    return Error(absl::StatusCode::kInvalidArgument, kReasonMalformedHex,
                 absl::StrCat("malformed hex: odd length ", hex.size()));
  }
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexValue(hex[i]);
    const int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return Error(absl::StatusCode::kInvalidArgument, kReasonMalformedHex,
                   absl::StrCat("malformed hex: invalid character at offset ",
                                hi < 0 ? i : i + 1));
    }
    out[i / 2] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

}  // namespace careseal::crypto
