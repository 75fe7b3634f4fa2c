// Randomness comes through RandomSource so that tests can make ids and keys
// deterministic. Production code uses OpenSslRandom.
#ifndef CARESEAL_SERVICES_COMMON_CRYPTO_RANDOM_H_
#define CARESEAL_SERVICES_COMMON_CRYPTO_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace careseal::crypto {

// A source of random bytes. Implementations are thread-safe.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Returns exactly `n` random bytes.
  virtual std::string Bytes(size_t n) = 0;
};

// Fills `out` with `n` cryptographically secure bytes from OpenSSL's
// RAND_bytes (the system DRBG). Aborts the process if the generator fails:
// there is no safe way to continue without randomness. Thread-safe.
//
// Small requests (up to 64 bytes: ids, nonces, correlation ids) are served
// from a per-thread block of 512 bytes drawn with one RAND_bytes call.
// RAND_bytes costs a getpid() system call per call (OpenSSL's fork check),
// which on a virtual machine is about 10 us: more than a whole id is worth.
// Bytes handed out are wiped from the block, so the block never holds a
// byte that was used. A forked child never serves its parent's block: a
// fork handler invalidates every thread's block in the child.
void FillRandom(unsigned char* out, size_t n);

// FillRandom as a RandomSource. Stateless and thread-safe.
class OpenSslRandom final : public RandomSource {
 public:
  std::string Bytes(size_t n) override;
};

// Deterministic bytes for tests: the stream SHA-256(seed || 0),
// SHA-256(seed || 1), ... (seed and counter as little-endian uint64), handed
// out in order, so Bytes(3) then Bytes(5) equals Bytes(8). Equal seeds give
// equal streams. NOT secret: never use outside tests. Thread-safe.
class FakeRandom final : public RandomSource {
 public:
  explicit FakeRandom(uint64_t seed = 0) : seed_(seed) {}
  std::string Bytes(size_t n) override;

 private:
  const uint64_t seed_;
  absl::Mutex mu_;
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
  std::string buffer_ ABSL_GUARDED_BY(mu_);  // Unused tail of the last block.
};

// A new 26-character id from 128 random bits, for resource names (AIP-122):
// the bits as a big-endian base-32 number in the RFC 4648 lowercase alphabet
// [a-z2-7], zero-padded to 26 digits. Because 26 digits hold 130 bits, the
// first character is always one of 'a'..'h', so ids start with a letter.
std::string NewOpaqueId(RandomSource& random);

// A new random (version 4, RFC 9562) UUID in the canonical lowercase form
// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", y in [89ab].
std::string NewUuid(RandomSource& random);

}  // namespace careseal::crypto

#endif  // CARESEAL_SERVICES_COMMON_CRYPTO_RANDOM_H_
