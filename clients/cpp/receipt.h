// Consent receipts, offline. A receipt file is what `careseal consent show
// --receipt-out` writes and what anyone can check years later with only the
// clinic's published public key, without CareSeal:
//
//   receipt file  (careseal.consent-receipt-file.v1): canonical JSON + "\n"
//     {"algorithm":"Ed25519","file_format":"careseal.consent-receipt-file.v1",
//      "key_id":"ed25519-…","payload":"<payload text>","signature":"<base64>"}
//   payload       (careseal.consent-receipt.v1): canonical JSON, the exact
//     bytes the server signed with Ed25519 (see docs/RECEIPTS.md).
//
// Canonical JSON here: object keys sorted, no insignificant whitespace,
// UTF-8, integers only. A receipt file that is not in that exact form is
// rejected, so any single-byte change to a receipt fails verification.
//
// This verifier deliberately shares no code with the server's signer.
#ifndef CARESEAL_CLIENTS_CPP_RECEIPT_H_
#define CARESEAL_CLIENTS_CPP_RECEIPT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "careseal/v1/consent.pb.h"

namespace careseal::client {

inline constexpr absl::string_view kReceiptFileFormat =
    "careseal.consent-receipt-file.v1";
inline constexpr absl::string_view kReceiptPayloadFormat =
    "careseal.consent-receipt.v1";

// The facts a verified receipt attests (all read from the signed payload).
struct VerifiedReceipt {
  std::string key_id;
  std::string consent;
  std::string tenant;
  std::string patient;
  std::string template_version;
  std::string procedure_code;
  std::string document_sha256_hex;
  std::vector<std::string> acknowledged_ids;
  std::string printed_name;
  std::string signature_meaning;
  std::string signing_method;
  std::string sign_time;  // RFC 3339 UTC
  std::string drawn_signature_sha256_hex;
  int64_t audit_leaf_index = 0;
};

// Writes the receipt file text for a receipt returned by the server.
absl::StatusOr<std::string> EncodeReceiptFile(
    const careseal::v1::ConsentReceipt& receipt);

// Key id of a raw 32-byte Ed25519 public key: "ed25519-" followed by the
// first 16 hex digits of its SHA-256.
std::string Ed25519KeyId(absl::string_view raw_public_key);

// Verifies a receipt file against a public key given as PEM
// (SubjectPublicKeyInfo) or as 32 raw bytes. Failures are INVALID_ARGUMENT
// whose ErrorReason() says why: MALFORMED_RECEIPT, NOT_CANONICAL,
// UNSUPPORTED_FORMAT, UNSUPPORTED_ALGORITHM, BAD_PUBLIC_KEY, KEY_ID_MISMATCH,
// SIGNATURE_INVALID, PAYLOAD_INVALID.
absl::StatusOr<VerifiedReceipt> VerifyReceiptFile(absl::string_view file_text,
                                                  absl::string_view public_key);

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_RECEIPT_H_
