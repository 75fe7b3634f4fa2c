#include "services/common/crypto/openssl_util.h"

#include <openssl/err.h>

#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/status.h"

namespace careseal::crypto {

std::string OpenSslErrorString() {
  std::string out;
  unsigned long code;  // NOLINT(runtime/int): OpenSSL's type.
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  if (out.empty()) out = "no OpenSSL error detail";
  return out;
}

absl::Status OpenSslFailure(absl::string_view what) {
  return Internal(kReasonOpenSslFailure,
                  absl::StrCat(what, ": ", OpenSslErrorString()));
}

BioPtr NewReadOnlyMemBio(absl::string_view data) {
  if (data.size() > static_cast<size_t>(INT_MAX)) return nullptr;
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string MemBioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int)
  if (len <= 0 || data == nullptr) return std::string();
  return std::string(data, static_cast<size_t>(len));
}

EvpMdCtxPool::Lease::~Lease() {
  if (ctx_ != nullptr && pool_ != nullptr) pool_->Release(std::move(ctx_));
}

EvpMdCtxPool::Lease EvpMdCtxPool::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      EvpMdCtxPtr ctx = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(ctx));
    }
  }
  return Lease(this, EvpMdCtxPtr(EVP_MD_CTX_new()));
}

void EvpMdCtxPool::Release(EvpMdCtxPtr ctx) {
  absl::MutexLock lock(&mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(ctx));
  // Otherwise `ctx` is freed as it goes out of scope.
}

}  // namespace careseal::crypto
