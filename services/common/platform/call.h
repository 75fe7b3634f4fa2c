// CallContext: everything the domain needs to know about one call besides
// its input: who, what, the idempotency key, the time, and what the audit
// event will record. Filled by the gRPC edge; plain C++.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_CALL_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_CALL_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "services/common/platform/principal.h"

namespace careseal {

struct CallContext {
  Principal principal;
  // "careseal.v1.ConsentService/SignConsent".
  std::string method;
  // Random per call; ties together the events of one call.
  std::string correlation_id;
  // AIP-155 key of a mutation (empty for reads) and the SHA-256 of the
  // request without it: the same key with another fingerprint is a reuse.
  std::string request_id;
  std::string request_fingerprint;
  // Server time of the call (from the injected Clock).
  absl::Time now;

  // What the call acts on, for the audit event; set as soon as known.
  std::string tenant;    // tenant id
  std::string resource;  // resource name
  std::string patient;   // tenants/{t}/patients/{p}, if about a patient

  // The caller could not be authenticated (refused peer certificate, bad
  // token): its audit event records the role "unauthenticated".
  bool unauthenticated = false;

  // Set by domain code that appended the call's audit event inside its own
  // transaction (the edge then does not append another).
  bool audited = false;
  int64_t audit_leaf_index = -1;
};

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_CALL_H_
