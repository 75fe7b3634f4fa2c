// The gRPC edge of careseal.v1.EventService: ListEvents and WatchEvents (a
// CursorStream over the tenant's events) for the EHR, and webhook
// subscriptions. CreateWebhook answers UNIMPLEMENTED
// (WEBHOOK_DELIVERY_UNAVAILABLE) until signed delivery exists
// (events_manager.h).
#ifndef CARESEAL_SERVICES_FOLLOWUP_MESSAGING_EVENTS_GRPC_H_
#define CARESEAL_SERVICES_FOLLOWUP_MESSAGING_EVENTS_GRPC_H_

#include "careseal/v1/events.grpc.pb.h"
#include "services/common/grpc/unary_call.h"
#include "services/followup/messaging/events_manager.h"
#include "services/followup/messaging/stream_call_grpc.h"

namespace careseal::messaging {

void AddEventsPolicy(Policy& policy);

class EventsGrpc final : public v1::EventService::CallbackService {
 public:
  EventsGrpc(StreamEdge edge, EventsManager* manager)
      : edge_(edge), manager_(manager) {}

  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* ctx,
                                       const v1::ListEventsRequest* req,
                                       v1::ListEventsResponse* resp) override;
  grpc::ServerUnaryReactor* GetWebhook(grpc::CallbackServerContext* ctx,
                                       const v1::GetWebhookRequest* req,
                                       v1::GetWebhookResponse* resp) override;
  grpc::ServerUnaryReactor* ListWebhooks(
      grpc::CallbackServerContext* ctx, const v1::ListWebhooksRequest* req,
      v1::ListWebhooksResponse* resp) override;
  grpc::ServerUnaryReactor* CreateWebhook(
      grpc::CallbackServerContext* ctx, const v1::CreateWebhookRequest* req,
      v1::CreateWebhookResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteWebhook(
      grpc::CallbackServerContext* ctx, const v1::DeleteWebhookRequest* req,
      v1::DeleteWebhookResponse* resp) override;
  grpc::ServerWriteReactor<v1::WatchEventsResponse>* WatchEvents(
      grpc::CallbackServerContext* ctx,
      const v1::WatchEventsRequest* req) override;

 private:
  const StreamEdge edge_;
  EventsManager* const manager_;
};

}  // namespace careseal::messaging

#endif  // CARESEAL_SERVICES_FOLLOWUP_MESSAGING_EVENTS_GRPC_H_
