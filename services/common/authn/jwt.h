// End-user bearer tokens: JWTs (RFC 7519) in JWS compact serialization,
// signed with ES256 (ECDSA P-256 / SHA-256, verified by cjose) or EdDSA
// (Ed25519, verified by OpenSSL, since cjose 0.6.2 knows no OKP keys).
//
// A calling peer (an EHR, the portal) may speak for one issuer; the caller of
// JwtVerifier::Verify picks that issuer's key set (Jwks) and the TokenPolicy
// naming the issuer and this service's audience. Verify() then checks
// everything else, in a fixed order, and returns UNAUTHENTICATED with one of
// the kReason* reasons below. Error messages never echo the token or claim
// values.
//
// No gRPC here: the gRPC edge reads `authorization: Bearer <jwt>` metadata
// and hands the JWT to Verify().
#ifndef CARESEAL_SERVICES_COMMON_AUTHN_JWT_H_
#define CARESEAL_SERVICES_COMMON_AUTHN_JWT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "services/common/clock.h"

namespace careseal::authn {

// ---------------------------------------------------------------- Reasons

// UNAUTHENTICATED: the token is malformed, uses a refused algorithm or an
// unknown key, has a bad signature, names the wrong audience, is not yet
// valid, lives too long or lacks a required claim.
inline constexpr absl::string_view kReasonTokenInvalid = "TOKEN_INVALID";
// UNAUTHENTICATED: `iss` is not the issuer the calling peer may speak for.
inline constexpr absl::string_view kReasonIssuerNotAllowed =
    "ISSUER_NOT_ALLOWED";
// UNAUTHENTICATED: `exp` (plus the allowed clock skew) has passed.
inline constexpr absl::string_view kReasonTokenExpired = "TOKEN_EXPIRED";
// UNAUTHENTICATED: this (issuer, jti) was already accepted once.
inline constexpr absl::string_view kReasonTokenReplayed = "TOKEN_REPLAYED";
// INVALID_ARGUMENT: a JWK Set that is unusable (not JSON, a key of an
// unsupported type or curve, a key without `kid`, duplicate `kid`s, ...).
inline constexpr absl::string_view kReasonInvalidJwks = "INVALID_JWKS";
// INVALID_ARGUMENT: a JWK Set that carries private key material (`d`).
// Whoever registered it has leaked the key and must rotate it.
inline constexpr absl::string_view kReasonJwksContainsPrivateKey =
    "JWKS_CONTAINS_PRIVATE_KEY";
// INVALID_ARGUMENT: a TokenPolicy that cannot be enforced (empty issuer or
// audience, non-positive lifetime, negative skew). A caller bug.
inline constexpr absl::string_view kReasonTokenPolicyInvalid =
    "TOKEN_POLICY_INVALID";

// The JWS `alg` values CareSeal accepts.
inline constexpr absl::string_view kAlgEs256 = "ES256";
inline constexpr absl::string_view kAlgEdDsa = "EdDSA";

// Upper bounds on untrusted input.
inline constexpr size_t kMaxTokenBytes = 8 * 1024;
inline constexpr size_t kMaxJwksBytes = 64 * 1024;
inline constexpr size_t kMaxJwksKeys = 32;
inline constexpr size_t kMaxJwtIdBytes = 256;

// ------------------------------------------------------------------- Jwks

// The public keys of one issuer: a JWK Set (RFC 7517 section 5) restricted
// to signature keys CareSeal accepts:
//   {"kty":"EC",  "crv":"P-256",   "x":..., "y":..., "kid":...}  (ES256)
//   {"kty":"OKP", "crv":"Ed25519", "x":...,           "kid":...}  (EdDSA)
// Optional members `alg` (must match the key type), `use` (must be "sig")
// and `key_ops` (must include "verify") are checked; other members ignored.
// Immutable after Parse(); copies share the keys. Thread-safe.
class Jwks {
 public:
  // INVALID_ARGUMENT / kReasonJwksContainsPrivateKey if any key has `d`;
  // INVALID_ARGUMENT / kReasonInvalidJwks for anything else unusable: not a
  // JSON object with a non-empty `keys` array, duplicate JSON member names,
  // more than kMaxJwksKeys keys, an unknown kty/crv, a missing or duplicate
  // `kid`, a coordinate that is not base64url of the right length or not on
  // the curve. The message names the offending key by index and kid.
  static absl::StatusOr<Jwks> Parse(absl::string_view jwks_json);

  Jwks(const Jwks&) = default;
  Jwks& operator=(const Jwks&) = default;
  Jwks(Jwks&&) = default;
  Jwks& operator=(Jwks&&) = default;
  ~Jwks();

  size_t size() const { return keys_.size(); }
  bool Contains(absl::string_view kid) const { return keys_.contains(kid); }
  // The key ids, sorted.
  std::vector<std::string> KeyIds() const;

 private:
  friend class JwtVerifier;
  struct Key;  // Defined in jwt.cc: the cjose or OpenSSL key.

  Jwks() = default;
  // Null if no key has this id.
  const Key* Find(absl::string_view kid) const;

  absl::flat_hash_map<std::string, std::shared_ptr<const Key>> keys_;
};

// ----------------------------------------------------------- Token policy

// What a token must say to be accepted. Chosen by the caller per peer: the
// issuer the peer may speak for and this service's audience.
struct TokenPolicy {
  std::string issuer;    // `iss` must equal this.
  std::string audience;  // `aud` (string or array) must contain this.
  absl::Duration max_lifetime = absl::Minutes(15);  // Bound on exp - iat.
  absl::Duration clock_skew = absl::Seconds(30);    // Tolerance both ways.
};

// A token that passed every check.
struct VerifiedToken {
  std::string issuer;
  std::string subject;   // `sub`: an opaque user id, never patient data.
  std::string audience;  // The policy audience that `aud` contained.
  std::string jwt_id;    // `jti`.
  absl::Time issued_at;
  absl::Time not_before;  // `nbf`, or `iat` when the token has no `nbf`.
  absl::Time expires_at;
  nlohmann::json claims;  // The whole payload, for role/tenant claims.
};

// ----------------------------------------------------------- Replay cache

// Remembers accepted (issuer, jti) pairs so a stolen token cannot be played
// twice. Implementations are thread-safe.
class ReplayCache {
 public:
  virtual ~ReplayCache() = default;
  // Records (issuer, jti) and returns true if it was not already recorded;
  // returns false if it was (a replay), or if the pair cannot be recorded
  // (implementations fail closed). `expires_at` is the last instant at which
  // the token could still be accepted; the pair must be kept at least until
  // then and may be forgotten afterwards.
  virtual bool CheckAndRemember(absl::string_view issuer, absl::string_view jti,
                                absl::Time expires_at) = 0;
};

// A ReplayCache in this process's memory.
//
// Eviction: every call first drops the entries whose expires_at has passed
// on `clock`. Bound: at most `max_entries` live entries. When the cache is
// full of live entries a new pair is REFUSED (CheckAndRemember returns
// false, so the token is rejected as replayed) rather than forgetting a live
// pair, which would let that token be replayed: the cache fails closed. With
// the default 15-minute lifetime, the default bound absorbs over 1,000 new
// tokens per second per replica.
//
// Multi-replica deployments: each replica remembers only the tokens it saw,
// so a token replayed against another replica is accepted there. Such
// deployments need a ReplayCache over a shared store (e.g. the database,
// with a unique (issuer, jti) key and an expiry column) or sticky routing.
//
// Thread-safe.
class InMemoryReplayCache final : public ReplayCache {
 public:
  static constexpr size_t kDefaultMaxEntries = 1 << 20;

  // REQUIRES: `clock` is non-null and outlives the cache; max_entries > 0.
  explicit InMemoryReplayCache(const Clock* clock,
                               size_t max_entries = kDefaultMaxEntries);
  InMemoryReplayCache(const InMemoryReplayCache&) = delete;
  InMemoryReplayCache& operator=(const InMemoryReplayCache&) = delete;

  bool CheckAndRemember(absl::string_view issuer, absl::string_view jti,
                        absl::Time expires_at) override;

  // Live entries (after evicting expired ones).
  size_t size();

 private:
  void EvictExpired(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;
  const size_t max_entries_;
  absl::Mutex mu_;
  // Key: length-prefixed issuer followed by jti (unambiguous).
  absl::flat_hash_map<std::string, absl::Time> entries_ ABSL_GUARDED_BY(mu_);
  // The same entries ordered by expiry, for eviction.
  absl::btree_multimap<absl::Time, std::string> by_expiry_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------- Verifier

// Verifies compact JWS JWTs. Immutable and thread-safe (as far as the
// ReplayCache is).
class JwtVerifier {
 public:
  // INVALID_ARGUMENT if either pointer is null.
  // REQUIRES: `clock` and `replay_cache` outlive the verifier.
  static absl::StatusOr<std::unique_ptr<JwtVerifier>> Create(
      const Clock* clock, ReplayCache* replay_cache);

  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // Checks `compact_jws` against `keys` and `policy`, in this order; the
  // first failure is returned as UNAUTHENTICATED with the reason shown:
  //   1. structure: three strict base64url parts, at most kMaxTokenBytes,
  //      a JSON-object header without duplicate members or `crit` ... INVALID
  //   2. header `alg` is ES256 or EdDSA (never none, HS*, RS*, ...) . INVALID
  //   3. header `kid` names a key in `keys`, of the `alg`'s type ..... INVALID
  //   4. the signature (ES256: cjose; EdDSA: OpenSSL) ................ INVALID
  //   5. `iss` equals policy.issuer .........................
  //   ISSUER_NOT_ALLOWED
  //   6. `aud` (string or array) contains policy.audience ............ INVALID
  //   7. `exp` present, and now < exp + skew ......................... EXPIRED
  //   8. `nbf` (if present) and `iat` (required) <= now + skew ....... INVALID
  //   9. exp - iat <= policy.max_lifetime ............................ INVALID
  //  10. `sub` a non-empty string, `jti` a non-empty string ........ INVALID
  //  11. (iss, jti) not seen before (remembered until exp + skew) .. REPLAYED
  // A token that fails any check is not remembered. INVALID_ARGUMENT /
  // kReasonTokenPolicyInvalid if `policy` is unusable.
  absl::StatusOr<VerifiedToken> Verify(absl::string_view compact_jws,
                                       const Jwks& keys,
                                       const TokenPolicy& policy) const;

 private:
  JwtVerifier(const Clock* clock, ReplayCache* replay_cache)
      : clock_(clock), replay_cache_(replay_cache) {}

  const Clock* const clock_;
  ReplayCache* const replay_cache_;
};

// ------------------------------------------------------------------ Signer

// Mints JWTs: for tests, and for the portal, which issues its verified
// patients' tokens. The header is {"alg":..., "kid":..., "typ":"JWT"}; the
// payload is the caller's claims, unchanged (the caller sets iss, sub, aud,
// iat, exp, jti, ...). Implementations are immutable and thread-safe.
class JwtSigner {
 public:
  virtual ~JwtSigner() = default;

  // ES256 from a PKCS#8 or SEC1 PEM P-256 private key; signs with cjose.
  // INVALID_ARGUMENT / KEY_INVALID for another key type or curve, encrypted
  // or unreadable PEM, or an empty kid.
  static absl::StatusOr<std::unique_ptr<JwtSigner>> CreateEs256(
      absl::string_view private_key_pem, absl::string_view kid);
  // EdDSA from a PKCS#8 PEM Ed25519 private key; signs with OpenSSL.
  static absl::StatusOr<std::unique_ptr<JwtSigner>> CreateEd25519(
      absl::string_view private_key_pem, absl::string_view kid);
  // Fresh keys from the system CSPRNG.
  static absl::StatusOr<std::unique_ptr<JwtSigner>> GenerateEs256(
      absl::string_view kid);
  static absl::StatusOr<std::unique_ptr<JwtSigner>> GenerateEd25519(
      absl::string_view kid);

  // The compact JWS of `claims`. INVALID_ARGUMENT if `claims` is not a JSON
  // object; INTERNAL if the crypto library fails.
  virtual absl::StatusOr<std::string> Sign(
      const nlohmann::json& claims) const = 0;
  // {"keys":[<this signer's public JWK with kid, alg and use>]}.
  virtual std::string PublicJwks() const = 0;
  virtual const std::string& key_id() const = 0;
  // kAlgEs256 or kAlgEdDsa.
  virtual absl::string_view algorithm() const = 0;
};

}  // namespace careseal::authn

#endif  // CARESEAL_SERVICES_COMMON_AUTHN_JWT_H_
