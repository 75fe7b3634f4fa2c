#include "services/identity/identity_grpc.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "services/common/grpc/proto_role.h"
#include "services/common/macros.h"
#include "services/common/platform/resource_name.h"
#include "services/common/status.h"

namespace careseal::identity {
namespace {

#define IDENTITY_METHOD(name) "careseal.v1.IdentityService/" #name

constexpr char kTenantPattern[] = "tenants/{tenant}";
constexpr char kIssuerPattern[] = "tenants/{tenant}/issuers/{issuer}";
constexpr char kClinicianPattern[] = "tenants/{tenant}/clinicians/{clinician}";
constexpr char kPatientPattern[] = "tenants/{tenant}/patients/{patient}";
constexpr char kLinkPattern[] =
    "tenants/{tenant}/patients/{patient}/links/{link}";
constexpr char kGrantPattern[] =
    "tenants/{tenant}/clinicians/{clinician}/breakGlassGrants/{grant}";
constexpr char kSessionPattern[] =
    "tenants/{tenant}/patients/{patient}/portalSessions/{portal_session}";

absl::Status Authorize(const Edge& edge, const CallContext& call,
                       absl::string_view tenant, absl::string_view patient) {
  return edge.policy->Authorize(
      call.principal, call.method,
      Scope{std::string(tenant), std::string(patient)}, call.now);
}

// The update mask's paths; INVALID_UPDATE_MASK for an empty mask or a path
// outside `allowed`.
absl::StatusOr<std::set<std::string>> MaskPaths(
    const google::protobuf::FieldMask& mask,
    std::initializer_list<const char*> allowed) {
  std::set<std::string> ok(allowed.begin(), allowed.end());
  std::set<std::string> out;
  for (const std::string& path : mask.paths()) {
    if (!ok.count(path)) {
      std::string list;
      for (const char* a : allowed)
        absl::StrAppend(&list, list.empty() ? "" : ", ", a);
      return InvalidField(
          "update_mask", "INVALID_UPDATE_MASK",
          absl::StrCat("update_mask paths must be among ", list));
    }
    out.insert(path);
  }
  if (out.empty()) {
    return InvalidField("update_mask", "INVALID_UPDATE_MASK",
                        "update_mask needs at least one path");
  }
  return out;
}

void ToProto(const Tenant& t, v1::Tenant* out) {
  out->set_name(t.Name());
  out->set_display_name(t.display_name);
  out->set_time_zone(t.time_zone);
  out->set_state(static_cast<v1::TenantState>(t.state));
  ToTimestamp(t.create_time, out->mutable_create_time());
  ToTimestamp(t.update_time, out->mutable_update_time());
}

void ToProto(const Issuer& i, v1::Issuer* out) {
  out->set_name(i.Name());
  out->set_display_name(i.display_name);
  out->set_issuer_uri(i.issuer_uri);
  out->set_kind(static_cast<v1::IssuerKind>(i.kind));
  for (const std::string& p : i.peer_identities) out->add_peer_identities(p);
  out->set_jwks_json(i.jwks_json);
  for (const std::string& k : i.key_ids) out->add_key_ids(k);
  out->set_state(static_cast<v1::IssuerState>(i.state));
  ToTimestamp(i.create_time, out->mutable_create_time());
  ToTimestamp(i.update_time, out->mutable_update_time());
  if (i.revoke_time) ToTimestamp(*i.revoke_time, out->mutable_revoke_time());
}

void ToProto(const Clinician& c, v1::Clinician* out) {
  out->set_name(c.Name());
  out->set_display_name(c.display_name);
  out->set_issuer(c.IssuerName());
  out->set_subject(c.subject);
  for (int r : c.roles) out->add_roles(static_cast<v1::Role>(r));
  out->set_care_team(c.care_team);
  out->set_on_call(c.on_call);
  out->set_state(static_cast<v1::PrincipalState>(c.state));
  ToTimestamp(c.create_time, out->mutable_create_time());
  ToTimestamp(c.update_time, out->mutable_update_time());
}

// Never sets date_of_birth: it is not kept.
void ToProto(const Patient& p, v1::Patient* out) {
  out->set_name(p.Name());
  out->set_external_id(p.external_id);
  out->set_display_name(p.display_name);
  out->set_state(static_cast<v1::PrincipalState>(p.state));
  ToTimestamp(p.create_time, out->mutable_create_time());
  ToTimestamp(p.update_time, out->mutable_update_time());
}

void ToProto(const PatientLink& l, absl::Time now, v1::PatientLink* out) {
  out->set_name(l.Name());
  out->set_target(l.target);
  out->set_factor(static_cast<v1::LinkFactor>(l.factor));
  out->set_state(static_cast<v1::PatientLinkState>(l.StateAt(now)));
  out->set_failed_attempts(l.failed_attempts);
  v1::Actor* by = out->mutable_created_by();
  by->set_name(l.created_by_name);
  by->set_role(ToProtoRole(l.created_by_role));
  by->set_peer_identity(l.created_by_peer);
  ToTimestamp(l.create_time, out->mutable_create_time());
  ToTimestamp(l.expire_time, out->mutable_expire_time());
  if (l.redeem_time) ToTimestamp(*l.redeem_time, out->mutable_redeem_time());
}

void ToProto(const PatientSession& s, absl::Time now, v1::PatientSession* out) {
  out->set_name(s.Name());
  out->set_link(s.link);
  out->set_target(s.target);
  out->set_state(static_cast<v1::PatientSessionState>(s.StateAt(now)));
  ToTimestamp(s.create_time, out->mutable_create_time());
  ToTimestamp(s.idle_expire_time, out->mutable_idle_expire_time());
  ToTimestamp(s.expire_time, out->mutable_expire_time());
  if (s.end_time) ToTimestamp(*s.end_time, out->mutable_end_time());
}

void ToProto(const BreakGlassGrant& g, absl::Time now,
             v1::BreakGlassGrant* out) {
  out->set_name(g.Name());
  out->set_patient(g.PatientName());
  out->set_reason(g.reason);
  out->set_state(static_cast<v1::BreakGlassState>(g.StateAt(now)));
  ToTimestamp(g.start_time, out->mutable_start_time());
  ToTimestamp(g.expire_time, out->mutable_expire_time());
  if (g.end_time) ToTimestamp(*g.end_time, out->mutable_end_time());
}

Date FromProto(const v1::Date& d) { return Date{d.year(), d.month(), d.day()}; }

template <typename T, typename Convert>
Done<T> Reply(Finisher finish, Convert convert) {
  return [finish = std::move(finish),
          convert = std::move(convert)](absl::StatusOr<T> result) mutable {
    if (!result.ok()) return finish(result.status());
    convert(*result);
    finish(absl::OkStatus());
  };
}

}  // namespace

void AddIdentityPolicy(Policy& policy) {
  using R = Role;
  // System: the pre-session scheduler writes times in the tenant's zone.
  policy.Allow(
      IDENTITY_METHOD(GetTenant),
      {R::kAdmin, R::kEhrSystem, R::kClinician, R::kAuditor, R::kSystem});
  policy.Allow(IDENTITY_METHOD(ListTenants), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(CreateTenant), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(UpdateTenant), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(GetIssuer), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(ListIssuers), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(RegisterIssuer), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(UpdateIssuer), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(RevokeIssuer), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(GetClinician),
               {R::kAdmin, R::kEhrSystem, R::kClinician});
  // System: the follow-up scheduler re-escalates to on-call clinicians.
  policy.Allow(IDENTITY_METHOD(ListClinicians),
               {R::kAdmin, R::kEhrSystem, R::kClinician, R::kSystem});
  policy.Allow(IDENTITY_METHOD(CreateClinician), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(UpdateClinician), {R::kAdmin});
  policy.Allow(IDENTITY_METHOD(GetPatient),
               {R::kEhrSystem, R::kClinician, R::kBreakGlass, R::kPatient});
  policy.Allow(IDENTITY_METHOD(ListPatients), {R::kEhrSystem, R::kClinician});
  policy.Allow(IDENTITY_METHOD(CreatePatient), {R::kEhrSystem});
  policy.Allow(IDENTITY_METHOD(UpdatePatient), {R::kEhrSystem});
  // System: the consent service makes a consent's signing link.
  policy.Allow(IDENTITY_METHOD(CreatePatientLink),
               {R::kEhrSystem, R::kClinician, R::kSystem});
  policy.Allow(IDENTITY_METHOD(ListBreakGlassGrants),
               {R::kAuditor, R::kAdmin, R::kClinician});
  policy.Allow(IDENTITY_METHOD(IssueLinkCode), {R::kEhrSystem, R::kClinician});
  policy.Allow(IDENTITY_METHOD(RevokePatientLink),
               {R::kEhrSystem, R::kClinician});
  policy.Allow(IDENTITY_METHOD(RedeemLink), {R::kPortal});
  policy.Allow(IDENTITY_METHOD(EndPatientSession), {R::kPatient, R::kPortal});
  policy.Allow(IDENTITY_METHOD(StartBreakGlass), {R::kClinician});
  policy.Allow(IDENTITY_METHOD(EndBreakGlass), {R::kClinician, R::kAdmin});
}

// ------------------------------------------------------------------ Tenants

grpc::ServerUnaryReactor* IdentityGrpc::GetTenant(
    grpc::CallbackServerContext* ctx, const v1::GetTenantRequest* req,
    v1::GetTenantResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(GetTenant), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        ASSIGN_OR_RETURN(Tenant t,
                         manager_->GetTenant(call, name.Get("tenant")));
        ToProto(t, resp->mutable_tenant());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::ListTenants(
    grpc::CallbackServerContext* ctx, const v1::ListTenantsRequest* req,
    v1::ListTenantsResponse* resp) {
  return RunUnary(ctx, edge_, IDENTITY_METHOD(ListTenants), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    RETURN_IF_ERROR(Authorize(edge_, call, "", ""));
                    ASSIGN_OR_RETURN(
                        auto page, manager_->ListTenants(call, req->page_size(),
                                                         req->page_token()));
                    for (const Tenant& t : page.items)
                      ToProto(t, resp->add_tenants());
                    resp->set_next_page_token(page.next_page_token);
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* IdentityGrpc::CreateTenant(
    grpc::CallbackServerContext* ctx, const v1::CreateTenantRequest* req,
    v1::CreateTenantResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(CreateTenant), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        RETURN_IF_ERROR(Authorize(edge_, call, req->tenant_id(), ""));
        CreateTenantInput in;
        in.tenant_id = req->tenant_id();
        in.display_name = req->tenant().display_name();
        in.time_zone = req->tenant().time_zone();
        manager_->CreateTenant(call, std::move(in),
                               Reply<Tenant>(finish, [resp](const Tenant& t) {
                                 ToProto(t, resp->mutable_tenant());
                               }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::UpdateTenant(
    grpc::CallbackServerContext* ctx, const v1::UpdateTenantRequest* req,
    v1::UpdateTenantResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(UpdateTenant), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->tenant().name(),
                                "tenant.name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        ASSIGN_OR_RETURN(auto paths,
                         MaskPaths(req->update_mask(),
                                   {"display_name", "time_zone", "state"}));
        UpdateTenantInput in;
        in.tenant_id = name.Get("tenant");
        if (paths.count("display_name")) {
          in.display_name = req->tenant().display_name();
        }
        if (paths.count("time_zone")) in.time_zone = req->tenant().time_zone();
        if (paths.count("state")) in.state = req->tenant().state();
        manager_->UpdateTenant(call, std::move(in),
                               Reply<Tenant>(finish, [resp](const Tenant& t) {
                                 ToProto(t, resp->mutable_tenant());
                               }));
        return absl::OkStatus();
      });
}

// ------------------------------------------------------------------ Issuers

grpc::ServerUnaryReactor* IdentityGrpc::GetIssuer(
    grpc::CallbackServerContext* ctx, const v1::GetIssuerRequest* req,
    v1::GetIssuerResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(GetIssuer), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kIssuerPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        ASSIGN_OR_RETURN(Issuer i, manager_->GetIssuer(call, name.Get("tenant"),
                                                       name.Get("issuer")));
        ToProto(i, resp->mutable_issuer());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::ListIssuers(
    grpc::CallbackServerContext* ctx, const v1::ListIssuersRequest* req,
    v1::ListIssuersResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(ListIssuers), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        ASSIGN_OR_RETURN(auto page, manager_->ListIssuers(
                                        call, name.Get("tenant"),
                                        req->page_size(), req->page_token()));
        for (const Issuer& i : page.items) ToProto(i, resp->add_issuers());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::RegisterIssuer(
    grpc::CallbackServerContext* ctx, const v1::RegisterIssuerRequest* req,
    v1::RegisterIssuerResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(RegisterIssuer), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        RegisterIssuerInput in;
        in.tenant = name.Get("tenant");
        in.issuer_id = req->issuer_id();
        in.display_name = req->issuer().display_name();
        in.issuer_uri = req->issuer().issuer_uri();
        in.kind = req->issuer().kind();
        in.peer_identities.assign(req->issuer().peer_identities().begin(),
                                  req->issuer().peer_identities().end());
        in.jwks_json = req->issuer().jwks_json();
        manager_->RegisterIssuer(call, std::move(in),
                                 Reply<Issuer>(finish, [resp](const Issuer& i) {
                                   ToProto(i, resp->mutable_issuer());
                                 }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::UpdateIssuer(
    grpc::CallbackServerContext* ctx, const v1::UpdateIssuerRequest* req,
    v1::UpdateIssuerResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(UpdateIssuer), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kIssuerPattern, req->issuer().name(),
                                "issuer.name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        ASSIGN_OR_RETURN(auto paths, MaskPaths(req->update_mask(),
                                               {"display_name", "jwks_json",
                                                "peer_identities"}));
        UpdateIssuerInput in;
        in.tenant = name.Get("tenant");
        in.issuer_id = name.Get("issuer");
        if (paths.count("display_name")) {
          in.display_name = req->issuer().display_name();
        }
        if (paths.count("jwks_json")) in.jwks_json = req->issuer().jwks_json();
        if (paths.count("peer_identities")) {
          in.peer_identities =
              std::vector<std::string>(req->issuer().peer_identities().begin(),
                                       req->issuer().peer_identities().end());
        }
        manager_->UpdateIssuer(call, std::move(in),
                               Reply<Issuer>(finish, [resp](const Issuer& i) {
                                 ToProto(i, resp->mutable_issuer());
                               }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::RevokeIssuer(
    grpc::CallbackServerContext* ctx, const v1::RevokeIssuerRequest* req,
    v1::RevokeIssuerResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(RevokeIssuer), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kIssuerPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        manager_->RevokeIssuer(call, name.Get("tenant"), name.Get("issuer"),
                               Reply<Issuer>(finish, [resp](const Issuer& i) {
                                 ToProto(i, resp->mutable_issuer());
                               }));
        return absl::OkStatus();
      });
}

// --------------------------------------------------------------- Clinicians

grpc::ServerUnaryReactor* IdentityGrpc::GetClinician(
    grpc::CallbackServerContext* ctx, const v1::GetClinicianRequest* req,
    v1::GetClinicianResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(GetClinician), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kClinicianPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        ASSIGN_OR_RETURN(Clinician c,
                         manager_->GetClinician(call, name.Get("tenant"),
                                                name.Get("clinician")));
        ToProto(c, resp->mutable_clinician());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::ListClinicians(
    grpc::CallbackServerContext* ctx, const v1::ListCliniciansRequest* req,
    v1::ListCliniciansResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(ListClinicians), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        ASSIGN_OR_RETURN(
            auto page,
            manager_->ListClinicians(call, name.Get("tenant"),
                                     req->care_team_only(), req->on_call_only(),
                                     req->page_size(), req->page_token()));
        for (const Clinician& c : page.items) {
          ToProto(c, resp->add_clinicians());
        }
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::CreateClinician(
    grpc::CallbackServerContext* ctx, const v1::CreateClinicianRequest* req,
    v1::CreateClinicianResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(CreateClinician), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        ASSIGN_OR_RETURN(
            ResourceName issuer,
            ResourceName::Parse(kIssuerPattern, req->clinician().issuer(),
                                "clinician.issuer"));
        if (issuer.Get("tenant") != name.Get("tenant")) {
          return InvalidField("clinician.issuer", "INVALID_ISSUER",
                              "clinician.issuer must be an issuer of the "
                              "same tenant");
        }
        CreateClinicianInput in;
        in.tenant = name.Get("tenant");
        in.clinician_id = req->clinician_id();
        in.display_name = req->clinician().display_name();
        in.issuer_id = issuer.Get("issuer");
        in.subject = req->clinician().subject();
        for (int r : req->clinician().roles()) in.roles.push_back(r);
        in.care_team = req->clinician().care_team();
        in.on_call = req->clinician().on_call();
        manager_->CreateClinician(
            call, std::move(in),
            Reply<Clinician>(finish, [resp](const Clinician& c) {
              ToProto(c, resp->mutable_clinician());
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::UpdateClinician(
    grpc::CallbackServerContext* ctx, const v1::UpdateClinicianRequest* req,
    v1::UpdateClinicianResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(UpdateClinician), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kClinicianPattern, req->clinician().name(),
                                "clinician.name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        ASSIGN_OR_RETURN(
            auto paths,
            MaskPaths(req->update_mask(), {"display_name", "roles", "care_team",
                                           "on_call", "state"}));
        UpdateClinicianInput in;
        in.tenant = name.Get("tenant");
        in.clinician_id = name.Get("clinician");
        const v1::Clinician& c = req->clinician();
        if (paths.count("display_name")) in.display_name = c.display_name();
        if (paths.count("roles")) {
          in.roles = std::vector<int>(c.roles().begin(), c.roles().end());
        }
        if (paths.count("care_team")) in.care_team = c.care_team();
        if (paths.count("on_call")) in.on_call = c.on_call();
        if (paths.count("state")) in.state = c.state();
        manager_->UpdateClinician(
            call, std::move(in),
            Reply<Clinician>(finish, [resp](const Clinician& c) {
              ToProto(c, resp->mutable_clinician());
            }));
        return absl::OkStatus();
      });
}

// ----------------------------------------------------------------- Patients

grpc::ServerUnaryReactor* IdentityGrpc::GetPatient(
    grpc::CallbackServerContext* ctx, const v1::GetPatientRequest* req,
    v1::GetPatientResponse* resp) {
  return RunUnary(ctx, edge_, IDENTITY_METHOD(GetPatient), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName name,
                                     ResourceName::Parse(kPatientPattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"),
                                              name.Get("patient")));
                    ASSIGN_OR_RETURN(Patient p, manager_->GetPatient(
                                                    call, name.Get("tenant"),
                                                    name.Get("patient")));
                    ToProto(p, resp->mutable_patient());
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* IdentityGrpc::ListPatients(
    grpc::CallbackServerContext* ctx, const v1::ListPatientsRequest* req,
    v1::ListPatientsResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(ListPatients), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), "-"));
        ASSIGN_OR_RETURN(
            auto page,
            manager_->ListPatients(call, name.Get("tenant"), req->external_id(),
                                   req->page_size(), req->page_token()));
        for (const Patient& p : page.items) ToProto(p, resp->add_patients());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::CreatePatient(
    grpc::CallbackServerContext* ctx, const v1::CreatePatientRequest* req,
    v1::CreatePatientResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(CreatePatient), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), "-"));
        if (!req->patient().has_date_of_birth()) {
          return InvalidField("patient.date_of_birth", "INVALID_DATE",
                              "patient.date_of_birth is required");
        }
        CreatePatientInput in;
        in.tenant = name.Get("tenant");
        in.external_id = req->patient().external_id();
        in.display_name = req->patient().display_name();
        in.date_of_birth = FromProto(req->patient().date_of_birth());
        manager_->CreatePatient(
            call, std::move(in),
            Reply<Patient>(finish, [resp](const Patient& p) {
              ToProto(p, resp->mutable_patient());
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::UpdatePatient(
    grpc::CallbackServerContext* ctx, const v1::UpdatePatientRequest* req,
    v1::UpdatePatientResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(UpdatePatient), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kPatientPattern, req->patient().name(),
                                "patient.name"));
        RETURN_IF_ERROR(
            Authorize(edge_, call, name.Get("tenant"), name.Get("patient")));
        ASSIGN_OR_RETURN(auto paths, MaskPaths(req->update_mask(),
                                               {"external_id", "display_name",
                                                "date_of_birth", "state"}));
        const v1::Patient& p = req->patient();
        UpdatePatientInput in;
        in.tenant = name.Get("tenant");
        in.patient_id = name.Get("patient");
        if (paths.count("external_id")) in.external_id = p.external_id();
        if (paths.count("display_name")) in.display_name = p.display_name();
        if (paths.count("date_of_birth")) {
          in.date_of_birth = FromProto(p.date_of_birth());
        }
        if (paths.count("state")) in.state = p.state();
        manager_->UpdatePatient(
            call, std::move(in),
            Reply<Patient>(finish, [resp](const Patient& p) {
              ToProto(p, resp->mutable_patient());
            }));
        return absl::OkStatus();
      });
}

// ------------------------------------------------------ Links and sessions

grpc::ServerUnaryReactor* IdentityGrpc::CreatePatientLink(
    grpc::CallbackServerContext* ctx, const v1::CreatePatientLinkRequest* req,
    v1::CreatePatientLinkResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(CreatePatientLink), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kPatientPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(
            Authorize(edge_, call, name.Get("tenant"), name.Get("patient")));
        CreateLinkInput in;
        in.tenant = name.Get("tenant");
        in.patient_id = name.Get("patient");
        in.target = req->target();
        in.factor = req->factor();
        if (req->has_expire_time()) {
          ASSIGN_OR_RETURN(in.expire_time,
                           FromTimestamp(req->expire_time(), "expire_time"));
        }
        const absl::Time now = call.now;
        manager_->CreatePatientLink(
            call, std::move(in),
            Reply<CreatedLink>(finish, [resp, now](const CreatedLink& c) {
              ToProto(c.link, now, resp->mutable_link());
              resp->set_link_token(c.link_token);
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::IssueLinkCode(
    grpc::CallbackServerContext* ctx, const v1::IssueLinkCodeRequest* req,
    v1::IssueLinkCodeResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(IssueLinkCode), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kLinkPattern, req->name(), "name"));
        RETURN_IF_ERROR(
            Authorize(edge_, call, name.Get("tenant"), name.Get("patient")));
        manager_->IssueLinkCode(
            call, name.Get("tenant"), name.Get("patient"), name.Get("link"),
            Reply<IssuedCode>(finish, [resp](const IssuedCode& c) {
              resp->set_code(c.code);
              ToTimestamp(c.expire_time, resp->mutable_expire_time());
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::RevokePatientLink(
    grpc::CallbackServerContext* ctx, const v1::RevokePatientLinkRequest* req,
    v1::RevokePatientLinkResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(RevokePatientLink), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kLinkPattern, req->name(), "name"));
        RETURN_IF_ERROR(
            Authorize(edge_, call, name.Get("tenant"), name.Get("patient")));
        const absl::Time now = call.now;
        manager_->RevokePatientLink(
            call, name.Get("tenant"), name.Get("patient"), name.Get("link"),
            Reply<PatientLink>(finish, [resp, now](const PatientLink& l) {
              ToProto(l, now, resp->mutable_link());
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::RedeemLink(
    grpc::CallbackServerContext* ctx, const v1::RedeemLinkRequest* req,
    v1::RedeemLinkResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(RedeemLink), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        // The portal presents a link token; the domain checks it.
        RETURN_IF_ERROR(Authorize(edge_, call, "", ""));
        RedeemInput in;
        in.link_token = req->link_token();
        if (req->has_date_of_birth()) {
          in.date_of_birth = FromProto(req->date_of_birth());
        }
        if (req->second_factor_case() == v1::RedeemLinkRequest::kOneTimeCode) {
          in.one_time_code = req->one_time_code();
        }
        in.client_address = req->client_address();
        in.user_agent = req->user_agent();
        const absl::Time now = call.now;
        manager_->RedeemLink(
            call, std::move(in),
            Reply<Redeemed>(finish, [resp, now](const Redeemed& r) {
              resp->set_patient(r.patient);
              ToProto(r.session, now, resp->mutable_session());
              resp->set_session_token(r.session_token);
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::EndPatientSession(
    grpc::CallbackServerContext* ctx, const v1::EndPatientSessionRequest* req,
    v1::EndPatientSessionResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(EndPatientSession), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kSessionPattern, req->name(), "name"));
        RETURN_IF_ERROR(
            Authorize(edge_, call, name.Get("tenant"), name.Get("patient")));
        const absl::Time now = call.now;
        manager_->EndPatientSession(
            call, name.Get("tenant"), name.Get("patient"),
            name.Get("portal_session"),
            Reply<PatientSession>(finish, [resp, now](const PatientSession& s) {
              ToProto(s, now, resp->mutable_session());
            }));
        return absl::OkStatus();
      });
}

// ---------------------------------------------------------- Break-glass

grpc::ServerUnaryReactor* IdentityGrpc::StartBreakGlass(
    grpc::CallbackServerContext* ctx, const v1::StartBreakGlassRequest* req,
    v1::StartBreakGlassResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(StartBreakGlass), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName parent,
            ResourceName::Parse(kClinicianPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, parent.Get("tenant"), ""));
        if (parent.name() != call.principal.actor) {
          return PermissionDenied("NOT_SELF",
                                  "a clinician starts break-glass only for "
                                  "themselves: parent must be the caller");
        }
        ASSIGN_OR_RETURN(
            ResourceName patient,
            ResourceName::Parse(kPatientPattern, req->patient(), "patient"));
        if (patient.Get("tenant") != parent.Get("tenant")) {
          return ResourceNotFound();
        }
        StartBreakGlassInput in;
        in.tenant = parent.Get("tenant");
        in.clinician_id = parent.Get("clinician");
        in.patient_id = patient.Get("patient");
        in.reason = req->reason();
        if (req->has_duration()) {
          const auto& d = req->duration();
          if (d.nanos() < 0 || d.nanos() > 999999999 || d.seconds() < 0 ||
              d.seconds() > 86400 * 365) {
            return InvalidField("duration", "DURATION_OUT_OF_RANGE",
                                "duration must be 5 minutes to 4 hours");
          }
          in.duration =
              absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
        }
        const absl::Time now = call.now;
        manager_->StartBreakGlass(
            call, std::move(in),
            Reply<BreakGlassGrant>(finish,
                                   [resp, now](const BreakGlassGrant& g) {
                                     ToProto(g, now, resp->mutable_grant());
                                   }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::EndBreakGlass(
    grpc::CallbackServerContext* ctx, const v1::EndBreakGlassRequest* req,
    v1::EndBreakGlassResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(EndBreakGlass), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kGrantPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.Get("tenant"), ""));
        // A clinician ends only their own grants; others' answer like
        // absent ones.
        if (call.principal.role == Role::kClinician &&
            absl::StrCat("tenants/", name.Get("tenant"), "/clinicians/",
                         name.Get("clinician")) != call.principal.actor) {
          return ResourceNotFound();
        }
        const absl::Time now = call.now;
        manager_->EndBreakGlass(
            call, name.Get("tenant"), name.Get("clinician"), name.Get("grant"),
            Reply<BreakGlassGrant>(finish,
                                   [resp, now](const BreakGlassGrant& g) {
                                     ToProto(g, now, resp->mutable_grant());
                                   }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* IdentityGrpc::ListBreakGlassGrants(
    grpc::CallbackServerContext* ctx,
    const v1::ListBreakGlassGrantsRequest* req,
    v1::ListBreakGlassGrantsResponse* resp) {
  return RunUnary(
      ctx, edge_, IDENTITY_METHOD(ListBreakGlassGrants), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName parent,
            ResourceName::ParseWithWildcard(kClinicianPattern, req->parent(),
                                            "parent", "clinician"));
        RETURN_IF_ERROR(Authorize(edge_, call, parent.Get("tenant"), ""));
        // A clinician lists only their own grants.
        if (call.principal.role == Role::kClinician &&
            parent.name() != call.principal.actor) {
          return ResourceNotFound();
        }
        std::string patient_id;
        if (!req->patient().empty()) {
          ASSIGN_OR_RETURN(
              ResourceName patient,
              ResourceName::Parse(kPatientPattern, req->patient(), "patient"));
          if (patient.Get("tenant") != parent.Get("tenant")) {
            return InvalidField("patient", "INVALID_PATIENT",
                                "patient must be a patient of the parent's "
                                "tenant");
          }
          patient_id = patient.Get("patient");
        }
        const std::string& clinician = parent.Get("clinician");
        ASSIGN_OR_RETURN(
            auto page,
            manager_->ListBreakGlassGrants(
                call, parent.Get("tenant"), clinician == "-" ? "" : clinician,
                patient_id, req->page_size(), req->page_token()));
        for (const BreakGlassGrant& g : page.items) {
          ToProto(g, call.now, resp->add_grants());
        }
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

}  // namespace careseal::identity
