#include "services/common/identity.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/status.h"

namespace careseal {

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return id.front() != '-';
}

absl::string_view KindName(PeerIdentity::Kind kind) {
  switch (kind) {
    case PeerIdentity::Kind::kEhr:
      return "ehr";
    case PeerIdentity::Kind::kClinician:
      return "clinician";
    case PeerIdentity::Kind::kAuditor:
      return "auditor";
    case PeerIdentity::Kind::kPortal:
      return "portal";
    case PeerIdentity::Kind::kAdmin:
      return "admin";
    case PeerIdentity::Kind::kService:
      return "service";
  }
  return "unknown";
}

absl::StatusOr<PeerIdentity> PeerIdentity::Parse(absl::string_view uri) {
  const std::string prefix = absl::StrCat("spiffe://", kTrustDomain, "/");
  auto unknown = [] {
    return Unauthenticated(
        "UNKNOWN_PEER_IDENTITY",
        "the client certificate's URI SAN is not a CareSeal identity; expected "
        "spiffe://careseal.local/tenant/{tenant}/ehr/{name} (or .../clinician/"
        "{id}, .../auditor/{id}), spiffe://careseal.local/portal or "
        "spiffe://careseal.local/admin");
  };
  if (!absl::StartsWith(uri, prefix)) return unknown();
  std::vector<absl::string_view> parts =
      absl::StrSplit(uri.substr(prefix.size()), '/');
  PeerIdentity id;
  id.uri = std::string(uri);
  if (parts.size() == 1 && parts[0] == "portal") {
    id.kind = Kind::kPortal;
    return id;
  }
  if (parts.size() == 1 && parts[0] == "admin") {
    id.kind = Kind::kAdmin;
    return id;
  }
  if (parts.size() == 2 && parts[0] == "service" && IsValidId(parts[1])) {
    id.kind = Kind::kService;
    id.name = std::string(parts[1]);
    return id;
  }
  if (parts.size() != 4 || parts[0] != "tenant" || !IsValidId(parts[1]) ||
      !IsValidId(parts[3])) {
    return unknown();
  }
  if (parts[2] == "ehr") {
    id.kind = Kind::kEhr;
  } else if (parts[2] == "clinician") {
    id.kind = Kind::kClinician;
  } else if (parts[2] == "auditor") {
    id.kind = Kind::kAuditor;
  } else {
    return unknown();
  }
  id.tenant = std::string(parts[1]);
  id.name = std::string(parts[3]);
  return id;
}

}  // namespace careseal
