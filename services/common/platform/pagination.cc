#include "services/common/platform/pagination.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/status.h"

namespace careseal {
namespace {

std::string FilterDigest(absl::string_view filter) {
  return crypto::HexEncode(crypto::Sha256(filter)).substr(0, 16);
}

absl::Status BadToken() {
  return InvalidField("page_token", "INVALID_PAGE_TOKEN",
                      "page_token is not one this server issued for these "
                      "filters; start again without it");
}

}  // namespace

absl::StatusOr<int> NormalizePageSize(int page_size) {
  if (page_size < 0) {
    return InvalidField("page_size", "INVALID_PAGE_SIZE",
                        "page_size must not be negative");
  }
  if (page_size == 0) return kDefaultPageSize;
  return page_size > kMaxPageSize ? kMaxPageSize : page_size;
}

std::string EncodePageToken(const PageCursor& cursor,
                            absl::string_view filter) {
  return crypto::Base64UrlEncode(absl::StrCat(
      "v1|", FilterDigest(filter), "|", cursor.key, "|", cursor.tiebreak));
}

absl::StatusOr<PageCursor> DecodePageToken(absl::string_view token,
                                           absl::string_view filter,
                                           bool* first_page) {
  *first_page = token.empty();
  if (token.empty()) return PageCursor{};
  auto raw = crypto::Base64UrlDecode(token);
  if (!raw.ok()) return BadToken();
  std::vector<std::string> parts =
      absl::StrSplit(*raw, absl::MaxSplits('|', 3));
  PageCursor cursor;
  if (parts.size() != 4 || parts[0] != "v1" ||
      parts[1] != FilterDigest(filter) ||
      !absl::SimpleAtoi(parts[2], &cursor.key)) {
    return BadToken();
  }
  cursor.tiebreak = parts[3];
  return cursor;
}

}  // namespace careseal
