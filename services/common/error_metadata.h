// google.rpc.ErrorInfo.metadata on a CareSeal error (AIP-193): key/value
// pairs a client may act on, e.g. "attempts_remaining" on
// SECOND_FACTOR_MISMATCH. Carried as absl::Status payloads until the gRPC
// edge (status_convert.cc) copies them into the ErrorInfo. Header-only, no
// gRPC.
#ifndef CARESEAL_SERVICES_COMMON_ERROR_METADATA_H_
#define CARESEAL_SERVICES_COMMON_ERROR_METADATA_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace careseal {

// Payload type URLs of metadata entries start with this; the key follows.
inline constexpr absl::string_view kErrorMetadataUrlPrefix =
    "type.careseal.local/metadata/";

// `status` with ErrorInfo metadata `key` = `value` (no effect on OK).
inline absl::Status WithErrorMetadata(absl::Status status,
                                      absl::string_view key,
                                      absl::string_view value) {
  if (!status.ok()) {
    status.SetPayload(absl::StrCat(kErrorMetadataUrlPrefix, key),
                      absl::Cord(value));
  }
  return status;
}

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_ERROR_METADATA_H_
