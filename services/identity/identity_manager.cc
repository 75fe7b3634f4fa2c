#include "services/identity/identity_manager.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "services/common/authn/jwt.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/error_metadata.h"
#include "services/common/events/event_log.h"
#include "services/common/identity.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/pagination.h"
#include "services/common/platform/policy.h"
#include "services/common/platform/text.h"
#include "services/common/status.h"

namespace careseal::identity {
namespace {

void Touch(CallContext& call, absl::string_view tenant,
           absl::string_view resource) {
  call.tenant = std::string(tenant);
  call.resource = std::string(resource);
}

void TouchPatient(CallContext& call, absl::string_view tenant,
                  absl::string_view patient_id) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/patients/", patient_id));
  call.patient = call.resource;
}

// Associated data of a patient's sealed fields.
std::string PatientAad(absl::string_view field, absl::string_view tenant,
                       absl::string_view patient_id) {
  return absl::StrCat("identity-patient-", field, ":tenants/", tenant,
                      "/patients/", patient_id);
}

absl::Status CheckExternalId(absl::string_view field, const std::string& v) {
  if (v.empty() || v.size() > 128) {
    return InvalidField(field, "INVALID_EXTERNAL_ID",
                        absl::StrCat(field, " must be 1..128 bytes"));
  }
  return CheckSingleLine(field, v, 1, 128);
}

absl::Status CheckPrincipalState(absl::string_view field, int state) {
  if (state != static_cast<int>(PrincipalState::kActive) &&
      state != static_cast<int>(PrincipalState::kDisabled)) {
    return InvalidField(field, "INVALID_STATE",
                        absl::StrCat(field, " must be ACTIVE or DISABLED"));
  }
  return absl::OkStatus();
}

absl::Status Audit(sql::Txn& txn, CallContext& call) {
  ASSIGN_OR_RETURN(call.audit_leaf_index,
                   AppendAuditEvent(txn, call, absl::OkStatus()));
  call.audited = true;
  return absl::OkStatus();
}

absl::Status CheckTimeZone(absl::string_view field, const std::string& tz) {
  absl::TimeZone zone;
  if (tz.empty() || tz.size() > 64 || !absl::LoadTimeZone(tz, &zone)) {
    return InvalidField(field, "INVALID_TIME_ZONE",
                        absl::StrCat(field,
                                     " must be an IANA time zone such as "
                                     "America/Chicago"));
  }
  return absl::OkStatus();
}

template <typename T>
void RunWrite(sql::Database& db,
              absl::AnyInvocable<absl::StatusOr<T>(sql::Txn&)> fn,
              Done<T> done) {
  sql::WriteValue<T>(db, std::move(fn), std::move(done));
}

// The id part of a remembered resource name (the text after the last '/').
std::string LastSegment(const std::string& name) {
  return name.substr(name.rfind('/') + 1);
}

}  // namespace

bool IsValidChosenId(absl::string_view id) {
  return IsValidId(id) && id.size() >= 3 &&
         absl::ascii_isalpha(static_cast<unsigned char>(id[0]));
}

absl::Status IdentityManager::Migrate(sql::Database& db) {
  RETURN_IF_ERROR(db.Migrate("audit", AuditMigrations()));
  RETURN_IF_ERROR(db.Migrate("idempotency", IdempotencyMigrations()));
  RETURN_IF_ERROR(db.Migrate("sealer", SealerMigrations()));
  RETURN_IF_ERROR(db.Migrate("events", events::EventMigrations()));
  return db.Migrate("identity", IdentityMigrations());
}

void IdentityManager::CreateTenant(CallContext& call, CreateTenantInput in,
                                   Done<Tenant> done) {
  absl::Status valid = absl::OkStatus();
  if (!IsValidChosenId(in.tenant_id)) {
    valid = InvalidField("tenant_id", "INVALID_ID",
                         "tenant_id must be [a-z][a-z0-9-]{2,62}");
  }
  if (valid.ok()) {
    valid = CheckSingleLine("tenant.display_name", in.display_name, 1,
                            kMaxDisplayName);
  }
  if (valid.ok()) valid = CheckTimeZone("tenant.time_zone", in.time_zone);
  if (!valid.ok()) return done(valid);
  RunWrite<Tenant>(
      *deps_.db,
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Tenant> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          Touch(call, LastSegment(*prior), *prior);
          ASSIGN_OR_RETURN(Tenant t,
                           store_.GetTenant(txn, LastSegment(*prior)));
          RETURN_IF_ERROR(Audit(txn, call));
          return t;
        }
        Tenant t;
        t.id = in.tenant_id;
        t.display_name = in.display_name;
        t.time_zone = in.time_zone;
        t.state = TenantState::kActive;
        t.create_time = t.update_time = call.now;
        Touch(call, t.id, t.Name());
        RETURN_IF_ERROR(store_.InsertTenant(txn, t));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, t.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return t;
      },
      std::move(done));
}

void IdentityManager::UpdateTenant(CallContext& call, UpdateTenantInput in,
                                   Done<Tenant> done) {
  absl::Status valid = absl::OkStatus();
  if (!in.display_name && !in.time_zone && !in.state) {
    valid = InvalidField("update_mask", "INVALID_UPDATE_MASK",
                         "update_mask needs at least one of display_name, "
                         "time_zone, state");
  }
  if (valid.ok() && in.display_name) {
    valid = CheckSingleLine("tenant.display_name", *in.display_name, 1,
                            kMaxDisplayName);
  }
  if (valid.ok() && in.time_zone) {
    valid = CheckTimeZone("tenant.time_zone", *in.time_zone);
  }
  if (valid.ok() && in.state &&
      *in.state != static_cast<int>(TenantState::kActive) &&
      *in.state != static_cast<int>(TenantState::kSuspended)) {
    valid = InvalidField("tenant.state", "INVALID_STATE",
                         "tenant.state must be ACTIVE or SUSPENDED");
  }
  if (!valid.ok()) return done(valid);
  RunWrite<Tenant>(
      *deps_.db,
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Tenant> {
        Touch(call, in.tenant_id, absl::StrCat("tenants/", in.tenant_id));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(Tenant t, store_.GetTenant(txn, in.tenant_id));
        if (!prior) {
          if (in.display_name) t.display_name = *in.display_name;
          if (in.time_zone) t.time_zone = *in.time_zone;
          if (in.state) t.state = static_cast<TenantState>(*in.state);
          t.update_time = call.now;
          RETURN_IF_ERROR(store_.UpdateTenant(txn, t));
          ForgetTenantStateAfterCommit(txn, t.id);
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, t.Name()));
        }
        RETURN_IF_ERROR(Audit(txn, call));
        return t;
      },
      std::move(done));
}

absl::StatusOr<Tenant> IdentityManager::GetTenant(CallContext& call,
                                                  absl::string_view tenant_id) {
  Touch(call, tenant_id, absl::StrCat("tenants/", tenant_id));
  absl::StatusOr<Tenant> out = ResourceNotFound();
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) {
    out = store_.GetTenant(txn, tenant_id);
    return out.status();
  }));
  return out;
}

absl::StatusOr<Page<Tenant>> IdentityManager::ListTenants(
    CallContext& call, int page_size, absl::string_view page_token) {
  Touch(call, "", "tenants");
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, "tenants", &first));
  Page<Tenant> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        page.items,
        store_.ListTenants(txn, first ? "" : after.tiebreak, limit + 1));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token =
        EncodePageToken({0, page.items.back().id}, "tenants");
  }
  return page;
}

absl::StatusOr<std::vector<std::string>> IdentityManager::ValidateIssuer(
    const RegisterIssuerInput& in) {
  if (!in.issuer_id.empty() && !IsValidChosenId(in.issuer_id)) {
    return InvalidField("issuer_id", "INVALID_ID",
                        "issuer_id must be [a-z][a-z0-9-]{2,62}");
  }
  RETURN_IF_ERROR(CheckSingleLine("issuer.display_name", in.display_name, 0,
                                  kMaxDisplayName));
  if (in.issuer_uri.empty() || in.issuer_uri.size() > kMaxIssuerUriBytes) {
    return InvalidField("issuer.issuer_uri", "INVALID_ISSUER_URI",
                        "issuer.issuer_uri must be 1..512 bytes");
  }
  RETURN_IF_ERROR(CheckSingleLine("issuer.issuer_uri", in.issuer_uri, 1,
                                  kMaxIssuerUriBytes));
  if (in.kind != static_cast<int>(IssuerKind::kEhr) &&
      in.kind != static_cast<int>(IssuerKind::kPortal)) {
    return InvalidField("issuer.kind", "INVALID_ISSUER_KIND",
                        "issuer.kind must be EHR or PORTAL");
  }
  if (in.peer_identities.empty() ||
      in.peer_identities.size() > kMaxPeerIdentities) {
    return InvalidField("issuer.peer_identities", "INVALID_PEER_IDENTITY",
                        "issuer.peer_identities needs 1..20 peer URIs");
  }
  for (const std::string& uri : in.peer_identities) {
    absl::StatusOr<PeerIdentity> peer = PeerIdentity::Parse(uri);
    // An EHR issuer speaks for the tenant's clinicians through the tenant's
    // own EHR peers; a portal issuer only through the portal.
    const bool fits =
        peer.ok() && (in.kind == static_cast<int>(IssuerKind::kEhr)
                          ? peer->kind == PeerIdentity::Kind::kEhr &&
                                peer->tenant == in.tenant
                          : peer->kind == PeerIdentity::Kind::kPortal);
    if (!fits) {
      return InvalidField(
          "issuer.peer_identities", "INVALID_PEER_IDENTITY",
          in.kind == static_cast<int>(IssuerKind::kEhr)
              ? "an EHR issuer's peers must be EHR identities of its tenant"
              : "a portal issuer's peer must be the portal identity");
    }
  }
  if (in.jwks_json.size() > authn::kMaxJwksBytes) {
    return InvalidField("issuer.jwks_json", "INVALID_JWKS",
                        "issuer.jwks_json is larger than 64 KiB");
  }
  absl::StatusOr<authn::Jwks> jwks = authn::Jwks::Parse(in.jwks_json);
  if (!jwks.ok()) {
    const bool private_key =
        ErrorReason(jwks.status()) == authn::kReasonJwksContainsPrivateKey;
    return InvalidField("issuer.jwks_json",
                        private_key ? "PRIVATE_KEY_IN_JWKS" : "INVALID_JWKS",
                        jwks.status().message());
  }
  if (jwks->size() > kMaxIssuerKeys) {
    return InvalidField("issuer.jwks_json", "INVALID_JWKS",
                        "issuer.jwks_json holds more than 10 keys");
  }
  return jwks->KeyIds();
}

void IdentityManager::RegisterIssuer(CallContext& call, RegisterIssuerInput in,
                                     Done<Issuer> done) {
  absl::StatusOr<std::vector<std::string>> key_ids = ValidateIssuer(in);
  if (!key_ids.ok()) return done(key_ids.status());
  if (in.issuer_id.empty()) in.issuer_id = crypto::NewOpaqueId(*deps_.random);
  RunWrite<Issuer>(
      *deps_.db,
      [this, &call, in = std::move(in),
       key_ids = *std::move(key_ids)](sql::Txn& txn) -> absl::StatusOr<Issuer> {
        Touch(call, in.tenant, absl::StrCat("tenants/", in.tenant));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          Touch(call, in.tenant, *prior);
          ASSIGN_OR_RETURN(
              Issuer i, store_.GetIssuer(txn, in.tenant, LastSegment(*prior)));
          RETURN_IF_ERROR(Audit(txn, call));
          return i;
        }
        // The tenant must exist (NOT_FOUND like any absent resource).
        RETURN_IF_ERROR(store_.GetTenant(txn, in.tenant).status());
        Issuer i;
        i.tenant = in.tenant;
        i.id = in.issuer_id;
        i.display_name = in.display_name;
        i.issuer_uri = in.issuer_uri;
        i.kind = static_cast<IssuerKind>(in.kind);
        i.peer_identities = in.peer_identities;
        i.jwks_json = in.jwks_json;
        i.key_ids = key_ids;
        i.state = IssuerState::kActive;
        i.create_time = i.update_time = call.now;
        Touch(call, in.tenant, i.Name());
        RETURN_IF_ERROR(store_.InsertIssuer(txn, i));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, i.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return i;
      },
      std::move(done));
}

void IdentityManager::RevokeIssuer(CallContext& call, std::string tenant,
                                   std::string issuer_id, Done<Issuer> done) {
  RunWrite<Issuer>(
      *deps_.db,
      [this, &call, tenant = std::move(tenant),
       issuer_id =
           std::move(issuer_id)](sql::Txn& txn) -> absl::StatusOr<Issuer> {
        Touch(call, tenant,
              absl::StrCat("tenants/", tenant, "/issuers/", issuer_id));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(Issuer i, store_.GetIssuer(txn, tenant, issuer_id));
        if (!prior) {
          if (i.state == IssuerState::kRevoked) {
            return FailedPrecondition("ISSUER_REVOKED",
                                      "the issuer is already revoked");
          }
          i.state = IssuerState::kRevoked;
          i.update_time = call.now;
          i.revoke_time = call.now;
          RETURN_IF_ERROR(store_.UpdateIssuer(txn, i));
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, i.Name()));
        }
        RETURN_IF_ERROR(Audit(txn, call));
        return i;
      },
      std::move(done));
}

absl::StatusOr<Issuer> IdentityManager::GetIssuer(CallContext& call,
                                                  absl::string_view tenant,
                                                  absl::string_view issuer_id) {
  Touch(call, tenant, absl::StrCat("tenants/", tenant, "/issuers/", issuer_id));
  absl::StatusOr<Issuer> out = ResourceNotFound();
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) {
    out = store_.GetIssuer(txn, tenant, issuer_id);
    return out.status();
  }));
  return out;
}

absl::StatusOr<Page<Issuer>> IdentityManager::ListIssuers(
    CallContext& call, absl::string_view tenant, int page_size,
    absl::string_view page_token) {
  Touch(call, tenant, absl::StrCat("tenants/", tenant, "/issuers"));
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter = absl::StrCat("issuers|", tenant);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter, &first));
  Page<Issuer> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(store_.GetTenant(txn, tenant).status());
    ASSIGN_OR_RETURN(
        page.items, store_.ListIssuers(txn, tenant, first ? "" : after.tiebreak,
                                       limit + 1));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token = EncodePageToken({0, page.items.back().id}, filter);
  }
  return page;
}

void IdentityManager::UpdateIssuer(CallContext& call, UpdateIssuerInput in,
                                   Done<Issuer> done) {
  if (!in.display_name && !in.jwks_json && !in.peer_identities) {
    return done(InvalidField("update_mask", "INVALID_UPDATE_MASK",
                             "update_mask needs at least one of display_name, "
                             "jwks_json, peer_identities"));
  }
  RunWrite<Issuer>(
      *deps_.db,
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Issuer> {
        Touch(call, in.tenant,
              absl::StrCat("tenants/", in.tenant, "/issuers/", in.issuer_id));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(Issuer i,
                         store_.GetIssuer(txn, in.tenant, in.issuer_id));
        if (!prior) {
          if (i.state == IssuerState::kRevoked) {
            return FailedPrecondition("ISSUER_REVOKED",
                                      "a revoked issuer cannot be updated; "
                                      "register a new one");
          }
          // Validate the issuer as it would be after the update (the peers'
          // fit depends on the stored kind and tenant).
          RegisterIssuerInput merged;
          merged.tenant = i.tenant;
          merged.display_name = in.display_name.value_or(i.display_name);
          merged.issuer_uri = i.issuer_uri;
          merged.kind = static_cast<int>(i.kind);
          merged.peer_identities =
              in.peer_identities.value_or(i.peer_identities);
          merged.jwks_json = in.jwks_json.value_or(i.jwks_json);
          ASSIGN_OR_RETURN(std::vector<std::string> key_ids,
                           ValidateIssuer(merged));
          i.display_name = merged.display_name;
          i.peer_identities = merged.peer_identities;
          i.jwks_json = merged.jwks_json;
          i.key_ids = std::move(key_ids);
          i.update_time = call.now;
          RETURN_IF_ERROR(store_.UpdateIssuer(txn, i));
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, i.Name()));
        }
        RETURN_IF_ERROR(Audit(txn, call));
        return i;
      },
      std::move(done));
}

absl::StatusOr<std::vector<int>> IdentityManager::ValidateClinician(
    const CreateClinicianInput& in) {
  if (!in.clinician_id.empty() && !IsValidChosenId(in.clinician_id)) {
    return InvalidField("clinician_id", "INVALID_ID",
                        "clinician_id must be [a-z][a-z0-9-]{2,62}");
  }
  RETURN_IF_ERROR(CheckSingleLine("clinician.display_name", in.display_name, 1,
                                  kMaxDisplayName));
  RETURN_IF_ERROR(CheckSingleLine("clinician.subject", in.subject, 1, 256));
  if (in.subject.size() > 256) {
    return InvalidField("clinician.subject", "FIELD_TOO_LONG",
                        "clinician.subject is at most 256 bytes");
  }
  std::vector<int> roles = in.roles;
  if (roles.empty()) roles = {kRoleClinician};
  for (int r : roles) {
    if (r != kRoleClinician && r != kRoleAuditor) {
      return InvalidField("clinician.roles", "INVALID_ROLE",
                          "clinician.roles may hold only ROLE_CLINICIAN and "
                          "ROLE_AUDITOR");
    }
  }
  std::sort(roles.begin(), roles.end());
  roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
  return roles;
}

void IdentityManager::CreateClinician(CallContext& call,
                                      CreateClinicianInput in,
                                      Done<Clinician> done) {
  absl::StatusOr<std::vector<int>> roles = ValidateClinician(in);
  if (!roles.ok()) return done(roles.status());
  if (in.clinician_id.empty()) {
    in.clinician_id = crypto::NewOpaqueId(*deps_.random);
  }
  RunWrite<Clinician>(
      *deps_.db,
      [this, &call, in = std::move(in),
       roles = *std::move(roles)](sql::Txn& txn) -> absl::StatusOr<Clinician> {
        Touch(call, in.tenant, absl::StrCat("tenants/", in.tenant));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          Touch(call, in.tenant, *prior);
          ASSIGN_OR_RETURN(
              Clinician c,
              store_.GetClinician(txn, in.tenant, LastSegment(*prior)));
          RETURN_IF_ERROR(Audit(txn, call));
          return c;
        }
        RETURN_IF_ERROR(store_.GetTenant(txn, in.tenant).status());
        ASSIGN_OR_RETURN(Issuer issuer,
                         store_.GetIssuer(txn, in.tenant, in.issuer_id));
        if (issuer.kind != IssuerKind::kEhr ||
            issuer.state != IssuerState::kActive) {
          return ResourceNotFound();
        }
        Clinician c;
        c.tenant = in.tenant;
        c.id = in.clinician_id;
        c.display_name = in.display_name;
        c.issuer_id = in.issuer_id;
        c.subject = in.subject;
        c.roles = roles;
        c.care_team = in.care_team;
        c.on_call = in.on_call;
        c.state = PrincipalState::kActive;
        c.create_time = c.update_time = call.now;
        Touch(call, in.tenant, c.Name());
        RETURN_IF_ERROR(store_.InsertClinician(txn, c));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, c.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return c;
      },
      std::move(done));
}

void IdentityManager::UpdateClinician(CallContext& call,
                                      UpdateClinicianInput in,
                                      Done<Clinician> done) {
  absl::Status valid = absl::OkStatus();
  if (!in.display_name && !in.roles && !in.care_team && !in.on_call &&
      !in.state) {
    valid = InvalidField("update_mask", "INVALID_UPDATE_MASK",
                         "update_mask needs at least one of display_name, "
                         "roles, care_team, on_call, state");
  }
  if (valid.ok() && in.display_name) {
    valid = CheckSingleLine("clinician.display_name", *in.display_name, 1,
                            kMaxDisplayName);
  }
  if (valid.ok() && in.roles) {
    CreateClinicianInput probe;
    probe.display_name = "x";
    probe.subject = "x";
    probe.roles = *in.roles;
    absl::StatusOr<std::vector<int>> roles = ValidateClinician(probe);
    if (roles.ok()) {
      in.roles = *std::move(roles);
    } else {
      valid = roles.status();
    }
  }
  if (valid.ok() && in.state) {
    valid = CheckPrincipalState("clinician.state", *in.state);
  }
  if (!valid.ok()) return done(valid);
  RunWrite<Clinician>(
      *deps_.db,
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Clinician> {
        Touch(call, in.tenant,
              absl::StrCat("tenants/", in.tenant, "/clinicians/",
                           in.clinician_id));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(Clinician c,
                         store_.GetClinician(txn, in.tenant, in.clinician_id));
        if (!prior) {
          if (in.display_name) c.display_name = *in.display_name;
          if (in.roles) c.roles = *in.roles;
          if (in.care_team) c.care_team = *in.care_team;
          if (in.on_call) c.on_call = *in.on_call;
          if (in.state) c.state = static_cast<PrincipalState>(*in.state);
          c.update_time = call.now;
          RETURN_IF_ERROR(store_.UpdateClinician(txn, c));
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, c.Name()));
        }
        RETURN_IF_ERROR(Audit(txn, call));
        return c;
      },
      std::move(done));
}

absl::StatusOr<Clinician> IdentityManager::GetClinician(
    CallContext& call, absl::string_view tenant,
    absl::string_view clinician_id) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/clinicians/", clinician_id));
  absl::StatusOr<Clinician> out = ResourceNotFound();
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) {
    out = store_.GetClinician(txn, tenant, clinician_id);
    return out.status();
  }));
  return out;
}

absl::StatusOr<Page<Clinician>> IdentityManager::ListClinicians(
    CallContext& call, absl::string_view tenant, bool care_team_only,
    bool on_call_only, int page_size, absl::string_view page_token) {
  Touch(call, tenant, absl::StrCat("tenants/", tenant, "/clinicians"));
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter =
      absl::StrCat("clinicians|", tenant, "|", care_team_only ? 1 : 0, "|",
                   on_call_only ? 1 : 0);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter, &first));
  Page<Clinician> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(store_.GetTenant(txn, tenant).status());
    ASSIGN_OR_RETURN(page.items, store_.ListClinicians(
                                     txn, tenant, care_team_only, on_call_only,
                                     first ? "" : after.tiebreak, limit + 1));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token = EncodePageToken({0, page.items.back().id}, filter);
  }
  return page;
}

absl::Status CheckDateOfBirth(absl::string_view field, const Date& d,
                              absl::Time now) {
  const absl::CivilDay day(d.year, d.month, d.day);
  const bool real = d.year >= 1900 && d.year <= 9999 && day.year() == d.year &&
                    day.month() == d.month && day.day() == d.day;
  const absl::CivilDay today = absl::ToCivilDay(now, absl::UTCTimeZone());
  // A day of slack: "today" somewhere on Earth may be UTC's tomorrow.
  if (!real || day > today + 1) {
    return InvalidField(field, "INVALID_DATE",
                        absl::StrCat(field,
                                     " must be a real date from 1900 on and "
                                     "not in the future"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> IdentityManager::DobMac(sql::Txn& txn,
                                                    absl::string_view tenant,
                                                    const Date& d) {
  return deps_.sealer->Mac(
      txn, tenant,
      absl::StrCat("dob:", absl::FormatCivilTime(
                               absl::CivilDay(d.year, d.month, d.day))));
}

absl::StatusOr<Patient> IdentityManager::Open(sql::Txn& txn,
                                              const PatientRow& row) {
  Patient p;
  p.tenant = row.tenant;
  p.id = row.id;
  p.state = row.state;
  p.create_time = row.create_time;
  p.update_time = row.update_time;
  ASSIGN_OR_RETURN(
      p.external_id,
      deps_.sealer->Open(txn, row.tenant, row.external_id_sealed,
                         PatientAad("external-id", row.tenant, row.id)));
  ASSIGN_OR_RETURN(
      p.display_name,
      deps_.sealer->Open(txn, row.tenant, row.display_name_sealed,
                         PatientAad("display-name", row.tenant, row.id)));
  return p;
}

namespace {
absl::Status NeedSealer(const Sealer* sealer) {
  if (sealer == nullptr) {
    return FailedPrecondition("SEALER_UNAVAILABLE",
                              "patients need the server's data keys");
  }
  return absl::OkStatus();
}
}  // namespace

void IdentityManager::CreatePatient(CallContext& call, CreatePatientInput in,
                                    Done<Patient> done) {
  absl::Status valid = NeedSealer(deps_.sealer);
  if (valid.ok())
    valid = CheckExternalId("patient.external_id", in.external_id);
  if (valid.ok()) {
    valid = CheckSingleLine("patient.display_name", in.display_name, 0,
                            kMaxDisplayName);
  }
  if (valid.ok()) {
    valid =
        CheckDateOfBirth("patient.date_of_birth", in.date_of_birth, call.now);
  }
  if (!valid.ok()) return done(valid);
  std::string patient_id = crypto::NewOpaqueId(*deps_.random);
  RunWrite<Patient>(
      *deps_.db,
      [this, &call, in = std::move(in),
       patient_id](sql::Txn& txn) -> absl::StatusOr<Patient> {
        Touch(call, in.tenant, absl::StrCat("tenants/", in.tenant));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          TouchPatient(call, in.tenant, LastSegment(*prior));
          ASSIGN_OR_RETURN(
              PatientRow row,
              store_.GetPatient(txn, in.tenant, LastSegment(*prior)));
          RETURN_IF_ERROR(Audit(txn, call));
          return Open(txn, row);
        }
        RETURN_IF_ERROR(store_.GetTenant(txn, in.tenant).status());
        PatientRow row;
        row.tenant = in.tenant;
        row.id = patient_id;
        ASSIGN_OR_RETURN(
            row.external_id_sealed,
            deps_.sealer->Seal(txn, in.tenant, in.external_id,
                               PatientAad("external-id", in.tenant, row.id)));
        ASSIGN_OR_RETURN(
            row.external_id_mac,
            deps_.sealer->Mac(txn, in.tenant,
                              absl::StrCat("external-id:", in.external_id)));
        ASSIGN_OR_RETURN(
            row.display_name_sealed,
            deps_.sealer->Seal(txn, in.tenant, in.display_name,
                               PatientAad("display-name", in.tenant, row.id)));
        ASSIGN_OR_RETURN(row.dob_mac, DobMac(txn, in.tenant, in.date_of_birth));
        row.state = PrincipalState::kActive;
        row.create_time = row.update_time = call.now;
        TouchPatient(call, in.tenant, row.id);
        RETURN_IF_ERROR(store_.InsertPatient(txn, row));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, call.patient));
        RETURN_IF_ERROR(Audit(txn, call));
        Patient p;
        p.tenant = row.tenant;
        p.id = row.id;
        p.external_id = in.external_id;
        p.display_name = in.display_name;
        p.state = row.state;
        p.create_time = row.create_time;
        p.update_time = row.update_time;
        return p;
      },
      std::move(done));
}

void IdentityManager::UpdatePatient(CallContext& call, UpdatePatientInput in,
                                    Done<Patient> done) {
  absl::Status valid = NeedSealer(deps_.sealer);
  if (valid.ok() && !in.external_id && !in.display_name && !in.date_of_birth &&
      !in.state) {
    valid = InvalidField("update_mask", "INVALID_UPDATE_MASK",
                         "update_mask needs at least one of external_id, "
                         "display_name, date_of_birth, state");
  }
  if (valid.ok() && in.external_id) {
    valid = CheckExternalId("patient.external_id", *in.external_id);
  }
  if (valid.ok() && in.display_name) {
    valid = CheckSingleLine("patient.display_name", *in.display_name, 0,
                            kMaxDisplayName);
  }
  if (valid.ok() && in.date_of_birth) {
    valid =
        CheckDateOfBirth("patient.date_of_birth", *in.date_of_birth, call.now);
  }
  if (valid.ok() && in.state) {
    valid = CheckPrincipalState("patient.state", *in.state);
  }
  if (!valid.ok()) return done(valid);
  RunWrite<Patient>(
      *deps_.db,
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Patient> {
        TouchPatient(call, in.tenant, in.patient_id);
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(PatientRow row,
                         store_.GetPatient(txn, in.tenant, in.patient_id));
        if (!prior) {
          if (in.external_id) {
            ASSIGN_OR_RETURN(row.external_id_sealed,
                             deps_.sealer->Seal(
                                 txn, in.tenant, *in.external_id,
                                 PatientAad("external-id", in.tenant, row.id)));
            ASSIGN_OR_RETURN(row.external_id_mac,
                             deps_.sealer->Mac(txn, in.tenant,
                                               absl::StrCat("external-id:",
                                                            *in.external_id)));
          }
          if (in.display_name) {
            ASSIGN_OR_RETURN(
                row.display_name_sealed,
                deps_.sealer->Seal(
                    txn, in.tenant, *in.display_name,
                    PatientAad("display-name", in.tenant, row.id)));
          }
          if (in.date_of_birth) {
            ASSIGN_OR_RETURN(row.dob_mac,
                             DobMac(txn, in.tenant, *in.date_of_birth));
          }
          if (in.state) row.state = static_cast<PrincipalState>(*in.state);
          row.update_time = call.now;
          RETURN_IF_ERROR(store_.UpdatePatient(txn, row));
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, call.patient));
        }
        RETURN_IF_ERROR(Audit(txn, call));
        return Open(txn, row);
      },
      std::move(done));
}

absl::StatusOr<Patient> IdentityManager::GetPatient(
    CallContext& call, absl::string_view tenant, absl::string_view patient_id) {
  TouchPatient(call, tenant, patient_id);
  RETURN_IF_ERROR(NeedSealer(deps_.sealer));
  absl::StatusOr<Patient> out = ResourceNotFound();
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    absl::StatusOr<PatientRow> row = store_.GetPatient(txn, tenant, patient_id);
    if (!row.ok()) return row.status();
    out = Open(txn, *row);
    return out.status();
  }));
  return out;
}

absl::StatusOr<Page<Patient>> IdentityManager::ListPatients(
    CallContext& call, absl::string_view tenant, absl::string_view external_id,
    int page_size, absl::string_view page_token) {
  Touch(call, tenant, absl::StrCat("tenants/", tenant, "/patients"));
  RETURN_IF_ERROR(NeedSealer(deps_.sealer));
  if (!external_id.empty()) {
    RETURN_IF_ERROR(CheckExternalId("external_id", std::string(external_id)));
  }
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  // The filter is bound into the page token by its hash, not its text.
  const std::string filter = absl::StrCat(
      "patients|", tenant, "|",
      external_id.empty() ? ""
                          : crypto::HexEncode(crypto::Sha256(external_id)));
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter, &first));
  Page<Patient> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(store_.GetTenant(txn, tenant).status());
    std::string mac;
    if (!external_id.empty()) {
      ASSIGN_OR_RETURN(
          std::optional<std::string> keyed,
          deps_.sealer->MacIfKeyed(txn, tenant,
                                   absl::StrCat("external-id:", external_id)));
      // No data key yet: no patient was ever stored, so none matches.
      if (!keyed.has_value()) return absl::OkStatus();
      mac = *std::move(keyed);
    }
    ASSIGN_OR_RETURN(
        auto rows, store_.ListPatients(txn, tenant, mac,
                                       first ? "" : after.tiebreak, limit + 1));
    for (const PatientRow& row : rows) {
      ASSIGN_OR_RETURN(Patient p, Open(txn, row));
      page.items.push_back(std::move(p));
    }
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token = EncodePageToken({0, page.items.back().id}, filter);
  }
  return page;
}

// ------------------------------------------------------------ Links

namespace {

std::string NewToken(crypto::RandomSource& random) {
  return crypto::Base64UrlEncode(random.Bytes(16));
}

std::string TokenHash(absl::string_view token) { return crypto::Sha256(token); }

bool SameBytes(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

std::string CodeInput(const PatientLink& l, absl::string_view code) {
  return absl::StrCat("link-code:", l.Name(), ":", code);
}

// FAILED_PRECONDITION for a link that can no longer be used.
absl::Status LinkUsable(const PatientLink& l, absl::Time now) {
  switch (l.StateAt(now)) {
    case LinkState::kActive:
      return absl::OkStatus();
    case LinkState::kRedeemed:
      return FailedPrecondition("LINK_ALREADY_USED",
                                "the link was already used");
    case LinkState::kLocked:
      return FailedPrecondition("LINK_LOCKED",
                                "the link is locked after too many failed "
                                "tries; ask the clinic for a new one");
    case LinkState::kExpired:
      return FailedPrecondition("LINK_EXPIRED",
                                "the link has expired; ask the clinic for a "
                                "new one");
    case LinkState::kRevoked:
    case LinkState::kUnspecified:
      return FailedPrecondition("LINK_REVOKED", "the link was revoked");
  }
  return FailedPrecondition("LINK_REVOKED", "the link was revoked");
}

void TouchLink(CallContext& call, const PatientLink& l) {
  call.tenant = l.tenant;
  call.resource = l.Name();
  call.patient = l.PatientName();
}

}  // namespace

void IdentityManager::CreatePatientLink(CallContext& call, CreateLinkInput in,
                                        Done<CreatedLink> done) {
  absl::Status valid = absl::OkStatus();
  if (in.factor != static_cast<int>(LinkFactor::kDateOfBirth) &&
      in.factor != static_cast<int>(LinkFactor::kOneTimeCode)) {
    valid = InvalidField("factor", "INVALID_FACTOR",
                         "factor must be DATE_OF_BIRTH or ONE_TIME_CODE");
  }
  const std::string patient_name =
      absl::StrCat("tenants/", in.tenant, "/patients/", in.patient_id);
  if (valid.ok() && !in.target.empty() &&
      (in.target.size() > 512 ||
       !absl::StartsWith(in.target, absl::StrCat(patient_name, "/")) ||
       in.target.find_first_of(" \t\r\n") != std::string::npos)) {
    valid = InvalidField("target", "INVALID_TARGET",
                         "target must be empty or a resource of the same "
                         "patient");
  }
  const absl::Time expire =
      in.expire_time.value_or(call.now + kDefaultLinkLifetime);
  if (valid.ok() &&
      (expire <= call.now || expire > call.now + kMaxLinkLifetime)) {
    valid = InvalidField("expire_time", "EXPIRE_TIME_OUT_OF_RANGE",
                         "expire_time must be in the future and at most 30 "
                         "days ahead");
  }
  if (!valid.ok()) return done(valid);
  std::string token = NewToken(*deps_.random);
  std::string link_id = crypto::NewOpaqueId(*deps_.random);
  RunWrite<CreatedLink>(
      *deps_.db,
      [this, &call, in = std::move(in), token = std::move(token),
       link_id = std::move(link_id),
       expire](sql::Txn& txn) -> absl::StatusOr<CreatedLink> {
        TouchPatient(call, in.tenant, in.patient_id);
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        CreatedLink out;
        out.link_token = token;
        if (prior) {
          // A retry: a fresh token replaces the one the lost answer held.
          ASSIGN_OR_RETURN(out.link,
                           store_.GetLink(txn, in.tenant, in.patient_id,
                                          LastSegment(*prior)));
          out.link.token_hash = TokenHash(token);
          RETURN_IF_ERROR(store_.UpdateLink(txn, out.link));
          TouchLink(call, out.link);
          RETURN_IF_ERROR(Audit(txn, call));
          return out;
        }
        ASSIGN_OR_RETURN(PatientRow patient,
                         store_.GetPatient(txn, in.tenant, in.patient_id));
        if (patient.state != PrincipalState::kActive) {
          return FailedPrecondition("PATIENT_DISABLED",
                                    "the patient is disabled");
        }
        PatientLink& l = out.link;
        l.tenant = in.tenant;
        l.patient_id = in.patient_id;
        l.id = link_id;
        l.target = in.target;
        l.factor = static_cast<LinkFactor>(in.factor);
        l.state = LinkState::kActive;
        l.created_by_name = call.principal.actor;
        l.created_by_role = call.principal.role;
        l.created_by_peer = call.principal.peer;
        l.create_time = call.now;
        l.expire_time = expire;
        l.token_hash = TokenHash(token);
        TouchLink(call, l);
        RETURN_IF_ERROR(store_.InsertLink(txn, l));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, l.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return out;
      },
      std::move(done));
}

void IdentityManager::IssueLinkCode(CallContext& call, std::string tenant,
                                    std::string patient_id, std::string link_id,
                                    Done<IssuedCode> done) {
  // 8 decimal digits, uniform (rejection sampling over 32 random bits).
  uint32_t v = 0;
  do {
    std::string b = deps_.random->Bytes(4);
    v = (static_cast<uint32_t>(static_cast<unsigned char>(b[0])) << 24) |
        (static_cast<uint32_t>(static_cast<unsigned char>(b[1])) << 16) |
        (static_cast<uint32_t>(static_cast<unsigned char>(b[2])) << 8) |
        static_cast<uint32_t>(static_cast<unsigned char>(b[3]));
  } while (v >= 4200000000u);
  std::string code = absl::StrFormat("%08u", v % 100000000u);
  RunWrite<IssuedCode>(
      *deps_.db,
      [this, &call, tenant = std::move(tenant),
       patient_id = std::move(patient_id), link_id = std::move(link_id),
       code = std::move(code)](sql::Txn& txn) -> absl::StatusOr<IssuedCode> {
        Touch(call, tenant,
              absl::StrCat("tenants/", tenant, "/patients/", patient_id,
                           "/links/", link_id));
        call.patient =
            absl::StrCat("tenants/", tenant, "/patients/", patient_id);
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(PatientLink l,
                         store_.GetLink(txn, tenant, patient_id, link_id));
        if (!prior) {
          RETURN_IF_ERROR(LinkUsable(l, call.now));
          if (l.factor != LinkFactor::kOneTimeCode) {
            return FailedPrecondition("WRONG_FACTOR",
                                      "the link is verified by date of birth, "
                                      "not by a one-time code");
          }
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, l.Name()));
        }
        // A retry issues a fresh code replacing the one the lost answer held.
        ASSIGN_OR_RETURN(l.code_mac,
                         deps_.sealer->Mac(txn, tenant, CodeInput(l, code)));
        l.code_expire_time = call.now + kLinkCodeLifetime;
        RETURN_IF_ERROR(store_.UpdateLink(txn, l));
        RETURN_IF_ERROR(Audit(txn, call));
        return IssuedCode{code, *l.code_expire_time};
      },
      std::move(done));
}

void IdentityManager::RevokePatientLink(CallContext& call, std::string tenant,
                                        std::string patient_id,
                                        std::string link_id,
                                        Done<PatientLink> done) {
  RunWrite<PatientLink>(
      *deps_.db,
      [this, &call, tenant = std::move(tenant),
       patient_id = std::move(patient_id), link_id = std::move(link_id)](
          sql::Txn& txn) -> absl::StatusOr<PatientLink> {
        Touch(call, tenant,
              absl::StrCat("tenants/", tenant, "/patients/", patient_id,
                           "/links/", link_id));
        call.patient =
            absl::StrCat("tenants/", tenant, "/patients/", patient_id);
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(PatientLink l,
                         store_.GetLink(txn, tenant, patient_id, link_id));
        if (!prior) {
          if (l.state == LinkState::kRedeemed) {
            return FailedPrecondition("LINK_ALREADY_USED",
                                      "a redeemed link cannot be revoked");
          }
          if (l.state == LinkState::kActive) {
            l.state = LinkState::kRevoked;
            RETURN_IF_ERROR(store_.UpdateLink(txn, l));
          }
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, l.Name()));
        }
        RETURN_IF_ERROR(Audit(txn, call));
        return l;
      },
      std::move(done));
}

namespace {
// What a redemption's transaction decided: a session, or a refusal that must
// still commit (a counted failed try).
struct RedeemOutcome {
  absl::Status refusal;
  Redeemed redeemed;
};
}  // namespace

bool AttemptLimiter::Allow(absl::string_view key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto prune = [&](std::vector<absl::Time>& v) {
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](absl::Time t) { return t <= now - window_; }),
            v.end());
  };
  auto it = attempts_.find(key);
  if (it == attempts_.end()) {
    if (attempts_.size() >= max_keys_) {
      for (auto i = attempts_.begin(); i != attempts_.end();) {
        prune(i->second);
        if (i->second.empty()) {
          attempts_.erase(i++);
        } else {
          ++i;
        }
      }
      if (attempts_.size() >= max_keys_) return false;  // fail closed
    }
    it = attempts_.emplace(std::string(key), std::vector<absl::Time>()).first;
  }
  prune(it->second);
  if (static_cast<int>(it->second.size()) >= max_attempts_) return false;
  it->second.push_back(now);
  return true;
}

void IdentityManager::RedeemLink(CallContext& call, RedeemInput in,
                                 Done<Redeemed> done) {
  absl::Status valid = NeedSealer(deps_.sealer);
  if (valid.ok() && (in.link_token.empty() || in.link_token.size() > 128)) {
    valid = InvalidField("link_token", "INVALID_LINK_TOKEN",
                         "link_token must be the token from the link");
  }
  if (valid.ok() &&
      in.date_of_birth.has_value() == in.one_time_code.has_value()) {
    valid = InvalidField("second_factor", "SECOND_FACTOR_REQUIRED",
                         "give date_of_birth or one_time_code");
  }
  if (valid.ok()) {
    valid = CheckSingleLine("client_address", in.client_address, 0, 64);
  }
  if (valid.ok()) valid = CheckSingleLine("user_agent", in.user_agent, 0, 512);
  if (!valid.ok()) return done(valid);
  if (!in.client_address.empty() &&
      !redeem_limiter_.Allow(
          absl::StrCat(call.principal.peer, "|", in.client_address),
          call.now)) {
    return done(Error(absl::StatusCode::kResourceExhausted, "RATE_LIMITED",
                      "too many link redemptions from this client address; "
                      "try again in a few minutes"));
  }
  std::string session_token = NewToken(*deps_.random);
  std::string session_id = crypto::NewOpaqueId(*deps_.random);
  sql::WriteValue<RedeemOutcome>(
      *deps_.db,
      [this, &call, in = std::move(in), session_token,
       session_id](sql::Txn& txn) -> absl::StatusOr<RedeemOutcome> {
        absl::StatusOr<PatientLink> found =
            store_.FindLinkByTokenHash(txn, TokenHash(in.link_token));
        if (!found.ok()) {
          if (found.status().code() != absl::StatusCode::kNotFound) {
            return found.status();
          }
          return NotFound("LINK_NOT_FOUND",
                          "no link has this token; check the link");
        }
        PatientLink l = *std::move(found);
        TouchLink(call, l);
        RedeemOutcome out;
        out.redeemed.patient = l.PatientName();
        out.redeemed.session_token = session_token;
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          // A retry: a fresh session token replaces the lost one.
          ASSIGN_OR_RETURN(PatientSession s,
                           store_.GetSession(txn, l.tenant, l.patient_id,
                                             LastSegment(*prior)));
          s.token_hash = TokenHash(session_token);
          RETURN_IF_ERROR(store_.UpdateSession(txn, s));
          RETURN_IF_ERROR(Audit(txn, call));
          out.redeemed.session = std::move(s);
          return out;
        }
        RETURN_IF_ERROR(LinkUsable(l, call.now));
        const bool by_dob = l.factor == LinkFactor::kDateOfBirth;
        if (by_dob != in.date_of_birth.has_value()) {
          return FailedPrecondition(
              "WRONG_FACTOR", by_dob
                                  ? "this link is verified by date of birth"
                                  : "this link is verified by a one-time code");
        }
        ASSIGN_OR_RETURN(PatientRow patient,
                         store_.GetPatient(txn, l.tenant, l.patient_id));
        if (patient.state != PrincipalState::kActive) {
          return FailedPrecondition("PATIENT_DISABLED",
                                    "the patient is disabled");
        }
        bool match = false;
        if (by_dob) {
          ASSIGN_OR_RETURN(std::string mac,
                           DobMac(txn, l.tenant, *in.date_of_birth));
          match = SameBytes(mac, patient.dob_mac);
        } else {
          if (!l.code_expire_time || l.code_mac.empty()) {
            return FailedPrecondition("CODE_NOT_ISSUED",
                                      "no one-time code was issued for this "
                                      "link yet");
          }
          if (call.now >= *l.code_expire_time) {
            return FailedPrecondition("CODE_EXPIRED",
                                      "the one-time code has expired; ask "
                                      "for a new one");
          }
          ASSIGN_OR_RETURN(std::string mac,
                           deps_.sealer->Mac(txn, l.tenant,
                                             CodeInput(l, *in.one_time_code)));
          match = SameBytes(mac, l.code_mac);
        }
        if (!match) {
          // Counted and committed; the edge audits the refusal.
          ++l.failed_attempts;
          if (l.failed_attempts >= kMaxLinkAttempts)
            l.state = LinkState::kLocked;
          RETURN_IF_ERROR(store_.UpdateLink(txn, l));
          const int remaining = kMaxLinkAttempts - l.failed_attempts;
          out.refusal = WithErrorMetadata(
              PermissionDenied(
                  "SECOND_FACTOR_MISMATCH",
                  remaining > 0
                      ? absl::StrCat("the second factor does not match; ",
                                     remaining, " attempts remaining")
                      : "the second factor does not match; the link is now "
                        "locked (0 attempts remaining)"),
              "attempts_remaining", absl::StrCat(remaining));
          return out;
        }
        l.state = LinkState::kRedeemed;
        l.redeem_time = call.now;
        RETURN_IF_ERROR(store_.UpdateLink(txn, l));
        PatientSession& s = out.redeemed.session;
        s.tenant = l.tenant;
        s.patient_id = l.patient_id;
        s.id = session_id;
        s.link = l.Name();
        s.target = l.target;
        s.state = SessionState::kActive;
        s.create_time = call.now;
        s.expire_time = call.now + kSessionAbsoluteLimit;
        s.idle_expire_time = call.now + kSessionIdleLimit;
        s.token_hash = TokenHash(session_token);
        RETURN_IF_ERROR(store_.InsertSession(txn, s));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, s.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return out;
      },
      [done = std::move(done)](absl::StatusOr<RedeemOutcome> r) mutable {
        if (!r.ok()) return done(r.status());
        if (!r->refusal.ok()) return done(r->refusal);
        done(std::move(r->redeemed));
      });
}

void IdentityManager::EndPatientSession(CallContext& call, std::string tenant,
                                        std::string patient_id,
                                        std::string session_id,
                                        Done<PatientSession> done) {
  RunWrite<PatientSession>(
      *deps_.db,
      [this, &call, tenant = std::move(tenant),
       patient_id = std::move(patient_id), session_id = std::move(session_id)](
          sql::Txn& txn) -> absl::StatusOr<PatientSession> {
        Touch(call, tenant,
              absl::StrCat("tenants/", tenant, "/patients/", patient_id,
                           "/portalSessions/", session_id));
        call.patient =
            absl::StrCat("tenants/", tenant, "/patients/", patient_id);
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(
            PatientSession s,
            store_.GetSession(txn, tenant, patient_id, session_id));
        if (!prior) {
          if (s.StateAt(call.now) == SessionState::kActive) {
            s.state = SessionState::kEnded;
            s.end_time = call.now;
            RETURN_IF_ERROR(store_.UpdateSession(txn, s));
          }
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, s.Name()));
        }
        RETURN_IF_ERROR(Audit(txn, call));
        return s;
      },
      std::move(done));
}

absl::Status IdentityManager::CheckSession(absl::string_view session_token,
                                           absl::string_view tenant,
                                           absl::string_view patient_id,
                                           absl::Time now) const {
  const absl::Status expired =
      Unauthenticated("SESSION_EXPIRED",
                      "the patient session has ended; verify the link again");
  if (session_token.empty() || session_token.size() > 128) return expired;
  absl::StatusOr<PatientSession> found = ResourceNotFound();
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    found = store_.FindSessionByTokenHash(txn, TokenHash(session_token));
    return absl::OkStatus();
  }));
  if (!found.ok()) {
    return found.status().code() == absl::StatusCode::kNotFound
               ? expired
               : found.status();
  }
  const PatientSession& s = *found;
  if (s.tenant != tenant || s.patient_id != patient_id ||
      s.StateAt(now) != SessionState::kActive) {
    return expired;
  }
  // Activity extends the idle limit; written at most once a minute per
  // session and not waited for (a lost extension only shortens the session).
  const absl::Time extended = std::min(now + kSessionIdleLimit, s.expire_time);
  if (extended - s.idle_expire_time >= absl::Minutes(1)) {
    PatientSession touched = s;
    deps_.db->Write(
        [touched, extended](sql::Txn& txn) -> absl::Status {
          SqlIdentityStore store;  // stateless; the manager may be gone
          ASSIGN_OR_RETURN(PatientSession cur,
                           store.GetSession(txn, touched.tenant,
                                            touched.patient_id, touched.id));
          if (cur.state != SessionState::kActive ||
              cur.idle_expire_time >= extended) {
            return absl::OkStatus();
          }
          cur.idle_expire_time = extended;
          return store.UpdateSession(txn, cur);
        },
        [](absl::Status) {});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Issuer>> IdentityManager::IssuersByUri(
    absl::string_view issuer_uri) const {
  std::vector<Issuer> out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(out, store_.FindIssuersByUri(txn, issuer_uri));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<Clinician> IdentityManager::ClinicianBySubject(
    absl::string_view tenant, absl::string_view issuer_id,
    absl::string_view subject) const {
  absl::StatusOr<Clinician> out = ResourceNotFound();
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) {
    out = store_.FindClinicianBySubject(txn, tenant, issuer_id, subject);
    return out.status();
  }));
  return out;
}

void IdentityManager::ForgetTenantStateAfterCommit(sql::Txn& txn,
                                                   absl::string_view tenant) {
  txn.AfterCommit([this, tenant = std::string(tenant)] {
    absl::MutexLock lock(&tenant_state_mu_);
    tenant_state_.erase(tenant);
    ++tenant_state_generation_;
  });
}

absl::StatusOr<bool> IdentityManager::TenantSuspended(
    absl::string_view tenant) const {
  const absl::Time now = deps_.clock->Now();
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&tenant_state_mu_);
    auto it = tenant_state_.find(tenant);
    if (it != tenant_state_.end() && now >= it->second.read_at &&
        now - it->second.read_at < kTenantStateTtl) {
      return it->second.suspended;
    }
    generation = tenant_state_generation_;
  }
  bool suspended = false;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    absl::StatusOr<Tenant> t = store_.GetTenant(txn, tenant);
    if (!t.ok()) {
      return t.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus()
                                                              : t.status();
    }
    suspended = t->state == TenantState::kSuspended;
    return absl::OkStatus();
  }));
  absl::MutexLock lock(&tenant_state_mu_);
  if (generation == tenant_state_generation_) {
    tenant_state_[tenant] = TenantStateEntry{suspended, now};
  }
  return suspended;
}

absl::StatusOr<PrincipalState> IdentityManager::PatientState(
    absl::string_view tenant, absl::string_view patient_id) const {
  absl::StatusOr<PrincipalState> out = ResourceNotFound();
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    absl::StatusOr<PatientRow> row = store_.GetPatient(txn, tenant, patient_id);
    if (!row.ok()) return row.status();
    out = row->state;
    return absl::OkStatus();
  }));
  return out;
}

// ------------------------------------------------------------ Break-glass

namespace {

std::string GrantReasonAad(const BreakGlassGrant& g) {
  return absl::StrCat("identity-break-glass-reason:", g.Name());
}

void TouchGrant(CallContext& call, const BreakGlassGrant& g) {
  call.tenant = g.tenant;
  call.resource = g.Name();
  call.patient = g.PatientName();
}

}  // namespace

absl::StatusOr<BreakGlassGrant> IdentityManager::OpenGrant(
    sql::Txn& txn, const BreakGlassRow& row) {
  BreakGlassGrant g = row.grant;
  ASSIGN_OR_RETURN(
      g.reason,
      deps_.sealer->Open(txn, g.tenant, row.reason_sealed, GrantReasonAad(g)));
  return g;
}

void IdentityManager::StartBreakGlass(CallContext& call,
                                      StartBreakGlassInput in,
                                      Done<BreakGlassGrant> done) {
  absl::Status valid = NeedSealer(deps_.sealer);
  if (valid.ok()) {
    valid = CheckSingleLine("reason", in.reason, 0, kMaxBreakGlassReason);
  }
  if (valid.ok() &&
      CodePoints(in.reason) < static_cast<long>(kMinBreakGlassReason)) {
    valid = InvalidField("reason", "REASON_TOO_SHORT",
                         "reason must say why, in at least 10 characters");
  }
  const absl::Duration duration = in.duration.value_or(kDefaultBreakGlass);
  if (valid.ok() && (duration < kMinBreakGlass || duration > kMaxBreakGlass)) {
    valid = InvalidField("duration", "DURATION_OUT_OF_RANGE",
                         "duration must be 5 minutes to 4 hours");
  }
  if (!valid.ok()) return done(valid);
  std::string grant_id = crypto::NewOpaqueId(*deps_.random);
  RunWrite<BreakGlassGrant>(
      *deps_.db,
      [this, &call, in = std::move(in), grant_id,
       duration](sql::Txn& txn) -> absl::StatusOr<BreakGlassGrant> {
        TouchPatient(call, in.tenant, in.patient_id);
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          ASSIGN_OR_RETURN(BreakGlassRow row,
                           store_.GetGrant(txn, in.tenant, in.clinician_id,
                                           LastSegment(*prior)));
          TouchGrant(call, row.grant);
          RETURN_IF_ERROR(Audit(txn, call));
          return OpenGrant(txn, row);
        }
        // The patient must exist (NOT_FOUND like any absent resource).
        RETURN_IF_ERROR(
            store_.GetPatient(txn, in.tenant, in.patient_id).status());
        BreakGlassRow row;
        BreakGlassGrant& g = row.grant;
        g.tenant = in.tenant;
        g.clinician_id = in.clinician_id;
        g.id = grant_id;
        g.patient_id = in.patient_id;
        g.state = BreakGlassState::kActive;
        g.start_time = call.now;
        g.expire_time = call.now + duration;
        ASSIGN_OR_RETURN(
            row.reason_sealed,
            deps_.sealer->Seal(txn, g.tenant, in.reason, GrantReasonAad(g)));
        TouchGrant(call, g);
        RETURN_IF_ERROR(store_.InsertGrant(txn, row));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, g.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        RETURN_IF_ERROR(
            events::AppendEvent(
                txn, events::EventFor(
                         call, events::EventType::kBreakGlassStarted, g.Name()))
                .status());
        BreakGlassGrant out = g;
        out.reason = in.reason;
        return out;
      },
      std::move(done));
}

void IdentityManager::EndBreakGlass(CallContext& call, std::string tenant,
                                    std::string clinician_id,
                                    std::string grant_id,
                                    Done<BreakGlassGrant> done) {
  absl::Status valid = NeedSealer(deps_.sealer);
  if (!valid.ok()) return done(valid);
  RunWrite<BreakGlassGrant>(
      *deps_.db,
      [this, &call, tenant = std::move(tenant),
       clinician_id = std::move(clinician_id), grant_id = std::move(grant_id)](
          sql::Txn& txn) -> absl::StatusOr<BreakGlassGrant> {
        Touch(call, tenant,
              absl::StrCat("tenants/", tenant, "/clinicians/", clinician_id,
                           "/breakGlassGrants/", grant_id));
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(BreakGlassRow row,
                         store_.GetGrant(txn, tenant, clinician_id, grant_id));
        BreakGlassGrant& g = row.grant;
        TouchGrant(call, g);
        bool ended = false;
        if (!prior) {
          if (g.StateAt(call.now) == BreakGlassState::kActive) {
            g.state = BreakGlassState::kEnded;
            g.end_time = call.now;
            RETURN_IF_ERROR(store_.UpdateGrant(txn, g));
            ended = true;
          }
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, g.Name()));
        }
        RETURN_IF_ERROR(Audit(txn, call));
        if (ended) {
          RETURN_IF_ERROR(
              events::AppendEvent(
                  txn, events::EventFor(
                           call, events::EventType::kBreakGlassEnded, g.Name()))
                  .status());
        }
        return OpenGrant(txn, row);
      },
      std::move(done));
}

absl::StatusOr<Page<BreakGlassGrant>> IdentityManager::ListBreakGlassGrants(
    CallContext& call, absl::string_view tenant, absl::string_view clinician_id,
    absl::string_view patient_id, int page_size, absl::string_view page_token) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/clinicians/",
                     clinician_id.empty() ? "-" : clinician_id,
                     "/breakGlassGrants"));
  if (!patient_id.empty()) {
    call.patient = absl::StrCat("tenants/", tenant, "/patients/", patient_id);
  }
  RETURN_IF_ERROR(NeedSealer(deps_.sealer));
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter =
      absl::StrCat("grants|", tenant, "|", clinician_id, "|", patient_id);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter, &first));
  Page<BreakGlassGrant> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(store_.GetTenant(txn, tenant).status());
    if (!clinician_id.empty()) {
      RETURN_IF_ERROR(store_.GetClinician(txn, tenant, clinician_id).status());
    }
    ASSIGN_OR_RETURN(auto rows, store_.ListGrants(txn, tenant, clinician_id,
                                                  patient_id, first, after.key,
                                                  after.tiebreak, limit + 1));
    for (const BreakGlassRow& row : rows) {
      ASSIGN_OR_RETURN(BreakGlassGrant g, OpenGrant(txn, row));
      page.items.push_back(std::move(g));
    }
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    const BreakGlassGrant& last = page.items.back();
    page.next_page_token =
        EncodePageToken({ToMicros(last.start_time), last.id}, filter);
  }
  return page;
}

absl::StatusOr<BreakGlassGrant> IdentityManager::GrantForUse(
    absl::string_view tenant, absl::string_view clinician_id,
    absl::string_view grant_id) const {
  absl::StatusOr<BreakGlassGrant> out = ResourceNotFound();
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    absl::StatusOr<BreakGlassRow> row =
        store_.GetGrant(txn, tenant, clinician_id, grant_id);
    if (!row.ok()) return row.status();
    out = row->grant;
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace careseal::identity
