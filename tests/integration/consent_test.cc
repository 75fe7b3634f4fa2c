// Informed consent end to end, through the public C++ client over mutual
// TLS: publish -> request -> read the document -> sign -> check -> withdraw,
// idempotent retries, every refusal with nothing stored, and receipts that
// verify offline (also across a key rotation and a restart).
#include <string>

#include "absl/strings/str_cat.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/events_client.h"
#include "clients/cpp/receipt.h"
#include "gtest/gtest.h"
#include "services/consent/consent_module.h"
#include "tests/testing/consent_fixtures.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kClinicianA;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kEhrB;
using ::careseal::testing::KetamineConsent;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using client::CallOptions;
using client::ConsentClient;
using client::ErrorField;
using client::ErrorReason;
namespace v1 = ::careseal::v1;

constexpr char kProcedure[] = "ketamine-iv-induction";
constexpr char kPatient[] = "tenants/clinic-a/patients/p-100";

class ConsentTest : public ::testing::Test {
 protected:
  ConsentTest()
      : ehr_(server_.ChannelFor(kEhrA)),
        portal_(server_.ChannelFor(kPortal)),
        clinician_(server_.ChannelFor(kClinicianA)) {}

  std::string PublishTemplate(ConsentClient& as, const std::string& tenant,
                              const std::string& id) {
    v1::CreateConsentTemplateRequest create;
    create.set_parent("tenants/" + tenant);
    create.set_consent_template_id(id);
    create.mutable_consent_template()->set_display_name("IV ketamine");
    auto t = as.CreateConsentTemplate(create);
    EXPECT_TRUE(t.ok()) << t.status();
    v1::PublishConsentTemplateVersionRequest publish;
    publish.set_parent(t->consent_template().name());
    *publish.mutable_version() = KetamineConsent();
    auto v = as.PublishConsentTemplateVersion(publish);
    EXPECT_TRUE(v.ok()) << v.status();
    return v->version().name();
  }

  v1::RequestConsentResponse Request(const std::string& patient = kPatient) {
    v1::RequestConsentRequest request;
    request.set_parent(patient);
    request.set_procedure_code(kProcedure);
    auto r = ehr_.RequestConsent(request);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }

  v1::SignConsentRequest SignRequest(const v1::RequestConsentResponse& r) {
    v1::GetConsentDocumentRequest get;
    get.set_signing_token(r.signing_token());
    auto doc = portal_.GetConsentDocument(get);
    EXPECT_TRUE(doc.ok()) << doc.status();
    v1::SignConsentRequest sign;
    sign.set_name(r.consent().name());
    sign.set_signing_token(r.signing_token());
    sign.set_document_sha256(doc->document_sha256());
    for (const auto& a : doc->acknowledgements()) {
      sign.add_acknowledged_ids(a.id());
    }
    sign.set_intent_to_sign(true);
    sign.set_printed_name("Alex Q. Patient");
    sign.set_signature_meaning(doc->signature_meaning());
    sign.set_signing_method(v1::SIGNING_METHOD_TYPED_NAME);
    sign.set_request_id(client::NewRequestId());
    return sign;
  }

  v1::CheckConsentResponse Check(const std::string& patient = kPatient) {
    v1::CheckConsentRequest check;
    check.set_patient(patient);
    check.set_procedure_code(kProcedure);
    auto c = ehr_.CheckConsent(check);
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  }

  v1::Consent Get(const std::string& name) {
    v1::GetConsentRequest get;
    get.set_name(name);
    auto c = ehr_.GetConsent(get);
    EXPECT_TRUE(c.ok()) << c.status();
    return c->consent();
  }

  std::string PublicKeyPem(const std::string& key_id) {
    auto keys = ehr_.ListSigningKeys({});
    EXPECT_TRUE(keys.ok()) << keys.status();
    for (const auto& k : keys->signing_keys()) {
      if (k.key_id() == key_id) return k.public_key_pem();
    }
    ADD_FAILURE() << "no published key " << key_id;
    return "";
  }

  TestServer server_;
  ConsentClient ehr_;
  ConsentClient portal_;
  ConsentClient clinician_;
};

TEST_F(ConsentTest, PublishRequestSignCheckWithdrawCheck) {
  const std::string version = PublishTemplate(ehr_, "clinic-a", "ketamine");
  EXPECT_EQ(version, "tenants/clinic-a/consentTemplates/ketamine/versions/1");

  v1::RequestConsentResponse request = Request();
  EXPECT_EQ(request.consent().state(), v1::CONSENT_STATE_PENDING);
  EXPECT_EQ(request.consent().template_version(), version);
  EXPECT_FALSE(request.signing_token().empty());
  EXPECT_EQ(Check().reason(), v1::CONSENT_CHECK_REASON_PENDING_SIGNATURE);

  v1::SignConsentRequest sign = SignRequest(request);
  auto signed_ = portal_.SignConsent(sign);
  ASSERT_TRUE(signed_.ok()) << signed_.status();
  EXPECT_EQ(signed_->consent().state(), v1::CONSENT_STATE_ACTIVE);
  const v1::ConsentReceipt& receipt = signed_->receipt();
  EXPECT_EQ(receipt.consent(), request.consent().name());
  EXPECT_EQ(receipt.printed_name(), "Alex Q. Patient");
  EXPECT_EQ(receipt.signature_meaning(), "Consent to treatment");
  EXPECT_EQ(receipt.acknowledged_ids_size(), 6);
  EXPECT_EQ(receipt.document_sha256(), request.consent().document_sha256());

  v1::CheckConsentResponse valid = Check();
  EXPECT_TRUE(valid.valid());
  EXPECT_EQ(valid.reason(), v1::CONSENT_CHECK_REASON_NONE);
  EXPECT_EQ(valid.consent(), request.consent().name());

  server_.clock().Advance(absl::Hours(48));
  v1::WithdrawConsentRequest withdraw;
  withdraw.set_name(request.consent().name());
  withdraw.set_reason("Patient asked to stop treatment");
  auto withdrawn = clinician_.WithdrawConsent(withdraw);
  ASSERT_TRUE(withdrawn.ok()) << withdrawn.status();
  EXPECT_EQ(withdrawn->consent().state(), v1::CONSENT_STATE_WITHDRAWN);

  v1::CheckConsentResponse invalid = Check();
  EXPECT_FALSE(invalid.valid());
  EXPECT_EQ(invalid.reason(), v1::CONSENT_CHECK_REASON_WITHDRAWN);
  // The withdrawal does not rewrite history: it was valid before.
  v1::CheckConsentRequest before;
  before.set_patient(kPatient);
  before.set_procedure_code(kProcedure);
  *before.mutable_at_time() = withdrawn->consent().sign_time();
  EXPECT_TRUE(ehr_.CheckConsent(before)->valid());
  // The signed record keeps its receipt after withdrawal.
  v1::Consent after = Get(request.consent().name());
  EXPECT_EQ(after.receipt().payload(), receipt.payload());
  EXPECT_EQ(after.end_reason(), "Patient asked to stop treatment");
}

TEST_F(ConsentTest, CorruptStoredDocumentIsAnErrorNotACrash) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  v1::RequestConsentResponse request = Request();
  v1::GetConsentDocumentRequest get;
  get.set_signing_token(request.signing_token());
  ASSERT_TRUE(portal_.GetConsentDocument(get).ok());
  // Documents altered in storage, each member in turn of a type the
  // service never writes.
  for (const char* document :
       {"not json", "[]", R"({"title":7})", R"({"acknowledgements":{}})",
        R"({"acknowledgements":[7]})", R"({"acknowledgements":[{"id":7}]})",
        R"({"acknowledgements":[{"id":"a","required":"yes"}]})",
        R"({"procedure_codes":[7]})"}) {
    SCOPED_TRACE(document);
    absl::Status s = server_.env().db->WriteAndWait([&](sql::Txn& txn) {
      return txn
          .Exec("UPDATE consent_template_versions SET canonical_document = ?",
                {sql::Bytes(document)})
          .status();
    });
    ASSERT_TRUE(s.ok()) << s;
    auto doc = portal_.GetConsentDocument(get);
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(client::ErrorReason(doc.status()), "DOCUMENT_CORRUPT");
  }
  EXPECT_EQ(Check().reason(), v1::CONSENT_CHECK_REASON_PENDING_SIGNATURE);
}

TEST_F(ConsentTest, RetryWithSameRequestIdReturnsByteIdenticalReceipt) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  v1::SignConsentRequest sign = SignRequest(Request());
  auto first = portal_.SignConsent(sign);
  ASSERT_TRUE(first.ok()) << first.status();
  server_.clock().Advance(absl::Seconds(5));
  auto again = portal_.SignConsent(sign);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->receipt().payload(), first->receipt().payload());
  EXPECT_EQ(again->receipt().signature(), first->receipt().signature());

  v1::SignConsentRequest changed = sign;
  changed.set_printed_name("Someone Else");
  auto reused = portal_.SignConsent(changed);
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrorReason(reused.status()), "REQUEST_ID_REUSED");
}

TEST_F(ConsentTest, RequestIsIdempotentByRequestId) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  v1::RequestConsentRequest request;
  request.set_parent(kPatient);
  request.set_procedure_code(kProcedure);
  request.set_request_id(client::NewRequestId());
  auto first = ehr_.RequestConsent(request);
  auto second = ehr_.RequestConsent(request);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->consent().name(), second->consent().name());
  v1::ListConsentsRequest list;
  list.set_parent(kPatient);
  EXPECT_EQ(ehr_.ListConsents(list)->consents_size(), 1);
}

struct Refusal {
  const char* what;
  std::function<void(v1::SignConsentRequest&)> change;
  absl::StatusCode code;
  const char* reason;
  const char* field;
};

TEST_F(ConsentTest, BadSignaturesAreRefusedWithNothingStored) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  v1::RequestConsentResponse request = Request();
  const v1::SignConsentRequest good = SignRequest(request);
  const std::string png_with_bad_magic(64, 'x');
  const Refusal refusals[] = {
      {"wrong digest",
       [](auto& r) { r.set_document_sha256(std::string(32, '\x01')); },
       absl::StatusCode::kInvalidArgument, "DIGEST_MISMATCH",
       "document_sha256"},
      {"missing acknowledgement",
       [](auto& r) { r.mutable_acknowledged_ids()->RemoveLast(); },
       absl::StatusCode::kInvalidArgument, "ACKNOWLEDGEMENT_MISSING",
       "acknowledged_ids"},
      {"unknown acknowledgement",
       [](auto& r) { r.add_acknowledged_ids("not-in-document"); },
       absl::StatusCode::kInvalidArgument, "UNKNOWN_ACKNOWLEDGEMENT",
       "acknowledged_ids"},
      {"no intent", [](auto& r) { r.set_intent_to_sign(false); },
       absl::StatusCode::kInvalidArgument, "INTENT_REQUIRED", "intent_to_sign"},
      {"empty printed name", [](auto& r) { r.set_printed_name(""); },
       absl::StatusCode::kInvalidArgument, "INVALID_PRINTED_NAME",
       "printed_name"},
      {"whitespace printed name", [](auto& r) { r.set_printed_name("   "); },
       absl::StatusCode::kInvalidArgument, "INVALID_PRINTED_NAME",
       "printed_name"},
      {"oversized printed name",
       [](auto& r) { r.set_printed_name(std::string(201, 'a')); },
       absl::StatusCode::kInvalidArgument, "INVALID_PRINTED_NAME",
       "printed_name"},
      {"control character",
       [](auto& r) { r.set_printed_name("Alex\nPatient"); },
       absl::StatusCode::kInvalidArgument, "INVALID_PRINTED_NAME",
       "printed_name"},
      {"bidi override",
       [](auto& r) { r.set_printed_name("Alex \u202ePatient"); },
       absl::StatusCode::kInvalidArgument, "INVALID_PRINTED_NAME",
       "printed_name"},
      {"unspecified method",
       [](auto& r) { r.set_signing_method(v1::SIGNING_METHOD_UNSPECIFIED); },
       absl::StatusCode::kInvalidArgument, "INVALID_ENUM_VALUE",
       "signing_method"},
      {"unknown enum value",
       [](auto& r) {
         r.set_signing_method(static_cast<v1::SigningMethod>(77));
       },
       absl::StatusCode::kInvalidArgument, "INVALID_ENUM_VALUE",
       "signing_method"},
      {"drawn signature that is not a PNG",
       [&](auto& r) {
         r.set_signing_method(v1::SIGNING_METHOD_TYPED_NAME_WITH_DRAWN);
         r.set_drawn_signature_png(png_with_bad_magic);
       },
       absl::StatusCode::kInvalidArgument, "INVALID_SIGNATURE_IMAGE",
       "drawn_signature_png"},
      {"meaning not the displayed one",
       [](auto& r) { r.set_signature_meaning("Something else"); },
       absl::StatusCode::kInvalidArgument, "SIGNATURE_MEANING_MISMATCH",
       "signature_meaning"},
      {"wrong token",
       [](auto& r) { r.set_signing_token("AAAAAAAAAAAAAAAAAAAAAA"); },
       absl::StatusCode::kPermissionDenied, "SIGNING_TOKEN_INVALID", ""},
      {"bad request id", [](auto& r) { r.set_request_id("not-a-uuid"); },
       absl::StatusCode::kInvalidArgument, "INVALID_REQUEST_ID", "request_id"},
      {"malformed name",
       [](auto& r) { r.set_name("tenants/clinic-a/consents/x"); },
       absl::StatusCode::kInvalidArgument, "INVALID_NAME", "name"},
  };
  for (const Refusal& refusal : refusals) {
    v1::SignConsentRequest bad = good;
    bad.set_request_id(client::NewRequestId());
    refusal.change(bad);
    CallOptions once;
    once.max_attempts = 1;
    auto result = portal_.SignConsent(bad, once);
    EXPECT_EQ(result.status().code(), refusal.code)
        << refusal.what << ": " << result.status();
    EXPECT_EQ(ErrorReason(result.status()), refusal.reason) << refusal.what;
    EXPECT_EQ(ErrorField(result.status()), refusal.field) << refusal.what;
  }
  v1::Consent stored = Get(request.consent().name());
  EXPECT_EQ(stored.state(), v1::CONSENT_STATE_PENDING);
  EXPECT_FALSE(stored.has_receipt());
  // The good request still works afterwards: nothing was half-consumed.
  EXPECT_TRUE(portal_.SignConsent(good).ok());
}

TEST_F(ConsentTest, ExpiredRequestAndReusedTokenAreFailedPreconditions) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  v1::RequestConsentResponse expiring = Request();
  v1::SignConsentRequest late = SignRequest(expiring);
  server_.clock().Advance(absl::Hours(24 * 7) + absl::Seconds(1));
  auto expired = portal_.SignConsent(late);
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(expired.status()), "REQUEST_EXPIRED");
  EXPECT_EQ(Get(expiring.consent().name()).state(), v1::CONSENT_STATE_EXPIRED);
  EXPECT_EQ(Check().reason(), v1::CONSENT_CHECK_REASON_EXPIRED);

  v1::RequestConsentResponse fresh = Request();
  v1::SignConsentRequest sign = SignRequest(fresh);
  ASSERT_TRUE(portal_.SignConsent(sign).ok());
  v1::SignConsentRequest reuse = sign;
  reuse.set_request_id(client::NewRequestId());
  auto used = portal_.SignConsent(reuse);
  EXPECT_EQ(used.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(used.status()), "SIGNING_TOKEN_USED");
  v1::GetConsentDocumentRequest doc;
  doc.set_signing_token(fresh.signing_token());
  EXPECT_EQ(ErrorReason(portal_.GetConsentDocument(doc).status()),
            "SIGNING_TOKEN_USED");
}

// The deadline is recorded, not only computed: at expire_time the scheduler
// stores EXPIRED and the EHR stream gets EVENT_TYPE_CONSENT_EXPIRED (once,
// across a restart); a signed, declined or withdrawn consent never expires
// this way.
TEST_F(ConsentTest, ExpiryIsRecordedAtTheDeadlineWithAnEvent) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  const v1::RequestConsentResponse expiring =
      Request("tenants/clinic-a/patients/p-exp");
  const v1::RequestConsentResponse signing =
      Request("tenants/clinic-a/patients/p-sig");
  const v1::RequestConsentResponse withdrawn =
      Request("tenants/clinic-a/patients/p-wd");
  ASSERT_TRUE(portal_.SignConsent(SignRequest(signing)).ok());
  v1::WithdrawConsentRequest withdraw;
  withdraw.set_name(withdrawn.consent().name());
  withdraw.set_reason("Patient chose another treatment");
  auto withdrew = clinician_.WithdrawConsent(withdraw);
  ASSERT_TRUE(withdrew.ok()) << withdrew.status();

  auto run_due = [&] {
    for (size_t i = 0;; ++i) {
      if (auto* m = dynamic_cast<consent::ConsentModule*>(server_.module(i))) {
        auto stats = m->scheduler().RunDue(server_.clock().Now());
        EXPECT_TRUE(stats.ok()) << stats.status();
        return stats.ok() ? stats->succeeded : -1;
      }
    }
  };
  client::EventsClient events(server_.ChannelFor(kEhrA));
  auto expired_events = [&] {
    v1::ListEventsRequest list;
    list.set_parent("tenants/clinic-a");
    list.set_page_size(100);
    auto page = events.ListEvents(list);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::string> out;
    for (const v1::Event& e : page->events()) {
      if (e.type() == v1::EVENT_TYPE_CONSENT_EXPIRED) {
        out.push_back(e.resource());
        EXPECT_EQ(e.actor().role(), v1::ROLE_SYSTEM);
      }
    }
    return out;
  };

  // One second before the 7-day deadline: nothing is due.
  const absl::Time deadline =
      absl::FromUnixSeconds(expiring.consent().expire_time().seconds());
  server_.clock().Set(deadline - absl::Seconds(1));
  EXPECT_EQ(run_due(), 0);
  EXPECT_TRUE(expired_events().empty());
  EXPECT_EQ(Get(expiring.consent().name()).state(), v1::CONSENT_STATE_PENDING);

  server_.clock().Set(deadline + absl::Seconds(1));
  EXPECT_GE(run_due(), 1);
  EXPECT_EQ(expired_events(),
            std::vector<std::string>{expiring.consent().name()});
  EXPECT_EQ(Get(expiring.consent().name()).state(), v1::CONSENT_STATE_EXPIRED);
  EXPECT_EQ(Get(signing.consent().name()).state(), v1::CONSENT_STATE_ACTIVE);
  EXPECT_EQ(Get(withdrawn.consent().name()).state(),
            v1::CONSENT_STATE_WITHDRAWN);

  // Nothing runs twice, across a restart either.
  server_.Restart();
  server_.clock().Advance(absl::Hours(24 * 30));
  EXPECT_EQ(run_due(), 0);
  EXPECT_EQ(expired_events().size(), 1u);
  auto late = portal_.SignConsent(SignRequest(expiring));
  EXPECT_EQ(ErrorReason(late.status()), "REQUEST_EXPIRED");
}

TEST_F(ConsentTest, ReceiptVerifiesOfflineAndEveryAlterationFails) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  auto a = portal_.SignConsent(SignRequest(Request()));
  auto b = portal_.SignConsent(
      SignRequest(Request("tenants/clinic-a/patients/p-200")));
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string pem = PublicKeyPem(a->receipt().key_id());
  auto file = client::EncodeReceiptFile(a->receipt());
  ASSERT_TRUE(file.ok());

  auto verified = client::VerifyReceiptFile(*file, pem);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->consent, a->consent().name());
  EXPECT_EQ(verified->printed_name, "Alex Q. Patient");
  EXPECT_EQ(verified->signature_meaning, "Consent to treatment");
  EXPECT_EQ(verified->audit_leaf_index, a->receipt().audit_leaf_index());

  // Any single-byte change anywhere in the file fails.
  int failures = 0;
  for (size_t i = 0; i < file->size(); ++i) {
    std::string altered = *file;
    altered[i] = static_cast<char>(altered[i] ^ 0x01);
    if (!client::VerifyReceiptFile(altered, pem).ok()) ++failures;
  }
  EXPECT_EQ(failures, static_cast<int>(file->size()));

  // A's signature moved onto B's payload.
  v1::ConsentReceipt moved = b->receipt();
  moved.set_signature(a->receipt().signature());
  auto moved_check =
      client::VerifyReceiptFile(*client::EncodeReceiptFile(moved), pem);
  EXPECT_EQ(ErrorReason(moved_check.status()), "SIGNATURE_INVALID");

  // Checked against a key it was not signed with.
  auto other = crypto::OpenSslEd25519Signer::Generate();
  auto wrong_key = client::VerifyReceiptFile(*file, (*other)->public_key_pem());
  EXPECT_EQ(ErrorReason(wrong_key.status()), "KEY_ID_MISMATCH");
}

TEST_F(ConsentTest, ReceiptsSignedBeforeRotationStillVerifyAfterRestart) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  auto before = portal_.SignConsent(SignRequest(Request()));
  ASSERT_TRUE(before.ok());
  auto* module = dynamic_cast<consent::ConsentModule*>(server_.module(0));
  ASSERT_NE(module, nullptr);
  absl::Status rotated = module->receipt_keys().Rotate();
  ASSERT_TRUE(rotated.ok()) << rotated;
  server_.Restart();  // the database is read back: durable and restorable
  ConsentClient ehr(server_.ChannelFor(kEhrA));
  ConsentClient portal(server_.ChannelFor(kPortal));
  auto after = portal.SignConsent(
      SignRequest(Request("tenants/clinic-a/patients/p-300")));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(after->receipt().key_id(), before->receipt().key_id());

  auto keys = ehr.ListSigningKeys({});
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->signing_keys_size(), 2);
  EXPECT_EQ(keys->signing_keys(0).state(), v1::SIGNING_KEY_STATE_ACTIVE);
  EXPECT_EQ(keys->signing_keys(1).state(), v1::SIGNING_KEY_STATE_RETIRED);

  for (const auto* r : {&before->receipt(), &after->receipt()}) {
    auto file = client::EncodeReceiptFile(*r);
    auto verified = client::VerifyReceiptFile(*file, PublicKeyPem(r->key_id()));
    EXPECT_TRUE(verified.ok()) << verified.status();
  }
  // The signed consent survived the restart with the same receipt.
  v1::GetConsentRequest get;
  get.set_name(before->consent().name());
  auto stored = ehr.GetConsent(get);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->consent().receipt().payload(), before->receipt().payload());
}

TEST_F(ConsentTest, BadTemplatesAreRefusedNamingTheField) {
  v1::CreateConsentTemplateRequest create;
  create.set_parent("tenants/clinic-a");
  create.set_consent_template_id("ketamine");
  create.mutable_consent_template()->set_display_name("IV ketamine");
  ASSERT_TRUE(ehr_.CreateConsentTemplate(create).ok());

  struct Case {
    const char* what;
    std::function<void(v1::ConsentTemplateVersion&)> change;
    const char* reason;
    const char* field;
  } cases[] = {
      {"10 MiB body",
       [](auto& v) { v.set_body_markdown(std::string(10 << 20, 'a')); },
       "FIELD_TOO_LONG", "version.body_markdown"},
      {"empty title", [](auto& v) { v.set_title(""); }, "FIELD_REQUIRED",
       "version.title"},
      {"no acknowledgements", [](auto& v) { v.clear_acknowledgements(); },
       "TOO_MANY_ITEMS", "version.acknowledgements"},
      {"duplicate acknowledgement",
       [](auto& v) { *v.add_acknowledgements() = v.acknowledgements(0); },
       "DUPLICATE_ACKNOWLEDGEMENT_ID", "version.acknowledgements[6].id"},
      {"bad procedure code",
       [](auto& v) { v.set_procedure_codes(0, "has spaces"); },
       "INVALID_PROCEDURE_CODE", "version.procedure_codes[0]"},
      {"bidi in title", [](auto& v) { v.set_title("Consent \u202e"); },
       "INVALID_CHARACTERS", "version.title"},
  };
  for (const Case& c : cases) {
    v1::PublishConsentTemplateVersionRequest publish;
    publish.set_parent("tenants/clinic-a/consentTemplates/ketamine");
    *publish.mutable_version() = KetamineConsent();
    c.change(*publish.mutable_version());
    auto result = ehr_.PublishConsentTemplateVersion(publish);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << c.what << ": " << result.status();
    EXPECT_EQ(ErrorReason(result.status()), c.reason) << c.what;
    EXPECT_EQ(ErrorField(result.status()), c.field) << c.what;
  }
  v1::ListConsentTemplateVersionsRequest list;
  list.set_parent("tenants/clinic-a/consentTemplates/ketamine");
  auto versions = ehr_.ListConsentTemplateVersions(list);
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->versions_size(), 0);
}

TEST_F(ConsentTest, ReconsentVersionSupersedesOlderConsents) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  ASSERT_TRUE(portal_.SignConsent(SignRequest(Request())).ok());
  EXPECT_TRUE(Check().valid());
  v1::PublishConsentTemplateVersionRequest publish;
  publish.set_parent("tenants/clinic-a/consentTemplates/ketamine");
  *publish.mutable_version() = KetamineConsent();
  publish.mutable_version()->set_requires_reconsent(true);
  ASSERT_TRUE(ehr_.PublishConsentTemplateVersion(publish).ok());
  v1::CheckConsentResponse check = Check();
  EXPECT_FALSE(check.valid());
  EXPECT_EQ(check.reason(), v1::CONSENT_CHECK_REASON_SUPERSEDED);
  // A new request uses version 2, and signing it makes consent valid again.
  v1::RequestConsentResponse again = Request();
  EXPECT_EQ(again.consent().template_version(),
            "tenants/clinic-a/consentTemplates/ketamine/versions/2");
  ASSERT_TRUE(portal_.SignConsent(SignRequest(again)).ok());
  EXPECT_TRUE(Check().valid());
}

TEST_F(ConsentTest, OtherTenantsSeeNothing) {
  PublishTemplate(ehr_, "clinic-a", "ketamine");
  v1::RequestConsentResponse request = Request();
  ConsentClient ehr_b(server_.ChannelFor(kEhrB));
  v1::GetConsentRequest get;
  get.set_name(request.consent().name());
  auto foreign = ehr_b.GetConsent(get);
  get.set_name("tenants/clinic-b/patients/p-100/consents/nothere");
  auto absent = ehr_b.GetConsent(get);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(foreign.status().code(), absent.status().code());
  EXPECT_EQ(foreign.status().message(), absent.status().message());
  EXPECT_EQ(ErrorReason(foreign.status()), ErrorReason(absent.status()));

  v1::CheckConsentRequest check;
  check.set_patient(kPatient);
  check.set_procedure_code(kProcedure);
  EXPECT_EQ(ehr_b.CheckConsent(check).status().code(),
            absl::StatusCode::kNotFound);
  // The portal may not sign: it is the patient's link that authorizes.
  v1::SignConsentRequest sign = SignRequest(request);
  EXPECT_EQ(ehr_.SignConsent(sign).status().code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace careseal
