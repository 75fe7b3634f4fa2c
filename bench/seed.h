// Seeding large volumes for check-consent directly through the consent store,
// in big transactions (not RPC by RPC), before the server under test starts.
#ifndef CARESEAL_BENCH_SEED_H_
#define CARESEAL_BENCH_SEED_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "bench/server_fixture.h"

namespace careseal::bench {

// Inserts signed consents for patients SeededPatient(from) ..
// SeededPatient(to - 1) of kTenant against the latest version of the bench
// template (which must exist), `batch` consents per transaction. Each row is
// what SignConsent stores: a receipt signed with the deployment's receipt
// key and sealed evidence. Seeded rows get no audit events and no request
// ids (they stand for history, not for calls). No server may run on `files`.
absl::Status SeedSignedConsents(const ServerFiles& files,
                                const std::string& requested_by, int64_t from,
                                int64_t to, int64_t batch);

}  // namespace careseal::bench

#endif  // CARESEAL_BENCH_SEED_H_
