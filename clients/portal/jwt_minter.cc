#include "clients/portal/jwt_minter.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace careseal::portal {
namespace {

using Json = nlohmann::json;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

// The OpenSSL error queue, drained into a message.
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string B64Url(absl::string_view bytes) {
  return absl::WebSafeBase64Escape(bytes);  // no padding
}

}  // namespace

struct JwtMinter::Key {
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey;
  std::string public_raw;
};

JwtMinter::JwtMinter(Options options, std::unique_ptr<Key> key)
    : options_(std::move(options)), key_(std::move(key)) {}
JwtMinter::~JwtMinter() = default;

namespace {
absl::StatusOr<std::string> RawPublic(EVP_PKEY* pkey) {
  size_t len = 32;
  std::string raw(32, '\0');
  if (EVP_PKEY_get_raw_public_key(
          pkey, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 ||
      len != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("token key is not Ed25519: ", OpenSslErrors()));
  }
  return raw;
}

absl::Status CheckOptions(const JwtMinter::Options& o) {
  if (o.issuer.empty() || o.kid.empty() || o.audience.empty()) {
    return absl::InvalidArgumentError(
        "token issuer, audience and key id are required");
  }
  if (o.lifetime <= absl::ZeroDuration() || o.lifetime > absl::Minutes(15)) {
    return absl::InvalidArgumentError(
        "token lifetime must be positive and at most 15 minutes");
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<std::unique_ptr<JwtMinter>> JwtMinter::FromPem(
    Options options, absl::string_view private_key_pem) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(
      private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  if (bio == nullptr) return absl::InternalError(OpenSslErrors());
  auto key = std::make_unique<Key>();
  key->pkey.reset(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key->pkey == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the token signing key: ", OpenSslErrors()));
  }
  if (EVP_PKEY_id(key->pkey.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("the token signing key must be Ed25519");
  }
  auto raw = RawPublic(key->pkey.get());
  if (!raw.ok()) return raw.status();
  key->public_raw = *raw;
  return std::unique_ptr<JwtMinter>(
      new JwtMinter(std::move(options), std::move(key)));
}

absl::StatusOr<std::unique_ptr<JwtMinter>> JwtMinter::Generate(
    Options options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw_key = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw_key) != 1) {
    return absl::InternalError(OpenSslErrors());
  }
  auto key = std::make_unique<Key>();
  key->pkey.reset(raw_key);
  auto raw = RawPublic(raw_key);
  if (!raw.ok()) return raw.status();
  key->public_raw = *raw;
  return std::unique_ptr<JwtMinter>(
      new JwtMinter(std::move(options), std::move(key)));
}

absl::StatusOr<std::string> JwtMinter::Mint(absl::string_view patient,
                                            absl::string_view sid,
                                            absl::Time now) const {
  if (patient.empty() || sid.empty()) {
    return absl::FailedPreconditionError("no verified portal session");
  }
  unsigned char jti[16];
  if (RAND_bytes(jti, sizeof(jti)) != 1) {
    return absl::InternalError(OpenSslErrors());
  }
  const int64_t iat = absl::ToUnixSeconds(now);
  const Json header = {{"alg", "EdDSA"}, {"kid", options_.kid}, {"typ", "JWT"}};
  const Json claims = {{"iss", options_.issuer},
                       {"sub", std::string(patient)},
                       {"aud", options_.audience},
                       {"iat", iat},
                       {"nbf", iat},
                       {"exp", iat + absl::ToInt64Seconds(options_.lifetime)},
                       {"jti", B64Url(absl::string_view(
                                   reinterpret_cast<char*>(jti), sizeof(jti)))},
                       {"sid", std::string(sid)}};
  const std::string input =
      absl::StrCat(B64Url(header.dump()), ".", B64Url(claims.dump()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  unsigned char sig[64];
  size_t sig_len = sizeof(sig);
  if (md == nullptr ||
      EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr,
                         key_->pkey.get()) != 1 ||
      EVP_DigestSign(md.get(), sig, &sig_len,
                     reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    return absl::InternalError(
        absl::StrCat("signing the token failed: ", OpenSslErrors()));
  }
  return absl::StrCat(
      input, ".",
      B64Url(absl::string_view(reinterpret_cast<char*>(sig), sig_len)));
}

std::string JwtMinter::PublicJwks() const {
  Json jwk = {{"kty", "OKP"},
              {"crv", "Ed25519"},
              {"x", B64Url(key_->public_raw)},
              {"kid", options_.kid},
              {"alg", "EdDSA"},
              {"use", "sig"}};
  return Json{{"keys", Json::array({jwk})}}.dump();
}

absl::StatusOr<std::string> JwtMinter::PrivateKeyPem() const {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key_->pkey.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    return absl::InternalError(OpenSslErrors());
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace careseal::portal
