// Secure messaging end to end, through the public C++ client over mutual
// TLS: a live inbox that receives what a clinician sends at once (no
// polling), replies and read receipts, resume after a reconnect with nothing
// missed and nothing repeated, limits with nothing stored, retract-and-
// correct, patient isolation, and the urgent-unread escalation on the
// FakeClock.
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "clients/cpp/events_client.h"
#include "clients/cpp/messaging_client.h"
#include "gtest/gtest.h"
#include "services/common/sql/database.h"
#include "services/followup/messaging/messaging_module.h"
#include "tests/testing/test_server.h"

namespace careseal {
namespace {

using ::careseal::testing::kClinicianA;
using ::careseal::testing::kEhrA;
using ::careseal::testing::kPortal;
using ::careseal::testing::TestServer;
using client::CallOptions;
using client::ErrorField;
using client::ErrorReason;
using client::MessagingClient;
namespace v1 = ::careseal::v1;

constexpr char kPatient[] = "tenants/clinic-a/patients/p-100";
constexpr char kOtherPatient[] = "tenants/clinic-a/patients/p-200";
constexpr char kClinicianB[] =
    "spiffe://careseal.local/tenant/clinic-a/clinician/dr-b";

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

std::string PatientToken(absl::string_view patient_name) {
  std::vector<std::string> parts = absl::StrSplit(patient_name, '/');
  return absl::StrCat("test-patient:", parts[1], ":", parts[3]);
}

std::string Png(size_t size) {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  png.resize(size, 'x');
  return png;
}

class MessagingTest : public ::testing::Test {
 protected:
  MessagingTest()
      : server_({"messaging"}),
        clinician_(server_.ChannelFor(kClinicianA)),
        clinician_b_(server_.ChannelFor(kClinicianB)),
        portal_(server_.ChannelFor(kPortal)),
        ehr_(server_.ChannelFor(kEhrA)) {
    server_.env().authenticator->Set(&authenticator_);
  }
  ~MessagingTest() override { server_.env().authenticator->Set(nullptr); }

  messaging::MessagingModule& module() {
    return *static_cast<messaging::MessagingModule*>(server_.module(0));
  }

  CallOptions AsPatient(const std::string& patient = kPatient) {
    CallOptions options;
    options.bearer_token = PatientToken(patient);
    return options;
  }
  client::WatchOptions WatchAsPatient(const std::string& patient = kPatient) {
    client::WatchOptions options;
    options.bearer_token = PatientToken(patient);
    options.max_duration = absl::Seconds(60);
    return options;
  }

  std::string NewThread(const std::string& patient = kPatient) {
    v1::CreateThreadRequest create;
    create.set_parent(patient);
    create.mutable_thread()->set_subject("After your infusion");
    create.mutable_thread()->set_category(v1::THREAD_CATEGORY_FOLLOW_UP);
    auto t = clinician_.CreateThread(create);
    EXPECT_TRUE(t.ok()) << t.status();
    return t->thread().name();
  }

  v1::Message Send(
      MessagingClient& as, const std::string& thread, const std::string& text,
      const CallOptions& options = {},
      v1::MessagePriority priority = v1::MESSAGE_PRIORITY_ROUTINE) {
    v1::SendMessageRequest send;
    send.set_parent(thread);
    send.set_text(text);
    send.set_priority(priority);
    auto m = as.SendMessage(send, options);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? m->message() : v1::Message();
  }

  static v1::WatchInboxResponse Next(MessagingClient::InboxStream& stream) {
    v1::WatchInboxResponse item;
    EXPECT_TRUE(stream.Next(&item)) << "the stream ended";
    return item;
  }

  int CountMessages(const std::string& thread) {
    v1::ListMessagesRequest list;
    list.set_parent(thread);
    auto r = clinician_.ListMessages(list);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->messages_size() : -1;
  }

  TestPatientAuthenticator authenticator_;
  TestServer server_;
  MessagingClient clinician_;
  MessagingClient clinician_b_;
  MessagingClient portal_;
  client::EventsClient ehr_;
};

TEST_F(MessagingTest, LiveInboxRepliesReceiptsAndResumeWithoutGapsOrRepeats) {
  const std::string thread = NewThread();
  const v1::Message a = Send(clinician_, thread, "How are you feeling today?");

  // The patient's portal session opens its inbox from the beginning.
  v1::WatchInboxRequest watch;
  watch.set_parent(kPatient);
  watch.set_after_cursor(0);
  auto patient_inbox = portal_.WatchInbox(watch, WatchAsPatient());
  v1::WatchInboxResponse got_a = Next(*patient_inbox);
  ASSERT_TRUE(got_a.has_message());
  EXPECT_EQ(got_a.message().name(), a.name());
  EXPECT_EQ(got_a.message().text(), "How are you feeling today?");
  EXPECT_GT(got_a.cursor(), 0);

  // Live: the next message arrives on the open stream, no polling.
  const v1::Message b =
      Send(clinician_, thread, "Remember: no driving for 24 hours.");
  v1::WatchInboxResponse got_b = Next(*patient_inbox);
  ASSERT_TRUE(got_b.has_message());
  EXPECT_EQ(got_b.message().name(), b.name());
  EXPECT_GT(got_b.cursor(), got_a.cursor());
  EXPECT_EQ(got_b.message().sender().role(), v1::ROLE_CLINICIAN);

  // The care team watches its pool from here on.
  v1::WatchInboxRequest team_watch;
  team_watch.set_parent("tenants/clinic-a/patients/-");
  team_watch.set_after_cursor(got_b.cursor());
  client::WatchOptions team_options;
  team_options.max_duration = absl::Seconds(60);
  auto team_inbox = clinician_.WatchInbox(team_watch, team_options);

  // The patient reads both and replies.
  v1::MarkReadRequest read;
  read.set_thread(thread);
  read.set_up_to_message(b.name());
  auto marked = portal_.MarkRead(read, AsPatient());
  ASSERT_TRUE(marked.ok()) << marked.status();
  EXPECT_EQ(marked->read_receipts_size(), 2);
  EXPECT_EQ(marked->thread().unread_count(), 0);
  const v1::Message c =
      Send(portal_, thread, "Feeling fine, a bit tired.", AsPatient());
  EXPECT_EQ(c.sender().role(), v1::ROLE_PATIENT);
  EXPECT_EQ(c.sender().name(), kPatient);

  // The clinician sees the read receipts, then the reply, in cursor order.
  v1::WatchInboxResponse r1 = Next(*team_inbox);
  v1::WatchInboxResponse r2 = Next(*team_inbox);
  v1::WatchInboxResponse reply = Next(*team_inbox);
  ASSERT_TRUE(r1.has_read_receipt() && r2.has_read_receipt());
  EXPECT_EQ(r1.read_receipt().message(), a.name());
  EXPECT_EQ(r2.read_receipt().message(), b.name());
  EXPECT_EQ(r1.read_receipt().reader().name(), kPatient);
  ASSERT_TRUE(reply.has_message());
  EXPECT_EQ(reply.message().name(), c.name());
  EXPECT_LT(r1.cursor(), r2.cursor());
  EXPECT_LT(r2.cursor(), reply.cursor());
  v1::GetMessageRequest get;
  get.set_name(b.name());
  auto b_now = clinician_.GetMessage(get);
  ASSERT_TRUE(b_now.ok()) << b_now.status();
  EXPECT_EQ(b_now->message().delivery_status(), v1::DELIVERY_STATUS_READ);
  ASSERT_EQ(b_now->message().read_receipts_size(), 1);
  EXPECT_EQ(b_now->message().read_receipts(0).reader().role(),
            v1::ROLE_PATIENT);

  // The patient's stream carried the same receipts and the reply; the
  // session then drops (the phone goes to sleep).
  v1::WatchInboxResponse last;
  for (int i = 0; i < 3; ++i) last = Next(*patient_inbox);
  ASSERT_TRUE(last.has_message());
  EXPECT_EQ(last.message().name(), c.name());
  patient_inbox->Cancel();
  v1::WatchInboxResponse drain;
  while (patient_inbox->Next(&drain)) {
  }
  (void)patient_inbox->Finish();

  // Missed while away.
  const v1::Message d =
      Send(clinician_, thread, "Your next infusion is Friday.");
  const v1::Message e = Send(clinician_, thread, "Reply if you need a ride.");

  // Reconnect with the last cursor: exactly the missed items, then live.
  watch.set_after_cursor(last.cursor());
  auto again = portal_.WatchInbox(watch, WatchAsPatient());
  v1::WatchInboxResponse got_d = Next(*again);
  v1::WatchInboxResponse got_e = Next(*again);
  EXPECT_EQ(got_d.message().name(), d.name());
  EXPECT_EQ(got_e.message().name(), e.name());
  const v1::Message f = Send(clinician_, thread, "See you Friday.");
  v1::WatchInboxResponse got_f = Next(*again);
  EXPECT_EQ(got_f.message().name(), f.name());  // nothing repeated before it
  again->Cancel();
  team_inbox->Cancel();

  v1::GetUnreadCountsRequest counts;
  counts.set_parent(kPatient);
  auto unread = portal_.GetUnreadCounts(counts, AsPatient());
  ASSERT_TRUE(unread.ok()) << unread.status();
  EXPECT_EQ(unread->total_unread(), 3);
  counts.set_parent("tenants/clinic-a/patients/-");
  auto team_unread = clinician_.GetUnreadCounts(counts);
  ASSERT_TRUE(team_unread.ok()) << team_unread.status();
  EXPECT_EQ(team_unread->total_unread(), 1);  // the patient's reply
}

TEST_F(MessagingTest, ConcurrentSendersReachAWatcherOnceEachInCursorOrder) {
  const std::string thread = NewThread();
  v1::WatchInboxRequest watch;
  watch.set_parent("tenants/clinic-a/patients/-");
  watch.set_after_cursor(0);
  client::WatchOptions options;
  options.max_duration = absl::Seconds(60);
  auto inbox = clinician_.WatchInbox(watch, options);
  constexpr int kSenders = 4;
  constexpr int kEach = 25;
  absl::Mutex mu;
  std::set<std::string> sent;
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kEach; ++i) {
        v1::Message m = Send(s % 2 == 0 ? clinician_ : clinician_b_, thread,
                             absl::StrCat("sender ", s, " message ", i));
        absl::MutexLock lock(&mu);
        sent.insert(m.name());
      }
    });
  }
  std::set<std::string> received;
  int64_t last = 0;
  for (int i = 0; i < kSenders * kEach; ++i) {
    v1::WatchInboxResponse u = Next(*inbox);
    ASSERT_TRUE(u.has_message());
    EXPECT_GT(u.cursor(), last);
    last = u.cursor();
    EXPECT_TRUE(received.insert(u.message().name()).second)
        << "duplicate " << u.message().name();
  }
  for (std::thread& t : senders) t.join();
  EXPECT_EQ(received, sent);
  inbox->Cancel();
}

TEST_F(MessagingTest, ListsAreNewestFirstAndPaginated) {
  const std::string thread = NewThread();
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    names.push_back(Send(clinician_, thread, absl::StrCat("note ", i)).name());
  }
  v1::ListMessagesRequest list;
  list.set_parent(thread);
  list.set_page_size(3);
  auto first = portal_.ListMessages(list, AsPatient());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->messages_size(), 3);
  EXPECT_EQ(first->messages(0).name(), names[4]);
  EXPECT_EQ(first->messages(0).delivery_status(),
            v1::DELIVERY_STATUS_DELIVERED);  // listed by its recipient
  list.set_page_token(first->next_page_token());
  auto second = portal_.ListMessages(list, AsPatient());
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->messages_size(), 2);
  EXPECT_EQ(second->messages(1).name(), names[0]);
  EXPECT_TRUE(second->next_page_token().empty());

  const std::string older = NewThread();
  const std::string other = NewThread(kOtherPatient);
  Send(clinician_, thread, "latest activity");
  v1::ListThreadsRequest threads;
  threads.set_parent("tenants/clinic-a/patients/-");
  auto all = clinician_.ListThreads(threads);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->threads_size(), 3);
  EXPECT_EQ(all->threads(0).name(), thread);
  EXPECT_EQ(all->threads(0).subject(), "After your infusion");
  EXPECT_EQ(all->threads(1).name(), other);
  EXPECT_EQ(all->threads(2).name(), older);
  threads.set_parent(kPatient);
  auto mine = portal_.ListThreads(threads, AsPatient());
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_EQ(mine->threads_size(), 2);
  EXPECT_EQ(mine->threads(0).unread_count(), 6);
}

TEST_F(MessagingTest, LimitsAreInvalidArgumentNamingTheFieldWithNothingStored) {
  const std::string thread = NewThread();
  struct Case {
    const char* what;
    std::function<void(v1::SendMessageRequest&)> change;
    const char* reason;
    const char* field;
  };
  const Case cases[] = {
      {"empty", [](auto& r) { r.set_text(" \n "); }, "EMPTY_MESSAGE", "text"},
      {"text too long", [](auto& r) { r.set_text(std::string(8001, 'a')); },
       "FIELD_TOO_LONG", "text"},
      {"attachment too large",
       [](auto& r) {
         auto* a = r.mutable_attachment();
         a->set_filename("scan.png");
         a->set_content_type("image/png");
         a->set_content(Png((1 << 20) + 1));
       },
       "ATTACHMENT_TOO_LARGE", "attachment.content"},
      {"type not allowed",
       [](auto& r) {
         auto* a = r.mutable_attachment();
         a->set_filename("anim.gif");
         a->set_content_type("image/gif");
         a->set_content("GIF89a....");
       },
       "ATTACHMENT_TYPE_NOT_ALLOWED", "attachment.content_type"},
      {"type mismatch",
       [](auto& r) {
         auto* a = r.mutable_attachment();
         a->set_filename("report.pdf");
         a->set_content_type("application/pdf");
         a->set_content(Png(100));
       },
       "ATTACHMENT_TYPE_MISMATCH", "attachment.content"},
      {"path in filename",
       [](auto& r) {
         auto* a = r.mutable_attachment();
         a->set_filename("../etc/passwd.png");
         a->set_content_type("image/png");
         a->set_content(Png(100));
       },
       "INVALID_FILENAME", "attachment.filename"},
      {"no priority",
       [](auto& r) { r.set_priority(v1::MESSAGE_PRIORITY_UNSPECIFIED); },
       "INVALID_ENUM_VALUE", "priority"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    v1::SendMessageRequest send;
    send.set_parent(thread);
    send.set_text("hello");
    send.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
    c.change(send);
    auto r = clinician_.SendMessage(send);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorReason(r.status()), c.reason);
    EXPECT_EQ(ErrorField(r.status()), c.field);
  }
  EXPECT_EQ(CountMessages(thread), 0);
  v1::ListEventsRequest events;
  events.set_parent("tenants/clinic-a");
  events.set_after_cursor(0);
  auto listed = ehr_.ListEvents(events);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->events_size(), 0);

  // A small PDF is accepted, sealed, and returned whole by GetMessage only.
  v1::SendMessageRequest ok;
  ok.set_parent(thread);
  ok.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
  auto* att = ok.mutable_attachment();
  att->set_filename("discharge-instructions.pdf");
  att->set_content_type("application/pdf");
  att->set_content("%PDF-1.7\n% instructions\n%%EOF\n");
  auto sent = clinician_.SendMessage(ok);
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_TRUE(sent->message().attachment().content().empty());
  EXPECT_EQ(sent->message().attachment().size_bytes(),
            static_cast<int64_t>(att->content().size()));
  v1::GetMessageRequest get;
  get.set_name(sent->message().name());
  auto full = portal_.GetMessage(get, AsPatient());
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->message().attachment().content(), att->content());
  EXPECT_EQ(full->message().attachment().filename(),
            "discharge-instructions.pdf");
  EXPECT_EQ(full->message().attachment().sha256().size(), 32u);
}

TEST_F(MessagingTest, SendIsIdempotentByRequestId) {
  const std::string thread = NewThread();
  v1::SendMessageRequest send;
  send.set_parent(thread);
  send.set_text("Please confirm your escort.");
  send.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
  send.set_request_id(client::NewRequestId());
  auto first = clinician_.SendMessage(send);
  auto second = clinician_.SendMessage(send);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->message().name(), second->message().name());
  EXPECT_EQ(second->message().text(), "Please confirm your escort.");
  EXPECT_EQ(CountMessages(thread), 1);
  send.set_text("something else");
  auto reused = clinician_.SendMessage(send);
  EXPECT_EQ(ErrorReason(reused.status()), "REQUEST_ID_REUSED");
}

TEST_F(MessagingTest, RetractAndCorrectKeepsTheSealedOriginal) {
  const std::string thread = NewThread();
  const v1::Message wrong =
      Send(clinician_, thread, "Take 20 mg the evening before.");

  v1::RetractMessageRequest retract;
  retract.set_name(wrong.name());
  retract.set_reason("Wrong dose");
  retract.set_corrected_text("Take 10 mg the evening before.");
  auto by_other = clinician_b_.RetractMessage(retract);
  EXPECT_EQ(by_other.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorReason(by_other.status()), "NOT_SENDER");

  auto done = clinician_.RetractMessage(retract);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->message().retracted());
  EXPECT_TRUE(done->message().text().empty());
  EXPECT_EQ(done->message().retract_reason(), "Wrong dose");
  EXPECT_EQ(done->message().correction(), done->correction().name());
  EXPECT_EQ(done->correction().corrects(), wrong.name());
  EXPECT_EQ(done->correction().text(), "Take 10 mg the evening before.");

  retract.set_request_id("");
  auto twice = clinician_.RetractMessage(retract);
  EXPECT_EQ(ErrorReason(twice.status()), "ALREADY_RETRACTED");

  v1::ListMessagesRequest list;
  list.set_parent(thread);
  auto seen = portal_.ListMessages(list, AsPatient());
  ASSERT_TRUE(seen.ok()) << seen.status();
  ASSERT_EQ(seen->messages_size(), 2);
  EXPECT_EQ(seen->messages(0).text(), "Take 10 mg the evening before.");
  EXPECT_TRUE(seen->messages(1).retracted());
  EXPECT_TRUE(seen->messages(1).text().empty());

  // The original stays sealed in the store (not readable in the clear) and
  // the retraction is in the audit trail.
  bool sealed_kept = false;
  int audited = 0;
  ASSERT_TRUE(server_.env()
                  .db
                  ->Read([&](sql::Txn& txn) -> absl::Status {
                    auto rows = txn.Query(
                        "SELECT body_sealed FROM msg_messages WHERE "
                        "retracted = 1");
                    if (!rows.ok()) return rows.status();
                    sealed_kept =
                        rows->size() == 1 && !(*rows)[0].Str(0).empty() &&
                        !absl::StrContains((*rows)[0].Str(0), "20 mg");
                    auto audit = txn.Query(
                        "SELECT COUNT(*) FROM audit_events WHERE action = ? "
                        "AND resource = ? AND outcome = 'OK'",
                        {sql::Text("careseal.v1.MessagingService/"
                                   "RetractMessage"),
                         sql::Text(wrong.name())});
                    if (!audit.ok()) return audit.status();
                    audited = static_cast<int>((*audit)[0].Int(0));
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_TRUE(sealed_kept);
  EXPECT_EQ(audited, 1);
}

TEST_F(MessagingTest, PatientsReachOnlyTheirOwnThreads) {
  const std::string mine = NewThread();
  const std::string theirs = NewThread(kOtherPatient);
  v1::GetThreadRequest get;
  get.set_name(theirs);
  auto denied = portal_.GetThread(get, AsPatient());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kNotFound);
  get.set_name(mine);
  EXPECT_TRUE(portal_.GetThread(get, AsPatient()).ok());

  v1::WatchInboxRequest team;
  team.set_parent("tenants/clinic-a/patients/-");
  auto stream = portal_.WatchInbox(team, WatchAsPatient());
  v1::WatchInboxResponse item;
  EXPECT_FALSE(stream->Next(&item));
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kNotFound);

  // The EHR reads threads but holds no inbox.
  client::MessagingClient ehr(server_.ChannelFor(kEhrA));
  auto ehr_stream = ehr.WatchInbox(team, {});
  EXPECT_FALSE(ehr_stream->Next(&item));
  EXPECT_EQ(ehr_stream->Finish().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(MessagingTest, UrgentPatientMessageUnreadByCliniciansEscalatesOnce) {
  const std::string thread = NewThread();
  const v1::Message urgent = Send(portal_, thread, "My chest feels tight.",
                                  AsPatient(), v1::MESSAGE_PRIORITY_URGENT);
  const v1::Message read_in_time =
      Send(portal_, NewThread(), "Urgent: can I take ibuprofen?", AsPatient(),
           v1::MESSAGE_PRIORITY_URGENT);
  v1::MarkReadRequest read;
  read.set_thread(
      read_in_time.name().substr(0, read_in_time.name().find("/messages/")));
  read.set_up_to_message(read_in_time.name());
  ASSERT_TRUE(clinician_.MarkRead(read).ok());

  messaging::MessagingManager& manager = module().manager();
  server_.clock().Advance(absl::Minutes(29));
  auto early = manager.CheckUnreadUrgent(server_.clock().Now());
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_TRUE(early->empty());

  server_.clock().Advance(absl::Minutes(2));
  auto raised = manager.CheckUnreadUrgent(server_.clock().Now());
  ASSERT_TRUE(raised.ok()) << raised.status();
  ASSERT_EQ(raised->size(), 1u);
  EXPECT_EQ((*raised)[0].message, urgent.name());
  EXPECT_TRUE(absl::StartsWith((*raised)[0].name,
                               "tenants/clinic-a/patients/p-100/escalations/"));
  auto again = manager.CheckUnreadUrgent(server_.clock().Now());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());

  v1::ListEventsRequest events;
  events.set_parent("tenants/clinic-a");
  events.add_types(v1::EVENT_TYPE_ESCALATION_RAISED);
  auto listed = ehr_.ListEvents(events);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->events_size(), 1);
  EXPECT_EQ(listed->events(0).resource(), (*raised)[0].name);
  EXPECT_EQ(listed->events(0).patient(), kPatient);
  EXPECT_EQ(listed->events(0).actor().role(), v1::ROLE_SYSTEM);

  // The escalation scan reads a partial index of pending urgent messages:
  // routine messages (nearly all) write no row of it.
  if (server_.env().db->dialect() == sql::Dialect::kPostgres) {
    // The same index there; which plan PostgreSQL picks depends on its
    // statistics, so only the index is checked.
    ASSERT_TRUE(server_.env()
                    .db
                    ->Read([](sql::Txn& txn) -> absl::Status {
                      auto def = txn.Query(
                          "SELECT indexdef FROM pg_indexes WHERE indexname = "
                          "'msg_messages_urgent'");
                      if (!def.ok()) return def.status();
                      EXPECT_EQ(def->size(), 1u);
                      if (!def->empty()) {
                        EXPECT_NE(
                            (*def)[0].Str(0).find("WHERE (urgent_pending = 1)"),
                            std::string::npos)
                            << (*def)[0].Str(0);
                      }
                      return absl::OkStatus();
                    })
                    .ok());
    return;
  }
  ASSERT_TRUE(
      server_.env()
          .db
          ->Read([](sql::Txn& txn) -> absl::Status {
            auto partial = txn.Query(
                "SELECT partial FROM pragma_index_list('msg_messages') "
                "WHERE name = 'msg_messages_urgent'");
            if (!partial.ok()) return partial.status();
            EXPECT_EQ(partial->size(), 1u);
            if (!partial->empty()) {
              EXPECT_EQ((*partial)[0].Int(0), 1);
            }
            auto plan = txn.Query(
                "EXPLAIN QUERY PLAN SELECT message_id FROM "
                "msg_messages WHERE urgent_pending = 1 AND "
                "create_time_us <= ? ORDER BY create_time_us LIMIT ?",
                {sql::Int(0), sql::Int(10)});
            if (!plan.ok()) return plan.status();
            std::string detail;
            for (const sql::Row& r : *plan) detail += r.Str(3);
            EXPECT_NE(detail.find("msg_messages_urgent"), std::string::npos)
                << detail;
            return absl::OkStatus();
          })
          .ok());
}

}  // namespace
}  // namespace careseal
