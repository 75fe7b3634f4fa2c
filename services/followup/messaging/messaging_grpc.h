// The gRPC edge of messaging: careseal.v1.MessagingService on the callback
// API. Unary handlers are thin (parse names, authorize the scope, convert,
// call MessagingManager, convert back) and run through RunUnary; WatchInbox
// is a CursorStream (stream_call_grpc.h) over the tenant's message events.
#ifndef CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_GRPC_H_
#define CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_GRPC_H_

#include "careseal/v1/messaging.grpc.pb.h"
#include "services/common/grpc/proto_role.h"
#include "services/common/grpc/unary_call.h"
#include "services/followup/messaging/messaging_manager.h"
#include "services/followup/messaging/stream_call_grpc.h"

namespace careseal::messaging {

// Adds the messaging service's rows (method x role) to `policy`.
void AddMessagingPolicy(Policy& policy);

// Contract conversion shared with the events edge.
void ToProto(const Actor& a, v1::Actor* out);

class MessagingGrpc final : public v1::MessagingService::CallbackService {
 public:
  MessagingGrpc(StreamEdge edge, MessagingManager* manager)
      : edge_(edge), manager_(manager) {}

  grpc::ServerUnaryReactor* GetThread(grpc::CallbackServerContext* ctx,
                                      const v1::GetThreadRequest* req,
                                      v1::GetThreadResponse* resp) override;
  grpc::ServerUnaryReactor* ListThreads(grpc::CallbackServerContext* ctx,
                                        const v1::ListThreadsRequest* req,
                                        v1::ListThreadsResponse* resp) override;
  grpc::ServerUnaryReactor* CreateThread(
      grpc::CallbackServerContext* ctx, const v1::CreateThreadRequest* req,
      v1::CreateThreadResponse* resp) override;
  grpc::ServerUnaryReactor* GetMessage(grpc::CallbackServerContext* ctx,
                                       const v1::GetMessageRequest* req,
                                       v1::GetMessageResponse* resp) override;
  grpc::ServerUnaryReactor* ListMessages(
      grpc::CallbackServerContext* ctx, const v1::ListMessagesRequest* req,
      v1::ListMessagesResponse* resp) override;
  grpc::ServerUnaryReactor* GetUnreadCounts(
      grpc::CallbackServerContext* ctx, const v1::GetUnreadCountsRequest* req,
      v1::GetUnreadCountsResponse* resp) override;
  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* ctx,
                                        const v1::SendMessageRequest* req,
                                        v1::SendMessageResponse* resp) override;
  grpc::ServerUnaryReactor* MarkRead(grpc::CallbackServerContext* ctx,
                                     const v1::MarkReadRequest* req,
                                     v1::MarkReadResponse* resp) override;
  grpc::ServerUnaryReactor* RetractMessage(
      grpc::CallbackServerContext* ctx, const v1::RetractMessageRequest* req,
      v1::RetractMessageResponse* resp) override;
  grpc::ServerWriteReactor<v1::WatchInboxResponse>* WatchInbox(
      grpc::CallbackServerContext* ctx,
      const v1::WatchInboxRequest* req) override;

 private:
  const StreamEdge edge_;
  MessagingManager* const manager_;
};

}  // namespace careseal::messaging

#endif  // CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_GRPC_H_
