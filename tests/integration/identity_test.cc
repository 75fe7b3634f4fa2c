// The identity service end to end, through the public C++ client over mutual
// TLS: tenants, token issuers (register, rotate keys, revoke), clinicians
// (care-team and on-call flags, roles, disable), patients (PII sealed, the
// date of birth only as a keyed hash and never returned), tenant isolation,
// and end-user tokens: real JWTs minted in the test (ES256 with cjose, EdDSA
// with OpenSSL through authn::JwtSigner) checked by the server's token
// authenticator on every service's RPCs, on the FakeClock.
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "clients/cpp/identity_client.h"
#include "clients/cpp/messaging_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/common/authn/jwt.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kAdmin;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kEhrB;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using client::CallOptions;
using client::ErrorField;
using client::ErrorReason;
using client::IdentityClient;
namespace v1 = ::careseal::v1;
using Json = nlohmann::json;

constexpr char kEhrIss[] = "https://ehr.clinic-a.example";
constexpr char kPortalIss[] = "https://portal.careseal.example";
constexpr char kEhrA2[] = "spiffe://careseal.local/tenant/clinic-a/ehr/other";

std::string JwksOf(std::initializer_list<const authn::JwtSigner*> signers) {
  Json keys = Json::array();
  for (const auto* s : signers) {
    const Json one = Json::parse(s->PublicJwks());
    for (const Json& k : one.at("keys")) keys.push_back(k);
  }
  Json out = Json::object();
  out["keys"] = keys;
  return out.dump();
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    es_ = authn::JwtSigner::GenerateEs256("ehr-es-1").value();
    ed_ = authn::JwtSigner::GenerateEd25519("ehr-ed-1").value();
    portal_signer_ = authn::JwtSigner::GenerateEs256("portal-1").value();
    for (const char* t : {"clinic-a", "clinic-b"}) {
      v1::CreateTenantRequest r;
      r.set_tenant_id(t);
      r.mutable_tenant()->set_display_name(absl::StrCat("Clinic ", t));
      r.mutable_tenant()->set_time_zone("America/Chicago");
      ASSERT_TRUE(admin_.CreateTenant(r).ok());
    }
    v1::RegisterIssuerRequest reg;
    reg.set_parent("tenants/clinic-a");
    reg.set_issuer_id("epic");
    reg.mutable_issuer()->set_display_name("Epic");
    reg.mutable_issuer()->set_issuer_uri(kEhrIss);
    reg.mutable_issuer()->set_kind(v1::ISSUER_KIND_EHR);
    reg.mutable_issuer()->add_peer_identities(kEhrA);
    reg.mutable_issuer()->set_jwks_json(JwksOf({es_.get(), ed_.get()}));
    auto issuer = admin_.RegisterIssuer(reg);
    ASSERT_TRUE(issuer.ok()) << issuer.status();

    v1::RegisterIssuerRequest portal;
    portal.set_parent("tenants/clinic-a");
    portal.set_issuer_id("portal");
    portal.mutable_issuer()->set_issuer_uri(kPortalIss);
    portal.mutable_issuer()->set_kind(v1::ISSUER_KIND_PORTAL);
    portal.mutable_issuer()->add_peer_identities(kPortal);
    portal.mutable_issuer()->set_jwks_json(JwksOf({portal_signer_.get()}));
    ASSERT_TRUE(admin_.RegisterIssuer(portal).ok());

    ASSERT_TRUE(CreateClinician("dr-a", "u-100", {}, true, false).ok());
    ASSERT_TRUE(
        CreateClinician("aud-a", "u-200", {v1::ROLE_AUDITOR}, false, false)
            .ok());

    v1::CreatePatientRequest p;
    p.set_parent("tenants/clinic-a");
    p.mutable_patient()->set_external_id("MRN-4711-XQ");
    p.mutable_patient()->set_display_name("Pat Zebulon");
    *p.mutable_patient()->mutable_date_of_birth() = Dob(1984, 2, 29);
    auto created = ehr_a_.CreatePatient(p);
    ASSERT_TRUE(created.ok()) << created.status();
    patient_ = created->patient().name();
  }

  static v1::Date Dob(int y, int m, int d) {
    v1::Date out;
    out.set_year(y);
    out.set_month(m);
    out.set_day(d);
    return out;
  }

  absl::StatusOr<v1::CreateClinicianResponse> CreateClinician(
      const std::string& id, const std::string& subject,
      std::vector<v1::Role> roles, bool care_team, bool on_call) {
    v1::CreateClinicianRequest r;
    r.set_parent("tenants/clinic-a");
    r.set_clinician_id(id);
    r.mutable_clinician()->set_display_name(absl::StrCat("Dr ", id));
    r.mutable_clinician()->set_issuer("tenants/clinic-a/issuers/epic");
    r.mutable_clinician()->set_subject(subject);
    for (v1::Role role : roles) r.mutable_clinician()->add_roles(role);
    r.mutable_clinician()->set_care_team(care_team);
    r.mutable_clinician()->set_on_call(on_call);
    return admin_.CreateClinician(r);
  }

  // Claims of a valid token for `sub` from `iss`, issued now for 5 minutes.
  Json Claims(const std::string& iss, const std::string& sub) {
    const int64_t now = absl::ToUnixSeconds(server_.clock().Now());
    return Json{{"iss", iss},
                {"sub", sub},
                {"aud", "careseal"},
                {"iat", now},
                {"nbf", now},
                {"exp", now + 300},
                {"jti", absl::StrCat("jti-", ++jti_)}};
  }

  std::string Sign(const authn::JwtSigner& signer, const Json& claims) {
    return signer.Sign(claims).value();
  }

  static CallOptions As(const std::string& token) {
    CallOptions o;
    o.bearer_token = token;
    o.max_attempts = 1;
    return o;
  }

  // A call only a clinician, patient or break-glass may make (not the EHR
  // itself): proves which principal the token became.
  absl::Status UnreadCounts(const std::string& peer, const std::string& parent,
                            const std::string& token) {
    client::MessagingClient m(server_.ChannelFor(peer));
    v1::GetUnreadCountsRequest r;
    r.set_parent(parent);
    return m.GetUnreadCounts(r, As(token)).status();
  }

  TestServer server_;
  IdentityClient admin_{server_.ChannelFor(kAdmin)};
  IdentityClient ehr_a_{server_.ChannelFor(kEhrA)};
  IdentityClient ehr_b_{server_.ChannelFor(kEhrB)};
  std::unique_ptr<authn::JwtSigner> es_, ed_, portal_signer_;
  std::string patient_;
  int jti_ = 0;
};

// ------------------------------------------------------------ Admin records

TEST_F(IdentityTest, TenantsCreateGetListUpdate) {
  v1::GetTenantRequest get;
  get.set_name("tenants/clinic-a");
  auto t = ehr_a_.GetTenant(get);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->tenant().time_zone(), "America/Chicago");
  // Another tenant's EHR sees nothing, exactly like an absent tenant.
  auto foreign = ehr_b_.GetTenant(get);
  get.set_name("tenants/nowhere");
  auto absent = ehr_b_.GetTenant(get);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(foreign.status().message(), absent.status().message());

  auto list = admin_.ListTenants(v1::ListTenantsRequest());
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->tenants_size(), 2);

  v1::UpdateTenantRequest up;
  up.mutable_tenant()->set_name("tenants/clinic-a");
  up.mutable_tenant()->set_time_zone("Mars/Olympus");
  up.mutable_update_mask()->add_paths("time_zone");
  auto bad = admin_.UpdateTenant(up);
  EXPECT_EQ(ErrorReason(bad.status()), "INVALID_TIME_ZONE");
  up.mutable_tenant()->set_time_zone("America/Denver");
  up.mutable_update_mask()->add_paths("create_time");
  EXPECT_EQ(ErrorReason(admin_.UpdateTenant(up).status()),
            "INVALID_UPDATE_MASK");
  up.mutable_update_mask()->clear_paths();
  up.mutable_update_mask()->add_paths("time_zone");
  auto ok = admin_.UpdateTenant(up);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tenant().time_zone(), "America/Denver");

  v1::CreateTenantRequest dup;
  dup.set_tenant_id("clinic-a");
  dup.mutable_tenant()->set_display_name("Again");
  dup.mutable_tenant()->set_time_zone("UTC");
  EXPECT_EQ(ErrorReason(admin_.CreateTenant(dup).status()), "TENANT_ID_TAKEN");
}

TEST_F(IdentityTest, IssuersRegisterUpdateRevoke) {
  v1::GetIssuerRequest get;
  get.set_name("tenants/clinic-a/issuers/epic");
  auto i = admin_.GetIssuer(get);
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->issuer().key_ids_size(), 2);
  EXPECT_EQ(i->issuer().state(), v1::ISSUER_STATE_ACTIVE);

  // A JWKS with private key material is refused and nothing is stored.
  auto leaked = authn::JwtSigner::GenerateEs256("leak").value();
  Json jwks = Json::parse(leaked->PublicJwks());
  jwks["keys"][0]["d"] = "AAAA";
  v1::RegisterIssuerRequest reg;
  reg.set_parent("tenants/clinic-b");
  reg.set_issuer_id("leaky");
  reg.mutable_issuer()->set_issuer_uri("https://ehr.b.example");
  reg.mutable_issuer()->set_kind(v1::ISSUER_KIND_EHR);
  reg.mutable_issuer()->add_peer_identities(kEhrB);
  reg.mutable_issuer()->set_jwks_json(jwks.dump());
  auto refused = admin_.RegisterIssuer(reg);
  EXPECT_EQ(ErrorReason(refused.status()), "PRIVATE_KEY_IN_JWKS");
  EXPECT_EQ(ErrorField(refused.status()), "issuer.jwks_json");
  // An EHR issuer may only be presented by its own tenant's EHRs.
  reg.mutable_issuer()->set_jwks_json(leaked->PublicJwks());
  reg.mutable_issuer()->set_peer_identities(0, kEhrA);
  EXPECT_EQ(ErrorReason(admin_.RegisterIssuer(reg).status()),
            "INVALID_PEER_IDENTITY");
  v1::ListIssuersRequest list;
  list.set_parent("tenants/clinic-b");
  auto none = admin_.ListIssuers(list);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->issuers_size(), 0);

  // Key rotation: only the new key verifies afterwards.
  auto rotated = authn::JwtSigner::GenerateEs256("ehr-es-2").value();
  const std::string before = Sign(*es_, Claims(kEhrIss, "u-100"));
  v1::UpdateIssuerRequest up;
  up.mutable_issuer()->set_name("tenants/clinic-a/issuers/epic");
  up.mutable_issuer()->set_jwks_json(rotated->PublicJwks());
  up.mutable_update_mask()->add_paths("jwks_json");
  auto updated = admin_.UpdateIssuer(up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  ASSERT_EQ(updated->issuer().key_ids_size(), 1);
  EXPECT_EQ(updated->issuer().key_ids(0), "ehr-es-2");
  EXPECT_EQ(
      ErrorReason(UnreadCounts(kEhrA, "tenants/clinic-a/patients/-", before)),
      "TOKEN_INVALID");
  EXPECT_TRUE(UnreadCounts(kEhrA, "tenants/clinic-a/patients/-",
                           Sign(*rotated, Claims(kEhrIss, "u-100")))
                  .ok());

  v1::RevokeIssuerRequest revoke;
  revoke.set_name("tenants/clinic-a/issuers/epic");
  auto revoked = admin_.RevokeIssuer(revoke);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->issuer().state(), v1::ISSUER_STATE_REVOKED);
  EXPECT_TRUE(revoked->issuer().has_revoke_time());
  revoke.clear_request_id();
  EXPECT_EQ(ErrorReason(admin_.RevokeIssuer(revoke).status()),
            "ISSUER_REVOKED");
  up.clear_request_id();
  EXPECT_EQ(ErrorReason(admin_.UpdateIssuer(up).status()), "ISSUER_REVOKED");
}

TEST_F(IdentityTest, CliniciansFlagsRolesAndDisable) {
  ASSERT_TRUE(CreateClinician("dr-b", "u-101", {}, false, true).ok());
  EXPECT_EQ(
      ErrorReason(CreateClinician("dr-c", "u-101", {}, false, false).status()),
      "SUBJECT_TAKEN");
  EXPECT_EQ(ErrorReason(
                CreateClinician("dr-d", "u-102", {v1::ROLE_ADMIN}, false, false)
                    .status()),
            "INVALID_ROLE");

  v1::ListCliniciansRequest list;
  list.set_parent("tenants/clinic-a");
  auto all = ehr_a_.ListClinicians(list);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->clinicians_size(), 3);
  list.set_care_team_only(true);
  auto team = ehr_a_.ListClinicians(list);
  ASSERT_TRUE(team.ok());
  ASSERT_EQ(team->clinicians_size(), 1);
  EXPECT_EQ(team->clinicians(0).name(), "tenants/clinic-a/clinicians/dr-a");
  list.set_care_team_only(false);
  list.set_on_call_only(true);
  auto on_call = ehr_a_.ListClinicians(list);
  ASSERT_TRUE(on_call.ok());
  ASSERT_EQ(on_call->clinicians_size(), 1);
  EXPECT_EQ(on_call->clinicians(0).name(), "tenants/clinic-a/clinicians/dr-b");
  // Another tenant's EHR: like an absent tenant.
  EXPECT_EQ(ehr_b_.ListClinicians(list).status().code(),
            absl::StatusCode::kNotFound);

  v1::UpdateClinicianRequest up;
  up.mutable_clinician()->set_name("tenants/clinic-a/clinicians/dr-b");
  up.mutable_clinician()->set_on_call(false);
  up.mutable_clinician()->set_care_team(true);
  up.mutable_update_mask()->add_paths("on_call");
  up.mutable_update_mask()->add_paths("care_team");
  auto updated = admin_.UpdateClinician(up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_FALSE(updated->clinician().on_call());
  EXPECT_TRUE(updated->clinician().care_team());
  EXPECT_FALSE(ehr_a_.UpdateClinician(up).ok());  // admin only

  // A disabled clinician's tokens are refused.
  const std::string token = Sign(*es_, Claims(kEhrIss, "u-101"));
  v1::UpdateClinicianRequest disable;
  disable.mutable_clinician()->set_name("tenants/clinic-a/clinicians/dr-b");
  disable.mutable_clinician()->set_state(v1::PRINCIPAL_STATE_DISABLED);
  disable.mutable_update_mask()->add_paths("state");
  ASSERT_TRUE(admin_.UpdateClinician(disable).ok());
  absl::Status s = UnreadCounts(kEhrA, "tenants/clinic-a/patients/-", token);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorReason(s), "PRINCIPAL_DISABLED");
}

TEST_F(IdentityTest, PatientsSealedAndIsolated) {
  v1::GetPatientRequest get;
  get.set_name(patient_);
  auto p = ehr_a_.GetPatient(get);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->patient().external_id(), "MRN-4711-XQ");
  EXPECT_EQ(p->patient().display_name(), "Pat Zebulon");
  EXPECT_FALSE(p->patient().has_date_of_birth());

  // Tenant B's EHR: the same answer as a name that does not exist.
  auto foreign = ehr_b_.GetPatient(get);
  v1::GetPatientRequest absent;
  absent.set_name("tenants/clinic-b/patients/nothere");
  auto none = ehr_b_.GetPatient(absent);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(foreign.status().message(), none.status().message());
  EXPECT_EQ(ErrorReason(foreign.status()), ErrorReason(none.status()));

  v1::ListPatientsRequest list;
  list.set_parent("tenants/clinic-a");
  list.set_external_id("MRN-4711-XQ");
  auto found = ehr_a_.ListPatients(list);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->patients_size(), 1);
  EXPECT_EQ(found->patients(0).name(), patient_);
  list.set_external_id("MRN-0000");
  EXPECT_EQ(ehr_a_.ListPatients(list)->patients_size(), 0);

  v1::CreatePatientRequest dup;
  dup.set_parent("tenants/clinic-a");
  dup.mutable_patient()->set_external_id("MRN-4711-XQ");
  *dup.mutable_patient()->mutable_date_of_birth() = Dob(1990, 1, 1);
  EXPECT_EQ(ErrorReason(ehr_a_.CreatePatient(dup).status()),
            "EXTERNAL_ID_TAKEN");
  dup.clear_request_id();
  dup.mutable_patient()->set_external_id("MRN-1");
  *dup.mutable_patient()->mutable_date_of_birth() = Dob(1990, 2, 30);
  auto bad_date = ehr_a_.CreatePatient(dup);
  EXPECT_EQ(ErrorReason(bad_date.status()), "INVALID_DATE");
  EXPECT_EQ(ErrorField(bad_date.status()), "patient.date_of_birth");

  v1::UpdatePatientRequest up;
  up.mutable_patient()->set_name(patient_);
  up.mutable_patient()->set_display_name("Pat Q. Zebulon");
  up.mutable_update_mask()->add_paths("display_name");
  auto updated = ehr_a_.UpdatePatient(up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->patient().display_name(), "Pat Q. Zebulon");
  EXPECT_EQ(updated->patient().external_id(), "MRN-4711-XQ");

  // At rest: neither the external id, the name nor the date of birth appear
  // in the database file in clear.
  std::ifstream in(server_.dir() + "/careseal.db", std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string db = bytes.str();
  ASSERT_FALSE(db.empty());
  EXPECT_EQ(db.find("MRN-4711-XQ"), std::string::npos);
  EXPECT_EQ(db.find("Zebulon"), std::string::npos);
  EXPECT_EQ(db.find("1984-02-29"), std::string::npos);
}

// ------------------------------------------------------------------ Tokens

TEST_F(IdentityTest, ClinicianTokensBecomeClinicianPrincipals) {
  const std::string all = "tenants/clinic-a/patients/-";
  // The EHR acting for itself may not read the care team's unread counts.
  EXPECT_EQ(ErrorReason(UnreadCounts(kEhrA, all, "")), "ROLE_NOT_ALLOWED");
  // With its clinician's token (ES256 and EdDSA) it may.
  EXPECT_TRUE(
      UnreadCounts(kEhrA, all, Sign(*es_, Claims(kEhrIss, "u-100"))).ok());
  EXPECT_TRUE(
      UnreadCounts(kEhrA, all, Sign(*ed_, Claims(kEhrIss, "u-100"))).ok());
  // The role comes from the record: an auditor's token is an auditor.
  EXPECT_EQ(ErrorReason(
                UnreadCounts(kEhrA, all, Sign(*es_, Claims(kEhrIss, "u-200")))),
            "ROLE_NOT_ALLOWED");
  // A role claim changes nothing.
  Json claims = Claims(kEhrIss, "u-200");
  claims["role"] = "clinician";
  claims["roles"] = {"clinician", "admin"};
  EXPECT_EQ(ErrorReason(UnreadCounts(kEhrA, all, Sign(*es_, claims))),
            "ROLE_NOT_ALLOWED");
  // Unknown subject.
  absl::Status unknown =
      UnreadCounts(kEhrA, all, Sign(*es_, Claims(kEhrIss, "u-999")));
  EXPECT_EQ(unknown.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorReason(unknown), "PRINCIPAL_NOT_FOUND");
  // The clinician's tenant is the issuer's: tenant B is out of reach.
  EXPECT_EQ(UnreadCounts(kEhrA, "tenants/clinic-b/patients/-",
                         Sign(*es_, Claims(kEhrIss, "u-100")))
                .code(),
            absl::StatusCode::kNotFound);
}

struct TokenCase {
  const char* name;
  absl::StatusCode code;
  const char* reason;
};

TEST_F(IdentityTest, TokenFailuresHaveExactCodes) {
  const std::string all = "tenants/clinic-a/patients/-";
  const absl::Time now = server_.clock().Now();
  auto expect = [&](const char* what, absl::Status s, const char* reason) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated)
        << what << ": " << s;
    EXPECT_EQ(ErrorReason(s), reason) << what << ": " << s;
  };
  const int64_t t = absl::ToUnixSeconds(now);

  // Valid, once.
  const std::string valid = Sign(*es_, Claims(kEhrIss, "u-100"));
  ASSERT_TRUE(UnreadCounts(kEhrA, all, valid).ok());
  // Replayed jti.
  expect("replayed", UnreadCounts(kEhrA, all, valid), "TOKEN_REPLAYED");

  // Expired: exp passed (beyond the 30 s skew).
  Json c = Claims(kEhrIss, "u-100");
  c["iat"] = t - 400;
  c["nbf"] = t - 400;
  c["exp"] = t - 100;
  expect("expired", UnreadCounts(kEhrA, all, Sign(*es_, c)), "TOKEN_EXPIRED");
  // The same token minted for later expires on the fake clock.
  const std::string later = Sign(*ed_, Claims(kEhrIss, "u-100"));
  server_.clock().Advance(absl::Minutes(6));
  expect("expired after advance", UnreadCounts(kEhrA, all, later),
         "TOKEN_EXPIRED");
  server_.clock().Set(now);

  // Not yet valid.
  c = Claims(kEhrIss, "u-100");
  c["nbf"] = t + 120;
  expect("nbf", UnreadCounts(kEhrA, all, Sign(*es_, c)), "TOKEN_INVALID");
  c = Claims(kEhrIss, "u-100");
  c["iat"] = t + 120;
  c["nbf"] = t + 120;
  c["exp"] = t + 400;
  expect("iat", UnreadCounts(kEhrA, all, Sign(*es_, c)), "TOKEN_INVALID");

  // Lifetime over 15 minutes.
  c = Claims(kEhrIss, "u-100");
  c["exp"] = t + 15 * 60 + 1;
  expect("lifetime", UnreadCounts(kEhrA, all, Sign(*es_, c)), "TOKEN_INVALID");
  c["exp"] = t + 15 * 60;
  EXPECT_TRUE(UnreadCounts(kEhrA, all, Sign(*es_, c)).ok());

  // Wrong audience.
  c = Claims(kEhrIss, "u-100");
  c["aud"] = "someone-else";
  expect("aud", UnreadCounts(kEhrA, all, Sign(*es_, c)), "TOKEN_INVALID");

  // Forged signature: a key with the registered kid that is not the
  // registered key; and a valid token with its signature altered.
  auto forger = authn::JwtSigner::GenerateEs256("ehr-es-1").value();
  expect("forged",
         UnreadCounts(kEhrA, all, Sign(*forger, Claims(kEhrIss, "u-100"))),
         "TOKEN_INVALID");
  std::string tampered = Sign(*ed_, Claims(kEhrIss, "u-100"));
  tampered[tampered.size() - 5] =
      tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  expect("tampered", UnreadCounts(kEhrA, all, tampered), "TOKEN_INVALID");
  // Unknown kid.
  auto stranger = authn::JwtSigner::GenerateEd25519("nobody").value();
  expect("kid",
         UnreadCounts(kEhrA, all, Sign(*stranger, Claims(kEhrIss, "u-100"))),
         "TOKEN_INVALID");
  // Not a JWT at all.
  expect("garbage", UnreadCounts(kEhrA, all, "not-a-token"), "TOKEN_INVALID");

  // An issuer the peer may not speak for: another EHR of the same tenant
  // that the issuer does not list, the portal, an unregistered iss.
  expect("other peer",
         UnreadCounts(kEhrA2, all, Sign(*es_, Claims(kEhrIss, "u-100"))),
         "ISSUER_NOT_ALLOWED");
  expect("portal presents EHR token",
         UnreadCounts(kPortal, all, Sign(*es_, Claims(kEhrIss, "u-100"))),
         "ISSUER_NOT_ALLOWED");
  expect("tenant B's EHR",
         UnreadCounts(kEhrB, all, Sign(*es_, Claims(kEhrIss, "u-100"))),
         "ISSUER_NOT_ALLOWED");
  expect("unregistered iss",
         UnreadCounts(kEhrA, all,
                      Sign(*es_, Claims("https://evil.example", "u-100"))),
         "ISSUER_NOT_ALLOWED");

  // Revoked issuer.
  const std::string before_revoke = Sign(*es_, Claims(kEhrIss, "u-100"));
  v1::RevokeIssuerRequest revoke;
  revoke.set_name("tenants/clinic-a/issuers/epic");
  ASSERT_TRUE(admin_.RevokeIssuer(revoke).ok());
  expect("revoked", UnreadCounts(kEhrA, all, before_revoke),
         "ISSUER_NOT_ALLOWED");
}

TEST_F(IdentityTest, PatientTokensFromThePortalReachOnlyTheirOwnRecords) {
  // A second patient.
  v1::CreatePatientRequest q;
  q.set_parent("tenants/clinic-a");
  q.mutable_patient()->set_external_id("MRN-2");
  *q.mutable_patient()->mutable_date_of_birth() = Dob(1970, 7, 1);
  auto other = ehr_a_.CreatePatient(q);
  ASSERT_TRUE(other.ok()) << other.status();

  IdentityClient portal(server_.ChannelFor(kPortal));
  v1::GetPatientRequest get;
  get.set_name(patient_);
  auto own = portal.GetPatient(
      get, As(Sign(*portal_signer_, Claims(kPortalIss, patient_))));
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->patient().name(), patient_);
  // Another patient's record: not found, like an absent one.
  get.set_name(other->patient().name());
  auto theirs = portal.GetPatient(
      get, As(Sign(*portal_signer_, Claims(kPortalIss, patient_))));
  EXPECT_EQ(theirs.status().code(), absl::StatusCode::kNotFound);
  // The portal without a token is not a patient.
  EXPECT_EQ(ErrorReason(portal.GetPatient(get, As("")).status()),
            "ROLE_NOT_ALLOWED");
  // An EHR may not present portal tokens.
  absl::Status s = UnreadCounts(
      kEhrA, patient_, Sign(*portal_signer_, Claims(kPortalIss, patient_)));
  EXPECT_EQ(ErrorReason(s), "ISSUER_NOT_ALLOWED");
  // A subject that is no patient of the issuer's tenant.
  s = UnreadCounts(kPortal, patient_,
                   Sign(*portal_signer_,
                        Claims(kPortalIss, "tenants/clinic-a/patients/ghost")));
  EXPECT_EQ(ErrorReason(s), "PRINCIPAL_NOT_FOUND");
  s = UnreadCounts(
      kPortal, patient_,
      Sign(*portal_signer_, Claims(kPortalIss, "tenants/clinic-b/patients/x")));
  EXPECT_EQ(ErrorReason(s), "ISSUER_NOT_ALLOWED");
  // The patient principal reaches their own unread counts.
  EXPECT_TRUE(UnreadCounts(kPortal, patient_,
                           Sign(*portal_signer_, Claims(kPortalIss, patient_)))
                  .ok());
}

TEST_F(IdentityTest, TokenRejectionsAreAudited) {
  // Every refused token is an audit event with its code, like any call.
  const std::string all = "tenants/clinic-a/patients/-";
  ASSERT_EQ(UnreadCounts(kEhrA, all, "not-a-token").code(),
            absl::StatusCode::kUnauthenticated);
  int64_t count = -1;
  ASSERT_TRUE(server_.env()
                  .db
                  ->Read([&](sql::Txn& txn) -> absl::Status {
                    auto rows = txn.Query(
                        "SELECT COUNT(*) FROM audit_events WHERE action = ? "
                        "AND outcome = ?",
                        {sql::Text("careseal.v1.MessagingService/"
                                   "GetUnreadCounts"),
                         sql::Text("UNAUTHENTICATED")});
                    if (!rows.ok()) return rows.status();
                    count = (*rows)[0].Int(0);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(count, 1);
}

}  // namespace
}  // namespace careseal
