// The pre-session service end to end, through the public C++ client over
// mutual TLS, on the FakeClock:
//  * a full induction series in simulated time: instructions delivered into
//    the patient's inbox at T-48 h and T-24 h, reminders while
//    unacknowledged, nothing for a cancelled session, a moved session
//    rescheduled, and a restart mid-run that duplicates nothing;
//  * the readiness table over the API with a real signed consent: each
//    failing item alone gives NOT_READY with exactly that reason, all clean
//    gives READY, a clinician override is recorded and audited;
//  * bad input answers INVALID_ARGUMENT naming the field and stores nothing.
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/cpp/audit_client.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/events_client.h"
#include "clients/cpp/identity_client.h"
#include "clients/cpp/messaging_client.h"
#include "clients/cpp/presession_client.h"
#include "gtest/gtest.h"
#include "services/presession/presession_module.h"
#include "tests/testing/instruction_fixtures.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kAdmin;
using ::careseal::testing::kClinicianA;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using client::ErrorField;
using client::ErrorReason;
namespace v1 = ::careseal::v1;

constexpr char kTenant[] = "tenants/clinic-a";
constexpr char kProcedure[] = "ketamine-iv-induction";
constexpr char kAuditorA[] =
    "spiffe://careseal.local/tenant/clinic-a/auditor/aud-a";

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

class PreSessionTest : public ::testing::Test {
 protected:
  PreSessionTest()
      : ehr_(server_.ChannelFor(kEhrA)),
        clinician_(server_.ChannelFor(kClinicianA)),
        admin_(server_.ChannelFor(kAdmin)),
        inbox_(server_.ChannelFor(kClinicianA)),
        events_(server_.ChannelFor(kEhrA)),
        consent_(server_.ChannelFor(kEhrA)),
        portal_(server_.ChannelFor(kPortal)),
        auditor_(server_.ChannelFor(kAuditorA)) {
    // Whole hours, so that hourly steps land exactly on due times.
    const int64_t s = absl::ToUnixSeconds(server_.clock().Now());
    server_.clock().Set(absl::FromUnixSeconds((s / 3600 + 1) * 3600));
  }

  presession::PreSessionModule& module() {
    for (size_t i = 0;; ++i) {
      if (auto* m =
              dynamic_cast<presession::PreSessionModule*>(server_.module(i))) {
        return *m;
      }
    }
  }

  absl::Time Now() { return server_.clock().Now(); }

  // Runs due deliveries at the current fake time; returns how many ran.
  int RunDue() {
    auto stats = module().scheduler().RunDue(Now());
    EXPECT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->failed, 0);
    EXPECT_EQ(stats->retried, 0);
    return stats->succeeded;
  }

  // Steps the clock hour by hour to `until`, running due jobs at each step.
  void StepUntil(absl::Time until) {
    while (Now() < until) {
      server_.clock().Advance(absl::Hours(1));
      RunDue();
    }
  }

  // Registers clinic-a in IdentityService with time zone America/Chicago;
  // returns that zone.
  absl::TimeZone RegisterChicagoClinic() {
    client::IdentityClient identity(server_.ChannelFor(kAdmin));
    v1::CreateTenantRequest tenant;
    tenant.set_tenant_id("clinic-a");
    tenant.mutable_tenant()->set_display_name("Clinic A");
    tenant.mutable_tenant()->set_time_zone("America/Chicago");
    EXPECT_TRUE(identity.CreateTenant(tenant).ok());
    absl::TimeZone chicago;
    EXPECT_TRUE(absl::LoadTimeZone("America/Chicago", &chicago));
    return chicago;
  }

  // Publishes the clinic's instructions and makes them the default.
  std::string PublishInstructions() {
    auto published = testing::PublishDefaultInstructions(ehr_, admin_, kTenant);
    EXPECT_TRUE(published.ok()) << published.status();
    if (!published.ok()) return "";
    digest_ = published->content_sha256();
    version_ = published->name();
    return version_;
  }

  void SetReminders(absl::Duration after, int max) {
    v1::UpdatePreSessionSettingsRequest settings;
    settings.mutable_settings()->set_name(
        absl::StrCat(kTenant, "/preSessionSettings"));
    *settings.mutable_settings()->mutable_reminder_after() = Dur(after);
    settings.mutable_settings()->set_max_reminders(max);
    settings.mutable_update_mask()->add_paths("reminder_after");
    settings.mutable_update_mask()->add_paths("max_reminders");
    auto updated = admin_.UpdatePreSessionSettings(settings);
    ASSERT_TRUE(updated.ok()) << updated.status();
  }

  // Every message in the patient's instruction threads.
  std::vector<v1::Message> Inbox(const std::string& patient) {
    std::vector<v1::Message> out;
    v1::ListThreadsRequest threads;
    threads.set_parent(patient);
    threads.set_page_size(1000);
    auto t = inbox_.ListThreads(threads);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return out;
    for (const auto& thread : t->threads()) {
      EXPECT_EQ(thread.category(), v1::THREAD_CATEGORY_INSTRUCTIONS);
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

  std::vector<v1::InstructionDelivery> Deliveries(const std::string& parent) {
    v1::ListInstructionDeliveriesRequest req;
    req.set_parent(parent);
    req.set_page_size(1000);
    auto r = clinician_.ListInstructionDeliveries(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->deliveries().begin(), r->deliveries().end()};
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

  // A real consent for `patient`: requested by the EHR and signed through
  // the portal (`sign` false leaves it pending).
  void GiveConsent(const std::string& patient, bool sign = true) {
    if (!consent_template_ready_) {
      v1::CreateConsentTemplateRequest create;
      create.set_parent(kTenant);
      create.set_consent_template_id("ketamine");
      create.mutable_consent_template()->set_display_name("IV ketamine");
      auto t = consent_.CreateConsentTemplate(create);
      ASSERT_TRUE(t.ok()) << t.status();
      v1::PublishConsentTemplateVersionRequest publish;
      publish.set_parent(t->consent_template().name());
      auto* v = publish.mutable_version();
      v->set_title("Consent to IV ketamine infusion therapy");
      v->set_body_markdown("# IV ketamine\n\nRisks: dissociation.\n");
      auto* a = v->add_acknowledgements();
      a->set_id("dissociation");
      a->set_text("I understand ketamine can cause dissociation.");
      a->set_required(true);
      v->add_procedure_codes(kProcedure);
      v->set_esign_disclosure("You may ask for a paper copy.");
      v->set_signature_meaning("Consent to treatment");
      auto published = consent_.PublishConsentTemplateVersion(publish);
      ASSERT_TRUE(published.ok()) << published.status();
      consent_template_ready_ = true;
    }
    v1::RequestConsentRequest request;
    request.set_parent(patient);
    request.set_procedure_code(kProcedure);
    auto r = consent_.RequestConsent(request);
    ASSERT_TRUE(r.ok()) << r.status();
    if (!sign) return;
    v1::GetConsentDocumentRequest get;
    get.set_signing_token(r->signing_token());
    auto doc = portal_.GetConsentDocument(get);
    ASSERT_TRUE(doc.ok()) << doc.status();
    v1::SignConsentRequest s;
    s.set_name(r->consent().name());
    s.set_signing_token(r->signing_token());
    s.set_document_sha256(doc->document_sha256());
    for (const auto& a : doc->acknowledgements())
      s.add_acknowledged_ids(a.id());
    s.set_intent_to_sign(true);
    s.set_printed_name("Alex Q. Patient");
    s.set_signature_meaning(doc->signature_meaning());
    s.set_signing_method(v1::SIGNING_METHOD_TYPED_NAME);
    auto signed_ = portal_.SignConsent(s);
    ASSERT_TRUE(signed_.ok()) << signed_.status();
  }

  v1::Session CreateSession(const std::string& patient, absl::Time start) {
    v1::CreateSessionRequest req;
    req.set_parent(patient);
    req.mutable_session()->set_procedure_code(kProcedure);
    req.mutable_session()->set_kind(v1::SESSION_KIND_MAINTENANCE);
    *req.mutable_session()->mutable_start_time() = Ts(start);
    req.mutable_session()->set_location("Suite 2");
    auto r = ehr_.CreateSession(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->session() : v1::Session();
  }

  // The day-of checklist, clean for a start at `start` answered now.
  v1::PreSessionChecklist CleanChecklist(absl::Time start) {
    v1::PreSessionChecklist c;
    *c.mutable_last_solid_food_time() = Ts(start - absl::Hours(8));
    *c.mutable_last_clear_liquid_time() = Ts(start - absl::Hours(3));
    c.mutable_escort()->set_name("Sam Escort");
    c.mutable_escort()->set_phone("+15555550123");
    c.set_medication_holds_followed(v1::MEDICATION_HOLDS_ANSWER_YES);
    return c;
  }

  absl::StatusOr<v1::AcknowledgeInstructionsResponse> Acknowledge(
      const std::string& session,
      const std::optional<v1::PreSessionChecklist>& checklist) {
    v1::AcknowledgeInstructionsRequest req;
    req.set_session(session);
    req.set_content_sha256(digest_);
    req.add_acknowledged_ids("no-driving");
    if (checklist) *req.mutable_checklist() = *checklist;
    return clinician_.AcknowledgeInstructions(req);
  }

  v1::SessionReadiness Readiness(const std::string& session) {
    v1::CheckSessionReadinessRequest req;
    req.set_session(session);
    auto r = clinician_.CheckSessionReadiness(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->readiness() : v1::SessionReadiness();
  }

  static std::vector<v1::ReadinessReason> Reasons(
      const v1::SessionReadiness& r) {
    std::vector<v1::ReadinessReason> out;
    for (const auto& i : r.issues()) out.push_back(i.reason());
    return out;
  }

  TestServer server_;
  client::PreSessionClient ehr_;
  client::PreSessionClient clinician_;
  client::PreSessionClient admin_;
  client::MessagingClient inbox_;
  client::EventsClient events_;
  client::ConsentClient consent_;
  client::ConsentClient portal_;
  client::AuditClient auditor_;
  std::string digest_;
  std::string version_;
  bool consent_template_ready_ = false;
};

TEST_F(PreSessionTest, InductionSeriesInSimulatedTimeWithRestart) {
  PublishInstructions();
  SetReminders(absl::Hours(6), 1);
  const std::string patient = "tenants/clinic-a/patients/p-100";
  const absl::Time t0 = Now();

  v1::CreateSessionSeriesRequest create;
  create.set_parent(patient);
  create.mutable_session_series()->set_procedure_code(kProcedure);
  create.mutable_session_series()->set_location("Suite 2");
  *create.mutable_plan()->mutable_first_start_time() =
      Ts(t0 + absl::Hours(24 * 7));
  for (int w : {3, 2, 1})
    create.mutable_plan()->add_induction_sessions_per_week(w);
  create.set_request_id(client::NewRequestId());
  auto series = ehr_.CreateSessionSeries(create);
  ASSERT_TRUE(series.ok()) << series.status();
  ASSERT_EQ(series->sessions_size(), 6);
  // Idempotent by request_id: the same series, no new sessions.
  auto again = ehr_.CreateSessionSeries(create);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->session_series().name(), series->session_series().name());
  EXPECT_EQ(again->sessions_size(), 6);

  std::vector<std::string> names;
  std::vector<absl::Time> starts;
  for (const auto& s : series->sessions()) {
    // Each session announced once (the retry added none).
    EXPECT_EQ(CountEvents(v1::EVENT_TYPE_SESSION_SCHEDULED, s.name()), 1);
    names.push_back(s.name());
    starts.push_back(FromTs(s.start_time()));
    EXPECT_EQ(s.kind(), v1::SESSION_KIND_INDUCTION);
    EXPECT_EQ(s.instruction_template_version(), version_);
  }
  // Induction 3/2/1, two days apart within a week.
  const int days[] = {7, 9, 11, 14, 16, 21};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(starts[i], t0 + absl::Hours(24 * days[i])) << i;
  }

  // Cancel the third infusion; move the second one day later.
  v1::CancelSessionRequest cancel;
  cancel.set_name(names[2]);
  cancel.set_reason("patient unwell");
  ASSERT_TRUE(ehr_.CancelSession(cancel).ok());
  v1::MoveSessionRequest move;
  move.set_name(names[1]);
  starts[1] += absl::Hours(24);
  *move.mutable_start_time() = Ts(starts[1]);
  auto moved = ehr_.MoveSession(move);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(FromTs(moved->session().start_time()), starts[1]);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_SESSION_MOVED, names[1]), 1);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_SESSION_CANCELLED, names[2]), 1);

  // Nothing is due yet.
  EXPECT_EQ(RunDue(), 0);
  EXPECT_TRUE(Inbox(patient).empty());

  // Up to the first delivery (T-48 h of session 1): exactly one message.
  StepUntil(starts[0] - absl::Hours(48));
  auto inbox = Inbox(patient);
  ASSERT_EQ(inbox.size(), 1u);
  EXPECT_TRUE(absl::StrContains(inbox[0].text(), "Before your ketamine"));
  // The patient (here a clinician on their behalf) acknowledges session 1:
  // no reminders for it.
  ASSERT_TRUE(Acknowledge(names[0], std::nullopt).ok());

  // Halfway through, the server restarts; nothing is lost or repeated.
  StepUntil(starts[1] - absl::Hours(30));
  server_.Restart();
  EXPECT_EQ(RunDue(), 0);  // what was due already ran before the restart
  StepUntil(starts[5] + absl::Hours(1));

  // Session 1: T-48, T-24 (acknowledged: no reminders). Sessions 2 (moved),
  // 4, 5, 6: T-48, reminder +6 h, T-24, reminder +6 h. Session 3: nothing.
  std::map<std::string, std::vector<v1::InstructionDelivery>> delivered;
  for (size_t i = 0; i < names.size(); ++i) {
    for (const auto& d : Deliveries(names[i])) {
      if (d.state() == v1::DELIVERY_STATE_DELIVERED) {
        delivered[names[i]].push_back(d);
      }
    }
  }
  EXPECT_EQ(delivered[names[0]].size(), 2u);
  EXPECT_EQ(delivered[names[2]].size(), 0u);
  for (int i : {1, 3, 4, 5}) {
    const auto& list = delivered[names[i]];
    ASSERT_EQ(list.size(), 4u) << names[i];
    std::map<std::string, absl::Time> at;
    for (const auto& d : list) at[d.name()] = FromTs(d.deliver_time());
    const std::string base = names[i] + "/instructionDeliveries/";
    EXPECT_EQ(at[base + "instructions-48h"], starts[i] - absl::Hours(48));
    EXPECT_EQ(at[base + "reminder-48h-1"], starts[i] - absl::Hours(42));
    EXPECT_EQ(at[base + "instructions-24h"], starts[i] - absl::Hours(24));
    EXPECT_EQ(at[base + "reminder-24h-1"], starts[i] - absl::Hours(18));
  }
  for (const auto& d : delivered[names[0]]) {
    EXPECT_EQ(d.kind(), v1::DELIVERY_KIND_INSTRUCTIONS);
  }
  // The cancelled session's deliveries were cancelled, never sent.
  for (const auto& d : Deliveries(names[2])) {
    EXPECT_EQ(d.state(), v1::DELIVERY_STATE_CANCELLED) << d.name();
  }

  // The inbox holds exactly one message per delivery: no duplicates.
  inbox = Inbox(patient);
  EXPECT_EQ(inbox.size(), 2u + 4u * 4u);
  std::set<std::string> messages;
  for (const auto& [name, list] : delivered) {
    for (const auto& d : list) {
      EXPECT_TRUE(messages.insert(d.message()).second) << d.message();
    }
  }
  for (const auto& m : inbox) EXPECT_EQ(messages.count(m.name()), 1u);
  int reminders = 0;
  for (const auto& m : inbox) {
    if (absl::StartsWith(m.text(), "Reminder:")) ++reminders;
  }
  EXPECT_EQ(reminders, 8);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_INSTRUCTIONS_DELIVERED), 18);
  // Nothing is left to run.
  server_.clock().Advance(absl::Hours(24 * 30));
  EXPECT_EQ(RunDue(), 0);
  EXPECT_EQ(Inbox(patient).size(), 18u);
}

TEST_F(PreSessionTest, SessionBookedAtShortNoticeIsDeliveredAtOnce) {
  PublishInstructions();
  const std::string patient = "tenants/clinic-a/patients/p-101";
  v1::Session s = CreateSession(patient, Now() + absl::Hours(30));
  ASSERT_FALSE(s.name().empty());
  EXPECT_EQ(RunDue(), 1);  // T-48 h already past: delivered now
  EXPECT_EQ(Inbox(patient).size(), 1u);
  // T-24 h comes before the first reminder (12 h after): it restarts them.
  StepUntil(FromTs(s.start_time()) - absl::Hours(24));
  EXPECT_EQ(Inbox(patient).size(), 2u);
  // One reminder 12 h later; the second would fall at the start: none.
  StepUntil(FromTs(s.start_time()) + absl::Hours(1));
  EXPECT_EQ(Inbox(patient).size(), 3u);
}

// The instruction message gives every time in the clinic's time zone (the
// tenant's time_zone in IdentityService), with the zone's abbreviation:
// fasting cut-offs in UTC would be misread by a patient.
TEST_F(PreSessionTest, InstructionMessageGivesTimesInTheClinicsZone) {
  const absl::TimeZone chicago = RegisterChicagoClinic();
  PublishInstructions();
  // 9:00 AM in Chicago three days from now; in winter (CST) or summer (CDT).
  const absl::CivilDay day = absl::ToCivilDay(Now(), chicago) + 3;
  const absl::Time start = absl::FromCivil(
      absl::CivilSecond(day.year(), day.month(), day.day(), 9, 0, 0), chicago);
  const std::string zone = chicago.At(start).is_dst ? "CDT" : "CST";
  const std::string patient = "tenants/clinic-a/patients/p-102";
  ASSERT_FALSE(CreateSession(patient, start).name().empty());
  StepUntil(start - absl::Hours(48));
  auto inbox = Inbox(patient);
  ASSERT_EQ(inbox.size(), 1u);
  const std::string& text = inbox[0].text();
  const std::string weekday = absl::FormatTime("%A, %B ", start, chicago);
  EXPECT_TRUE(absl::StrContains(
      text, absl::StrCat("Your infusion starts ", weekday, day.day(),
                         " at 9:00 AM ", zone, " (Suite 2).")))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "arrive by " + weekday +
                                          std::to_string(day.day()) +
                                          " at 8:30 AM " + zone))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "No solid food after " + weekday +
                                          std::to_string(day.day()) +
                                          " at 3:00 AM " + zone))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "Clear liquids only until " + weekday +
                                          std::to_string(day.day()) +
                                          " at 7:00 AM " + zone))
      << text;
  EXPECT_FALSE(absl::StrContains(text, "UTC")) << text;
}

// A series pattern counts days in the clinic's time zone: across the next
// daylight-saving change every infusion is still at 9:00 AM local time (in
// UTC arithmetic those after the change would move by an hour).
TEST_F(PreSessionTest, SeriesKeepsTheClinicsLocalTimeAcrossDaylightSaving) {
  const absl::TimeZone chicago = RegisterChicagoClinic();
  PublishInstructions();
  absl::TimeZone::CivilTransition change;
  ASSERT_TRUE(chicago.NextTransition(Now() + absl::Hours(24 * 7), &change));
  // Induction 3/2/1 two days apart, starting four days before the change.
  const absl::CivilDay first_day = absl::CivilDay(change.from) - 4;
  const absl::Time first =
      absl::FromCivil(absl::CivilSecond(first_day.year(), first_day.month(),
                                        first_day.day(), 9, 0, 0),
                      chicago);
  v1::CreateSessionSeriesRequest create;
  create.set_parent("tenants/clinic-a/patients/p-103");
  create.mutable_session_series()->set_procedure_code(kProcedure);
  *create.mutable_plan()->mutable_first_start_time() = Ts(first);
  for (int w : {3, 2, 1}) {
    create.mutable_plan()->add_induction_sessions_per_week(w);
  }
  auto series = ehr_.CreateSessionSeries(create);
  ASSERT_TRUE(series.ok()) << series.status();
  ASSERT_EQ(series->sessions_size(), 6);
  const int days[] = {0, 2, 4, 7, 9, 14};
  bool crossed = false;
  for (int i = 0; i < 6; ++i) {
    const absl::Time start = FromTs(series->sessions(i).start_time());
    const absl::CivilSecond local = absl::ToCivilSecond(start, chicago);
    EXPECT_EQ(absl::CivilDay(local), first_day + days[i]) << i;
    EXPECT_EQ(local.hour(), 9) << i;
    EXPECT_EQ(local.minute(), 0) << i;
    crossed |= chicago.At(start).is_dst != chicago.At(first).is_dst;
  }
  EXPECT_TRUE(crossed);
}

// The effect reached the inbox, then the process died before the commit
// recorded it: after a restart the job runs again and the patient still gets
// one message (the request ids derive from the job).
TEST_F(PreSessionTest, CrashBetweenSendAndCommitDeliversOnce) {
  PublishInstructions();
  const std::string patient = "tenants/clinic-a/patients/p-500";
  v1::Session s = CreateSession(patient, Now() + absl::Hours(30));
  ASSERT_FALSE(s.name().empty());
  {
    scheduler::Scheduler crashing(*server_.env().db, server_.clock(),
                                  {.owner = "crashing"});
    scheduler::Handler h;
    h.effect = module().delivery_handler().effect;
    h.commit = [](sql::Txn&, const scheduler::Job&, absl::Time) {
      return absl::AbortedError("the process died before its commit");
    };
    crashing.Register(presession::kDeliverKind, h);
    auto stats = crashing.RunDue(Now());
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->claimed, 1);
    EXPECT_EQ(stats->retried, 1);
  }
  ASSERT_EQ(Inbox(patient).size(), 1u);
  auto pending = Deliveries(s.name());
  ASSERT_FALSE(pending.empty());
  EXPECT_EQ(pending[0].state(), v1::DELIVERY_STATE_SCHEDULED);

  server_.Restart();
  server_.clock().Advance(absl::Minutes(10));  // past the retry backoff
  EXPECT_EQ(RunDue(), 1);
  auto inbox = Inbox(patient);
  ASSERT_EQ(inbox.size(), 1u);
  auto delivered = Deliveries(s.name());
  ASSERT_FALSE(delivered.empty());
  EXPECT_EQ(delivered[0].name(),
            s.name() + "/instructionDeliveries/instructions-48h");
  EXPECT_EQ(delivered[0].state(), v1::DELIVERY_STATE_DELIVERED);
  EXPECT_EQ(delivered[0].message(), inbox[0].name());
  EXPECT_EQ(delivered[0].attempts(), 2);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_INSTRUCTIONS_DELIVERED), 1);
}

TEST_F(PreSessionTest, ReadinessTable) {
  PublishInstructions();
  const std::string ready_patient = "tenants/clinic-a/patients/p-200";
  const std::string no_consent = "tenants/clinic-a/patients/p-201";
  const std::string pending_consent = "tenants/clinic-a/patients/p-202";
  GiveConsent(ready_patient);
  GiveConsent(pending_consent, /*sign=*/false);

  const absl::Time t = Now();
  const absl::Time start = t + absl::Hours(10);
  std::map<std::string, v1::Session> s;
  for (const char* k :
       {"clean", "not_ack", "no_checklist", "not_confirmed", "solids",
        "liquids", "holds_no", "holds_unsure", "chest_pain", "cancelled"}) {
    s[k] = CreateSession(ready_patient, start);
  }
  s["no_consent"] = CreateSession(no_consent, start);
  s["pending"] = CreateSession(pending_consent, start);

  // Answered before start - 6 h: later eating cannot be excluded.
  {
    v1::PreSessionChecklist c = CleanChecklist(start);
    *c.mutable_last_solid_food_time() = Ts(t - absl::Hours(1));
    *c.mutable_last_clear_liquid_time() = Ts(t - absl::Hours(1));
    ASSERT_TRUE(Acknowledge(s["not_confirmed"].name(), c).ok());
  }
  // The day of the infusion, one hour before.
  server_.clock().Set(start - absl::Hours(1));
  ASSERT_TRUE(Acknowledge(s["clean"].name(), CleanChecklist(start)).ok());
  ASSERT_TRUE(Acknowledge(s["no_checklist"].name(), std::nullopt).ok());
  {
    v1::PreSessionChecklist c = CleanChecklist(start);
    *c.mutable_last_solid_food_time() = Ts(start - absl::Hours(4));
    ASSERT_TRUE(Acknowledge(s["solids"].name(), c).ok());
  }
  {
    v1::PreSessionChecklist c = CleanChecklist(start);
    *c.mutable_last_clear_liquid_time() = Ts(start - absl::Hours(1));
    ASSERT_TRUE(Acknowledge(s["liquids"].name(), c).ok());
  }
  {
    v1::PreSessionChecklist c = CleanChecklist(start);
    c.set_medication_holds_followed(v1::MEDICATION_HOLDS_ANSWER_NO);
    ASSERT_TRUE(Acknowledge(s["holds_no"].name(), c).ok());
  }
  {
    v1::PreSessionChecklist c = CleanChecklist(start);
    c.set_medication_holds_followed(v1::MEDICATION_HOLDS_ANSWER_UNSURE);
    ASSERT_TRUE(Acknowledge(s["holds_unsure"].name(), c).ok());
  }
  {
    v1::PreSessionChecklist c = CleanChecklist(start);
    c.add_contraindications(v1::CONTRAINDICATION_CHEST_PAIN);
    ASSERT_TRUE(Acknowledge(s["chest_pain"].name(), c).ok());
  }
  for (const char* k : {"cancelled", "no_consent", "pending"}) {
    ASSERT_TRUE(Acknowledge(s[k].name(), CleanChecklist(start)).ok()) << k;
  }
  v1::CancelSessionRequest cancel;
  cancel.set_name(s["cancelled"].name());
  ASSERT_TRUE(ehr_.CancelSession(cancel).ok());

  // The escort is required by these instructions: refused, nothing stored.
  {
    v1::PreSessionChecklist c = CleanChecklist(start);
    c.clear_escort();
    auto r = Acknowledge(s["not_ack"].name(), c);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorReason(r.status()), "ESCORT_REQUIRED");
    EXPECT_EQ(ErrorField(r.status()), "checklist.escort");
    v1::ListAttestationsRequest list;
    list.set_parent(s["not_ack"].name());
    auto l = clinician_.ListAttestations(list);
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_EQ(l->attestations_size(), 0);
  }

  const std::map<std::string, v1::ReadinessReason> expected = {
      {"not_ack", v1::READINESS_REASON_INSTRUCTIONS_NOT_ACKNOWLEDGED},
      {"no_checklist", v1::READINESS_REASON_CHECKLIST_NOT_COMPLETED},
      {"not_confirmed", v1::READINESS_REASON_FASTING_NOT_CONFIRMED},
      {"solids", v1::READINESS_REASON_FASTING_SOLIDS_NOT_MET},
      {"liquids", v1::READINESS_REASON_FASTING_CLEAR_LIQUIDS_NOT_MET},
      {"holds_no", v1::READINESS_REASON_MEDICATION_HOLDS_NOT_FOLLOWED},
      {"holds_unsure", v1::READINESS_REASON_MEDICATION_HOLDS_UNSURE},
      {"chest_pain", v1::READINESS_REASON_CONTRAINDICATION_FLAGGED},
      {"cancelled", v1::READINESS_REASON_SESSION_NOT_SCHEDULED},
      {"no_consent", v1::READINESS_REASON_CONSENT_MISSING},
      {"pending", v1::READINESS_REASON_CONSENT_PENDING_SIGNATURE},
  };
  for (const auto& [key, reason] : expected) {
    v1::SessionReadiness r = Readiness(s[key].name());
    EXPECT_EQ(r.state(), v1::READINESS_STATE_NOT_READY) << key;
    EXPECT_EQ(Reasons(r), std::vector<v1::ReadinessReason>{reason}) << key;
  }
  v1::SessionReadiness chest = Readiness(s["chest_pain"].name());
  ASSERT_EQ(chest.issues_size(), 1);
  EXPECT_EQ(chest.issues(0).contraindication(),
            v1::CONTRAINDICATION_CHEST_PAIN);

  // All clean: READY, with the signed consent and the attestation named.
  v1::SessionReadiness clean = Readiness(s["clean"].name());
  EXPECT_EQ(clean.state(), v1::READINESS_STATE_READY);
  EXPECT_EQ(clean.issues_size(), 0);
  EXPECT_FALSE(clean.consent().empty());
  EXPECT_FALSE(clean.attestation().empty());
  v1::GetSessionRequest get;
  get.set_name(s["clean"].name());
  auto got = ehr_.GetSession(get);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->session().readiness(), v1::READINESS_STATE_READY);

  // A clinician overrides the unsure holds (confirmed by phone).
  const std::string unsure = s["holds_unsure"].name();
  v1::OverrideReadinessRequest override_req;
  override_req.set_session(unsure);
  override_req.set_reason("Confirmed by phone with the prescriber.");
  override_req.add_reasons(v1::READINESS_REASON_MEDICATION_HOLDS_UNSURE);
  auto overridden = clinician_.OverrideReadiness(override_req);
  ASSERT_TRUE(overridden.ok()) << overridden.status();
  EXPECT_EQ(overridden->readiness().state(), v1::READINESS_STATE_OVERRIDDEN);
  ASSERT_EQ(overridden->readiness().issues_size(), 1);
  EXPECT_TRUE(overridden->readiness().issues(0).overridden());
  EXPECT_EQ(overridden->readiness().readiness_override().reason(),
            "Confirmed by phone with the prescriber.");
  EXPECT_EQ(Readiness(unsure).state(), v1::READINESS_STATE_OVERRIDDEN);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_READINESS_OVERRIDDEN, unsure), 1);
  {
    v1::ListAuditEventsRequest audit;
    audit.set_parent(kTenant);
    audit.set_resource(unsure);
    audit.set_action("/careseal.v1.PreSessionService/OverrideReadiness");
    auto events = auditor_.ListAuditEvents(audit);
    ASSERT_TRUE(events.ok()) << events.status();
    ASSERT_EQ(events->events_size(), 1);
    EXPECT_EQ(events->events(0).outcome_code(), 0);
    EXPECT_EQ(events->events(0).actor().name(),
              "tenants/clinic-a/clinicians/dr-a");
  }
  // Consent can never be overridden; a passing item cannot be "overridden".
  {
    v1::OverrideReadinessRequest bad;
    bad.set_session(s["no_consent"].name());
    bad.set_reason("Verbal consent");
    bad.add_reasons(v1::READINESS_REASON_CONSENT_MISSING);
    auto r = clinician_.OverrideReadiness(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(ErrorReason(r.status()), "NOT_OVERRIDABLE");
    bad.set_session(s["clean"].name());
    bad.clear_reasons();
    bad.add_reasons(v1::READINESS_REASON_ESCORT_MISSING);
    r = clinician_.OverrideReadiness(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(ErrorReason(r.status()), "REASON_NOT_FAILING");
    bad.clear_reason();
    r = clinician_.OverrideReadiness(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(ErrorField(r.status()), "reason");
  }
  // Readiness changes are events.
  EXPECT_GE(CountEvents(v1::EVENT_TYPE_READINESS_CHANGED, s["clean"].name()),
            1);
}

TEST_F(PreSessionTest, InstructionsAndAcknowledgementAreIdempotent) {
  PublishInstructions();
  const std::string patient = "tenants/clinic-a/patients/p-600";
  const absl::Time start = Now() + absl::Hours(72);
  v1::Session s = CreateSession(patient, start);
  v1::GetInstructionsRequest get;
  get.set_session(s.name());
  auto view = clinician_.GetInstructions(get);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->instructions().name(), version_);
  EXPECT_EQ(view->instructions().content_sha256(), digest_);
  EXPECT_EQ(FromTs(view->solids_until_time()), start - absl::Hours(6));
  EXPECT_EQ(FromTs(view->clear_liquids_until_time()), start - absl::Hours(2));
  EXPECT_EQ(FromTs(view->arrival_time()), start - absl::Minutes(30));
  EXPECT_FALSE(view->has_latest_attestation());

  // A wrong digest or a missing required acknowledgement stores nothing.
  v1::AcknowledgeInstructionsRequest ack;
  ack.set_session(s.name());
  ack.set_content_sha256(std::string(32, 'x'));
  ack.add_acknowledged_ids("no-driving");
  auto bad = clinician_.AcknowledgeInstructions(ack);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ErrorReason(bad.status()), "DIGEST_MISMATCH");
  ack.set_content_sha256(digest_);
  ack.clear_acknowledged_ids();
  bad = clinician_.AcknowledgeInstructions(ack);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ErrorReason(bad.status()), "ACKNOWLEDGEMENT_MISSING");
  EXPECT_EQ(ErrorField(bad.status()), "acknowledged_ids");

  // The same request twice: one attestation.
  ack.add_acknowledged_ids("no-driving");
  ack.set_request_id(client::NewRequestId());
  auto first = clinician_.AcknowledgeInstructions(ack);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = clinician_.AcknowledgeInstructions(ack);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->attestation().name(), second->attestation().name());
  v1::ListAttestationsRequest list;
  list.set_parent(s.name());
  auto listed = clinician_.ListAttestations(list);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->attestations_size(), 1);
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_INSTRUCTIONS_ACKNOWLEDGED), 1);
  view = clinician_.GetInstructions(get);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->latest_attestation().name(), first->attestation().name());
}

TEST_F(PreSessionTest, CompleteSessionEmitsEventAndKeepsTimes) {
  PublishInstructions();
  const std::string patient = "tenants/clinic-a/patients/p-300";
  const absl::Time start = Now() + absl::Hours(72);
  v1::Session s = CreateSession(patient, start);
  server_.clock().Set(start + absl::Hours(1));
  v1::CompleteSessionRequest complete;
  complete.set_name(s.name());
  *complete.mutable_end_time() = Ts(start + absl::Minutes(50));
  auto done = clinician_.CompleteSession(complete);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->session().state(), v1::SESSION_STATE_COMPLETED);
  v1::GetSessionRequest get;
  get.set_name(s.name());
  auto got = ehr_.GetSession(get);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(FromTs(got->session().start_time()), start);
  EXPECT_EQ(FromTs(got->session().end_time()), start + absl::Minutes(50));
  EXPECT_EQ(CountEvents(v1::EVENT_TYPE_SESSION_COMPLETED, s.name()), 1);
  // Once completed it cannot be moved or completed again.
  auto again = clinician_.CompleteSession(complete);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(ErrorReason(again.status()), "SESSION_NOT_SCHEDULED");
}

TEST_F(PreSessionTest, BadInputNamesTheFieldAndStoresNothing) {
  const std::string patient = "tenants/clinic-a/patients/p-400";
  // No template yet: FAILED_PRECONDITION, nothing stored.
  {
    v1::CreateSessionRequest req;
    req.set_parent(patient);
    req.mutable_session()->set_procedure_code(kProcedure);
    req.mutable_session()->set_kind(v1::SESSION_KIND_OTHER);
    *req.mutable_session()->mutable_start_time() = Ts(Now() + absl::Hours(5));
    auto r = ehr_.CreateSession(req);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(ErrorReason(r.status()), "NO_INSTRUCTION_TEMPLATE");
  }
  PublishInstructions();
  struct Case {
    std::function<void(v1::CreateSessionRequest&)> mutate;
    std::string field;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.mutable_session()->clear_start_time(); },
       "session.start_time", "FIELD_REQUIRED"},
      {[this](auto& r) {
         *r.mutable_session()->mutable_start_time() =
             Ts(Now() - absl::Hours(1));
       },
       "session.start_time", "START_TIME_IN_PAST"},
      {[](auto& r) { r.mutable_session()->set_procedure_code("ketamine iv!"); },
       "session.procedure_code", "INVALID_PROCEDURE_CODE"},
      {[](auto& r) {
         r.mutable_session()->set_kind(v1::SESSION_KIND_UNSPECIFIED);
       },
       "session.kind", "FIELD_REQUIRED"},
      {[](auto& r) { r.mutable_session()->set_clinician("dr-a"); },
       "session.clinician", "INVALID_NAME"},
      {[](auto& r) {
         r.mutable_session()->set_external_id(std::string(200, 'x'));
       },
       "session.external_id", "FIELD_TOO_LONG"},
  };
  for (const Case& c : cases) {
    v1::CreateSessionRequest req;
    req.set_parent(patient);
    req.mutable_session()->set_procedure_code(kProcedure);
    req.mutable_session()->set_kind(v1::SESSION_KIND_OTHER);
    *req.mutable_session()->mutable_start_time() = Ts(Now() + absl::Hours(5));
    c.mutate(req);
    auto r = ehr_.CreateSession(req);
    ASSERT_FALSE(r.ok()) << c.field;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(ErrorField(r.status()), c.field);
    EXPECT_EQ(ErrorReason(r.status()), c.reason) << c.field;
  }
  {
    v1::CreateSessionSeriesRequest req;
    req.set_parent(patient);
    req.mutable_session_series()->set_procedure_code(kProcedure);
    *req.mutable_plan()->mutable_first_start_time() =
        Ts(Now() + absl::Hours(48));
    req.mutable_plan()->add_induction_sessions_per_week(9);
    auto r = ehr_.CreateSessionSeries(req);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(ErrorField(r.status()), "plan."))
        << ErrorField(r.status());
  }
  {
    v1::PublishInstructionTemplateVersionRequest req;
    req.set_parent("tenants/clinic-a/instructionTemplates/pre-infusion");
    req.mutable_version()->set_title("Too strict");
    *req.mutable_version()->mutable_solids_cutoff() = Dur(absl::Hours(30));
    auto r = ehr_.PublishInstructionTemplateVersion(req);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(ErrorField(r.status()), "version.solids_cutoff");
    EXPECT_EQ(ErrorReason(r.status()), "CUTOFF_OUT_OF_RANGE");
    v1::ListInstructionTemplateVersionsRequest list;
    list.set_parent("tenants/clinic-a/instructionTemplates/pre-infusion");
    auto l = ehr_.ListInstructionTemplateVersions(list);
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->versions_size(), 1);
  }
  {
    v1::UpdatePreSessionSettingsRequest req;
    req.mutable_settings()->set_name("tenants/clinic-a/preSessionSettings");
    *req.mutable_settings()->add_delivery_offsets() = Dur(absl::Minutes(30));
    req.mutable_update_mask()->add_paths("delivery_offsets");
    auto r = admin_.UpdatePreSessionSettings(req);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(ErrorField(r.status()), "settings.delivery_offsets[0]");
    EXPECT_EQ(ErrorReason(r.status()), "OFFSET_OUT_OF_RANGE");
    v1::GetPreSessionSettingsRequest get;
    get.set_name("tenants/clinic-a/preSessionSettings");
    auto s = admin_.GetPreSessionSettings(get);
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(s->settings().delivery_offsets_size(), 2);
    EXPECT_EQ(s->settings().delivery_offsets(0).seconds(), 48 * 3600);
    EXPECT_EQ(s->settings().delivery_offsets(1).seconds(), 24 * 3600);
  }
  // Nothing was stored and nothing was scheduled.
  v1::ListSessionsRequest list;
  list.set_parent(patient);
  auto l = ehr_.ListSessions(list);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->sessions_size(), 0);
  v1::ListSessionSeriesRequest list_series;
  list_series.set_parent(patient);
  auto ls = ehr_.ListSessionSeries(list_series);
  ASSERT_TRUE(ls.ok());
  EXPECT_EQ(ls->session_series_size(), 0);
  EXPECT_EQ(RunDue(), 0);

  // Another tenant's session answers like an absent one.
  v1::Session mine = CreateSession(patient, Now() + absl::Hours(100));
  client::PreSessionClient other(server_.ChannelFor(testing::kEhrB));
  v1::GetSessionRequest get;
  get.set_name(mine.name());
  auto foreign = other.GetSession(get);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kNotFound);
  get.set_name("tenants/clinic-a/patients/p-400/sessions/nope");
  auto absent = ehr_.GetSession(get);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.status().message(), foreign.status().message());
}

// Without a consent service to ask, readiness is refused, never READY.
TEST(PreSessionFailClosedTest, NoConsentServiceMeansUnavailable) {
  TestServer server({"messaging", "presession"});
  client::PreSessionClient ehr(server.ChannelFor(kEhrA));
  v1::CreateInstructionTemplateRequest create;
  create.set_parent(kTenant);
  create.set_instruction_template_id("pre-infusion");
  ASSERT_TRUE(ehr.CreateInstructionTemplate(create).ok());
  v1::PublishInstructionTemplateVersionRequest publish;
  publish.set_parent("tenants/clinic-a/instructionTemplates/pre-infusion");
  publish.mutable_version()->set_title("Before your infusion");
  ASSERT_TRUE(ehr.PublishInstructionTemplateVersion(publish).ok());
  v1::CreateSessionRequest req;
  req.set_parent("tenants/clinic-a/patients/p-700");
  req.mutable_session()->set_procedure_code(kProcedure);
  req.mutable_session()->set_kind(v1::SESSION_KIND_OTHER);
  req.mutable_session()->set_instruction_template_version(
      "tenants/clinic-a/instructionTemplates/pre-infusion");
  *req.mutable_session()->mutable_start_time() =
      Ts(server.clock().Now() + absl::Hours(5));
  auto created = ehr.CreateSession(req);
  ASSERT_TRUE(created.ok()) << created.status();
  v1::CheckSessionReadinessRequest check;
  check.set_session(created->session().name());
  auto r = ehr.CheckSessionReadiness(check);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(r.status()), "CONSENT_SERVICE_UNAVAILABLE");
  v1::GetSessionRequest get;
  get.set_name(created->session().name());
  auto s = ehr.GetSession(get);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->session().readiness(), v1::READINESS_STATE_UNSPECIFIED);
}

}  // namespace
}  // namespace careseal
