// The follow-up service's scheduled work end to end, through the public C++
// clients over mutual TLS, on the FakeClock with the schedulers driven by
// the test (FollowUpModule::RunDue):
//  * an induction series created and completed through PreSessionService:
//    check-ins appear in the patient's inbox at exactly end + 2 h, +24 h,
//    +72 h and +7 d (not a minute early), reminders for unanswered ones,
//    expiry, and a server restart mid-series duplicates nothing;
//  * the PHQ-9 before each infusion is planned when a session is
//    scheduled and moves, is cancelled or expires with it;
//  * a PHQ-9 item-9 answer to a scheduled check-in escalates with crisis
//    resources in the same call; unacknowledged, the urgent escalation
//    re-escalates at its deadline (not before) to the tenant's on-call
//    clinicians (IdentityService), with EVENT_TYPE_ESCALATION_REESCALATED,
//    and again at each further deadline; an acknowledged one never does;
//  * with IdentityService unavailable the re-escalation job fails and is
//    retried, never dropped.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "clients/cpp/events_client.h"
#include "clients/cpp/followup_client.h"
#include "clients/cpp/identity_client.h"
#include "clients/cpp/messaging_client.h"
#include "clients/cpp/presession_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/authn/jwt.h"
#include "services/followup/service/followup_module.h"
#include "tests/testing/instruction_fixtures.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kAdmin;
using ::careseal::testing::kClinicianA;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using client::CallOptions;
namespace v1 = ::careseal::v1;

constexpr char kTenant[] = "tenants/clinic-a";
constexpr char kPatient[] = "tenants/clinic-a/patients/p-100";
constexpr char kCareTeamA[] = "tenants/clinic-a/clinicians/dr-a";
constexpr char kOnCall[] = "tenants/clinic-a/clinicians/dr-oncall";

// Patient tokens "test-patient:{tenant}:{patient}" from the portal become a
// patient principal (as in followup_test); everything else is the peer.
class TestPatientAuthenticator final : public Authenticator {
 public:
  absl::StatusOr<Principal> Authenticate(const PeerIdentity& peer,
                                         absl::string_view token,
                                         absl::Time now) const override {
    if (peer.kind == PeerIdentity::Kind::kPortal &&
        absl::StartsWith(token, "test-patient:")) {
      std::vector<std::string> parts = absl::StrSplit(token, ':');
      Principal p;
      p.role = Role::kPatient;
      p.tenant = parts.at(1);
      p.patient = parts.at(2);
      p.actor = absl::StrCat("tenants/", p.tenant, "/patients/", p.patient);
      p.peer = peer.uri;
      return p;
    }
    return PeerOnlyAuthenticator().Authenticate(peer, token, now);
  }
};

CallOptions AsPatient() {
  CallOptions options;
  options.bearer_token = "test-patient:clinic-a:p-100";
  return options;
}

google::protobuf::Timestamp Ts(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

absl::Time FromTs(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

google::protobuf::Duration Dur(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::ToInt64Seconds(d));
  return out;
}

v1::Answer Int(const std::string& item, int value) {
  v1::Answer a;
  a.set_item_id(item);
  a.set_int_value(value);
  return a;
}

v1::Answer Bool(const std::string& item, bool value) {
  v1::Answer a;
  a.set_item_id(item);
  a.set_bool_value(value);
  return a;
}

std::vector<v1::Answer> Phq9(int item9) {
  std::vector<v1::Answer> out;
  for (int i = 1; i <= 8; ++i) out.push_back(Int(absl::StrCat("phq9_", i), 1));
  out.push_back(Int("phq9_9", item9));
  return out;
}

class FollowUpScheduleTest : public ::testing::Test {
 protected:
  explicit FollowUpScheduleTest(std::vector<std::string> modules = {})
      : server_(std::move(modules)),
        ehr_(server_.ChannelFor(kEhrA)),
        clinician_(server_.ChannelFor(kClinicianA)),
        admin_ps_(server_.ChannelFor(kAdmin)),
        followup_(server_.ChannelFor(kClinicianA)),
        portal_(server_.ChannelFor(kPortal)),
        identity_(server_.ChannelFor(kAdmin)),
        inbox_(server_.ChannelFor(kClinicianA)),
        events_(server_.ChannelFor(kEhrA)) {
    server_.env().authenticator->Set(&authenticator_);
    // Whole hours, so that hourly steps land exactly on due times.
    const int64_t s = absl::ToUnixSeconds(server_.clock().Now());
    server_.clock().Set(absl::FromUnixSeconds((s / 3600 + 1) * 3600));
  }
  ~FollowUpScheduleTest() override {
    server_.env().authenticator->Set(nullptr);
  }

  void Restart() {
    server_.Restart();
    // The identity module put its own authenticator back.
    server_.env().authenticator->Set(&authenticator_);
  }

  followup::FollowUpModule& module() {
    for (size_t i = 0;; ++i) {
      if (auto* m =
              dynamic_cast<followup::FollowUpModule*>(server_.module(i))) {
        return *m;
      }
    }
  }

  absl::Time Now() { return server_.clock().Now(); }

  // One scheduler pass at the current fake time; every job succeeds.
  void RunDue() {
    auto stats = module().RunDue(Now());
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->failed, 0);
    EXPECT_EQ(stats->retried, 0);
  }

  void SetClock(absl::Time t) {
    server_.clock().Set(t);
    RunDue();
  }

  // Steps the clock hour by hour to `until`, running due jobs at each step.
  void StepUntil(absl::Time until) {
    while (Now() < until) {
      server_.clock().Set(std::min(until, Now() + absl::Hours(1)));
      RunDue();
    }
  }

  // The tenant in IdentityService, its EHR issuer, a care-team clinician
  // and an on-call clinician.
  void SetUpIdentity() {
    v1::CreateTenantRequest t;
    t.set_tenant_id("clinic-a");
    t.mutable_tenant()->set_display_name("Clinic A");
    t.mutable_tenant()->set_time_zone("America/Chicago");
    auto tenant = identity_.CreateTenant(t);
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    signer_ = authn::JwtSigner::GenerateEs256("ehr-es-1").value();
    v1::RegisterIssuerRequest reg;
    reg.set_parent(kTenant);
    reg.set_issuer_id("epic");
    reg.mutable_issuer()->set_display_name("Epic");
    reg.mutable_issuer()->set_issuer_uri("https://ehr.clinic-a.example");
    reg.mutable_issuer()->set_kind(v1::ISSUER_KIND_EHR);
    reg.mutable_issuer()->add_peer_identities(kEhrA);
    reg.mutable_issuer()->set_jwks_json(signer_->PublicJwks());
    auto issuer = identity_.RegisterIssuer(reg);
    ASSERT_TRUE(issuer.ok()) << issuer.status();
    for (auto [id, on_call] : std::vector<std::pair<std::string, bool>>{
             {"dr-a", false}, {"dr-oncall", true}}) {
      v1::CreateClinicianRequest r;
      r.set_parent(kTenant);
      r.set_clinician_id(id);
      r.mutable_clinician()->set_display_name(absl::StrCat("Dr ", id));
      r.mutable_clinician()->set_issuer("tenants/clinic-a/issuers/epic");
      r.mutable_clinician()->set_subject(absl::StrCat("sub-", id));
      r.mutable_clinician()->set_care_team(true);
      r.mutable_clinician()->set_on_call(on_call);
      auto c = identity_.CreateClinician(r);
      ASSERT_TRUE(c.ok()) << c.status();
    }
  }

  // The clinic's default pre-session instructions (CreateSession needs
  // them).
  void PublishInstructions() {
    auto published =
        testing::PublishDefaultInstructions(ehr_, admin_ps_, kTenant);
    ASSERT_TRUE(published.ok()) << published.status();
  }

  std::string CreateSession(absl::Time start) {
    v1::CreateSessionRequest req;
    req.set_parent(kPatient);
    req.mutable_session()->set_procedure_code("ketamine-iv-induction");
    req.mutable_session()->set_kind(v1::SESSION_KIND_INDUCTION);
    *req.mutable_session()->mutable_start_time() = Ts(start);
    req.mutable_session()->set_location("Suite 2");
    auto r = ehr_.CreateSession(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->session().name() : "";
  }

  void CompleteSession(const std::string& session, absl::Time end) {
    v1::CompleteSessionRequest complete;
    complete.set_name(session);
    *complete.mutable_end_time() = Ts(end);
    auto done = clinician_.CompleteSession(complete);
    ASSERT_TRUE(done.ok()) << done.status();
  }

  // The session's check-ins by rule id.
  std::map<std::string, v1::CheckIn> CheckIns(const std::string& session) {
    v1::ListCheckInsRequest r;
    r.set_parent(kPatient);
    r.set_session(session);
    r.set_page_size(1000);
    auto out = followup_.ListCheckIns(r);
    EXPECT_TRUE(out.ok()) << out.status();
    std::map<std::string, v1::CheckIn> by_rule;
    if (!out.ok()) return by_rule;
    for (const v1::CheckIn& c : out->check_ins()) {
      EXPECT_EQ(by_rule.count(c.rule_id()), 0u) << "duplicate " << c.rule_id();
      by_rule[c.rule_id()] = c;
    }
    return by_rule;
  }

  v1::CheckIn Get(const std::string& name) {
    v1::GetCheckInRequest r;
    r.set_name(name);
    auto out = followup_.GetCheckIn(r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->check_in() : v1::CheckIn();
  }

  // Every message of the patient's FOLLOW_UP threads.
  std::vector<v1::Message> FollowUpInbox() {
    std::vector<v1::Message> out;
    v1::ListThreadsRequest threads;
    threads.set_parent(kPatient);
    threads.set_page_size(1000);
    auto t = inbox_.ListThreads(threads);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return out;
    for (const auto& thread : t->threads()) {
      if (thread.category() != v1::THREAD_CATEGORY_FOLLOW_UP) continue;
      v1::ListMessagesRequest list;
      list.set_parent(thread.name());
      list.set_page_size(1000);
      auto m = inbox_.ListMessages(list);
      EXPECT_TRUE(m.ok()) << m.status();
      if (!m.ok()) continue;
      for (const auto& message : m->messages()) out.push_back(message);
    }
    return out;
  }

  int CountEvents(v1::EventType type, const std::string& resource = "") {
    v1::ListEventsRequest req;
    req.set_parent(kTenant);
    req.add_types(type);
    req.set_page_size(1000);
    auto r = events_.ListEvents(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return -1;
    int n = 0;
    for (const auto& e : r->events()) {
      if (resource.empty() || e.resource() == resource) ++n;
    }
    return n;
  }

  absl::StatusOr<v1::SubmitResponseResponse> Submit(
      const std::string& instrument, const std::vector<v1::Answer>& answers,
      const std::string& check_in) {
    v1::SubmitResponseRequest r;
    r.set_parent(kPatient);
    r.set_instrument(absl::StrCat("instruments/", instrument));
    r.set_instrument_version(1);
    r.set_check_in(check_in);
    for (const v1::Answer& a : answers) *r.add_answers() = a;
    return portal_.SubmitResponse(r, AsPatient());
  }

  v1::Escalation GetEscalation(const std::string& name) {
    v1::GetEscalationRequest r;
    r.set_name(name);
    auto out = followup_.GetEscalation(r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->escalation() : v1::Escalation();
  }

  void Acknowledge(const std::string& name) {
    v1::AcknowledgeEscalationRequest r;
    r.set_name(name);
    r.set_note("Called the patient; safety plan reviewed.");
    auto out = followup_.AcknowledgeEscalation(r);
    ASSERT_TRUE(out.ok()) << out.status();
  }

  TestPatientAuthenticator authenticator_;
  TestServer server_;
  std::unique_ptr<authn::JwtSigner> signer_;
  client::PreSessionClient ehr_;
  client::PreSessionClient clinician_;
  client::PreSessionClient admin_ps_;
  client::FollowUpClient followup_;
  client::FollowUpClient portal_;
  client::IdentityClient identity_;
  client::MessagingClient inbox_;
  client::EventsClient events_;
};

TEST_F(FollowUpScheduleTest, InductionSeriesCheckInsRemindersEscalations) {
  SetUpIdentity();
  PublishInstructions();
  const absl::Time t0 = Now();
  // Induction week 1: three infusions.
  const std::vector<absl::Time> starts = {
      t0 + absl::Hours(24), t0 + absl::Hours(72), t0 + absl::Hours(120)};
  std::vector<std::string> sessions;
  for (absl::Time s : starts) sessions.push_back(CreateSession(s));
  ASSERT_EQ(sessions.size(), 3u);

  // Before a session is completed, only its PHQ-9 24 h before the start:
  // session 1 starts in 24 h, so it goes out at once; unanswered, it is
  // reminded after 12 h and expires when the session starts.
  RunDue();
  std::map<std::string, v1::CheckIn> before1 = CheckIns(sessions[0]);
  ASSERT_EQ(before1.size(), 1u);
  const v1::CheckIn pre1 = before1["before-24h"];
  EXPECT_EQ(pre1.state(), v1::CHECK_IN_STATE_SENT);
  EXPECT_EQ(FromTs(pre1.due_time()), t0);
  EXPECT_EQ(pre1.instruments(0), "instruments/phq-9");
  EXPECT_EQ(FromTs(pre1.expire_time()), starts[0]);
  EXPECT_EQ(CheckIns(sessions[1]).at("before-24h").state(),
            v1::CHECK_IN_STATE_SCHEDULED);
  EXPECT_EQ(FromTs(CheckIns(sessions[1]).at("before-24h").due_time()),
            starts[1] - absl::Hours(24));
  StepUntil(starts[0] + absl::Hours(1));
  EXPECT_EQ(Get(pre1.name()).state(), v1::CHECK_IN_STATE_EXPIRED);
  EXPECT_EQ(Get(pre1.name()).reminders_sent(), 1);
  EXPECT_EQ(CheckIns(sessions[0]).size(), 1u);
  // The pre-infusion PHQ-9 and its reminder.
  const size_t inbox0 = FollowUpInbox().size();
  EXPECT_EQ(inbox0, 2u);

  // Session 1 ends at start + 1 h.
  const absl::Time end1 = starts[0] + absl::Hours(1);
  CompleteSession(sessions[0], end1);
  RunDue();
  std::map<std::string, v1::CheckIn> c1 = CheckIns(sessions[0]);
  ASSERT_EQ(c1.size(), 5u);
  const std::map<std::string, absl::Duration> offsets = {
      {"plus-2h", absl::Hours(2)},
      {"plus-24h", absl::Hours(24)},
      {"plus-72h", absl::Hours(72)},
      {"plus-7d", absl::Hours(24 * 7)}};
  for (const auto& [rule, offset] : offsets) {
    ASSERT_EQ(c1.count(rule), 1u) << rule;
    EXPECT_EQ(c1[rule].state(), v1::CHECK_IN_STATE_SCHEDULED) << rule;
    EXPECT_EQ(c1[rule].kind(), v1::CHECK_IN_KIND_SCHEDULED);
    EXPECT_EQ(FromTs(c1[rule].due_time()), end1 + offset) << rule;
  }
  EXPECT_EQ(c1["plus-24h"].instruments_size(), 2);
  EXPECT_EQ(c1["plus-72h"].instruments(0), "instruments/phq-9");

  // +2 h: not a minute early.
  SetClock(end1 + absl::Hours(2) - absl::Minutes(1));
  EXPECT_EQ(Get(c1["plus-2h"].name()).state(), v1::CHECK_IN_STATE_SCHEDULED);
  EXPECT_EQ(FollowUpInbox().size(), inbox0);
  SetClock(end1 + absl::Hours(2));
  v1::CheckIn home = Get(c1["plus-2h"].name());
  EXPECT_EQ(home.state(), v1::CHECK_IN_STATE_SENT);
  EXPECT_EQ(FromTs(home.send_time()), end1 + absl::Hours(2));
  EXPECT_FALSE(home.message().empty());
  EXPECT_EQ(FollowUpInbox().size(), inbox0 + 1);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_FOLLOWUP_SENT, home.name()), 1);

  // Unanswered for an hour: one reminder.
  SetClock(end1 + absl::Hours(3) - absl::Minutes(1));
  EXPECT_EQ(Get(home.name()).reminders_sent(), 0);
  SetClock(end1 + absl::Hours(3));
  EXPECT_EQ(Get(home.name()).reminders_sent(), 1);
  EXPECT_EQ(FollowUpInbox().size(), inbox0 + 2);
  auto answered = Submit("home-safe",
                         {Bool("home_safe", true), Bool("adult_present", true)},
                         home.name());
  ASSERT_TRUE(answered.ok()) << answered.status();
  EXPECT_EQ(Get(home.name()).state(), v1::CHECK_IN_STATE_COMPLETED);

  // +24 h side effects and blood pressure, left unanswered: reminded after
  // 12 h, expired after 72 h.
  StepUntil(end1 + absl::Hours(24) - absl::Hours(1));
  EXPECT_EQ(Get(c1["plus-24h"].name()).state(), v1::CHECK_IN_STATE_SCHEDULED);
  StepUntil(end1 + absl::Hours(24));
  EXPECT_EQ(Get(c1["plus-24h"].name()).state(), v1::CHECK_IN_STATE_SENT);
  EXPECT_EQ(FromTs(Get(c1["plus-24h"].name()).send_time()),
            end1 + absl::Hours(24));

  // Session 2 completes; the server restarts before anything reads the
  // event: the durable cursor neither loses nor repeats it.
  StepUntil(starts[1] + absl::Hours(1));
  const absl::Time end2 = starts[1] + absl::Hours(1);
  CompleteSession(sessions[1], end2);
  Restart();
  RunDue();
  std::map<std::string, v1::CheckIn> c2 = CheckIns(sessions[1]);
  ASSERT_EQ(c2.size(), 5u);
  // Its PHQ-9 before the start went out 24 h ahead.
  EXPECT_EQ(FromTs(c2["before-24h"].send_time()), starts[1] - absl::Hours(24));
  EXPECT_EQ(FromTs(c2["plus-2h"].due_time()), end2 + absl::Hours(2));
  EXPECT_EQ(Get(c1["plus-24h"].name()).reminders_sent(), 1);

  // +72 h after session 1 (= end2 + 24 h): PHQ-9 with item 9 > 0 escalates
  // in the very call, with crisis resources.
  StepUntil(end1 + absl::Hours(72));
  EXPECT_EQ(Get(c1["plus-24h"].name()).state(), v1::CHECK_IN_STATE_SENT);
  v1::CheckIn phq = Get(c1["plus-72h"].name());
  ASSERT_EQ(phq.state(), v1::CHECK_IN_STATE_SENT);
  EXPECT_EQ(FromTs(phq.send_time()), end1 + absl::Hours(72));
  auto risky = Submit("phq-9", Phq9(1), phq.name());
  ASSERT_TRUE(risky.ok()) << risky.status();
  ASSERT_EQ(risky->escalations_size(), 1);
  EXPECT_TRUE(risky->has_crisis_resources());
  EXPECT_EQ(risky->response().session(), sessions[0]);
  const v1::Escalation raised = risky->escalations(0);
  EXPECT_EQ(raised.priority(), v1::ESCALATION_PRIORITY_URGENT);
  EXPECT_EQ(raised.level(), v1::ESCALATION_LEVEL_PRIMARY);
  const absl::Time deadline = FromTs(raised.ack_deadline());
  EXPECT_EQ(deadline, Now() + absl::Minutes(15));
  // The care team is notified at once (a job due now, run in the same
  // minute): both care-team clinicians are the PRIMARY recipients.
  RunDue();
  v1::Escalation primary = GetEscalation(raised.name());
  EXPECT_EQ(primary.level(), v1::ESCALATION_LEVEL_PRIMARY);
  EXPECT_THAT(primary.recipients(),
              ::testing::UnorderedElementsAre(kCareTeamA, kOnCall));

  // Not before the deadline ...
  SetClock(deadline - absl::Minutes(1));
  EXPECT_EQ(GetEscalation(raised.name()).level(), v1::ESCALATION_LEVEL_PRIMARY);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_ESCALATION_REESCALATED, raised.name()),
            0);
  // ... at it: to the on-call clinician only.
  SetClock(deadline);
  v1::Escalation backup = GetEscalation(raised.name());
  EXPECT_EQ(backup.state(), v1::ESCALATION_STATE_OPEN);
  EXPECT_EQ(backup.level(), v1::ESCALATION_LEVEL_BACKUP);
  EXPECT_EQ(FromTs(backup.reescalate_time()), deadline);
  ASSERT_EQ(backup.recipients_size(), 1);
  EXPECT_EQ(backup.recipients(0), kOnCall);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_ESCALATION_REESCALATED, raised.name()),
            1);
  // Still unacknowledged at the next deadline: notified again.
  EXPECT_EQ(FromTs(backup.ack_deadline()), deadline + absl::Minutes(15));
  SetClock(deadline + absl::Minutes(14));
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_ESCALATION_REESCALATED, raised.name()),
            1);
  SetClock(deadline + absl::Minutes(15));
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_ESCALATION_REESCALATED, raised.name()),
            2);
  EXPECT_EQ(FromTs(GetEscalation(raised.name()).reescalate_time()), deadline);
  // Acknowledged: no further notification.
  Acknowledge(raised.name());
  SetClock(deadline + absl::Hours(2));
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_ESCALATION_REESCALATED, raised.name()),
            2);

  // Session 3; then session 2's +72 h PHQ-9 with item 9 again, acknowledged
  // at once: it never re-escalates.
  StepUntil(starts[2] + absl::Hours(1));
  // Session 1's +24 h check-in expired unanswered 72 h after it was sent.
  EXPECT_EQ(Get(c1["plus-24h"].name()).state(), v1::CHECK_IN_STATE_EXPIRED);
  EXPECT_EQ(FromTs(Get(c1["plus-24h"].name()).expire_time()),
            end1 + absl::Hours(24 + 72));
  const absl::Time end3 = starts[2] + absl::Hours(1);
  CompleteSession(sessions[2], end3);
  StepUntil(end2 + absl::Hours(72));
  v1::CheckIn phq2 = Get(c2["plus-72h"].name());
  ASSERT_EQ(phq2.state(), v1::CHECK_IN_STATE_SENT);
  EXPECT_EQ(FromTs(phq2.send_time()), end2 + absl::Hours(72));
  auto risky2 = Submit("phq-9", Phq9(2), phq2.name());
  ASSERT_TRUE(risky2.ok()) << risky2.status();
  ASSERT_EQ(risky2->escalations_size(), 1);
  EXPECT_TRUE(risky2->has_crisis_resources());
  const std::string acked = risky2->escalations(0).name();
  Acknowledge(acked);
  StepUntil(Now() + absl::Hours(3));
  EXPECT_EQ(GetEscalation(acked).level(), v1::ESCALATION_LEVEL_PRIMARY);
  EXPECT_FALSE(GetEscalation(acked).has_reescalate_time());
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_ESCALATION_REESCALATED, acked), 0);

  // Through the last +7 d: every rule of every session sent exactly once.
  StepUntil(end3 + absl::Hours(24 * 7));
  int sent = 0;
  for (const std::string& session : sessions) {
    std::map<std::string, v1::CheckIn> all = CheckIns(session);
    ASSERT_EQ(all.size(), 5u) << session;
    for (const auto& [rule, c] : all) {
      EXPECT_NE(c.state(), v1::CHECK_IN_STATE_SCHEDULED) << session << rule;
      EXPECT_NE(c.state(), v1::CHECK_IN_STATE_CANCELLED);
      EXPECT_EQ(CountEvents(v1::EVENT_TYPE_FOLLOWUP_SENT, c.name()), 1)
          << session << " " << rule;
      ++sent;
    }
  }
  EXPECT_EQ(sent, 15);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_FOLLOWUP_SENT), 15);
  // One inbox message per check-in plus one per reminder.
  int reminders = 0;
  for (const std::string& session : sessions) {
    for (const auto& [rule, c] : CheckIns(session)) {
      reminders += c.reminders_sent();
    }
  }
  EXPECT_GT(reminders, 0);
  EXPECT_EQ(static_cast<int>(FollowUpInbox().size()), 15 + reminders);
}

// The tenant's rules are configurable: a one-rule schedule replaces the
// defaults for sessions completed afterwards; bad rules are refused naming
// the field, with nothing stored.
TEST_F(FollowUpScheduleTest, ConfiguredRulesScheduleCheckIns) {
  PublishInstructions();
  client::FollowUpClient admin(server_.ChannelFor(kAdmin));
  v1::UpdateFollowUpSettingsRequest bad;
  bad.mutable_settings()->set_name(absl::StrCat(kTenant, "/followUpSettings"));
  bad.mutable_update_mask()->add_paths("rules");
  for (int i = 0; i < 2; ++i) {
    v1::CheckInRule* r = bad.mutable_settings()->add_rules();
    r->set_id("plus-1h");
    r->set_anchor(v1::CHECK_IN_ANCHOR_AFTER_SESSION_END);
    *r->mutable_offset() = Dur(absl::Hours(1));
    r->add_instruments("instruments/phq-9");
  }
  auto refused = admin.UpdateFollowUpSettings(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client::ErrorReason(refused.status()), "DUPLICATE_ID");
  EXPECT_EQ(client::ErrorField(refused.status()), "settings.rules[1].id");
  bad.mutable_settings()->mutable_rules()->RemoveLast();
  *bad.mutable_settings()->mutable_rules(0)->mutable_offset() =
      Dur(absl::Hours(24 * 31));
  refused = admin.UpdateFollowUpSettings(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(client::ErrorReason(refused.status()), "OFFSET_OUT_OF_RANGE");
  v1::GetFollowUpSettingsRequest get;
  get.set_name(absl::StrCat(kTenant, "/followUpSettings"));
  auto current = followup_.GetFollowUpSettings(get);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(current->settings().rules_size(), 5);  // defaults, unchanged

  *bad.mutable_settings()->mutable_rules(0)->mutable_offset() =
      Dur(absl::Hours(1));
  auto updated = admin.UpdateFollowUpSettings(bad);
  ASSERT_TRUE(updated.ok()) << updated.status();
  ASSERT_EQ(updated->settings().rules_size(), 1);
  EXPECT_EQ(updated->settings().rules(0).expire_after().seconds(), 72 * 3600);

  const absl::Time start = Now() + absl::Hours(3);
  const std::string session = CreateSession(start);
  StepUntil(start + absl::Hours(1));
  CompleteSession(session, start + absl::Hours(1));
  RunDue();
  std::map<std::string, v1::CheckIn> c = CheckIns(session);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(FromTs(c["plus-1h"].due_time()), start + absl::Hours(2));
  SetClock(start + absl::Hours(2));
  EXPECT_EQ(Get(c["plus-1h"].name()).state(), v1::CHECK_IN_STATE_SENT);
  // No reminder_after: no reminder.
  StepUntil(start + absl::Hours(48));
  EXPECT_EQ(Get(c["plus-1h"].name()).reminders_sent(), 0);
  EXPECT_EQ(FollowUpInbox().size(), 1u);
}

// The PHQ-9 before each infusion (default rule "before-24h") follows the
// session: planned when it is scheduled, due 24 h before its start (at once
// when that has passed), open until the start; moved with the session until
// it is sent; cancelled with it; expired unsent when its job runs after the
// start. A tenant's own BEFORE_SESSION_START rules work the same way.
TEST_F(FollowUpScheduleTest, PreInfusionCheckInFollowsTheSession) {
  PublishInstructions();
  const absl::Time t0 = Now();
  const std::string a = CreateSession(t0 + absl::Hours(72));
  const std::string b = CreateSession(t0 + absl::Hours(96));
  const std::string c = CreateSession(t0 + absl::Hours(5));  // short notice
  const std::string e = CreateSession(t0 + absl::Hours(30));
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_SESSION_SCHEDULED, a), 1);
  RunDue();
  auto only = [&](const std::string& session) {
    std::map<std::string, v1::CheckIn> all = CheckIns(session);
    EXPECT_EQ(all.size(), 1u) << session;
    EXPECT_EQ(all.count("before-24h"), 1u) << session;
    return all["before-24h"];
  };
  v1::CheckIn ca = only(a);
  EXPECT_EQ(ca.state(), v1::CHECK_IN_STATE_SCHEDULED);
  EXPECT_EQ(FromTs(ca.due_time()), t0 + absl::Hours(48));
  EXPECT_EQ(FromTs(ca.expire_time()), t0 + absl::Hours(72));
  EXPECT_EQ(ca.session(), a);
  ASSERT_EQ(ca.instruments_size(), 1);
  EXPECT_EQ(ca.instruments(0), "instruments/phq-9");
  const v1::CheckIn cc = only(c);
  EXPECT_EQ(cc.state(), v1::CHECK_IN_STATE_SENT);
  EXPECT_EQ(FromTs(cc.send_time()), t0);
  EXPECT_EQ(FromTs(cc.expire_time()), t0 + absl::Hours(5));
  EXPECT_EQ(only(e).state(), v1::CHECK_IN_STATE_SCHEDULED);

  // A moves two days later before its check-in went out: so does the
  // check-in. B is cancelled: so is its check-in.
  v1::MoveSessionRequest move;
  move.set_name(a);
  *move.mutable_start_time() = Ts(t0 + absl::Hours(120));
  move.set_reason("Patient asked for a later day");
  auto moved = ehr_.MoveSession(move);
  ASSERT_TRUE(moved.ok()) << moved.status();
  v1::CancelSessionRequest cancel;
  cancel.set_name(b);
  cancel.set_reason("Course changed");
  auto cancelled = ehr_.CancelSession(cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  RunDue();
  ca = only(a);
  EXPECT_EQ(ca.state(), v1::CHECK_IN_STATE_SCHEDULED);
  EXPECT_EQ(FromTs(ca.due_time()), t0 + absl::Hours(96));
  EXPECT_EQ(FromTs(ca.expire_time()), t0 + absl::Hours(120));
  EXPECT_EQ(only(b).state(), v1::CHECK_IN_STATE_CANCELLED);

  // The server was down from t0 + 1 h until after E started: E's check-in
  // (due t0 + 6 h) is never sent and expires; C's expired at C's start.
  server_.clock().Set(t0 + absl::Hours(31));
  RunDue();
  const v1::CheckIn ce = only(e);
  EXPECT_EQ(ce.state(), v1::CHECK_IN_STATE_EXPIRED);
  EXPECT_FALSE(ce.has_send_time());
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_FOLLOWUP_SENT, ce.name()), 0);
  EXPECT_EQ(Get(cc.name()).state(), v1::CHECK_IN_STATE_EXPIRED);
  EXPECT_EQ(FollowUpInbox().size(), 1u);  // C's only

  // A's goes out at the moved time, not a minute early, and is answered.
  StepUntil(t0 + absl::Hours(96) - absl::Minutes(1));
  EXPECT_EQ(Get(ca.name()).state(), v1::CHECK_IN_STATE_SCHEDULED);
  SetClock(t0 + absl::Hours(96));
  ca = Get(ca.name());
  ASSERT_EQ(ca.state(), v1::CHECK_IN_STATE_SENT);
  EXPECT_EQ(FromTs(ca.send_time()), t0 + absl::Hours(96));
  EXPECT_EQ(FromTs(ca.expire_time()), t0 + absl::Hours(120));
  EXPECT_EQ(FollowUpInbox().size(), 2u);
  auto answered = Submit("phq-9", Phq9(0), ca.name());
  ASSERT_TRUE(answered.ok()) << answered.status();
  EXPECT_EQ(answered->response().session(), a);
  EXPECT_EQ(answered->escalations_size(), 0);
  // Moved again once answered: the answered check-in stays as it was.
  *move.mutable_start_time() = Ts(t0 + absl::Hours(150));
  moved = ehr_.MoveSession(move);
  ASSERT_TRUE(moved.ok()) << moved.status();
  RunDue();
  const v1::CheckIn after = only(a);
  EXPECT_EQ(after.state(), v1::CHECK_IN_STATE_COMPLETED);
  EXPECT_EQ(FromTs(after.due_time()), t0 + absl::Hours(96));

  // The tenant's own rule: GAD-7 2 h before; an offset of 0 is refused.
  client::FollowUpClient admin(server_.ChannelFor(kAdmin));
  v1::UpdateFollowUpSettingsRequest update;
  update.mutable_settings()->set_name(
      absl::StrCat(kTenant, "/followUpSettings"));
  update.mutable_update_mask()->add_paths("rules");
  v1::CheckInRule* rule = update.mutable_settings()->add_rules();
  rule->set_id("before-2h");
  rule->set_anchor(v1::CHECK_IN_ANCHOR_BEFORE_SESSION_START);
  rule->add_instruments("instruments/gad-7");
  auto refused = admin.UpdateFollowUpSettings(update);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client::ErrorReason(refused.status()), "OFFSET_OUT_OF_RANGE");
  EXPECT_EQ(client::ErrorField(refused.status()), "settings.rules[0].offset");
  *rule->mutable_offset() = Dur(absl::Hours(2));
  auto updated = admin.UpdateFollowUpSettings(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->settings().rules(0).anchor(),
            v1::CHECK_IN_ANCHOR_BEFORE_SESSION_START);
  const absl::Time start_f = Now() + absl::Hours(10);
  const std::string f = CreateSession(start_f);
  RunDue();
  std::map<std::string, v1::CheckIn> cf = CheckIns(f);
  ASSERT_EQ(cf.size(), 1u);
  EXPECT_EQ(FromTs(cf["before-2h"].due_time()), start_f - absl::Hours(2));
  EXPECT_EQ(cf["before-2h"].instruments(0), "instruments/gad-7");
}

// Nobody on call when the deadline passes: the escalation goes to BACKUP
// with the care team as its recipients rather than to no one.
TEST_F(FollowUpScheduleTest, ReescalationWithNobodyOnCallGoesToTheCareTeam) {
  SetUpIdentity();
  v1::UpdateClinicianRequest off;
  off.mutable_clinician()->set_name(kOnCall);
  off.mutable_clinician()->set_on_call(false);
  off.mutable_update_mask()->add_paths("on_call");
  auto updated = identity_.UpdateClinician(off);
  ASSERT_TRUE(updated.ok()) << updated.status();
  auto risky = Submit("phq-9", Phq9(3), "");
  ASSERT_TRUE(risky.ok()) << risky.status();
  ASSERT_EQ(risky->escalations_size(), 1);
  const v1::Escalation e = risky->escalations(0);
  SetClock(FromTs(e.ack_deadline()));
  const v1::Escalation backup = GetEscalation(e.name());
  EXPECT_EQ(backup.level(), v1::ESCALATION_LEVEL_BACKUP);
  EXPECT_THAT(backup.recipients(),
              ::testing::UnorderedElementsAre(kCareTeamA, kOnCall));
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_ESCALATION_REESCALATED, e.name()), 1);
}

// An escalation acknowledged before its notification ran keeps no
// recipients: the notification is cancelled with it.
TEST_F(FollowUpScheduleTest,
       AcknowledgedBeforeTheNotificationRanNotifiesNoOne) {
  SetUpIdentity();
  auto risky = Submit("phq-9", Phq9(1), "");
  ASSERT_TRUE(risky.ok()) << risky.status();
  const std::string e = risky->escalations(0).name();
  Acknowledge(e);
  auto stats = module().RunDue(Now());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->claimed, 0);  // its notification was cancelled
  const v1::Escalation acked = GetEscalation(e);
  EXPECT_EQ(acked.state(), v1::ESCALATION_STATE_ACKNOWLEDGED);
  EXPECT_EQ(acked.recipients_size(), 0);
}

// No IdentityService in this server: the on-call lookup fails, so the job
// is retried with backoff and the escalation stays as it was (never
// silently dropped).
class FollowUpNoIdentityTest : public FollowUpScheduleTest {
 protected:
  FollowUpNoIdentityTest()
      : FollowUpScheduleTest({"messaging", "followup", "presession"}) {}
};

TEST_F(FollowUpNoIdentityTest, ReescalationRetriesWhenIdentityIsUnavailable) {
  auto risky = Submit("phq-9", Phq9(1), "");
  ASSERT_TRUE(risky.ok()) << risky.status();
  ASSERT_EQ(risky->escalations_size(), 1);
  const v1::Escalation e = risky->escalations(0);
  server_.clock().Set(FromTs(e.ack_deadline()));
  auto stats = module().RunDue(Now());
  ASSERT_TRUE(stats.ok()) << stats.status();
  // The care team's notification and the re-escalation both fail and wait
  // for their retry.
  EXPECT_EQ(stats->retried, 2);
  EXPECT_EQ(stats->succeeded, 0);
  v1::Escalation still = GetEscalation(e.name());
  EXPECT_EQ(still.level(), v1::ESCALATION_LEVEL_PRIMARY);
  EXPECT_EQ(still.recipients_size(), 0);
  EXPECT_EQ(still.state(), v1::ESCALATION_STATE_OPEN);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_ESCALATION_REESCALATED), 0);
  // Acknowledging cancels both pending retries.
  Acknowledge(e.name());
  server_.clock().Set(Now() + absl::Hours(2));
  stats = module().RunDue(Now());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->claimed, 0);
}

}  // namespace
}  // namespace careseal
