#include "services/common/platform/resource_name.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/identity.h"
#include "services/common/status.h"

namespace careseal {
namespace {

const std::string& Empty() {
  static const std::string* const empty = new std::string();
  return *empty;
}

}  // namespace

absl::StatusOr<ResourceName> ResourceName::Parse(absl::string_view pattern,
                                                 absl::string_view name,
                                                 absl::string_view field) {
  return ParseWithWildcard(pattern, name, field, "");
}

absl::StatusOr<ResourceName> ResourceName::ParseWithWildcard(
    absl::string_view pattern, absl::string_view name, absl::string_view field,
    absl::string_view wildcard_variable) {
  auto invalid = [&] {
    if (name.empty()) {
      return InvalidField(field, "FIELD_REQUIRED",
                          absl::StrCat(field, " is required: ", pattern));
    }
    return InvalidField(field, "INVALID_NAME",
                        absl::StrCat(field, " must look like ", pattern,
                                     " with ids of [a-z0-9-]{1,63}"));
  };
  if (name.empty() || name.size() > kMaxNameBytes) return invalid();
  std::vector<absl::string_view> want = absl::StrSplit(pattern, '/');
  std::vector<absl::string_view> got = absl::StrSplit(name, '/');
  if (want.size() != got.size()) return invalid();
  ResourceName result;
  result.name_ = std::string(name);
  for (size_t i = 0; i < want.size(); ++i) {
    absl::string_view w = want[i];
    if (absl::StartsWith(w, "{") && absl::EndsWith(w, "}")) {
      absl::string_view var = w.substr(1, w.size() - 2);
      bool wildcard = !wildcard_variable.empty() && var == wildcard_variable &&
                      got[i] == "-";
      if (!wildcard && !IsValidId(got[i])) return invalid();
      result.vars_[std::string(var)] = std::string(got[i]);
    } else if (w != got[i]) {
      return invalid();
    }
  }
  return result;
}

const std::string& ResourceName::Get(absl::string_view var) const {
  auto it = vars_.find(var);
  return it == vars_.end() ? Empty() : it->second;
}

std::string PatientName(absl::string_view tenant, absl::string_view patient) {
  return absl::StrCat("tenants/", tenant, "/patients/", patient);
}

}  // namespace careseal
