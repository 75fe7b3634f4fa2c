#include "clients/cpp/followup_client.h"

namespace careseal::client {
namespace {

using Stub = careseal::v1::FollowUpService::Stub;
}  // namespace

#define CARESEAL_FOLLOWUP_RPC(Name)                                      \
  absl::StatusOr<careseal::v1::Name##Response> FollowUpClient::Name(     \
      careseal::v1::Name##Request request, const CallOptions& options) { \
    return internal::CallUnary(*stub_, &Stub::Name, request, options);   \
  }
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

}  // namespace careseal::client
