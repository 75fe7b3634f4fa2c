#include "services/followup/messaging/messaging_grpc.h"

#include "absl/strings/str_cat.h"
#include "services/common/grpc/proto_role.h"
#include "services/common/macros.h"
#include "services/common/platform/resource_name.h"
#include "services/common/status.h"

namespace careseal::messaging {
namespace {

#define MESSAGING_METHOD(name) "careseal.v1.MessagingService/" #name

constexpr char kPatientPattern[] = "tenants/{tenant}/patients/{patient}";
constexpr char kThreadPattern[] =
    "tenants/{tenant}/patients/{patient}/threads/{thread}";
constexpr char kMessagePattern[] =
    "tenants/{tenant}/patients/{patient}/threads/{thread}/messages/{message}";

absl::Status Authorize(const Edge& edge, const CallContext& call,
                       const ResourceName& name) {
  return edge.policy->Authorize(call.principal, call.method,
                                Scope{name.Get("tenant"), name.Get("patient")},
                                call.now);
}

ThreadKey ThreadKeyOf(const ResourceName& n) {
  return {n.Get("tenant"), n.Get("patient"), n.Get("thread")};
}

MessageKey MessageKeyOf(const ResourceName& n) {
  return {n.Get("tenant"), n.Get("patient"), n.Get("thread"), n.Get("message")};
}

void ToProto(const Thread& t, v1::Thread* out) {
  out->set_name(t.Name());
  out->set_subject(t.subject);
  out->set_category(static_cast<v1::ThreadCategory>(t.category));
  ToProto(t.created_by, out->mutable_created_by());
  ToTimestamp(t.create_time, out->mutable_create_time());
  ToTimestamp(t.last_message_time, out->mutable_last_message_time());
  out->set_message_count(t.message_count);
  out->set_unread_count(t.unread_count);
}

void ToProto(const ReadReceipt& r, v1::ReadReceipt* out) {
  out->set_message(r.message);
  ToProto(r.reader, out->mutable_reader());
  ToTimestamp(r.read_time, out->mutable_read_time());
}

void ToProto(const Message& m, bool with_content, v1::Message* out) {
  out->set_name(m.Name());
  ToProto(m.sender, out->mutable_sender());
  out->set_text(m.text);
  out->set_priority(static_cast<v1::MessagePriority>(m.priority));
  if (m.attachment) {
    v1::Attachment* a = out->mutable_attachment();
    a->set_filename(m.attachment->filename);
    a->set_content_type(m.attachment->content_type);
    if (with_content) a->set_content(m.attachment->content);
    a->set_size_bytes(m.attachment->size_bytes);
    a->set_sha256(m.attachment->sha256);
  }
  out->set_related_resource(m.related_resource);
  ToTimestamp(m.create_time, out->mutable_create_time());
  out->set_delivery_status(static_cast<v1::DeliveryStatus>(m.delivery_status));
  for (const ReadReceipt& r : m.read_receipts) {
    ToProto(r, out->add_read_receipts());
  }
  out->set_retracted(m.retracted);
  if (m.retract_time) ToTimestamp(*m.retract_time, out->mutable_retract_time());
  out->set_retract_reason(m.retract_reason);
  out->set_correction(m.correction);
  out->set_corrects(m.corrects);
}

void ToProto(const InboxUpdate& u, v1::WatchInboxResponse* out) {
  out->set_cursor(u.cursor);
  switch (u.kind) {
    case InboxUpdate::Kind::kMessage:
      ToProto(u.message, /*with_content=*/false, out->mutable_message());
      break;
    case InboxUpdate::Kind::kReadReceipt:
      ToProto(u.read_receipt, out->mutable_read_receipt());
      break;
    case InboxUpdate::Kind::kRetraction: {
      v1::Retraction* r = out->mutable_retraction();
      r->set_message(u.retraction.message);
      r->set_correction(u.retraction.correction);
      ToTimestamp(u.retraction.retract_time, r->mutable_retract_time());
      break;
    }
  }
}

template <typename T, typename Convert>
Done<T> Reply(Finisher finish, Convert convert) {
  return [finish = std::move(finish),
          convert = std::move(convert)](absl::StatusOr<T> result) mutable {
    if (!result.ok()) return finish(result.status());
    finish(convert(*result));
  };
}

}  // namespace

void ToProto(const Actor& a, v1::Actor* out) {
  out->set_name(a.name);
  out->set_role(ToProtoRole(a.role));
  out->set_peer_identity(a.role == Role::kSystem ? "" : a.peer);
}

void AddMessagingPolicy(Policy& policy) {
  using R = Role;
  policy.Allow(MESSAGING_METHOD(GetThread),
               {R::kPatient, R::kClinician, R::kBreakGlass, R::kEhrSystem});
  policy.Allow(MESSAGING_METHOD(ListThreads),
               {R::kPatient, R::kClinician, R::kBreakGlass, R::kEhrSystem});
  // System: the follow-up service delivering check-ins to inboxes.
  policy.Allow(MESSAGING_METHOD(CreateThread),
               {R::kPatient, R::kClinician, R::kBreakGlass, R::kSystem});
  policy.Allow(MESSAGING_METHOD(GetMessage),
               {R::kPatient, R::kClinician, R::kBreakGlass, R::kEhrSystem});
  policy.Allow(MESSAGING_METHOD(ListMessages),
               {R::kPatient, R::kClinician, R::kBreakGlass, R::kEhrSystem});
  policy.Allow(MESSAGING_METHOD(GetUnreadCounts),
               {R::kPatient, R::kClinician, R::kBreakGlass});
  policy.Allow(MESSAGING_METHOD(SendMessage),
               {R::kPatient, R::kClinician, R::kBreakGlass, R::kSystem});
  policy.Allow(MESSAGING_METHOD(MarkRead),
               {R::kPatient, R::kClinician, R::kBreakGlass});
  policy.Allow(MESSAGING_METHOD(RetractMessage),
               {R::kPatient, R::kClinician, R::kBreakGlass});
  policy.Allow(MESSAGING_METHOD(WatchInbox),
               {R::kPatient, R::kClinician, R::kBreakGlass});
}

grpc::ServerUnaryReactor* MessagingGrpc::GetThread(
    grpc::CallbackServerContext* ctx, const v1::GetThreadRequest* req,
    v1::GetThreadResponse* resp) {
  return RunUnary(ctx, edge_.edge, MESSAGING_METHOD(GetThread), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName name,
                                     ResourceName::Parse(kThreadPattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
                    ASSIGN_OR_RETURN(
                        Thread t, manager_->GetThread(call, ThreadKeyOf(name)));
                    ToProto(t, resp->mutable_thread());
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* MessagingGrpc::ListThreads(
    grpc::CallbackServerContext* ctx, const v1::ListThreadsRequest* req,
    v1::ListThreadsResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, MESSAGING_METHOD(ListThreads), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(ResourceName name, ResourceName::ParseWithWildcard(
                                                kPatientPattern, req->parent(),
                                                "parent", "patient"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
        if (!v1::ThreadCategory_IsValid(req->category())) {
          return InvalidField("category", "INVALID_ENUM_VALUE",
                              "category is not a ThreadCategory value");
        }
        ListThreadsInput in;
        in.tenant = name.Get("tenant");
        in.patient = name.Get("patient");
        in.category = req->category();
        in.unread_only = req->unread_only();
        ASSIGN_OR_RETURN(auto page,
                         manager_->ListThreads(call, in, req->page_size(),
                                               req->page_token()));
        for (const Thread& t : page.items) ToProto(t, resp->add_threads());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* MessagingGrpc::CreateThread(
    grpc::CallbackServerContext* ctx, const v1::CreateThreadRequest* req,
    v1::CreateThreadResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, MESSAGING_METHOD(CreateThread), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kPatientPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
        CreateThreadInput in;
        in.tenant = name.Get("tenant");
        in.patient = name.Get("patient");
        in.subject = req->thread().subject();
        in.category = req->thread().category();
        manager_->CreateThread(call, std::move(in),
                               Reply<Thread>(finish, [resp](const Thread& t) {
                                 ToProto(t, resp->mutable_thread());
                                 return absl::OkStatus();
                               }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* MessagingGrpc::GetMessage(
    grpc::CallbackServerContext* ctx, const v1::GetMessageRequest* req,
    v1::GetMessageResponse* resp) {
  return RunUnary(ctx, edge_.edge, MESSAGING_METHOD(GetMessage), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName name,
                                     ResourceName::Parse(kMessagePattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
                    ASSIGN_OR_RETURN(Message m, manager_->GetMessage(
                                                    call, MessageKeyOf(name)));
                    ToProto(m, /*with_content=*/true, resp->mutable_message());
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* MessagingGrpc::ListMessages(
    grpc::CallbackServerContext* ctx, const v1::ListMessagesRequest* req,
    v1::ListMessagesResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, MESSAGING_METHOD(ListMessages), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kThreadPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
        ASSIGN_OR_RETURN(auto page, manager_->ListMessages(
                                        call, ThreadKeyOf(name),
                                        req->page_size(), req->page_token()));
        for (const Message& m : page.items) {
          ToProto(m, /*with_content=*/false, resp->add_messages());
        }
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* MessagingGrpc::GetUnreadCounts(
    grpc::CallbackServerContext* ctx, const v1::GetUnreadCountsRequest* req,
    v1::GetUnreadCountsResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, MESSAGING_METHOD(GetUnreadCounts), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(ResourceName name, ResourceName::ParseWithWildcard(
                                                kPatientPattern, req->parent(),
                                                "parent", "patient"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
        ASSIGN_OR_RETURN(UnreadCounts c,
                         manager_->GetUnreadCounts(call, name.Get("tenant"),
                                                   name.Get("patient")));
        resp->set_total_unread(c.total_unread);
        resp->set_urgent_unread(c.urgent_unread);
        for (const ThreadUnread& t : c.threads) {
          v1::ThreadUnreadCount* out = resp->add_threads();
          out->set_thread(t.thread);
          out->set_unread(t.unread);
          out->set_urgent_unread(t.urgent_unread);
        }
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* MessagingGrpc::SendMessage(
    grpc::CallbackServerContext* ctx, const v1::SendMessageRequest* req,
    v1::SendMessageResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, MESSAGING_METHOD(SendMessage), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kThreadPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
        SendInput in;
        in.tenant = name.Get("tenant");
        in.patient = name.Get("patient");
        in.thread = name.Get("thread");
        in.text = req->text();
        in.priority = req->priority();
        if (req->has_attachment()) {
          in.attachment = AttachmentInput{req->attachment().filename(),
                                          req->attachment().content_type(),
                                          req->attachment().content()};
        }
        manager_->SendMessage(call, std::move(in),
                              Reply<Message>(finish, [resp](const Message& m) {
                                ToProto(m, /*with_content=*/false,
                                        resp->mutable_message());
                                return absl::OkStatus();
                              }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* MessagingGrpc::MarkRead(
    grpc::CallbackServerContext* ctx, const v1::MarkReadRequest* req,
    v1::MarkReadResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, MESSAGING_METHOD(MarkRead), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kThreadPattern, req->thread(), "thread"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
        ASSIGN_OR_RETURN(
            ResourceName up_to,
            ResourceName::Parse(kMessagePattern, req->up_to_message(),
                                "up_to_message"));
        if (up_to.Get("tenant") != name.Get("tenant") ||
            up_to.Get("patient") != name.Get("patient") ||
            up_to.Get("thread") != name.Get("thread")) {
          return InvalidField("up_to_message", "MESSAGE_NOT_IN_THREAD",
                              "up_to_message is not a message of this thread");
        }
        MarkReadInput in{name.Get("tenant"), name.Get("patient"),
                         name.Get("thread"), up_to.Get("message")};
        manager_->MarkRead(
            call, std::move(in),
            Reply<MarkReadResult>(finish, [resp](const MarkReadResult& r) {
              ToProto(r.thread, resp->mutable_thread());
              for (const ReadReceipt& receipt : r.read_receipts) {
                ToProto(receipt, resp->add_read_receipts());
              }
              return absl::OkStatus();
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* MessagingGrpc::RetractMessage(
    grpc::CallbackServerContext* ctx, const v1::RetractMessageRequest* req,
    v1::RetractMessageResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, MESSAGING_METHOD(RetractMessage), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kMessagePattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
        RetractInput in{name.Get("tenant"), name.Get("patient"),
                        name.Get("thread"), name.Get("message"),
                        req->reason(),      req->corrected_text()};
        manager_->RetractMessage(
            call, std::move(in),
            Reply<RetractResult>(finish, [resp](const RetractResult& r) {
              ToProto(r.message, false, resp->mutable_message());
              if (r.correction) {
                ToProto(*r.correction, false, resp->mutable_correction());
              }
              return absl::OkStatus();
            }));
        return absl::OkStatus();
      });
}

grpc::ServerWriteReactor<v1::WatchInboxResponse>* MessagingGrpc::WatchInbox(
    grpc::CallbackServerContext* ctx, const v1::WatchInboxRequest* req) {
  using Stream = CursorStream<v1::WatchInboxResponse>;
  auto* stream = new Stream(edge_);
  CallContext& call = stream->call();
  bool acquired = false;
  absl::Status started = BeginStreamCall(
      ctx, edge_, MESSAGING_METHOD(WatchInbox), call, &acquired);
  stream->set_acquired_stream(acquired);
  InboxQuery query;
  int64_t start = 0;
  if (started.ok()) {
    started = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(ResourceName n, ResourceName::ParseWithWildcard(
                                           kPatientPattern, req->parent(),
                                           "parent", "patient"));
      RETURN_IF_ERROR(Authorize(edge_.edge, call, n));
      query.tenant = n.Get("tenant");
      query.patient = n.Get("patient");
      query.viewer = SideOf(call.principal.role);
      std::optional<int64_t> after;
      if (req->has_after_cursor()) after = req->after_cursor();
      ASSIGN_OR_RETURN(start, manager_->ResolveInboxStart(
                                  call, query.tenant, query.patient, after));
      return absl::OkStatus();
    }();
  }
  if (!started.ok()) {
    stream->Reject(started);
    return stream;
  }
  stream->Start(query.tenant, start,
                [manager = manager_, query](
                    int64_t after) mutable -> absl::StatusOr<Stream::Batch> {
                  query.after = after;
                  ASSIGN_OR_RETURN(InboxBatch inbox, manager->ReadInbox(query));
                  Stream::Batch batch;
                  batch.scanned_through = inbox.scanned_through;
                  batch.more = inbox.more;
                  for (const InboxUpdate& u : inbox.updates) {
                    ToProto(u, &batch.items.emplace_back());
                  }
                  return batch;
                });
  return stream;
}

}  // namespace careseal::messaging
