#include "services/common/grpc/unary_call.h"

#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/grpc/server_host.h"
#include "services/common/grpc/status_convert.h"
#include "services/common/platform/audit_batcher.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/idempotency.h"
#include "services/common/status.h"

namespace careseal {
namespace {

class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  explicit UnaryCall(const Edge& edge) : edge_(edge) {}

  void OnDone() override { delete this; }

  CallContext& call() { return call_; }

  // Finishes exactly once, after the call's audit event is durable.
  void Complete(absl::Status status) {
    if (completed_.exchange(true)) return;
    if (status.ok() && call_.audited) {
      Finish(grpc::Status::OK);
      return;
    }
    absl::StatusOr<PreparedAuditEvent> event = PrepareAuditEvent(call_, status);
    auto answer = [this, status](absl::Status audit) {
      if (!audit.ok() && status.ok()) {
        Finish(ToGrpcStatus(
            Error(absl::StatusCode::kUnavailable, "AUDIT_UNAVAILABLE",
                  "the call could not be audited, so it was not answered; "
                  "retry (with the same request_id)")));
        return;
      }
      Finish(ToGrpcStatus(status));
    };
    if (!event.ok()) return answer(event.status());
    AuditBatcher::For(edge_.db).Append(*std::move(event), std::move(answer));
  }

 private:
  const Edge& edge_;
  CallContext call_;
  std::atomic<bool> completed_{false};
};

absl::Status Fingerprint(const google::protobuf::Message& request,
                         CallContext& call) {
  const google::protobuf::FieldDescriptor* field =
      request.GetDescriptor()->FindFieldByName("request_id");
  if (field == nullptr ||
      field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
    return absl::OkStatus();  // a read
  }
  call.request_id = request.GetReflection()->GetString(request, field);
  if (absl::Status s = CheckRequestId(call.request_id); !s.ok()) {
    call.request_id.clear();
    return s;
  }
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  copy->GetReflection()->ClearField(copy.get(), field);
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  copy->SerializeToCodedStream(&coded);
  coded.Trim();
  call.request_fingerprint = crypto::Sha256(bytes);
  return absl::OkStatus();
}

}  // namespace

CallCredentials CredentialsOf(const grpc::CallbackServerContext& context) {
  CallCredentials out;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    absl::string_view value(it->second.data(), it->second.size());
    out.bearer_token =
        absl::ConsumePrefix(&value, "Bearer ") ? value : "\x01malformed";
  }
  if (auto it = metadata.find(kBreakGlassMetadata); it != metadata.end()) {
    out.break_glass_grant =
        absl::string_view(it->second.data(), it->second.size());
  }
  return out;
}

absl::StatusOr<Principal> Authenticator::AuthenticateCall(
    const PeerIdentity& peer, const CallCredentials& credentials,
    absl::Time now) const {
  if (!credentials.break_glass_grant.empty()) {
    return PermissionDenied("BREAK_GLASS_GRANT_INVALID",
                            "this server knows no break-glass grants");
  }
  return Authenticate(peer, credentials.bearer_token, now);
}

absl::StatusOr<Principal> PeerOnlyAuthenticator::Authenticate(
    const PeerIdentity& peer, absl::string_view bearer_token,
    absl::Time) const {
  if (!bearer_token.empty()) {
    return Unauthenticated("TOKEN_INVALID",
                           "no token issuer is registered for this peer");
  }
  return PrincipalForPeer(peer);
}

std::function<void(RefusedPeer)> AuditRefusedPeers(const Edge& edge) {
  return [edge](RefusedPeer refused) {
    CallContext call;
    call.method = std::move(refused.method);
    call.now = edge.clock->Now();
    call.correlation_id = crypto::HexEncode(edge.random->Bytes(12));
    call.principal.peer = refused.peer;
    call.principal.actor = std::move(refused.peer);
    call.unauthenticated = true;
    absl::StatusOr<PreparedAuditEvent> event =
        PrepareAuditEvent(call, refused.status);
    if (!event.ok()) return;
    // The caller is refused whatever happens to its event.
    AuditBatcher::For(edge.db).Append(*std::move(event), [](absl::Status) {});
  };
}

grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context,
                                   const Edge& edge, const char* method,
                                   const google::protobuf::Message& request,
                                   UnaryBody body) {
  auto* reactor = new UnaryCall(edge);
  CallContext& call = reactor->call();
  call.method = method;
  call.now = edge.clock->Now();
  call.correlation_id = crypto::HexEncode(edge.random->Bytes(12));
  Finisher finish = [reactor](absl::Status s) {
    reactor->Complete(std::move(s));
  };

  absl::StatusOr<PeerIdentity> peer = PeerOf(*context);
  if (!peer.ok() && IsInProcessCall(*context)) {
    // A call from another service of this process through its in-process
    // channel (ServerHost::InProcessChannel): CareSeal itself.
    peer = PeerIdentity{PeerIdentity::Kind::kService, "", "internal", "inproc"};
  }
  if (!peer.ok()) {
    call.unauthenticated = true;
    finish(peer.status());
    return reactor;
  }
  call.principal.peer = peer->uri;
  call.principal.actor = peer->uri;
  call.unauthenticated = true;  // until the authenticator accepts it
  absl::StatusOr<Principal> principal = edge.authenticator->AuthenticateCall(
      *peer, CredentialsOf(*context), call.now);
  if (!principal.ok()) {
    finish(principal.status());
    return reactor;
  }
  call.principal = *std::move(principal);
  call.unauthenticated = false;
  if (!edge.policy->Allows(method, call.principal.role)) {
    finish(PermissionDenied(
        "ROLE_NOT_ALLOWED",
        absl::StrCat("the role ", RoleName(call.principal.role),
                     " may not call ", method)));
    return reactor;
  }
  if (call.principal.role == Role::kBreakGlass &&
      call.now >= call.principal.break_glass_until) {
    // Refused before the body, whatever it authorizes; audited with the
    // grant.
    finish(BreakGlassExpired());
    return reactor;
  }
  if (absl::Status s = Fingerprint(request, call); !s.ok()) {
    finish(s);
    return reactor;
  }
  absl::Status started = body(call, finish);
  if (!started.ok()) finish(started);
  return reactor;
}

void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1'000'000;
  int64_t rem = micros % 1'000'000;
  if (rem < 0) {
    rem += 1'000'000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rem * 1000));
}

absl::StatusOr<absl::Time> FromTimestamp(const google::protobuf::Timestamp& t,
                                         absl::string_view field) {
  // 0001-01-01 .. 9999-12-31, as google.protobuf.Timestamp defines.
  if (t.seconds() < -62135596800 || t.seconds() > 253402300799 ||
      t.nanos() < 0 || t.nanos() > 999999999) {
    return InvalidField(field, "INVALID_TIME",
                        absl::StrCat(field, " is not a valid timestamp"));
  }
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace careseal
