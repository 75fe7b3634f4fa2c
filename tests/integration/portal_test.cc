// The patient portal end to end: real services (TestServer, mutual TLS,
// FakeClock) and careseal-portal's server on loopback HTTPS, driven over
// HTTP with cpp-httplib's client like a browser without JavaScript (cookie
// kept by hand, CSRF token read from the forms). A patient opens a one-time
// link, verifies with their date of birth, reads the consent and signs it;
// CheckConsent is then valid and the downloaded receipt verifies offline.
// Refusals: a POST without or with a wrong CSRF token, a reused link, a
// wrong date of birth five times (lock), an idle session — each with a clear
// page and nothing signed.
#include <httplib.h>

#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/identity_client.h"
#include "clients/cpp/receipt.h"
#include "clients/portal/portal_server.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kAdmin;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using client::ConsentClient;
using client::IdentityClient;
namespace v1 = ::careseal::v1;

constexpr char kProcedure[] = "ketamine-iv-induction";
constexpr char kPortalIss[] = "https://portal.careseal.example";
constexpr char kCookieName[] = "__Host-careseal-portal";

v1::ConsentTemplateVersion KetamineConsent() {
  v1::ConsentTemplateVersion v;
  v.set_title("Consent to IV ketamine infusion therapy");
  v.set_body_markdown(
      "# IV ketamine infusions\n\nYou will receive a series of infusions "
      "under monitoring.\n\n## Risks\n- dissociation\n- a rise in blood "
      "pressure\n");
  const std::pair<const char*, const char*> acks[] = {
      {"dissociation", "I understand ketamine can cause dissociation."},
      {"no-driving", "I will not drive for 24 hours after an infusion."},
      {"withdraw", "I know I can withdraw my consent at any time."},
  };
  for (const auto& [id, text] : acks) {
    auto* a = v.add_acknowledgements();
    a->set_id(id);
    a->set_text(text);
    a->set_required(true);
  }
  v.add_procedure_codes(kProcedure);
  v.set_esign_disclosure(
      "You may ask for a paper copy. You may withdraw consent to electronic "
      "records at any time by telling the clinic.");
  v.set_signature_meaning("Consent to treatment");
  return v;
}

// A cookie-keeping HTTPS client of the portal that never follows redirects.
class Browser {
 public:
  Browser(int port, const std::string& ca_file) : http_("127.0.0.1", port) {
    http_.set_ca_cert_path(ca_file);
    http_.enable_server_certificate_verification(true);
    http_.set_follow_location(false);
  }

  httplib::Result Get(const std::string& path) {
    auto r = http_.Get(path.c_str(), Headers());
    Remember(r);
    return r;
  }

  httplib::Result Post(const std::string& path, const httplib::Params& form) {
    auto r = http_.Post(path.c_str(), Headers(), form);
    Remember(r);
    return r;
  }

  const std::string& cookie() const { return cookie_; }
  std::string last_set_cookie;

 private:
  httplib::Headers Headers() const {
    httplib::Headers h{{"User-Agent", "portal_test"}};
    if (!cookie_.empty()) {
      h.emplace("Cookie", absl::StrCat(kCookieName, "=", cookie_));
    }
    return h;
  }
  void Remember(const httplib::Result& r) {
    if (!r || !r->has_header("Set-Cookie")) return;
    last_set_cookie = r->get_header_value("Set-Cookie");
    std::smatch m;
    const std::regex re(std::string(kCookieName) + "=([^;]*)");
    if (std::regex_search(last_set_cookie, m, re)) cookie_ = m[1].str();
    if (absl::StrContains(last_set_cookie, "Max-Age=0")) cookie_.clear();
  }

  httplib::SSLClient http_;
  std::string cookie_;
};

std::string CsrfOf(const std::string& html) {
  std::smatch m;
  const std::regex re("name=\"csrf\" value=\"([^\"]+)\"");
  return std::regex_search(html, m, re) ? m[1].str() : "";
}

class PortalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client::CallOptions none;
    v1::CreateTenantRequest tenant;
    tenant.set_tenant_id("clinic-a");
    tenant.mutable_tenant()->set_display_name("Clinic A");
    tenant.mutable_tenant()->set_time_zone("America/Chicago");
    ASSERT_TRUE(admin_.CreateTenant(tenant).ok());

    portal::JwtMinter::Options mo;
    mo.issuer = kPortalIss;
    mo.kid = "portal-1";
    auto minter = portal::JwtMinter::Generate(mo);
    ASSERT_TRUE(minter.ok()) << minter.status();
    v1::RegisterIssuerRequest reg;
    reg.set_parent("tenants/clinic-a");
    reg.set_issuer_id("portal");
    reg.mutable_issuer()->set_issuer_uri(kPortalIss);
    reg.mutable_issuer()->set_kind(v1::ISSUER_KIND_PORTAL);
    reg.mutable_issuer()->add_peer_identities(kPortal);
    reg.mutable_issuer()->set_jwks_json((*minter)->PublicJwks());
    auto issuer = admin_.RegisterIssuer(reg);
    ASSERT_TRUE(issuer.ok()) << issuer.status();

    v1::CreatePatientRequest p;
    p.set_parent("tenants/clinic-a");
    p.mutable_patient()->set_external_id("MRN-4711-XQ");
    p.mutable_patient()->set_display_name("Pat Zebulon");
    p.mutable_patient()->mutable_date_of_birth()->set_year(1984);
    p.mutable_patient()->mutable_date_of_birth()->set_month(2);
    p.mutable_patient()->mutable_date_of_birth()->set_day(29);
    auto created = ehr_identity_.CreatePatient(p);
    ASSERT_TRUE(created.ok()) << created.status();
    patient_ = created->patient().name();

    v1::CreateConsentTemplateRequest create;
    create.set_parent("tenants/clinic-a");
    create.set_consent_template_id("ketamine");
    create.mutable_consent_template()->set_display_name("IV ketamine");
    auto t = ehr_consent_.CreateConsentTemplate(create);
    ASSERT_TRUE(t.ok()) << t.status();
    v1::PublishConsentTemplateVersionRequest publish;
    publish.set_parent(t->consent_template().name());
    *publish.mutable_version() = KetamineConsent();
    ASSERT_TRUE(ehr_consent_.PublishConsentTemplateVersion(publish).ok());

    v1::RequestConsentRequest request;
    request.set_parent(patient_);
    request.set_procedure_code(kProcedure);
    auto requested = ehr_consent_.RequestConsent(request);
    ASSERT_TRUE(requested.ok()) << requested.status();
    consent_ = requested->consent().name();
    // The clinic's one-time link to this consent (date of birth factor).
    v1::CreatePatientLinkRequest link;
    link.set_parent(patient_);
    link.set_target(consent_);
    link.set_factor(v1::LINK_FACTOR_DATE_OF_BIRTH);
    auto created_link = ehr_identity_.CreatePatientLink(link);
    ASSERT_TRUE(created_link.ok()) << created_link.status();
    // The link the EHR sends: the identity link, then the signing token.
    link_ = created_link->link_token() + "/" + requested->signing_token();

    https_ca_ = ::careseal::testing::TestCa::Create("Portal HTTPS test CA");
    ca_file_ = server_.dir() + "/portal-https-ca.pem";
    std::ofstream(ca_file_) << https_ca_.cert_pem();
    const auto https = https_ca_.IssueServer();
    portal::PortalOptions options;
    options.listen_port = 0;
    options.tls_cert_pem = https.cert_pem;
    options.tls_key_pem = https.key_pem;
    options.static_dir = CARESEAL_PORTAL_STATIC_DIR;
    options.careseal = server_.ChannelOptionsFor(kPortal);
    options.now = [this] { return server_.clock().Now(); };
    auto started = portal::PortalServer::Start(options, *std::move(minter));
    ASSERT_TRUE(started.ok()) << started.status();
    portal_ = *std::move(started);
  }

  Browser NewBrowser() { return Browser(portal_->port(), ca_file_); }

  v1::CheckConsentResponse Check() {
    v1::CheckConsentRequest check;
    check.set_patient(patient_);
    check.set_procedure_code(kProcedure);
    auto r = ehr_consent_.CheckConsent(check);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::CheckConsentResponse();
  }

  // Opens the link and verifies with `dob`; returns the verify response.
  httplib::Result OpenAndVerify(Browser& b, const std::string& dob) {
    auto opened = b.Get("/l/" + link_);
    EXPECT_TRUE(opened);
    EXPECT_EQ(opened->status, 303);
    EXPECT_EQ(opened->get_header_value("Location"), "/verify");
    auto form = b.Get("/verify");
    EXPECT_EQ(form->status, 200);
    return b.Post("/verify", {{"csrf", CsrfOf(form->body)}, {"dob", dob}});
  }

  httplib::Params SignForm(const std::string& csrf) {
    return {{"csrf", csrf},
            {"ack", "dissociation"},
            {"ack", "no-driving"},
            {"ack", "withdraw"},
            {"printed_name", "Pat Zebulon"},
            {"intent", "agree"}};
  }

  TestServer server_;
  IdentityClient admin_{server_.ChannelFor(kAdmin)};
  IdentityClient ehr_identity_{server_.ChannelFor(kEhrA)};
  ConsentClient ehr_consent_{server_.ChannelFor(kEhrA)};
  ::careseal::testing::TestCa https_ca_ = ::careseal::testing::TestCa::Create();
  std::string ca_file_;
  std::string patient_, consent_, link_;
  std::unique_ptr<portal::PortalServer> portal_;
};

TEST_F(PortalTest, PatientSignsConsentThroughThePortal) {
  Browser b = NewBrowser();
  auto opened = b.Get("/l/" + link_);
  ASSERT_TRUE(opened);
  // Session cookie: HttpOnly, Secure, SameSite=Strict; the token left the URL.
  EXPECT_TRUE(absl::StrContains(b.last_set_cookie, "HttpOnly"));
  EXPECT_TRUE(absl::StrContains(b.last_set_cookie, "Secure"));
  EXPECT_TRUE(absl::StrContains(b.last_set_cookie, "SameSite=Strict"));
  EXPECT_FALSE(absl::StrContains(b.last_set_cookie, link_));
  EXPECT_EQ(opened->status, 303);
  EXPECT_EQ(opened->get_header_value("Location"), "/verify");
  for (const char* h : {"Content-Security-Policy", "Strict-Transport-Security",
                        "Referrer-Policy", "X-Content-Type-Options"}) {
    EXPECT_TRUE(opened->has_header(h)) << h;
  }
  EXPECT_TRUE(
      absl::StrContains(opened->get_header_value("Content-Security-Policy"),
                        "frame-ancestors 'none'"));
  EXPECT_EQ(opened->get_header_value("Referrer-Policy"), "no-referrer");

  const std::string pre_login_cookie = b.cookie();
  auto form = b.Get("/verify");
  ASSERT_EQ(form->status, 200);
  EXPECT_TRUE(absl::StrContains(form->body, "<label for=\"dob\">"));
  auto verified =
      b.Post("/verify", {{"csrf", CsrfOf(form->body)}, {"dob", "1984-02-29"}});
  ASSERT_EQ(verified->status, 303) << verified->body;
  EXPECT_EQ(verified->get_header_value("Location"), "/tasks");
  EXPECT_NE(b.cookie(), pre_login_cookie);  // a new id after verification

  auto tasks = b.Get("/tasks");
  ASSERT_EQ(tasks->status, 200) << tasks->body;
  EXPECT_TRUE(absl::StrContains(tasks->body, "href=\"/consent/0\""));
  EXPECT_TRUE(absl::StrContains(tasks->body,
                                "Consent to IV ketamine infusion therapy"));

  auto page = b.Get("/consent/0");
  ASSERT_EQ(page->status, 200) << page->body;
  const v1::ConsentTemplateVersion shown = KetamineConsent();
  for (const auto& a : shown.acknowledgements()) {
    EXPECT_TRUE(absl::StrContains(page->body, a.text())) << a.id();
    EXPECT_TRUE(absl::StrContains(page->body, "value=\"" + a.id() + "\""));
  }
  EXPECT_TRUE(absl::StrContains(page->body, "You may ask for a paper copy."));
  EXPECT_TRUE(absl::StrContains(page->body, "I agree and sign"));
  EXPECT_TRUE(absl::StrContains(page->body, "<h3>Risks</h3>"));
  EXPECT_FALSE(Check().valid());

  auto signed_page = b.Post("/consent/0/sign", SignForm(CsrfOf(page->body)));
  ASSERT_EQ(signed_page->status, 303) << signed_page->body;
  EXPECT_EQ(signed_page->get_header_value("Location"), "/done/0");
  auto done = b.Get("/done/0");
  ASSERT_EQ(done->status, 200);
  EXPECT_TRUE(absl::StrContains(done->body, "href=\"/receipt/0\""));

  const v1::CheckConsentResponse check = Check();
  EXPECT_TRUE(check.valid());
  EXPECT_EQ(check.consent(), consent_);

  // The downloaded receipt verifies offline with the published key.
  auto receipt = b.Get("/receipt/0");
  ASSERT_EQ(receipt->status, 200);
  EXPECT_TRUE(absl::StrContains(
      receipt->get_header_value("Content-Disposition"), "attachment"));
  auto keys = ehr_consent_.ListSigningKeys(v1::ListSigningKeysRequest());
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_GT(keys->signing_keys_size(), 0);
  auto verified_receipt = client::VerifyReceiptFile(
      receipt->body, keys->signing_keys(0).public_key_pem());
  ASSERT_TRUE(verified_receipt.ok()) << verified_receipt.status();
  EXPECT_EQ(verified_receipt->consent, consent_);
  EXPECT_EQ(verified_receipt->printed_name, "Pat Zebulon");
  EXPECT_EQ(verified_receipt->acknowledged_ids.size(), 3u);

  // Signing out ends the session; the cookie no longer opens pages.
  auto tasks_after = b.Get("/tasks");
  auto out = b.Post("/logout", {{"csrf", CsrfOf(tasks_after->body)}});
  EXPECT_EQ(out->status, 200);
  EXPECT_TRUE(b.cookie().empty());
  EXPECT_EQ(b.Get("/tasks")->status, 401);
}

TEST_F(PortalTest, StaticFilesAndErrorPagesCarryTheSecurityHeaders) {
  Browser b = NewBrowser();
  auto css = b.Get("/static/portal.css");
  ASSERT_EQ(css->status, 200);
  EXPECT_TRUE(
      absl::StartsWith(css->get_header_value("Content-Type"), "text/css"));
  auto js = b.Get("/static/portal.js");
  ASSERT_EQ(js->status, 200);
  EXPECT_TRUE(absl::StrContains(js->body, "Stay signed in"));
  for (const char* path : {"/nowhere", "/static/../CMakeLists.txt"}) {
    auto missing = b.Get(path);
    EXPECT_EQ(missing->status, 404) << path;
    EXPECT_TRUE(
        absl::StrContains(missing->get_header_value("Content-Security-Policy"),
                          "default-src 'self'"))
        << path;
    EXPECT_EQ(missing->get_header_value("X-Content-Type-Options"), "nosniff")
        << path;
  }
}

TEST_F(PortalTest, SigningTokenCountsOnlyForTheConsentTheLinkTargets) {
  // A task-list link (no target) with the consent's signing token appended:
  // the patient verifies and sees the consent but cannot sign it here.
  v1::CreatePatientLinkRequest link;
  link.set_parent(patient_);
  link.set_factor(v1::LINK_FACTOR_DATE_OF_BIRTH);
  auto list_link = ehr_identity_.CreatePatientLink(link);
  ASSERT_TRUE(list_link.ok()) << list_link.status();
  const std::string signing = link_.substr(link_.find('/') + 1);
  link_ = list_link->link_token() + "/" + signing;
  Browser b = NewBrowser();
  ASSERT_EQ(OpenAndVerify(b, "1984-02-29")->status, 303);
  ASSERT_EQ(b.Get("/tasks")->status, 200);
  auto page = b.Get("/consent/0");
  ASSERT_EQ(page->status, 200) << page->body;
  EXPECT_TRUE(absl::StrContains(page->body, "open the link your clinic"));
  EXPECT_FALSE(absl::StrContains(page->body, "I agree and sign"));
  auto refused = b.Post("/consent/0/sign", SignForm(CsrfOf(page->body)));
  EXPECT_EQ(refused->status, 409);
  EXPECT_TRUE(absl::StrContains(refused->body, "Nothing was signed"));
  EXPECT_FALSE(Check().valid());
}

TEST_F(PortalTest, PostWithoutCsrfTokenIsRefusedAndSignsNothing) {
  Browser b = NewBrowser();
  // Verification itself needs the token, and a refused one costs no try.
  b.Get("/l/" + link_);
  auto no_csrf = b.Post("/verify", {{"dob", "1984-02-29"}});
  EXPECT_EQ(no_csrf->status, 403);
  EXPECT_TRUE(absl::StrContains(no_csrf->body, "Nothing was signed"));
  auto form = b.Get("/verify");
  ASSERT_EQ(form->status, 200);
  ASSERT_EQ(
      b.Post("/verify", {{"csrf", CsrfOf(form->body)}, {"dob", "1984-02-29"}})
          ->status,
      303);
  b.Get("/tasks");
  auto page = b.Get("/consent/0");
  ASSERT_EQ(page->status, 200) << page->body;
  const std::string csrf = CsrfOf(page->body);

  httplib::Params missing = SignForm(csrf);
  missing.erase("csrf");
  auto refused = b.Post("/consent/0/sign", missing);
  EXPECT_EQ(refused->status, 403);
  EXPECT_TRUE(absl::StrContains(refused->body, "Nothing was signed"));
  auto wrong = b.Post("/consent/0/sign", SignForm(csrf + "x"));
  EXPECT_EQ(wrong->status, 403);
  const v1::CheckConsentResponse check = Check();
  EXPECT_FALSE(check.valid());
  EXPECT_EQ(check.reason(), v1::CONSENT_CHECK_REASON_PENDING_SIGNATURE);

  // A form missing the explicit "I agree and sign" intent signs nothing.
  httplib::Params no_intent = SignForm(csrf);
  no_intent.erase("intent");
  EXPECT_EQ(b.Post("/consent/0/sign", no_intent)->status, 400);
  EXPECT_FALSE(Check().valid());

  // The same form with its token signs: the refusals were the CSRF check.
  EXPECT_EQ(b.Post("/consent/0/sign", SignForm(csrf))->status, 303);
  EXPECT_TRUE(Check().valid());
}

TEST_F(PortalTest, ReusedLinkIsRefusedWithAClearPage) {
  Browser first = NewBrowser();
  ASSERT_EQ(OpenAndVerify(first, "1984-02-29")->status, 303);

  Browser second = NewBrowser();
  auto again = OpenAndVerify(second, "1984-02-29");
  EXPECT_EQ(again->status, 409);
  EXPECT_TRUE(absl::StrContains(again->body, "This link was already used"));
  EXPECT_TRUE(second.cookie().empty());
  EXPECT_EQ(second.Get("/tasks")->status, 401);
  EXPECT_FALSE(Check().valid());
}

TEST_F(PortalTest, WrongDateOfBirthFiveTimesLocksTheLink) {
  Browser b = NewBrowser();
  b.Get("/l/" + link_);
  for (int i = 1; i <= 4; ++i) {  // the 5th try below locks the link
    auto form = b.Get("/verify");
    ASSERT_EQ(form->status, 200) << i;
    auto wrong = b.Post("/verify",
                        {{"csrf", CsrfOf(form->body)}, {"dob", "1990-01-01"}});
    EXPECT_EQ(wrong->status, 403) << i;
    EXPECT_TRUE(absl::StrContains(wrong->body, "does not match")) << i;
  }
  auto form = b.Get("/verify");
  auto fifth =
      b.Post("/verify", {{"csrf", CsrfOf(form->body)}, {"dob", "1990-01-01"}});
  EXPECT_EQ(fifth->status, 403);
  EXPECT_TRUE(absl::StrContains(fifth->body, "does not match"));
  // Even the right date of birth no longer opens it.
  Browser retry = NewBrowser();
  auto right = OpenAndVerify(retry, "1984-02-29");
  EXPECT_EQ(right->status, 403);
  EXPECT_TRUE(absl::StrContains(right->body, "This link is locked"));
  EXPECT_FALSE(Check().valid());
}

TEST_F(PortalTest, IdleSessionEndsAfterFifteenMinutes) {
  Browser b = NewBrowser();
  ASSERT_EQ(OpenAndVerify(b, "1984-02-29")->status, 303);
  server_.clock().Advance(absl::Minutes(14));
  auto page = b.Get("/consent/0");  // activity keeps it alive
  ASSERT_EQ(b.Get("/tasks")->status, 200);
  page = b.Get("/consent/0");
  ASSERT_EQ(page->status, 200) << page->body;
  server_.clock().Advance(absl::Minutes(15));
  auto ended = b.Post("/consent/0/sign", SignForm(CsrfOf(page->body)));
  EXPECT_EQ(ended->status, 401);
  EXPECT_TRUE(absl::StrContains(ended->body, "Your session has ended"));
  EXPECT_FALSE(Check().valid());
}

}  // namespace
}  // namespace careseal
