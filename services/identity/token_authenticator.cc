#include "services/identity/token_authenticator.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "services/common/crypto/encoding.h"
#include "services/common/macros.h"
#include "services/common/platform/resource_name.h"
#include "services/common/status.h"
#include "services/identity/sql_replay_cache.h"

namespace careseal::identity {
namespace {

absl::Status TokenInvalid(absl::string_view message) {
  return Unauthenticated(authn::kReasonTokenInvalid, message);
}

absl::Status IssuerNotAllowed() {
  return Unauthenticated(
      authn::kReasonIssuerNotAllowed,
      "the token's issuer is not registered, is revoked, or may not be "
      "presented by this peer");
}

// `iss` and `sub` of a token's payload, read WITHOUT verifying anything:
// only to choose the issuer whose keys then verify the token (which checks
// both again). Empty strings if absent.
struct UnverifiedClaims {
  std::string issuer;
  std::string subject;
};

absl::StatusOr<UnverifiedClaims> PeekClaims(absl::string_view token) {
  if (token.empty() || token.size() > authn::kMaxTokenBytes) {
    return TokenInvalid("the bearer token is empty or too large");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) {
    return TokenInvalid(
        "token is not a JWS compact serialization (header.payload.signature)");
  }
  absl::StatusOr<std::string> payload = crypto::Base64UrlDecode(parts[1]);
  if (!payload.ok()) return TokenInvalid("token parts are not base64url");
  nlohmann::json claims =
      nlohmann::json::parse(*payload, nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object()) {
    return TokenInvalid("token payload is not a JSON object");
  }
  UnverifiedClaims out;
  if (auto it = claims.find("iss"); it != claims.end() && it->is_string()) {
    out.issuer = it->get<std::string>();
  }
  if (auto it = claims.find("sub"); it != claims.end() && it->is_string()) {
    out.subject = it->get<std::string>();
  }
  if (out.issuer.empty()) return TokenInvalid("token has no \"iss\"");
  return out;
}

bool Lists(const Issuer& issuer, absl::string_view peer_uri) {
  return std::find(issuer.peer_identities.begin(), issuer.peer_identities.end(),
                   peer_uri) != issuer.peer_identities.end();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenAuthenticator>> TokenAuthenticator::Create(
    const IdentityManager* manager, const Clock* clock,
    TokenAuthenticatorOptions options, sql::Database* db) {
  if (manager == nullptr || clock == nullptr || options.audience.empty()) {
    return InvalidField("token_audience", "INVALID_TOKEN_AUDIENCE",
                        "the token authenticator needs an audience");
  }
  std::unique_ptr<TokenAuthenticator> a(
      new TokenAuthenticator(manager, std::move(options)));
  if (db != nullptr) {
    a->replay_cache_ = std::make_unique<SqlReplayCache>(db, clock);
  } else {
    a->replay_cache_ = std::make_unique<authn::InMemoryReplayCache>(clock);
  }
  ASSIGN_OR_RETURN(a->verifier_,
                   authn::JwtVerifier::Create(clock, a->replay_cache_.get()));
  return a;
}

absl::StatusOr<std::shared_ptr<const authn::Jwks>> TokenAuthenticator::KeysOf(
    const Issuer& issuer) const {
  const std::string name = issuer.Name();
  {
    absl::MutexLock lock(&mu_);
    auto it = keys_.find(name);
    if (it != keys_.end() && it->second.jwks_json == issuer.jwks_json) {
      return it->second.keys;
    }
  }
  absl::StatusOr<authn::Jwks> parsed = authn::Jwks::Parse(issuer.jwks_json);
  if (!parsed.ok()) {
    // Registered key sets were validated; this is a stored-data problem.
    return Internal("ISSUER_KEYS_UNREADABLE",
                    "the issuer's registered key set cannot be read");
  }
  auto keys = std::make_shared<const authn::Jwks>(*std::move(parsed));
  absl::MutexLock lock(&mu_);
  keys_[name] = CachedKeys{issuer.jwks_json, keys};
  return keys;
}

absl::StatusOr<Principal> TokenAuthenticator::Authenticate(
    const PeerIdentity& peer, absl::string_view bearer_token, absl::Time now,
    absl::string_view break_glass_grant) const {
  ASSIGN_OR_RETURN(Principal p, AuthenticateToken(peer, bearer_token, now));
  if (!p.tenant.empty() && p.role != Role::kAdmin && p.role != Role::kPortal &&
      p.role != Role::kSystem) {
    ASSIGN_OR_RETURN(bool suspended, manager_->TenantSuspended(p.tenant));
    if (suspended) {
      return FailedPrecondition("TENANT_SUSPENDED",
                                "the clinic's tenant is suspended; its data "
                                "and audit log are kept");
    }
  }
  if (break_glass_grant.empty()) return p;
  return ApplyBreakGlass(std::move(p), break_glass_grant);
}

absl::StatusOr<Principal> TokenAuthenticator::ApplyBreakGlass(
    Principal p, absl::string_view break_glass_grant) const {
  const absl::Status invalid = PermissionDenied(
      "BREAK_GLASS_GRANT_INVALID",
      "the careseal-break-glass metadata must name one of the calling "
      "clinician's own break-glass grants");
  if (p.role != Role::kClinician) return invalid;
  absl::StatusOr<ResourceName> name = ResourceName::Parse(
      "tenants/{tenant}/clinicians/{clinician}/breakGlassGrants/{grant}",
      break_glass_grant, "careseal-break-glass");
  if (!name.ok() || name->Get("tenant") != p.tenant ||
      absl::StrCat("tenants/", name->Get("tenant"), "/clinicians/",
                   name->Get("clinician")) != p.actor) {
    return invalid;
  }
  absl::StatusOr<BreakGlassGrant> grant = manager_->GrantForUse(
      name->Get("tenant"), name->Get("clinician"), name->Get("grant"));
  if (!grant.ok()) {
    return grant.status().code() == absl::StatusCode::kNotFound
               ? invalid
               : grant.status();
  }
  p.role = Role::kBreakGlass;
  p.patient = grant->patient_id;
  p.break_glass_grant = grant->Name();
  p.break_glass_until = grant->LiveUntil();
  p.valid_until = std::min(p.valid_until, p.break_glass_until);
  return p;
}

absl::StatusOr<Principal> TokenAuthenticator::AuthenticateToken(
    const PeerIdentity& peer, absl::string_view bearer_token,
    absl::Time now) const {
  if (bearer_token.empty()) return PrincipalForPeer(peer);
  // Only EHRs (for their clinicians) and the portal (for its patients)
  // present end-user tokens.
  if (peer.kind != PeerIdentity::Kind::kEhr &&
      peer.kind != PeerIdentity::Kind::kPortal) {
    return IssuerNotAllowed();
  }
  ASSIGN_OR_RETURN(UnverifiedClaims peek, PeekClaims(bearer_token));
  ASSIGN_OR_RETURN(std::vector<Issuer> issuers,
                   manager_->IssuersByUri(peek.issuer));

  // The tenant a portal token's subject names (unverified; re-checked below
  // on the verified subject).
  std::string subject_tenant;
  if (peer.kind == PeerIdentity::Kind::kPortal) {
    std::vector<std::string> s = absl::StrSplit(peek.subject, '/');
    if (s.size() == 4 && s[0] == "tenants") subject_tenant = s[1];
  }
  const Issuer* chosen = nullptr;
  for (const Issuer& i : issuers) {
    if (i.state != IssuerState::kActive || !Lists(i, peer.uri)) continue;
    if (peer.kind == PeerIdentity::Kind::kEhr) {
      if (i.kind != IssuerKind::kEhr || i.tenant != peer.tenant) continue;
    } else {
      if (i.kind != IssuerKind::kPortal || i.tenant != subject_tenant) continue;
    }
    chosen = &i;
    break;
  }
  if (chosen == nullptr) return IssuerNotAllowed();

  ASSIGN_OR_RETURN(std::shared_ptr<const authn::Jwks> keys, KeysOf(*chosen));
  authn::TokenPolicy policy;
  policy.issuer = chosen->issuer_uri;
  policy.audience = options_.audience;
  policy.max_lifetime = options_.max_lifetime;
  policy.clock_skew = options_.clock_skew;
  ASSIGN_OR_RETURN(authn::VerifiedToken token,
                   verifier_->Verify(bearer_token, *keys, policy));

  Principal p;
  p.peer = peer.uri;
  p.tenant = chosen->tenant;
  // As long as the token is accepted (exp plus the allowed clock skew).
  p.valid_until = token.expires_at + options_.clock_skew;
  if (chosen->kind == IssuerKind::kEhr) {
    absl::StatusOr<Clinician> c =
        manager_->ClinicianBySubject(chosen->tenant, chosen->id, token.subject);
    if (!c.ok()) {
      if (c.status().code() != absl::StatusCode::kNotFound) return c.status();
      return Unauthenticated(kReasonPrincipalNotFound,
                             "the token's subject is not a registered "
                             "clinician of this issuer");
    }
    if (c->state != PrincipalState::kActive) {
      return Unauthenticated(kReasonPrincipalDisabled,
                             "the clinician is disabled");
    }
    const bool clinician = std::find(c->roles.begin(), c->roles.end(),
                                     kRoleClinician) != c->roles.end();
    p.role = clinician ? Role::kClinician : Role::kAuditor;
    p.actor = c->Name();
    return p;
  }
  // Portal: the subject is the verified patient's resource name.
  absl::StatusOr<ResourceName> patient = ResourceName::Parse(
      "tenants/{tenant}/patients/{patient}", token.subject, "sub");
  if (!patient.ok() || patient->Get("tenant") != chosen->tenant) {
    return TokenInvalid(
        "a portal token's sub must be a patient of the issuer's tenant");
  }
  absl::StatusOr<PrincipalState> state =
      manager_->PatientState(chosen->tenant, patient->Get("patient"));
  if (!state.ok()) {
    if (state.status().code() != absl::StatusCode::kNotFound) {
      return state.status();
    }
    return Unauthenticated(kReasonPrincipalNotFound,
                           "the token's subject is not a registered patient");
  }
  if (*state != PrincipalState::kActive) {
    return Unauthenticated(kReasonPrincipalDisabled, "the patient is disabled");
  }
  const auto sid = token.claims.find("sid");
  RETURN_IF_ERROR(manager_->CheckSession(
      sid != token.claims.end() && sid->is_string() ? sid->get<std::string>()
                                                    : std::string(),
      chosen->tenant, patient->Get("patient"), now));
  p.role = Role::kPatient;
  p.actor = token.subject;
  p.patient = patient->Get("patient");
  return p;
}

}  // namespace careseal::identity
