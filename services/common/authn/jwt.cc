#include "services/common/authn/jwt.h"

#include <cjose/cjose.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/crypto/ed25519.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/errors.h"
#include "services/common/crypto/openssl_util.h"
#include "services/common/macros.h"
#include "services/common/status.h"

namespace careseal::authn {
namespace {

using Json = nlohmann::json;

constexpr size_t kP256CoordinateBytes = 32;
constexpr size_t kEs256SignatureBytes = 64;
constexpr size_t kMaxKidBytes = 256;
constexpr size_t kMaxSubjectBytes = 256;
constexpr int kMaxJsonDepth = 16;
// 9999-12-31T23:59:59Z: NumericDates beyond this are refused as malformed.
constexpr int64_t kMaxNumericDate = 253402300799;

// ------------------------------------------------------------ RAII owners

struct CjoseJwkDeleter {
  void operator()(cjose_jwk_t* p) const { cjose_jwk_release(p); }
};
struct CjoseJwsDeleter {
  void operator()(cjose_jws_t* p) const { cjose_jws_release(p); }
};
struct CjoseHeaderDeleter {
  void operator()(cjose_header_t* p) const { cjose_header_release(p); }
};
struct BignumDeleter {
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
};
using CjoseJwkPtr = std::unique_ptr<cjose_jwk_t, CjoseJwkDeleter>;
using CjoseJwsPtr = std::unique_ptr<cjose_jws_t, CjoseJwsDeleter>;
using CjoseHeaderPtr = std::unique_ptr<cjose_header_t, CjoseHeaderDeleter>;
using BignumPtr = std::unique_ptr<BIGNUM, BignumDeleter>;

// ------------------------------------------------------------------ Errors

absl::Status TokenInvalid(absl::string_view message) {
  return Unauthenticated(kReasonTokenInvalid, message);
}

absl::Status JwksInvalid(absl::string_view message) {
  return Error(absl::StatusCode::kInvalidArgument, kReasonInvalidJwks, message);
}

absl::Status KeyInvalid(absl::string_view message) {
  return Error(absl::StatusCode::kInvalidArgument, crypto::kReasonKeyInvalid,
               message);
}

std::string CjoseErrorString(const cjose_err& err) {
  return absl::StrCat(err.message != nullptr ? err.message : "unknown error",
                      " (cjose code ", static_cast<int>(err.code), ")");
}

absl::Status CjoseFailure(absl::string_view what, const cjose_err& err) {
  // cjose calls OpenSSL; leave no stale errors behind for later callers.
  std::string openssl = crypto::OpenSslErrorString();
  return Internal(
      "CJOSE_FAILURE",
      absl::StrCat(what, ": ", CjoseErrorString(err), "; ", openssl));
}

// ------------------------------------------------------------ Strict JSON

// Parses `text` as one JSON value. Refuses syntax errors, invalid UTF-8,
// trailing data, duplicate member names in any object (RFC 7515 section 5.2
// allows a JWS parser to reject them; accepting them invites parser
// differentials with cjose's jansson) and nesting deeper than
// kMaxJsonDepth. On failure returns nullopt and sets `*why`.
std::optional<Json> ParseStrictJson(absl::string_view text, std::string* why) {
  std::vector<absl::flat_hash_set<std::string>> open_objects;
  bool duplicate = false;
  bool too_deep = false;
  Json::parser_callback_t callback = [&](int depth, Json::parse_event_t event,
                                         Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        if (depth >= kMaxJsonDepth) too_deep = true;
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth) too_deep = true;
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = true;
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json value = Json::parse(text.begin(), text.end(), callback,
                           /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    *why = "not valid JSON";
    return std::nullopt;
  }
  if (duplicate) {
    *why = "duplicate member names";
    return std::nullopt;
  }
  if (too_deep) {
    *why = absl::StrCat("nested deeper than ", kMaxJsonDepth, " levels");
    return std::nullopt;
  }
  return value;
}

// The string member `name` of `object`, or nullptr if absent or not a
// string.
const std::string* StringMember(const Json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

// A NumericDate (RFC 7519 section 2): seconds since the epoch, possibly
// fractional. nullopt for non-numbers, negatives and absurd values.
std::optional<absl::Time> NumericDate(const Json& value) {
  if (value.is_number_unsigned()) {
    uint64_t seconds = value.get<uint64_t>();
    if (seconds > static_cast<uint64_t>(kMaxNumericDate)) return std::nullopt;
    return absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  }
  if (value.is_number_integer()) {
    int64_t seconds = value.get<int64_t>();
    if (seconds < 0 || seconds > kMaxNumericDate) return std::nullopt;
    return absl::FromUnixSeconds(seconds);
  }
  if (value.is_number_float()) {
    double seconds = value.get<double>();
    if (!std::isfinite(seconds) || seconds < 0 ||
        seconds > static_cast<double>(kMaxNumericDate)) {
      return std::nullopt;
    }
    return absl::UnixEpoch() + absl::Seconds(seconds);
  }
  return std::nullopt;
}

std::string DescribeDuration(absl::Duration d) {
  if (d % absl::Minutes(1) == absl::ZeroDuration()) {
    int64_t minutes = absl::ToInt64Minutes(d);
    return absl::StrCat(minutes, minutes == 1 ? " minute" : " minutes");
  }
  return absl::FormatDuration(d);
}

// -------------------------------------------------------------- P-256 keys

// Builds an OpenSSL P-256 public key from affine coordinates and runs
// OpenSSL's public key check, so off-curve points and the point at infinity
// are refused however cjose treats them.
absl::Status CheckP256PublicKey(absl::string_view x, absl::string_view y) {
  std::string point = absl::StrCat("\x04", x, y);
  char group[] = "P-256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size()),
      OSSL_PARAM_construct_end()};
  crypto::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return crypto::OpenSslFailure("EVP_PKEY_fromdata_init (EC)");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    crypto::OpenSslErrorString();  // Drain: the input, not OpenSSL, is bad.
    return absl::InvalidArgumentError("not a point on P-256");
  }
  crypto::EvpPkeyPtr key(raw);
  crypto::EvpPkeyCtxPtr check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    crypto::OpenSslErrorString();
    return absl::InvalidArgumentError("not a valid P-256 public key");
  }
  return absl::OkStatus();
}

// The big-endian, zero-padded 32-byte encoding of BN parameter `name`.
absl::StatusOr<std::string> P256Param(const EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) {
    return crypto::OpenSslFailure(absl::StrCat("EVP_PKEY_get_bn_param ", name));
  }
  BignumPtr bn(raw);
  std::string out(kP256CoordinateBytes, '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()),
                   static_cast<int>(out.size())) < 0) {
    return crypto::OpenSslFailure("BN_bn2binpad");
  }
  return out;
}

// Refuses to decrypt encrypted PEM (and so never prompts on a terminal).
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

absl::Status CheckKid(absl::string_view kid) {
  if (kid.empty() || kid.size() > kMaxKidBytes) {
    return KeyInvalid(
        absl::StrCat("kid must be 1 to ", kMaxKidBytes, " bytes long"));
  }
  return absl::OkStatus();
}

std::string JwksJson(Json jwk) {
  Json set = {{"keys", Json::array({std::move(jwk)})}};
  return set.dump();
}

}  // namespace

// =================================================================== Jwks

struct Jwks::Key {
  enum class Type { kEs256, kEdDsa };
  Type type;
  CjoseJwkPtr ec;                                      // kEs256
  std::unique_ptr<crypto::OpenSslEd25519Verifier> ed;  // kEdDsa
};

Jwks::~Jwks() = default;

const Jwks::Key* Jwks::Find(absl::string_view kid) const {
  auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Jwks::KeyIds() const {
  std::vector<std::string> ids;
  ids.reserve(keys_.size());
  for (const auto& [kid, key] : keys_) ids.push_back(kid);
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::StatusOr<Jwks> Jwks::Parse(absl::string_view jwks_json) {
  if (jwks_json.size() > kMaxJwksBytes) {
    return JwksInvalid(
        absl::StrCat("JWK Set exceeds ", kMaxJwksBytes, " bytes"));
  }
  std::string why;
  std::optional<Json> set = ParseStrictJson(jwks_json, &why);
  if (!set.has_value()) {
    return JwksInvalid(absl::StrCat("JWK Set is not usable JSON: ", why));
  }
  if (!set->is_object()) return JwksInvalid("JWK Set must be a JSON object");
  auto keys_it = set->find("keys");
  if (keys_it == set->end() || !keys_it->is_array()) {
    return JwksInvalid("JWK Set needs a \"keys\" array");
  }
  const Json& keys = *keys_it;
  if (keys.empty()) return JwksInvalid("JWK Set has no keys");
  if (keys.size() > kMaxJwksKeys) {
    return JwksInvalid(
        absl::StrCat("JWK Set has more than ", kMaxJwksKeys, " keys"));
  }
  // Private material anywhere wins over every other complaint: the key is
  // leaked and must be rotated whatever else is wrong.
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].is_object() && keys[i].contains("d")) {
      return Error(
          absl::StatusCode::kInvalidArgument, kReasonJwksContainsPrivateKey,
          absl::StrCat("key ", i,
                       " carries private key material (\"d\"); "
                       "publish only public keys and rotate this one"));
    }
  }

  Jwks jwks;
  for (size_t i = 0; i < keys.size(); ++i) {
    const Json& jwk = keys[i];
    std::string where = absl::StrCat("key ", i);
    if (!jwk.is_object()) {
      return JwksInvalid(absl::StrCat(where, " is not a JSON object"));
    }
    const std::string* kid = StringMember(jwk, "kid");
    if (kid == nullptr || kid->empty() || kid->size() > kMaxKidBytes) {
      return JwksInvalid(absl::StrCat(where, " needs a \"kid\" string of 1 to ",
                                      kMaxKidBytes, " bytes"));
    }
    absl::StrAppend(&where, " (kid \"", *kid, "\")");
    if (jwks.keys_.contains(*kid)) {
      return JwksInvalid(absl::StrCat(where, " repeats a kid"));
    }
    if (jwk.contains("use")) {
      const std::string* use = StringMember(jwk, "use");
      if (use == nullptr || *use != "sig") {
        return JwksInvalid(absl::StrCat(where, ": \"use\" must be \"sig\""));
      }
    }
    if (jwk.contains("key_ops")) {
      const Json& ops = jwk["key_ops"];
      bool verify = false;
      if (ops.is_array()) {
        for (const Json& op : ops) verify |= op.is_string() && op == "verify";
      }
      if (!verify) {
        return JwksInvalid(
            absl::StrCat(where, ": \"key_ops\" must include \"verify\""));
      }
    }
    const std::string* kty = StringMember(jwk, "kty");
    const std::string* crv = StringMember(jwk, "crv");
    const std::string* alg = StringMember(jwk, "alg");
    if (jwk.contains("alg") && alg == nullptr) {
      return JwksInvalid(absl::StrCat(where, ": \"alg\" must be a string"));
    }
    const std::string* x = StringMember(jwk, "x");
    auto key = std::make_shared<Key>();

    if (kty != nullptr && *kty == "EC") {
      if (crv == nullptr || *crv != "P-256") {
        return JwksInvalid(
            absl::StrCat(where, ": EC keys must use crv \"P-256\""));
      }
      if (alg != nullptr && *alg != kAlgEs256) {
        return JwksInvalid(
            absl::StrCat(where, ": a P-256 key must have alg \"ES256\""));
      }
      const std::string* y = StringMember(jwk, "y");
      absl::StatusOr<std::string> x_raw =
          x == nullptr ? absl::InvalidArgumentError("missing")
                       : crypto::Base64UrlDecode(*x);
      absl::StatusOr<std::string> y_raw =
          y == nullptr ? absl::InvalidArgumentError("missing")
                       : crypto::Base64UrlDecode(*y);
      if (!x_raw.ok() || !y_raw.ok() || x_raw->size() != kP256CoordinateBytes ||
          y_raw->size() != kP256CoordinateBytes) {
        return JwksInvalid(absl::StrCat(
            where, ": \"x\" and \"y\" must be base64url of 32 bytes each"));
      }
      absl::Status point = CheckP256PublicKey(*x_raw, *y_raw);
      if (!point.ok()) {
        if (point.code() == absl::StatusCode::kInternal) return point;
        return JwksInvalid(absl::StrCat(where, ": ", point.message()));
      }
      // Hand cjose only the members it needs, in canonical form.
      std::string minimal =
          Json{{"kty", "EC"}, {"crv", "P-256"}, {"x", *x}, {"y", *y}}.dump();
      cjose_err err{};
      key->type = Key::Type::kEs256;
      key->ec.reset(cjose_jwk_import(minimal.data(), minimal.size(), &err));
      if (key->ec == nullptr) {
        crypto::OpenSslErrorString();
        return JwksInvalid(absl::StrCat(
            where, ": cjose rejected the key: ", CjoseErrorString(err)));
      }
      if (cjose_jwk_get_kty(key->ec.get(), &err) != CJOSE_JWK_KTY_EC ||
          cjose_jwk_EC_get_curve(key->ec.get(), &err) != CJOSE_JWK_EC_P_256) {
        return JwksInvalid(
            absl::StrCat(where, ": cjose did not import a P-256 key"));
      }
    } else if (kty != nullptr && *kty == "OKP") {
      if (crv == nullptr || *crv != "Ed25519") {
        return JwksInvalid(
            absl::StrCat(where, ": OKP keys must use crv \"Ed25519\""));
      }
      if (alg != nullptr && *alg != kAlgEdDsa) {
        return JwksInvalid(
            absl::StrCat(where, ": an Ed25519 key must have alg \"EdDSA\""));
      }
      absl::StatusOr<std::string> x_raw =
          x == nullptr ? absl::InvalidArgumentError("missing")
                       : crypto::Base64UrlDecode(*x);
      if (!x_raw.ok() || x_raw->size() != crypto::kEd25519PublicKeySize) {
        return JwksInvalid(
            absl::StrCat(where, ": \"x\" must be base64url of 32 bytes"));
      }
      absl::StatusOr<std::unique_ptr<crypto::OpenSslEd25519Verifier>> ed =
          crypto::OpenSslEd25519Verifier::Create(*x_raw);
      if (!ed.ok()) {
        return JwksInvalid(absl::StrCat(where, ": ", ed.status().message()));
      }
      key->type = Key::Type::kEdDsa;
      key->ed = *std::move(ed);
    } else {
      return JwksInvalid(absl::StrCat(
          where,
          ": unsupported key type; use kty \"EC\" with crv \"P-256\" (ES256) "
          "or kty \"OKP\" with crv \"Ed25519\" (EdDSA)"));
    }
    jwks.keys_.emplace(*kid, std::move(key));
  }
  return jwks;
}

// ===================================================== InMemoryReplayCache

InMemoryReplayCache::InMemoryReplayCache(const Clock* clock, size_t max_entries)
    : clock_(clock), max_entries_(max_entries) {}

void InMemoryReplayCache::EvictExpired(absl::Time now) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first < now) {
    entries_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
}

bool InMemoryReplayCache::CheckAndRemember(absl::string_view issuer,
                                           absl::string_view jti,
                                           absl::Time expires_at) {
  std::string key = absl::StrCat(issuer.size(), ":", issuer, jti);
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  EvictExpired(now);
  if (entries_.contains(key)) return false;
  if (entries_.size() >= max_entries_) return false;  // Fail closed.
  entries_.emplace(key, expires_at);
  by_expiry_.emplace(expires_at, std::move(key));
  return true;
}

size_t InMemoryReplayCache::size() {
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  EvictExpired(now);
  return entries_.size();
}

// ============================================================ JwtVerifier

absl::StatusOr<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(
    const Clock* clock, ReplayCache* replay_cache) {
  if (clock == nullptr || replay_cache == nullptr) {
    return absl::InvalidArgumentError(
        "JwtVerifier needs a clock and a replay cache");
  }
  return std::unique_ptr<JwtVerifier>(new JwtVerifier(clock, replay_cache));
}

absl::StatusOr<VerifiedToken> JwtVerifier::Verify(
    absl::string_view compact_jws, const Jwks& keys,
    const TokenPolicy& policy) const {
  if (policy.issuer.empty() || policy.audience.empty() ||
      policy.max_lifetime <= absl::ZeroDuration() ||
      policy.clock_skew < absl::ZeroDuration()) {
    return Error(absl::StatusCode::kInvalidArgument, kReasonTokenPolicyInvalid,
                 "token policy needs an issuer, an audience, a positive "
                 "max_lifetime and a non-negative clock_skew");
  }
  const absl::Time now = clock_->Now();

  // 1. Structure.
  if (compact_jws.empty()) return TokenInvalid("token is empty");
  if (compact_jws.size() > kMaxTokenBytes) {
    return TokenInvalid(
        absl::StrCat("token exceeds ", kMaxTokenBytes, " bytes"));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(compact_jws, '.');
  // An empty signature (as in alg "none") is left to the alg check.
  if (parts.size() != 3 || parts[0].empty()) {
    return TokenInvalid(
        "token is not a JWS compact serialization (header.payload.signature)");
  }
  absl::StatusOr<std::string> header_bytes = crypto::Base64UrlDecode(parts[0]);
  absl::StatusOr<std::string> payload_bytes = crypto::Base64UrlDecode(parts[1]);
  absl::StatusOr<std::string> signature = crypto::Base64UrlDecode(parts[2]);
  if (!header_bytes.ok() || !payload_bytes.ok() || !signature.ok()) {
    return TokenInvalid("token parts are not unpadded base64url");
  }
  std::string why;
  std::optional<Json> header = ParseStrictJson(*header_bytes, &why);
  if (!header.has_value() || !header->is_object()) {
    return TokenInvalid(absl::StrCat("token header is not a JSON object",
                                     why.empty() ? "" : ": ", why));
  }
  if (header->contains("crit")) {
    return TokenInvalid(
        "token header has \"crit\" extensions; none are "
        "supported");
  }
  if (header->contains("typ")) {
    const std::string* typ = StringMember(*header, "typ");
    std::string t = typ == nullptr ? "" : absl::AsciiStrToLower(*typ);
    if (t != "jwt" && t != "at+jwt" && t != "application/at+jwt") {
      return TokenInvalid("token header \"typ\" must be JWT or at+jwt");
    }
  }

  // 2. Algorithm: only the two asymmetric ones CareSeal registers keys for.
  const std::string* alg = StringMember(*header, "alg");
  if (alg == nullptr) return TokenInvalid("token header has no \"alg\"");
  if (absl::AsciiStrToLower(*alg) == "none") {
    return TokenInvalid("unsigned tokens (alg \"none\") are refused");
  }
  if (*alg != kAlgEs256 && *alg != kAlgEdDsa) {
    return TokenInvalid("token alg must be ES256 or EdDSA");
  }

  // 3. Key.
  const std::string* kid = StringMember(*header, "kid");
  if (kid == nullptr) return TokenInvalid("token header has no \"kid\"");
  const Jwks::Key* key = keys.Find(*kid);
  if (key == nullptr) {
    return TokenInvalid("unknown key id: not in the issuer's key set");
  }
  const bool es256 = *alg == kAlgEs256;
  if (es256 != (key->type == Jwks::Key::Type::kEs256)) {
    return TokenInvalid("token alg does not match the type of its key");
  }

  // 4. Signature.
  if (es256) {
    // JWS ES256 signatures are exactly R || S, 32 bytes each (RFC 7518
    // section 3.4). cjose would split any even length in half, accepting
    // zero-padded variants; refuse them here.
    if (signature->size() != kEs256SignatureBytes) {
      return TokenInvalid("ES256 signature must be 64 bytes");
    }
    cjose_err err{};
    CjoseJwsPtr jws(
        cjose_jws_import(compact_jws.data(), compact_jws.size(), &err));
    if (jws == nullptr) {
      crypto::OpenSslErrorString();
      return TokenInvalid("token is not a JWS cjose can read");
    }
    // Guard against parser differentials: cjose must see the same alg.
    const char* cjose_alg = cjose_header_get(cjose_jws_get_protected(jws.get()),
                                             CJOSE_HDR_ALG, &err);
    if (cjose_alg == nullptr || kAlgEs256 != cjose_alg) {
      return TokenInvalid("token header is ambiguous");
    }
    if (!cjose_jws_verify(jws.get(), key->ec.get(), &err)) {
      crypto::OpenSslErrorString();
      return TokenInvalid("token signature does not verify");
    }
    uint8_t* plaintext = nullptr;
    size_t plaintext_len = 0;
    if (!cjose_jws_get_plaintext(jws.get(), &plaintext, &plaintext_len, &err) ||
        absl::string_view(reinterpret_cast<const char*>(plaintext),
                          plaintext_len) != *payload_bytes) {
      return TokenInvalid("token payload is ambiguous");
    }
  } else {
    // cjose 0.6.2 has no EdDSA: verify the JWS signing input with OpenSSL.
    absl::string_view signing_input =
        compact_jws.substr(0, parts[0].size() + 1 + parts[1].size());
    if (!key->ed->Verify(*signature, signing_input).ok()) {
      crypto::OpenSslErrorString();
      return TokenInvalid("token signature does not verify");
    }
  }

  // The payload is authentic from here on.
  std::optional<Json> claims = ParseStrictJson(*payload_bytes, &why);
  if (!claims.has_value() || !claims->is_object()) {
    return TokenInvalid(absl::StrCat("token payload is not a JSON object",
                                     why.empty() ? "" : ": ", why));
  }

  // 5. Issuer.
  const std::string* iss = StringMember(*claims, "iss");
  if (iss == nullptr || *iss != policy.issuer) {
    return Unauthenticated(
        kReasonIssuerNotAllowed,
        "token issuer is not one the calling peer may speak for");
  }

  // 6. Audience.
  bool audience_ok = false;
  auto aud = claims->find("aud");
  if (aud != claims->end()) {
    if (aud->is_string()) {
      audience_ok = *aud == policy.audience;
    } else if (aud->is_array()) {
      for (const Json& a : *aud) {
        if (!a.is_string()) {
          audience_ok = false;
          break;
        }
        audience_ok |= a == policy.audience;
      }
    }
  }
  if (!audience_ok) {
    return TokenInvalid(absl::StrCat("token audience does not include \"",
                                     policy.audience, "\""));
  }

  // 7. Expiry.
  auto exp_it = claims->find("exp");
  if (exp_it == claims->end()) return TokenInvalid("token has no \"exp\"");
  std::optional<absl::Time> exp = NumericDate(*exp_it);
  if (!exp.has_value()) return TokenInvalid("token \"exp\" is malformed");
  if (now >= *exp + policy.clock_skew) {
    return Unauthenticated(kReasonTokenExpired, "token has expired");
  }

  // 8. Not before, issued at.
  std::optional<absl::Time> nbf;
  if (auto it = claims->find("nbf"); it != claims->end()) {
    nbf = NumericDate(*it);
    if (!nbf.has_value()) return TokenInvalid("token \"nbf\" is malformed");
    if (*nbf > now + policy.clock_skew) {
      return TokenInvalid("token is not valid yet (nbf)");
    }
  }
  auto iat_it = claims->find("iat");
  if (iat_it == claims->end()) return TokenInvalid("token has no \"iat\"");
  std::optional<absl::Time> iat = NumericDate(*iat_it);
  if (!iat.has_value()) return TokenInvalid("token \"iat\" is malformed");
  if (*iat > now + policy.clock_skew) {
    return TokenInvalid("token is issued in the future (iat)");
  }

  // 9. Lifetime.
  if (*exp < *iat) return TokenInvalid("token expires before it is issued");
  if (*exp - *iat > policy.max_lifetime) {
    return TokenInvalid(absl::StrCat("token lifetime exceeds ",
                                     DescribeDuration(policy.max_lifetime)));
  }

  // 10. Subject and token id.
  const std::string* sub = StringMember(*claims, "sub");
  if (sub == nullptr || sub->empty() || sub->size() > kMaxSubjectBytes) {
    return TokenInvalid(absl::StrCat("token needs a \"sub\" string of 1 to ",
                                     kMaxSubjectBytes, " bytes"));
  }
  const std::string* jti = StringMember(*claims, "jti");
  if (jti == nullptr || jti->empty() || jti->size() > kMaxJwtIdBytes) {
    return TokenInvalid(absl::StrCat("token needs a \"jti\" string of 1 to ",
                                     kMaxJwtIdBytes, " bytes"));
  }

  // 11. Replay: remembered for as long as the token could be accepted.
  if (!replay_cache_->CheckAndRemember(*iss, *jti, *exp + policy.clock_skew)) {
    return Unauthenticated(kReasonTokenReplayed,
                           "token was already used (jti seen before)");
  }

  VerifiedToken token;
  token.issuer = *iss;
  token.subject = *sub;
  token.audience = policy.audience;
  token.jwt_id = *jti;
  token.issued_at = *iat;
  token.not_before = nbf.value_or(*iat);
  token.expires_at = *exp;
  token.claims = *std::move(claims);
  return token;
}

// ============================================================== JwtSigner

namespace {

absl::StatusOr<std::string> SerializeClaims(const Json& claims) {
  if (!claims.is_object()) {
    return absl::InvalidArgumentError("JWT claims must be a JSON object");
  }
  try {
    return claims.dump();
  } catch (const Json::exception&) {
    return absl::InvalidArgumentError("JWT claims contain invalid UTF-8");
  }
}

// ES256 with cjose.
class CjoseEs256JwtSigner final : public JwtSigner {
 public:
  static absl::StatusOr<std::unique_ptr<JwtSigner>> FromKey(
      crypto::EvpPkeyPtr key, absl::string_view kid) {
    RETURN_IF_ERROR(CheckKid(kid));
    char group[64] = {0};
    size_t group_len = 0;
    if (!EVP_PKEY_is_a(key.get(), "EC") ||
        EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                       group, sizeof(group), &group_len) != 1 ||
        (absl::string_view(group, group_len) != "prime256v1" &&
         absl::string_view(group, group_len) != "P-256")) {
      crypto::OpenSslErrorString();
      return KeyInvalid("ES256 needs an EC P-256 private key");
    }
    ASSIGN_OR_RETURN(std::string d,
                     P256Param(key.get(), OSSL_PKEY_PARAM_PRIV_KEY));
    ASSIGN_OR_RETURN(std::string x,
                     P256Param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X));
    ASSIGN_OR_RETURN(std::string y,
                     P256Param(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y));
    cjose_jwk_ec_keyspec spec{};
    spec.crv = CJOSE_JWK_EC_P_256;
    spec.d = reinterpret_cast<uint8_t*>(d.data());
    spec.dlen = d.size();
    spec.x = reinterpret_cast<uint8_t*>(x.data());
    spec.xlen = x.size();
    spec.y = reinterpret_cast<uint8_t*>(y.data());
    spec.ylen = y.size();
    cjose_err err{};
    CjoseJwkPtr jwk(cjose_jwk_create_EC_spec(&spec, &err));
    OPENSSL_cleanse(d.data(), d.size());
    if (jwk == nullptr) return CjoseFailure("cjose_jwk_create_EC_spec", err);
    Json public_jwk = {{"kty", "EC"},
                       {"crv", "P-256"},
                       {"x", crypto::Base64UrlEncode(x)},
                       {"y", crypto::Base64UrlEncode(y)},
                       {"kid", std::string(kid)},
                       {"alg", kAlgEs256},
                       {"use", "sig"}};
    return std::unique_ptr<JwtSigner>(new CjoseEs256JwtSigner(
        std::move(jwk), std::string(kid), JwksJson(std::move(public_jwk))));
  }

  absl::StatusOr<std::string> Sign(const Json& claims) const override {
    ASSIGN_OR_RETURN(std::string payload, SerializeClaims(claims));
    cjose_err err{};
    CjoseHeaderPtr header(cjose_header_new(&err));
    if (header == nullptr ||
        !cjose_header_set(header.get(), CJOSE_HDR_ALG, CJOSE_HDR_ALG_ES256,
                          &err) ||
        !cjose_header_set(header.get(), CJOSE_HDR_KID, kid_.c_str(), &err) ||
        !cjose_header_set(header.get(), "typ", "JWT", &err)) {
      return CjoseFailure("cjose_header_set", err);
    }
    CjoseJwsPtr jws(
        cjose_jws_sign(jwk_.get(), header.get(),
                       reinterpret_cast<const uint8_t*>(payload.data()),
                       payload.size(), &err));
    if (jws == nullptr) return CjoseFailure("cjose_jws_sign", err);
    const char* compact = nullptr;
    if (!cjose_jws_export(jws.get(), &compact, &err) || compact == nullptr) {
      return CjoseFailure("cjose_jws_export", err);
    }
    return std::string(compact);
  }

  std::string PublicJwks() const override { return public_jwks_; }
  const std::string& key_id() const override { return kid_; }
  absl::string_view algorithm() const override { return kAlgEs256; }

 private:
  CjoseEs256JwtSigner(CjoseJwkPtr jwk, std::string kid, std::string public_jwks)
      : jwk_(std::move(jwk)),
        kid_(std::move(kid)),
        public_jwks_(std::move(public_jwks)) {}

  const CjoseJwkPtr jwk_;
  const std::string kid_;
  const std::string public_jwks_;
};

// EdDSA with OpenSSL (cjose 0.6.2 has no OKP keys).
class OpenSslEd25519JwtSigner final : public JwtSigner {
 public:
  static absl::StatusOr<std::unique_ptr<JwtSigner>> FromSigner(
      std::unique_ptr<crypto::OpenSslEd25519Signer> signer,
      absl::string_view kid) {
    RETURN_IF_ERROR(CheckKid(kid));
    Json public_jwk = {{"kty", "OKP"},
                       {"crv", "Ed25519"},
                       {"x", crypto::Base64UrlEncode(signer->public_key_raw())},
                       {"kid", std::string(kid)},
                       {"alg", kAlgEdDsa},
                       {"use", "sig"}};
    Json header = {
        {"alg", kAlgEdDsa}, {"kid", std::string(kid)}, {"typ", "JWT"}};
    return std::unique_ptr<JwtSigner>(
        new OpenSslEd25519JwtSigner(std::move(signer), std::string(kid),
                                    crypto::Base64UrlEncode(header.dump()),
                                    JwksJson(std::move(public_jwk))));
  }

  absl::StatusOr<std::string> Sign(const Json& claims) const override {
    ASSIGN_OR_RETURN(std::string payload, SerializeClaims(claims));
    std::string signing_input =
        absl::StrCat(header_b64_, ".", crypto::Base64UrlEncode(payload));
    ASSIGN_OR_RETURN(std::string signature, signer_->Sign(signing_input));
    return absl::StrCat(signing_input, ".", crypto::Base64UrlEncode(signature));
  }

  std::string PublicJwks() const override { return public_jwks_; }
  const std::string& key_id() const override { return kid_; }
  absl::string_view algorithm() const override { return kAlgEdDsa; }

 private:
  OpenSslEd25519JwtSigner(std::unique_ptr<crypto::OpenSslEd25519Signer> signer,
                          std::string kid, std::string header_b64,
                          std::string public_jwks)
      : signer_(std::move(signer)),
        kid_(std::move(kid)),
        header_b64_(std::move(header_b64)),
        public_jwks_(std::move(public_jwks)) {}

  const std::unique_ptr<crypto::OpenSslEd25519Signer> signer_;
  const std::string kid_;
  const std::string header_b64_;
  const std::string public_jwks_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<JwtSigner>> JwtSigner::CreateEs256(
    absl::string_view private_key_pem, absl::string_view kid) {
  crypto::BioPtr bio = crypto::NewReadOnlyMemBio(private_key_pem);
  if (bio == nullptr) return KeyInvalid("private key PEM is too large");
  crypto::EvpPkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return KeyInvalid(
        absl::StrCat("cannot read an unencrypted PEM private key: ",
                     crypto::OpenSslErrorString()));
  }
  return CjoseEs256JwtSigner::FromKey(std::move(key), kid);
}

absl::StatusOr<std::unique_ptr<JwtSigner>> JwtSigner::GenerateEs256(
    absl::string_view kid) {
  crypto::EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return crypto::OpenSslFailure("P-256 key generation");
  return CjoseEs256JwtSigner::FromKey(std::move(key), kid);
}

absl::StatusOr<std::unique_ptr<JwtSigner>> JwtSigner::CreateEd25519(
    absl::string_view private_key_pem, absl::string_view kid) {
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::OpenSslEd25519Signer> signer,
                   crypto::OpenSslEd25519Signer::Create(private_key_pem));
  return OpenSslEd25519JwtSigner::FromSigner(std::move(signer), kid);
}

absl::StatusOr<std::unique_ptr<JwtSigner>> JwtSigner::GenerateEd25519(
    absl::string_view kid) {
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::OpenSslEd25519Signer> signer,
                   crypto::OpenSslEd25519Signer::Generate());
  return OpenSslEd25519JwtSigner::FromSigner(std::move(signer), kid);
}

}  // namespace careseal::authn
