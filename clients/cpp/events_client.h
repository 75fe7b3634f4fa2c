// careseal.v1.EventService for C++ callers (EHR integrations): ListEvents,
// the WatchEvents stream, and webhook subscriptions. ResumeEvents keeps a
// watch going across server restarts from the last cursor received: persist
// that cursor and every event arrives once, in order.
#ifndef CARESEAL_CLIENTS_CPP_EVENTS_CLIENT_H_
#define CARESEAL_CLIENTS_CPP_EVENTS_CLIENT_H_

#include <functional>
#include <memory>

#include "careseal/v1/events.grpc.pb.h"
#include "clients/cpp/client.h"
#include "clients/cpp/watch_stream.h"

namespace careseal::client {

class EventsClient {
 public:
  explicit EventsClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(careseal::v1::EventService::NewStub(channel)) {}

#define CARESEAL_EVENTS_RPC(Name)                    \
  absl::StatusOr<careseal::v1::Name##Response> Name( \
      careseal::v1::Name##Request request, const CallOptions& options = {});
  CARESEAL_EVENTS_RPC(ListEvents)
  CARESEAL_EVENTS_RPC(GetWebhook)
  CARESEAL_EVENTS_RPC(ListWebhooks)
  CARESEAL_EVENTS_RPC(CreateWebhook)
  CARESEAL_EVENTS_RPC(DeleteWebhook)
#undef CARESEAL_EVENTS_RPC

  using EventStream = WatchStream<careseal::v1::WatchEventsResponse>;
  std::unique_ptr<EventStream> WatchEvents(
      const careseal::v1::WatchEventsRequest& request,
      const WatchOptions& options = {});

  // Calls `on_event` for each event after `request.after_cursor` (unset:
  // from now), reconnecting after UNAVAILABLE from the last cursor, until
  // `on_event` returns false (then OK) or the stream fails for good.
  absl::Status ResumeEvents(
      careseal::v1::WatchEventsRequest request, const WatchOptions& options,
      const std::function<bool(const careseal::v1::Event&)>& on_event);

 private:
  std::unique_ptr<careseal::v1::EventService::Stub> stub_;
};

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_EVENTS_CLIENT_H_
