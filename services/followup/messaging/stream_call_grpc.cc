#include "services/followup/messaging/stream_call_grpc.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/crypto/encoding.h"
#include "services/common/grpc/server_host.h"

namespace careseal::messaging {
bool StreamLimiter::Acquire(const std::string& actor) {
  absl::MutexLock lock(&mu_);
  int& n = open_[actor];
  if (n >= max_) return false;
  ++n;
  return true;
}

void StreamLimiter::Release(const std::string& actor) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(actor);
  if (it == open_.end()) return;
  if (--it->second <= 0) open_.erase(it);
}

absl::Status BeginStreamCall(grpc::CallbackServerContext* context,
                             const StreamEdge& stream, const char* method,
                             CallContext& call, bool* acquired_stream) {
  const Edge& edge = stream.edge;
  *acquired_stream = false;
  call.method = method;
  call.now = edge.clock->Now();
  call.correlation_id = crypto::HexEncode(edge.random->Bytes(12));
  absl::StatusOr<PeerIdentity> peer = PeerOf(*context);
  if (!peer.ok() && IsInProcessCall(*context)) {
    peer = PeerIdentity{PeerIdentity::Kind::kService, "", "internal", "inproc"};
  }
  if (!peer.ok()) {
    call.unauthenticated = true;
    return peer.status();
  }
  call.principal.peer = peer->uri;
  call.principal.actor = peer->uri;
  call.unauthenticated = true;  // until the authenticator accepts it
  absl::StatusOr<Principal> principal = edge.authenticator->AuthenticateCall(
      *peer, CredentialsOf(*context), call.now);
  if (!principal.ok()) return principal.status();
  call.principal = *std::move(principal);
  call.unauthenticated = false;
  if (!edge.policy->Allows(method, call.principal.role)) {
    return PermissionDenied(
        "ROLE_NOT_ALLOWED",
        absl::StrCat("the role ", RoleName(call.principal.role),
                     " may not call ", method));
  }
  if (!stream.limiter->Acquire(call.principal.actor)) {
    return Error(absl::StatusCode::kResourceExhausted, "TOO_MANY_STREAMS",
                 "too many open watch streams for this caller; close one");
  }
  *acquired_stream = true;
  return absl::OkStatus();
}

}  // namespace careseal::messaging
