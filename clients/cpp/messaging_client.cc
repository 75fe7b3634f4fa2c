#include "clients/cpp/messaging_client.h"

namespace careseal::client {
namespace {

using Stub = careseal::v1::MessagingService::Stub;
}  // namespace

#define CARESEAL_MESSAGING_RPC(Name)                                     \
  absl::StatusOr<careseal::v1::Name##Response> MessagingClient::Name(    \
      careseal::v1::Name##Request request, const CallOptions& options) { \
    return internal::CallUnary(*stub_, &Stub::Name, request, options);   \
  }
CARESEAL_MESSAGING_RPC(GetThread)
CARESEAL_MESSAGING_RPC(ListThreads)
CARESEAL_MESSAGING_RPC(CreateThread)
CARESEAL_MESSAGING_RPC(GetMessage)
CARESEAL_MESSAGING_RPC(ListMessages)
CARESEAL_MESSAGING_RPC(GetUnreadCounts)
CARESEAL_MESSAGING_RPC(SendMessage)
CARESEAL_MESSAGING_RPC(MarkRead)
CARESEAL_MESSAGING_RPC(RetractMessage)
#undef CARESEAL_MESSAGING_RPC

std::unique_ptr<MessagingClient::InboxStream> MessagingClient::WatchInbox(
    const careseal::v1::WatchInboxRequest& request,
    const WatchOptions& options) {
  return std::make_unique<InboxStream>(
      options, [&](grpc::ClientContext* context) {
        return stub_->WatchInbox(context, request);
      });
}

absl::Status MessagingClient::ResumeInbox(
    careseal::v1::WatchInboxRequest request, const WatchOptions& options,
    const std::function<bool(const careseal::v1::WatchInboxResponse&)>&
        on_update) {
  const int64_t start =
      request.has_after_cursor() ? request.after_cursor() : -1;
  return internal::ResumeWatch<careseal::v1::WatchInboxResponse>(
      options, start,
      [&](int64_t after) {
        if (after >= 0) request.set_after_cursor(after);
        return WatchInbox(request, options);
      },
      [](const careseal::v1::WatchInboxResponse& r) { return r.cursor(); },
      on_update);
}

}  // namespace careseal::client
