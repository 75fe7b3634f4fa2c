// careseal.v1.FollowUpService for C++ callers (clinician tools, the portal,
// the EHR). Every mutation carries a request_id (generated if empty and kept
// across retries), so a retried SubmitResponse never stores twice.
#ifndef CARESEAL_CLIENTS_CPP_FOLLOWUP_CLIENT_H_
#define CARESEAL_CLIENTS_CPP_FOLLOWUP_CLIENT_H_

#include <memory>

#include "careseal/v1/followup.grpc.pb.h"
#include "clients/cpp/client.h"

namespace careseal::client {

class FollowUpClient {
 public:
  explicit FollowUpClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(careseal::v1::FollowUpService::NewStub(channel)) {}

#define CARESEAL_FOLLOWUP_RPC(Name)                  \
  absl::StatusOr<careseal::v1::Name##Response> Name( \
      careseal::v1::Name##Request request, const CallOptions& options = {});
  CARESEAL_FOLLOWUP_RPC(GetInstrument)
  CARESEAL_FOLLOWUP_RPC(ListInstruments)
  CARESEAL_FOLLOWUP_RPC(GetCheckIn)
  CARESEAL_FOLLOWUP_RPC(ListCheckIns)
  CARESEAL_FOLLOWUP_RPC(GetQuestionnaireResponse)
  CARESEAL_FOLLOWUP_RPC(ListQuestionnaireResponses)
  CARESEAL_FOLLOWUP_RPC(GetOutcomeSeries)
  CARESEAL_FOLLOWUP_RPC(GetEscalation)
  CARESEAL_FOLLOWUP_RPC(ListEscalations)
  CARESEAL_FOLLOWUP_RPC(GetFollowUpSettings)
  CARESEAL_FOLLOWUP_RPC(UpdateFollowUpSettings)
  CARESEAL_FOLLOWUP_RPC(SendCheckIn)
  CARESEAL_FOLLOWUP_RPC(SubmitResponse)
  CARESEAL_FOLLOWUP_RPC(AcknowledgeEscalation)
#undef CARESEAL_FOLLOWUP_RPC

 private:
  std::unique_ptr<careseal::v1::FollowUpService::Stub> stub_;
};

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_FOLLOWUP_CLIENT_H_
