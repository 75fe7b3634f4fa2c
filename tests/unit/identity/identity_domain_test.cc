// The identity domain without gRPC: tenants (ids, time zones, idempotent
// create, update masks, paging) and token issuers (JWKS checks, which peers
// may present an issuer's tokens, revocation), each write audited.
#include <future>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/common/clock.h"
#include "services/common/crypto/ed25519.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/random.h"
#include "services/common/sql/sqlite_database.h"
#include "services/common/status.h"
#include "services/identity/identity_manager.h"
#include "tests/testing/temp_dir.h"

namespace careseal::identity {
namespace {

using Json = nlohmann::json;

constexpr char kEhrA[] = "spiffe://careseal.local/tenant/clinic-a/ehr/epic";
constexpr char kEhrB[] = "spiffe://careseal.local/tenant/clinic-b/ehr/epic";
constexpr char kPortal[] = "spiffe://careseal.local/portal";

UpdateTenantInput ForTenant(std::string id) {
  UpdateTenantInput in;
  in.tenant_id = std::move(id);
  return in;
}

class IdentityDomainTest : public ::testing::Test {
 protected:
  IdentityDomainTest() {
    db_ = *sql::SqliteDatabase::Open({.path = dir_.File("db")});
    EXPECT_TRUE(IdentityManager::Migrate(*db_).ok());
    manager_ = std::make_unique<IdentityManager>(
        IdentityDeps{db_.get(), &clock_, &random_});
  }

  CallContext Call(std::string method) {
    CallContext call;
    call.principal.role = Role::kAdmin;
    call.principal.actor = "spiffe://careseal.local/admin";
    call.method = "careseal.v1.IdentityService/" + method;
    call.request_id = crypto::NewUuid(random_);
    call.request_fingerprint = "fp-" + call.request_id;
    call.now = clock_.Now();
    return call;
  }

  template <typename T, typename Fn>
  absl::StatusOr<T> Wait(Fn fn) {
    std::promise<absl::StatusOr<T>> p;
    fn([&](absl::StatusOr<T> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  absl::StatusOr<Tenant> CreateTenant(CallContext& call, std::string id,
                                      std::string tz = "America/Chicago") {
    return Wait<Tenant>([&](Done<Tenant> done) {
      manager_->CreateTenant(call, {id, "Clinic " + id, tz}, std::move(done));
    });
  }

  absl::StatusOr<Issuer> Register(CallContext& call, RegisterIssuerInput in) {
    return Wait<Issuer>([&](Done<Issuer> done) {
      manager_->RegisterIssuer(call, std::move(in), std::move(done));
    });
  }

  static Json EdKey(const std::string& kid) {
    auto signer = crypto::OpenSslEd25519Signer::Generate().value();
    return {{"kty", "OKP"},
            {"crv", "Ed25519"},
            {"kid", kid},
            {"x", crypto::Base64UrlEncode(signer->public_key_raw())}};
  }

  RegisterIssuerInput EhrIssuer(std::string tenant) {
    RegisterIssuerInput in;
    in.tenant = std::move(tenant);
    in.issuer_id = "epic";
    in.display_name = "Epic";
    in.issuer_uri = "https://ehr.clinic.example";
    in.kind = static_cast<int>(IssuerKind::kEhr);
    in.peer_identities = {kEhrA};
    in.jwks_json =
        Json{{"keys", Json::array({EdKey("k2"), EdKey("k1")})}}.dump();
    return in;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  crypto::FakeRandom random_{7};
  std::unique_ptr<sql::Database> db_;
  std::unique_ptr<IdentityManager> manager_;
};

TEST_F(IdentityDomainTest, TenantsAreCreatedOnceAndChecked) {
  CallContext create = Call("CreateTenant");
  absl::StatusOr<Tenant> t = CreateTenant(create, "clinic-a");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->Name(), "tenants/clinic-a");
  EXPECT_EQ(t->state, TenantState::kActive);
  EXPECT_EQ(t->create_time, clock_.Now());
  EXPECT_TRUE(create.audited);
  EXPECT_GE(create.audit_leaf_index, 0);

  // The same request id again answers the first result, no second tenant.
  clock_.Advance(absl::Seconds(5));
  create.now = clock_.Now();
  absl::StatusOr<Tenant> again = CreateTenant(create, "clinic-a");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->create_time, t->create_time);

  CallContext dup = Call("CreateTenant");
  EXPECT_EQ(ErrorReason(CreateTenant(dup, "clinic-a").status()),
            "TENANT_ID_TAKEN");
  for (const char* bad :
       {"", "ab", "1clinic", "Clinic", "clinic_a", "clinic/a"}) {
    CallContext c = Call("CreateTenant");
    EXPECT_EQ(ErrorReason(CreateTenant(c, bad).status()), "INVALID_ID") << bad;
  }
  for (const char* bad : {"", "Mars/Olympus", "America/Chicago\n"}) {
    CallContext c = Call("CreateTenant");
    absl::Status s = CreateTenant(c, "clinic-z", bad).status();
    EXPECT_EQ(ErrorReason(s), "INVALID_TIME_ZONE") << bad;
    EXPECT_EQ(ErrorField(s), "tenant.time_zone");
  }
  CallContext get = Call("GetTenant");
  EXPECT_EQ(manager_->GetTenant(get, "clinic-z").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->GetTenant(get, "clinic-a")->time_zone, "America/Chicago");
}

TEST_F(IdentityDomainTest, TenantUpdatesFollowTheMask) {
  CallContext create = Call("CreateTenant");
  ASSERT_TRUE(CreateTenant(create, "clinic-a").ok());
  auto update = [&](UpdateTenantInput in) {
    CallContext c = Call("UpdateTenant");
    return Wait<Tenant>([&](Done<Tenant> done) {
      manager_->UpdateTenant(c, std::move(in), std::move(done));
    });
  };
  EXPECT_EQ(ErrorReason(update(ForTenant("clinic-a")).status()),
            "INVALID_UPDATE_MASK");
  UpdateTenantInput tz = ForTenant("clinic-a");
  tz.time_zone = "Europe/Berlin";
  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<Tenant> t = update(tz);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->time_zone, "Europe/Berlin");
  EXPECT_EQ(t->display_name, "Clinic clinic-a");  // not in the mask: kept
  EXPECT_EQ(t->update_time, clock_.Now());
  UpdateTenantInput suspend = ForTenant("clinic-a");
  suspend.state = static_cast<int>(TenantState::kSuspended);
  EXPECT_EQ(update(suspend)->state, TenantState::kSuspended);
  UpdateTenantInput bad_state = ForTenant("clinic-a");
  bad_state.state = 0;
  EXPECT_EQ(ErrorReason(update(bad_state).status()), "INVALID_STATE");
  UpdateTenantInput absent = ForTenant("clinic-q");
  absent.display_name = "Q";
  EXPECT_EQ(update(absent).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(IdentityDomainTest, TenantsArePagedById) {
  for (const char* id : {"clinic-c", "clinic-a", "clinic-b"}) {
    CallContext c = Call("CreateTenant");
    ASSERT_TRUE(CreateTenant(c, id).ok());
  }
  CallContext list = Call("ListTenants");
  auto first = manager_->ListTenants(list, 2, "");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->items.size(), 2u);
  EXPECT_EQ(first->items[0].id, "clinic-a");
  EXPECT_EQ(first->items[1].id, "clinic-b");
  ASSERT_FALSE(first->next_page_token.empty());
  auto second = manager_->ListTenants(list, 2, first->next_page_token);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->items.size(), 1u);
  EXPECT_EQ(second->items[0].id, "clinic-c");
  EXPECT_TRUE(second->next_page_token.empty());
  EXPECT_EQ(ErrorReason(manager_->ListTenants(list, 2, "garbage").status()),
            "INVALID_PAGE_TOKEN");
}

TEST_F(IdentityDomainTest, IssuersAreRegisteredWithPublicKeysAndTheirPeers) {
  CallContext create = Call("CreateTenant");
  ASSERT_TRUE(CreateTenant(create, "clinic-a").ok());

  CallContext reg = Call("RegisterIssuer");
  absl::StatusOr<Issuer> i = Register(reg, EhrIssuer("clinic-a"));
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->Name(), "tenants/clinic-a/issuers/epic");
  EXPECT_EQ(i->key_ids, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(i->state, IssuerState::kActive);
  EXPECT_TRUE(reg.audited);
  CallContext get = Call("GetIssuer");
  absl::StatusOr<Issuer> stored = manager_->GetIssuer(get, "clinic-a", "epic");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->peer_identities, std::vector<std::string>{kEhrA});
  EXPECT_EQ(stored->jwks_json, i->jwks_json);
  EXPECT_EQ(manager_->GetIssuer(get, "clinic-b", "epic").status().code(),
            absl::StatusCode::kNotFound);

  // Same id, or same issuer_uri under another id: taken.
  CallContext dup = Call("RegisterIssuer");
  EXPECT_EQ(ErrorReason(Register(dup, EhrIssuer("clinic-a")).status()),
            "ISSUER_ALREADY_REGISTERED");
  RegisterIssuerInput same_uri = EhrIssuer("clinic-a");
  same_uri.issuer_id = "epic-two";
  CallContext dup2 = Call("RegisterIssuer");
  EXPECT_EQ(ErrorReason(Register(dup2, same_uri).status()),
            "ISSUER_ALREADY_REGISTERED");
  // An absent tenant is NOT_FOUND.
  RegisterIssuerInput absent = EhrIssuer("clinic-q");
  absent.peer_identities = {"spiffe://careseal.local/tenant/clinic-q/ehr/epic"};
  CallContext none = Call("RegisterIssuer");
  EXPECT_EQ(Register(none, absent).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(IdentityDomainTest, IssuerInputIsChecked) {
  struct Case {
    const char* what;
    std::function<void(RegisterIssuerInput&)> change;
    const char* reason;
    const char* field;
  };
  Json private_key = EdKey("kp");
  private_key["d"] = crypto::Base64UrlEncode(std::string(32, 'd'));
  std::vector<Json> eleven;
  for (int k = 0; k < 11; ++k) eleven.push_back(EdKey("k" + std::to_string(k)));
  const std::vector<Case> cases = {
      {"bad id", [](auto& in) { in.issuer_id = "E"; }, "INVALID_ID",
       "issuer_id"},
      {"no kind", [](auto& in) { in.kind = 0; }, "INVALID_ISSUER_KIND",
       "issuer.kind"},
      {"no uri", [](auto& in) { in.issuer_uri = ""; }, "INVALID_ISSUER_URI",
       "issuer.issuer_uri"},
      {"no peers", [](auto& in) { in.peer_identities.clear(); },
       "INVALID_PEER_IDENTITY", "issuer.peer_identities"},
      {"other tenant's EHR", [](auto& in) { in.peer_identities = {kEhrB}; },
       "INVALID_PEER_IDENTITY", "issuer.peer_identities"},
      {"portal for an EHR issuer",
       [](auto& in) { in.peer_identities = {kPortal}; },
       "INVALID_PEER_IDENTITY", "issuer.peer_identities"},
      {"EHR for a portal issuer",
       [](auto& in) { in.kind = static_cast<int>(IssuerKind::kPortal); },
       "INVALID_PEER_IDENTITY", "issuer.peer_identities"},
      {"not a SPIFFE id", [](auto& in) { in.peer_identities = {"https://x"}; },
       "INVALID_PEER_IDENTITY", "issuer.peer_identities"},
      {"not JSON", [](auto& in) { in.jwks_json = "{"; }, "INVALID_JWKS",
       "issuer.jwks_json"},
      {"private key",
       [&](auto& in) {
         in.jwks_json = Json{{"keys", Json::array({private_key})}}.dump();
       },
       "PRIVATE_KEY_IN_JWKS", "issuer.jwks_json"},
      {"eleven keys",
       [&](auto& in) {
         in.jwks_json = Json{{"keys", eleven}}.dump();
       },
       "INVALID_JWKS", "issuer.jwks_json"},
  };
  for (const Case& c : cases) {
    RegisterIssuerInput in = EhrIssuer("clinic-a");
    c.change(in);
    absl::Status s = IdentityManager::ValidateIssuer(in).status();
    EXPECT_EQ(ErrorReason(s), c.reason) << c.what;
    EXPECT_EQ(ErrorField(s), c.field) << c.what;
  }
  RegisterIssuerInput portal = EhrIssuer("clinic-a");
  portal.kind = static_cast<int>(IssuerKind::kPortal);
  portal.peer_identities = {kPortal};
  EXPECT_TRUE(IdentityManager::ValidateIssuer(portal).ok());
}

TEST_F(IdentityDomainTest, RevokedIssuersStayRevoked) {
  CallContext create = Call("CreateTenant");
  ASSERT_TRUE(CreateTenant(create, "clinic-a").ok());
  CallContext reg = Call("RegisterIssuer");
  ASSERT_TRUE(Register(reg, EhrIssuer("clinic-a")).ok());
  auto revoke = [&](CallContext& c, std::string tenant) {
    return Wait<Issuer>([&](Done<Issuer> done) {
      manager_->RevokeIssuer(c, tenant, "epic", std::move(done));
    });
  };
  CallContext other = Call("RevokeIssuer");
  EXPECT_EQ(revoke(other, "clinic-b").status().code(),
            absl::StatusCode::kNotFound);
  clock_.Advance(absl::Hours(1));
  CallContext first = Call("RevokeIssuer");
  absl::StatusOr<Issuer> r = revoke(first, "clinic-a");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state, IssuerState::kRevoked);
  ASSERT_TRUE(r->revoke_time.has_value());
  EXPECT_EQ(*r->revoke_time, clock_.Now());
  // A retry of the same request answers the same; a new one is refused.
  EXPECT_EQ(revoke(first, "clinic-a")->state, IssuerState::kRevoked);
  CallContext second = Call("RevokeIssuer");
  EXPECT_EQ(ErrorReason(revoke(second, "clinic-a").status()), "ISSUER_REVOKED");
  CallContext list = Call("ListIssuers");
  auto page = manager_->ListIssuers(list, "clinic-a", 10, "");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].state, IssuerState::kRevoked);
  EXPECT_EQ(manager_->ListIssuers(list, "clinic-q", 10, "").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(IdentityDomainTest, CliniciansAreNamedByTheirEhrIssuerAndSubject) {
  CallContext create = Call("CreateTenant");
  ASSERT_TRUE(CreateTenant(create, "clinic-a").ok());
  CallContext reg = Call("RegisterIssuer");
  ASSERT_TRUE(Register(reg, EhrIssuer("clinic-a")).ok());
  RegisterIssuerInput portal = EhrIssuer("clinic-a");
  portal.issuer_id = "portal";
  portal.issuer_uri = "https://portal.example";
  portal.kind = static_cast<int>(IssuerKind::kPortal);
  portal.peer_identities = {kPortal};
  CallContext reg2 = Call("RegisterIssuer");
  ASSERT_TRUE(Register(reg2, portal).ok());

  auto create_clinician = [&](CallContext& c, CreateClinicianInput in) {
    return Wait<Clinician>([&](Done<Clinician> done) {
      manager_->CreateClinician(c, std::move(in), std::move(done));
    });
  };
  auto input = [](std::string id, std::string subject) {
    CreateClinicianInput in;
    in.tenant = "clinic-a";
    in.clinician_id = std::move(id);
    in.display_name = "Dr. A";
    in.issuer_id = "epic";
    in.subject = std::move(subject);
    return in;
  };
  CallContext c1 = Call("CreateClinician");
  CreateClinicianInput first = input("dr-a", "emp-1");
  first.care_team = true;
  absl::StatusOr<Clinician> a = create_clinician(c1, first);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->Name(), "tenants/clinic-a/clinicians/dr-a");
  EXPECT_EQ(a->roles, std::vector<int>{kRoleClinician});  // the default
  EXPECT_TRUE(c1.audited);

  CallContext c2 = Call("CreateClinician");
  EXPECT_EQ(ErrorReason(create_clinician(c2, input("dr-a", "emp-2")).status()),
            "CLINICIAN_ID_TAKEN");
  CallContext c3 = Call("CreateClinician");
  EXPECT_EQ(ErrorReason(create_clinician(c3, input("dr-b", "emp-1")).status()),
            "SUBJECT_TAKEN");
  CreateClinicianInput bad_role = input("dr-c", "emp-3");
  bad_role.roles = {kRoleClinician, 5 /* admin */};
  CallContext c4 = Call("CreateClinician");
  EXPECT_EQ(ErrorReason(create_clinician(c4, bad_role).status()),
            "INVALID_ROLE");
  // Only an EHR issuer of the tenant names clinicians.
  CreateClinicianInput via_portal = input("dr-d", "emp-4");
  via_portal.issuer_id = "portal";
  CallContext c5 = Call("CreateClinician");
  EXPECT_EQ(create_clinician(c5, via_portal).status().code(),
            absl::StatusCode::kNotFound);

  CreateClinicianInput auditor = input("aud-e", "emp-5");
  auditor.roles = {kRoleAuditor, kRoleClinician, kRoleAuditor};
  auditor.on_call = true;
  CallContext c6 = Call("CreateClinician");
  absl::StatusOr<Clinician> e = create_clinician(c6, auditor);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->roles, (std::vector<int>{kRoleClinician, kRoleAuditor}));

  CallContext list = Call("ListClinicians");
  auto all = manager_->ListClinicians(list, "clinic-a", false, false, 10, "");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->items.size(), 2u);
  auto care = manager_->ListClinicians(list, "clinic-a", true, false, 10, "");
  ASSERT_EQ(care->items.size(), 1u);
  EXPECT_EQ(care->items[0].id, "dr-a");
  auto on_call =
      manager_->ListClinicians(list, "clinic-a", false, true, 10, "");
  ASSERT_EQ(on_call->items.size(), 1u);
  EXPECT_EQ(on_call->items[0].id, "aud-e");
  // A page token of one filter is refused for another.
  auto paged = manager_->ListClinicians(list, "clinic-a", false, false, 1, "");
  ASSERT_FALSE(paged->next_page_token.empty());
  EXPECT_EQ(ErrorReason(manager_
                            ->ListClinicians(list, "clinic-a", true, false, 1,
                                             paged->next_page_token)
                            .status()),
            "INVALID_PAGE_TOKEN");
  CallContext get = Call("GetClinician");
  EXPECT_EQ(manager_->GetClinician(get, "clinic-b", "dr-a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->GetClinician(get, "clinic-a", "dr-a")->subject, "emp-1");

  // After the issuer is revoked, no new clinician can be named by it.
  CallContext revoke = Call("RevokeIssuer");
  ASSERT_TRUE(Wait<Issuer>([&](Done<Issuer> done) {
                manager_->RevokeIssuer(revoke, "clinic-a", "epic",
                                       std::move(done));
              }).ok());
  CallContext c7 = Call("CreateClinician");
  EXPECT_EQ(create_clinician(c7, input("dr-f", "emp-6")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace careseal::identity
