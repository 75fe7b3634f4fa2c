// The gRPC edge of the follow-up service: careseal.v1.FollowUpService on the
// callback API. Handlers are thin (parse names, authorize the scope, convert,
// call FollowUpManager, convert back) and run through RunUnary. SendCheckIn
// delivers the check-in to the patient's inbox through the MessagingService
// contract over the process's in-process channel (as Role::kSystem), then
// stores it; nothing blocks a gRPC thread.
#ifndef CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_GRPC_H_
#define CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_GRPC_H_

#include "careseal/v1/followup.grpc.pb.h"
#include "services/common/grpc/server_env.h"
#include "services/common/grpc/unary_call.h"
#include "services/followup/service/followup_manager.h"

namespace careseal::followup {

// Adds the follow-up service's rows (method x role) to `policy`.
void AddFollowUpPolicy(Policy& policy);

class FollowUpGrpc final : public v1::FollowUpService::CallbackService {
 public:
  FollowUpGrpc(Edge edge, InternalChannel* internal, FollowUpManager* manager)
      : edge_(edge), internal_(internal), manager_(manager) {}

#define CARESEAL_FOLLOWUP_RPC(Name)                                \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx, \
                                 const v1::Name##Request* req,     \
                                 v1::Name##Response* resp) override;
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
  const Edge edge_;
  InternalChannel* const internal_;
  FollowUpManager* const manager_;
};

}  // namespace careseal::followup

#endif  // CARESEAL_SERVICES_FOLLOWUP_SERVICE_FOLLOWUP_GRPC_H_
