#include "clients/cpp/presession_client.h"

namespace careseal::client {
namespace {

using Stub = careseal::v1::PreSessionService::Stub;
}  // namespace

#define CARESEAL_PRESESSION_RPC(Name)                                    \
  absl::StatusOr<careseal::v1::Name##Response> PreSessionClient::Name(   \
      careseal::v1::Name##Request request, const CallOptions& options) { \
    return internal::CallUnary(*stub_, &Stub::Name, request, options);   \
  }
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

}  // namespace careseal::client
