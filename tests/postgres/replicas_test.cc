// Two careseal-server processes (replicas) sharing one PostgreSQL database,
// as a clinic that outgrew one machine runs them: requests land on either.
//   * consents requested on one replica are signed on the other, and each
//     replica answers CheckConsent for every one of them; every receipt
//     verifies offline against the keys ListSigningKeys publishes;
//   * a watcher on one replica is pushed, live, the event of a message sent
//     through the other (the commit's NOTIFY rings the other's bus);
//   * the tenant's audit log, written by both at once, is one log: its export
//     verifies offline (leaf hashes, indexes 0..n-1 without a gap or a fork).
#include <atomic>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "clients/cpp/audit_client.h"
#include "clients/cpp/audit_verify.h"
#include "clients/cpp/client.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/events_client.h"
#include "clients/cpp/messaging_client.h"
#include "clients/cpp/receipt.h"
#include "gtest/gtest.h"
#include "tests/testing/consent_fixtures.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

namespace careseal {
namespace {

namespace v1 = ::careseal::v1;
using client::ConsentClient;
using client::MessagingClient;
using testing::ServerProcess;

constexpr char kTenant[] = "demo-clinic";  // the tenant of gen-certs' EHR
constexpr char kProcedure[] = "ketamine-iv-induction";
constexpr int kPatients = 120;
constexpr int kThreads = 16;

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerProcess::Files files;
    files.certs = dir_.File("certs");
    files.key_dir = dir_.File("keys");  // the same keys on every replica
    files.postgres = pg_.conninfo();
    ASSERT_TRUE(ServerProcess::MakeFiles(CARESEAL_GEN_CERTS, files));
    // Started from this thread: a child dies with the thread that forked it
    // (PR_SET_PDEATHSIG). Migrations started at once are
    // postgres_database_test's MigrationsRunOnceAcrossReplicas.
    for (int r = 0; r < 2; ++r) {
      ServerProcess::Files f = files;
      f.log = dir_.File(absl::StrCat("replica-", r, ".log"));
      replica_[r] = ServerProcess::Start(CARESEAL_SERVER_BINARY, f);
    }
    ASSERT_NE(replica_[0], nullptr);
    ASSERT_NE(replica_[1], nullptr);
    certs_ = files.certs;
  }

  std::shared_ptr<grpc::Channel> ChannelAs(int replica,
                                           const std::string& who) {
    client::ChannelOptions options;
    options.target = absl::StrCat("localhost:", replica_[replica]->port());
    options.ca_file = certs_ + "/ca.crt";
    options.cert_file = absl::StrCat(certs_, "/", who, ".crt");
    options.key_file = absl::StrCat(certs_, "/", who, ".key");
    auto channel = client::MakeChannel(options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  testing::TempPgDatabase pg_;
  testing::TempDir dir_;
  std::string certs_;
  std::unique_ptr<ServerProcess> replica_[2];
};

TEST_F(ReplicasTest, ConsentsEventsAndTheAuditLogAreOneAcrossReplicas) {
  ConsentClient ehr[2] = {ConsentClient(ChannelAs(0, "ehr-demo")),
                          ConsentClient(ChannelAs(1, "ehr-demo"))};
  ConsentClient portal[2] = {ConsentClient(ChannelAs(0, "portal")),
                             ConsentClient(ChannelAs(1, "portal"))};

  v1::CreateConsentTemplateRequest create;
  create.set_parent(absl::StrCat("tenants/", kTenant));
  create.set_consent_template_id("ketamine");
  create.mutable_consent_template()->set_display_name("IV ketamine");
  ASSERT_TRUE(ehr[0].CreateConsentTemplate(create).ok());
  v1::PublishConsentTemplateVersionRequest publish;
  publish.set_parent(
      absl::StrCat("tenants/", kTenant, "/consentTemplates/ketamine"));
  *publish.mutable_version() = testing::KetamineConsent();
  // Published on the other replica: it must see the template at once.
  auto published = ehr[1].PublishConsentTemplateVersion(publish);
  ASSERT_TRUE(published.ok()) << published.status();
  const v1::ConsentTemplateVersion doc = published->version();

  // Request on one replica, sign on the other, check on both; all at once.
  absl::Mutex mu;
  std::vector<std::string> failures;
  std::map<std::string, v1::ConsentReceipt> receipts;  // consent -> receipt
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < kPatients;) {
        const int on = i % 2, other = 1 - on;
        auto fail = [&](absl::string_view what, const absl::Status& s) {
          absl::MutexLock lock(&mu);
          failures.push_back(
              absl::StrCat("patient ", i, ": ", what, ": ", s.ToString()));
        };
        v1::RequestConsentRequest request;
        request.set_parent(
            absl::StrCat("tenants/", kTenant, "/patients/p-", i));
        request.set_procedure_code(kProcedure);
        auto pending = ehr[on].RequestConsent(request);
        if (!pending.ok()) return fail("request", pending.status());
        auto signed_consent = portal[other].SignConsent(testing::SignEverything(
            doc, *pending, absl::StrCat("Patient P", i)));
        if (!signed_consent.ok()) return fail("sign", signed_consent.status());
        for (int r = 0; r < 2; ++r) {
          v1::CheckConsentRequest check;
          check.set_patient(request.parent());
          check.set_procedure_code(kProcedure);
          auto c = ehr[r].CheckConsent(check);
          if (!c.ok()) return fail("check", c.status());
          if (!c->valid() || c->consent() != pending->consent().name()) {
            return fail(absl::StrCat("check on replica ", r),
                        absl::InternalError(c->ShortDebugString()));
          }
        }
        absl::MutexLock lock(&mu);
        receipts[signed_consent->consent().name()] = signed_consent->receipt();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& f : failures) ADD_FAILURE() << f;
  ASSERT_EQ(receipts.size(), static_cast<size_t>(kPatients));

  // One key (both replicas hold the same key files), published by either.
  std::map<std::string, std::string> keys;
  for (int r = 0; r < 2; ++r) {
    auto listed = ehr[r].ListSigningKeys({});
    ASSERT_TRUE(listed.ok()) << listed.status();
    for (const auto& k : listed->signing_keys()) {
      keys[k.key_id()] = k.public_key_pem();
    }
  }
  for (const auto& [consent, receipt] : receipts) {
    ASSERT_EQ(keys.count(receipt.key_id()), 1u) << receipt.key_id();
    auto file = client::EncodeReceiptFile(receipt);
    ASSERT_TRUE(file.ok()) << file.status();
    auto verified = client::VerifyReceiptFile(*file, keys[receipt.key_id()]);
    EXPECT_TRUE(verified.ok()) << consent << ": " << verified.status();
  }

  // A watcher on replica 1 hears, live, a message sent through replica 0.
  MessagingClient clinician(ChannelAs(0, "clinician-demo"));
  v1::CreateThreadRequest thread;
  thread.set_parent(absl::StrCat("tenants/", kTenant, "/patients/p-0"));
  thread.mutable_thread()->set_subject("Your infusion series");
  thread.mutable_thread()->set_category(v1::THREAD_CATEGORY_INSTRUCTIONS);
  auto made = clinician.CreateThread(thread);
  ASSERT_TRUE(made.ok()) << made.status();
  auto send = [&](const std::string& text) {
    v1::SendMessageRequest m;
    m.set_parent(made->thread().name());
    m.set_text(text);
    m.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
    auto sent = clinician.SendMessage(m);
    EXPECT_TRUE(sent.ok()) << sent.status();
    return sent.ok() ? sent->message().name() : "";
  };
  const std::string first = send("Please fast for six hours.");
  client::EventsClient events(ChannelAs(1, "ehr-demo"));
  v1::WatchEventsRequest watch;
  watch.set_parent(absl::StrCat("tenants/", kTenant));
  watch.set_after_cursor(0);  // replay, then live
  // The deadline only bounds a failure: without the other replica's ring
  // the stream would wait for it until then.
  client::WatchOptions watch_options;
  watch_options.max_duration = absl::Seconds(60);
  auto stream = events.WatchEvents(watch, watch_options);
  v1::WatchEventsResponse item;
  bool replayed = false;
  while (!replayed && stream->Next(&item)) {
    replayed = item.event().resource() == first;
  }
  ASSERT_TRUE(replayed) << stream->Finish();
  const std::string second = send("Bring someone to drive you home.");
  ASSERT_TRUE(stream->Next(&item))
      << "no live event from the other replica: " << stream->Finish();
  EXPECT_EQ(item.event().resource(), second);
  stream->Cancel();

  // Both replicas appended to one audit log: its export verifies offline.
  // The checkpoint is signed on replica 0, the export read from replica 1.
  client::AuditClient checkpointer(ChannelAs(0, "auditor-demo"));
  v1::CreateCheckpointRequest checkpoint;
  checkpoint.set_parent(absl::StrCat("tenants/", kTenant));
  auto signed_head = checkpointer.CreateCheckpoint(checkpoint);
  ASSERT_TRUE(signed_head.ok()) << signed_head.status();
  client::AuditClient audit(ChannelAs(1, "auditor-demo"));
  std::ostringstream out;
  auto counts = client::ExportAuditLogToStream(
      audit, absl::StrCat("tenants/", kTenant), out);
  ASSERT_TRUE(counts.ok()) << counts.status();
  auto report = client::VerifyAuditExport(out.str());
  ASSERT_TRUE(report.ok()) << report.status();
  // Each patient: a request, a signature and two checks, at least.
  EXPECT_GE(report->events, 4 * kPatients);
  EXPECT_EQ(report->events, counts->events);
}

}  // namespace
}  // namespace careseal
