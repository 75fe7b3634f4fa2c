// careseal.v1.MessagingService for C++ callers (clinician tools, the
// portal). Every mutation carries a request_id (generated if empty and kept
// across retries), so a retried SendMessage never sends twice.
//
// WatchInbox opens the live inbox; ResumeInbox keeps it open across
// reconnects (server restarts) from the last cursor, so nothing is missed
// or repeated.
#ifndef CARESEAL_CLIENTS_CPP_MESSAGING_CLIENT_H_
#define CARESEAL_CLIENTS_CPP_MESSAGING_CLIENT_H_

#include <functional>
#include <memory>
#include <optional>

#include "careseal/v1/messaging.grpc.pb.h"
#include "clients/cpp/client.h"
#include "clients/cpp/watch_stream.h"

namespace careseal::client {

class MessagingClient {
 public:
  explicit MessagingClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(careseal::v1::MessagingService::NewStub(channel)) {}

#define CARESEAL_MESSAGING_RPC(Name)                 \
  absl::StatusOr<careseal::v1::Name##Response> Name( \
      careseal::v1::Name##Request request, const CallOptions& options = {});
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

  using InboxStream = WatchStream<careseal::v1::WatchInboxResponse>;
  std::unique_ptr<InboxStream> WatchInbox(
      const careseal::v1::WatchInboxRequest& request,
      const WatchOptions& options = {});

  // Calls `on_update` for every update after `request.after_cursor` (unset:
  // from now), reconnecting after UNAVAILABLE from the last cursor, until
  // `on_update` returns false (then OK) or the stream fails for good.
  absl::Status ResumeInbox(
      careseal::v1::WatchInboxRequest request, const WatchOptions& options,
      const std::function<bool(const careseal::v1::WatchInboxResponse&)>&
          on_update);

 private:
  std::unique_ptr<careseal::v1::MessagingService::Stub> stub_;
};

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_MESSAGING_CLIENT_H_
