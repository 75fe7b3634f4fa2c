#include "services/common/platform/text.h"

#include <cstdint>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/status.h"

namespace careseal {
namespace {

// Decodes UTF-8 strictly (no overlongs, no surrogates, <= U+10FFFF).
bool Decode(absl::string_view s, std::vector<uint32_t>* out) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    int extra;
    if (c < 0x80) {
      cp = c;
      extra = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      cp = c & 0x1F;
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      cp = c & 0x0F;
      extra = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
      cp = c & 0x07;
      extra = 3;
    } else {
      return false;
    }
    for (int k = 1; k <= extra; ++k) {
      if (i + k >= s.size()) return false;
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    if (out) out->push_back(cp);
    i += extra + 1;
  }
  return true;
}

bool IsBidiControl(uint32_t cp) {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
         cp == 0x200E || cp == 0x200F || cp == 0x061C;
}

bool IsControl(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 ||
         cp == 0x2029;
}

absl::Status BadCharacters(absl::string_view field) {
  return InvalidField(
      field, "INVALID_CHARACTERS",
      absl::StrCat(field,
                   " contains control or bidirectional-override characters "
                   "or is not valid UTF-8"));
}

}  // namespace

long CodePoints(absl::string_view s) {
  std::vector<uint32_t> cps;
  if (!Decode(s, &cps)) return -1;
  return static_cast<long>(cps.size());
}

absl::Status CheckSingleLine(absl::string_view field, absl::string_view value,
                             size_t min_code_points, size_t max_code_points) {
  std::vector<uint32_t> cps;
  if (!Decode(value, &cps)) return BadCharacters(field);
  if (min_code_points > 0 && absl::StripAsciiWhitespace(value).empty()) {
    return InvalidField(field, "FIELD_REQUIRED",
                        absl::StrCat(field, " is required"));
  }
  if (cps.size() < min_code_points) {
    return InvalidField(field, "FIELD_TOO_SHORT",
                        absl::StrCat(field, " needs at least ", min_code_points,
                                     " characters"));
  }
  if (cps.size() > max_code_points) {
    return InvalidField(
        field, "FIELD_TOO_LONG",
        absl::StrCat(field, " is limited to ", max_code_points, " characters"));
  }
  for (uint32_t cp : cps) {
    if (IsControl(cp) || IsBidiControl(cp)) return BadCharacters(field);
  }
  return absl::OkStatus();
}

absl::Status CheckMultiLine(absl::string_view field, absl::string_view value,
                            size_t min_bytes, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return InvalidField(
        field, "FIELD_TOO_LONG",
        absl::StrCat(field, " is limited to ", max_bytes, " bytes"));
  }
  if (min_bytes > 0 && absl::StripAsciiWhitespace(value).empty()) {
    return InvalidField(field, "FIELD_REQUIRED",
                        absl::StrCat(field, " is required"));
  }
  std::vector<uint32_t> cps;
  if (!Decode(value, &cps)) return BadCharacters(field);
  for (uint32_t cp : cps) {
    if (cp == '\n' || cp == '\t') continue;
    if (IsControl(cp) || IsBidiControl(cp)) return BadCharacters(field);
  }
  return absl::OkStatus();
}

}  // namespace careseal
