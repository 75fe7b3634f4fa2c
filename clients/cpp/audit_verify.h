// The audit log, offline. An export file is what `careseal audit export`
// writes (from AuditService.ExportAuditLog) and what `careseal audit verify`
// checks years later without CareSeal: it recomputes every leaf hash from the
// leaf bytes and the Merkle tree from the leaf hashes, checks every signed
// checkpoint against the recomputed root at its size (so consecutive
// checkpoints are proven consistent: each tree is a prefix of the next), its
// Ed25519 signature and its key, and that leaf indexes run 0, 1, 2, ...
// without a gap. It stops at the first bad entry and names it.
//
// Export file (careseal.audit-export.v1): UTF-8 text, one record per line,
// each record canonical JSON (keys sorted, no whitespace) followed by "\n":
//   {"format":"careseal.audit-export.v1","start_leaf_index":0,
//    "tenant":"tenants/t","type":"header"}                          first
//   {"algorithm":"Ed25519","create_time":"<RFC 3339>","key_id":"ed25519-…",
//    "public_key":"<base64 of 32 bytes>","retire_time":"<RFC 3339>"
//    (retired keys only),"state":"ACTIVE"|"RETIRED","type":"signing_key"}
//   {"leaf":"<base64 of the leaf bytes>","leaf_hash":"<hex SHA-256(0x00||
//    leaf)>","leaf_index":N,"type":"event"}                          in order
//   {"algorithm":"Ed25519","key_id":"…","payload":"<signed payload text>",
//    "signature":"<base64 of 64 bytes>","type":"checkpoint"}  right after
//    the event that completes its tree size
//   {"checkpoints":C,"events":E,"next_leaf_index":N,"signing_keys":K,
//    "type":"end"}                                                     last
// The leaf bytes (careseal.audit-event.v1) and the checkpoint payload
// (careseal.audit-checkpoint.v1) are described in docs/AUDIT.md.
//
// This code shares nothing with the server: hashing and signatures use
// OpenSSL directly, the proofs clients/cpp/merkle_verify.h.
#ifndef CARESEAL_CLIENTS_CPP_AUDIT_VERIFY_H_
#define CARESEAL_CLIENTS_CPP_AUDIT_VERIFY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "careseal/v1/audit.pb.h"

namespace careseal::client {

inline constexpr absl::string_view kAuditExportFormat =
    "careseal.audit-export.v1";
inline constexpr absl::string_view kAuditEventFormat =
    "careseal.audit-event.v1";
inline constexpr absl::string_view kAuditCheckpointFormat =
    "careseal.audit-checkpoint.v1";

// Writing an export file, record by record (each result ends in "\n").
std::string EncodeExportHeader(absl::string_view tenant_name,
                               int64_t start_leaf_index);
absl::StatusOr<std::string> EncodeExportItem(
    const careseal::v1::ExportAuditLogResponse& item);
struct ExportCounts {
  int64_t signing_keys = 0;
  int64_t events = 0;
  int64_t checkpoints = 0;
  int64_t next_leaf_index = 0;  // one past the last event's leaf index
};
std::string EncodeExportEnd(const ExportCounts& counts);

// What a checkpoint's valid signature attests.
struct VerifiedCheckpoint {
  std::string tenant;  // tenants/{t}
  int64_t tree_size = 0;
  std::string root_hash;  // 32 raw bytes
  std::string time;       // RFC 3339 UTC
  std::string key_id;
};

// Checks one signed checkpoint payload (careseal.audit-checkpoint.v1)
// against a public key given as PEM or 32 raw bytes; the key's id must be
// the payload's key_id. Failures are INVALID_ARGUMENT with ErrorReason()
// MALFORMED_CHECKPOINT, BAD_PUBLIC_KEY, KEY_ID_MISMATCH or SIGNATURE_INVALID.
absl::StatusOr<VerifiedCheckpoint> VerifyCheckpoint(
    absl::string_view payload, absl::string_view signature,
    absl::string_view public_key);

struct AuditVerifyOptions {
  // Public keys (PEM or 32 raw bytes) the auditor got from the clinic out
  // of band. If given, every checkpoint must be signed by one of them; if
  // empty, the keys recorded in the export are trusted (the report says so).
  std::vector<std::string> trusted_keys;
  // Accept events after the last checkpoint (no signature covers them).
  bool allow_uncovered_tail = false;
  // Tree heads the auditor already holds (e.g. from an earlier export or
  // `careseal audit checkpoint`): the export must reach each size and have
  // the same root there, which catches a tail cut off together with its
  // checkpoints.
  struct KnownTreeHead {
    int64_t tree_size = 0;
    std::string root_hash;  // 32 raw bytes
  };
  std::vector<KnownTreeHead> known_tree_heads;
};

struct AuditVerifyReport {
  std::string tenant;  // tenants/{t}
  int64_t events = 0;
  int64_t checkpoints = 0;
  int64_t tree_size = 0;  // of the last checkpoint
  std::string root_hash;  // of the last checkpoint (raw)
  std::string last_checkpoint_time;
  std::vector<std::string> signing_key_ids;  // keys that signed checkpoints
  bool keys_from_export = true;              // no trusted keys were given
  int64_t uncovered_events = 0;              // only with allow_uncovered_tail
};

// Verifies a whole export file. The first problem found fails it with
// INVALID_ARGUMENT whose message names the place, e.g.
//   "event at leaf 1234 (line 1240): leaf hash does not match its bytes"
//   "checkpoint at size 5000 (line 5012): signature invalid"
//   "missing leaf 17 (line 20 holds leaf 18)"
// and whose ErrorReason() says what kind: MALFORMED_EXPORT, TRUNCATED,
// LEAF_HASH_MISMATCH, LEAF_INVALID, MISSING_LEAF, LEAF_OUT_OF_ORDER,
// CHECKPOINT_OUT_OF_ORDER, UNKNOWN_KEY, UNTRUSTED_KEY, KEY_NOT_VALID,
// SIGNATURE_INVALID, ROOT_MISMATCH, COUNT_MISMATCH, UNCOVERED_EVENTS,
// PARTIAL_EXPORT, KNOWN_HEAD_MISMATCH, KNOWN_HEAD_MISSING.
absl::StatusOr<AuditVerifyReport> VerifyAuditExport(
    absl::string_view file_text, const AuditVerifyOptions& options = {});

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_AUDIT_VERIFY_H_
