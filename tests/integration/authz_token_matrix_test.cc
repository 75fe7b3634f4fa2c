// The method x role matrix for end users: every RPC of every hosted service
// called (empty request, generic stub) with a real JWT, minted here, for each
// end-user caller: a clinician and an auditor of tenant A (through A's EHR),
// a patient (through the portal, in a verified session), and tokens that
// must be refused whatever the method: expired, from an issuer the peer may
// not speak for, with a forged signature. Expected values come from the
// "Roles:" lines of the contracts (parsed as in authz_matrix_test.cc), so a
// policy row that disagrees with its contract fails here too. Peer-only
// callers are covered by authz_matrix_test.cc; ownership (own/other patient,
// other tenant) and break-glass by authz_ownership_matrix_test.cc.
#include <grpcpp/generic/generic_stub.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "clients/cpp/client.h"
#include "clients/cpp/identity_client.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/common/authn/jwt.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

namespace v1 = ::careseal::v1;
using ::careseal::testing::kAdmin;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kEhrB;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using Json = nlohmann::json;

constexpr char kEhrIss[] = "https://ehr.clinic-a.example";
constexpr char kPortalIss[] = "https://portal.careseal.example";

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

// One row of callers: a peer, a fresh token per call, and what every call
// must get: a role's contract row, or one refusal for every method.
struct Caller {
  std::string label;
  std::string peer;
  std::function<std::string()> token;
  std::string role;            // contract role, or empty for a refusal row
  std::string refusal_reason;  // UNAUTHENTICATED reason for refusal rows
};

TEST(AuthzTokenMatrixTest, EveryMethodForEveryEndUserMatchesTheContract) {
  const auto contract = ContractRoles();
  ASSERT_GT(contract.size(), 50u) << "the contracts were not read";
  TestServer server;
  client::CallOptions once;
  once.max_attempts = 1;

  auto es = authn::JwtSigner::GenerateEs256("ehr-1").value();
  auto portal_key = authn::JwtSigner::GenerateEd25519("portal-1").value();
  auto forger = authn::JwtSigner::GenerateEs256("ehr-1").value();
  client::IdentityClient admin(server.ChannelFor(kAdmin));
  client::IdentityClient ehr(server.ChannelFor(kEhrA));
  client::IdentityClient portal(server.ChannelFor(kPortal));
  for (const char* t : {"clinic-a", "clinic-b"}) {
    v1::CreateTenantRequest r;
    r.set_tenant_id(t);
    r.mutable_tenant()->set_display_name(t);
    r.mutable_tenant()->set_time_zone("UTC");
    ASSERT_TRUE(admin.CreateTenant(r).ok());
  }
  auto reg = [&](const char* id, const char* iss, v1::IssuerKind kind,
                 const char* peer, const authn::JwtSigner& key) {
    v1::RegisterIssuerRequest r;
    r.set_parent("tenants/clinic-a");
    r.set_issuer_id(id);
    r.mutable_issuer()->set_issuer_uri(iss);
    r.mutable_issuer()->set_kind(kind);
    r.mutable_issuer()->add_peer_identities(peer);
    r.mutable_issuer()->set_jwks_json(key.PublicJwks());
    return admin.RegisterIssuer(r).status();
  };
  ASSERT_TRUE(reg("epic", kEhrIss, v1::ISSUER_KIND_EHR, kEhrA, *es).ok());
  ASSERT_TRUE(
      reg("portal", kPortalIss, v1::ISSUER_KIND_PORTAL, kPortal, *portal_key)
          .ok());
  for (auto [id, sub, role] : {std::tuple{"dr-a", "u-1", v1::ROLE_CLINICIAN},
                               std::tuple{"aud-a", "u-2", v1::ROLE_AUDITOR}}) {
    v1::CreateClinicianRequest r;
    r.set_parent("tenants/clinic-a");
    r.set_clinician_id(id);
    r.mutable_clinician()->set_display_name(id);
    r.mutable_clinician()->set_issuer("tenants/clinic-a/issuers/epic");
    r.mutable_clinician()->set_subject(sub);
    r.mutable_clinician()->add_roles(role);
    ASSERT_TRUE(admin.CreateClinician(r).ok());
  }
  v1::CreatePatientRequest p;
  p.set_parent("tenants/clinic-a");
  p.mutable_patient()->set_external_id("MRN-1");
  p.mutable_patient()->mutable_date_of_birth()->set_year(1980);
  p.mutable_patient()->mutable_date_of_birth()->set_month(5);
  p.mutable_patient()->mutable_date_of_birth()->set_day(17);
  auto patient = ehr.CreatePatient(p);
  ASSERT_TRUE(patient.ok()) << patient.status();
  v1::CreatePatientLinkRequest l;
  l.set_parent(patient->patient().name());
  l.set_factor(v1::LINK_FACTOR_DATE_OF_BIRTH);
  auto link = ehr.CreatePatientLink(l);
  ASSERT_TRUE(link.ok()) << link.status();
  v1::RedeemLinkRequest redeem;
  redeem.set_link_token(link->link_token());
  *redeem.mutable_date_of_birth() = p.patient().date_of_birth();
  auto session = portal.RedeemLink(redeem);
  ASSERT_TRUE(session.ok()) << session.status();

  int jti = 0;
  auto claims = [&](const char* iss, const std::string& sub) {
    const int64_t now = absl::ToUnixSeconds(server.clock().Now());
    return Json{{"iss", iss},        {"sub", sub},
                {"aud", "careseal"}, {"iat", now},
                {"exp", now + 300},  {"jti", absl::StrCat("m-", ++jti)}};
  };
  const std::string patient_name = patient->patient().name();
  const std::string sid = session->session_token();
  std::vector<Caller> callers = {
      {"clinician A (token)", kEhrA,
       [&] { return es->Sign(claims(kEhrIss, "u-1")).value(); }, "clinician",
       ""},
      {"auditor A (token)", kEhrA,
       [&] { return es->Sign(claims(kEhrIss, "u-2")).value(); }, "auditor", ""},
      {"patient P (portal session)", kPortal,
       [&] {
         Json c = claims(kPortalIss, patient_name);
         c["sid"] = sid;
         return portal_key->Sign(c).value();
       },
       "patient", ""},
      {"expired token", kEhrA,
       [&] {
         Json c = claims(kEhrIss, "u-1");
         c["iat"] = c["iat"].get<int64_t>() - 900;
         c["exp"] = c["iat"].get<int64_t>() + 300;
         return es->Sign(c).value();
       },
       "", "TOKEN_EXPIRED"},
      {"issuer the peer may not speak for", kEhrB,
       [&] { return es->Sign(claims(kEhrIss, "u-1")).value(); }, "",
       "ISSUER_NOT_ALLOWED"},
      {"forged signature", kEhrA,
       [&] { return forger->Sign(claims(kEhrIss, "u-1")).value(); }, "",
       "TOKEN_INVALID"},
  };

  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  {
    auto health = grpc::health::v1::Health::NewStub(server.ChannelFor(kEhrA));
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
  for (const Caller& caller : callers) {
    grpc::GenericStub stub(server.ChannelFor(caller.peer));
    for (const auto* service : services) {
      for (int i = 0; i < service->method_count(); ++i) {
        const std::string full = service->full_name() + "/" +
                                 std::string(service->method(i)->name());
        auto row = contract.find(full);
        ASSERT_NE(row, contract.end()) << full << " has no Roles: line";
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
        ctx.AddMetadata("authorization", "Bearer " + caller.token());
        grpc::Slice empty("", 0);
        grpc::ByteBuffer request(&empty, 1), response;
        std::promise<grpc::Status> done;
        stub.UnaryCall(&ctx, "/" + full, grpc::StubOptions(), &request,
                       &response,
                       [&done](grpc::Status s) { done.set_value(s); });
        const grpc::Status status = done.get_future().get();
        const std::string reason =
            client::ErrorReason(client::FromGrpcStatus(status));
        ++cells;
        bool ok;
        std::string want;
        if (caller.role.empty()) {
          ok = status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
               reason == caller.refusal_reason;
          want = "UNAUTHENTICATED " + caller.refusal_reason;
        } else {
          const bool allowed = row->second.count(caller.role) > 0;
          const bool role_denied =
              status.error_code() == grpc::StatusCode::PERMISSION_DENIED &&
              reason == "ROLE_NOT_ALLOWED";
          // Authentication itself must have succeeded for every method.
          ok = role_denied != allowed &&
               status.error_code() != grpc::StatusCode::UNAUTHENTICATED;
          want = allowed ? "allowed" : "ROLE_NOT_ALLOWED";
        }
        if (!ok) {
          ++mismatches;
          ADD_FAILURE() << full << " as " << caller.label << ": want " << want
                        << ", server said " << status.error_code() << " "
                        << reason << " " << status.error_message();
        }
      }
    }
  }
  std::printf(
      "authz token matrix: %d cells (%zu services x %zu end-user callers), "
      "%d mismatches\n",
      cells, services.size(), callers.size(), mismatches);
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace careseal
