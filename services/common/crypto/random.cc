#include "services/common/crypto/random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "services/common/crypto/encoding.h"
#include "services/common/crypto/openssl_util.h"
#include "services/common/crypto/sha256.h"

namespace careseal::crypto {
namespace {

constexpr char kBase32Alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
constexpr size_t kOpaqueIdBytes = 16;
constexpr size_t kOpaqueIdChars = 26;

void AppendLittleEndian64(uint64_t value, std::string& out) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

void RandBytesOrDie(unsigned char* out, size_t n) {
  while (n > 0) {
    const int chunk = static_cast<int>(std::min<size_t>(n, INT_MAX));
    if (RAND_bytes(out, chunk) != 1) {
      std::fprintf(stderr, "careseal: RAND_bytes failed: %s\n",
                   OpenSslErrorString().c_str());
      std::abort();
    }
    out += chunk;
    n -= static_cast<size_t>(chunk);
  }
}

constexpr size_t kBlockSize = 512;
constexpr size_t kMaxBuffered = 64;

// Bumped in a forked child (pthread_atfork), so that the child's threads,
// including the copy of the forking thread, draw fresh blocks.
std::atomic<uint64_t> fork_generation{0};

void BumpForkGeneration() {
  fork_generation.fetch_add(1, std::memory_order_relaxed);
}

// One thread's unused random bytes: block[used, kBlockSize).
struct RandomBlock {
  unsigned char block[kBlockSize];
  size_t used = kBlockSize;
  uint64_t generation = 0;
  ~RandomBlock() { OPENSSL_cleanse(block, sizeof block); }
};

}  // namespace

void FillRandom(unsigned char* out, size_t n) {
  static const bool registered = [] {
    return pthread_atfork(nullptr, nullptr, BumpForkGeneration) == 0;
  }();
  if (n > kMaxBuffered || !registered) return RandBytesOrDie(out, n);
  thread_local RandomBlock local;
  const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (local.generation != generation || kBlockSize - local.used < n) {
    RandBytesOrDie(local.block, kBlockSize);
    local.used = 0;
    local.generation = generation;
  }
  std::memcpy(out, local.block + local.used, n);
  OPENSSL_cleanse(local.block + local.used, n);
  local.used += n;
}

std::string OpenSslRandom::Bytes(size_t n) {
  std::string out(n, '\0');
  FillRandom(reinterpret_cast<unsigned char*>(out.data()), n);
  return out;
}

std::string FakeRandom::Bytes(size_t n) {
  absl::MutexLock lock(&mu_);
  while (buffer_.size() < n) {
    std::string block_input;
    AppendLittleEndian64(seed_, block_input);
    AppendLittleEndian64(counter_++, block_input);
    buffer_ += Sha256(block_input);
  }
  std::string out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return out;
}

std::string NewOpaqueId(RandomSource& random) {
  const std::string bytes = random.Bytes(kOpaqueIdBytes);
  // Base-32 digits of the 128-bit big-endian value, most significant first:
  // digit i (of 26) holds bits [5*(25-i), 5*(25-i)+5) of the value.
  std::string id(kOpaqueIdChars, 'a');
  for (size_t i = 0; i < kOpaqueIdChars; ++i) {
    const size_t low_bit = 5 * (kOpaqueIdChars - 1 - i);  // From the LSB.
    unsigned digit = 0;
    for (size_t b = 0; b < 5; ++b) {
      const size_t bit = low_bit + b;
      if (bit >= 8 * kOpaqueIdBytes) break;
      const unsigned char byte =
          static_cast<unsigned char>(bytes[kOpaqueIdBytes - 1 - bit / 8]);
      digit |= ((byte >> (bit % 8)) & 1u) << b;
    }
    id[i] = kBase32Alphabet[digit];
  }
  return id;
}

std::string NewUuid(RandomSource& random) {
  std::string bytes = random.Bytes(16);
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x40);  // Version 4.
  bytes[8] = static_cast<char>((bytes[8] & 0x3f) | 0x80);  // Variant 10xx.
  const std::string hex = HexEncode(bytes);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) +
         "-" + hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

}  // namespace careseal::crypto
