// Crash consistency: nothing acknowledged is ever lost.
//
// The real careseal-server binary (development PKI from
// certs-example/gen-certs.sh, a master key from /dev/urandom; on SQLite, or
// on PostgreSQL as crash_consistency_test_postgres) runs under
// 64-in-flight load of SignConsent, RequestConsent and SendMessage calls
// through the public C++ client, each call with a request_id fixed for its
// whole life. At a
// random moment the server is SIGKILLed; it is restarted over the same
// database and every call that was not acknowledged is retried with the same
// request_id. After at least ten such rounds a last round without a crash
// finishes every call, and the test checks, through the API and offline:
//   * every acknowledged RequestConsent made exactly one consent, the one it
//     answered (no retry created a second one);
//   * every acknowledged SignConsent's consent is ACTIVE with exactly the
//     receipt that was acknowledged, byte for byte, and that receipt verifies
//     offline against the key published by ListSigningKeys;
//   * every acknowledged SendMessage is in its thread exactly once, under the
//     name that was acknowledged, with its text (no retry sent it twice).
//
// No assertion depends on speed: the crash moments are random, and the test
// only counts how much work each round acknowledged. Set CARESEAL_CRASH_SEED
// to replay a sequence of crash moments.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "clients/cpp/client.h"
#include "clients/cpp/consent_client.h"
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
using client::CallOptions;
using client::ConsentClient;
using client::MessagingClient;
using testing::ServerProcess;

constexpr char kTenant[] = "demo-clinic";  // the tenant of gen-certs' EHR
constexpr char kProcedure[] = "ketamine-iv-induction";
constexpr int kInflight = 64;
constexpr int kKillRounds = 12;  // at least ten, as the issue asks
constexpr int kSignOps = 1500;
constexpr int kRequestOps = 3000;
constexpr int kMessageOps = 1500;
constexpr int kThreads = 30;

// One mutation with a request_id fixed for its whole life, retried until it
// is acknowledged.
struct Op {
  bool is_sign = false;
  bool is_message = false;
  v1::RequestConsentRequest request;
  v1::SignConsentRequest sign;
  v1::SendMessageRequest message;
  std::string message_name;  // the message the answer named
  // Set once acknowledged (the server answered OK).
  bool acked = false;
  int acked_in_round = -1;
  std::string consent;         // the consent the answer named
  v1::ConsentReceipt receipt;  // for a signature
  int attempts = 0;
};

// Errors that mean "the server went away": the call may or may not have
// taken effect, and is retried with the same request_id.
bool MeansServerGone(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kCancelled ||
         code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kUnknown;
}

class CrashConsistencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    files_.certs = dir_.File("certs");
    files_.db = dir_.File("careseal.db");
    files_.key_dir = dir_.File("keys");
    files_.log = dir_.File("server.log");
    if (testing::TestStoreIsPostgres()) {
      pg_ = std::make_unique<testing::TempPgDatabase>();
      files_.postgres = pg_->conninfo();
    }
    ASSERT_TRUE(ServerProcess::MakeFiles(CARESEAL_GEN_CERTS, files_));
    const char* seed = std::getenv("CARESEAL_CRASH_SEED");
    seed_ = seed != nullptr ? std::strtoull(seed, nullptr, 10)
                            : std::random_device{}();
    std::printf("crash moments: CARESEAL_CRASH_SEED=%llu\n",
                static_cast<unsigned long long>(seed_));
  }

  std::shared_ptr<grpc::Channel> ChannelAs(const ServerProcess& server,
                                           const std::string& who) {
    client::ChannelOptions options;
    options.target = absl::StrCat("localhost:", server.port());
    options.ca_file = files_.certs + "/ca.crt";
    options.cert_file = absl::StrCat(files_.certs, "/", who, ".crt");
    options.key_file = absl::StrCat(files_.certs, "/", who, ".key");
    auto channel = client::MakeChannel(options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  ConsentClient ClientAs(const ServerProcess& server, const std::string& who) {
    return ConsentClient(ChannelAs(server, who));
  }

  static CallOptions Once() {
    CallOptions o;
    o.max_attempts = 1;  // the test does its own retrying, across crashes
    o.timeout = absl::Seconds(20);
    return o;
  }

  // Publishes the consent document and makes the pending consents that the
  // sign operations will sign; builds every operation with its request_id.
  void Prepare(ServerProcess& server) {
    ConsentClient ehr = ClientAs(server, "ehr-demo");
    ConsentClient portal = ClientAs(server, "portal");
    v1::CreateConsentTemplateRequest create;
    create.set_parent(absl::StrCat("tenants/", kTenant));
    create.set_consent_template_id("ketamine");
    create.mutable_consent_template()->set_display_name("IV ketamine");
    ASSERT_TRUE(ehr.CreateConsentTemplate(create).ok());
    v1::PublishConsentTemplateVersionRequest publish;
    publish.set_parent(
        absl::StrCat("tenants/", kTenant, "/consentTemplates/ketamine"));
    *publish.mutable_version() = testing::KetamineConsent();
    auto published = ehr.PublishConsentTemplateVersion(publish);
    ASSERT_TRUE(published.ok()) << published.status();
    const v1::ConsentTemplateVersion& doc = published->version();

    ops_.resize(kSignOps + kRequestOps);
    std::atomic<int> next{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kInflight; ++t) {
      threads.emplace_back([&] {
        for (int j; (j = next.fetch_add(1)) < kSignOps;) {
          v1::RequestConsentRequest request;
          request.set_parent(
              absl::StrCat("tenants/", kTenant, "/patients/s-", j));
          request.set_procedure_code(kProcedure);
          CallOptions retrying;  // before any crash: plain client retries
          auto pending = ehr.RequestConsent(request, retrying);
          if (!pending.ok()) {
            ++failures;
            continue;
          }
          Op& op = ops_[j];
          op.is_sign = true;
          op.sign = testing::SignEverything(doc, *pending,
                                            absl::StrCat("Patient S", j));
          op.sign.set_request_id(client::NewRequestId());
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(failures.load(), 0);
    for (int i = 0; i < kRequestOps; ++i) {
      v1::RequestConsentRequest& r = ops_[kSignOps + i].request;
      r.set_parent(absl::StrCat("tenants/", kTenant, "/patients/r-", i));
      r.set_procedure_code(kProcedure);
      r.set_request_id(client::NewRequestId());
    }

    // Messages from the clinic's clinician into threads of their own.
    MessagingClient clinician(ChannelAs(server, "clinician-demo"));
    for (int t = 0; t < kThreads; ++t) {
      v1::CreateThreadRequest create;
      create.set_parent(absl::StrCat("tenants/", kTenant, "/patients/m-", t));
      create.mutable_thread()->set_subject("Your infusion series");
      create.mutable_thread()->set_category(v1::THREAD_CATEGORY_INSTRUCTIONS);
      auto thread = clinician.CreateThread(create);
      ASSERT_TRUE(thread.ok()) << thread.status();
      threads_.push_back(thread->thread().name());
    }
    ops_.resize(kSignOps + kRequestOps + kMessageOps);
    for (int i = 0; i < kMessageOps; ++i) {
      Op& op = ops_[kSignOps + kRequestOps + i];
      op.is_message = true;
      op.message.set_parent(threads_[i % kThreads]);
      op.message.set_text(absl::StrCat("Crash-test message ", i));
      op.message.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
      op.message.set_request_id(client::NewRequestId());
    }
  }

  // Runs every unacknowledged operation, kInflight at a time, in a random
  // order. With `kill_after`, SIGKILLs the server that long after the load
  // starts and stops issuing calls. Returns the number acknowledged.
  int RunRound(ServerProcess& server, int round,
               std::optional<std::chrono::milliseconds> kill_after,
               std::mt19937_64& rng) {
    std::vector<int> order;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (!ops_[i].acked) order.push_back(static_cast<int>(i));
    }
    std::shuffle(order.begin(), order.end(), rng);
    ConsentClient ehr = ClientAs(server, "ehr-demo");
    ConsentClient portal = ClientAs(server, "portal");
    MessagingClient clinician(ChannelAs(server, "clinician-demo"));
    std::atomic<size_t> next{0};
    std::atomic<bool> stop{false};
    std::atomic<int> acked{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kInflight; ++t) {
      threads.emplace_back([&] {
        while (!stop.load()) {
          const size_t k = next.fetch_add(1);
          if (k >= order.size()) return;
          Op& op = ops_[order[k]];  // only this thread touches op this round
          ++op.attempts;
          absl::Status status;
          if (op.is_message) {
            auto r = clinician.SendMessage(op.message, Once());
            status = r.status();
            if (r.ok()) op.message_name = r->message().name();
          } else if (op.is_sign) {
            auto r = portal.SignConsent(op.sign, Once());
            status = r.status();
            if (r.ok()) {
              op.consent = r->consent().name();
              op.receipt = r->receipt();
            }
          } else {
            auto r = ehr.RequestConsent(op.request, Once());
            status = r.status();
            if (r.ok()) op.consent = r->consent().name();
          }
          if (status.ok()) {
            op.acked = true;
            op.acked_in_round = round;
            ++acked;
          } else if (!kill_after || !MeansServerGone(status.code())) {
            absl::MutexLock lock(&mu_);
            unexpected_.push_back(
                absl::StrCat(Describe(op), ": ", status.ToString(), " [",
                             client::ErrorReason(status), "]"));
          }
        }
      });
    }
    if (kill_after) {
      std::this_thread::sleep_for(*kill_after);
      server.Kill();
      stop.store(true);
    }
    for (auto& t : threads) t.join();
    return acked.load();
  }

  static std::string Describe(const Op& op) {
    if (op.is_message) return op.message.text();
    return op.is_sign ? op.sign.name() : op.request.parent();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::TempPgDatabase> pg_;  // with CARESEAL_TEST_STORE
  ServerProcess::Files files_;
  std::vector<std::string> threads_;
  uint64_t seed_ = 0;
  std::vector<Op> ops_;
  absl::Mutex mu_;
  std::vector<std::string> unexpected_ ABSL_GUARDED_BY(mu_);
};

TEST_F(CrashConsistencyTest, AcknowledgedWritesSurviveSigkill) {
  std::mt19937_64 rng(seed_);
  {
    auto server = ServerProcess::Start(CARESEAL_SERVER_BINARY, files_);
    ASSERT_NE(server, nullptr);
    Prepare(*server);
    if (HasFatalFailure()) return;
  }  // SIGKILL: even the set-up is not shut down cleanly

  std::uniform_int_distribution<int> moment_ms(20, 700);
  for (int round = 1; round <= kKillRounds; ++round) {
    auto server = ServerProcess::Start(CARESEAL_SERVER_BINARY, files_);
    ASSERT_NE(server, nullptr) << "no restart after crash " << round - 1;
    const auto kill_after = std::chrono::milliseconds(moment_ms(rng));
    const int acked = RunRound(*server, round, kill_after, rng);
    int left = 0;
    for (const Op& op : ops_) left += op.acked ? 0 : 1;
    std::printf(
        "round %2d: SIGKILL after %4lld ms; %5d acknowledged, %5d "
        "left to retry\n",
        round, static_cast<long long>(kill_after.count()), acked, left);
  }
  auto server = ServerProcess::Start(CARESEAL_SERVER_BINARY, files_);
  ASSERT_NE(server, nullptr);
  const int finished = RunRound(*server, kKillRounds + 1, std::nullopt, rng);
  std::printf("final round without a crash: %d acknowledged\n", finished);
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& e : unexpected_) ADD_FAILURE() << e;
  }
  int retried = 0;
  for (const Op& op : ops_) {
    ASSERT_TRUE(op.acked) << "never acknowledged: " << Describe(op);
    retried += op.attempts > 1 ? 1 : 0;
  }
  std::printf("%d of %zu operations needed more than one attempt\n", retried,
              ops_.size());

  // Everything that was ever acknowledged, as the server has it now.
  ConsentClient ehr = ClientAs(*server, "ehr-demo");
  std::map<std::string, std::vector<v1::Consent>> by_patient;
  v1::ListConsentsRequest list;
  list.set_parent(absl::StrCat("tenants/", kTenant, "/patients/-"));
  list.set_page_size(1000);
  do {
    auto page = ehr.ListConsents(list);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::Consent& c : page->consents()) {
      const std::string patient =
          c.name().substr(0, c.name().find("/consents/"));
      by_patient[patient].push_back(c);
    }
    list.set_page_token(page->next_page_token());
  } while (!list.page_token().empty());
  std::map<std::string, std::string> keys;  // key id -> PEM
  auto listed = ehr.ListSigningKeys({});
  ASSERT_TRUE(listed.ok()) << listed.status();
  for (const auto& k : listed->signing_keys()) {
    keys[k.key_id()] = k.public_key_pem();
  }

  // Every message exactly once, under the acknowledged name.
  MessagingClient clinician(ChannelAs(*server, "clinician-demo"));
  std::map<std::string, std::vector<std::string>> names_by_text;
  for (const std::string& thread : threads_) {
    v1::ListMessagesRequest list_messages;
    list_messages.set_parent(thread);
    list_messages.set_page_size(1000);
    do {
      auto page = clinician.ListMessages(list_messages);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const v1::Message& m : page->messages()) {
        names_by_text[m.text()].push_back(m.name());
      }
      list_messages.set_page_token(page->next_page_token());
    } while (!list_messages.page_token().empty());
  }
  EXPECT_EQ(names_by_text.size(), static_cast<size_t>(kMessageOps));
  for (const Op& op : ops_) {
    if (!op.is_message) continue;
    const std::vector<std::string>& stored = names_by_text[op.message.text()];
    ASSERT_EQ(stored.size(), 1u)
        << op.message.text() << " (acknowledged in round " << op.acked_in_round
        << ")";
    EXPECT_EQ(stored[0], op.message_name);
  }

  for (const Op& op : ops_) {
    if (op.is_message) continue;
    const std::string patient =
        op.is_sign ? op.sign.name().substr(0, op.sign.name().find("/consents/"))
                   : op.request.parent();
    const std::vector<v1::Consent>& stored = by_patient[patient];
    // Exactly once: one consent per patient, the acknowledged one.
    ASSERT_EQ(stored.size(), 1u)
        << patient << " (acknowledged in round " << op.acked_in_round << ")";
    EXPECT_EQ(stored[0].name(), op.consent) << patient;
    if (!op.is_sign) continue;
    EXPECT_EQ(stored[0].state(), v1::CONSENT_STATE_ACTIVE) << patient;
    EXPECT_EQ(stored[0].receipt().payload(), op.receipt.payload()) << patient;
    EXPECT_EQ(stored[0].receipt().signature(), op.receipt.signature())
        << patient;
    ASSERT_EQ(keys.count(op.receipt.key_id()), 1u) << op.receipt.key_id();
    auto file = client::EncodeReceiptFile(stored[0].receipt());
    ASSERT_TRUE(file.ok()) << file.status();
    auto verified = client::VerifyReceiptFile(*file, keys[op.receipt.key_id()]);
    EXPECT_TRUE(verified.ok()) << patient << ": " << verified.status();
  }
}

}  // namespace
}  // namespace careseal
