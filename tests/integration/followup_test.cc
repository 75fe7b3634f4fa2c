// The follow-up service end to end, through the public C++ client over mutual
// TLS: server-side scoring of every instrument against hand-worked examples
// (PHQ-9 band boundaries 4/5, 9/10, 14/15, 19/20), invalid answers rejected
// with nothing stored, safety escalation and crisis resources in the very
// SubmitResponse call (PHQ-9 item 9, C-SSRS, tenant blood-pressure
// threshold), the escalation queue and acknowledgement, the outcome series
// with response/remission markers, and ad hoc check-ins delivered to the
// patient's inbox through MessagingService. Time is the FakeClock's.
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clients/cpp/events_client.h"
#include "clients/cpp/followup_client.h"
#include "clients/cpp/messaging_client.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kAdmin;
using ::careseal::testing::kClinicianA;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kEhrB;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using client::CallOptions;
using client::ErrorField;
using client::ErrorReason;
using client::FollowUpClient;
using google::protobuf::util::TimeUtil;
namespace v1 = ::careseal::v1;

constexpr char kTenant[] = "tenants/clinic-a";
constexpr char kPatient[] = "tenants/clinic-a/patients/p-100";
constexpr char kOtherPatient[] = "tenants/clinic-a/patients/p-200";

// Until patient tokens land (identity issue), a test-only authenticator
// turns the portal's bearer token "test-patient:{tenant}:{patient}" into a
// patient principal; every other call authenticates by its peer alone.
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

CallOptions AsPatient(const std::string& patient = kPatient) {
  std::vector<std::string> parts = absl::StrSplit(patient, '/');
  CallOptions options;
  options.bearer_token = absl::StrCat("test-patient:", parts[1], ":", parts[3]);
  return options;
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

v1::Answer Bp(int systolic, int diastolic, int pulse = 0) {
  v1::Answer a;
  a.set_item_id("bp");
  a.mutable_blood_pressure()->set_systolic_mmhg(systolic);
  a.mutable_blood_pressure()->set_diastolic_mmhg(diastolic);
  a.mutable_blood_pressure()->set_pulse_bpm(pulse);
  return a;
}

// PHQ-9 answers totalling `total` over items 1-8 (each 0..3) with item 9 as
// given.
std::vector<v1::Answer> Phq9(int total, int item9 = 0) {
  std::vector<v1::Answer> out;
  int left = total - item9;
  for (int i = 1; i <= 8; ++i) {
    const int v = std::min(3, std::max(0, left));
    left -= v;
    out.push_back(Int(absl::StrCat("phq9_", i), v));
  }
  out.push_back(Int("phq9_9", item9));
  return out;
}

std::vector<v1::Answer> Gad7(int total) {
  std::vector<v1::Answer> out;
  int left = total;
  for (int i = 1; i <= 7; ++i) {
    const int v = std::min(3, std::max(0, left));
    left -= v;
    out.push_back(Int(absl::StrCat("gad7_", i), v));
  }
  return out;
}

std::vector<v1::Answer> SideEffects(std::vector<int> ratings) {
  const char* ids[] = {"se_dissociation", "se_nausea_vomiting",
                       "se_dizziness",    "se_blurred_vision",
                       "se_headache",     "se_sleepiness",
                       "se_urinary"};
  std::vector<v1::Answer> out;
  for (size_t i = 0; i < ratings.size(); ++i) {
    out.push_back(Int(ids[i], ratings[i]));
  }
  return out;
}

class FollowUpTest : public ::testing::Test {
 protected:
  FollowUpTest()
      : server_({"messaging", "followup"}),
        clinician_(server_.ChannelFor(kClinicianA)),
        portal_(server_.ChannelFor(kPortal)),
        ehr_(server_.ChannelFor(kEhrA)),
        admin_(server_.ChannelFor(kAdmin)),
        ehr_b_(server_.ChannelFor(kEhrB)),
        events_(server_.ChannelFor(kEhrA)),
        messaging_portal_(server_.ChannelFor(kPortal)) {
    server_.env().authenticator->Set(&authenticator_);
  }
  ~FollowUpTest() override { server_.env().authenticator->Set(nullptr); }

  absl::StatusOr<v1::SubmitResponseResponse> Submit(
      const std::string& instrument, const std::vector<v1::Answer>& answers,
      const std::string& check_in = "", const CallOptions& as = AsPatient(),
      const std::string& patient = kPatient) {
    v1::SubmitResponseRequest r;
    r.set_parent(patient);
    r.set_instrument(absl::StrCat("instruments/", instrument));
    r.set_instrument_version(1);
    r.set_check_in(check_in);
    // The client library takes a mutation's request id from the request.
    r.set_request_id(as.request_id);
    for (const v1::Answer& a : answers) *r.add_answers() = a;
    return portal_.SubmitResponse(r, as);
  }

  v1::SubmitResponseResponse SubmitOk(const std::string& instrument,
                                      const std::vector<v1::Answer>& answers) {
    auto r = Submit(instrument, answers);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::SubmitResponseResponse();
  }

  int StoredResponses() {
    v1::ListQuestionnaireResponsesRequest r;
    r.set_parent(absl::StrCat(kTenant, "/patients/-"));
    r.set_page_size(1000);
    auto out = clinician_.ListQuestionnaireResponses(r);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->responses_size() : -1;
  }

  std::vector<v1::Event> Events(v1::EventType type) {
    v1::ListEventsRequest r;
    r.set_parent(kTenant);
    r.add_types(type);
    r.set_page_size(1000);
    auto out = events_.ListEvents(r);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    return {out->events().begin(), out->events().end()};
  }

  std::vector<v1::Escalation> OpenQueue() {
    v1::ListEscalationsRequest r;
    r.set_parent(absl::StrCat(kTenant, "/patients/-"));
    r.set_state(v1::ESCALATION_STATE_OPEN);
    auto out = clinician_.ListEscalations(r);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    return {out->escalations().begin(), out->escalations().end()};
  }

  TestPatientAuthenticator authenticator_;
  TestServer server_;
  FollowUpClient clinician_;
  FollowUpClient portal_;
  FollowUpClient ehr_;
  FollowUpClient admin_;
  FollowUpClient ehr_b_;
  client::EventsClient events_;
  client::MessagingClient messaging_portal_;
};

TEST_F(FollowUpTest, Phq9BandBoundariesThroughTheRpc) {
  struct Case {
    int total;
    const char* band;
  } cases[] = {{0, "minimal"},
               {4, "minimal"},
               {5, "mild"},
               {9, "mild"},
               {10, "moderate"},
               {14, "moderate"},
               {15, "moderately_severe"},
               {19, "moderately_severe"},
               {20, "severe"},
               {24, "severe"}};
  for (const Case& c : cases) {
    auto r = SubmitOk("phq-9", Phq9(c.total));
    EXPECT_EQ(r.response().score(), c.total);
    EXPECT_EQ(r.response().band(), c.band) << c.total;
    EXPECT_EQ(r.response().flags_size(), 0);
    EXPECT_EQ(r.escalations_size(), 0);
    EXPECT_FALSE(r.has_crisis_resources());
    EXPECT_EQ(r.response().instrument(), "instruments/phq-9");
    EXPECT_EQ(r.response().instrument_version(), 1);
    EXPECT_EQ(r.response().submitted_by().name(), kPatient);
    // Stored as answered: read it back.
    v1::GetQuestionnaireResponseRequest get;
    get.set_name(r.response().name());
    auto back = clinician_.GetQuestionnaireResponse(get);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->response().score(), c.total);
    EXPECT_EQ(back->response().answers_size(), 9);
    EXPECT_EQ(back->response().answers(8).int_value(), 0);
  }
  // The highest total needs item 9: 27 = 8 x 3 + 3.
  auto max = SubmitOk("phq-9", Phq9(27, 3));
  EXPECT_EQ(max.response().score(), 27);
  EXPECT_EQ(max.response().band(), "severe");
  EXPECT_EQ(StoredResponses(), 11);
}

TEST_F(FollowUpTest, Gad7SideEffectsBloodPressureHomeSafeScoring) {
  struct Case {
    int total;
    const char* band;
  } gad[] = {{0, "minimal"}, {4, "minimal"},   {5, "mild"},
             {9, "mild"},    {10, "moderate"}, {14, "moderate"},
             {15, "severe"}, {21, "severe"}};
  for (const Case& c : gad) {
    auto r = SubmitOk("gad-7", Gad7(c.total));
    EXPECT_EQ(r.response().score(), c.total);
    EXPECT_EQ(r.response().band(), c.band) << c.total;
    EXPECT_EQ(r.escalations_size(), 0);
  }

  // Side effects: the score is the worst rating.
  auto se = SubmitOk("side-effects", SideEffects({1, 2, 0, 0, 1, 2, 0}));
  EXPECT_EQ(se.response().score(), 2);
  EXPECT_EQ(se.response().band(), "moderate");
  EXPECT_EQ(se.escalations_size(), 0);
  auto severe = SubmitOk("side-effects", SideEffects({0, 3, 0, 0, 0, 0, 0}));
  EXPECT_EQ(severe.response().score(), 3);
  EXPECT_EQ(severe.response().band(), "severe");
  ASSERT_EQ(severe.response().flags_size(), 1);
  EXPECT_EQ(severe.response().flags(0), v1::RESPONSE_FLAG_SIDE_EFFECT_SEVERE);
  ASSERT_EQ(severe.escalations_size(), 1);
  EXPECT_EQ(severe.escalations(0).priority(), v1::ESCALATION_PRIORITY_ROUTINE);
  EXPECT_EQ(severe.escalations(0).trigger(),
            v1::ESCALATION_TRIGGER_SIDE_EFFECT_SEVERE);
  EXPECT_FALSE(severe.escalations(0).has_ack_deadline());
  EXPECT_FALSE(severe.has_crisis_resources());

  // Blood pressure: no score; at or above the tenant threshold (default
  // 180/120) escalates at once and tells the patient to seek urgent care.
  auto normal = SubmitOk("blood-pressure", {Bp(128, 82, 70)});
  EXPECT_FALSE(normal.response().has_score());
  EXPECT_EQ(normal.escalations_size(), 0);
  auto below = SubmitOk("blood-pressure", {Bp(179, 119)});
  EXPECT_EQ(below.escalations_size(), 0);
  auto crisis = SubmitOk("blood-pressure", {Bp(180, 100)});
  ASSERT_EQ(crisis.response().flags_size(), 1);
  EXPECT_EQ(crisis.response().flags(0), v1::RESPONSE_FLAG_BLOOD_PRESSURE_HIGH);
  ASSERT_EQ(crisis.escalations_size(), 1);
  EXPECT_EQ(crisis.escalations(0).priority(), v1::ESCALATION_PRIORITY_URGENT);
  EXPECT_EQ(crisis.escalations(0).trigger(),
            v1::ESCALATION_TRIGGER_BLOOD_PRESSURE_HIGH);
  ASSERT_TRUE(crisis.has_crisis_resources());
  bool has_911 = false;
  for (const auto& r : crisis.crisis_resources().resources()) {
    has_911 |= r.call_number() == "911" && r.emergency();
  }
  EXPECT_TRUE(has_911);

  // A tenant threshold: 160/100.
  v1::UpdateFollowUpSettingsRequest update;
  update.mutable_settings()->set_name(
      absl::StrCat(kTenant, "/followUpSettings"));
  update.mutable_settings()->set_blood_pressure_systolic_threshold(160);
  update.mutable_settings()->set_blood_pressure_diastolic_threshold(100);
  update.mutable_update_mask()->add_paths("blood_pressure_systolic_threshold");
  update.mutable_update_mask()->add_paths("blood_pressure_diastolic_threshold");
  auto updated = admin_.UpdateFollowUpSettings(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->settings().blood_pressure_systolic_threshold(), 160);
  auto now_high = SubmitOk("blood-pressure", {Bp(165, 90)});
  EXPECT_EQ(now_high.escalations_size(), 1);
  auto diastolic = SubmitOk("blood-pressure", {Bp(150, 100)});
  EXPECT_EQ(diastolic.escalations_size(), 1);
  auto still_fine = SubmitOk("blood-pressure", {Bp(159, 99)});
  EXPECT_EQ(still_fine.escalations_size(), 0);
  // A threshold that is no reading is refused.
  update.mutable_settings()->set_blood_pressure_systolic_threshold(400);
  auto bad = admin_.UpdateFollowUpSettings(update);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(bad.status()), "THRESHOLD_OUT_OF_RANGE");

  // Home safe: "no" to either question is a routine escalation.
  auto safe = SubmitOk("home-safe",
                       {Bool("home_safe", true), Bool("adult_present", true)});
  EXPECT_EQ(safe.escalations_size(), 0);
  EXPECT_FALSE(safe.response().has_score());
  auto unsafe = SubmitOk(
      "home-safe", {Bool("home_safe", false), Bool("adult_present", true)});
  ASSERT_EQ(unsafe.escalations_size(), 1);
  EXPECT_EQ(unsafe.escalations(0).trigger(),
            v1::ESCALATION_TRIGGER_HOME_SAFE_NOT_CONFIRMED);
  EXPECT_EQ(unsafe.escalations(0).priority(), v1::ESCALATION_PRIORITY_ROUTINE);
}

TEST_F(FollowUpTest, CssrsRiskLevels) {
  // No to Q1, Q2 and Q6: no risk.
  auto none = SubmitOk(
      "cssrs-screener",
      {Bool("cssrs_1", false), Bool("cssrs_2", false), Bool("cssrs_6", false)});
  EXPECT_EQ(none.response().score(), 0);
  EXPECT_EQ(none.response().band(), "no_risk");
  EXPECT_FALSE(none.has_crisis_resources());
  // Q1 yes only: low risk, crisis resources, no escalation.
  auto low = SubmitOk(
      "cssrs-screener",
      {Bool("cssrs_1", true), Bool("cssrs_2", false), Bool("cssrs_6", false)});
  EXPECT_EQ(low.response().band(), "low_risk");
  EXPECT_TRUE(low.has_crisis_resources());
  EXPECT_EQ(low.escalations_size(), 0);
  // Q2 and Q3 yes: moderate, routine escalation + crisis resources.
  auto moderate = SubmitOk(
      "cssrs-screener",
      {Bool("cssrs_1", true), Bool("cssrs_2", true), Bool("cssrs_3", true),
       Bool("cssrs_4", false), Bool("cssrs_5", false), Bool("cssrs_6", false)});
  EXPECT_EQ(moderate.response().band(), "moderate_risk");
  ASSERT_EQ(moderate.escalations_size(), 1);
  EXPECT_EQ(moderate.escalations(0).priority(),
            v1::ESCALATION_PRIORITY_ROUTINE);
  EXPECT_TRUE(moderate.has_crisis_resources());
  // Q4 (intent) yes: high risk, urgent escalation in the same call.
  auto high = SubmitOk(
      "cssrs-screener",
      {Bool("cssrs_1", true), Bool("cssrs_2", true), Bool("cssrs_3", true),
       Bool("cssrs_4", true), Bool("cssrs_5", false), Bool("cssrs_6", false)});
  EXPECT_EQ(high.response().score(), 3);
  EXPECT_EQ(high.response().band(), "high_risk");
  ASSERT_EQ(high.escalations_size(), 1);
  EXPECT_EQ(high.escalations(0).trigger(),
            v1::ESCALATION_TRIGGER_CSSRS_HIGH_RISK);
  EXPECT_EQ(high.escalations(0).priority(), v1::ESCALATION_PRIORITY_URGENT);
  EXPECT_TRUE(high.has_crisis_resources());
  // Recent behaviour (Q6 yes within 3 months) is high risk too.
  auto behaviour = SubmitOk(
      "cssrs-screener", {Bool("cssrs_1", false), Bool("cssrs_2", false),
                         Bool("cssrs_6", true), Bool("cssrs_6_recent", true)});
  EXPECT_EQ(behaviour.response().band(), "high_risk");
  EXPECT_EQ(behaviour.escalations_size(), 1);
}

TEST_F(FollowUpTest, InvalidAnswersAreRejectedAndNothingIsStored) {
  struct Case {
    const char* instrument;
    std::vector<v1::Answer> answers;
    const char* reason;
    const char* field;
  };
  std::vector<v1::Answer> out_of_range = Phq9(5);
  out_of_range[2] = Int("phq9_3", 4);
  std::vector<v1::Answer> missing = Phq9(5);
  missing.erase(missing.begin() + 8);  // no item 9
  std::vector<v1::Answer> unknown = Phq9(5);
  unknown.push_back(Int("phq9_99", 0));
  std::vector<v1::Answer> duplicate = Phq9(5);
  duplicate.push_back(Int("phq9_1", 0));
  std::vector<v1::Answer> wrong_type = Phq9(5);
  wrong_type[0] = Bool("phq9_1", true);
  const std::vector<Case> cases = {
      {"phq-9", out_of_range, "ANSWER_OUT_OF_RANGE", "answers[2]"},
      {"phq-9", missing, "ANSWER_REQUIRED", "answers.phq9_9"},
      {"phq-9", unknown, "UNKNOWN_ITEM", "answers[9]"},
      {"phq-9", duplicate, "DUPLICATE_ITEM", "answers[9]"},
      {"phq-9", wrong_type, "ANSWER_TYPE_MISMATCH", "answers[0]"},
      {"gad-7", {Int("gad7_1", -1)}, "ANSWER_OUT_OF_RANGE", "answers[0]"},
      {"side-effects", SideEffects({0, 0, 0, 0, 0, 0, 5}),
       "ANSWER_OUT_OF_RANGE", "answers[6]"},
      {"blood-pressure", {Bp(120, 130)}, "ANSWER_OUT_OF_RANGE", ""},
      {"blood-pressure", {Bp(400, 90)}, "ANSWER_OUT_OF_RANGE", ""},
      // C-SSRS Q3 is asked only after Q2 yes.
      {"cssrs-screener",
       {Bool("cssrs_1", true), Bool("cssrs_2", false), Bool("cssrs_3", true),
        Bool("cssrs_6", false)},
       "ANSWER_NOT_ENABLED",
       "answers[2]"},
      {"home-safe",
       {Bool("home_safe", true)},
       "ANSWER_REQUIRED",
       "answers.adult_present"},
  };
  for (const Case& c : cases) {
    auto r = Submit(c.instrument, c.answers);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << c.instrument << " " << c.reason << " " << r.status();
    EXPECT_EQ(ErrorReason(r.status()), c.reason) << r.status();
    if (*c.field != '\0') {
      EXPECT_EQ(ErrorField(r.status()), c.field) << r.status();
    }
  }
  // An item-9 answer out of range escalates nothing either.
  std::vector<v1::Answer> item9_bad = Phq9(5);
  item9_bad[8] = Int("phq9_9", 7);
  EXPECT_EQ(Submit("phq-9", item9_bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A stale version and an unknown instrument.
  v1::SubmitResponseRequest stale;
  stale.set_parent(kPatient);
  stale.set_instrument("instruments/phq-9");
  stale.set_instrument_version(2);
  for (const auto& a : Phq9(3)) *stale.add_answers() = a;
  auto s = portal_.SubmitResponse(stale, AsPatient());
  EXPECT_EQ(ErrorReason(s.status()), "INSTRUMENT_VERSION_MISMATCH");
  stale.set_instrument("instruments/beck");
  stale.set_instrument_version(1);
  EXPECT_EQ(portal_.SubmitResponse(stale, AsPatient()).status().code(),
            absl::StatusCode::kNotFound);

  EXPECT_EQ(StoredResponses(), 0);
  EXPECT_TRUE(Events(v1::EVENT_TYPE_FOLLOWUP_SUBMITTED).empty());
  EXPECT_TRUE(Events(v1::EVENT_TYPE_ESCALATION_RAISED).empty());
  EXPECT_TRUE(OpenQueue().empty());
}

TEST_F(FollowUpTest, Item9AnswerEscalatesWithCrisisResourcesInTheSameCall) {
  const absl::Time t0 = server_.clock().Now();
  CallOptions as = AsPatient();
  as.request_id = "3f0e9a52-6a8c-4c3e-9d7b-0d6c2b1f4a11";
  auto r = Submit("phq-9", Phq9(8, 1), "", as);
  ASSERT_TRUE(r.ok()) << r.status();
  // The response itself carries everything the portal must show at once.
  EXPECT_EQ(r->response().score(), 8);
  ASSERT_EQ(r->response().flags_size(), 1);
  EXPECT_EQ(r->response().flags(0), v1::RESPONSE_FLAG_PHQ9_ITEM9_POSITIVE);
  ASSERT_TRUE(r->has_crisis_resources());
  bool call988 = false, text988 = false, chat = false, e911 = false;
  for (const auto& res : r->crisis_resources().resources()) {
    call988 |= res.call_number() == "988";
    text988 |= res.text_number() == "988";
    chat |= absl::StrContains(res.chat_url(), "988lifeline.org");
    e911 |= res.call_number() == "911" && res.emergency();
  }
  EXPECT_TRUE(call988 && text988 && chat && e911);
  ASSERT_EQ(r->escalations_size(), 1);
  const v1::Escalation& e = r->escalations(0);
  EXPECT_EQ(e.trigger(), v1::ESCALATION_TRIGGER_PHQ9_ITEM9);
  EXPECT_EQ(e.priority(), v1::ESCALATION_PRIORITY_URGENT);
  EXPECT_EQ(e.state(), v1::ESCALATION_STATE_OPEN);
  EXPECT_EQ(e.level(), v1::ESCALATION_LEVEL_PRIMARY);
  EXPECT_EQ(e.source(), r->response().name());
  EXPECT_EQ(TimeUtil::TimestampToMicroseconds(e.ack_deadline()),
            absl::ToUnixMicros(t0 + absl::Minutes(15)));
  ASSERT_EQ(r->response().escalations_size(), 1);
  EXPECT_EQ(r->response().escalations(0), e.name());

  // Already in the care team's queue and on the EHR stream.
  auto queue = OpenQueue();
  ASSERT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue[0].name(), e.name());
  auto raised = Events(v1::EVENT_TYPE_ESCALATION_RAISED);
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0].resource(), e.name());
  EXPECT_EQ(raised[0].patient(), kPatient);
  EXPECT_EQ(Events(v1::EVENT_TYPE_FOLLOWUP_SUBMITTED).size(), 1u);

  // A retry returns the same response, escalation and resources.
  auto retry = Submit("phq-9", Phq9(8, 1), "", as);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->response().name(), r->response().name());
  ASSERT_EQ(retry->escalations_size(), 1);
  EXPECT_EQ(retry->escalations(0).name(), e.name());
  EXPECT_TRUE(retry->has_crisis_resources());
  EXPECT_EQ(OpenQueue().size(), 1u);
  EXPECT_EQ(StoredResponses(), 1);

  // Another tenant's EHR cannot see it (answers like an absent one).
  v1::GetEscalationRequest get;
  get.set_name(e.name());
  EXPECT_EQ(ehr_b_.GetEscalation(get).status().code(),
            absl::StatusCode::kNotFound);
  // The patient may not read the queue.
  EXPECT_EQ(portal_.GetEscalation(get, AsPatient()).status().code(),
            absl::StatusCode::kPermissionDenied);

  // A clinician acknowledges; a second acknowledgement names who did.
  server_.clock().Advance(absl::Minutes(3));
  v1::AcknowledgeEscalationRequest ack;
  ack.set_name(e.name());
  ack.set_note("Called the patient; safety plan reviewed.");
  auto acked = clinician_.AcknowledgeEscalation(ack);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(acked->escalation().state(), v1::ESCALATION_STATE_ACKNOWLEDGED);
  EXPECT_EQ(acked->escalation().acknowledged_by().name(),
            "tenants/clinic-a/clinicians/dr-a");
  EXPECT_EQ(acked->escalation().note(),
            "Called the patient; safety plan reviewed.");
  auto again = clinician_.AcknowledgeEscalation(ack);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(again.status()), "ESCALATION_ALREADY_ACKNOWLEDGED");
  EXPECT_TRUE(OpenQueue().empty());
  EXPECT_EQ(Events(v1::EVENT_TYPE_ESCALATION_ACKNOWLEDGED).size(), 1u);
  auto read = ehr_.GetEscalation(get);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->escalation().state(), v1::ESCALATION_STATE_ACKNOWLEDGED);
}

// A clinic outside the 988/911 area (or with its own crisis line) sets its
// crisis resources; a patient at risk sees those, in the same call, and a
// blood-pressure crisis names the clinic's emergency number.
TEST_F(FollowUpTest, TheClinicsOwnCrisisResourcesAreShownToAPatientAtRisk) {
  v1::UpdateFollowUpSettingsRequest update;
  update.mutable_settings()->set_name(
      absl::StrCat(kTenant, "/followUpSettings"));
  update.mutable_update_mask()->add_paths("crisis_resources");
  v1::CrisisResources* c =
      update.mutable_settings()->mutable_crisis_resources();
  c->set_headline("Help is available now, day and night.");
  v1::CrisisResource* line = c->add_resources();
  line->set_display_name("Clinic A crisis line");
  line->set_call_number("+1 (555) 010-0199");
  line->set_note("Staffed by our nurses around the clock");
  v1::CrisisResource* lifeline = c->add_resources();
  lifeline->set_display_name("988 Suicide & Crisis Lifeline");
  lifeline->set_call_number("988");
  lifeline->set_text_number("988");
  lifeline->set_chat_url("https://988lifeline.org/chat");
  v1::CrisisResource* emergency = c->add_resources();
  emergency->set_display_name("Emergency services");
  emergency->set_call_number("112");
  emergency->set_emergency(true);
  auto updated = admin_.UpdateFollowUpSettings(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->settings().crisis_resources().resources_size(), 3);

  v1::GetFollowUpSettingsRequest get;
  get.set_name(absl::StrCat(kTenant, "/followUpSettings"));
  auto got = admin_.GetFollowUpSettings(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->settings().crisis_resources().headline(),
            "Help is available now, day and night.");
  EXPECT_EQ(got->settings().crisis_resources().resources(0).call_number(),
            "+1 (555) 010-0199");

  auto risky = SubmitOk("phq-9", Phq9(8, 1));
  ASSERT_TRUE(risky.has_crisis_resources());
  ASSERT_EQ(risky.crisis_resources().resources_size(), 3);
  EXPECT_EQ(risky.crisis_resources().headline(),
            "Help is available now, day and night.");
  EXPECT_EQ(risky.crisis_resources().resources(0).display_name(),
            "Clinic A crisis line");
  EXPECT_EQ(risky.crisis_resources().resources(2).call_number(), "112");

  auto bp = SubmitOk("blood-pressure", {Bp(190, 100)});
  ASSERT_TRUE(bp.has_crisis_resources());
  ASSERT_EQ(bp.crisis_resources().resources_size(), 1);
  EXPECT_EQ(bp.crisis_resources().resources(0).call_number(), "112");
  EXPECT_EQ(bp.crisis_resources().headline(),
            "Your blood pressure is very high. Call 112 or go to the nearest "
            "emergency department.");

  // Resources a patient at risk could not use are refused, and nothing
  // changes.
  struct Bad {
    std::function<void(v1::CrisisResources&)> spoil;
    std::string field;
    std::string reason;
  };
  const std::vector<Bad> bad = {
      {[](v1::CrisisResources& r) { r.set_headline(""); },
       "settings.crisis_resources.headline", "FIELD_REQUIRED"},
      {[](v1::CrisisResources& r) { r.clear_resources(); },
       "settings.crisis_resources.resources", "INVALID_CRISIS_RESOURCES"},
      {[](v1::CrisisResources& r) {
         r.mutable_resources(2)->set_emergency(false);
       },
       "settings.crisis_resources.resources", "INVALID_CRISIS_RESOURCES"},
      {[](v1::CrisisResources& r) {
         r.mutable_resources(0)->set_call_number("call us");
       },
       "settings.crisis_resources.resources[0].call_number",
       "INVALID_CRISIS_RESOURCES"},
      {[](v1::CrisisResources& r) {
         r.mutable_resources(1)->set_chat_url("http://988lifeline.org/chat");
       },
       "settings.crisis_resources.resources[1].chat_url",
       "INVALID_CRISIS_RESOURCES"},
      {[](v1::CrisisResources& r) {
         r.mutable_resources(0)->set_call_number("");
       },
       "settings.crisis_resources.resources[0]", "INVALID_CRISIS_RESOURCES"},
      {[](v1::CrisisResources& r) {
         r.mutable_resources(0)->set_display_name("Line\nbreak");
       },
       "settings.crisis_resources.resources[0].display_name",
       "INVALID_CHARACTERS"},
  };
  for (const Bad& b : bad) {
    v1::UpdateFollowUpSettingsRequest spoiled = update;
    b.spoil(*spoiled.mutable_settings()->mutable_crisis_resources());
    auto refused = admin_.UpdateFollowUpSettings(spoiled);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument)
        << b.field;
    EXPECT_EQ(ErrorReason(refused.status()), b.reason) << b.field;
    EXPECT_EQ(ErrorField(refused.status()), b.field);
  }
  auto unchanged = admin_.GetFollowUpSettings(get);
  ASSERT_TRUE(unchanged.ok()) << unchanged.status();
  EXPECT_EQ(unchanged->settings().crisis_resources().resources(2).call_number(),
            "112");
}

TEST_F(FollowUpTest, OutcomeSeriesHasResponseAndRemissionMarkers) {
  const int scores[] = {20, 14, 11, 10, 6, 4};
  for (int s : scores) {
    SubmitOk("phq-9", Phq9(s));
    server_.clock().Advance(absl::Hours(72));
  }
  // Another patient's responses are not in the series.
  ASSERT_TRUE(
      Submit("phq-9", Phq9(2), "", AsPatient(kOtherPatient), kOtherPatient)
          .ok());
  v1::GetOutcomeSeriesRequest r;
  r.set_patient(kPatient);
  r.set_instrument("instruments/phq-9");
  auto series = clinician_.GetOutcomeSeries(r);
  ASSERT_TRUE(series.ok()) << series.status();
  EXPECT_EQ(series->baseline().score(), 20);
  ASSERT_EQ(series->points_size(), 6);
  const bool response[] = {false, false, false, true, true, true};
  const bool remission[] = {false, false, false, false, false, true};
  const double change[] = {0, -30, -45, -50, -70, -80};
  for (int i = 0; i < 6; ++i) {
    const auto& p = series->points(i);
    EXPECT_EQ(p.score(), scores[i]);
    EXPECT_EQ(p.response_marker(), response[i]) << i;
    EXPECT_EQ(p.remission_marker(), remission[i]) << i;
    EXPECT_NEAR(p.change_from_baseline_percent(), change[i], 1e-9) << i;
    if (i > 0) {
      EXPECT_GT(
          TimeUtil::TimestampToMicroseconds(p.time()),
          TimeUtil::TimestampToMicroseconds(series->points(i - 1).time()));
    }
  }
  // The patient sees their own series, not another's.
  EXPECT_TRUE(portal_.GetOutcomeSeries(r, AsPatient()).ok());
  EXPECT_EQ(
      portal_.GetOutcomeSeries(r, AsPatient(kOtherPatient)).status().code(),
      absl::StatusCode::kNotFound);
  // Unscored instruments have no series.
  r.set_instrument("instruments/home-safe");
  auto unscored = clinician_.GetOutcomeSeries(r);
  EXPECT_EQ(ErrorReason(unscored.status()), "INSTRUMENT_NOT_SCORED");
}

TEST_F(FollowUpTest, AdHocCheckInLandsInTheInboxAndIsAnswered) {
  v1::SendCheckInRequest send;
  send.set_parent(kPatient);
  send.add_instruments("instruments/phq-9");
  send.add_instruments("instruments/gad-7");
  send.set_note("Please fill this in before Thursday.");
  auto sent = clinician_.SendCheckIn(send);
  ASSERT_TRUE(sent.ok()) << sent.status();
  const v1::CheckIn& c = sent->check_in();
  EXPECT_EQ(c.kind(), v1::CHECK_IN_KIND_AD_HOC);
  EXPECT_EQ(c.state(), v1::CHECK_IN_STATE_SENT);
  EXPECT_FALSE(c.message().empty());
  EXPECT_EQ(TimeUtil::TimestampToMicroseconds(c.expire_time()),
            absl::ToUnixMicros(server_.clock().Now() + absl::Hours(72)));
  EXPECT_EQ(Events(v1::EVENT_TYPE_FOLLOWUP_SENT).size(), 1u);

  // The patient's inbox holds the message that delivered it.
  v1::GetMessageRequest get_message;
  get_message.set_name(c.message());
  auto message = messaging_portal_.GetMessage(get_message, AsPatient());
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_TRUE(absl::StrContains(message->message().text(), "PHQ-9"));
  EXPECT_TRUE(absl::StrContains(message->message().text(), "before Thursday"));

  // Not an instrument of the check-in.
  auto wrong =
      Submit("side-effects", SideEffects({0, 0, 0, 0, 0, 0, 0}), c.name());
  EXPECT_EQ(ErrorReason(wrong.status()), "INSTRUMENT_NOT_IN_CHECK_IN");
  auto phq = Submit("phq-9", Phq9(7), c.name());
  ASSERT_TRUE(phq.ok()) << phq.status();
  EXPECT_EQ(phq->response().check_in(), c.name());
  auto twice = Submit("phq-9", Phq9(7), c.name());
  EXPECT_EQ(ErrorReason(twice.status()), "ALREADY_ANSWERED");
  v1::GetCheckInRequest get;
  get.set_name(c.name());
  auto half = portal_.GetCheckIn(get, AsPatient());
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_EQ(half->check_in().state(), v1::CHECK_IN_STATE_SENT);
  ASSERT_TRUE(Submit("gad-7", Gad7(3), c.name()).ok());
  auto done = portal_.GetCheckIn(get, AsPatient());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->check_in().state(), v1::CHECK_IN_STATE_COMPLETED);
  EXPECT_EQ(done->check_in().responses_size(), 2);

  // A check-in past its expiry takes no answers.
  send.clear_instruments();
  send.add_instruments("instruments/home-safe");
  auto second = ehr_.SendCheckIn(send);
  ASSERT_TRUE(second.ok()) << second.status();
  server_.clock().Advance(absl::Hours(72));
  auto late = Submit("home-safe",
                     {Bool("home_safe", true), Bool("adult_present", true)},
                     second->check_in().name());
  EXPECT_EQ(ErrorReason(late.status()), "CHECK_IN_EXPIRED");
  v1::ListCheckInsRequest list;
  list.set_parent(kPatient);
  list.set_state(v1::CHECK_IN_STATE_EXPIRED);
  auto expired = clinician_.ListCheckIns(list);
  ASSERT_TRUE(expired.ok()) << expired.status();
  ASSERT_EQ(expired->check_ins_size(), 1);
  EXPECT_EQ(expired->check_ins(0).name(), second->check_in().name());

  // Bad requests deliver nothing.
  v1::SendCheckInRequest bad;
  bad.set_parent(kPatient);
  bad.add_instruments("instruments/beck-depression");
  auto unknown = clinician_.SendCheckIn(bad);
  EXPECT_EQ(ErrorReason(unknown.status()), "UNKNOWN_INSTRUMENT");
  bad.clear_instruments();
  bad.add_instruments("instruments/phq-9");
  bad.mutable_expire_time()->set_seconds(
      absl::ToUnixSeconds(server_.clock().Now() + absl::Hours(24 * 15)));
  auto far = clinician_.SendCheckIn(bad);
  EXPECT_EQ(ErrorReason(far.status()), "EXPIRE_TIME_OUT_OF_RANGE");
  EXPECT_EQ(Events(v1::EVENT_TYPE_FOLLOWUP_SENT).size(), 2u);
}

// Only ServerHost's in-process channel acts as CareSeal itself: a network
// peer sending the in-process header (with any value) stays what its
// certificate says, so the EHR still may not send messages.
TEST_F(FollowUpTest, TheInProcessHeaderFromTheNetworkGrantsNothing) {
  auto stub = v1::MessagingService::NewStub(server_.ChannelFor(kEhrA));
  for (const std::string& value : {std::string(64, '0'), std::string("")}) {
    grpc::ClientContext context;
    context.AddMetadata("careseal-in-process", value);
    v1::SendMessageRequest request;
    v1::SendMessageResponse response;
    EXPECT_EQ(stub->SendMessage(&context, request, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
}

}  // namespace
}  // namespace careseal
