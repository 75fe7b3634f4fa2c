// Small helpers shared by the OpenSSL-backed primitives in this directory:
// RAII owners for OpenSSL objects, error-queue draining and a pool of digest
// contexts. Internal to services/common/crypto; other code uses the primitive
// interfaces (Signer, Verifier, Aead, ...) instead.
#ifndef CARESEAL_SERVICES_COMMON_CRYPTO_OPENSSL_UTIL_H_
#define CARESEAL_SERVICES_COMMON_CRYPTO_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/common/crypto/errors.h"

namespace careseal::crypto {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct EvpPkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EvpMdDeleter {
  void operator()(EVP_MD* p) const { EVP_MD_free(p); }
};
struct EvpCipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct EvpCipherDeleter {
  void operator()(EVP_CIPHER* p) const { EVP_CIPHER_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free_all(p); }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxDeleter>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;
using EvpMdPtr = std::unique_ptr<EVP_MD, EvpMdDeleter>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, EvpCipherCtxDeleter>;
using EvpCipherPtr = std::unique_ptr<EVP_CIPHER, EvpCipherDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// Empties this thread's OpenSSL error queue and returns its entries joined by
// "; " (oldest first), or "no OpenSSL error detail" when it was empty. Call it
// on every OpenSSL failure path so stale errors never leak into later calls.
std::string OpenSslErrorString();

// INTERNAL / kReasonOpenSslFailure "<what>: <drained error queue>".
absl::Status OpenSslFailure(absl::string_view what);

// A read-only memory BIO over `data` (not copied; `data` must outlive the
// BIO). Null if `data` is larger than INT_MAX or on allocation failure.
BioPtr NewReadOnlyMemBio(absl::string_view data);

// Returns the bytes written so far into a memory BIO.
std::string MemBioContents(BIO* bio);

// A free list of EVP_MD_CTX objects so that hot paths (Sign, Verify) reuse one
// context instead of allocating per call. A leased context keeps whatever
// state its previous user left; callers re-initialise it
// (EVP_DigestSignInit_ex etc.), which OpenSSL supports on a used context.
// Thread-safe.
class EvpMdCtxPool {
 public:
  // A context on loan; returned to the pool on destruction unless Discard()ed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    // Null only if allocation failed.
    EVP_MD_CTX* get() const { return ctx_.get(); }
    // Frees the context instead of returning it (use after an error).
    void Discard() { ctx_.reset(); }

   private:
    friend class EvpMdCtxPool;
    Lease(EvpMdCtxPool* pool, EvpMdCtxPtr ctx)
        : pool_(pool), ctx_(std::move(ctx)) {}
    EvpMdCtxPool* pool_;
    EvpMdCtxPtr ctx_;
  };

  // Keeps at most `max_idle` unused contexts.
  explicit EvpMdCtxPool(size_t max_idle = 16) : max_idle_(max_idle) {}
  EvpMdCtxPool(const EvpMdCtxPool&) = delete;
  EvpMdCtxPool& operator=(const EvpMdCtxPool&) = delete;

  // REQUIRES: the pool outlives the lease.
  Lease Acquire();

 private:
  void Release(EvpMdCtxPtr ctx);

  const size_t max_idle_;
  absl::Mutex mu_;
  std::vector<EvpMdCtxPtr> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace careseal::crypto

#endif  // CARESEAL_SERVICES_COMMON_CRYPTO_OPENSSL_UTIL_H_
