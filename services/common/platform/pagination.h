// AIP-158 pagination: page sizes (0 -> 50, capped at 1000, negative is
// INVALID_ARGUMENT) and opaque page tokens that carry the position after the
// last item returned plus a digest of the filters they were issued for.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_PAGINATION_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_PAGINATION_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace careseal {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;

absl::StatusOr<int> NormalizePageSize(int page_size);

// Position of a keyset page: the sort key of the last item returned.
struct PageCursor {
  int64_t key = 0;
  std::string tiebreak;
};

// Encodes a token bound to `filter` (any string that captures the request's
// filters); Decode rejects a token issued for other filters
// (INVALID_PAGE_TOKEN). An empty token decodes to nullopt-like `first`.
std::string EncodePageToken(const PageCursor& cursor, absl::string_view filter);
absl::StatusOr<PageCursor> DecodePageToken(absl::string_view token,
                                           absl::string_view filter,
                                           bool* first_page);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_PAGINATION_H_
