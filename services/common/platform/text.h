// Validation of text fields, per the contract's conventions (common.proto):
// strings are UTF-8; single-line fields reject all control characters and
// Unicode bidi overrides/isolates; multi-line fields allow only \n and \t
// among controls; limits count code points unless said to be bytes.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_TEXT_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_TEXT_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace careseal {

// Number of code points, or -1 if `s` is not valid UTF-8.
long CodePoints(absl::string_view s);

// INVALID_ARGUMENT naming `field` (FIELD_REQUIRED if empty and min > 0,
// FIELD_TOO_LONG, INVALID_CHARACTERS) or OK.
absl::Status CheckSingleLine(absl::string_view field, absl::string_view value,
                             size_t min_code_points, size_t max_code_points);
absl::Status CheckMultiLine(absl::string_view field, absl::string_view value,
                            size_t min_bytes, size_t max_bytes);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_TEXT_H_
