// The identity service end to end, through the public C++ client over mutual
// TLS: tenants, token issuers (register, rotate keys, revoke), clinicians
// (care-team and on-call flags, roles, disable), patients (PII sealed, the
// date of birth only as a keyed hash and never returned), tenant isolation,
// and end-user tokens: real JWTs minted in the test (ES256 with cjose, EdDSA
// with OpenSSL through authn::JwtSigner) checked by the server's token
// authenticator on every service's RPCs, on the FakeClock.
#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/audit_client.h"
#include "clients/cpp/events_client.h"
#include "clients/cpp/identity_client.h"
#include "clients/cpp/messaging_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/common/authn/jwt.h"
#include "services/identity/identity_manager.h"
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

  absl::StatusOr<v1::CreatePatientLinkResponse> CreateLink(
      const std::string& patient, v1::LinkFactor factor) {
    v1::CreatePatientLinkRequest r;
    r.set_parent(patient);
    r.set_factor(factor);
    return ehr_a_.CreatePatientLink(r);
  }

  absl::StatusOr<v1::RedeemLinkResponse> RedeemDob(const std::string& token,
                                                   v1::Date dob) {
    v1::RedeemLinkRequest r;
    r.set_link_token(token);
    *r.mutable_date_of_birth() = dob;
    r.set_client_address("198.51.100.7");
    return portal_.RedeemLink(r, As(""));
  }

  absl::StatusOr<v1::RedeemLinkResponse> RedeemCode(const std::string& token,
                                                    const std::string& code) {
    v1::RedeemLinkRequest r;
    r.set_link_token(token);
    r.set_one_time_code(code);
    return portal_.RedeemLink(r, As(""));
  }

  // A verified session for `patient_` (DOB link); its token for `sid`.
  std::string OpenSession() {
    auto link = CreateLink(patient_, v1::LINK_FACTOR_DATE_OF_BIRTH);
    EXPECT_TRUE(link.ok()) << link.status();
    auto redeemed = RedeemDob(link->link_token(), Dob(1984, 2, 29));
    EXPECT_TRUE(redeemed.ok()) << redeemed.status();
    session_name_ = redeemed->session().name();
    return redeemed->session_token();
  }

  // A portal token for `patient_` in session `sid`, minted now.
  std::string PatientToken(const std::string& sid,
                           const std::string& sub = "") {
    Json c = Claims(kPortalIss, sub.empty() ? patient_ : sub);
    c["sid"] = sid;
    return Sign(*portal_signer_, c);
  }

  // Waits until every write queued so far (e.g. a session's idle-limit
  // extension, which calls do not wait for) is committed: the store's
  // writer runs jobs in order.
  void DrainWrites() {
    ASSERT_TRUE(
        server_.env()
            .db->WriteAndWait([](sql::Txn&) { return absl::OkStatus(); })
            .ok());
  }

  TestServer server_;
  IdentityClient portal_{server_.ChannelFor(kPortal)};
  std::string session_name_;
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

// A watch stream never outlives the token it was opened with: when the
// token stops being accepted (exp plus the 30 s clock skew) the stream ends
// with UNAUTHENTICATED (TOKEN_EXPIRED), though nothing else ended it; the
// client opens it again with a fresh token. A stream of a peer acting for
// itself (no token) is not ended.
TEST_F(IdentityTest, WatchStreamEndsWhenItsTokenExpires) {
  // Issued 40 s ago, expired 25 s ago: still accepted for 5 s (skew).
  Json c = Claims(kEhrIss, "u-100");
  const int64_t now = absl::ToUnixSeconds(server_.clock().Now());
  c["iat"] = now - 40;
  c["nbf"] = now - 40;
  c["exp"] = now - 25;
  client::MessagingClient inbox(server_.ChannelFor(kEhrA));
  v1::WatchInboxRequest watch;
  watch.set_parent("tenants/clinic-a/patients/-");
  watch.set_after_cursor(0);
  client::WatchOptions options;
  options.bearer_token = Sign(*es_, c);
  options.max_duration = absl::Seconds(60);
  auto stream = inbox.WatchInbox(watch, options);
  client::WatchOptions peer_options;
  peer_options.max_duration = absl::Seconds(60);
  client::MessagingClient team(
      server_.ChannelFor(::careseal::testing::kClinicianA));
  auto peer_stream = team.WatchInbox(watch, peer_options);

  v1::WatchInboxResponse item;
  EXPECT_FALSE(stream->Next(&item));  // nothing to send: ends by expiry
  const absl::Status end = stream->Finish();
  EXPECT_EQ(end.code(), absl::StatusCode::kUnauthenticated) << end;
  EXPECT_EQ(client::ErrorReason(end), "TOKEN_EXPIRED") << end;

  // The peer's stream is still open: a message sent now reaches it.
  client::MessagingClient clinician(
      server_.ChannelFor(::careseal::testing::kClinicianA));
  v1::CreateThreadRequest thread;
  thread.set_parent(patient_);
  thread.mutable_thread()->set_subject("After your infusion");
  thread.mutable_thread()->set_category(v1::THREAD_CATEGORY_GENERAL);
  auto made = clinician.CreateThread(thread);
  ASSERT_TRUE(made.ok()) << made.status();
  v1::SendMessageRequest send;
  send.set_parent(made->thread().name());
  send.set_text("How are you feeling?");
  send.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
  auto sent = clinician.SendMessage(send);
  ASSERT_TRUE(sent.ok()) << sent.status();
  bool got_message = false;
  while (!got_message && peer_stream->Next(&item)) {
    got_message = item.has_message();
  }
  EXPECT_TRUE(got_message) << peer_stream->Finish();
  peer_stream->Cancel();
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
  const std::string db = server_.StoredBytes();
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

  IdentityClient& portal = portal_;
  const std::string sid = OpenSession();
  v1::GetPatientRequest get;
  get.set_name(patient_);
  auto own = portal.GetPatient(get, As(PatientToken(sid)));
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->patient().name(), patient_);
  // Another patient's record: not found, like an absent one.
  get.set_name(other->patient().name());
  auto theirs = portal.GetPatient(get, As(PatientToken(sid)));
  EXPECT_EQ(theirs.status().code(), absl::StatusCode::kNotFound);
  // The portal without a token is not a patient.
  EXPECT_EQ(ErrorReason(portal.GetPatient(get, As("")).status()),
            "ROLE_NOT_ALLOWED");
  // An EHR may not present portal tokens.
  absl::Status s = UnreadCounts(kEhrA, patient_, PatientToken(sid));
  EXPECT_EQ(ErrorReason(s), "ISSUER_NOT_ALLOWED");
  // A subject that is no patient of the issuer's tenant.
  s = UnreadCounts(kPortal, patient_,
                   PatientToken(sid, "tenants/clinic-a/patients/ghost"));
  EXPECT_EQ(ErrorReason(s), "PRINCIPAL_NOT_FOUND");
  s = UnreadCounts(kPortal, patient_,
                   PatientToken(sid, "tenants/clinic-b/patients/x"));
  EXPECT_EQ(ErrorReason(s), "ISSUER_NOT_ALLOWED");
  // The patient principal reaches their own unread counts.
  EXPECT_TRUE(UnreadCounts(kPortal, patient_, PatientToken(sid)).ok());
  // Without a session, or with another patient's session: refused.
  s = UnreadCounts(kPortal, patient_,
                   Sign(*portal_signer_, Claims(kPortalIss, patient_)));
  EXPECT_EQ(ErrorReason(s), "SESSION_EXPIRED");
  s = UnreadCounts(kPortal, other->patient().name(),
                   PatientToken(sid, other->patient().name()));
  EXPECT_EQ(ErrorReason(s), "SESSION_EXPIRED");
}

// ------------------------------------------------------- Links, sessions

TEST_F(IdentityTest, LinkCodeValidAtTMinusOneSecondFailsAtTPlusOneSecond) {
  auto first = CreateLink(patient_, v1::LINK_FACTOR_ONE_TIME_CODE);
  auto second = CreateLink(patient_, v1::LINK_FACTOR_ONE_TIME_CODE);
  ASSERT_TRUE(first.ok() && second.ok());
  // No code yet.
  EXPECT_EQ(ErrorReason(RedeemCode(first->link_token(), "12345678").status()),
            "CODE_NOT_ISSUED");
  v1::IssueLinkCodeRequest issue;
  issue.set_name(first->link().name());
  auto c1 = ehr_a_.IssueLinkCode(issue);
  issue.set_name(second->link().name());
  issue.clear_request_id();
  auto c2 = ehr_a_.IssueLinkCode(issue);
  ASSERT_TRUE(c1.ok() && c2.ok()) << c1.status() << c2.status();
  ASSERT_EQ(c1->code().size(), 8u);
  const absl::Time t = absl::FromUnixSeconds(c1->expire_time().seconds()) +
                       absl::Nanoseconds(c1->expire_time().nanos());
  EXPECT_EQ(t - server_.clock().Now(), absl::Minutes(10));

  server_.clock().Set(t - absl::Seconds(1));
  auto ok = RedeemCode(first->link_token(), c1->code());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->patient(), patient_);
  EXPECT_EQ(ok->session().state(), v1::PATIENT_SESSION_STATE_ACTIVE);

  server_.clock().Set(t + absl::Seconds(1));
  auto late = RedeemCode(second->link_token(), c2->code());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(late.status()), "CODE_EXPIRED");

  // A DOB link cannot get a code; a code link cannot be redeemed by DOB.
  auto dob_link = CreateLink(patient_, v1::LINK_FACTOR_DATE_OF_BIRTH);
  issue.set_name(dob_link->link().name());
  issue.clear_request_id();
  EXPECT_EQ(ErrorReason(ehr_a_.IssueLinkCode(issue).status()), "WRONG_FACTOR");
  EXPECT_EQ(
      ErrorReason(RedeemDob(second->link_token(), Dob(1984, 2, 29)).status()),
      "WRONG_FACTOR");
}

TEST_F(IdentityTest, LinkIsSingleUseAndStoredOnlyAsHash) {
  auto link = CreateLink(patient_, v1::LINK_FACTOR_DATE_OF_BIRTH);
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->link().state(), v1::PATIENT_LINK_STATE_ACTIVE);
  EXPECT_EQ(link->link().created_by().role(), v1::ROLE_EHR_SYSTEM);
  ASSERT_GE(link->link_token().size(), 22u);
  auto first = RedeemDob(link->link_token(), Dob(1984, 2, 29));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->session_token().empty());
  auto again = RedeemDob(link->link_token(), Dob(1984, 2, 29));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(again.status()), "LINK_ALREADY_USED");
  EXPECT_EQ(ErrorReason(
                RedeemDob("AAAAAAAAAAAAAAAAAAAAAA", Dob(1984, 2, 29)).status()),
            "LINK_NOT_FOUND");
  // Neither the link token nor the session token is in the database file.
  DrainWrites();
  const std::string stored = server_.StoredBytes();
  ASSERT_FALSE(stored.empty());
  EXPECT_EQ(stored.find(link->link_token()), std::string::npos);
  EXPECT_EQ(stored.find(first->session_token()), std::string::npos);

  // Revoked links are dead too.
  auto revoked = CreateLink(patient_, v1::LINK_FACTOR_DATE_OF_BIRTH);
  v1::RevokePatientLinkRequest revoke;
  revoke.set_name(revoked->link().name());
  auto r = ehr_a_.RevokePatientLink(revoke);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->link().state(), v1::PATIENT_LINK_STATE_REVOKED);
  EXPECT_EQ(
      ErrorReason(RedeemDob(revoked->link_token(), Dob(1984, 2, 29)).status()),
      "LINK_REVOKED");
  // Another tenant's EHR cannot see or create links of this patient.
  client::IdentityClient& ehr_b = ehr_b_;
  v1::CreatePatientLinkRequest foreign;
  foreign.set_parent(patient_);
  foreign.set_factor(v1::LINK_FACTOR_DATE_OF_BIRTH);
  EXPECT_EQ(ehr_b.CreatePatientLink(foreign).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(IdentityTest, FiveWrongDatesOfBirthLockTheLinkDurably) {
  auto link = CreateLink(patient_, v1::LINK_FACTOR_DATE_OF_BIRTH);
  ASSERT_TRUE(link.ok()) << link.status();
  for (int i = 1; i <= 5; ++i) {
    auto wrong = RedeemDob(link->link_token(), Dob(1984, 3, i));
    EXPECT_EQ(wrong.status().code(), absl::StatusCode::kPermissionDenied) << i;
    EXPECT_EQ(ErrorReason(wrong.status()), "SECOND_FACTOR_MISMATCH") << i;
    EXPECT_NE(wrong.status().message().find(
                  absl::StrCat(5 - i, " attempts remaining")),
              std::string::npos)
        << wrong.status();
    EXPECT_EQ(client::ErrorMetadata(wrong.status(), "attempts_remaining"),
              absl::StrCat(5 - i))
        << i;
  }
  // Locked, across a restart, even with the right date.
  server_.Restart();
  auto right = RedeemDob(link->link_token(), Dob(1984, 2, 29));
  EXPECT_EQ(right.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(right.status()), "LINK_LOCKED");
}

TEST_F(IdentityTest, RedemptionsAreRateLimitedPerClientAddress) {
  auto redeem = [&](const std::string& token, const std::string& address) {
    v1::RedeemLinkRequest r;
    r.set_link_token(token);
    *r.mutable_date_of_birth() = Dob(1984, 2, 29);
    r.set_client_address(address);
    return portal_.RedeemLink(r, As("")).status();
  };
  // Guessing tokens from one address: 20 tries in 10 minutes, then refused.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(ErrorReason(redeem(absl::StrCat("guess", i, "AAAAAAAAAAAAAA"),
                                 "203.0.113.9")),
              "LINK_NOT_FOUND")
        << i;
  }
  auto link = CreateLink(patient_, v1::LINK_FACTOR_DATE_OF_BIRTH);
  ASSERT_TRUE(link.ok());
  absl::Status limited = redeem(link->link_token(), "203.0.113.9");
  EXPECT_EQ(limited.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorReason(limited), "RATE_LIMITED");
  // The refused attempt did not touch the link: once the window has passed
  // the same address redeems it.
  server_.clock().Advance(absl::Minutes(10));
  EXPECT_TRUE(redeem(link->link_token(), "203.0.113.9").ok());
}

TEST_F(IdentityTest, SessionsHaveIdleAndAbsoluteLimits) {
  const std::string sid = OpenSession();
  const std::string own = patient_;
  // Activity every 14 minutes keeps the session alive (idle limit 15 min).
  for (int i = 0; i < 3; ++i) {
    server_.clock().Advance(absl::Minutes(14));
    ASSERT_TRUE(UnreadCounts(kPortal, own, PatientToken(sid)).ok()) << i;
    DrainWrites();
  }
  // 15 minutes idle: ended.
  server_.clock().Advance(absl::Minutes(15));
  EXPECT_EQ(ErrorReason(UnreadCounts(kPortal, own, PatientToken(sid))),
            "SESSION_EXPIRED");

  // Absolute limit: 12 hours after redemption, whatever the activity.
  const std::string sid2 = OpenSession();
  const absl::Time start = server_.clock().Now();
  while (server_.clock().Now() + absl::Minutes(10) < start + absl::Hours(12)) {
    server_.clock().Advance(absl::Minutes(10));
    ASSERT_TRUE(UnreadCounts(kPortal, own, PatientToken(sid2)).ok());
    DrainWrites();
  }
  server_.clock().Set(start + absl::Hours(12) - absl::Seconds(1));
  EXPECT_TRUE(UnreadCounts(kPortal, own, PatientToken(sid2)).ok());
  server_.clock().Set(start + absl::Hours(12));
  EXPECT_EQ(ErrorReason(UnreadCounts(kPortal, own, PatientToken(sid2))),
            "SESSION_EXPIRED");
}

TEST_F(IdentityTest, PatientEndsOwnSession) {
  const std::string sid = OpenSession();
  v1::EndPatientSessionRequest end;
  end.set_name(session_name_);
  auto ended = portal_.EndPatientSession(end, As(PatientToken(sid)));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->session().state(), v1::PATIENT_SESSION_STATE_ENDED);
  EXPECT_TRUE(ended->session().has_end_time());
  EXPECT_EQ(ErrorReason(UnreadCounts(kPortal, patient_, PatientToken(sid))),
            "SESSION_EXPIRED");
}

// 10,000 identity names of another tenant (real patients and clinicians
// there, random ones, and tenant B itself) get exactly the answer an absent
// name of one's own tenant gets.
TEST_F(IdentityTest, ForeignIdentityNamesLeakNothing) {
  // Tenant B's real records.
  v1::RegisterIssuerRequest reg;
  reg.set_parent("tenants/clinic-b");
  reg.set_issuer_id("epic");
  reg.mutable_issuer()->set_issuer_uri(kEhrIss);
  reg.mutable_issuer()->set_kind(v1::ISSUER_KIND_EHR);
  reg.mutable_issuer()->add_peer_identities(kEhrB);
  reg.mutable_issuer()->set_jwks_json(es_->PublicJwks());
  ASSERT_TRUE(admin_.RegisterIssuer(reg).ok());
  v1::CreateClinicianRequest c;
  c.set_parent("tenants/clinic-b");
  c.set_clinician_id("dr-b");
  c.mutable_clinician()->set_display_name("Dr B");
  c.mutable_clinician()->set_issuer("tenants/clinic-b/issuers/epic");
  c.mutable_clinician()->set_subject("u-1");
  ASSERT_TRUE(admin_.CreateClinician(c).ok());
  std::vector<std::string> real_patients;
  for (int i = 0; i < 10; ++i) {
    v1::CreatePatientRequest p;
    p.set_parent("tenants/clinic-b");
    p.mutable_patient()->set_external_id(absl::StrCat("B-", i));
    *p.mutable_patient()->mutable_date_of_birth() = Dob(1970 + i, 1, 1);
    auto created = ehr_b_.CreatePatient(p);
    ASSERT_TRUE(created.ok()) << created.status();
    real_patients.push_back(created->patient().name());
  }

  v1::GetPatientRequest absent;
  absent.set_name("tenants/clinic-a/patients/nothere");
  const absl::Status reference = ehr_a_.GetPatient(absent).status();
  ASSERT_EQ(reference.code(), absl::StatusCode::kNotFound);

  constexpr int kProbes = 10000;
  constexpr int kThreads = 8;
  std::atomic<int> leaks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(4321 + t);
      IdentityClient ehr_a(server_.ChannelFor(kEhrA));
      CallOptions once;
      once.max_attempts = 1;
      for (int i = t; i < kProbes; i += kThreads) {
        absl::Status s;
        switch (i % 4) {
          case 0: {
            v1::GetPatientRequest r;
            r.set_name(real_patients[rng() % real_patients.size()]);
            s = ehr_a.GetPatient(r, once).status();
            break;
          }
          case 1: {
            v1::GetPatientRequest r;
            r.set_name(absl::StrCat("tenants/clinic-b/patients/p", rng()));
            s = ehr_a.GetPatient(r, once).status();
            break;
          }
          case 2: {
            v1::GetClinicianRequest r;
            r.set_name(rng() % 2 ? "tenants/clinic-b/clinicians/dr-b"
                                 : absl::StrCat("tenants/clinic-b/clinicians/c",
                                                rng()));
            s = ehr_a.GetClinician(r, once).status();
            break;
          }
          default: {
            v1::GetTenantRequest r;
            r.set_name(rng() % 2 ? "tenants/clinic-b"
                                 : absl::StrCat("tenants/t", rng()));
            s = ehr_a.GetTenant(r, once).status();
            break;
          }
        }
        if (s.code() != reference.code() ||
            s.message() != reference.message() ||
            ErrorReason(s) != ErrorReason(reference)) {
          ++leaks;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::printf(
      "identity names of another tenant probed: %d, answers "
      "differing from absent: %d\n",
      kProbes, leaks.load());
  EXPECT_EQ(leaks, 0);
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

TEST_F(IdentityTest, ReplayedTokenIsRefusedAfterRestart) {
  const std::string all = "tenants/clinic-a/patients/-";
  const std::string token = Sign(*es_, Claims(kEhrIss, "u-100"));
  ASSERT_TRUE(UnreadCounts(kEhrA, all, token).ok());
  EXPECT_EQ(ErrorReason(UnreadCounts(kEhrA, all, token)), "TOKEN_REPLAYED");
  // A new process over the same store remembers it.
  server_.Restart();
  const absl::Status replay = UnreadCounts(kEhrA, all, token);
  EXPECT_EQ(replay.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorReason(replay), "TOKEN_REPLAYED");
  EXPECT_TRUE(
      UnreadCounts(kEhrA, all, Sign(*es_, Claims(kEhrIss, "u-100"))).ok());

  // Rows go once past exp + skew: 5 min + 30 s after issue.
  auto count = [&](bool expired_only) {
    int64_t n = -1;
    EXPECT_TRUE(
        server_.env()
            .db
            ->Read([&](sql::Txn& txn) -> absl::Status {
              auto rows = txn.Query(
                  expired_only ? "SELECT COUNT(*) FROM "
                                 "identity_token_jtis WHERE "
                                 "expire_us <= ?"
                               : "SELECT COUNT(*) FROM "
                                 "identity_token_jtis WHERE ? >= 0",
                  {sql::Int(absl::ToUnixMicros(server_.clock().Now()))});
              if (!rows.ok()) return rows.status();
              n = (*rows)[0].Int(0);
              return absl::OkStatus();
            })
            .ok());
    return n;
  };
  DrainWrites();
  EXPECT_EQ(count(false), 2);
  server_.clock().Advance(absl::Minutes(5) + absl::Seconds(31));
  EXPECT_EQ(count(true), 2);
  ASSERT_TRUE(
      UnreadCounts(kEhrA, all, Sign(*es_, Claims(kEhrIss, "u-100"))).ok());
  DrainWrites();
  EXPECT_EQ(count(true), 0);
  EXPECT_EQ(count(false), 1);
}

TEST_F(IdentityTest, SuspendedTenantRefusesEveryCallOfThatTenant) {
  const std::string sid = OpenSession();
  v1::UpdateTenantRequest up;
  up.mutable_tenant()->set_name("tenants/clinic-a");
  up.mutable_tenant()->set_state(v1::TENANT_STATE_SUSPENDED);
  up.mutable_update_mask()->add_paths("state");
  ASSERT_TRUE(admin_.UpdateTenant(up).ok());

  v1::GetPatientRequest get;
  get.set_name(patient_);
  for (auto [label, client, token] :
       {std::tuple{"EHR", &ehr_a_, std::string()},
        std::tuple{"clinician", &ehr_a_, Sign(*es_, Claims(kEhrIss, "u-100"))},
        std::tuple{"patient", &portal_, PatientToken(sid)}}) {
    auto r = client->GetPatient(get, As(token));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
        << label;
    EXPECT_EQ(ErrorReason(r.status()), "TENANT_SUSPENDED") << label;
  }
  // Another tenant is unaffected; the admin still reaches the tenant and
  // reactivates it.
  v1::GetTenantRequest tenant_b;
  tenant_b.set_name("tenants/clinic-b");
  EXPECT_TRUE(ehr_b_.GetTenant(tenant_b).ok());
  up.mutable_tenant()->set_state(v1::TENANT_STATE_ACTIVE);
  ASSERT_TRUE(admin_.UpdateTenant(up).ok());
  EXPECT_TRUE(ehr_a_.GetPatient(get).ok());
}

// A suspension written by another replica sharing the store (here: the
// row changed underneath this server) applies within the cache's TTL.
TEST_F(IdentityTest, SuspensionByAnotherReplicaAppliesWithinTheCacheTtl) {
  v1::GetPatientRequest get;
  get.set_name(patient_);
  ASSERT_TRUE(ehr_a_.GetPatient(get).ok());  // caches "active"
  auto set_state = [&](identity::TenantState state) {
    ASSERT_TRUE(server_.env()
                    .db
                    ->WriteAndWait([&](sql::Txn& txn) {
                      return txn
                          .Exec(
                              "UPDATE identity_tenants SET state = ? WHERE "
                              "tenant_id = ?",
                              {sql::Int(static_cast<int>(state)),
                               sql::Text("clinic-a")})
                          .status();
                    })
                    .ok());
  };
  set_state(identity::TenantState::kSuspended);
  server_.clock().Advance(identity::IdentityManager::kTenantStateTtl);
  auto r = ehr_a_.GetPatient(get);
  EXPECT_EQ(ErrorReason(r.status()), "TENANT_SUSPENDED");
  set_state(identity::TenantState::kActive);
  server_.clock().Advance(identity::IdentityManager::kTenantStateTtl);
  EXPECT_TRUE(ehr_a_.GetPatient(get).ok());
}

// ------------------------------------------------------------ Break-glass

class BreakGlassTest : public IdentityTest {
 protected:
  void SetUp() override {
    IdentityTest::SetUp();
    ASSERT_TRUE(CreateClinician("dr-b", "u-300", {}, false, false).ok());
    v1::CreatePatientRequest q;
    q.set_parent("tenants/clinic-a");
    q.mutable_patient()->set_external_id("MRN-0815-QQ");
    *q.mutable_patient()->mutable_date_of_birth() = Dob(1990, 1, 1);
    auto created = ehr_a_.CreatePatient(q);
    ASSERT_TRUE(created.ok()) << created.status();
    other_patient_ = created->patient().name();
  }

  std::string DrA() { return Sign(*es_, Claims(kEhrIss, "u-100")); }
  std::string DrB() { return Sign(*es_, Claims(kEhrIss, "u-300")); }
  std::string Auditor() { return Sign(*es_, Claims(kEhrIss, "u-200")); }

  absl::StatusOr<v1::StartBreakGlassResponse> Start(
      const std::string& token, const std::string& parent,
      const std::string& patient, const std::string& reason,
      absl::Duration duration = absl::ZeroDuration()) {
    v1::StartBreakGlassRequest r;
    r.set_parent(parent);
    r.set_patient(patient);
    r.set_reason(reason);
    if (duration != absl::ZeroDuration()) {
      r.mutable_duration()->set_seconds(absl::ToInt64Seconds(duration));
    }
    return ehr_a_.StartBreakGlass(r, As(token));
  }

  // GetPatient by dr-a under `grant`.
  absl::Status ReadUnder(const std::string& grant, const std::string& patient) {
    v1::GetPatientRequest r;
    r.set_name(patient);
    CallOptions o = As(DrA());
    o.break_glass_grant = grant;
    return ehr_a_.GetPatient(r, o).status();
  }

  std::vector<v1::AuditEvent> BreakGlassAudit() {
    client::AuditClient audit(server_.ChannelFor(kAdmin));
    v1::ListAuditEventsRequest r;
    r.set_parent("tenants/clinic-a");
    r.set_category(v1::AUDIT_CATEGORY_BREAK_GLASS);
    r.set_page_size(1000);
    auto list = audit.ListAuditEvents(r);
    EXPECT_TRUE(list.ok()) << list.status();
    if (!list.ok()) return {};
    return {list->events().begin(), list->events().end()};
  }

  std::vector<v1::Event> Events(v1::EventType type) {
    client::EventsClient events(server_.ChannelFor(kEhrA));
    v1::ListEventsRequest r;
    r.set_parent("tenants/clinic-a");
    r.add_types(type);
    auto list = events.ListEvents(r);
    EXPECT_TRUE(list.ok()) << list.status();
    if (!list.ok()) return {};
    return {list->events().begin(), list->events().end()};
  }

  static constexpr char kDrA[] = "tenants/clinic-a/clinicians/dr-a";
  static constexpr char kReason[] = "Unconscious patient in the ED, no EHR";
  std::string other_patient_;
};

TEST_F(BreakGlassTest, StartValidatesReasonDurationSelfAndPatient) {
  auto short_reason = Start(DrA(), kDrA, patient_, "urgent");
  EXPECT_EQ(short_reason.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(short_reason.status()), "REASON_TOO_SHORT");
  EXPECT_EQ(ErrorField(short_reason.status()), "reason");
  for (absl::Duration d :
       {absl::Minutes(4), absl::Hours(4) + absl::Seconds(1)}) {
    auto bad = Start(DrA(), kDrA, patient_, kReason, d);
    EXPECT_EQ(ErrorReason(bad.status()), "DURATION_OUT_OF_RANGE") << d;
    EXPECT_EQ(ErrorField(bad.status()), "duration");
  }
  auto not_self =
      Start(DrA(), "tenants/clinic-a/clinicians/dr-b", patient_, kReason);
  EXPECT_EQ(not_self.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorReason(not_self.status()), "NOT_SELF");
  // An absent patient and another tenant's answer alike.
  auto absent = Start(DrA(), kDrA, "tenants/clinic-a/patients/nobody", kReason);
  auto foreign =
      Start(DrA(), kDrA, "tenants/clinic-b/patients/nobody", kReason);
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(foreign.status().code(), absent.status().code());
  EXPECT_EQ(foreign.status().message(), absent.status().message());
  // The EHR itself, a patient or an auditor cannot start one.
  EXPECT_EQ(ErrorReason(Start("", kDrA, patient_, kReason).status()),
            "ROLE_NOT_ALLOWED");
  EXPECT_EQ(ErrorReason(Start(Auditor(), kDrA, patient_, kReason).status()),
            "ROLE_NOT_ALLOWED");
  // Nothing was stored by any refusal.
  v1::ListBreakGlassGrantsRequest list;
  list.set_parent("tenants/clinic-a/clinicians/-");
  auto all = admin_.ListBreakGlassGrants(list);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->grants_size(), 0);
  EXPECT_TRUE(Events(v1::EVENT_TYPE_BREAK_GLASS_STARTED).empty());
}

TEST_F(BreakGlassTest, GrantWorksUntilExpiryForItsPatientOnly) {
  const absl::Time t0 = server_.clock().Now();
  auto started = Start(DrA(), kDrA, patient_, kReason, absl::Minutes(30));
  ASSERT_TRUE(started.ok()) << started.status();
  const v1::BreakGlassGrant& g = started->grant();
  EXPECT_TRUE(
      absl::StartsWith(g.name(), std::string(kDrA) + "/breakGlassGrants/"));
  EXPECT_EQ(g.patient(), patient_);
  EXPECT_EQ(g.reason(), kReason);
  EXPECT_EQ(g.state(), v1::BREAK_GLASS_STATE_ACTIVE);
  EXPECT_EQ(g.expire_time().seconds(),
            absl::ToUnixSeconds(t0 + absl::Minutes(30)));

  EXPECT_TRUE(ReadUnder(g.name(), patient_).ok());
  // Another patient of the same tenant: exactly like an absent one, although
  // the same clinician without the grant may read them.
  const absl::Status other = ReadUnder(g.name(), other_patient_);
  const absl::Status absent =
      ReadUnder(g.name(), "tenants/clinic-a/patients/nobody");
  EXPECT_EQ(other.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(other.message(), absent.message());
  EXPECT_EQ(ErrorReason(other), ErrorReason(absent));
  v1::GetPatientRequest plain;
  plain.set_name(other_patient_);
  EXPECT_TRUE(ehr_a_.GetPatient(plain, As(DrA())).ok());
  // Another tenant's patient likewise.
  EXPECT_EQ(ReadUnder(g.name(), "tenants/clinic-b/patients/nobody").message(),
            absent.message());

  // The grant is stored: it survives a restart.
  server_.Restart();
  server_.clock().Advance(absl::Minutes(30) - absl::Seconds(1));
  EXPECT_TRUE(ReadUnder(g.name(), patient_).ok());
  server_.clock().Advance(absl::Seconds(2));  // expiry + 1 s
  const absl::Status late = ReadUnder(g.name(), patient_);
  EXPECT_EQ(late.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorReason(late), "BREAK_GLASS_EXPIRED");

  v1::ListBreakGlassGrantsRequest list;
  list.set_parent(kDrA);
  auto mine = ehr_a_.ListBreakGlassGrants(list, As(DrA()));
  ASSERT_TRUE(mine.ok()) << mine.status();
  ASSERT_EQ(mine->grants_size(), 1);
  EXPECT_EQ(mine->grants(0).state(), v1::BREAK_GLASS_STATE_EXPIRED);
}

TEST_F(BreakGlassTest, EndedGrantsAndOthersGrantsAreRefused) {
  auto a = Start(DrA(), kDrA, patient_, kReason);
  ASSERT_TRUE(a.ok()) << a.status();
  server_.clock().Advance(absl::Seconds(1));
  auto b = Start(DrB(), "tenants/clinic-a/clinicians/dr-b", patient_, kReason);
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string grant = a->grant().name();

  // dr-a may not use dr-b's grant, nor one that does not exist; an EHR
  // acting for itself may not use any.
  EXPECT_EQ(ErrorReason(ReadUnder(b->grant().name(), patient_)),
            "BREAK_GLASS_GRANT_INVALID");
  EXPECT_EQ(ErrorReason(ReadUnder(grant + "x", patient_)),
            "BREAK_GLASS_GRANT_INVALID");
  v1::GetPatientRequest get;
  get.set_name(patient_);
  CallOptions peer_only = As("");
  peer_only.break_glass_grant = grant;
  auto ehr = ehr_a_.GetPatient(get, peer_only);
  EXPECT_EQ(ehr.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorReason(ehr.status()), "BREAK_GLASS_GRANT_INVALID");

  // dr-a cannot end dr-b's grant (like an absent one); the admin can.
  v1::EndBreakGlassRequest end_b;
  end_b.set_name(b->grant().name());
  EXPECT_EQ(ehr_a_.EndBreakGlass(end_b, As(DrA())).status().code(),
            absl::StatusCode::kNotFound);
  auto ended_b = admin_.EndBreakGlass(end_b);
  ASSERT_TRUE(ended_b.ok()) << ended_b.status();
  EXPECT_EQ(ended_b->grant().state(), v1::BREAK_GLASS_STATE_ENDED);

  EXPECT_TRUE(ReadUnder(grant, patient_).ok());
  server_.clock().Advance(absl::Minutes(3));
  v1::EndBreakGlassRequest end;
  end.set_name(grant);
  auto ended = ehr_a_.EndBreakGlass(end, As(DrA()));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->grant().state(), v1::BREAK_GLASS_STATE_ENDED);
  EXPECT_EQ(ended->grant().end_time().seconds(),
            absl::ToUnixSeconds(server_.clock().Now()));
  const absl::Status after = ReadUnder(grant, patient_);
  EXPECT_EQ(after.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorReason(after), "BREAK_GLASS_EXPIRED");
  // Ending again returns it unchanged.
  server_.clock().Advance(absl::Minutes(1));
  auto again = ehr_a_.EndBreakGlass(end, As(DrA()));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->grant().end_time().seconds(),
            ended->grant().end_time().seconds());

  // Lists: a clinician their own only; an auditor the tenant's, newest
  // first, optionally by patient.
  v1::ListBreakGlassGrantsRequest list;
  list.set_parent("tenants/clinic-a/clinicians/-");
  EXPECT_EQ(ehr_a_.ListBreakGlassGrants(list, As(DrA())).status().code(),
            absl::StatusCode::kNotFound);
  auto all = ehr_a_.ListBreakGlassGrants(list, As(Auditor()));
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->grants_size(), 2);
  EXPECT_EQ(all->grants(0).name(), b->grant().name());  // newest first
  list.set_patient(other_patient_);
  all = ehr_a_.ListBreakGlassGrants(list, As(Auditor()));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->grants_size(), 0);
  list.set_page_size(1);
  list.set_patient("");
  auto page1 = admin_.ListBreakGlassGrants(list);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->grants_size(), 1);
  list.set_page_token(page1->next_page_token());
  auto page2 = admin_.ListBreakGlassGrants(list);
  ASSERT_TRUE(page2.ok()) << page2.status();
  ASSERT_EQ(page2->grants_size(), 1);
  EXPECT_EQ(page2->grants(0).name(), grant);
  EXPECT_TRUE(page2->next_page_token().empty());
}

TEST_F(BreakGlassTest, StartEndAndEveryUseAreAuditedFlaggedAndEmitted) {
  auto started = Start(DrA(), kDrA, patient_, kReason);
  ASSERT_TRUE(started.ok()) << started.status();
  const std::string grant = started->grant().name();
  ASSERT_TRUE(ReadUnder(grant, patient_).ok());
  ASSERT_EQ(ReadUnder(grant, other_patient_).code(),
            absl::StatusCode::kNotFound);
  v1::EndBreakGlassRequest end;
  end.set_name(grant);
  ASSERT_TRUE(ehr_a_.EndBreakGlass(end, As(DrA())).ok());

  int starts = 0, uses = 0, refused = 0, ends = 0;
  for (const v1::AuditEvent& e : BreakGlassAudit()) {
    EXPECT_EQ(e.leaf_data().find(kReason), std::string::npos)
        << "the reason is sealed, not audited";
    if (absl::EndsWith(e.action(), "/StartBreakGlass")) {
      ++starts;
      EXPECT_EQ(e.resource(), grant);
      EXPECT_EQ(e.patient(), patient_);
      EXPECT_EQ(e.actor().name(), kDrA);
    } else if (absl::EndsWith(e.action(), "/EndBreakGlass")) {
      ++ends;
    } else if (absl::EndsWith(e.action(), "/GetPatient")) {
      EXPECT_EQ(e.actor().role(), v1::ROLE_BREAK_GLASS);
      EXPECT_EQ(e.actor().break_glass_grant(), grant);
      EXPECT_EQ(e.actor().name(), kDrA);
      if (e.outcome_code() == 0) {
        ++uses;
        EXPECT_EQ(e.patient(), patient_);
      } else {
        ++refused;
      }
    }
  }
  EXPECT_EQ(starts, 1);
  EXPECT_EQ(uses, 1);
  EXPECT_EQ(ends, 1);
  // The read of another patient, refused like an absent one, is flagged
  // too.
  EXPECT_EQ(refused, 1);

  const auto started_events = Events(v1::EVENT_TYPE_BREAK_GLASS_STARTED);
  ASSERT_EQ(started_events.size(), 1u);
  EXPECT_EQ(started_events[0].resource(), grant);
  EXPECT_EQ(started_events[0].patient(), patient_);
  EXPECT_EQ(started_events[0].actor().name(), kDrA);
  const auto ended_events = Events(v1::EVENT_TYPE_BREAK_GLASS_ENDED);
  ASSERT_EQ(ended_events.size(), 1u);
  EXPECT_EQ(ended_events[0].resource(), grant);
}

}  // namespace
}  // namespace careseal
