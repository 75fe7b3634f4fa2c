// The audit log end to end, through the public C++ client over mutual TLS:
// a scripted consent session (allowed, denied, foreign-tenant and invalid
// calls) leaves exactly one event per attempt with its outcome; proofs from
// the server verify with the client's independent verifier; exports verify
// offline, across a key rotation and a restart; tampering with the stored log
// is caught and placed; a clean log of 100,000 events raises no false alarm.
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/audit_client.h"
#include "clients/cpp/audit_verify.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/merkle_verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/audit/audit_module.h"
#include "services/common/audit/merkle.h"
#include "services/common/crypto/ed25519.h"
#include "services/common/platform/audit_writer.h"
#include "tests/testing/test_server.h"

ABSL_DECLARE_FLAG(int64_t, audit_checkpoint_interval_seconds);
ABSL_DECLARE_FLAG(int64_t, audit_index_interval_ms);

namespace careseal {
namespace {

using ::careseal::testing::kAdmin;
using ::careseal::testing::kClinicianA;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kEhrB;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using client::AuditClient;
using client::ConsentClient;
using client::ErrorReason;
using ::testing::HasSubstr;
namespace v1 = ::careseal::v1;

constexpr char kAuditorA[] =
    "spiffe://careseal.local/tenant/clinic-a/auditor/aud-1";
constexpr char kAuditorB[] =
    "spiffe://careseal.local/tenant/clinic-b/auditor/aud-2";
constexpr char kProcedure[] = "ketamine-iv-induction";
constexpr char kPatient[] = "tenants/clinic-a/patients/p-100";

// Tests drive checkpoints (AuditManager::CheckpointGrownTenants) and the
// lookups' indexing (IndexAuditLogs) themselves.
struct NoPeriodicWork {
  NoPeriodicWork() {
    absl::SetFlag(&FLAGS_audit_checkpoint_interval_seconds, 0);
    absl::SetFlag(&FLAGS_audit_index_interval_ms, 0);
  }
};

v1::ConsentTemplateVersion Version() {
  v1::ConsentTemplateVersion v;
  v.set_title("Consent to IV ketamine infusion therapy");
  v.set_body_markdown(
      "# IV ketamine\n\nRisks: dissociation, blood pressure.\n");
  auto* a = v.add_acknowledgements();
  a->set_id("dissociation");
  a->set_text("I understand ketamine can cause dissociation.");
  a->set_required(true);
  v.add_procedure_codes(kProcedure);
  v.set_esign_disclosure("You may ask for a paper copy.");
  v.set_signature_meaning("Consent to treatment");
  return v;
}

// What one attempt must have left in the log.
struct Expected {
  std::string log;  // tenant id or "_"
  std::string action;
  int code;
};

class AuditTest : public ::testing::Test {
 protected:
  AuditTest()
      : ehr_a_(server_.ChannelFor(kEhrA)),
        ehr_b_(server_.ChannelFor(kEhrB)),
        portal_(server_.ChannelFor(kPortal)),
        clinician_a_(server_.ChannelFor(kClinicianA)),
        auditor_a_consent_(server_.ChannelFor(kAuditorA)),
        admin_consent_(server_.ChannelFor(kAdmin)),
        auditor_a_(server_.ChannelFor(kAuditorA)),
        auditor_b_(server_.ChannelFor(kAuditorB)),
        admin_(server_.ChannelFor(kAdmin)),
        ehr_a_audit_(server_.ChannelFor(kEhrA)) {}

  audit::AuditModule& Module() {
    for (size_t i = 0;; ++i) {
      if (auto* m = dynamic_cast<audit::AuditModule*>(server_.module(i))) {
        return *m;
      }
    }
  }

  std::vector<std::string> TrustedKeys() {
    v1::ListCheckpointKeysRequest r;
    auto keys = admin_.ListCheckpointKeys(r);
    EXPECT_TRUE(keys.ok()) << keys.status();
    std::vector<std::string> pems;
    for (const auto& k : keys->signing_keys()) {
      EXPECT_EQ(k.purpose(), v1::KEY_PURPOSE_AUDIT_CHECKPOINT);
      pems.push_back(k.public_key_pem());
    }
    return pems;
  }

  std::string PemOf(const std::string& key_id) {
    v1::ListCheckpointKeysRequest r;
    auto keys = auditor_a_.ListCheckpointKeys(r);
    EXPECT_TRUE(keys.ok()) << keys.status();
    for (const auto& k : keys->signing_keys()) {
      if (k.key_id() == key_id) return k.public_key_pem();
    }
    ADD_FAILURE() << "no published key " << key_id;
    return "";
  }

  // The events of a tenant's log up to its latest checkpoint (as admin).
  std::vector<v1::AuditEvent> Events(const std::string& log) {
    v1::ExportAuditLogRequest r;
    r.set_parent("tenants/" + log);
    std::vector<v1::AuditEvent> events;
    absl::Status s =
        admin_.ExportAuditLog(r, [&](const v1::ExportAuditLogResponse& item) {
          if (item.has_event()) events.push_back(item.event());
          return absl::OkStatus();
        });
    EXPECT_TRUE(s.ok()) << s;
    return events;
  }

  // The export file of a tenant's log up to its latest checkpoint.
  std::string ExportText(const std::string& log) {
    std::ostringstream out;
    client::CallOptions options;
    options.timeout = absl::Seconds(120);
    auto counts =
        client::ExportAuditLogToStream(admin_, "tenants/" + log, out, options);
    EXPECT_TRUE(counts.ok()) << counts.status();
    return out.str();
  }

  absl::StatusOr<client::AuditVerifyReport> VerifyExport(
      const std::string& log) {
    client::AuditVerifyOptions options;
    options.trusted_keys = TrustedKeys();
    return client::VerifyAuditExport(ExportText(log), options);
  }

  // Appends `n` synthetic events to `tenant`'s log straight through the
  // audit writer, in transactions of up to 10,000, with a checkpoint every
  // `checkpoint_every` events.
  void AppendEvents(const std::string& tenant, int n, int checkpoint_every) {
    for (int done = 0; done < n;) {
      const int batch = std::min({n - done, checkpoint_every, 10000});
      absl::Status s = server_.env().db->WriteAndWait([&](sql::Txn& txn) {
        CallContext call;
        call.principal.role = Role::kEhrSystem;
        call.principal.tenant = tenant;
        call.principal.actor = kEhrA;
        call.principal.peer = kEhrA;
        call.method = "careseal.v1.ConsentService/GetConsent";
        call.now = server_.clock().Now();
        call.tenant = tenant;
        for (int i = 0; i < batch; ++i) {
          call.patient =
              absl::StrCat("tenants/", tenant, "/patients/p-", (done + i) % 97);
          call.resource = absl::StrCat(call.patient, "/consents/c", done + i);
          call.correlation_id = absl::StrCat("c", done + i);
          auto index = AppendAuditEvent(txn, call, absl::OkStatus());
          if (!index.ok()) return index.status();
        }
        return absl::OkStatus();
      });
      ASSERT_TRUE(s.ok()) << s;
      done += batch;
      if (done % checkpoint_every == 0 || done == n) {
        server_.clock().Advance(absl::Seconds(1));
        ASSERT_TRUE(Module().manager().CheckpointGrownTenants().ok());
      }
    }
  }

  // Every page of `r` (as clinic-a's auditor), calling `between_pages`
  // after each.
  std::vector<v1::AuditEvent> ListAll(
      v1::ListAuditEventsRequest r,
      const std::function<void()>& between_pages = [] {}) {
    std::vector<v1::AuditEvent> all;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = auditor_a_.ListAuditEvents(r);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const auto& e : page->events()) all.push_back(e);
      if (page->next_page_token().empty()) break;
      r.set_page_token(page->next_page_token());
      between_pages();
    }
    return all;
  }

  // Adds up to `max_events` unindexed events to the lookups; how many.
  int64_t IndexLogs(int64_t max_events) {
    int64_t indexed = -1;
    absl::Status s = server_.env().db->WriteAndWait([&](sql::Txn& txn) {
      absl::StatusOr<int64_t> n = IndexAuditLogs(txn, max_events);
      if (n.ok()) indexed = *n;
      return n.status();
    });
    EXPECT_TRUE(s.ok()) << s;
    return indexed;
  }

  // Runs `sql` on the store directly, as someone with disk access would.
  void Tamper(const std::string& sql, std::vector<sql::Value> params = {}) {
    absl::Status s = server_.env().db->WriteAndWait(
        [&](sql::Txn& txn) { return txn.Exec(sql, params).status(); });
    ASSERT_TRUE(s.ok()) << s;
  }

  std::string StoredLeaf(const std::string& tenant, int64_t index) {
    std::string leaf;
    EXPECT_TRUE(server_.env()
                    .db
                    ->Read([&](sql::Txn& txn) -> absl::Status {
                      auto rows = txn.Query(
                          "SELECT leaf FROM audit_events WHERE tenant = ? "
                          "AND leaf_index = ?",
                          {sql::Text(tenant), sql::Int(index)});
                      if (!rows.ok()) return rows.status();
                      leaf = (*rows)[0].Str(0);
                      return absl::OkStatus();
                    })
                    .ok());
    return leaf;
  }

  NoPeriodicWork no_periodic_;
  TestServer server_{{"consent", "audit"}};
  ConsentClient ehr_a_;
  ConsentClient ehr_b_;
  ConsentClient portal_;
  ConsentClient clinician_a_;
  ConsentClient auditor_a_consent_;
  ConsentClient admin_consent_;
  AuditClient auditor_a_;
  AuditClient auditor_b_;
  AuditClient admin_;
  AuditClient ehr_a_audit_;
};

TEST_F(AuditTest, EveryAttemptIsOneEventWithItsOutcome) {
  std::vector<Expected> want;
  auto attempt = [&](const std::string& log, const std::string& method,
                     absl::StatusCode code, const absl::Status& got) {
    EXPECT_EQ(got.code(), code) << method << ": " << got;
    want.push_back(
        {log, absl::StrCat("/careseal.v1.", method), static_cast<int>(code)});
  };
  using absl::StatusCode;

  v1::CreateConsentTemplateRequest create;
  create.set_parent("tenants/clinic-a");
  create.set_consent_template_id("ketamine");
  create.mutable_consent_template()->set_display_name("IV ketamine");
  auto t = ehr_a_.CreateConsentTemplate(create);
  attempt("clinic-a", "ConsentService/CreateConsentTemplate", StatusCode::kOk,
          t.status());
  v1::PublishConsentTemplateVersionRequest publish;
  publish.set_parent("tenants/clinic-a/consentTemplates/ketamine");
  *publish.mutable_version() = Version();
  attempt("clinic-a", "ConsentService/PublishConsentTemplateVersion",
          StatusCode::kOk,
          ehr_a_.PublishConsentTemplateVersion(publish).status());

  v1::RequestConsentRequest request;
  request.set_parent(kPatient);
  request.set_procedure_code(kProcedure);
  auto requested = ehr_a_.RequestConsent(request);
  attempt("clinic-a", "ConsentService/RequestConsent", StatusCode::kOk,
          requested.status());
  ASSERT_TRUE(requested.ok());
  const std::string consent = requested->consent().name();

  v1::RequestConsentRequest bad_code = request;
  bad_code.set_procedure_code("bad code!");
  attempt("clinic-a", "ConsentService/RequestConsent",
          StatusCode::kInvalidArgument,
          ehr_a_.RequestConsent(bad_code).status());
  v1::RequestConsentRequest bad_id = request;
  bad_id.set_request_id("not-a-uuid");
  attempt("clinic-a", "ConsentService/RequestConsent",
          StatusCode::kInvalidArgument, ehr_a_.RequestConsent(bad_id).status());

  v1::GetConsentDocumentRequest get_doc;
  get_doc.set_signing_token(requested->signing_token());
  auto doc = portal_.GetConsentDocument(get_doc);
  attempt("clinic-a", "ConsentService/GetConsentDocument", StatusCode::kOk,
          doc.status());
  ASSERT_TRUE(doc.ok());
  v1::SignConsentRequest sign;
  sign.set_name(consent);
  sign.set_signing_token(requested->signing_token());
  sign.set_document_sha256(doc->document_sha256());
  sign.add_acknowledged_ids("dissociation");
  sign.set_intent_to_sign(true);
  sign.set_printed_name("Alex Q. Patient");
  sign.set_signature_meaning(doc->signature_meaning());
  sign.set_signing_method(v1::SIGNING_METHOD_TYPED_NAME);
  // The EHR may not sign for the patient.
  attempt("clinic-a", "ConsentService/SignConsent",
          StatusCode::kPermissionDenied, ehr_a_.SignConsent(sign).status());
  auto signed_ = portal_.SignConsent(sign);
  attempt("clinic-a", "ConsentService/SignConsent", StatusCode::kOk,
          signed_.status());
  ASSERT_TRUE(signed_.ok());
  const int64_t sign_leaf = signed_->receipt().audit_leaf_index();

  // Another clinic's EHR reaches nothing of clinic-a (audited in its log).
  v1::GetConsentRequest get;
  get.set_name(consent);
  attempt("clinic-b", "ConsentService/GetConsent", StatusCode::kNotFound,
          ehr_b_.GetConsent(get).status());
  v1::CheckConsentRequest check;
  check.set_patient(kPatient);
  check.set_procedure_code(kProcedure);
  attempt("clinic-b", "ConsentService/CheckConsent", StatusCode::kNotFound,
          ehr_b_.CheckConsent(check).status());
  attempt("clinic-a", "ConsentService/CheckConsent", StatusCode::kOk,
          ehr_a_.CheckConsent(check).status());

  v1::WithdrawConsentRequest withdraw;
  withdraw.set_name(consent);
  attempt("clinic-a", "ConsentService/WithdrawConsent",
          StatusCode::kInvalidArgument,
          clinician_a_.WithdrawConsent(withdraw).status());
  v1::GetConsentRequest malformed;
  malformed.set_name("nope");
  attempt("clinic-a", "ConsentService/GetConsent", StatusCode::kInvalidArgument,
          ehr_a_.GetConsent(malformed).status());
  // Auditors and admins see no health data; the EHR reads no audit log.
  attempt("clinic-a", "ConsentService/GetConsent",
          StatusCode::kPermissionDenied,
          auditor_a_consent_.GetConsent(get).status());
  attempt("_", "ConsentService/GetConsent", StatusCode::kPermissionDenied,
          admin_consent_.GetConsent(get).status());
  v1::ListAuditEventsRequest list;
  list.set_parent("tenants/clinic-a");
  attempt("clinic-a", "AuditService/ListAuditEvents",
          StatusCode::kPermissionDenied,
          ehr_a_audit_.ListAuditEvents(list).status());
  attempt("clinic-b", "AuditService/ListAuditEvents", StatusCode::kNotFound,
          auditor_b_.ListAuditEvents(list).status());

  v1::ListConsentsRequest consents;
  consents.set_parent(kPatient);
  attempt("clinic-a", "ConsentService/ListConsents", StatusCode::kOk,
          clinician_a_.ListConsents(consents).status());
  withdraw.set_reason("Patient asked to stop treatment");
  attempt("clinic-a", "ConsentService/WithdrawConsent", StatusCode::kOk,
          clinician_a_.WithdrawConsent(withdraw).status());
  sign.set_request_id(client::NewRequestId());
  attempt("clinic-a", "ConsentService/SignConsent",
          StatusCode::kFailedPrecondition, portal_.SignConsent(sign).status());

  // Checkpoint every log (no RPC, so nothing else is logged), then compare
  // each log with the script, in order.
  auto made = Module().manager().CheckpointGrownTenants();
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_EQ(made->size(), 3u);  // "_", clinic-a, clinic-b
  size_t total = 0;
  std::map<std::string, std::vector<v1::AuditEvent>> logs;
  for (const std::string log : {"clinic-a", "clinic-b", "_"}) {
    logs[log] = Events(log);
    std::vector<Expected> mine;
    for (const Expected& e : want) {
      if (e.log == log) mine.push_back(e);
    }
    const auto& events = logs[log];
    ASSERT_EQ(events.size(), mine.size()) << log;
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].leaf_index(), static_cast<int64_t>(i));
      EXPECT_EQ(events[i].tenant(), "tenants/" + log);
      EXPECT_EQ(events[i].action(), mine[i].action) << log << " leaf " << i;
      EXPECT_EQ(events[i].outcome_code(), mine[i].code)
          << log << " leaf " << i << " " << mine[i].action;
      EXPECT_EQ(events[i].leaf_hash(), client::LeafHash(events[i].leaf_data()));
    }
    total += events.size();
    auto report = VerifyExport(log);
    ASSERT_TRUE(report.ok()) << log << ": " << report.status();
    EXPECT_EQ(report->events, static_cast<int64_t>(events.size()));
  }
  EXPECT_EQ(total, want.size());

  // Denials are categorized; the denied EHR's event names its role.
  const v1::AuditEvent& denied = logs["clinic-a"][6];
  EXPECT_EQ(denied.action(), "/careseal.v1.ConsentService/SignConsent");
  EXPECT_EQ(denied.category(), v1::AUDIT_CATEGORY_AUTHORIZATION);
  EXPECT_EQ(denied.outcome_reason(), "ROLE_NOT_ALLOWED");
  EXPECT_EQ(denied.actor().role(), v1::ROLE_EHR_SYSTEM);
  EXPECT_EQ(denied.actor().peer_identity(), kEhrA);

  // The receipt points at its signing event.
  v1::GetAuditEventRequest get_event;
  get_event.set_name(absl::StrCat("tenants/clinic-a/auditEvents/", sign_leaf));
  auto event = auditor_a_.GetAuditEvent(get_event);
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->event().action(), "/careseal.v1.ConsentService/SignConsent");
  EXPECT_EQ(event->event().outcome_code(), 0);
  EXPECT_EQ(event->event().resource(), consent);
  EXPECT_EQ(event->event().patient(), kPatient);
  EXPECT_EQ(event->event().category(), v1::AUDIT_CATEGORY_DATA_WRITE);
  EXPECT_EQ(event->event().actor().role(), v1::ROLE_PORTAL);
  EXPECT_EQ(event->event().leaf_data(),
            logs["clinic-a"][sign_leaf].leaf_data());

  // Its inclusion proof checks out against the signed checkpoint.
  v1::GetInclusionProofRequest inclusion;
  inclusion.set_parent("tenants/clinic-a");
  inclusion.set_event(get_event.name());
  auto proof = auditor_a_.GetInclusionProof(inclusion);
  ASSERT_TRUE(proof.ok()) << proof.status();
  const v1::SignedCheckpoint first = proof->checkpoint();
  auto first_head = client::VerifyCheckpoint(first.payload(), first.signature(),
                                             PemOf(first.key_id()));
  ASSERT_TRUE(first_head.ok()) << first_head.status();
  EXPECT_EQ(first_head->tree_size, first.tree_size());
  EXPECT_EQ(first_head->root_hash, first.root_hash());
  std::vector<std::string> path(proof->audit_path().begin(),
                                proof->audit_path().end());
  EXPECT_TRUE(client::VerifyInclusion(
                  client::LeafHash(proof->event().leaf_data()), sign_leaf,
                  first_head->tree_size, path, first_head->root_hash)
                  .ok());
  path.back()[0] ^= 1;
  EXPECT_FALSE(client::VerifyInclusion(
                   client::LeafHash(proof->event().leaf_data()), sign_leaf,
                   first_head->tree_size, path, first_head->root_hash)
                   .ok());

  // A later checkpoint on demand, idempotent, consistent with the first.
  v1::CreateCheckpointRequest make;
  make.set_parent("tenants/clinic-a");
  make.set_request_id(client::NewRequestId());
  auto second = auditor_a_.CreateCheckpoint(make);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(second->checkpoint().tree_size(), first.tree_size());
  auto again = auditor_a_.CreateCheckpoint(make);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->checkpoint().tree_size(), second->checkpoint().tree_size());
  EXPECT_EQ(again->checkpoint().signature(), second->checkpoint().signature());
  v1::GetConsistencyProofRequest consistency;
  consistency.set_parent("tenants/clinic-a");
  consistency.set_first_tree_size(first.tree_size());
  auto cproof = auditor_a_.GetConsistencyProof(consistency);
  ASSERT_TRUE(cproof.ok()) << cproof.status();
  EXPECT_EQ(cproof->second_tree_size(), second->checkpoint().tree_size());
  auto second_head =
      client::VerifyCheckpoint(cproof->second_checkpoint().payload(),
                               cproof->second_checkpoint().signature(),
                               PemOf(cproof->second_checkpoint().key_id()));
  ASSERT_TRUE(second_head.ok()) << second_head.status();
  std::vector<std::string> hashes(cproof->proof().begin(),
                                  cproof->proof().end());
  EXPECT_TRUE(client::VerifyConsistency(
                  first.tree_size(), second_head->tree_size,
                  first_head->root_hash, second_head->root_hash, hashes)
                  .ok());
}

TEST_F(AuditTest, ScopeAndErrors) {
  AppendEvents("clinic-a", 10, 10);
  auto code_and_reason = [](const absl::Status& s) {
    return std::make_pair(s.code(), ErrorReason(s));
  };
  using absl::StatusCode;
  v1::GetAuditEventRequest get;
  get.set_name("tenants/clinic-a/auditEvents/3");
  EXPECT_TRUE(auditor_a_.GetAuditEvent(get).ok());
  EXPECT_TRUE(admin_.GetAuditEvent(get).ok());
  // Another tenant's auditor: the same answer as an absent event.
  EXPECT_EQ(
      code_and_reason(auditor_b_.GetAuditEvent(get).status()),
      std::make_pair(StatusCode::kNotFound, std::string("RESOURCE_NOT_FOUND")));
  get.set_name("tenants/clinic-a/auditEvents/999");
  EXPECT_EQ(
      code_and_reason(auditor_a_.GetAuditEvent(get).status()),
      std::make_pair(StatusCode::kNotFound, std::string("RESOURCE_NOT_FOUND")));
  for (const char* bad :
       {"tenants/clinic-a/auditEvents/03", "tenants/clinic-a/auditEvents/-1",
        "tenants/Clinic/auditEvents/1", "auditEvents/1"}) {
    get.set_name(bad);
    EXPECT_EQ(code_and_reason(auditor_a_.GetAuditEvent(get).status()),
              std::make_pair(StatusCode::kInvalidArgument,
                             std::string("INVALID_NAME")))
        << bad;
  }
  // The deployment log is the admin's alone.
  v1::ListAuditEventsRequest deployment;
  deployment.set_parent("tenants/_");
  EXPECT_TRUE(admin_.ListAuditEvents(deployment).ok());
  EXPECT_EQ(auditor_a_.ListAuditEvents(deployment).status().code(),
            StatusCode::kNotFound);

  v1::GetCheckpointRequest none;
  none.set_parent("tenants/clinic-b");
  EXPECT_EQ(
      code_and_reason(auditor_b_.GetCheckpoint(none).status()),
      std::make_pair(StatusCode::kNotFound, std::string("NO_CHECKPOINT")));
  v1::CreateCheckpointRequest empty;
  empty.set_parent("tenants/clinic-z");
  EXPECT_EQ(code_and_reason(admin_.CreateCheckpoint(empty).status()),
            std::make_pair(StatusCode::kFailedPrecondition,
                           std::string("EMPTY_LOG")));

  v1::GetInclusionProofRequest beyond;
  beyond.set_parent("tenants/clinic-a");
  beyond.set_leaf_index(10);
  EXPECT_EQ(code_and_reason(auditor_a_.GetInclusionProof(beyond).status()),
            std::make_pair(StatusCode::kFailedPrecondition,
                           std::string("LEAF_NOT_IN_TREE")));
  beyond.set_tree_size(7);
  EXPECT_EQ(ErrorReason(auditor_a_.GetInclusionProof(beyond).status()),
            "NO_CHECKPOINT");
  beyond.clear_leaf_index();
  beyond.set_tree_size(0);
  EXPECT_EQ(ErrorReason(auditor_a_.GetInclusionProof(beyond).status()),
            "FIELD_REQUIRED");
  beyond.set_event("tenants/clinic-b/auditEvents/1");
  EXPECT_EQ(ErrorReason(auditor_a_.GetInclusionProof(beyond).status()),
            "INVALID_NAME");

  v1::GetConsistencyProofRequest sizes;
  sizes.set_parent("tenants/clinic-a");
  for (auto [first, second] :
       {std::pair<int64_t, int64_t>{0, 5}, {6, 5}, {1, 1000}}) {
    sizes.set_first_tree_size(first);
    sizes.set_second_tree_size(second);
    EXPECT_EQ(code_and_reason(auditor_a_.GetConsistencyProof(sizes).status()),
              std::make_pair(StatusCode::kInvalidArgument,
                             std::string("INVALID_TREE_SIZE")))
        << first << " " << second;
  }
  sizes.set_first_tree_size(4);
  sizes.set_second_tree_size(0);
  auto ok = auditor_a_.GetConsistencyProof(sizes);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->second_tree_size(), 10);
  EXPECT_FALSE(ok->has_first_checkpoint());
  EXPECT_TRUE(ok->has_second_checkpoint());

  v1::ListAuditEventsRequest range;
  range.set_parent("tenants/clinic-a");
  range.mutable_start_time()->set_seconds(2000);
  range.mutable_end_time()->set_seconds(1000);
  EXPECT_EQ(ErrorReason(auditor_a_.ListAuditEvents(range).status()),
            "INVALID_TIME_RANGE");
  v1::ExportAuditLogRequest export_range;
  export_range.set_parent("tenants/clinic-a");
  export_range.set_end_leaf_index(1000);
  absl::Status s = auditor_a_.ExportAuditLog(
      export_range, [](const auto&) { return absl::OkStatus(); });
  EXPECT_EQ(ErrorReason(s), "INVALID_RANGE");
  export_range.set_end_leaf_index(0);
  s = auditor_b_.ExportAuditLog(export_range,
                                [](const auto&) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  s = ehr_a_audit_.ExportAuditLog(export_range,
                                  [](const auto&) { return absl::OkStatus(); });
  EXPECT_EQ(ErrorReason(s), "ROLE_NOT_ALLOWED");

  // Every authenticated role may read the published keys.
  v1::ListCheckpointKeysRequest keys;
  auto listed = ehr_a_audit_.ListCheckpointKeys(keys);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->signing_keys_size(), 1);
  EXPECT_EQ(listed->signing_keys(0).state(), v1::SIGNING_KEY_STATE_ACTIVE);
  EXPECT_EQ(listed->signing_keys(0).public_key().size(), 32u);
}

TEST_F(AuditTest, ListAuditEventsFiltersAndPages) {
  // Allowed reads at t0, a denial and a failure later.
  v1::CheckConsentRequest check;
  check.set_patient(kPatient);
  check.set_procedure_code(kProcedure);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ehr_a_.CheckConsent(check).ok());
  const absl::Time later = server_.clock().Now() + absl::Hours(1);
  server_.clock().Set(later);
  v1::SignConsentRequest sign;
  sign.set_name(std::string(kPatient) + "/consents/c1");
  EXPECT_FALSE(ehr_a_.SignConsent(sign).ok());
  v1::GetConsentRequest get;
  get.set_name(std::string(kPatient) + "/consents/nope");
  EXPECT_FALSE(ehr_a_.GetConsent(get).ok());
  check.set_patient("tenants/clinic-a/patients/p-200");
  ASSERT_TRUE(ehr_a_.CheckConsent(check).ok());

  // (The auditor's own calls land in the same log: count the EHR's only.)
  auto list = [&](v1::ListAuditEventsRequest r) {
    r.set_parent("tenants/clinic-a");
    if (r.actor().empty()) r.set_actor(kEhrA);
    return ListAll(r);
  };
  v1::ListAuditEventsRequest r;
  r.set_page_size(2);
  std::vector<v1::AuditEvent> all = list(r);
  ASSERT_EQ(all.size(), 8u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].leaf_index(), static_cast<int64_t>(i));
  }

  r = {};
  r.set_patient(kPatient);
  EXPECT_EQ(list(r).size(), 6u);  // the checks and the absent consent
  r = {};
  r.set_action("/careseal.v1.ConsentService/CheckConsent");
  EXPECT_EQ(list(r).size(), 6u);
  r.set_action("careseal.v1.ConsentService/CheckConsent");
  EXPECT_EQ(list(r).size(), 6u);
  r = {};
  r.set_category(v1::AUDIT_CATEGORY_AUTHORIZATION);
  r.set_page_size(1);
  auto denied = list(r);
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].action(), "/careseal.v1.ConsentService/SignConsent");
  r = {};
  r.set_failures_only(true);
  EXPECT_EQ(list(r).size(), 2u);
  r = {};
  r.mutable_start_time()->set_seconds(absl::ToUnixSeconds(later));
  EXPECT_EQ(list(r).size(), 3u);
  r = {};
  r.mutable_end_time()->set_seconds(absl::ToUnixSeconds(later));
  EXPECT_EQ(list(r).size(), 5u);
  r = {};
  r.set_actor(kEhrA);
  r.set_resource("tenants/clinic-a/patients/p-200");
  EXPECT_EQ(list(r).size(), 1u);

  // A page token only works with the filters it was issued for.
  r = {};
  r.set_page_size(1);
  r.set_parent("tenants/clinic-a");
  auto page = auditor_a_.ListAuditEvents(r);
  ASSERT_TRUE(page.ok());
  r.set_page_token(page->next_page_token());
  r.set_failures_only(true);
  EXPECT_EQ(ErrorReason(auditor_a_.ListAuditEvents(r).status()),
            "INVALID_PAGE_TOKEN");
  r = {};
  r.set_parent("tenants/clinic-a");
  r.set_category(static_cast<v1::AuditCategory>(42));
  EXPECT_EQ(ErrorReason(auditor_a_.ListAuditEvents(r).status()),
            "INVALID_ENUM_VALUE");
}

TEST_F(AuditTest, PatientAndActorListsAreTheSameWhereverTheIndexStands) {
  // 400 events of kEhrA over 97 patients; p-5's are the leaves i with
  // i % 97 == 5.
  AppendEvents("clinic-a", 400, 1000);
  const std::string patient = "tenants/clinic-a/patients/p-5";
  std::vector<int64_t> expected;
  for (const v1::AuditEvent& e : Events("clinic-a")) {
    if (e.patient() == patient) expected.push_back(e.leaf_index());
  }
  ASSERT_EQ(expected.size(), 5u);  // 5, 102, 199, 296, 393
  auto leaves = [](const std::vector<v1::AuditEvent>& events) {
    std::vector<int64_t> out;
    for (const auto& e : events) out.push_back(e.leaf_index());
    return out;
  };
  v1::ListAuditEventsRequest by_patient;
  by_patient.set_parent("tenants/clinic-a");
  by_patient.set_patient(patient);
  by_patient.set_actor(kEhrA);  // not the auditor's own listing calls
  by_patient.set_page_size(2);
  v1::ListAuditEventsRequest by_actor;
  by_actor.set_parent("tenants/clinic-a");
  by_actor.set_actor(kEhrA);
  by_actor.set_page_size(150);

  // Nothing indexed yet: the scan of the log finds them.
  EXPECT_EQ(leaves(ListAll(by_patient)), expected);
  EXPECT_EQ(ListAll(by_actor).size(), 400u);

  // Indexed part of the way: the first from the lookups, the rest from the
  // log's tail.
  EXPECT_EQ(IndexLogs(150), 150);
  EXPECT_EQ(leaves(ListAll(by_patient)), expected);
  EXPECT_EQ(ListAll(by_actor).size(), 400u);

  // The indexer moving on between the pages of one listing.
  by_patient.set_page_size(1);
  EXPECT_EQ(leaves(ListAll(by_patient, [&] { IndexLogs(60); })), expected);
  by_actor.set_page_size(50);
  EXPECT_EQ(ListAll(by_actor, [&] { IndexLogs(100); }).size(), 400u);

  // Everything indexed (and indexing again adds nothing).
  EXPECT_GT(IndexLogs(100000), 0);
  EXPECT_EQ(IndexLogs(100000), 0);
  EXPECT_EQ(leaves(ListAll(by_patient)), expected);
  auto all = ListAll(by_actor);
  ASSERT_EQ(all.size(), 400u);
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].leaf_index(), all[i].leaf_index());
  }
}

TEST_F(AuditTest, PeriodicCheckpointsCoverGrownTreesAtTheInjectedTime) {
  AppendEvents("clinic-a", 7, 1000);  // one checkpoint at 7
  AppendEvents("clinic-b", 3, 1000);  // one at 3
  auto none = Module().manager().CheckpointGrownTenants();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());  // nothing grew

  AppendEvents("clinic-b", 2, 1000);  // and one at 5
  server_.clock().Advance(absl::Minutes(1));
  const absl::Time now = server_.clock().Now();
  AppendEvents("clinic-b", 1, 1000);  // and one at 6, signed after `now`
  v1::ListCheckpointsRequest list;
  list.set_parent("tenants/clinic-b");
  auto checkpoints = auditor_b_.ListCheckpoints(list);
  ASSERT_TRUE(checkpoints.ok()) << checkpoints.status();
  ASSERT_EQ(checkpoints->checkpoints_size(), 3);
  EXPECT_EQ(checkpoints->checkpoints(0).tree_size(), 3);
  EXPECT_EQ(checkpoints->checkpoints(1).tree_size(), 5);
  EXPECT_EQ(checkpoints->checkpoints(2).tree_size(), 6);
  EXPECT_GE(checkpoints->checkpoints(2).time().seconds(),
            absl::ToUnixSeconds(now));
  list.set_min_tree_size(4);
  list.set_page_size(1);
  checkpoints = auditor_b_.ListCheckpoints(list);
  ASSERT_TRUE(checkpoints.ok());
  ASSERT_EQ(checkpoints->checkpoints_size(), 1);
  EXPECT_EQ(checkpoints->checkpoints(0).tree_size(), 5);
  EXPECT_FALSE(checkpoints->next_page_token().empty());
}

TEST_F(AuditTest, ExportVerifiesAcrossKeyRotationAndRestart) {
  AppendEvents("clinic-a", 120, 40);
  ASSERT_TRUE(Module().checkpoint_keys().Rotate().ok());
  AppendEvents("clinic-a", 40, 40);
  server_.Restart();
  AppendEvents("clinic-a", 40, 40);
  const std::string text = ExportText("clinic-a");
  client::AuditVerifyOptions options;
  options.trusted_keys = TrustedKeys();
  ASSERT_EQ(options.trusted_keys.size(), 2u);
  auto report = client::VerifyAuditExport(text, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->events, 200);
  EXPECT_EQ(report->checkpoints, 5);
  EXPECT_EQ(report->signing_key_ids.size(), 2u);
  EXPECT_FALSE(report->keys_from_export);

  // The auditor's own reads since are not in the export: it ends at the
  // latest checkpoint. The tree head pinned from before still matches.
  v1::GetCheckpointRequest head;
  head.set_parent("tenants/clinic-a");
  head.set_tree_size(160);
  auto cp = auditor_a_.GetCheckpoint(head);
  ASSERT_TRUE(cp.ok()) << cp.status();
  options.known_tree_heads = {{160, cp->checkpoint().root_hash()}};
  EXPECT_TRUE(client::VerifyAuditExport(text, options).ok());
}

TEST_F(AuditTest, TamperingWithTheStoreIsCaughtAndPlaced) {
  struct Case {
    std::string tenant;
    std::function<void()> tamper;
    std::string reason;
    std::string place;
  };
  auto other = crypto::OpenSslEd25519Signer::Generate();
  ASSERT_TRUE(other.ok());
  auto flip = [&](const std::string& tenant, int64_t index) {
    std::string leaf = StoredLeaf(tenant, index);
    leaf[leaf.size() / 2] ^= 0x04;
    return leaf;
  };
  std::vector<Case> cases = {
      {"t-flip",
       [&] {
         Tamper(
             "UPDATE audit_events SET leaf = ? WHERE tenant = 't-flip' "
             "AND leaf_index = 77",
             {sql::Bytes(flip("t-flip", 77))});
       },
       "LEAF_HASH_MISMATCH", "event at leaf 77 "},
      {"t-flip-hash",
       [&] {
         Tamper(
             "UPDATE audit_events SET leaf_hash = ? WHERE tenant = "
             "'t-flip-hash' AND leaf_index = 77",
             {sql::Bytes(audit::LeafHash("x"))});
       },
       "LEAF_HASH_MISMATCH", "event at leaf 77 "},
      {"t-rewrite",
       [&] {
         std::string leaf = flip("t-rewrite", 77);
         Tamper(
             "UPDATE audit_events SET leaf = ?, leaf_hash = ? WHERE "
             "tenant = 't-rewrite' AND leaf_index = 77",
             {sql::Bytes(leaf), sql::Bytes(audit::LeafHash(leaf))});
       },
       "ROOT_MISMATCH", "checkpoint at size 100 "},
      {"t-delete",
       [&] {
         Tamper(
             "DELETE FROM audit_events WHERE tenant = 't-delete' AND "
             "leaf_index = 77");
       },
       "MISSING_LEAF", "missing leaf 77 "},
      {"t-insert",
       [&] {
         Tamper(
             "UPDATE audit_events SET leaf_index = leaf_index + 1000000 "
             "WHERE tenant = 't-insert' AND leaf_index >= 77");
         Tamper(
             "UPDATE audit_events SET leaf_index = leaf_index - 999999 "
             "WHERE tenant = 't-insert' AND leaf_index >= 1000000");
         Tamper(
             "INSERT INTO audit_events SELECT tenant, 77, time_us, actor, "
             "role, action, resource, patient, outcome, request_id, "
             "correlation_id, leaf, leaf_hash FROM audit_events WHERE "
             "tenant = 't-insert' AND leaf_index = 10");
         Tamper(
             "UPDATE audit_heads SET size = size + 1 WHERE tenant = "
             "'t-insert'");
       },
       "ROOT_MISMATCH", "checkpoint at size 100 "},
      {"t-swap",
       [&] {
         Tamper(
             "UPDATE audit_events SET leaf_index = -1 WHERE tenant = "
             "'t-swap' AND leaf_index = 77");
         Tamper(
             "UPDATE audit_events SET leaf_index = 77 WHERE tenant = "
             "'t-swap' AND leaf_index = 78");
         Tamper(
             "UPDATE audit_events SET leaf_index = 78 WHERE tenant = "
             "'t-swap' AND leaf_index = -1");
       },
       "ROOT_MISMATCH", "among leaves 50..99"},
      {"t-reorder",
       [&] {
         Tamper(
             "UPDATE audit_events SET leaf_index = 1000 + (leaf_index - "
             "200 + 1) % 10 + 200 WHERE tenant = 't-reorder' AND "
             "leaf_index BETWEEN 200 AND 209");
         Tamper(
             "UPDATE audit_events SET leaf_index = leaf_index - 1000 "
             "WHERE tenant = 't-reorder' AND leaf_index >= 1000");
       },
       "ROOT_MISMATCH", "checkpoint at size 250 "},
      {"t-truncate",
       [&] {
         Tamper(
             "DELETE FROM audit_events WHERE tenant = 't-truncate' AND "
             "leaf_index >= 280");
       },
       "MISSING_LEAF", "missing leaf 280 "},
      {"t-resign",
       [&] {
         std::string payload;
         ASSERT_TRUE(server_.env()
                         .db
                         ->Read([&](sql::Txn& txn) -> absl::Status {
                           auto rows = txn.Query(
                               "SELECT payload FROM audit_checkpoints WHERE "
                               "tenant = 't-resign' AND tree_size = 200");
                           if (!rows.ok()) return rows.status();
                           payload = (*rows)[0].Str(0);
                           return absl::OkStatus();
                         })
                         .ok());
         Tamper(
             "UPDATE audit_checkpoints SET signature = ? WHERE tenant = "
             "'t-resign' AND tree_size = 200",
             {sql::Bytes(*(*other)->Sign(payload))});
       },
       "SIGNATURE_INVALID", "checkpoint at size 200 "},
  };
  for (const Case& c : cases) AppendEvents(c.tenant, 300, 50);
  for (const Case& c : cases) {
    ASSERT_TRUE(VerifyExport(c.tenant).ok()) << c.tenant;
    c.tamper();
    auto report = VerifyExport(c.tenant);
    ASSERT_FALSE(report.ok()) << c.tenant << ": tampering went unnoticed";
    EXPECT_EQ(ErrorReason(report.status()), c.reason)
        << c.tenant << ": " << report.status();
    EXPECT_THAT(report.status().message(), HasSubstr(c.place)) << c.tenant;
  }
}

TEST_F(AuditTest, CleanLogOf100000EventsRaisesNoFalseAlarm) {
  AppendEvents("clinic-big", 100000, 10000);
  const std::string text = ExportText("clinic-big");
  client::AuditVerifyOptions options;
  options.trusted_keys = TrustedKeys();
  auto report = client::VerifyAuditExport(text, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->events, 100000);
  EXPECT_EQ(report->checkpoints, 10);
  EXPECT_EQ(report->tree_size, 100000);
}

}  // namespace
}  // namespace careseal
