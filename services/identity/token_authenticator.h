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
//        tenant and the patient exists and is active (same reasons), and
//        `sid` is the session token of an active portal session of that
//        patient within its idle (15 min) and absolute (12 h) limits
//        (SESSION_EXPIRED); each such call extends the idle limit.
//   4. Break-glass (metadata `careseal-break-glass: {grant}`): only for a
//      clinician (by token or by clinician certificate) presenting one of
//      their own grants: the principal becomes role break_glass for the
//      grant's patient, carrying the grant's name and the end of its access
//      (an ended or expired grant is then refused by the edge and the
//      policy: BREAK_GLASS_EXPIRED). Anyone else, or a grant that is not
//      theirs or does not exist: PERMISSION_DENIED
//      (BREAK_GLASS_GRANT_INVALID).
//
// Tenant state: a principal of a tenant that exists and is suspended
// (every role but admin, portal and system) is refused with
// FAILED_PRECONDITION (TENANT_SUSPENDED) on every call.
//
// Replay cache: durable (SqlReplayCache, sql_replay_cache.h) when created
// with a database: a restarted process refuses a jti accepted before, for
// as long as the token could be valid (exp + skew). Without a database, in
// this process's memory only. See docs/IDENTITY.md.
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
#include "services/common/sql/database.h"
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
  // REQUIRES: `manager`, `clock` and `db` outlive the authenticator; `db`
  // (nullable: in-memory replay cache) has ReplayCacheMigrations applied.
  static absl::StatusOr<std::unique_ptr<TokenAuthenticator>> Create(
      const IdentityManager* manager, const Clock* clock,
      TokenAuthenticatorOptions options, sql::Database* db = nullptr);

  absl::StatusOr<Principal> Authenticate(
      const PeerIdentity& peer, absl::string_view bearer_token, absl::Time now,
      absl::string_view break_glass_grant = "") const;

 private:
  absl::StatusOr<Principal> AuthenticateToken(const PeerIdentity& peer,
                                              absl::string_view bearer_token,
                                              absl::Time now) const;
  // Step 4 on an authenticated principal.
  absl::StatusOr<Principal> ApplyBreakGlass(
      Principal p, absl::string_view break_glass_grant) const;

  TokenAuthenticator(const IdentityManager* manager,
                     TokenAuthenticatorOptions options)
      : manager_(manager), options_(std::move(options)) {}

  // The parsed key set of `issuer`, parsed once per stored version.
  absl::StatusOr<std::shared_ptr<const authn::Jwks>> KeysOf(
      const Issuer& issuer) const;

  const IdentityManager* const manager_;
  const TokenAuthenticatorOptions options_;
  std::unique_ptr<authn::ReplayCache> replay_cache_;
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
