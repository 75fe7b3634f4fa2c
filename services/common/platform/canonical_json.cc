#include "services/common/platform/canonical_json.h"

#include "services/common/status.h"

namespace careseal {

absl::StatusOr<std::string> CanonicalJson(const Json& value) {
  try {
    return value.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception&) {
    return Internal("NOT_UTF8", "a value to be signed is not valid UTF-8");
  }
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

}  // namespace careseal
