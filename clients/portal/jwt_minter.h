// Mints the short-lived patient JWTs the portal presents to CareSeal on
// behalf of a verified portal session (docs/IDENTITY.md, "Tokens"): EdDSA
// (Ed25519) with OpenSSL, claims iss, sub (the patient's resource name), aud,
// iat, nbf, exp, a random jti and sid (the session token RedeemLink
// returned). The portal is registered in identity as an ISSUER_KIND_PORTAL
// issuer whose JWKS is PublicJwks().
//
// clients/ never includes services/, so this does not reuse
// services/common/authn; it only produces tokens, it never verifies them.
// Thread-safe: Mint may be called from several threads at once.
#ifndef CARESEAL_CLIENTS_PORTAL_JWT_MINTER_H_
#define CARESEAL_CLIENTS_PORTAL_JWT_MINTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace careseal::portal {

class JwtMinter {
 public:
  struct Options {
    std::string issuer;                 // the `iss` registered in identity
    std::string audience = "careseal";  // the server's --token_audience
    std::string kid;                    // key id published in the JWKS
    absl::Duration lifetime = absl::Minutes(2);  // at most 15 minutes
  };

  // From an Ed25519 private key in PEM (PKCS#8).
  static absl::StatusOr<std::unique_ptr<JwtMinter>> FromPem(
      Options options, absl::string_view private_key_pem);
  // A fresh key (for tests and for `--generate_token_key`).
  static absl::StatusOr<std::unique_ptr<JwtMinter>> Generate(Options options);

  ~JwtMinter();

  // A token for `patient` in portal session `sid`, issued at `now`.
  absl::StatusOr<std::string> Mint(absl::string_view patient,
                                   absl::string_view sid, absl::Time now) const;
  // {"keys":[{"kty":"OKP","crv":"Ed25519","x":...,"kid":...,"alg":"EdDSA",
  //  "use":"sig"}]} for RegisterIssuer / UpdateIssuer.
  std::string PublicJwks() const;
  // The private key as PKCS#8 PEM (to save a generated key).
  absl::StatusOr<std::string> PrivateKeyPem() const;

 private:
  struct Key;
  JwtMinter(Options options, std::unique_ptr<Key> key);
  Options options_;
  std::unique_ptr<Key> key_;
};

}  // namespace careseal::portal

#endif  // CARESEAL_CLIENTS_PORTAL_JWT_MINTER_H_
