// The patient portal end to end: real services (TestServer, mutual TLS,
// FakeClock) and careseal-portal's server on loopback HTTPS, driven over
// HTTP with cpp-httplib's client like a browser without JavaScript (cookie
// kept by hand, CSRF token read from the forms). A patient opens a one-time
// link, verifies with their date of birth, reads the consent and signs it;
// CheckConsent is then valid and the downloaded receipt verifies offline.
// Refusals: a POST without or with a wrong CSRF token, a reused link, a
// wrong date of birth five times (lock), an idle session — each with a clear
// page and nothing signed.
// Then the other flows: the patient acknowledges an infusion's instructions
// with the day-of checklist (readiness turns READY for the EHR); answers a
// PHQ-9 one question per screen with item 9 = 2 (the crisis page with 988
// and 911 follows at once, the escalation is in the clinician's queue); and
// exchanges messages with a clinician (unread badges, reply, new thread).
// Every new POST without its CSRF token is refused with nothing stored.
#include <httplib.h>

#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/followup_client.h"
#include "clients/cpp/identity_client.h"
#include "clients/cpp/messaging_client.h"
#include "clients/cpp/presession_client.h"
#include "clients/cpp/receipt.h"
#include "clients/portal/portal_impl.h"
#include "clients/portal/portal_server.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/instruction_fixtures.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kAdmin;
using ::careseal::testing::kClinicianA;
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
    // The link the EHR sends: RequestConsent's signing token is the link
    // (a date-of-birth patient link to this consent, Consent.signing_link).
    ASSERT_FALSE(requested->consent().signing_link().empty());
    link_ = requested->signing_token();

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
    options.time_zone = chicago_;
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

  absl::TimeZone LoadChicago() {
    absl::TimeZone tz;
    EXPECT_TRUE(absl::LoadTimeZone("America/Chicago", &tz));
    return tz;
  }

  TestServer server_;
  absl::TimeZone chicago_ = LoadChicago();
  IdentityClient admin_{server_.ChannelFor(kAdmin)};
  IdentityClient ehr_identity_{server_.ChannelFor(kEhrA)};
  ConsentClient ehr_consent_{server_.ChannelFor(kEhrA)};
  ::careseal::testing::TestCa https_ca_ = ::careseal::testing::TestCa::Create();
  std::string ca_file_;
  std::string patient_, consent_, link_;
  std::unique_ptr<portal::PortalServer> portal_;
};

// Documents are CommonMark rendered by libcmark in safe mode, headings one
// level below the page's title.
TEST(RenderMarkdownTest, CommonMarkSafeAndBelowThePageTitle) {
  const std::string html = portal::RenderMarkdown(
      "# Title\n\n## Risks\n- **dissociation**\n- *nausea*\n\n"
      "<script>alert(1)</script>\n\n[click](javascript:alert(1)) "
      "<img src=x onerror=alert(1)> a < b & c");
  EXPECT_TRUE(absl::StrContains(html, "<h2>Title</h2>")) << html;
  EXPECT_TRUE(absl::StrContains(html, "<h3>Risks</h3>")) << html;
  EXPECT_TRUE(absl::StrContains(html, "<strong>dissociation</strong>"));
  EXPECT_TRUE(absl::StrContains(html, "<em>nausea</em>"));
  EXPECT_FALSE(absl::StrContains(html, "<script")) << html;
  EXPECT_FALSE(absl::StrContains(html, "javascript:")) << html;
  EXPECT_FALSE(absl::StrContains(html, "onerror")) << html;
  EXPECT_TRUE(absl::StrContains(html, "a &lt; b &amp; c")) << html;
}

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

TEST_F(PortalTest, ALinkTheEhrMadeForTheConsentSignsWithTheSigningToken) {
  // The two-token form /l/<link>/<signing>: an EHR-made link to the consent
  // (verified with the date of birth) carries the consent's signing token.
  v1::CreatePatientLinkRequest link;
  link.set_parent(patient_);
  link.set_target(consent_);
  link.set_factor(v1::LINK_FACTOR_DATE_OF_BIRTH);
  auto made = ehr_identity_.CreatePatientLink(link);
  ASSERT_TRUE(made.ok()) << made.status();
  link_ = made->link_token() + "/" + link_;
  Browser b = NewBrowser();
  ASSERT_EQ(OpenAndVerify(b, "1984-02-29")->status, 303);
  ASSERT_EQ(b.Get("/tasks")->status, 200);
  auto page = b.Get("/consent/0");
  ASSERT_EQ(page->status, 200) << page->body;
  auto signed_page = b.Post("/consent/0/sign", SignForm(CsrfOf(page->body)));
  ASSERT_EQ(signed_page->status, 303) << signed_page->body;
  EXPECT_TRUE(Check().valid());
}

TEST_F(PortalTest, SigningTokenCountsOnlyForTheConsentTheLinkTargets) {
  // A task-list link (no target) with the consent's signing token appended:
  // the patient verifies and sees the consent but cannot sign it here.
  v1::CreatePatientLinkRequest link;
  link.set_parent(patient_);
  link.set_factor(v1::LINK_FACTOR_DATE_OF_BIRTH);
  auto list_link = ehr_identity_.CreatePatientLink(link);
  ASSERT_TRUE(list_link.ok()) << list_link.status();
  const std::string signing = link_;  // the consent's signing token
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

// Declining: a confirmation page, then DeclineConsent with the form's
// signing token; the consent is REJECTED, nothing is signed, and the form
// can no longer be signed here.
TEST_F(PortalTest, PatientDeclinesAFormAndNothingIsSigned) {
  Browser b = NewBrowser();
  ASSERT_EQ(OpenAndVerify(b, "1984-02-29")->status, 303);
  ASSERT_EQ(b.Get("/tasks")->status, 200);
  auto page = b.Get("/consent/0");
  ASSERT_EQ(page->status, 200) << page->body;
  EXPECT_TRUE(absl::StrContains(page->body, "href=\"/consent/0/decline\""));
  auto confirm = b.Get("/consent/0/decline");
  ASSERT_EQ(confirm->status, 200) << confirm->body;
  EXPECT_TRUE(absl::StrContains(confirm->body, "Decline this form?"));
  const std::string csrf = CsrfOf(confirm->body);
  // Without the button's intent, or without the form's token: nothing.
  EXPECT_EQ(b.Post("/consent/0/decline", {{"csrf", csrf}})->status, 400);
  EXPECT_EQ(b.Post("/consent/0/decline", {{"intent", "decline"}})->status, 403);
  v1::GetConsentRequest get;
  get.set_name(consent_);
  EXPECT_EQ(ehr_consent_.GetConsent(get)->consent().state(),
            v1::CONSENT_STATE_PENDING);

  auto declined = b.Post("/consent/0/decline",
                         {{"csrf", csrf},
                          {"intent", "decline"},
                          {"reason", "I want to talk to my doctor first."}});
  ASSERT_EQ(declined->status, 303) << declined->body;
  EXPECT_EQ(declined->get_header_value("Location"), "/consent/0/declined");
  auto shown = b.Get("/consent/0/declined");
  ASSERT_EQ(shown->status, 200);
  EXPECT_TRUE(absl::StrContains(shown->body, "You declined this form"));
  EXPECT_EQ(ehr_consent_.GetConsent(get)->consent().state(),
            v1::CONSENT_STATE_REJECTED);
  EXPECT_FALSE(Check().valid());

  auto tasks = b.Get("/tasks");
  EXPECT_TRUE(absl::StrContains(tasks->body, "Declined: "));
  EXPECT_FALSE(absl::StrContains(tasks->body, "Read and sign"));
  // The signing token is spent: signing or declining again does nothing.
  auto sign = b.Post("/consent/0/sign", SignForm(csrf));
  EXPECT_EQ(sign->status, 409);
  EXPECT_EQ(
      b.Post("/consent/0/decline", {{"csrf", csrf}, {"intent", "decline"}})
          ->status,
      409);
  EXPECT_EQ(ehr_consent_.GetConsent(get)->consent().state(),
            v1::CONSENT_STATE_REJECTED);
}

// Withdrawing: a signed form is listed under "Your signed forms", also in a
// later session opened from a task-list link; after the confirmation page
// CheckConsent answers WITHDRAWN at once.
TEST_F(PortalTest, PatientWithdrawsASignedConsentInALaterSession) {
  {
    Browser b = NewBrowser();
    ASSERT_EQ(OpenAndVerify(b, "1984-02-29")->status, 303);
    ASSERT_EQ(b.Get("/tasks")->status, 200);
    auto page = b.Get("/consent/0");
    ASSERT_EQ(b.Post("/consent/0/sign", SignForm(CsrfOf(page->body)))->status,
              303);
    auto tasks = b.Get("/tasks");
    EXPECT_TRUE(absl::StrContains(tasks->body, "Your signed forms"));
    EXPECT_TRUE(absl::StrContains(tasks->body, "href=\"/receipt/0\""));
    EXPECT_TRUE(absl::StrContains(tasks->body, "href=\"/consent/0/withdraw\""));
  }
  ASSERT_TRUE(Check().valid());

  v1::CreatePatientLinkRequest link;
  link.set_parent(patient_);
  link.set_factor(v1::LINK_FACTOR_DATE_OF_BIRTH);
  auto list_link = ehr_identity_.CreatePatientLink(link);
  ASSERT_TRUE(list_link.ok()) << list_link.status();
  link_ = list_link->link_token();
  Browser b = NewBrowser();
  ASSERT_EQ(OpenAndVerify(b, "1984-02-29")->status, 303);
  auto tasks = b.Get("/tasks");
  ASSERT_EQ(tasks->status, 200);
  EXPECT_TRUE(absl::StrContains(tasks->body, "Your signed forms"));
  EXPECT_TRUE(absl::StrContains(tasks->body, "href=\"/consent/0/withdraw\""))
      << tasks->body;
  auto confirm = b.Get("/consent/0/withdraw");
  ASSERT_EQ(confirm->status, 200) << confirm->body;
  EXPECT_TRUE(absl::StrContains(confirm->body, "Withdraw your consent?"));
  EXPECT_TRUE(absl::StrContains(confirm->body, "It takes effect at once"));
  const std::string csrf = CsrfOf(confirm->body);
  EXPECT_EQ(b.Post("/consent/0/withdraw", {{"intent", "withdraw"}})->status,
            403);
  EXPECT_EQ(b.Post("/consent/0/withdraw", {{"csrf", csrf}})->status, 400);
  EXPECT_TRUE(Check().valid());

  auto withdrawn = b.Post(
      "/consent/0/withdraw",
      {{"csrf", csrf}, {"intent", "withdraw"}, {"reason", "Changed my mind."}});
  ASSERT_EQ(withdrawn->status, 303) << withdrawn->body;
  EXPECT_EQ(withdrawn->get_header_value("Location"), "/consent/0/withdrawn");
  EXPECT_TRUE(absl::StrContains(b.Get("/consent/0/withdrawn")->body,
                                "Your consent is withdrawn"));
  const v1::CheckConsentResponse check = Check();
  EXPECT_FALSE(check.valid());
  EXPECT_EQ(check.reason(), v1::CONSENT_CHECK_REASON_WITHDRAWN);
  tasks = b.Get("/tasks");
  EXPECT_TRUE(absl::StrContains(tasks->body, "Withdrawn: "));
  EXPECT_FALSE(absl::StrContains(tasks->body, "href=\"/consent/0/withdraw\""));
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
    // The count comes from the service's attempts_remaining metadata.
    EXPECT_TRUE(absl::StrContains(
        wrong->body, absl::StrCat(5 - i, i == 4 ? " try" : " tries",
                                  " left before this link locks")))
        << wrong->body;
  }
  auto form = b.Get("/verify");
  auto fifth =
      b.Post("/verify", {{"csrf", CsrfOf(form->body)}, {"dob", "1990-01-01"}});
  EXPECT_EQ(fifth->status, 403);
  EXPECT_TRUE(absl::StrContains(fifth->body, "This link is locked"));
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

// The index in the first link "href=\"<prefix><n>\"" of a page, or -1.
int LinkIndex(const std::string& html, const std::string& prefix) {
  std::smatch m;
  const std::regex re("href=\"" + prefix + "([0-9]+)\"");
  int n = -1;
  if (std::regex_search(html, m, re)) (void)absl::SimpleAtoi(m[1].str(), &n);
  return n;
}

google::protobuf::Timestamp Ts(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

class PortalFlowsTest : public PortalTest {
 protected:
  // Opens the fixture's link and verifies.
  void SignIn(Browser& b) {
    EXPECT_EQ(OpenAndVerify(b, "1984-02-29")->status, 303);
  }

  void SignConsent(Browser& b) {
    ASSERT_EQ(b.Get("/tasks")->status, 200);
    auto page = b.Get("/consent/0");
    ASSERT_EQ(page->status, 200) << page->body;
    ASSERT_EQ(b.Post("/consent/0/sign", SignForm(CsrfOf(page->body)))->status,
              303);
    ASSERT_TRUE(Check().valid());
  }

  // The clinic's pre-infusion instructions, made the tenant default.
  void PublishInstructions() {
    auto published = testing::PublishDefaultInstructions(
        ehr_presession_, admin_presession_, "tenants/clinic-a");
    ASSERT_TRUE(published.ok()) << published.status();
  }

  int Attestations(const std::string& session) {
    v1::ListAttestationsRequest list;
    list.set_parent(session);
    auto r = clinician_presession_.ListAttestations(list);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->attestations_size() : -1;
  }

  std::vector<v1::Escalation> Escalations() {
    v1::ListEscalationsRequest list;
    list.set_parent("tenants/clinic-a/patients/-");
    list.set_state(v1::ESCALATION_STATE_OPEN);
    auto r = clinician_followup_.ListEscalations(list);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->escalations().begin(), r->escalations().end()};
  }

  std::vector<v1::Message> ThreadMessages(const std::string& thread) {
    v1::ListMessagesRequest list;
    list.set_parent(thread);
    list.set_page_size(100);
    auto r = clinician_messaging_.ListMessages(list);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->messages().begin(), r->messages().end()};
  }

  nlohmann::json Inbox(Browser& b) {
    auto r = b.Get("/api/inbox");
    EXPECT_TRUE(r);
    if (!r || r->status != 200) return nlohmann::json();
    return nlohmann::json::parse(r->body);
  }

  client::PreSessionClient ehr_presession_{server_.ChannelFor(kEhrA)};
  client::PreSessionClient admin_presession_{server_.ChannelFor(kAdmin)};
  client::PreSessionClient clinician_presession_{
      server_.ChannelFor(kClinicianA)};
  client::FollowUpClient clinician_followup_{server_.ChannelFor(kClinicianA)};
  client::MessagingClient clinician_messaging_{server_.ChannelFor(kClinicianA)};
};

TEST_F(PortalFlowsTest, PatientAcknowledgesInstructionsAndBecomesReady) {
  PublishInstructions();
  // A whole minute, so the form's minute-precision times are exact.
  const int64_t now_s = absl::ToUnixSeconds(server_.clock().Now());
  server_.clock().Set(absl::FromUnixSeconds((now_s / 60 + 1) * 60));
  const absl::Time now = server_.clock().Now();
  const absl::Time start = now + absl::Minutes(150);  // the checklist is open
  v1::CreateSessionRequest create;
  create.set_parent(patient_);
  create.mutable_session()->set_procedure_code(kProcedure);
  create.mutable_session()->set_kind(v1::SESSION_KIND_MAINTENANCE);
  *create.mutable_session()->mutable_start_time() = Ts(start);
  create.mutable_session()->set_location("Suite 2");
  auto session = ehr_presession_.CreateSession(create);
  ASSERT_TRUE(session.ok()) << session.status();
  const std::string name = session->session().name();
  auto readiness = [&] {
    v1::CheckSessionReadinessRequest check;
    check.set_session(name);
    auto r = ehr_presession_.CheckSessionReadiness(check);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->readiness() : v1::SessionReadiness();
  };

  Browser b = NewBrowser();
  SignIn(b);
  SignConsent(b);
  auto tasks = b.Get("/tasks");
  ASSERT_EQ(tasks->status, 200);
  EXPECT_TRUE(absl::StrContains(tasks->body, "Before your infusion"));
  EXPECT_FALSE(absl::StrContains(tasks->body, "tenants/"));  // no names
  const int n = LinkIndex(tasks->body, "/instructions/");
  ASSERT_GE(n, 0) << tasks->body;
  EXPECT_EQ(readiness().state(), v1::READINESS_STATE_NOT_READY);

  const std::string path = absl::StrCat("/instructions/", n);
  auto page = b.Get(path);
  ASSERT_EQ(page->status, 200) << page->body;
  for (const char* shown :
       {"<h1>Before your ketamine infusion</h1>", "No solid food after",
        "Clear liquids", "Benzodiazepines: take or hold", "photo ID", "Suite 2",
        "No driving, machinery", "Today's checklist",
        "<label for=\"last_solid_food\">", "<label for=\"escort_phone\">",
        "name=\"holds\" value=\"unsure\"", "value=\"none\"",
        "Send my answers"}) {
    EXPECT_TRUE(absl::StrContains(page->body, shown)) << shown;
  }
  const std::string csrf = CsrfOf(page->body);
  httplib::Params form = {
      {"csrf", csrf},
      {"ack", "no-driving"},
      {"last_solid_food",
       absl::FormatTime("%Y-%m-%dT%H:%M", start - absl::Hours(8), chicago_)},
      {"last_clear_liquid",
       absl::FormatTime("%Y-%m-%dT%H:%M", start - absl::Hours(3), chicago_)},
      {"escort_name", "Sam Escort"},
      {"escort_phone", "(555) 555-0123"},
      {"holds", "yes"},
      {"contraindication", "none"},
      {"symptoms_note", ""}};

  // Refusals store nothing: no CSRF token; no contraindication answer; a
  // time in the future.
  httplib::Params no_csrf = form;
  no_csrf.erase("csrf");
  auto refused = b.Post(path + "/acknowledge", no_csrf);
  EXPECT_EQ(refused->status, 403);
  EXPECT_TRUE(absl::StrContains(refused->body, "Nothing was signed or saved"));
  httplib::Params unanswered = form;
  unanswered.erase("contraindication");
  refused = b.Post(path + "/acknowledge", unanswered);
  EXPECT_EQ(refused->status, 400);
  EXPECT_TRUE(absl::StrContains(refused->body, "None of these"));
  EXPECT_TRUE(absl::StrContains(refused->body, "Nothing was saved"));
  httplib::Params future = form;
  future.erase("last_clear_liquid");
  future.emplace(
      "last_clear_liquid",
      absl::FormatTime("%Y-%m-%dT%H:%M", now + absl::Hours(1), chicago_));
  refused = b.Post(path + "/acknowledge", future);
  EXPECT_EQ(refused->status, 400);
  EXPECT_TRUE(absl::StrContains(refused->body, "A time is in the future"));
  EXPECT_EQ(Attestations(name), 0);

  auto sent = b.Post(path + "/acknowledge", form);
  ASSERT_EQ(sent->status, 303) << sent->body;
  EXPECT_EQ(sent->get_header_value("Location"), path + "/done");
  auto done = b.Get(path + "/done");
  ASSERT_EQ(done->status, 200);
  EXPECT_TRUE(absl::StrContains(done->body, "Thank you"));
  EXPECT_EQ(Attestations(name), 1);

  // The EHR asks: READY, on the patient's attestation.
  const v1::SessionReadiness ready = readiness();
  EXPECT_EQ(ready.state(), v1::READINESS_STATE_READY) << ready.DebugString();
  EXPECT_FALSE(ready.attestation().empty());
  v1::ListAttestationsRequest list;
  list.set_parent(name);
  auto stored = clinician_presession_.ListAttestations(list);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->attestations_size(), 1);
  const v1::Attestation& a = stored->attestations(0);
  EXPECT_EQ(a.attested_by().role(), v1::ROLE_PATIENT);
  EXPECT_EQ(a.checklist().escort().phone(), "+15555550123");
  EXPECT_EQ(a.checklist().last_solid_food_time().seconds(),
            absl::ToUnixSeconds(start - absl::Hours(8)));
  EXPECT_EQ(a.checklist().medication_holds_followed(),
            v1::MEDICATION_HOLDS_ANSWER_YES);
  tasks = b.Get("/tasks");
  EXPECT_TRUE(absl::StrContains(tasks->body, "done, thank you"));
}

TEST_F(PortalFlowsTest, Phq9OneQuestionPerScreenShowsCrisisResourcesAtOnce) {
  v1::SendCheckInRequest send;
  send.set_parent(patient_);
  send.add_instruments("instruments/phq-9");
  send.add_instruments("instruments/gad-7");
  send.set_note("Please fill this in before Thursday.");
  auto sent = clinician_followup_.SendCheckIn(send);
  ASSERT_TRUE(sent.ok()) << sent.status();

  Browser b = NewBrowser();
  SignIn(b);
  auto tasks = b.Get("/tasks");
  ASSERT_EQ(tasks->status, 200) << tasks->body;
  EXPECT_TRUE(absl::StrContains(tasks->body, "PHQ-9, GAD-7"));
  const int n = LinkIndex(tasks->body, "/checkin/");
  ASSERT_GE(n, 0) << tasks->body;
  const std::string base = absl::StrCat("/checkin/", n);
  auto intro = b.Get(base);
  ASSERT_EQ(intro->status, 200) << intro->body;
  EXPECT_TRUE(absl::StrContains(intro->body, "before Thursday"));
  EXPECT_TRUE(absl::StrContains(intro->body, "href=\"" + base + "/q/0\""));
  EXPECT_TRUE(absl::StrContains(intro->body, ">Start</a>"));

  // Items 1-8, one per screen; nothing is submitted yet.
  for (int k = 0; k < 8; ++k) {
    const std::string q = absl::StrCat(base, "/q/", k);
    auto screen = b.Get(q);
    ASSERT_EQ(screen->status, 200) << k << screen->body;
    EXPECT_TRUE(absl::StrContains(screen->body,
                                  absl::StrCat("Question ", k + 1, " of 10")))
        << k;
    EXPECT_TRUE(absl::StrContains(screen->body, "Over the last 2 weeks"));
    EXPECT_TRUE(absl::StrContains(screen->body, "More than half the days"));
    // One question: four options of one radio group.
    EXPECT_TRUE(absl::StrContains(screen->body, "id=\"a-3\""));
    EXPECT_FALSE(absl::StrContains(screen->body, "id=\"a-4\""));
    if (k == 0) {
      EXPECT_TRUE(
          absl::StrContains(screen->body, "Little interest or pleasure"));
      // No answer chosen: the same question again, nothing kept.
      auto empty = b.Post(q, {{"csrf", CsrfOf(screen->body)}});
      EXPECT_EQ(empty->status, 400);
      EXPECT_TRUE(absl::StrContains(empty->body, "Please choose an answer"));
    }
    auto next = b.Post(q, {{"csrf", CsrfOf(screen->body)}, {"answer", "1"}});
    ASSERT_EQ(next->status, 303) << k << next->body;
    EXPECT_EQ(next->get_header_value("Location"),
              absl::StrCat(base, "/q/", k + 1));
  }
  EXPECT_TRUE(Escalations().empty());

  // Item 9 = 2. Without the CSRF token: refused, nothing submitted.
  const std::string q9 = base + "/q/8";
  auto item9 = b.Get(q9);
  ASSERT_EQ(item9->status, 200);
  EXPECT_TRUE(
      absl::StrContains(item9->body, "better off dead or of hurting yourself"));
  auto no_csrf = b.Post(q9, {{"answer", "2"}});
  EXPECT_EQ(no_csrf->status, 403);
  EXPECT_TRUE(Escalations().empty());
  auto answered = b.Post(q9, {{"csrf", CsrfOf(item9->body)}, {"answer", "2"}});
  ASSERT_EQ(answered->status, 303) << answered->body;
  // The very next screen is the crisis page, before the rest.
  EXPECT_EQ(answered->get_header_value("Location"), base + "/crisis");
  auto crisis = b.Get(base + "/crisis");
  ASSERT_EQ(crisis->status, 200);
  for (const char* shown :
       {"href=\"tel:988\"", "Call 988", "Text 988", "href=\"tel:911\"",
        "Call 911", "988 Suicide &amp; Crisis Lifeline",
        "Your care team has been told"}) {
    EXPECT_TRUE(absl::StrContains(crisis->body, shown)) << shown;
  }
  // The escalation is in the care team's queue already.
  const std::vector<v1::Escalation> queue = Escalations();
  ASSERT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue[0].trigger(), v1::ESCALATION_TRIGGER_PHQ9_ITEM9);
  EXPECT_EQ(queue[0].priority(), v1::ESCALATION_PRIORITY_URGENT);
  EXPECT_TRUE(absl::StartsWith(queue[0].name(), patient_ + "/"));
  v1::ListQuestionnaireResponsesRequest responses;
  responses.set_parent(patient_);
  auto phq = clinician_followup_.ListQuestionnaireResponses(responses);
  ASSERT_TRUE(phq.ok()) << phq.status();
  ASSERT_EQ(phq->responses_size(), 1);
  EXPECT_EQ(phq->responses(0).score(), 10);  // 8 x 1 + 2
  EXPECT_EQ(phq->responses(0).check_in(), sent->check_in().name());

  // Continue goes on with the GAD-7 (item 10 of the PHQ-9 is optional).
  const std::string gad = base + "/q/10";
  EXPECT_TRUE(absl::StrContains(crisis->body, "href=\"" + gad + "\""));
  for (int k = 10; k < 17; ++k) {
    const std::string q = absl::StrCat(base, "/q/", k);
    auto screen = b.Get(q);
    ASSERT_EQ(screen->status, 200) << k << screen->body;
    EXPECT_TRUE(absl::StrContains(screen->body, "GAD-7"));
    EXPECT_TRUE(
        absl::StrContains(screen->body, k == 16 ? "Send answers" : ">Next<"));
    auto next = b.Post(q, {{"csrf", CsrfOf(screen->body)}, {"answer", "0"}});
    ASSERT_EQ(next->status, 303) << k << next->body;
  }
  auto done = b.Get(base + "/done");
  ASSERT_EQ(done->status, 200) << done->body;
  EXPECT_TRUE(absl::StrContains(done->body, "your answers were sent"));
  v1::GetCheckInRequest get;
  get.set_name(sent->check_in().name());
  auto check_in = clinician_followup_.GetCheckIn(get);
  ASSERT_TRUE(check_in.ok());
  EXPECT_EQ(check_in->check_in().state(), v1::CHECK_IN_STATE_COMPLETED);
  EXPECT_EQ(Escalations().size(), 1u);
}

TEST_F(PortalFlowsTest, PatientAndClinicianExchangeMessages) {
  v1::CreateThreadRequest create;
  create.set_parent(patient_);
  create.mutable_thread()->set_subject("About your next infusion");
  create.mutable_thread()->set_category(v1::THREAD_CATEGORY_GENERAL);
  auto thread = clinician_messaging_.CreateThread(create);
  ASSERT_TRUE(thread.ok()) << thread.status();
  const std::string name = thread->thread().name();
  v1::SendMessageRequest send;
  send.set_parent(name);
  send.set_text("Hello Pat,\nhow are you feeling today?");
  send.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
  ASSERT_TRUE(clinician_messaging_.SendMessage(send).ok());

  Browser b = NewBrowser();
  SignIn(b);
  nlohmann::json inbox = Inbox(b);
  EXPECT_EQ(inbox["total_unread"], 1);
  EXPECT_FALSE(absl::StrContains(inbox.dump(), "feeling"));  // counts only
  auto tasks = b.Get("/tasks");
  EXPECT_TRUE(absl::StrContains(tasks->body, "You have 1 unread message"));
  auto threads = b.Get("/messages");
  ASSERT_EQ(threads->status, 200) << threads->body;
  EXPECT_TRUE(absl::StrContains(threads->body, "About your next infusion"));
  EXPECT_TRUE(absl::StrContains(threads->body, "1 unread"));
  EXPECT_TRUE(absl::StrContains(threads->body, "href=\"/messages/0\""));
  inbox = Inbox(b);
  ASSERT_EQ(inbox["threads"].size(), 1u);
  EXPECT_EQ(inbox["threads"][0]["index"], 0);
  EXPECT_EQ(inbox["threads"][0]["unread"], 1);

  auto page = b.Get("/messages/0");
  ASSERT_EQ(page->status, 200) << page->body;
  EXPECT_TRUE(absl::StrContains(page->body, "Hello Pat,<br>how are you"));
  EXPECT_TRUE(absl::StrContains(page->body, "Your care team"));
  EXPECT_TRUE(absl::StrContains(page->body, "Send reply"));
  EXPECT_FALSE(absl::StrContains(page->body, "tenants/"));
  EXPECT_EQ(Inbox(b)["total_unread"], 0);  // read when shown

  // A reply without the CSRF token is refused and nothing is sent.
  const std::string csrf = CsrfOf(page->body);
  auto refused =
      b.Post("/messages/0/reply", {{"text", "Feeling fine, thank you."}});
  EXPECT_EQ(refused->status, 403);
  EXPECT_EQ(ThreadMessages(name).size(), 1u);
  auto replied = b.Post("/messages/0/reply",
                        {{"csrf", csrf}, {"text", "Feeling fine, thank you."}});
  ASSERT_EQ(replied->status, 303) << replied->body;
  EXPECT_EQ(replied->get_header_value("Location"), "/messages/0");
  std::vector<v1::Message> messages = ThreadMessages(name);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].text(), "Feeling fine, thank you.");
  EXPECT_EQ(messages[0].sender().role(), v1::ROLE_PATIENT);
  v1::GetUnreadCountsRequest counts;
  counts.set_parent("tenants/clinic-a/patients/-");
  auto team = clinician_messaging_.GetUnreadCounts(counts);
  ASSERT_TRUE(team.ok()) << team.status();
  EXPECT_EQ(team->total_unread(), 1);
  // The clinician's read shows on the patient's side ("read").
  v1::MarkReadRequest mark;
  mark.set_thread(name);
  mark.set_up_to_message(messages[0].name());
  ASSERT_TRUE(clinician_messaging_.MarkRead(mark).ok());

  // The clinician answers: the badge counts it, the open thread's live list
  // (what portal.js fetches) shows it.
  send.set_text("Good to hear. See you Thursday.");
  send.clear_request_id();
  ASSERT_TRUE(clinician_messaging_.SendMessage(send).ok());
  inbox = Inbox(b);
  EXPECT_EQ(inbox["total_unread"], 1);
  EXPECT_EQ(inbox["threads"][0]["unread"], 1);
  auto live = b.Get("/messages/0/list");
  ASSERT_EQ(live->status, 200);
  EXPECT_TRUE(absl::StrContains(live->body, "See you Thursday."));
  EXPECT_TRUE(absl::StrContains(live->body, " · read"));
  EXPECT_EQ(Inbox(b)["total_unread"], 0);

  // A new conversation; without the CSRF token nothing is created.
  auto form = b.Get("/messages/new");
  ASSERT_EQ(form->status, 200);
  EXPECT_TRUE(absl::StrContains(form->body, "Send message"));
  httplib::Params message = {{"subject", "Question about my dose"},
                             {"text", "Can I take my evening pill?"},
                             {"urgent", "1"}};
  EXPECT_EQ(b.Post("/messages/new", message)->status, 403);
  v1::ListThreadsRequest list;
  list.set_parent(patient_);
  EXPECT_EQ(clinician_messaging_.ListThreads(list)->threads_size(), 1);
  message.emplace("csrf", CsrfOf(form->body));
  auto created = b.Post("/messages/new", message);
  ASSERT_EQ(created->status, 303) << created->body;
  EXPECT_EQ(created->get_header_value("Location"), "/messages/1");
  auto listed = clinician_messaging_.ListThreads(list);
  ASSERT_EQ(listed->threads_size(), 2);
  EXPECT_EQ(listed->threads(0).subject(), "Question about my dose");
  messages = ThreadMessages(listed->threads(0).name());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].priority(), v1::MESSAGE_PRIORITY_URGENT);

  // Polling is not activity: the idle session still ends.
  server_.clock().Advance(absl::Minutes(14));
  EXPECT_EQ(b.Get("/api/inbox")->status, 200);
  server_.clock().Advance(absl::Minutes(2));
  EXPECT_EQ(b.Get("/api/inbox")->status, 401);
  EXPECT_EQ(b.Get("/messages")->status, 401);
}

}  // namespace
}  // namespace careseal
