// Resource names (AIP-122): parsing a name against a pattern such as
// "tenants/{tenant}/patients/{patient}/consents/{consent}".
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_RESOURCE_NAME_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_RESOURCE_NAME_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace careseal {

inline constexpr size_t kMaxNameBytes = 512;

class ResourceName {
 public:
  // Matches `name` against `pattern`; every variable segment must be a valid
  // id (services/common/identity.h). `field` names the request field in the
  // INVALID_ARGUMENT (INVALID_NAME) error, which quotes the pattern.
  static absl::StatusOr<ResourceName> Parse(absl::string_view pattern,
                                            absl::string_view name,
                                            absl::string_view field);
  // Like Parse, but a variable may also be "-" (wildcard) when listed in
  // `wildcards` (e.g. {"patient"}).
  static absl::StatusOr<ResourceName> ParseWithWildcard(
      absl::string_view pattern, absl::string_view name,
      absl::string_view field, absl::string_view wildcard_variable);

  // The value of variable `var` ("tenant" for {tenant}); "" if none.
  const std::string& Get(absl::string_view var) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  absl::flat_hash_map<std::string, std::string> vars_;
};

// tenants/{t}/patients/{p}
std::string PatientName(absl::string_view tenant, absl::string_view patient);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_RESOURCE_NAME_H_
