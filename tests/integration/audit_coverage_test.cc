// Every attempt is an audit event, for every RPC of every hosted service.
// Each method the server hosts (found through health, not a hand-kept list)
// is called by every peer identity with an empty request through a generic
// stub: most calls are denied (wrong role) or refused (missing fields), a
// few succeed; one peer's certificate names no CareSeal identity, so all its
// calls are refused before any handler. Afterwards the audit log must hold
// exactly one event per attempt, with the method as its action and the very
// code the caller got as its outcome: events == attempts, denied ones included.
#include <grpcpp/generic/generic_stub.h>

#include <cstdio>
#include <future>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/common/sql/database.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::TestServer;
// (action, outcome) -> count
using Tally = std::map<std::pair<std::string, std::string>, int>;

constexpr const char* kPeers[] = {
    "spiffe://careseal.local/tenant/clinic-a/ehr/epic",
    "spiffe://careseal.local/tenant/clinic-a/clinician/dr-a",
    "spiffe://careseal.local/tenant/clinic-a/auditor/aud-a",
    "spiffe://careseal.local/admin",
    "spiffe://careseal.local/portal",
    // Issued by the trusted CA but naming no CareSeal identity: refused at
    // the TLS identity check, before any handler, and audited all the same.
    "spiffe://careseal.local/tenant/clinic-a/nurse/n-1",
};

constexpr const char* kServices[] = {
    "careseal.v1.ConsentService",  "careseal.v1.IdentityService",
    "careseal.v1.AuditService",    "careseal.v1.PreSessionService",
    "careseal.v1.FollowUpService", "careseal.v1.MessagingService",
    "careseal.v1.EventService",    "careseal.v1.FhirExportService"};

Tally StoredEvents(TestServer& server) {
  Tally out;
  absl::Status read = server.env().db->Read([&](sql::Txn& txn) {
    auto rows = txn.Query(
        "SELECT action, outcome, COUNT(*) FROM audit_events "
        "GROUP BY action, outcome",
        {});
    if (!rows.ok()) return rows.status();
    for (const auto& r : *rows) {
      out[{r.Str(0), r.Str(1)}] = static_cast<int>(r.Int(2));
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(read.ok()) << read;
  return out;
}

TEST(AuditCoverageTest, EveryAttemptOfEveryRpcIsOneEventWithItsOutcome) {
  TestServer server;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  {
    auto health =
        grpc::health::v1::Health::NewStub(server.ChannelFor(kPeers[0]));
    for (const char* name : kServices) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
      grpc::health::v1::HealthCheckRequest req;
      req.set_service(name);
      grpc::health::v1::HealthCheckResponse resp;
      if (health->Check(&ctx, req, &resp).ok()) {
        services.push_back(pool->FindServiceByName(name));
      }
    }
  }
  ASSERT_GE(services.size(), 3u) << "consent, audit and messaging at least";

  const Tally before = StoredEvents(server);
  Tally attempts;
  int total = 0;
  for (const char* peer : kPeers) {
    grpc::GenericStub stub(server.ChannelFor(peer));
    for (const auto* service : services) {
      ASSERT_NE(service, nullptr);
      for (int i = 0; i < service->method_count(); ++i) {
        const std::string method = service->full_name() + "/" +
                                   std::string(service->method(i)->name());
        const std::string path = "/" + method;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
        grpc::Slice empty("", 0);
        grpc::ByteBuffer request(&empty, 1), response;
        std::promise<grpc::Status> done;
        stub.UnaryCall(&ctx, path, grpc::StubOptions(), &request, &response,
                       [&done](grpc::Status s) { done.set_value(s); });
        const grpc::Status status = done.get_future().get();
        ASSERT_NE(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
            << path << " did not answer";
        ++attempts[{method,
                    absl::StatusCodeToString(
                        static_cast<absl::StatusCode>(status.error_code()))}];
        ++total;
      }
    }
  }

  // A refused peer's event is queued on the store's single writer before
  // the refusal reaches the caller; a write queued now completes after it.
  ASSERT_TRUE(server.env()
                  .db->WriteAndWait([](sql::Txn&) { return absl::OkStatus(); })
                  .ok());
  Tally added = StoredEvents(server);
  for (const auto& [key, count] : before) added[key] -= count;
  int events = 0, mismatches = 0;
  for (const auto& [key, count] : added) {
    if (count == 0) continue;
    events += count;
    auto want = attempts.find(key);
    const int expected = want == attempts.end() ? 0 : want->second;
    if (count != expected) {
      ++mismatches;
      ADD_FAILURE() << key.first << " " << key.second << ": " << count
                    << " events for " << expected << " attempts";
    }
  }
  for (const auto& [key, count] : attempts) {
    if (added[key] == 0) {
      ++mismatches;
      ADD_FAILURE() << key.first << " " << key.second << ": no event for "
                    << count << " attempts";
    }
  }
  std::printf(
      "audit coverage: %d attempts (%zu services x %zu peers), %d events, %d "
      "mismatches\n",
      total, services.size(), std::size(kPeers), events, mismatches);
  EXPECT_EQ(events, total);
  EXPECT_EQ(mismatches, 0);

  // The refused peer's events: in the deployment log, as "unauthenticated",
  // naming the certificate's identity, one per attempt.
  const std::string refused = kPeers[std::size(kPeers) - 1];
  int64_t refused_events = -1;
  ASSERT_TRUE(server.env()
                  .db
                  ->Read([&](sql::Txn& txn) {
                    auto rows = txn.Query(
                        "SELECT COUNT(*) FROM audit_events WHERE tenant = '_' "
                        "AND role = 'unauthenticated' AND actor = ? "
                        "AND outcome = 'UNAUTHENTICATED'",
                        {sql::Text(refused)});
                    if (!rows.ok()) return rows.status();
                    refused_events = (*rows)[0].Int(0);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(refused_events, total / static_cast<int>(std::size(kPeers)));
}

}  // namespace
}  // namespace careseal
