// careseal.v1.PreSessionService for C++ callers (EHR integrations, clinician
// tools, the portal). Every mutation carries a request_id (generated if empty
// and kept across retries), so a retried MoveSession or
// AcknowledgeInstructions takes effect once.
#ifndef CARESEAL_CLIENTS_CPP_PRESESSION_CLIENT_H_
#define CARESEAL_CLIENTS_CPP_PRESESSION_CLIENT_H_

#include <memory>

#include "careseal/v1/presession.grpc.pb.h"
#include "clients/cpp/client.h"

namespace careseal::client {

class PreSessionClient {
 public:
  explicit PreSessionClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(careseal::v1::PreSessionService::NewStub(channel)) {}

#define CARESEAL_PRESESSION_RPC(Name)                \
  absl::StatusOr<careseal::v1::Name##Response> Name( \
      careseal::v1::Name##Request request, const CallOptions& options = {});
  CARESEAL_PRESESSION_RPC(GetSessionSeries)
  CARESEAL_PRESESSION_RPC(ListSessionSeries)
  CARESEAL_PRESESSION_RPC(CreateSessionSeries)
  CARESEAL_PRESESSION_RPC(GetSession)
  CARESEAL_PRESESSION_RPC(ListSessions)
  CARESEAL_PRESESSION_RPC(CreateSession)
  CARESEAL_PRESESSION_RPC(GetInstructionTemplate)
  CARESEAL_PRESESSION_RPC(ListInstructionTemplates)
  CARESEAL_PRESESSION_RPC(CreateInstructionTemplate)
  CARESEAL_PRESESSION_RPC(GetInstructionTemplateVersion)
  CARESEAL_PRESESSION_RPC(ListInstructionTemplateVersions)
  CARESEAL_PRESESSION_RPC(ListInstructionDeliveries)
  CARESEAL_PRESESSION_RPC(GetInstructions)
  CARESEAL_PRESESSION_RPC(ListAttestations)
  CARESEAL_PRESESSION_RPC(GetPreSessionSettings)
  CARESEAL_PRESESSION_RPC(UpdatePreSessionSettings)
  CARESEAL_PRESESSION_RPC(CancelSessionSeries)
  CARESEAL_PRESESSION_RPC(MoveSession)
  CARESEAL_PRESESSION_RPC(CancelSession)
  CARESEAL_PRESESSION_RPC(CompleteSession)
  CARESEAL_PRESESSION_RPC(PublishInstructionTemplateVersion)
  CARESEAL_PRESESSION_RPC(AcknowledgeInstructions)
  CARESEAL_PRESESSION_RPC(CheckSessionReadiness)
  CARESEAL_PRESESSION_RPC(OverrideReadiness)
#undef CARESEAL_PRESESSION_RPC

 private:
  std::unique_ptr<careseal::v1::PreSessionService::Stub> stub_;
};

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_PRESESSION_CLIENT_H_
