// The method x role matrix, asserted cell by cell against the contracts.
// Expected values come from the "Roles:" line of each RPC's comment in
// proto/careseal/v1/*.proto (not from the C++ policy table), so a method
// whose policy row disagrees with its contract, or that has no row, fails.
// Every method of every service the server hosts is called (with an empty
// request, through a generic stub) by every peer identity; a role the
// contract does not list must get PERMISSION_DENIED (ROLE_NOT_ALLOWED), a
// listed one must not. A call from another tenant's or a foreign identity is
// covered by the ownership tests; roles carried by end-user tokens (patient,
// break_glass) join this matrix with the identity service.
#include <grpcpp/generic/generic_stub.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cpp/client.h"
#include "clients/cpp/consent_client.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

namespace v1 = ::careseal::v1;
using ::careseal::testing::TestServer;

// RPC full name ("careseal.v1.ConsentService/GetConsent") -> roles listed.
std::map<std::string, std::set<std::string>> ContractRoles() {
  std::map<std::string, std::set<std::string>> out;
  const std::regex service_re(R"(^service\s+(\w+)\s*\{)");
  const std::regex rpc_re(R"(^\s*rpc\s+(\w+)\s*\()");
  const std::regex role_re(
      R"(\b(ehr_system|clinician|patient|auditor|admin|break_glass|portal|system)\b)");
  for (const auto& entry :
       std::filesystem::directory_iterator(CARESEAL_PROTO_DIR)) {
    if (entry.path().extension() != ".proto") continue;
    std::ifstream in(entry.path());
    std::string line, service, roles_text;
    bool in_roles = false;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, service_re)) service = m[1];
      absl::string_view l = absl::StripAsciiWhitespace(line);
      if (absl::ConsumePrefix(&l, "// Roles:")) {
        roles_text = std::string(l);
        in_roles = true;
        continue;
      }
      if (in_roles) {
        absl::string_view cont = l;
        if (absl::ConsumePrefix(&cont, "//") &&
            !absl::StartsWith(absl::StripLeadingAsciiWhitespace(cont),
                              "Errors:") &&
            !absl::StripAsciiWhitespace(cont).empty()) {
          roles_text += " " + std::string(cont);
          continue;
        }
        in_roles = false;
      }
      if (std::regex_search(line, m, rpc_re) && !service.empty()) {
        std::set<std::string> roles;
        if (roles_text.find("every authenticated role") != std::string::npos) {
          roles = {"ehr_system", "clinician",   "patient", "auditor",
                   "admin",      "break_glass", "portal",  "system"};
        }
        // Parenthesised notes ("own, through the portal") are not roles.
        roles_text =
            std::regex_replace(roles_text, std::regex(R"(\([^)]*\))"), "");
        for (std::sregex_iterator
                 it(roles_text.begin(), roles_text.end(), role_re),
             end;
             it != end; ++it) {
          roles.insert((*it)[1]);
        }
        out["careseal.v1." + service + "/" + std::string(m[1])] = roles;
        roles_text.clear();
      }
    }
  }
  return out;
}

struct Caller {
  const char* role;
  const char* uri;
};

constexpr Caller kCallers[] = {
    {"ehr_system", "spiffe://careseal.local/tenant/clinic-a/ehr/epic"},
    {"clinician", "spiffe://careseal.local/tenant/clinic-a/clinician/dr-a"},
    {"auditor", "spiffe://careseal.local/tenant/clinic-a/auditor/aud-a"},
    {"admin", "spiffe://careseal.local/admin"},
    {"portal", "spiffe://careseal.local/portal"},
};

TEST(AuthzMatrixTest, EveryMethodAndRoleMatchesTheContract) {
  const auto contract = ContractRoles();
  ASSERT_GT(contract.size(), 50u) << "the contracts were not read";
  TestServer server;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();

  // The services this server hosts (health knows them).
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  {
    auto health =
        grpc::health::v1::Health::NewStub(server.ChannelFor(kCallers[0].uri));
    for (const char* name :
         {"careseal.v1.ConsentService", "careseal.v1.IdentityService",
          "careseal.v1.AuditService", "careseal.v1.PreSessionService",
          "careseal.v1.FollowUpService", "careseal.v1.MessagingService",
          "careseal.v1.EventService", "careseal.v1.FhirExportService"}) {
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
  ASSERT_FALSE(services.empty());

  int cells = 0, mismatches = 0;
  for (const Caller& caller : kCallers) {
    grpc::GenericStub stub(server.ChannelFor(caller.uri));
    for (const auto* service : services) {
      ASSERT_NE(service, nullptr);
      for (int i = 0; i < service->method_count(); ++i) {
        const auto* method = service->method(i);
        const std::string full =
            service->full_name() + "/" + std::string(method->name());
        auto row = contract.find(full);
        ASSERT_NE(row, contract.end()) << full << " has no Roles: line";
        const bool allowed = row->second.count(caller.role) > 0;

        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
        grpc::Slice empty("", 0);
        grpc::ByteBuffer request(&empty, 1), response;  // an empty message
        std::promise<grpc::Status> done;
        stub.UnaryCall(&ctx, "/" + full, grpc::StubOptions(), &request,
                       &response,
                       [&done](grpc::Status s) { done.set_value(s); });
        grpc::Status status = done.get_future().get();
        const bool role_denied =
            status.error_code() == grpc::StatusCode::PERMISSION_DENIED &&
            client::ErrorReason(client::FromGrpcStatus(status)) ==
                "ROLE_NOT_ALLOWED";
        ++cells;
        if (role_denied == allowed) {
          ++mismatches;
          ADD_FAILURE() << full << " as " << caller.role << ": contract says "
                        << (allowed ? "allowed" : "denied") << ", server said "
                        << status.error_code() << " " << status.error_message();
        }
      }
    }
  }
  std::printf(
      "authz matrix: %d cells (%zu services x %zu peer roles), %d "
      "mismatches\n",
      cells, services.size(), std::size(kCallers), mismatches);
  EXPECT_EQ(mismatches, 0);
}

// 10,000 names from another tenant (half of them real consents there, half
// random) get exactly the answer an absent name of one's own tenant gets.
TEST(AuthzMatrixTest, ForeignNamesLeakNothing) {
  TestServer server;
  client::ConsentClient ehr_b(
      server.ChannelFor("spiffe://careseal.local/tenant/clinic-b/ehr/epic"));
  v1::CreateConsentTemplateRequest create;
  create.set_parent("tenants/clinic-b");
  create.set_consent_template_id("ketamine");
  create.mutable_consent_template()->set_display_name("IV ketamine");
  ASSERT_TRUE(ehr_b.CreateConsentTemplate(create).ok());
  v1::PublishConsentTemplateVersionRequest publish;
  publish.set_parent("tenants/clinic-b/consentTemplates/ketamine");
  auto* v = publish.mutable_version();
  v->set_title("Consent");
  v->set_body_markdown("Body");
  auto* ack = v->add_acknowledgements();
  ack->set_id("risks");
  ack->set_text("I understand the risks.");
  ack->set_required(true);
  v->add_procedure_codes("ketamine-iv-induction");
  v->set_esign_disclosure("Disclosure");
  v->set_signature_meaning("Consent to treatment");
  ASSERT_TRUE(ehr_b.PublishConsentTemplateVersion(publish).ok());
  std::vector<std::string> real;
  for (int i = 0; i < 20; ++i) {
    v1::RequestConsentRequest request;
    request.set_parent("tenants/clinic-b/patients/p-" + std::to_string(i));
    request.set_procedure_code("ketamine-iv-induction");
    auto r = ehr_b.RequestConsent(request);
    ASSERT_TRUE(r.ok()) << r.status();
    real.push_back(r->consent().name());
  }

  client::ConsentClient ehr_a(
      server.ChannelFor("spiffe://careseal.local/tenant/clinic-a/ehr/epic"));
  v1::GetConsentRequest absent;
  absent.set_name("tenants/clinic-a/patients/p-1/consents/nothere");
  const absl::Status reference = ehr_a.GetConsent(absent).status();
  ASSERT_EQ(reference.code(), absl::StatusCode::kNotFound);

  constexpr int kProbes = 10000;
  constexpr int kThreads = 8;
  std::atomic<int> leaks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      for (int i = t; i < kProbes; i += kThreads) {
        v1::GetConsentRequest get;
        if (i % 2 == 0) {
          get.set_name(real[rng() % real.size()]);
        } else {
          get.set_name("tenants/clinic-b/patients/p-" +
                       std::to_string(rng() % 1000) + "/consents/c" +
                       std::to_string(rng()));
        }
        client::CallOptions once;
        once.max_attempts = 1;
        absl::Status s = ehr_a.GetConsent(get, once).status();
        if (s.code() != reference.code() ||
            s.message() != reference.message() ||
            client::ErrorReason(s) != client::ErrorReason(reference)) {
          ++leaks;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::printf("foreign names probed: %d, answers differing from absent: %d\n",
              kProbes, leaks.load());
  EXPECT_EQ(leaks, 0);
}

}  // namespace
}  // namespace careseal
