// careseal messages ... and careseal events ...: secure messaging and the
// EHR's event stream. Responses print as JSON (proto3 JSON mapping); watch
// commands print one JSON object per line as items arrive and resume from
// the last cursor after a server restart.
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/cli/cli.h"
#include "clients/cpp/events_client.h"
#include "clients/cpp/messaging_client.h"

namespace careseal::cli {
namespace {

namespace v1 = ::careseal::v1;

std::string ContentTypeFor(const std::string& path) {
  if (absl::EndsWithIgnoreCase(path, ".png")) return "image/png";
  if (absl::EndsWithIgnoreCase(path, ".jpg") ||
      absl::EndsWithIgnoreCase(path, ".jpeg")) {
    return "image/jpeg";
  }
  if (absl::EndsWithIgnoreCase(path, ".pdf")) return "application/pdf";
  return "";
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::StatusOr<v1::ThreadCategory> CategoryFrom(const std::string& name) {
  if (name == "instructions") return v1::THREAD_CATEGORY_INSTRUCTIONS;
  if (name == "follow-up") return v1::THREAD_CATEGORY_FOLLOW_UP;
  if (name == "billing") return v1::THREAD_CATEGORY_BILLING;
  if (name == "general") return v1::THREAD_CATEGORY_GENERAL;
  return absl::InvalidArgumentError(
      "--category is one of instructions, follow-up, billing, general");
}

client::WatchOptions WatchOptionsFrom(const Globals& g, double hours) {
  client::WatchOptions options;
  options.bearer_token = g.token;
  options.max_duration = absl::Seconds(hours * 3600);
  return options;
}

struct SendArgs {
  std::string thread;
  std::string patient;
  std::string subject;
  std::string category = "general";
  std::string text;
  bool urgent = false;
  std::string attach;
  std::string content_type;
};

int RunSend(const Globals& g, const SendArgs& a) {
  auto channel = g.Channel();
  if (!channel.ok()) return ReportError(channel.status());
  client::MessagingClient c(*channel);
  std::string thread = a.thread;
  if (thread.empty()) {
    if (a.patient.empty() || a.subject.empty()) {
      return ReportError(absl::InvalidArgumentError(
          "give --thread, or --patient and --subject for a new thread"));
    }
    auto category = CategoryFrom(a.category);
    if (!category.ok()) return ReportError(category.status());
    v1::CreateThreadRequest create;
    create.set_parent(a.patient);
    create.mutable_thread()->set_subject(a.subject);
    create.mutable_thread()->set_category(*category);
    auto created = c.CreateThread(create, g.Call());
    if (!created.ok()) return ReportError(created.status());
    thread = created->thread().name();
  }
  v1::SendMessageRequest send;
  send.set_parent(thread);
  send.set_text(a.text);
  send.set_priority(a.urgent ? v1::MESSAGE_PRIORITY_URGENT
                             : v1::MESSAGE_PRIORITY_ROUTINE);
  if (!a.attach.empty()) {
    auto content = ReadFile(a.attach);
    if (!content.ok()) return ReportError(content.status());
    v1::Attachment* att = send.mutable_attachment();
    att->set_filename(BaseName(a.attach));
    att->set_content_type(a.content_type.empty() ? ContentTypeFor(a.attach)
                                                 : a.content_type);
    att->set_content(*content);
  }
  auto sent = c.SendMessage(send, g.Call());
  if (!sent.ok()) return ReportError(sent.status());
  return PrintJson(*sent);
}

void AddMessagesCommands(CLI::App& app, Globals& g, Action& run) {
  auto* messages = app.add_subcommand("messages", "secure messaging");
  messages->require_subcommand(1);

  {
    auto* cmd = messages->add_subcommand(
        "send", "send a message in a thread (or in a new thread)");
    auto a = std::make_shared<SendArgs>();
    cmd->add_option("--thread", a->thread,
                    "tenants/{t}/patients/{p}/threads/{id}");
    cmd->add_option("--patient", a->patient,
                    "tenants/{t}/patients/{p}: start a new thread");
    cmd->add_option("--subject", a->subject, "subject of a new thread");
    cmd->add_option("--category", a->category,
                    "new thread: instructions|follow-up|billing|general")
        ->capture_default_str();
    cmd->add_option("--text", a->text, "message text");
    cmd->add_flag("--urgent", a->urgent, "priority URGENT (default ROUTINE)");
    cmd->add_option("--attach", a->attach,
                    "attach a PNG, JPEG or PDF file (at most 1 MiB)");
    cmd->add_option("--content-type", a->content_type,
                    "attachment type (default: from the file name)");
    cmd->callback([&g, &run, a] { run = [&g, a] { return RunSend(g, *a); }; });
  }

  {
    auto* cmd = messages->add_subcommand(
        "list",
        "list a thread's messages (--thread), or threads (--patient, "
        "tenants/{t}/patients/- for the care team's inbox)");
    auto thread = std::make_shared<std::string>();
    auto patient = std::make_shared<std::string>();
    auto unread = std::make_shared<bool>(false);
    auto page_size = std::make_shared<int>(0);
    auto page_token = std::make_shared<std::string>();
    cmd->add_option("--thread", *thread, "a thread: list its messages");
    cmd->add_option("--patient", *patient, "a patient (or -): list threads");
    cmd->add_flag("--unread", *unread, "threads with unread messages only");
    cmd->add_option("--page-size", *page_size, "items per page");
    cmd->add_option("--page-token", *page_token, "from next_page_token");
    cmd->callback([&g, &run, thread, patient, unread, page_size, page_token] {
      run = [&g, thread, patient, unread, page_size, page_token] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::MessagingClient c(*channel);
        if (!thread->empty()) {
          v1::ListMessagesRequest r;
          r.set_parent(*thread);
          r.set_page_size(*page_size);
          r.set_page_token(*page_token);
          auto out = c.ListMessages(r, g.Call());
          if (!out.ok()) return ReportError(out.status());
          return PrintJson(*out);
        }
        if (patient->empty()) {
          return ReportError(
              absl::InvalidArgumentError("give --thread or --patient"));
        }
        v1::ListThreadsRequest r;
        r.set_parent(*patient);
        r.set_unread_only(*unread);
        r.set_page_size(*page_size);
        r.set_page_token(*page_token);
        auto out = c.ListThreads(r, g.Call());
        if (!out.ok()) return ReportError(out.status());
        return PrintJson(*out);
      };
    });
  }

  {
    auto* cmd = messages->add_subcommand(
        "read",
        "mark a message and every earlier one from the other side as read "
        "(read receipts)");
    auto message = std::make_shared<std::string>();
    cmd->add_option("message", *message,
                    "tenants/{t}/patients/{p}/threads/{id}/messages/{m}")
        ->required();
    cmd->callback([&g, &run, message] {
      run = [&g, message] {
        const size_t at = message->find("/messages/");
        if (at == std::string::npos) {
          return ReportError(absl::InvalidArgumentError(
              "the message is tenants/{t}/patients/{p}/threads/{id}/"
              "messages/{m}"));
        }
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::MessagingClient c(*channel);
        v1::MarkReadRequest r;
        r.set_thread(message->substr(0, at));
        r.set_up_to_message(*message);
        auto out = c.MarkRead(r, g.Call());
        if (!out.ok()) return ReportError(out.status());
        return PrintJson(*out);
      };
    });
  }

  {
    auto* cmd = messages->add_subcommand(
        "watch",
        "stream an inbox live (one JSON line per update); resumes from the "
        "last cursor after a restart");
    auto parent = std::make_shared<std::string>();
    auto from = std::make_shared<int64_t>(-1);
    auto hours = std::make_shared<double>(24);
    cmd->add_option("--inbox", *parent,
                    "tenants/{t}/patients/{p}, or tenants/{t}/patients/- "
                    "for the care team")
        ->required();
    cmd->add_option("--from", *from,
                    "replay updates after this cursor first (default: live "
                    "only)");
    cmd->add_option("--hours", *hours, "stop after this long")
        ->capture_default_str();
    cmd->callback([&g, &run, parent, from, hours] {
      run = [&g, parent, from, hours] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::MessagingClient c(*channel);
        v1::WatchInboxRequest r;
        r.set_parent(*parent);
        if (*from >= 0) r.set_after_cursor(*from);
        absl::Status end = c.ResumeInbox(
            r, WatchOptionsFrom(g, *hours),
            [](const v1::WatchInboxResponse& u) {
              std::cout << ToJson(u, /*pretty=*/false) << std::endl;
              return true;
            });
        if (!end.ok() && end.code() != absl::StatusCode::kDeadlineExceeded) {
          return ReportError(end);
        }
        return 0;
      };
    });
  }
}

}  // namespace

void AddMessagingCommands(CLI::App& app, Globals& g, Action& run) {
  AddMessagesCommands(app, g, run);
}

void AddEventsCommands(CLI::App& app, Globals& g, Action& run) {
  auto* events = app.add_subcommand("events", "events for the EHR");
  events->require_subcommand(1);
  auto* cmd = events->add_subcommand(
      "watch",
      "stream a tenant's events (one JSON line each); persist the last "
      "cursor and pass it to --from to resume with no gap and no duplicate");
  auto parent = std::make_shared<std::string>();
  auto from = std::make_shared<int64_t>(-1);
  auto patient = std::make_shared<std::string>();
  auto hours = std::make_shared<double>(24);
  cmd->add_option("--tenant", *parent, "tenant id")->required();
  cmd->add_option("--from", *from,
                  "resume after this cursor (0: from the oldest retained; "
                  "default: live only)");
  cmd->add_option("--patient", *patient,
                  "only this patient (tenants/{t}/patients/{p})");
  cmd->add_option("--hours", *hours, "stop after this long")
      ->capture_default_str();
  cmd->callback([&g, &run, parent, from, patient, hours] {
    run = [&g, parent, from, patient, hours] {
      auto channel = g.Channel();
      if (!channel.ok()) return ReportError(channel.status());
      client::EventsClient c(*channel);
      v1::WatchEventsRequest r;
      r.set_parent("tenants/" + *parent);
      if (*from >= 0) r.set_after_cursor(*from);
      r.set_patient(*patient);
      absl::Status end = c.ResumeEvents(
          r, WatchOptionsFrom(g, *hours), [](const v1::Event& e) {
            std::cout << ToJson(e, /*pretty=*/false) << std::endl;
            return true;
          });
      if (!end.ok() && end.code() != absl::StatusCode::kDeadlineExceeded) {
        return ReportError(end);
      }
      return 0;
    };
  });
}

}  // namespace careseal::cli
