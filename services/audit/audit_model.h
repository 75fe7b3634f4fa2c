// The audit service's own types (plain C++; the gRPC edge converts them to
// and from careseal.v1 messages). Events are written by every service through
// services/common/platform/audit_writer.h; this service reads them, builds
// the per-tenant Merkle tree over their leaf hashes and signs checkpoints.
#ifndef CARESEAL_SERVICES_AUDIT_AUDIT_MODEL_H_
#define CARESEAL_SERVICES_AUDIT_AUDIT_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace careseal::audit {

// Values equal the contract's AuditCategory numbers.
enum class Category {
  kDataRead = 1,
  kDataWrite = 2,
  kAuthentication = 3,
  kAuthorization = 4,
  kAdmin = 5,
  kKeyManagement = 6,
  kBreakGlass = 7,
  kSystemJob = 8,
  kMetadataRead = 9,
};

// The category of an event, derived from what its leaf records (the action,
// the actor's role and the outcome code name), so that it is a pure function
// of the hashed bytes.
Category CategoryOf(absl::string_view action, absl::string_view role,
                    absl::string_view outcome);

// The google.rpc.Code number of a code name ("PERMISSION_DENIED" -> 7);
// 2 (UNKNOWN) for a name that is not one.
int OutcomeCode(absl::string_view outcome);

// One stored event: the leaf bytes as written, and the fields decoded from
// them.
struct AuditEvent {
  std::string tenant;  // tenant id, or "_" (the deployment log)
  int64_t leaf_index = 0;
  absl::Time time;
  std::string actor;
  std::string role;  // "clinician", ... (RoleName)
  std::string peer;
  std::string break_glass_grant;
  std::string action;  // "careseal.v1.ConsentService/SignConsent"
  std::string resource;
  std::string patient;
  std::string outcome;  // code name, "OK" on success
  std::string outcome_reason;
  std::string request_id;
  std::string correlation_id;
  std::string leaf;       // exact canonical bytes hashed into the tree
  std::string leaf_hash;  // SHA-256(0x00 || leaf), as stored

  std::string Name() const;  // tenants/{t}/auditEvents/{leaf_index}
  Category category() const { return CategoryOf(action, role, outcome); }
};

inline constexpr char kCheckpointFormat[] = "careseal.audit-checkpoint.v1";

// A signed statement of a tenant's tree at one size.
struct Checkpoint {
  std::string tenant;
  int64_t tree_size = 0;
  std::string root_hash;  // 32 bytes
  absl::Time time;
  std::string key_id;
  std::string payload;    // exact signed bytes (canonical JSON)
  std::string signature;  // Ed25519, 64 bytes

  std::string Name() const;  // tenants/{t}/checkpoints/{tree_size}
};

// A published checkpoint signing key (current or retired).
struct CheckpointKey {
  std::string key_id;
  std::string public_key;  // raw 32 bytes
  bool active = false;
  absl::Time create_time;
  std::optional<absl::Time> retire_time;
};

struct EventFilter {
  std::string tenant;
  std::string patient;   // tenants/{t}/patients/{p}; empty: any
  std::string actor;     // empty: any
  std::string action;    // without a leading '/'; empty: any
  std::string resource;  // empty: any
  std::optional<Category> category;
  std::optional<absl::Time> start_time;  // inclusive
  std::optional<absl::Time> end_time;    // exclusive
  bool failures_only = false;
};

}  // namespace careseal::audit

#endif  // CARESEAL_SERVICES_AUDIT_AUDIT_MODEL_H_
