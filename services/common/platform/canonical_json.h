// Canonical JSON for everything CareSeal signs or hashes: object keys sorted
// by code point, no insignificant whitespace, UTF-8 strings with minimal
// escaping, integers only (the subset on which this equals RFC 8785 JCS).
// The exact bytes produced are what gets stored and signed; readers verify
// against the stored bytes, never a re-encoding.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_CANONICAL_JSON_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_CANONICAL_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace careseal {

using Json = nlohmann::json;

// INTERNAL (NOT_UTF8) if a string is not valid UTF-8 (inputs are validated
// before they get here, so this is a bug, not bad traffic).
absl::StatusOr<std::string> CanonicalJson(const Json& value);

// A flat canonical JSON object whose members are strings, integers or
// arrays of strings, written straight into bytes without a Json tree (hot
// paths: one audit leaf per call, one receipt per signature). Add members in
// canonical key order; Finish() gives exactly the bytes CanonicalJson()
// gives for the same object, INTERNAL (NOT_UTF8) for a value that is not
// valid UTF-8, INTERNAL (KEY_ORDER) for keys out of order.
class CanonicalStringObject {
 public:
  CanonicalStringObject() { out_.reserve(512); }
  void Add(absl::string_view key, absl::string_view value);
  void AddInt(absl::string_view key, int64_t value);
  void AddStrings(absl::string_view key,
                  const std::vector<std::string>& values);
  absl::StatusOr<std::string> Finish() &&;

 private:
  void Key(absl::string_view key);

  std::string out_ = "{";
  std::string last_key_;
  bool bad_utf8_ = false;
  bool bad_order_ = false;
};

// RFC 3339 UTC with microseconds: "2026-01-01T09:30:00.000000Z".
std::string Rfc3339(absl::Time t);

// Microseconds since the Unix epoch (how times are stored).
inline int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
inline absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_CANONICAL_JSON_H_
