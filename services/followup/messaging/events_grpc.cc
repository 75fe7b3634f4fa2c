#include "services/followup/messaging/events_grpc.h"

#include "absl/strings/str_cat.h"
#include "services/common/macros.h"
#include "services/common/platform/resource_name.h"
#include "services/common/status.h"
#include "services/followup/messaging/messaging_grpc.h"

namespace careseal::messaging {
namespace {

#define EVENTS_METHOD(name) "careseal.v1.EventService/" #name

constexpr char kTenantPattern[] = "tenants/{tenant}";
constexpr char kWebhookPattern[] = "tenants/{tenant}/webhooks/{webhook}";
constexpr char kPatientPattern[] = "tenants/{tenant}/patients/{patient}";

absl::Status Authorize(const Edge& edge, const CallContext& call,
                       const ResourceName& name) {
  return edge.policy->Authorize(call.principal, call.method,
                                Scope{name.Get("tenant"), ""}, call.now);
}

void ToProto(const events::EventRecord& e, v1::Event* out) {
  out->set_name(e.Name());
  out->set_cursor(e.cursor);
  out->set_type(static_cast<v1::EventType>(e.type));
  out->set_resource(e.resource);
  out->set_patient(e.patient);
  ToTimestamp(e.time, out->mutable_time());
  ToProto(Actor{e.actor, e.actor_role, e.actor_peer}, out->mutable_actor());
  out->set_request_id(e.request_id);
  out->set_correlation_id(e.correlation_id);
}

void ToProto(const Webhook& w, v1::Webhook* out) {
  out->set_name(w.Name());
  out->set_url(w.url);
  for (events::EventType t : w.event_types) {
    out->add_event_types(static_cast<v1::EventType>(t));
  }
  out->set_state(static_cast<v1::WebhookState>(w.state));
  ToTimestamp(w.create_time, out->mutable_create_time());
  out->set_delivered_cursor(w.delivered_cursor);
  if (w.last_delivery_time) {
    ToTimestamp(*w.last_delivery_time, out->mutable_last_delivery_time());
  }
  out->set_last_error_http_status(w.last_error_http_status);
}

// The filter of a List/Watch request: types and an optional patient name
// inside the parent tenant.
template <typename Request>
absl::StatusOr<EventFilter> FilterOf(const ResourceName& parent,
                                     const Request& req) {
  EventFilter filter;
  filter.tenant = parent.Get("tenant");
  for (int t : req.types()) filter.types.push_back(t);
  if (!req.patient().empty()) {
    ASSIGN_OR_RETURN(
        ResourceName p,
        ResourceName::Parse(kPatientPattern, req.patient(), "patient"));
    if (p.Get("tenant") != filter.tenant) return ResourceNotFound();
    filter.patient = p.Get("patient");
  }
  return filter;
}

}  // namespace

void AddEventsPolicy(Policy& policy) {
  using R = Role;
  policy.Allow(EVENTS_METHOD(ListEvents), {R::kEhrSystem});
  policy.Allow(EVENTS_METHOD(WatchEvents), {R::kEhrSystem});
  policy.Allow(EVENTS_METHOD(GetWebhook), {R::kAdmin, R::kEhrSystem});
  policy.Allow(EVENTS_METHOD(ListWebhooks), {R::kAdmin, R::kEhrSystem});
  policy.Allow(EVENTS_METHOD(CreateWebhook), {R::kAdmin, R::kEhrSystem});
  policy.Allow(EVENTS_METHOD(DeleteWebhook), {R::kAdmin, R::kEhrSystem});
}

grpc::ServerUnaryReactor* EventsGrpc::ListEvents(
    grpc::CallbackServerContext* ctx, const v1::ListEventsRequest* req,
    v1::ListEventsResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, EVENTS_METHOD(ListEvents), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName parent,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, parent));
        ASSIGN_OR_RETURN(EventFilter filter, FilterOf(parent, *req));
        ASSIGN_OR_RETURN(auto page, manager_->ListEvents(
                                        call, filter, req->after_cursor(),
                                        req->page_size(), req->page_token()));
        for (const auto& e : page.items) ToProto(e, resp->add_events());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* EventsGrpc::GetWebhook(
    grpc::CallbackServerContext* ctx, const v1::GetWebhookRequest* req,
    v1::GetWebhookResponse* resp) {
  return RunUnary(ctx, edge_.edge, EVENTS_METHOD(GetWebhook), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName name,
                                     ResourceName::Parse(kWebhookPattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
                    ASSIGN_OR_RETURN(Webhook w, manager_->GetWebhook(
                                                    call, name.Get("tenant"),
                                                    name.Get("webhook")));
                    ToProto(w, resp->mutable_webhook());
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* EventsGrpc::ListWebhooks(
    grpc::CallbackServerContext* ctx, const v1::ListWebhooksRequest* req,
    v1::ListWebhooksResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, EVENTS_METHOD(ListWebhooks), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName parent,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, parent));
        ASSIGN_OR_RETURN(auto page, manager_->ListWebhooks(
                                        call, parent.Get("tenant"),
                                        req->page_size(), req->page_token()));
        for (const Webhook& w : page.items) ToProto(w, resp->add_webhooks());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* EventsGrpc::CreateWebhook(
    grpc::CallbackServerContext* ctx, const v1::CreateWebhookRequest* req,
    v1::CreateWebhookResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, EVENTS_METHOD(CreateWebhook), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName parent,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, parent));
        WebhookInput in;
        in.tenant = parent.Get("tenant");
        in.url = req->webhook().url();
        for (int t : req->webhook().event_types()) in.event_types.push_back(t);
        in.secret = req->webhook().secret();
        call.tenant = in.tenant;
        call.resource = absl::StrCat(req->parent(), "/webhooks");
        RETURN_IF_ERROR(ValidateWebhook(
            in, manager_->options().allow_private_webhook_urls));
        if (!manager_->options().webhook_delivery_available) {
          // Honest refusal: storing the subscription would promise POSTs
          // that this server does not make yet.
          return Error(absl::StatusCode::kUnimplemented,
                       "WEBHOOK_DELIVERY_UNAVAILABLE",
                       "signed webhook delivery is not available on this "
                       "server yet; nothing was stored. Use WatchEvents or "
                       "ListEvents");
        }
        manager_->CreateWebhook(call, std::move(in),
                                [finish, resp](absl::StatusOr<Webhook> w) {
                                  if (!w.ok()) return finish(w.status());
                                  ToProto(*w, resp->mutable_webhook());
                                  finish(absl::OkStatus());
                                });
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* EventsGrpc::DeleteWebhook(
    grpc::CallbackServerContext* ctx, const v1::DeleteWebhookRequest* req,
    v1::DeleteWebhookResponse* resp) {
  return RunUnary(
      ctx, edge_.edge, EVENTS_METHOD(DeleteWebhook), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        (void)resp;
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kWebhookPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_.edge, call, name));
        manager_->DeleteWebhook(
            call, name.Get("tenant"), name.Get("webhook"),
            [finish](absl::StatusOr<bool> r) { finish(r.status()); });
        return absl::OkStatus();
      });
}

grpc::ServerWriteReactor<v1::WatchEventsResponse>* EventsGrpc::WatchEvents(
    grpc::CallbackServerContext* ctx, const v1::WatchEventsRequest* req) {
  using Stream = CursorStream<v1::WatchEventsResponse>;
  auto* stream = new Stream(edge_);
  CallContext& call = stream->call();
  bool acquired = false;
  absl::Status started =
      BeginStreamCall(ctx, edge_, EVENTS_METHOD(WatchEvents), call, &acquired);
  stream->set_acquired_stream(acquired);
  events::EventQuery query;
  int64_t start = 0;
  if (started.ok()) {
    started = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(
          ResourceName parent,
          ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
      RETURN_IF_ERROR(Authorize(edge_.edge, call, parent));
      ASSIGN_OR_RETURN(EventFilter filter, FilterOf(parent, *req));
      std::optional<int64_t> after;
      if (req->has_after_cursor()) after = req->after_cursor();
      ASSIGN_OR_RETURN(start, manager_->ResolveWatchStart(call, filter, after));
      ASSIGN_OR_RETURN(query, manager_->QueryFor(filter, start));
      return absl::OkStatus();
    }();
  }
  if (!started.ok()) {
    stream->Reject(started);
    return stream;
  }
  const std::string tenant = query.tenant;
  stream->Start(tenant, start,
                [manager = manager_, query](
                    int64_t after) mutable -> absl::StatusOr<Stream::Batch> {
                  query.after = after;
                  ASSIGN_OR_RETURN(events::EventBatch events,
                                   manager->ReadForWatch(query));
                  Stream::Batch batch;
                  batch.scanned_through = events.scanned_through;
                  batch.more = events.more;
                  for (const events::EventRecord& e : events.events) {
                    ToProto(e, batch.items.emplace_back().mutable_event());
                  }
                  return batch;
                });
  return stream;
}

}  // namespace careseal::messaging
