#include "clients/cpp/events_client.h"

namespace careseal::client {
namespace {

using Stub = careseal::v1::EventService::Stub;
}  // namespace

#define CARESEAL_EVENTS_RPC(Name)                                        \
  absl::StatusOr<careseal::v1::Name##Response> EventsClient::Name(       \
      careseal::v1::Name##Request request, const CallOptions& options) { \
    return internal::CallUnary(*stub_, &Stub::Name, request, options);   \
  }
CARESEAL_EVENTS_RPC(ListEvents)
CARESEAL_EVENTS_RPC(GetWebhook)
CARESEAL_EVENTS_RPC(ListWebhooks)
CARESEAL_EVENTS_RPC(CreateWebhook)
CARESEAL_EVENTS_RPC(DeleteWebhook)
#undef CARESEAL_EVENTS_RPC

std::unique_ptr<EventsClient::EventStream> EventsClient::WatchEvents(
    const careseal::v1::WatchEventsRequest& request,
    const WatchOptions& options) {
  return std::make_unique<EventStream>(
      options, [&](grpc::ClientContext* context) {
        return stub_->WatchEvents(context, request);
      });
}

absl::Status EventsClient::ResumeEvents(
    careseal::v1::WatchEventsRequest request, const WatchOptions& options,
    const std::function<bool(const careseal::v1::Event&)>& on_event) {
  const int64_t start =
      request.has_after_cursor() ? request.after_cursor() : -1;
  return internal::ResumeWatch<careseal::v1::WatchEventsResponse>(
      options, start,
      [&](int64_t after) {
        if (after >= 0) request.set_after_cursor(after);
        return WatchEvents(request, options);
      },
      [](const careseal::v1::WatchEventsResponse& r) {
        return r.event().cursor();
      },
      [&](const careseal::v1::WatchEventsResponse& r) {
        return on_event(r.event());
      });
}

}  // namespace careseal::client
