// The whole authorization matrix of issue 4: every RPC of every hosted
// service, called by every caller of the issue (EHR A, EHR B, clinician A,
// clinician B of tenant B, patient P, patient Q of the same tenant, an
// auditor, the admin, a break-glass clinician with a grant for P, a caller
// without a token, an expired token, a token from an issuer the peer may not
// speak for, a forged signature) on resources of patient P, of patient Q
// (tenant A) and of patient X (tenant B). Every cell is asserted.
//
// Requests are built from the contracts: each request field (and each
// `name` of a singular message field, e.g. UpdatePatient's patient.name)
// whose comment gives a resource pattern ("tenants/{tenant}/patients/
// {patient}/consents/{consent}") is filled for the cell's scope: {tenant}
// and {patient} from the scope, {clinician} the tenant's registered
// clinician, any other id an absent one; request_id a fresh UUID. Nothing
// else is set, so mutations stop at validation or at the absent child and
// the fixture does not change.
//
// Expected answer of a cell, computed from the contract's "Roles:" line and
// the ownership rules (never from the server's policy table):
//   * refused tokens: UNAUTHENTICATED with the token's reason;
//   * a role the contract does not list: PERMISSION_DENIED
//     (ROLE_NOT_ALLOWED);
//   * a listed role outside its reach (other tenant; a patient's other
//     patient or tenant-wide resource; break-glass beyond its patient):
//     exactly the answer (code, reason, message) of the same request naming
//     an absent tenant or patient instead, and that answer is NOT_FOUND
//     (RESOURCE_NOT_FOUND) unless the request fails validation first
//     (INVALID_ARGUMENT, which does not depend on the resource) -- foreign
//     answers like absent;
//   * a listed role within reach: neither UNAUTHENTICATED nor
//     PERMISSION_DENIED, and, when every name in the request exists (a
//     tenant, a patient, a clinician), not NOT_FOUND (RESOURCE_NOT_FOUND).
// Methods whose requests carry no tenant-scoped name (e.g. instruments,
// RedeemLink) are expected like a listed role within reach for every scope.
#include <grpcpp/generic/generic_stub.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "clients/cpp/client.h"
#include "clients/cpp/identity_client.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/common/authn/jwt.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

namespace v1 = ::careseal::v1;
namespace pb = ::google::protobuf;
using ::careseal::testing::kAdmin;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kEhrB;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using Json = nlohmann::json;

constexpr char kEhrIssA[] = "https://ehr.clinic-a.example";
constexpr char kEhrIssB[] = "https://ehr.clinic-b.example";
constexpr char kPortalIss[] = "https://portal.careseal.example";
constexpr char kAbsentTenant[] = "absent-tenant";
constexpr char kAbsentId[] = "absent0";

// The contracts' comments, read from the .proto files: the roles of each
// RPC and the resource pattern of each request field.
struct Contracts {
  // "careseal.v1.ConsentService/GetConsent" -> roles listed.
  std::map<std::string, std::set<std::string>> roles;
  // "careseal.v1.GetConsentRequest.name" -> "tenants/{tenant}/...".
  std::map<std::string, std::string> patterns;
};

Contracts ReadContracts() {
  Contracts out;
  const std::regex service_re(R"(^service\s+(\w+)\s*\{)");
  const std::regex rpc_re(R"(^\s*rpc\s+(\w+)\s*\()");
  const std::regex role_re(
      R"(\b(ehr_system|clinician|patient|auditor|admin|break_glass|portal|system)\b)");
  const std::regex message_re(R"(^message\s+(\w+)\s*\{)");
  const std::regex field_re(R"(^\s*(?:repeated\s+)?\w+\s+(\w+)\s*=\s*\d+;)");
  const std::regex pattern_re(
      R"(tenants/\{tenant\}(?:/[A-Za-z]+(?:/(?:\{[a-z_]+\}|-))?)*)");
  for (const auto& entry :
       std::filesystem::directory_iterator(CARESEAL_PROTO_DIR)) {
    if (entry.path().extension() != ".proto") continue;
    std::ifstream in(entry.path());
    std::string line, service, message, roles_text, comment;
    bool in_roles = false;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, service_re)) service = m[1];
      if (std::regex_search(line, m, message_re)) {
        message = m[1];
        service.clear();
        comment.clear();
        continue;
      }
      absl::string_view l = absl::StripAsciiWhitespace(line);
      if (absl::StartsWith(l, "//")) {
        // ".../x/{x}" abbreviates a name under the tenant.
        absl::StrAppend(
            &comment, " ",
            absl::StrReplaceAll(l, {{"// .../", "// tenants/{tenant}/"}}));
      } else {
        if (!message.empty() && std::regex_search(line, m, field_re)) {
          std::smatch p;
          if (std::regex_search(comment, p, pattern_re)) {
            out.patterns["careseal.v1." + message + "." + std::string(m[1])] =
                p[0];
          }
        }
        comment.clear();
      }
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
        roles_text =
            std::regex_replace(roles_text, std::regex(R"(\([^)]*\))"), "");
        for (std::sregex_iterator
                 it(roles_text.begin(), roles_text.end(), role_re),
             end;
             it != end; ++it) {
          roles.insert((*it)[1]);
        }
        out.roles["careseal.v1." + service + "/" + std::string(m[1])] = roles;
        roles_text.clear();
      }
      if (line == "}") message.clear();  // the end of a top-level message
    }
  }
  return out;
}

// Where a cell's names point.
struct Scope {
  std::string label;
  std::string tenant;
  std::string patient;  // patient id
};

struct Caller {
  std::string label;
  std::string peer;
  std::function<std::string()> token;  // empty function: no token
  std::string grant;                   // break-glass metadata, if any
  std::string role;                    // contract role; "" for refusals
  std::string refusal_reason;          // for refusal rows
  std::string tenant;                  // tenant-bound callers
  std::string patient;                 // patient and break-glass callers
};

// A request built for one scope.
struct Built {
  std::string bytes;
  bool scoped = false;       // it names a tenant-scoped resource
  bool has_patient = false;  // ... of a patient
  bool all_exist = true;     // every id in it exists
};

class RequestBuilder {
 public:
  RequestBuilder(const Contracts& contracts,
                 std::map<std::string, std::string> clinicians)
      : contracts_(contracts), clinicians_(std::move(clinicians)) {}

  Built Build(const pb::Descriptor* type, const Scope& scope) {
    std::unique_ptr<pb::Message> msg(factory_.GetPrototype(type)->New());
    Built out;
    Fill(*msg, scope, out, /*depth=*/0);
    msg->SerializeToString(&out.bytes);
    return out;
  }

 private:
  void Fill(pb::Message& msg, const Scope& scope, Built& out, int depth) {
    const pb::Descriptor* d = msg.GetDescriptor();
    const pb::Reflection* r = msg.GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      if (f->is_repeated()) continue;
      if (f->type() == pb::FieldDescriptor::TYPE_STRING) {
        if (depth == 0 && f->name() == "request_id") {
          r->SetString(&msg, f, client::NewRequestId());
          continue;
        }
        if (depth > 0 && f->name() != "name") continue;
        auto p = contracts_.patterns.find(std::string(f->full_name()));
        if (p == contracts_.patterns.end()) continue;
        r->SetString(&msg, f, Instantiate(p->second, scope, out));
      } else if (depth == 0 && f->type() == pb::FieldDescriptor::TYPE_MESSAGE &&
                 f->message_type()->FindFieldByName("name") != nullptr &&
                 contracts_.patterns.count(
                     absl::StrCat(f->message_type()->full_name(), ".name"))) {
        Fill(*r->MutableMessage(&msg, f, &factory_), scope, out, depth + 1);
      }
    }
  }

  std::string Instantiate(const std::string& pattern, const Scope& scope,
                          Built& out) {
    out.scoped = true;
    std::string name;
    static const std::regex var_re(R"(\{([a-z_]+)\})");
    std::string rest = pattern;
    std::smatch m;
    while (std::regex_search(rest, m, var_re)) {
      name += m.prefix();
      const std::string var = m[1];
      if (var == "tenant") {
        name += scope.tenant;
      } else if (var == "patient") {
        name += scope.patient;
        out.has_patient = true;
      } else if (var == "clinician") {
        auto it = clinicians_.find(scope.tenant);
        name += it != clinicians_.end() ? it->second : kAbsentId;
      } else if (var == "leaf_index") {
        name += "987654";
        out.all_exist = false;
      } else {
        name += kAbsentId;
        out.all_exist = false;
      }
      rest = m.suffix();
    }
    name += rest;
    return name;
  }

  const Contracts& contracts_;
  std::map<std::string, std::string> clinicians_;  // tenant -> clinician id
  pb::DynamicMessageFactory factory_;
};

struct Answer {
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string reason;
  std::string message;
  std::string Describe() const {
    return absl::StrCat(code, " ", reason, " \"", message, "\"");
  }
  bool operator==(const Answer& o) const {
    return code == o.code && reason == o.reason && message == o.message;
  }
};

// Calls run concurrently: each returns a future of its answer.
std::shared_future<Answer> Call(grpc::GenericStub& stub,
                                const std::string& method,
                                const std::string& bytes, const Caller& caller,
                                bool streaming) {
  struct State {
    grpc::ClientContext ctx;
    grpc::ByteBuffer request, response;
    std::promise<Answer> done;
  };
  auto state = std::make_shared<State>();
  // A server stream that is allowed stays open: it answers only once the
  // deadline cuts it (DEADLINE_EXCEEDED, which is not a refusal).
  state->ctx.set_deadline(
      std::chrono::system_clock::now() +
      (streaming ? std::chrono::seconds(3) : std::chrono::seconds(30)));
  if (caller.token) {
    state->ctx.AddMetadata("authorization", "Bearer " + caller.token());
  }
  if (!caller.grant.empty()) {
    state->ctx.AddMetadata("careseal-break-glass", caller.grant);
  }
  grpc::Slice slice(bytes);
  state->request = grpc::ByteBuffer(&slice, 1);
  std::shared_future<Answer> future = state->done.get_future().share();
  stub.UnaryCall(&state->ctx, "/" + method, grpc::StubOptions(),
                 &state->request, &state->response, [state](grpc::Status s) {
                   Answer a;
                   a.code = s.error_code();
                   a.message = s.error_message();
                   a.reason = client::ErrorReason(client::FromGrpcStatus(s));
                   state->done.set_value(a);
                 });
  return future;
}

TEST(AuthzOwnershipMatrixTest, EveryRpcEveryCallerEveryScope) {
  const Contracts contracts = ReadContracts();
  ASSERT_GT(contracts.roles.size(), 50u) << "the contracts were not read";
  ASSERT_GT(contracts.patterns.size(), 50u) << "no resource patterns read";
  TestServer server;

  // ---- Fixture: two tenants, their EHR issuers and clinicians, a portal
  // issuer, patients P and Q (tenant A) and X (tenant B), a verified portal
  // session for P and for Q, and a break-glass grant of clinician A for P.
  auto es_a = authn::JwtSigner::GenerateEs256("ehr-a-1").value();
  auto es_b = authn::JwtSigner::GenerateEs256("ehr-b-1").value();
  auto portal_key = authn::JwtSigner::GenerateEd25519("portal-1").value();
  auto forger = authn::JwtSigner::GenerateEs256("ehr-a-1").value();
  client::IdentityClient admin(server.ChannelFor(kAdmin));
  client::IdentityClient ehr_a(server.ChannelFor(kEhrA));
  client::IdentityClient ehr_b(server.ChannelFor(kEhrB));
  client::IdentityClient portal(server.ChannelFor(kPortal));
  for (const char* t : {"clinic-a", "clinic-b"}) {
    v1::CreateTenantRequest r;
    r.set_tenant_id(t);
    r.mutable_tenant()->set_display_name(t);
    r.mutable_tenant()->set_time_zone("UTC");
    ASSERT_TRUE(admin.CreateTenant(r).ok());
  }
  auto reg = [&](const char* tenant, const char* id, const char* iss,
                 v1::IssuerKind kind, const char* peer,
                 const authn::JwtSigner& key) {
    v1::RegisterIssuerRequest r;
    r.set_parent(absl::StrCat("tenants/", tenant));
    r.set_issuer_id(id);
    r.mutable_issuer()->set_issuer_uri(iss);
    r.mutable_issuer()->set_kind(kind);
    r.mutable_issuer()->add_peer_identities(peer);
    r.mutable_issuer()->set_jwks_json(key.PublicJwks());
    return admin.RegisterIssuer(r).status();
  };
  ASSERT_TRUE(
      reg("clinic-a", "epic", kEhrIssA, v1::ISSUER_KIND_EHR, kEhrA, *es_a)
          .ok());
  ASSERT_TRUE(
      reg("clinic-b", "epic", kEhrIssB, v1::ISSUER_KIND_EHR, kEhrB, *es_b)
          .ok());
  ASSERT_TRUE(reg("clinic-a", "portal", kPortalIss, v1::ISSUER_KIND_PORTAL,
                  kPortal, *portal_key)
                  .ok());
  for (auto [tenant, id, sub, role] :
       {std::tuple{"clinic-a", "dr-a", "u-1", v1::ROLE_CLINICIAN},
        std::tuple{"clinic-a", "aud-a", "u-2", v1::ROLE_AUDITOR},
        std::tuple{"clinic-b", "dr-b", "u-1", v1::ROLE_CLINICIAN}}) {
    v1::CreateClinicianRequest r;
    r.set_parent(absl::StrCat("tenants/", tenant));
    r.set_clinician_id(id);
    r.mutable_clinician()->set_display_name(id);
    r.mutable_clinician()->set_issuer(
        absl::StrCat("tenants/", tenant, "/issuers/epic"));
    r.mutable_clinician()->set_subject(sub);
    r.mutable_clinician()->add_roles(role);
    ASSERT_TRUE(admin.CreateClinician(r).ok());
  }
  auto new_patient = [&](client::IdentityClient& ehr, const char* tenant,
                         const char* mrn) -> std::string {
    v1::CreatePatientRequest p;
    p.set_parent(absl::StrCat("tenants/", tenant));
    p.mutable_patient()->set_external_id(mrn);
    p.mutable_patient()->mutable_date_of_birth()->set_year(1980);
    p.mutable_patient()->mutable_date_of_birth()->set_month(5);
    p.mutable_patient()->mutable_date_of_birth()->set_day(17);
    auto created = ehr.CreatePatient(p);
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return "";
    const std::string& name = created->patient().name();
    return name.substr(name.rfind('/') + 1);
  };
  const std::string p_id = new_patient(ehr_a, "clinic-a", "MRN-P");
  const std::string q_id = new_patient(ehr_a, "clinic-a", "MRN-Q");
  const std::string x_id = new_patient(ehr_b, "clinic-b", "MRN-X");
  ASSERT_FALSE(p_id.empty() || q_id.empty() || x_id.empty());
  auto open_session = [&](const std::string& id) -> std::string {
    v1::CreatePatientLinkRequest l;
    l.set_parent("tenants/clinic-a/patients/" + id);
    l.set_factor(v1::LINK_FACTOR_DATE_OF_BIRTH);
    auto link = ehr_a.CreatePatientLink(l);
    EXPECT_TRUE(link.ok()) << link.status();
    v1::RedeemLinkRequest redeem;
    redeem.set_link_token(link->link_token());
    redeem.mutable_date_of_birth()->set_year(1980);
    redeem.mutable_date_of_birth()->set_month(5);
    redeem.mutable_date_of_birth()->set_day(17);
    auto session = portal.RedeemLink(redeem);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? session->session_token() : "";
  };
  const std::string sid_p = open_session(p_id);
  const std::string sid_q = open_session(q_id);
  ASSERT_FALSE(sid_p.empty() || sid_q.empty());

  int jti = 0;
  auto claims = [&](const char* iss, const std::string& sub) {
    const int64_t now = absl::ToUnixSeconds(server.clock().Now());
    return Json{{"iss", iss},        {"sub", sub},
                {"aud", "careseal"}, {"iat", now},
                {"exp", now + 300},  {"jti", absl::StrCat("o-", ++jti)}};
  };
  auto dr_a = [&] { return es_a->Sign(claims(kEhrIssA, "u-1")).value(); };
  auto patient_token = [&](const std::string& id, const std::string& sid) {
    return [&, id, sid] {
      Json c = claims(kPortalIss, "tenants/clinic-a/patients/" + id);
      c["sid"] = sid;
      return portal_key->Sign(c).value();
    };
  };
  std::string grant;
  {
    v1::StartBreakGlassRequest r;
    r.set_parent("tenants/clinic-a/clinicians/dr-a");
    r.set_patient("tenants/clinic-a/patients/" + p_id);
    r.set_reason("Matrix test: emergency access to patient P");
    r.mutable_duration()->set_seconds(4 * 3600);
    client::CallOptions o;
    o.bearer_token = dr_a();
    auto started = ehr_a.StartBreakGlass(r, o);
    ASSERT_TRUE(started.ok()) << started.status();
    grant = started->grant().name();
  }

  const std::vector<Caller> callers = {
      {"EHR A", kEhrA, nullptr, "", "ehr_system", "", "clinic-a", ""},
      {"EHR B", kEhrB, nullptr, "", "ehr_system", "", "clinic-b", ""},
      {"clinician A", kEhrA, dr_a, "", "clinician", "", "clinic-a", ""},
      {"clinician B", kEhrB,
       [&] { return es_b->Sign(claims(kEhrIssB, "u-1")).value(); }, "",
       "clinician", "", "clinic-b", ""},
      {"patient P", kPortal, patient_token(p_id, sid_p), "", "patient", "",
       "clinic-a", p_id},
      {"patient Q", kPortal, patient_token(q_id, sid_q), "", "patient", "",
       "clinic-a", q_id},
      {"auditor A", kEhrA,
       [&] { return es_a->Sign(claims(kEhrIssA, "u-2")).value(); }, "",
       "auditor", "", "clinic-a", ""},
      {"admin", kAdmin, nullptr, "", "admin", "", "", ""},
      {"break-glass (clinician A, grant for P)", kEhrA, dr_a, grant,
       "break_glass", "", "clinic-a", p_id},
      // The portal's own identity without an end user's token.
      {"no token (portal peer)", kPortal, nullptr, "", "portal", "", "", ""},
      {"expired token", kEhrA,
       [&] {
         Json c = claims(kEhrIssA, "u-1");
         c["iat"] = c["iat"].get<int64_t>() - 900;
         c["exp"] = c["iat"].get<int64_t>() + 300;
         return es_a->Sign(c).value();
       },
       "", "", "TOKEN_EXPIRED", "", ""},
      {"issuer the peer may not speak for", kEhrB, dr_a, "", "",
       "ISSUER_NOT_ALLOWED", "", ""},
      {"forged signature", kEhrA,
       [&] { return forger->Sign(claims(kEhrIssA, "u-1")).value(); }, "", "",
       "TOKEN_INVALID", "", ""},
  };
  const std::vector<Scope> scopes = {
      {"own patient P (tenant A)", "clinic-a", p_id},
      {"other patient Q (tenant A)", "clinic-a", q_id},
      {"other tenant's patient X (tenant B)", "clinic-b", x_id},
  };

  // ---- The services this server hosts.
  const auto* pool = pb::DescriptorPool::generated_pool();
  std::vector<const pb::ServiceDescriptor*> services;
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
  ASSERT_GE(services.size(), 7u);  // all but FHIR export (not hosted yet)

  RequestBuilder builder(contracts,
                         {{"clinic-a", "dr-a"}, {"clinic-b", "dr-b"}});
  const Answer not_found{grpc::StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND",
                         "the resource does not exist or is not visible to "
                         "the caller"};

  struct Cell {
    const Caller* caller = nullptr;
    std::string method;
    const Scope* scope = nullptr;
    Built built;
    enum { kRefused, kRoleDenied, kWithinReach, kOutOfReach } expect = kRefused;
    std::shared_future<Answer> answer;
    std::shared_future<Answer> twin;  // kOutOfReach: the absent twin
  };
  int cells = 0, mismatches = 0, unscoped_methods = 0, out_of_reach = 0,
      out_of_reach_not_found = 0;
  std::set<std::string> unscoped;
  for (const Caller& caller : callers) {
    grpc::GenericStub stub(server.ChannelFor(caller.peer));
    std::vector<Cell> row;
    for (const auto* service : services) {
      for (int i = 0; i < service->method_count(); ++i) {
        const pb::MethodDescriptor* method = service->method(i);
        const std::string full =
            absl::StrCat(service->full_name(), "/", method->name());
        auto listed = contracts.roles.find(full);
        ASSERT_NE(listed, contracts.roles.end())
            << full << " has no Roles: line";
        for (const Scope& scope : scopes) {
          Cell cell;
          cell.caller = &caller;
          cell.method = full;
          cell.scope = &scope;
          cell.built = builder.Build(method->input_type(), scope);
          if (!cell.built.scoped) unscoped.insert(full);
          if (caller.role.empty()) {
            cell.expect = Cell::kRefused;
          } else if (!listed->second.count(caller.role)) {
            cell.expect = Cell::kRoleDenied;
          } else if (!cell.built.scoped || caller.tenant.empty()) {
            cell.expect = Cell::kWithinReach;  // admin, portal, unscoped
          } else {
            bool reach = scope.tenant == caller.tenant;
            if (caller.role == "patient") {
              reach = reach && cell.built.has_patient &&
                      scope.patient == caller.patient;
            } else if (caller.role == "break_glass") {
              reach = reach && (!cell.built.has_patient ||
                                scope.patient == caller.patient);
            }
            cell.expect = reach ? Cell::kWithinReach : Cell::kOutOfReach;
          }
          const bool streaming = method->server_streaming();
          cell.answer = Call(stub, full, cell.built.bytes, caller, streaming);
          if (cell.expect == Cell::kOutOfReach) {
            // The same request naming an absent tenant (for a foreign
            // tenant) or an absent patient of the tenant instead.
            Scope absent = scope;
            if (scope.tenant != caller.tenant) absent.tenant = kAbsentTenant;
            absent.patient = kAbsentId;
            cell.twin = Call(stub, full,
                             builder.Build(method->input_type(), absent).bytes,
                             caller, streaming);
          }
          row.push_back(std::move(cell));
        }
      }
    }
    for (Cell& cell : row) {
      const Answer a = cell.answer.get();
      ++cells;
      bool ok = false;
      std::string want;
      switch (cell.expect) {
        case Cell::kRefused:
          ok = a.code == grpc::StatusCode::UNAUTHENTICATED &&
               a.reason == caller.refusal_reason;
          want = "UNAUTHENTICATED " + caller.refusal_reason;
          break;
        case Cell::kRoleDenied:
          ok = a.code == grpc::StatusCode::PERMISSION_DENIED &&
               a.reason == "ROLE_NOT_ALLOWED";
          want = "PERMISSION_DENIED ROLE_NOT_ALLOWED";
          break;
        case Cell::kWithinReach:
          ok = a.code != grpc::StatusCode::UNAUTHENTICATED &&
               a.code != grpc::StatusCode::PERMISSION_DENIED &&
               !(cell.built.scoped && cell.built.all_exist && a == not_found);
          want = "within reach (no refusal)";
          break;
        case Cell::kOutOfReach: {
          const Answer twin = cell.twin.get();
          ++out_of_reach;
          if (a == not_found) ++out_of_reach_not_found;
          ok = a == twin &&
               (a == not_found || a.code == grpc::StatusCode::INVALID_ARGUMENT);
          want = "like absent: " + twin.Describe();
          break;
        }
      }
      if (!ok) {
        ++mismatches;
        ADD_FAILURE() << cell.method << " as " << caller.label << " on "
                      << cell.scope->label << ": want " << want
                      << "; server said " << a.Describe();
      }
    }
  }
  unscoped_methods = static_cast<int>(unscoped.size());
  std::printf(
      "authz ownership matrix: %d cells (%zu services, %zu callers x %zu "
      "scopes), %d mismatches; out-of-reach cells %d (%d answered "
      "RESOURCE_NOT_FOUND, the rest failed validation first, all exactly "
      "like absent); methods without a tenant-scoped name: %d\n",
      cells, services.size(), callers.size(), scopes.size(), mismatches,
      out_of_reach, out_of_reach_not_found, unscoped_methods);
  for (const std::string& m : unscoped)
    std::printf("  unscoped: %s\n", m.c_str());
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace careseal
