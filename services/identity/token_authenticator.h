// TokenAuthenticator: turns a peer identity and the end user's bearer token
// (a JWT) into the call's Principal. Plain C++ (the gRPC edge adapts it to
// careseal::Authenticator in identity_module.cc).
//
// A call without a token is the peer acting for itself (PrincipalForPeer).
// With a token, in this order (every failure is UNAUTHENTICATED):
//   1. The token's `iss` (read unverified, only to choose the key set)
//      must name an issuer registered for a tenant whose peer_identities
//      list the calling peer, that is active (not revoked), and (for an EHR
//      peer) of the peer's own tenant ........................
//      ISSUER_NOT_ALLOWED A portal issuer registered by several tenants under
//      one `iss` is chosen by the tenant of `sub` (tenants/{t}/patients/{p}).
//   2. authn::JwtVerifier::Verify with that issuer's JWKS (key by `kid`,
//      ES256 via cjose or EdDSA via OpenSSL) and the server's audience:
//      signature, iss, aud, exp (TOKEN_EXPIRED), nbf/iat with 30 s skew,
//      lifetime <= 15 min, sub, jti; then jti single use (TOKEN_REPLAYED).
//      Anything else malformed is TOKEN_INVALID.
//   3. `sub` names a principal of the issuer's tenant:
//      EHR issuer: the Clinician registered with (issuer, subject); the
//        role comes from the record (clinician, else auditor), never from
//        claims. Unknown ............................... PRINCIPAL_NOT_FOUND
//        Disabled .......................................... PRINCIPAL_DISABLED
//      Portal issuer: `sub` is tenants/{t}/patients/{p} of the issuer's
//        tenant and the patient exists and is active (same reasons).
//
// Replay cache: in this process's memory (authn::InMemoryReplayCache),
// entries kept until exp + skew. A restarted process, or another replica,
// does not know the jti values accepted before: a token captured in transit
// could be replayed there within its (at most 15 minute) life. See
// docs/IDENTITY.md.
//
// Thread-safe.
#ifndef CARESEAL_SERVICES_IDENTITY_TOKEN_AUTHENTICATOR_H_
#define CARESEAL_SERVICES_IDENTITY_TOKEN_AUTHENTICATOR_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/authn/jwt.h"
#include "services/common/identity.h"
#include "services/common/platform/principal.h"
#include "services/identity/identity_manager.h"

namespace careseal::identity {

inline constexpr absl::string_view kReasonPrincipalNotFound =
    "PRINCIPAL_NOT_FOUND";
inline constexpr absl::string_view kReasonPrincipalDisabled =
    "PRINCIPAL_DISABLED";

struct TokenAuthenticatorOptions {
  // The `aud` every token must carry: this server's configured audience.
  std::string audience = "careseal";
  absl::Duration max_lifetime = absl::Minutes(15);
  absl::Duration clock_skew = absl::Seconds(30);
};

class TokenAuthenticator {
 public:
  // REQUIRES: `manager` and `clock` outlive the authenticator.
  static absl::StatusOr<std::unique_ptr<TokenAuthenticator>> Create(
      const IdentityManager* manager, const Clock* clock,
      TokenAuthenticatorOptions options);

  absl::StatusOr<Principal> Authenticate(const PeerIdentity& peer,
                                         absl::string_view bearer_token) const;

 private:
  TokenAuthenticator(const IdentityManager* manager,
                     TokenAuthenticatorOptions options)
      : manager_(manager), options_(std::move(options)) {}

  // The parsed key set of `issuer`, parsed once per stored version.
  absl::StatusOr<std::shared_ptr<const authn::Jwks>> KeysOf(
      const Issuer& issuer) const;

  const IdentityManager* const manager_;
  const TokenAuthenticatorOptions options_;
  std::unique_ptr<authn::InMemoryReplayCache> replay_cache_;
  std::unique_ptr<authn::JwtVerifier> verifier_;

  struct CachedKeys {
    std::string jwks_json;
    std::shared_ptr<const authn::Jwks> keys;
  };
  mutable absl::Mutex mu_;
  // By issuer resource name.
  mutable absl::flat_hash_map<std::string, CachedKeys> keys_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace careseal::identity

#endif  // CARESEAL_SERVICES_IDENTITY_TOKEN_AUTHENTICATOR_H_
