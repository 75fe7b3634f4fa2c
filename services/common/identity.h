// Peer identities: who is at the other end of a mutual-TLS connection, taken
// from the single SPIFFE URI SAN of its client certificate (never the CN).
//   spiffe://careseal.local/tenant/{tenant}/ehr/{name}        an EHR system
//   spiffe://careseal.local/tenant/{tenant}/clinician/{id}    a clinician tool
//   spiffe://careseal.local/tenant/{tenant}/auditor/{id}      an auditor tool
//   spiffe://careseal.local/portal                            the patient
//   portal spiffe://careseal.local/admin                             operator
//   tooling
// Anything else is unknown and is refused (UNAUTHENTICATED).
#ifndef CARESEAL_SERVICES_COMMON_IDENTITY_H_
#define CARESEAL_SERVICES_COMMON_IDENTITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace careseal {

inline constexpr absl::string_view kTrustDomain = "careseal.local";

struct PeerIdentity {
  enum class Kind { kEhr, kClinician, kAuditor, kPortal, kAdmin, kService };
  Kind kind;
  std::string tenant;  // empty for kPortal and kAdmin
  std::string name;    // ehr name / clinician id / auditor id / service
  std::string uri;     // the SPIFFE id as presented

  static absl::StatusOr<PeerIdentity> Parse(absl::string_view uri);
};

absl::string_view KindName(PeerIdentity::Kind kind);

// Resource ids: lowercase letters, digits and '-', 1..63 characters, starting
// with a letter or digit.
bool IsValidId(absl::string_view id);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_IDENTITY_H_
