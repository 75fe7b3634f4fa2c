// One token per consent link: RequestConsent makes a patient link
// (IdentityService) that targets the consent and needs the date of birth,
// and returns its token as the signing token. The EHR sends that one token;
// the portal redeems it with the second factor and signs with it.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/identity_client.h"
#include "gtest/gtest.h"
#include "tests/testing/consent_fixtures.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kAdmin;
using ::careseal::testing::kEhrA;
using ::careseal::testing::KetamineConsent;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using client::ConsentClient;
using client::ErrorReason;
using client::IdentityClient;
namespace v1 = ::careseal::v1;

constexpr char kProcedure[] = "ketamine-iv-induction";

v1::Date Dob(int y, int m, int d) {
  v1::Date out;
  out.set_year(y);
  out.set_month(m);
  out.set_day(d);
  return out;
}

class ConsentLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::CreateTenantRequest tenant;
    tenant.set_tenant_id("clinic-a");
    tenant.mutable_tenant()->set_display_name("Clinic A");
    tenant.mutable_tenant()->set_time_zone("America/Chicago");
    ASSERT_TRUE(admin_.CreateTenant(tenant).ok());
    v1::CreatePatientRequest p;
    p.set_parent("tenants/clinic-a");
    p.mutable_patient()->set_external_id("MRN-4711-XQ");
    *p.mutable_patient()->mutable_date_of_birth() = Dob(1984, 2, 29);
    auto created = ehr_identity_.CreatePatient(p);
    ASSERT_TRUE(created.ok()) << created.status();
    patient_ = created->patient().name();

    v1::CreateConsentTemplateRequest create;
    create.set_parent("tenants/clinic-a");
    create.set_consent_template_id("ketamine");
    create.mutable_consent_template()->set_display_name("IV ketamine");
    auto t = ehr_.CreateConsentTemplate(create);
    ASSERT_TRUE(t.ok()) << t.status();
    v1::PublishConsentTemplateVersionRequest publish;
    publish.set_parent(t->consent_template().name());
    *publish.mutable_version() = KetamineConsent();
    ASSERT_TRUE(ehr_.PublishConsentTemplateVersion(publish).ok());
  }

  absl::StatusOr<v1::RequestConsentResponse> Request(
      const std::string& patient, const std::string& request_id) {
    v1::RequestConsentRequest r;
    r.set_parent(patient);
    r.set_procedure_code(kProcedure);
    r.set_request_id(request_id);
    return ehr_.RequestConsent(r);
  }

  absl::StatusOr<v1::RedeemLinkResponse> Redeem(const std::string& token,
                                                v1::Date dob) {
    v1::RedeemLinkRequest r;
    r.set_link_token(token);
    *r.mutable_date_of_birth() = dob;
    r.set_client_address("198.51.100.7");
    return portal_identity_.RedeemLink(r);
  }

  absl::StatusOr<v1::SignConsentResponse> Sign(const std::string& consent,
                                               const std::string& token) {
    v1::GetConsentDocumentRequest get;
    get.set_signing_token(token);
    auto doc = portal_.GetConsentDocument(get);
    if (!doc.ok()) return doc.status();
    EXPECT_EQ(doc->consent(), consent);
    v1::SignConsentRequest sign;
    sign.set_name(consent);
    sign.set_signing_token(token);
    sign.set_document_sha256(doc->document_sha256());
    for (const auto& a : doc->acknowledgements()) {
      sign.add_acknowledged_ids(a.id());
    }
    sign.set_intent_to_sign(true);
    sign.set_printed_name("Pat Zebulon");
    sign.set_signature_meaning(doc->signature_meaning());
    sign.set_signing_method(v1::SIGNING_METHOD_TYPED_NAME);
    sign.set_request_id(client::NewRequestId());
    return portal_.SignConsent(sign);
  }

  bool Valid(const std::string& patient) {
    v1::CheckConsentRequest check;
    check.set_patient(patient);
    check.set_procedure_code(kProcedure);
    auto c = ehr_.CheckConsent(check);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() && c->valid();
  }

  TestServer server_;
  IdentityClient admin_{server_.ChannelFor(kAdmin)};
  IdentityClient ehr_identity_{server_.ChannelFor(kEhrA)};
  IdentityClient portal_identity_{server_.ChannelFor(kPortal)};
  ConsentClient ehr_{server_.ChannelFor(kEhrA)};
  ConsentClient portal_{server_.ChannelFor(kPortal)};
  std::string patient_;
};

TEST_F(ConsentLinkTest, TheSigningTokenOpensThePortalAndSigns) {
  auto requested = Request(patient_, client::NewRequestId());
  ASSERT_TRUE(requested.ok()) << requested.status();
  const v1::Consent& consent = requested->consent();
  ASSERT_TRUE(absl::StartsWith(consent.signing_link(),
                               absl::StrCat(patient_, "/links/")))
      << consent.signing_link();
  const std::string token = requested->signing_token();

  // The link needs the second factor: a wrong date of birth counts a try.
  auto wrong = Redeem(token, Dob(1984, 3, 1));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorReason(wrong.status()), "SECOND_FACTOR_MISMATCH");
  auto redeemed = Redeem(token, Dob(1984, 2, 29));
  ASSERT_TRUE(redeemed.ok()) << redeemed.status();
  EXPECT_EQ(redeemed->patient(), patient_);
  EXPECT_EQ(redeemed->session().link(), consent.signing_link());
  EXPECT_EQ(redeemed->session().target(), consent.name());
  // Single use as a link.
  EXPECT_EQ(ErrorReason(Redeem(token, Dob(1984, 2, 29)).status()),
            "LINK_ALREADY_USED");

  // Redeeming did not spend it as a signing token; signing does.
  EXPECT_FALSE(Valid(patient_));
  auto signed_ = Sign(consent.name(), token);
  ASSERT_TRUE(signed_.ok()) << signed_.status();
  EXPECT_EQ(signed_->consent().state(), v1::CONSENT_STATE_ACTIVE);
  EXPECT_EQ(signed_->consent().signing_link(), consent.signing_link());
  EXPECT_TRUE(Valid(patient_));
  EXPECT_EQ(ErrorReason(Sign(consent.name(), token).status()),
            "SIGNING_TOKEN_USED");
}

TEST_F(ConsentLinkTest, ARetryGetsTheSameLinkWithAFreshToken) {
  const std::string request_id = client::NewRequestId();
  auto first = Request(patient_, request_id);
  ASSERT_TRUE(first.ok()) << first.status();
  auto retry = Request(patient_, request_id);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->consent().name(), first->consent().name());
  EXPECT_EQ(retry->consent().signing_link(), first->consent().signing_link());
  EXPECT_NE(retry->signing_token(), first->signing_token());
  // The lost answer's token is dead for both purposes; the fresh one works.
  EXPECT_EQ(
      ErrorReason(Redeem(first->signing_token(), Dob(1984, 2, 29)).status()),
      "LINK_NOT_FOUND");
  v1::GetConsentDocumentRequest get;
  get.set_signing_token(first->signing_token());
  EXPECT_EQ(portal_.GetConsentDocument(get).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(Redeem(retry->signing_token(), Dob(1984, 2, 29)).ok());
  ASSERT_TRUE(Sign(retry->consent().name(), retry->signing_token()).ok());
}

TEST_F(ConsentLinkTest, APatientWithoutAnIdentityRecordKeepsTheConsentToken) {
  const std::string unregistered = "tenants/clinic-a/patients/p-100";
  auto requested = Request(unregistered, client::NewRequestId());
  ASSERT_TRUE(requested.ok()) << requested.status();
  EXPECT_EQ(requested->consent().signing_link(), "");
  // No portal link to redeem, but the token still signs.
  EXPECT_EQ(ErrorReason(
                Redeem(requested->signing_token(), Dob(1984, 2, 29)).status()),
            "LINK_NOT_FOUND");
  auto signed_ = Sign(requested->consent().name(), requested->signing_token());
  ASSERT_TRUE(signed_.ok()) << signed_.status();
  EXPECT_TRUE(Valid(unregistered));
}

}  // namespace
}  // namespace careseal
