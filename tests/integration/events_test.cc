// Events for the EHR end to end, through the public C++ client over mutual
// TLS: consent and messaging changes appear as events written with the
// change; WatchEvents pushes them live, and after a server restart resumes
// from the last cursor with no gap and no duplicate (also through the
// client's resuming helper); bad cursors and roles are refused; webhook
// subscriptions are refused honestly while delivery does not exist.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/events_client.h"
#include "clients/cpp/messaging_client.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kAdmin;
using ::careseal::testing::kClinicianA;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kEhrB;
using ::careseal::testing::TestServer;
using client::ErrorField;
using client::ErrorReason;
using client::EventsClient;
namespace v1 = ::careseal::v1;

constexpr char kPatient[] = "tenants/clinic-a/patients/p-100";

class EventsTest : public ::testing::Test {
 protected:
  EventsTest()
      : server_({"consent", "messaging"}),
        ehr_(server_.ChannelFor(kEhrA)),
        clinician_(server_.ChannelFor(kClinicianA)) {}

  client::WatchOptions Watch() {
    client::WatchOptions options;
    options.max_duration = absl::Seconds(60);
    return options;
  }

  // Makes one message event (EVENT_TYPE_MESSAGE_RECEIVED); returns its name.
  std::string MakeEvent() {
    if (thread_.empty()) {
      v1::CreateThreadRequest create;
      create.set_parent(kPatient);
      create.mutable_thread()->set_subject("Check-in");
      create.mutable_thread()->set_category(v1::THREAD_CATEGORY_GENERAL);
      auto t = clinician_.CreateThread(create);
      EXPECT_TRUE(t.ok()) << t.status();
      thread_ = t->thread().name();
    }
    v1::SendMessageRequest send;
    send.set_parent(thread_);
    send.set_text("How did you sleep?");
    send.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
    auto m = clinician_.SendMessage(send);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? m->message().name() : "";
  }

  static v1::Event Next(EventsClient::EventStream& stream) {
    v1::WatchEventsResponse item;
    EXPECT_TRUE(stream.Next(&item)) << "the stream ended";
    return item.event();
  }

  TestServer server_;
  EventsClient ehr_;
  client::MessagingClient clinician_;
  std::string thread_;
};

TEST_F(EventsTest, WatchResumesAfterRestartWithNoGapAndNoDuplicate) {
  const std::string first = MakeEvent();
  v1::WatchEventsRequest watch;
  watch.set_parent("tenants/clinic-a");
  watch.set_after_cursor(0);
  auto stream = ehr_.WatchEvents(watch, Watch());
  v1::Event e1 = Next(*stream);
  EXPECT_EQ(e1.type(), v1::EVENT_TYPE_MESSAGE_RECEIVED);
  EXPECT_EQ(e1.resource(), first);
  EXPECT_EQ(e1.patient(), kPatient);
  EXPECT_EQ(e1.name(),
            "tenants/clinic-a/events/" + std::to_string(e1.cursor()));
  EXPECT_EQ(e1.actor().name(), "tenants/clinic-a/clinicians/dr-a");
  const std::string second = MakeEvent();  // live
  v1::Event e2 = Next(*stream);
  EXPECT_EQ(e2.resource(), second);
  EXPECT_EQ(e2.cursor(), e1.cursor() + 1);

  // The server restarts while the EHR is watching: the stream ends.
  server_.Restart();
  v1::WatchEventsResponse item;
  EXPECT_FALSE(stream->Next(&item));
  EXPECT_FALSE(stream->Finish().ok());

  const std::string third = MakeEvent();
  const std::string fourth = MakeEvent();
  watch.set_after_cursor(e2.cursor());
  auto resumed = ehr_.WatchEvents(watch, Watch());
  v1::Event e3 = Next(*resumed);
  v1::Event e4 = Next(*resumed);
  EXPECT_EQ(e3.resource(), third);
  EXPECT_EQ(e3.cursor(), e2.cursor() + 1);  // no gap
  EXPECT_EQ(e4.resource(), fourth);
  EXPECT_EQ(e4.cursor(), e3.cursor() + 1);
  const std::string fifth = MakeEvent();
  v1::Event e5 = Next(*resumed);  // nothing repeated before it
  EXPECT_EQ(e5.resource(), fifth);
  resumed->Cancel();
}

TEST_F(EventsTest, ResumingHelperCarriesOnAcrossARestart) {
  v1::WatchEventsRequest watch;
  watch.set_parent("tenants/clinic-a");
  watch.set_after_cursor(0);
  absl::Mutex mu;
  std::vector<int64_t> cursors;
  std::vector<std::string> resources;
  absl::Status end;
  std::thread watcher([&] {
    client::WatchOptions options = Watch();
    options.reconnect_backoff = absl::Milliseconds(50);
    end = ehr_.ResumeEvents(watch, options, [&](const v1::Event& e) {
      absl::MutexLock lock(&mu);
      cursors.push_back(e.cursor());
      resources.push_back(e.resource());
      return cursors.size() < 4;
    });
  });
  struct Seen {
    const std::vector<int64_t>* cursors;
    size_t n;
    bool Done() const { return cursors->size() >= n; }
  };
  auto seen = [&](size_t n) {
    Seen s{&cursors, n};
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&s, &Seen::Done));
  };
  std::vector<std::string> made = {MakeEvent(), MakeEvent()};
  seen(2);
  server_.Restart();
  made.push_back(MakeEvent());
  made.push_back(MakeEvent());
  watcher.join();
  EXPECT_TRUE(end.ok()) << end;
  ASSERT_EQ(cursors.size(), 4u);
  EXPECT_EQ(resources, made);
  for (size_t i = 1; i < cursors.size(); ++i) {
    EXPECT_EQ(cursors[i], cursors[i - 1] + 1);
  }
}

TEST_F(EventsTest, ConsentChangesAreEvents) {
  client::ConsentClient consent(server_.ChannelFor(kEhrA));
  v1::CreateConsentTemplateRequest create;
  create.set_parent("tenants/clinic-a");
  create.set_consent_template_id("ketamine");
  create.mutable_consent_template()->set_display_name("IV ketamine");
  ASSERT_TRUE(consent.CreateConsentTemplate(create).ok());
  v1::PublishConsentTemplateVersionRequest publish;
  publish.set_parent("tenants/clinic-a/consentTemplates/ketamine");
  v1::ConsentTemplateVersion* v = publish.mutable_version();
  v->set_title("Consent to IV ketamine");
  v->set_body_markdown("# Infusions\nRisks: dissociation, nausea.\n");
  auto* ack = v->add_acknowledgements();
  ack->set_id("risks");
  ack->set_text("I understand the risks.");
  ack->set_required(true);
  v->add_procedure_codes("ketamine-iv");
  v->set_esign_disclosure("You may ask for a paper copy.");
  v->set_signature_meaning("Consent to treatment");
  auto published = consent.PublishConsentTemplateVersion(publish);
  ASSERT_TRUE(published.ok()) << published.status();
  v1::RequestConsentRequest request;
  request.set_parent(kPatient);
  request.set_procedure_code("ketamine-iv");
  auto requested = consent.RequestConsent(request);
  ASSERT_TRUE(requested.ok()) << requested.status();
  v1::WithdrawConsentRequest withdraw;
  withdraw.set_name(requested->consent().name());
  withdraw.set_reason("Patient changed their mind");
  client::ConsentClient clinician(server_.ChannelFor(kClinicianA));
  ASSERT_TRUE(clinician.WithdrawConsent(withdraw).ok());

  v1::ListEventsRequest list;
  list.set_parent("tenants/clinic-a");
  list.set_patient(kPatient);
  auto events = ehr_.ListEvents(list);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->events_size(), 2);
  EXPECT_EQ(events->events(0).type(), v1::EVENT_TYPE_CONSENT_REQUESTED);
  EXPECT_EQ(events->events(0).resource(), requested->consent().name());
  EXPECT_EQ(events->events(1).type(), v1::EVENT_TYPE_CONSENT_WITHDRAWN);
  EXPECT_EQ(events->events(1).actor().role(), v1::ROLE_CLINICIAN);
  EXPECT_FALSE(events->events(1).request_id().empty());

  // Another tenant's EHR sees none of it.
  EventsClient other(server_.ChannelFor(kEhrB));
  list.set_parent("tenants/clinic-b");
  list.clear_patient();
  auto none = other.ListEvents(list);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->events_size(), 0);
  list.set_parent("tenants/clinic-a");
  EXPECT_EQ(other.ListEvents(list).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EventsTest, ListPagesInCursorOrderAndFiltersByType) {
  for (int i = 0; i < 5; ++i) MakeEvent();
  v1::ListEventsRequest list;
  list.set_parent("tenants/clinic-a");
  list.set_page_size(2);
  std::vector<int64_t> cursors;
  while (true) {
    auto page = ehr_.ListEvents(list);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& e : page->events()) cursors.push_back(e.cursor());
    if (page->next_page_token().empty()) break;
    list.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(cursors, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  v1::ListEventsRequest filtered;
  filtered.set_parent("tenants/clinic-a");
  filtered.add_types(v1::EVENT_TYPE_CONSENT_SIGNED);
  EXPECT_EQ(ehr_.ListEvents(filtered)->events_size(), 0);
}

TEST_F(EventsTest, BadCursorsAndRolesAreRefused) {
  MakeEvent();
  v1::WatchEventsRequest watch;
  watch.set_parent("tenants/clinic-a");
  watch.set_after_cursor(99);
  auto future = ehr_.WatchEvents(watch, Watch());
  v1::WatchEventsResponse item;
  EXPECT_FALSE(future->Next(&item));
  absl::Status status = future->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), "CURSOR_IN_FUTURE");
  EXPECT_EQ(ErrorField(status), "after_cursor");

  EventsClient as_clinician(server_.ChannelFor(kClinicianA));
  watch.set_after_cursor(0);
  auto denied = as_clinician.WatchEvents(watch, Watch());
  EXPECT_FALSE(denied->Next(&item));
  EXPECT_EQ(denied->Finish().code(), absl::StatusCode::kPermissionDenied);

  EventsClient other(server_.ChannelFor(kEhrB));
  auto foreign = other.WatchEvents(watch, Watch());
  EXPECT_FALSE(foreign->Next(&item));
  EXPECT_EQ(foreign->Finish().code(), absl::StatusCode::kNotFound);
}

TEST_F(EventsTest, WebhooksAreRefusedHonestlyUntilDeliveryExists) {
  v1::CreateWebhookRequest create;
  create.set_parent("tenants/clinic-a");
  create.mutable_webhook()->set_url("https://ehr.example.com/careseal");
  create.mutable_webhook()->set_secret(std::string(32, 's'));
  auto refused = ehr_.CreateWebhook(create);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ErrorReason(refused.status()), "WEBHOOK_DELIVERY_UNAVAILABLE");

  create.mutable_webhook()->set_url("http://ehr.example.com/careseal");
  auto insecure = ehr_.CreateWebhook(create);
  EXPECT_EQ(ErrorReason(insecure.status()), "URL_NOT_ALLOWED");
  EXPECT_EQ(ErrorField(insecure.status()), "webhook.url");
  create.mutable_webhook()->set_url("https://10.0.0.7/hook");
  EXPECT_EQ(ErrorReason(ehr_.CreateWebhook(create).status()),
            "URL_NOT_ALLOWED");
  create.mutable_webhook()->set_url("https://ehr.example.com/careseal");
  create.mutable_webhook()->set_secret("short");
  EXPECT_EQ(ErrorReason(ehr_.CreateWebhook(create).status()),
            "SECRET_TOO_SHORT");

  EventsClient admin(server_.ChannelFor(kAdmin));
  v1::ListWebhooksRequest list;
  list.set_parent("tenants/clinic-a");
  auto none = admin.ListWebhooks(list);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->webhooks_size(), 0);
}

}  // namespace
}  // namespace careseal
