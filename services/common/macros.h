// RETURN_IF_ERROR / ASSIGN_OR_RETURN: Abseil 20220623 ships neither, so these
// are the minimal versions under the customary names.
#ifndef CARESEAL_SERVICES_COMMON_MACROS_H_
#define CARESEAL_SERVICES_COMMON_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CARESEAL_CONCAT_INNER_(a, b) a##b
#define CARESEAL_CONCAT_(a, b) CARESEAL_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    ::absl::Status careseal_status_ = (expr);            \
    if (!careseal_status_.ok()) return careseal_status_; \
  } while (0)

#define CARESEAL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return std::move(tmp).status();        \
  lhs = std::move(*tmp)

// ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());
#define ASSIGN_OR_RETURN(lhs, expr)                                          \
  CARESEAL_ASSIGN_OR_RETURN_IMPL_(CARESEAL_CONCAT_(careseal_sor_, __LINE__), \
                                  lhs, expr)

#endif  // CARESEAL_SERVICES_COMMON_MACROS_H_
