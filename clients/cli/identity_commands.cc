// careseal admin tenant|issuer|clinician|patient|link ... and careseal
// break-glass start|end|list: the identity service.
// Responses print as JSON (proto3 JSON mapping). Updates send an update mask
// naming exactly the options given.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "clients/cli/cli.h"
#include "clients/cpp/identity_client.h"

namespace careseal::cli {
namespace {

namespace v1 = ::careseal::v1;

// Runs `call(client)` on a fresh channel and prints its response.
template <typename Call>
int Run(const Globals& g, Call call) {
  auto channel = g.Channel();
  if (!channel.ok()) return ReportError(channel.status());
  client::IdentityClient c(*channel);
  auto response = call(c);
  if (!response.ok()) return ReportError(response.status());
  return PrintJson(*response);
}

absl::StatusOr<v1::Date> ParseDate(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, '-');
  v1::Date d;
  int y = 0, m = 0, day = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &y) ||
      !absl::SimpleAtoi(parts[1], &m) || !absl::SimpleAtoi(parts[2], &day)) {
    return absl::InvalidArgumentError("--dob must be YYYY-MM-DD");
  }
  d.set_year(y);
  d.set_month(m);
  d.set_day(day);
  return d;
}

absl::StatusOr<v1::PrincipalState> PrincipalStateFrom(const std::string& s) {
  if (s == "active") return v1::PRINCIPAL_STATE_ACTIVE;
  if (s == "disabled") return v1::PRINCIPAL_STATE_DISABLED;
  return absl::InvalidArgumentError("--state is active or disabled");
}

absl::StatusOr<v1::Role> RoleFrom(const std::string& s) {
  if (s == "clinician") return v1::ROLE_CLINICIAN;
  if (s == "auditor") return v1::ROLE_AUDITOR;
  return absl::InvalidArgumentError("--role is clinician or auditor");
}

bool Given(CLI::App* cmd, const char* option) { return cmd->count(option) > 0; }

void AddTenantCommands(CLI::App& admin, Globals& g, Action& run) {
  auto* tenant = admin.add_subcommand("tenant", "tenants (clinics)");
  tenant->require_subcommand(1);

  struct Args {
    std::string id, name, display_name, time_zone, state, page_token;
    int page_size = 0;
  };
  auto a = std::make_shared<Args>();

  auto* create = tenant->add_subcommand("create", "create a tenant");
  create->add_option("--id", a->id, "tenant id [a-z][a-z0-9-]{2,62}")
      ->required();
  create->add_option("--display-name", a->display_name)->required();
  create->add_option("--time-zone", a->time_zone, "IANA time zone")->required();
  create->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::CreateTenantRequest r;
        r.set_tenant_id(a->id);
        r.mutable_tenant()->set_display_name(a->display_name);
        r.mutable_tenant()->set_time_zone(a->time_zone);
        return c.CreateTenant(r, g.Call());
      });
    };
  });

  auto* get = tenant->add_subcommand("get", "get a tenant");
  get->add_option("name", a->name, "tenants/{t}")->required();
  get->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::GetTenantRequest r;
        r.set_name(a->name);
        return c.GetTenant(r, g.Call());
      });
    };
  });

  auto* list = tenant->add_subcommand("list", "list tenants");
  list->add_option("--page-size", a->page_size);
  list->add_option("--page-token", a->page_token);
  list->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::ListTenantsRequest r;
        r.set_page_size(a->page_size);
        r.set_page_token(a->page_token);
        return c.ListTenants(r, g.Call());
      });
    };
  });

  auto* update = tenant->add_subcommand("update", "update a tenant");
  update->add_option("name", a->name, "tenants/{t}")->required();
  update->add_option("--display-name", a->display_name);
  update->add_option("--time-zone", a->time_zone);
  update->add_option("--state", a->state, "active or suspended");
  update->callback([&g, &run, a, update] {
    const bool dn = Given(update, "--display-name");
    const bool tz = Given(update, "--time-zone");
    const bool st = Given(update, "--state");
    run = [&g, a, dn, tz, st] {
      v1::UpdateTenantRequest r;
      r.mutable_tenant()->set_name(a->name);
      if (dn) {
        r.mutable_tenant()->set_display_name(a->display_name);
        r.mutable_update_mask()->add_paths("display_name");
      }
      if (tz) {
        r.mutable_tenant()->set_time_zone(a->time_zone);
        r.mutable_update_mask()->add_paths("time_zone");
      }
      if (st) {
        if (a->state != "active" && a->state != "suspended") {
          return ReportError(
              absl::InvalidArgumentError("--state is active or suspended"));
        }
        r.mutable_tenant()->set_state(a->state == "active"
                                          ? v1::TENANT_STATE_ACTIVE
                                          : v1::TENANT_STATE_SUSPENDED);
        r.mutable_update_mask()->add_paths("state");
      }
      return Run(g, [&](client::IdentityClient& c) {
        return c.UpdateTenant(r, g.Call());
      });
    };
  });
}

void AddIssuerCommands(CLI::App& admin, Globals& g, Action& run) {
  auto* issuer = admin.add_subcommand("issuer", "end-user token issuers");
  issuer->require_subcommand(1);

  struct Args {
    std::string parent, id, name, display_name, issuer_uri, kind, jwks_file,
        page_token;
    std::vector<std::string> peers;
    int page_size = 0;
  };
  auto a = std::make_shared<Args>();

  auto* reg = issuer->add_subcommand("register", "register a token issuer");
  reg->add_option("parent", a->parent, "tenants/{t}")->required();
  reg->add_option("--id", a->id, "issuer id (optional)");
  reg->add_option("--display-name", a->display_name);
  reg->add_option("--issuer-uri", a->issuer_uri, "the tokens' iss")->required();
  reg->add_option("--kind", a->kind, "ehr or portal")->required();
  reg->add_option("--peer", a->peers,
                  "URI SAN of a peer allowed to present its tokens "
                  "(repeatable)")
      ->required();
  reg->add_option("--jwks-file", a->jwks_file, "JWK Set with public keys")
      ->required();
  reg->callback([&g, &run, a] {
    run = [&g, a] {
      if (a->kind != "ehr" && a->kind != "portal") {
        return ReportError(
            absl::InvalidArgumentError("--kind is ehr or portal"));
      }
      auto jwks = ReadFile(a->jwks_file);
      if (!jwks.ok()) return ReportError(jwks.status());
      v1::RegisterIssuerRequest r;
      r.set_parent(a->parent);
      r.set_issuer_id(a->id);
      v1::Issuer* i = r.mutable_issuer();
      i->set_display_name(a->display_name);
      i->set_issuer_uri(a->issuer_uri);
      i->set_kind(a->kind == "ehr" ? v1::ISSUER_KIND_EHR
                                   : v1::ISSUER_KIND_PORTAL);
      for (const std::string& p : a->peers) i->add_peer_identities(p);
      i->set_jwks_json(*jwks);
      return Run(g, [&](client::IdentityClient& c) {
        return c.RegisterIssuer(r, g.Call());
      });
    };
  });

  auto* get = issuer->add_subcommand("get", "get an issuer");
  get->add_option("name", a->name, "tenants/{t}/issuers/{i}")->required();
  get->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::GetIssuerRequest r;
        r.set_name(a->name);
        return c.GetIssuer(r, g.Call());
      });
    };
  });

  auto* list = issuer->add_subcommand("list", "list a tenant's issuers");
  list->add_option("parent", a->parent, "tenants/{t}")->required();
  list->add_option("--page-size", a->page_size);
  list->add_option("--page-token", a->page_token);
  list->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::ListIssuersRequest r;
        r.set_parent(a->parent);
        r.set_page_size(a->page_size);
        r.set_page_token(a->page_token);
        return c.ListIssuers(r, g.Call());
      });
    };
  });

  auto* update = issuer->add_subcommand(
      "update", "update an issuer (rotate keys, change peers)");
  update->add_option("name", a->name, "tenants/{t}/issuers/{i}")->required();
  update->add_option("--display-name", a->display_name);
  update->add_option("--jwks-file", a->jwks_file);
  update->add_option("--peer", a->peers, "replaces the peers (repeatable)");
  update->callback([&g, &run, a, update] {
    const bool dn = Given(update, "--display-name");
    const bool jw = Given(update, "--jwks-file");
    const bool pe = Given(update, "--peer");
    run = [&g, a, dn, jw, pe] {
      v1::UpdateIssuerRequest r;
      r.mutable_issuer()->set_name(a->name);
      if (dn) {
        r.mutable_issuer()->set_display_name(a->display_name);
        r.mutable_update_mask()->add_paths("display_name");
      }
      if (jw) {
        auto jwks = ReadFile(a->jwks_file);
        if (!jwks.ok()) return ReportError(jwks.status());
        r.mutable_issuer()->set_jwks_json(*jwks);
        r.mutable_update_mask()->add_paths("jwks_json");
      }
      if (pe) {
        for (const std::string& p : a->peers) {
          r.mutable_issuer()->add_peer_identities(p);
        }
        r.mutable_update_mask()->add_paths("peer_identities");
      }
      return Run(g, [&](client::IdentityClient& c) {
        return c.UpdateIssuer(r, g.Call());
      });
    };
  });

  auto* revoke = issuer->add_subcommand(
      "revoke", "revoke an issuer: its tokens are refused from now on");
  revoke->add_option("name", a->name, "tenants/{t}/issuers/{i}")->required();
  revoke->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::RevokeIssuerRequest r;
        r.set_name(a->name);
        return c.RevokeIssuer(r, g.Call());
      });
    };
  });
}

void AddClinicianCommands(CLI::App& admin, Globals& g, Action& run) {
  auto* clinician = admin.add_subcommand("clinician", "clinicians");
  clinician->require_subcommand(1);

  struct Args {
    std::string parent, id, name, display_name, issuer, subject, state,
        page_token;
    std::vector<std::string> roles;
    bool care_team = false, on_call = false;
    bool care_team_only = false, on_call_only = false;
    int page_size = 0;
  };
  auto a = std::make_shared<Args>();

  auto* create = clinician->add_subcommand("create", "register a clinician");
  create->add_option("parent", a->parent, "tenants/{t}")->required();
  create->add_option("--id", a->id, "clinician id (optional)");
  create->add_option("--display-name", a->display_name)->required();
  create->add_option("--issuer", a->issuer, "tenants/{t}/issuers/{i} (EHR)")
      ->required();
  create->add_option("--subject", a->subject, "the issuer's sub for them")
      ->required();
  create->add_option("--role", a->roles, "clinician or auditor (repeatable)");
  create->add_option("--care-team", a->care_team, "true or false");
  create->add_option("--on-call", a->on_call, "true or false");
  create->callback([&g, &run, a] {
    run = [&g, a] {
      v1::CreateClinicianRequest r;
      r.set_parent(a->parent);
      r.set_clinician_id(a->id);
      v1::Clinician* c = r.mutable_clinician();
      c->set_display_name(a->display_name);
      c->set_issuer(a->issuer);
      c->set_subject(a->subject);
      for (const std::string& s : a->roles) {
        auto role = RoleFrom(s);
        if (!role.ok()) return ReportError(role.status());
        c->add_roles(*role);
      }
      c->set_care_team(a->care_team);
      c->set_on_call(a->on_call);
      return Run(g, [&](client::IdentityClient& cl) {
        return cl.CreateClinician(r, g.Call());
      });
    };
  });

  auto* get = clinician->add_subcommand("get", "get a clinician");
  get->add_option("name", a->name, "tenants/{t}/clinicians/{c}")->required();
  get->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::GetClinicianRequest r;
        r.set_name(a->name);
        return c.GetClinician(r, g.Call());
      });
    };
  });

  auto* list = clinician->add_subcommand("list", "list a tenant's clinicians");
  list->add_option("parent", a->parent, "tenants/{t}")->required();
  list->add_flag("--care-team-only", a->care_team_only);
  list->add_flag("--on-call-only", a->on_call_only);
  list->add_option("--page-size", a->page_size);
  list->add_option("--page-token", a->page_token);
  list->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::ListCliniciansRequest r;
        r.set_parent(a->parent);
        r.set_care_team_only(a->care_team_only);
        r.set_on_call_only(a->on_call_only);
        r.set_page_size(a->page_size);
        r.set_page_token(a->page_token);
        return c.ListClinicians(r, g.Call());
      });
    };
  });

  auto* update = clinician->add_subcommand("update", "update a clinician");
  update->add_option("name", a->name, "tenants/{t}/clinicians/{c}")->required();
  update->add_option("--display-name", a->display_name);
  update->add_option("--role", a->roles, "replaces the roles (repeatable)");
  update->add_option("--care-team", a->care_team, "true or false");
  update->add_option("--on-call", a->on_call, "true or false");
  update->add_option("--state", a->state, "active or disabled");
  update->callback([&g, &run, a, update] {
    const bool dn = Given(update, "--display-name");
    const bool ro = Given(update, "--role");
    const bool ct = Given(update, "--care-team");
    const bool oc = Given(update, "--on-call");
    const bool st = Given(update, "--state");
    run = [&g, a, dn, ro, ct, oc, st] {
      v1::UpdateClinicianRequest r;
      v1::Clinician* c = r.mutable_clinician();
      c->set_name(a->name);
      auto* mask = r.mutable_update_mask();
      if (dn) {
        c->set_display_name(a->display_name);
        mask->add_paths("display_name");
      }
      if (ro) {
        for (const std::string& s : a->roles) {
          auto role = RoleFrom(s);
          if (!role.ok()) return ReportError(role.status());
          c->add_roles(*role);
        }
        mask->add_paths("roles");
      }
      if (ct) {
        c->set_care_team(a->care_team);
        mask->add_paths("care_team");
      }
      if (oc) {
        c->set_on_call(a->on_call);
        mask->add_paths("on_call");
      }
      if (st) {
        auto state = PrincipalStateFrom(a->state);
        if (!state.ok()) return ReportError(state.status());
        c->set_state(*state);
        mask->add_paths("state");
      }
      return Run(g, [&](client::IdentityClient& cl) {
        return cl.UpdateClinician(r, g.Call());
      });
    };
  });
}

void AddPatientCommands(CLI::App& admin, Globals& g, Action& run) {
  auto* patient = admin.add_subcommand(
      "patient", "patients (as the clinic's EHR; --dob is never printed)");
  patient->require_subcommand(1);

  struct Args {
    std::string parent, name, external_id, display_name, dob, state, page_token;
    int page_size = 0;
  };
  auto a = std::make_shared<Args>();

  auto* create = patient->add_subcommand("create", "register a patient");
  create->add_option("parent", a->parent, "tenants/{t}")->required();
  create->add_option("--external-id", a->external_id, "the EHR's reference")
      ->required();
  create->add_option("--display-name", a->display_name);
  create->add_option("--dob", a->dob, "date of birth YYYY-MM-DD")->required();
  create->callback([&g, &run, a] {
    run = [&g, a] {
      auto dob = ParseDate(a->dob);
      if (!dob.ok()) return ReportError(dob.status());
      v1::CreatePatientRequest r;
      r.set_parent(a->parent);
      r.mutable_patient()->set_external_id(a->external_id);
      r.mutable_patient()->set_display_name(a->display_name);
      *r.mutable_patient()->mutable_date_of_birth() = *dob;
      return Run(g, [&](client::IdentityClient& c) {
        return c.CreatePatient(r, g.Call());
      });
    };
  });

  auto* get = patient->add_subcommand("get", "get a patient");
  get->add_option("name", a->name, "tenants/{t}/patients/{p}")->required();
  get->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::GetPatientRequest r;
        r.set_name(a->name);
        return c.GetPatient(r, g.Call());
      });
    };
  });

  auto* list = patient->add_subcommand("list", "list a tenant's patients");
  list->add_option("parent", a->parent, "tenants/{t}")->required();
  list->add_option("--external-id", a->external_id, "exact match");
  list->add_option("--page-size", a->page_size);
  list->add_option("--page-token", a->page_token);
  list->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::ListPatientsRequest r;
        r.set_parent(a->parent);
        r.set_external_id(a->external_id);
        r.set_page_size(a->page_size);
        r.set_page_token(a->page_token);
        return c.ListPatients(r, g.Call());
      });
    };
  });

  auto* update = patient->add_subcommand("update", "update a patient");
  update->add_option("name", a->name, "tenants/{t}/patients/{p}")->required();
  update->add_option("--external-id", a->external_id);
  update->add_option("--display-name", a->display_name);
  update->add_option("--dob", a->dob, "YYYY-MM-DD");
  update->add_option("--state", a->state, "active or disabled");
  update->callback([&g, &run, a, update] {
    const bool ex = Given(update, "--external-id");
    const bool dn = Given(update, "--display-name");
    const bool db = Given(update, "--dob");
    const bool st = Given(update, "--state");
    run = [&g, a, ex, dn, db, st] {
      v1::UpdatePatientRequest r;
      v1::Patient* p = r.mutable_patient();
      p->set_name(a->name);
      auto* mask = r.mutable_update_mask();
      if (ex) {
        p->set_external_id(a->external_id);
        mask->add_paths("external_id");
      }
      if (dn) {
        p->set_display_name(a->display_name);
        mask->add_paths("display_name");
      }
      if (db) {
        auto dob = ParseDate(a->dob);
        if (!dob.ok()) return ReportError(dob.status());
        *p->mutable_date_of_birth() = *dob;
        mask->add_paths("date_of_birth");
      }
      if (st) {
        auto state = PrincipalStateFrom(a->state);
        if (!state.ok()) return ReportError(state.status());
        p->set_state(*state);
        mask->add_paths("state");
      }
      return Run(g, [&](client::IdentityClient& c) {
        return c.UpdatePatient(r, g.Call());
      });
    };
  });
}

void AddLinkCommands(CLI::App& admin, Globals& g, Action& run) {
  auto* link = admin.add_subcommand(
      "link", "one-time portal links (the token and codes print once)");
  link->require_subcommand(1);

  struct Args {
    std::string patient, name, target, factor = "dob", token, dob, code,
                                       client_address, session;
  };
  auto a = std::make_shared<Args>();

  auto* create = link->add_subcommand("create", "create a link for a patient");
  create->add_option("patient", a->patient, "tenants/{t}/patients/{p}")
      ->required();
  create->add_option("--factor", a->factor, "dob or code")
      ->capture_default_str();
  create->add_option("--target", a->target, "the task the link opens");
  create->callback([&g, &run, a] {
    run = [&g, a] {
      if (a->factor != "dob" && a->factor != "code") {
        return ReportError(
            absl::InvalidArgumentError("--factor is dob or code"));
      }
      v1::CreatePatientLinkRequest r;
      r.set_parent(a->patient);
      r.set_target(a->target);
      r.set_factor(a->factor == "dob" ? v1::LINK_FACTOR_DATE_OF_BIRTH
                                      : v1::LINK_FACTOR_ONE_TIME_CODE);
      return Run(g, [&](client::IdentityClient& c) {
        return c.CreatePatientLink(r, g.Call());
      });
    };
  });

  auto* code = link->add_subcommand(
      "code", "issue a one-time code (valid 10 minutes) for a code link");
  code->add_option("name", a->name, "tenants/{t}/patients/{p}/links/{l}")
      ->required();
  code->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::IssueLinkCodeRequest r;
        r.set_name(a->name);
        return c.IssueLinkCode(r, g.Call());
      });
    };
  });

  auto* revoke = link->add_subcommand("revoke", "revoke an unused link");
  revoke->add_option("name", a->name, "tenants/{t}/patients/{p}/links/{l}")
      ->required();
  revoke->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::RevokePatientLinkRequest r;
        r.set_name(a->name);
        return c.RevokePatientLink(r, g.Call());
      });
    };
  });

  auto* redeem = link->add_subcommand(
      "redeem", "redeem a link with its second factor (as the portal)");
  redeem->add_option("--token", a->token, "the link token")->required();
  redeem->add_option("--dob", a->dob, "date of birth YYYY-MM-DD");
  redeem->add_option("--code", a->code, "one-time code");
  redeem->add_option("--client-address", a->client_address);
  redeem->callback([&g, &run, a] {
    run = [&g, a] {
      v1::RedeemLinkRequest r;
      r.set_link_token(a->token);
      r.set_client_address(a->client_address);
      if (!a->dob.empty()) {
        auto dob = ParseDate(a->dob);
        if (!dob.ok()) return ReportError(dob.status());
        *r.mutable_date_of_birth() = *dob;
      } else if (!a->code.empty()) {
        r.set_one_time_code(a->code);
      } else {
        return ReportError(absl::InvalidArgumentError("give --dob or --code"));
      }
      return Run(g, [&](client::IdentityClient& c) {
        return c.RedeemLink(r, g.Call());
      });
    };
  });

  auto* end = link->add_subcommand("end-session", "end a portal session");
  end->add_option("session", a->session,
                  "tenants/{t}/patients/{p}/portalSessions/{s}")
      ->required();
  end->callback([&g, &run, a] {
    run = [&g, a] {
      return Run(g, [&](client::IdentityClient& c) {
        v1::EndPatientSessionRequest r;
        r.set_name(a->session);
        return c.EndPatientSession(r, g.Call());
      });
    };
  });
}

void AddBreakGlassCommands(CLI::App& app, Globals& g, Action& run) {
  auto* bg = app.add_subcommand(
      "break-glass",
      "emergency access to one patient: a time-boxed grant with a reason, "
      "then `careseal --break-glass GRANT ...`; every use is audited and "
      "flagged for review");
  bg->require_subcommand(1);

  struct Args {
    std::string clinician, patient, reason, name, parent;
    int minutes = 0;
    int page_size = 0;
    std::string page_token;
  };
  auto a = std::make_shared<Args>();

  auto* start = bg->add_subcommand(
      "start",
      "start a grant for yourself (prints the grant; its name goes "
      "to --break-glass)");
  start
      ->add_option("clinician", a->clinician, "you: tenants/{t}/clinicians/{c}")
      ->required();
  start->add_option("--patient", a->patient, "tenants/{t}/patients/{p}")
      ->required();
  start
      ->add_option("--reason", a->reason,
                   "why (10..1000 characters; sealed at rest, shown to "
                   "reviewers)")
      ->required();
  start->add_option("--minutes", a->minutes,
                    "how long the grant lasts, 5..240 (default 60)");
  start->callback([&g, &run, a] {
    run = [&g, a] {
      v1::StartBreakGlassRequest r;
      r.set_parent(a->clinician);
      r.set_patient(a->patient);
      r.set_reason(a->reason);
      // Out-of-range values go to the server, which names the field.
      if (a->minutes != 0) {
        r.mutable_duration()->set_seconds(int64_t{a->minutes} * 60);
      }
      return Run(g, [&](client::IdentityClient& c) {
        return c.StartBreakGlass(r, g.Call());
      });
    };
  });

  auto* end = bg->add_subcommand("end", "end a grant before it expires");
  end->add_option("name", a->name,
                  "tenants/{t}/clinicians/{c}/breakGlassGrants/{g}")
      ->required();
  end->callback([&g, &run, a] {
    run = [&g, a] {
      v1::EndBreakGlassRequest r;
      r.set_name(a->name);
      return Run(g, [&](client::IdentityClient& c) {
        return c.EndBreakGlass(r, g.Call());
      });
    };
  });

  auto* list = bg->add_subcommand("list", "list grants, newest first");
  list->add_option("parent", a->parent,
                   "tenants/{t}/clinicians/{c}, or tenants/{t}/clinicians/- "
                   "(auditor, admin)")
      ->required();
  list->add_option("--patient", a->patient, "only this patient's grants");
  list->add_option("--page-size", a->page_size);
  list->add_option("--page-token", a->page_token);
  list->callback([&g, &run, a] {
    run = [&g, a] {
      v1::ListBreakGlassGrantsRequest r;
      r.set_parent(a->parent);
      r.set_patient(a->patient);
      r.set_page_size(a->page_size);
      r.set_page_token(a->page_token);
      return Run(g, [&](client::IdentityClient& c) {
        return c.ListBreakGlassGrants(r, g.Call());
      });
    };
  });
}

}  // namespace

void AddIdentityCommands(CLI::App& app, Globals& globals, Action& run) {
  AddBreakGlassCommands(app, globals, run);
  auto* admin = app.add_subcommand(
      "admin", "tenants, token issuers, clinicians and patients");
  admin->require_subcommand(1);
  AddTenantCommands(*admin, globals, run);
  AddIssuerCommands(*admin, globals, run);
  AddClinicianCommands(*admin, globals, run);
  AddPatientCommands(*admin, globals, run);
  AddLinkCommands(*admin, globals, run);
}

}  // namespace careseal::cli
