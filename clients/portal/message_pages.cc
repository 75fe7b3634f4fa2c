// Messages with the care team: threads with unread badges, a thread page
// (marked read when shown) with a reply form, a new message, and the small
// JSON endpoint /api/inbox that portal.js polls for live badges (counts and
// a change cursor only, never message text). The poll does not count as
// activity, so an idle session still ends after 15 minutes.
//
// Live updates poll rather than stream: cpp-httplib serves each open
// response on a worker thread of a fixed pool, so one server-sent-events
// stream (fed by WatchInbox) per open page would let a few dozen patients
// exhaust the portal.
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "clients/portal/portal_impl.h"

namespace careseal::portal {
namespace {

constexpr int kMaxText = 8000;
constexpr int kMaxSubject = 200;

std::string SenderOf(const v1::Message& m) {
  switch (m.sender().role()) {
    case v1::ROLE_PATIENT:
      return "You";
    case v1::ROLE_SYSTEM:
      return "Your clinic (automatic message)";
    default:
      return "Your care team";
  }
}

bool FromCareTeam(const v1::Message& m) {
  return m.sender().role() != v1::ROLE_PATIENT;
}

int ThreadIndex(const httplib::Request& req, const PortalSession& s) {
  int n = -1;
  if (!absl::SimpleAtoi(req.matches[1].str(), &n) || n < 0 ||
      n >= static_cast<int>(s.threads.size())) {
    return -1;
  }
  return n;
}

std::string Badge(int unread) {
  if (unread <= 0) return "<span class=\"badge\" hidden></span>";
  return absl::StrCat("<span class=\"badge\">", unread, " unread</span>");
}

std::string ComposeFields(bool with_subject) {
  std::string out;
  if (with_subject) {
    absl::StrAppend(&out,
                    "<p><label for=\"subject\">Subject</label><input "
                    "type=\"text\" id=\"subject\" name=\"subject\" required "
                    "maxlength=\"",
                    kMaxSubject, "\"></p>");
  }
  absl::StrAppend(
      &out, "<p><label for=\"text\">",
      with_subject ? "Your message" : "Your reply",
      "</label><textarea id=\"text\" name=\"text\" rows=\"5\" required "
      "maxlength=\"",
      kMaxText,
      "\"></textarea></p><div class=\"ack\"><input type=\"checkbox\" "
      "id=\"urgent\" name=\"urgent\" value=\"1\"><label for=\"urgent\">This "
      "is urgent: I need an answer today</label></div><p "
      "class=\"notice\">Messages are read during clinic hours. In an "
      "emergency call 911. If you are in crisis, call or text 988.</p>",
      "<input type=\"hidden\" name=\"request_id\" value=\"",
      client::NewRequestId(), "\">");
  return out;
}

}  // namespace

std::string PortalServer::Impl::RequestIdFrom(const httplib::Request& req) {
  const std::string id = req.get_param_value("request_id");
  if (id.size() != 36) return client::NewRequestId();
  for (char c : id) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != '-') {
      return client::NewRequestId();
    }
  }
  return id;
}

absl::Status PortalServer::Impl::RefreshThreads(
    const Ctx& ctx, std::vector<PortalThread>* threads) {
  const PortalSession& s = *ctx.session;
  auto as = AsPatient(s);
  if (!as.ok()) return as.status();
  v1::ListThreadsRequest list;
  list.set_parent(s.patient);
  list.set_page_size(50);
  auto listed = messaging->ListThreads(list, *as);
  if (!listed.ok()) return listed.status();
  std::vector<std::string> order;  // newest activity first
  sessions.Update(ctx.id, [&](PortalSession& live) {
    for (const v1::Thread& t : listed->threads()) {
      auto it = std::find_if(
          live.threads.begin(), live.threads.end(),
          [&](const PortalThread& known) { return known.name == t.name(); });
      if (it == live.threads.end()) {
        PortalThread added;
        added.name = t.name();
        live.threads.push_back(std::move(added));
        it = live.threads.end() - 1;
      }
      it->subject = t.subject();
      it->unread = t.unread_count();
      it->message_count = t.message_count();
      it->last_message_time = FromProto(t.last_message_time());
      order.push_back(t.name());
    }
    if (threads != nullptr) {
      threads->clear();
      for (const std::string& name : order) {
        for (const PortalThread& t : live.threads) {
          if (t.name == name) threads->push_back(t);
        }
      }
    }
  });
  return absl::OkStatus();
}

void PortalServer::Impl::Threads(const httplib::Request& req,
                                 httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  std::vector<PortalThread> threads;
  absl::Status listed = RefreshThreads(ctx, &threads);
  if (!listed.ok()) return ServiceRefused(res, ctx, listed);
  auto s = sessions.Peek(ctx.id, Now());
  if (!s) return SessionEnded(res);
  std::string items;
  for (const PortalThread& t : threads) {
    int index = -1;
    for (size_t i = 0; i < s->threads.size(); ++i) {
      if (s->threads[i].name == t.name) index = static_cast<int>(i);
    }
    absl::StrAppend(&items, "<li data-thread-index=\"", index,
                    "\"><a href=\"/messages/", index, "\">",
                    Esc(t.subject.empty() ? "(no subject)" : t.subject),
                    "</a> ", Badge(t.unread), "<br><small>Last message: ",
                    Esc(HumanTime(t.last_message_time, options.time_zone)),
                    "</small></li>");
  }
  if (items.empty()) items = "<li>No messages yet.</li>";
  Html(res, 200, "Messages",
       absl::StrCat("<h1>Messages</h1><p><a class=\"button\" "
                    "href=\"/messages/new\">Write to your care team</a></p>"
                    "<p id=\"inbox-notice\" role=\"status\" hidden></p>"
                    "<ul class=\"threads\" data-inbox-list>",
                    items, "</ul>", kBackToTasks),
       &*s);
}

absl::StatusOr<std::string> PortalServer::Impl::MessageList(
    const PortalSession& s, int n) {
  auto as = AsPatient(s);
  if (!as.ok()) return as.status();
  v1::ListMessagesRequest list;
  list.set_parent(s.threads[n].name);
  list.set_page_size(100);
  auto listed = messaging->ListMessages(list, *as);
  if (!listed.ok()) return listed.status();
  std::string items;
  const v1::Message* newest_from_team = nullptr;
  bool unread_from_team = false;
  // Newest first from the service; shown oldest first.
  for (int i = listed->messages_size() - 1; i >= 0; --i) {
    const v1::Message& m = listed->messages(i);
    const bool team = FromCareTeam(m);
    if (team) {
      newest_from_team = &m;
      unread_from_team |= m.delivery_status() != v1::DELIVERY_STATUS_READ;
    }
    std::string text;
    if (m.retracted()) {
      text = absl::StrCat("<p><em>This message was withdrawn by its sender",
                          m.retract_reason().empty()
                              ? std::string()
                              : absl::StrCat(": ", Esc(m.retract_reason())),
                          ".</em></p>");
    } else {
      text = absl::StrCat("<p>", EscLines(m.text()), "</p>");
      if (!m.attachment().filename().empty()) {
        absl::StrAppend(
            &text, "<p><small>Attachment: ", Esc(m.attachment().filename()),
            " (ask your clinic for a copy; attachments are not "
            "shown here yet)</small></p>");
      }
    }
    absl::StrAppend(
        &items, "<li class=\"message ", team ? "from-team" : "from-you",
        "\"><p class=\"meta\"><strong>", Esc(SenderOf(m)), "</strong>, ",
        Esc(HumanTime(FromProto(m.create_time()), options.time_zone)),
        m.priority() == v1::MESSAGE_PRIORITY_URGENT ? " · urgent" : "",
        !team && m.delivery_status() == v1::DELIVERY_STATUS_READ ? " · read"
                                                                 : "",
        "</p>", text, "</li>");
  }
  if (newest_from_team != nullptr && unread_from_team) {
    auto as_mark = AsPatient(s);
    if (!as_mark.ok()) return as_mark.status();
    v1::MarkReadRequest mark;
    mark.set_thread(s.threads[n].name);
    mark.set_up_to_message(newest_from_team->name());
    mark.set_request_id(client::NewRequestId());
    (void)messaging->MarkRead(mark, *as_mark);  // best effort
  }
  if (items.empty()) items = "<li>No messages yet.</li>";
  return absl::StrCat("<ol id=\"messages\" class=\"messages\">", items,
                      "</ol>");
}

void PortalServer::Impl::ThreadPage(const httplib::Request& req,
                                    httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  const int n = ThreadIndex(req, s);
  if (n < 0) {
    return Refusal(res, 404, "Not found", "There is no such conversation.",
                   "<p><a href=\"/messages\">Back to your messages</a></p>");
  }
  auto list = MessageList(s, n);
  if (!list.ok()) return ServiceRefused(res, ctx, list.status());
  sessions.Update(ctx.id,
                  [&](PortalSession& live) { live.threads[n].unread = 0; });
  const std::string subject =
      s.threads[n].subject.empty() ? "Conversation" : s.threads[n].subject;
  Html(res, 200, subject,
       absl::StrCat("<h1>", Esc(subject), "</h1><div data-thread-live=\"", n,
                    "\">", *list,
                    "</div><form method=\"post\" action=\"/messages/", n,
                    "/reply\">", CsrfInput(s), ComposeFields(false),
                    "<p><button type=\"submit\">Send reply</button></p>"
                    "</form><p><a href=\"/messages\">Back to your "
                    "messages</a></p>"),
       &s);
}

void PortalServer::Impl::ThreadFragment(const httplib::Request& req,
                                        httplib::Response& res) {
  // For portal.js: the message list of an open thread; a background
  // request, so it does not keep an idle session alive.
  Ctx ctx = LoadQuietly(req);
  if (!ctx.session || !ctx.session->verified) {
    res.status = 401;
    return res.set_content("", "text/plain");
  }
  const int n = ThreadIndex(req, *ctx.session);
  if (n < 0) {
    res.status = 404;
    return res.set_content("", "text/plain");
  }
  auto list = MessageList(*ctx.session, n);
  if (!list.ok()) {
    res.status = 503;
    return res.set_content("", "text/plain");
  }
  res.set_content(*list, "text/html; charset=utf-8");
}

void PortalServer::Impl::Reply(const httplib::Request& req,
                               httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  if (!CsrfOk(req, s)) return CsrfRefused(res);
  const int n = ThreadIndex(req, s);
  if (n < 0) {
    return Refusal(res, 404, "Not found", "There is no such conversation.");
  }
  const std::string back = absl::StrCat("<p><a href=\"/messages/", n,
                                        "\">Back to the "
                                        "conversation</a></p>");
  v1::SendMessageRequest send;
  send.set_parent(s.threads[n].name);
  send.set_text(req.get_param_value("text"));
  send.set_priority(req.get_param_value("urgent") == "1"
                        ? v1::MESSAGE_PRIORITY_URGENT
                        : v1::MESSAGE_PRIORITY_ROUTINE);
  send.set_request_id(RequestIdFrom(req));
  if (absl::StripAsciiWhitespace(send.text()).empty()) {
    return Refusal(res, 400, "Not sent",
                   "Write a message first. Nothing was sent.", back);
  }
  auto as = AsPatient(s);
  if (!as.ok()) return SessionEnded(res);
  auto sent = messaging->SendMessage(send, *as);
  if (!sent.ok()) {
    const std::string reason = client::ErrorReason(sent.status());
    if (reason == "EMPTY_MESSAGE" || reason == "FIELD_TOO_LONG" ||
        reason == "INVALID_CHARACTERS") {
      return Refusal(res, 400, "Not sent",
                     "The message is empty, too long (at most 8000 "
                     "characters) or has characters that cannot be sent. "
                     "Nothing was sent.",
                     back);
    }
    if (reason == "REQUEST_ID_REUSED") {
      return Refusal(res, 409, "Already sent",
                     "This form was already used to send a message. Open the "
                     "conversation again to write another.",
                     back);
    }
    return ServiceRefused(res, ctx, sent.status());
  }
  res.set_redirect(absl::StrCat("/messages/", n), 303);
}

void PortalServer::Impl::NewThreadForm(const httplib::Request& req,
                                       httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  Html(res, 200, "Write to your care team",
       absl::StrCat("<h1>Write to your care team</h1><form method=\"post\" "
                    "action=\"/messages/new\">",
                    CsrfInput(*ctx.session), ComposeFields(true),
                    "<p><button type=\"submit\">Send message</button></p>"
                    "</form><p><a href=\"/messages\">Back to your "
                    "messages</a></p>"),
       &*ctx.session);
}

void PortalServer::Impl::NewThread(const httplib::Request& req,
                                   httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  if (!CsrfOk(req, s)) return CsrfRefused(res);
  const std::string back =
      "<p><a href=\"/messages/new\">Back to the form</a></p>";
  const std::string subject(
      absl::StripAsciiWhitespace(req.get_param_value("subject")));
  const std::string text = req.get_param_value("text");
  // Checked here too, so that a refused message leaves no empty thread.
  if (subject.empty() || absl::StripAsciiWhitespace(text).empty()) {
    return Refusal(res, 400, "Not sent",
                   "Write a subject and a message. Nothing was sent.", back);
  }
  if (subject.size() > 4 * kMaxSubject || text.size() > 4 * kMaxText) {
    return Refusal(res, 400, "Not sent",
                   "The subject or the message is too long. Nothing was "
                   "sent.",
                   back);
  }
  const std::string request_id = RequestIdFrom(req);
  v1::CreateThreadRequest create;
  create.set_parent(s.patient);
  create.mutable_thread()->set_subject(subject);
  create.mutable_thread()->set_category(v1::THREAD_CATEGORY_GENERAL);
  create.set_request_id(request_id);
  auto as = AsPatient(s);
  if (!as.ok()) return SessionEnded(res);
  auto thread = messaging->CreateThread(create, *as);
  if (!thread.ok()) {
    const std::string reason = client::ErrorReason(thread.status());
    if (reason == "FIELD_TOO_LONG" || reason == "INVALID_CHARACTERS" ||
        reason == "FIELD_REQUIRED") {
      return Refusal(res, 400, "Not sent",
                     "The subject is too long (at most 200 characters) or "
                     "has characters that cannot be sent. Nothing was sent.",
                     back);
    }
    return ServiceRefused(res, ctx, thread.status());
  }
  v1::SendMessageRequest send;
  send.set_parent(thread->thread().name());
  send.set_text(text);
  send.set_priority(req.get_param_value("urgent") == "1"
                        ? v1::MESSAGE_PRIORITY_URGENT
                        : v1::MESSAGE_PRIORITY_ROUTINE);
  send.set_request_id(client::NewRequestId());
  auto as_send = AsPatient(s);
  if (!as_send.ok()) return SessionEnded(res);
  auto sent = messaging->SendMessage(send, *as_send);
  int index = -1;
  sessions.Update(ctx.id, [&](PortalSession& live) {
    for (size_t i = 0; i < live.threads.size(); ++i) {
      if (live.threads[i].name == thread->thread().name()) {
        index = static_cast<int>(i);
      }
    }
    if (index < 0) {
      live.threads.push_back(
          PortalThread{thread->thread().name(), subject, 0, 0, Now()});
      index = static_cast<int>(live.threads.size()) - 1;
    }
  });
  if (!sent.ok()) {
    return Refusal(
        res, 400, "Message not sent",
        "The conversation was started but the message could not be sent "
        "(it may be too long, at most 8000 characters). Nothing else was "
        "sent.",
        absl::StrCat("<p><a href=\"/messages/", index,
                     "\">Open the conversation and try again</a></p>"));
  }
  res.set_redirect(absl::StrCat("/messages/", index), 303);
}

void PortalServer::Impl::ApiInbox(const httplib::Request& req,
                                  httplib::Response& res) {
  Ctx ctx = LoadQuietly(req);
  if (!ctx.session || !ctx.session->verified) {
    res.status = 401;
    return res.set_content(Json{{"signed_in", false}}.dump(),
                           "application/json");
  }
  const PortalSession& s = *ctx.session;
  auto as = AsPatient(s);
  if (!as.ok()) {
    res.status = 401;
    return res.set_content(Json{{"signed_in", false}}.dump(),
                           "application/json");
  }
  v1::GetUnreadCountsRequest counts;
  counts.set_parent(s.patient);
  auto got = messaging->GetUnreadCounts(counts, *as);
  if (!got.ok()) {
    res.status = 503;
    return res.set_content(Json{{"signed_in", true}}.dump(),
                           "application/json");
  }
  Json threads = Json::array();
  int other_unread = 0;
  std::string fingerprint;
  for (const v1::ThreadUnreadCount& t : got->threads()) {
    absl::StrAppend(&fingerprint, t.thread(), "=", t.unread(), ";");
    int index = -1;
    for (size_t i = 0; i < s.threads.size(); ++i) {
      if (s.threads[i].name == t.thread()) index = static_cast<int>(i);
    }
    if (index < 0) {
      other_unread += t.unread();
      continue;
    }
    threads.push_back({{"index", index}, {"unread", t.unread()}});
  }
  // The cursor changes whenever any count changes; opaque to the page.
  const std::string cursor =
      absl::StrCat(absl::Hex(std::hash<std::string>{}(fingerprint)), "-",
                   got->total_unread());
  Json out = {{"signed_in", true},
              {"total_unread", got->total_unread()},
              {"urgent_unread", got->urgent_unread()},
              {"threads", threads},
              {"other_unread", other_unread},
              {"cursor", cursor}};
  res.set_content(out.dump(), "application/json");
}

}  // namespace careseal::portal
