// The reactor behind every unary CareSeal RPC (gRPC callback API). In order:
//   1. authenticate: peer identity (mTLS URI SAN) + end-user token ->
//      Principal (UNAUTHENTICATED otherwise);
//   2. the method's role row in the policy (PERMISSION_DENIED before the
//      request is even looked at; a method without a row is denied);
//   3. for mutations (requests with a request_id field): the request id's
//      format and the request's fingerprint (SHA-256 of the request without
//      its request_id), for AIP-155 retries;
//   4. the service's body: validate, authorize the scope, convert, call the
//      domain, convert back, finish;
//   5. unless the domain appended the call's audit event in its own
//      transaction, append it now (denials and failures included) and answer
//      only once it is durable: no access without its audit event.
// Nothing here blocks a gRPC thread: writes complete on the store's writer.
#ifndef CARESEAL_SERVICES_COMMON_GRPC_UNARY_CALL_H_
#define CARESEAL_SERVICES_COMMON_GRPC_UNARY_CALL_H_

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "services/common/clock.h"
#include "services/common/crypto/random.h"
#include "services/common/grpc/server_host.h"
#include "services/common/platform/call.h"
#include "services/common/platform/policy.h"
#include "services/common/sql/database.h"

namespace careseal {

// What a call presents besides its peer certificate (views into the call's
// metadata).
struct CallCredentials {
  // The `authorization: Bearer` token; "" if none (a value without the
  // "Bearer " prefix is passed on as an unparseable token).
  absl::string_view bearer_token;
  // The `careseal-break-glass` metadata: a grant name; "" if none.
  absl::string_view break_glass_grant;
};

// The credentials in `context`'s client metadata.
CallCredentials CredentialsOf(const grpc::CallbackServerContext& context);

// The metadata key naming a break-glass grant (identity.proto).
inline constexpr char kBreakGlassMetadata[] = "careseal-break-glass";

// Turns a peer and its bearer token (empty if none) into the call's
// principal. Thread-safe.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual absl::StatusOr<Principal> Authenticate(const PeerIdentity& peer,
                                                 absl::string_view bearer_token,
                                                 absl::Time now) const = 0;
  // With every credential of the call. An authenticator that knows no
  // break-glass grants refuses one (PERMISSION_DENIED
  // (BREAK_GLASS_GRANT_INVALID)); otherwise Authenticate.
  virtual absl::StatusOr<Principal> AuthenticateCall(
      const PeerIdentity& peer, const CallCredentials& credentials,
      absl::Time now) const;
};

// Principals from the peer certificate alone. A bearer token is refused
// (TOKEN_INVALID): this authenticator knows no issuers.
class PeerOnlyAuthenticator final : public Authenticator {
 public:
  absl::StatusOr<Principal> Authenticate(const PeerIdentity& peer,
                                         absl::string_view bearer_token,
                                         absl::Time now) const override;
};

// A stable place for the process's authenticator: the edge holds the slot;
// the identity module installs its token-aware authenticator at start-up.
// Until then (or without an identity module) peers act for themselves.
class AuthenticatorSlot final : public Authenticator {
 public:
  void Set(const Authenticator* authenticator) {
    current_.store(authenticator, std::memory_order_release);
  }
  absl::StatusOr<Principal> Authenticate(const PeerIdentity& peer,
                                         absl::string_view bearer_token,
                                         absl::Time now) const override {
    const Authenticator* a = current_.load(std::memory_order_acquire);
    return a != nullptr ? a->Authenticate(peer, bearer_token, now)
                        : fallback_.Authenticate(peer, bearer_token, now);
  }
  absl::StatusOr<Principal> AuthenticateCall(const PeerIdentity& peer,
                                             const CallCredentials& credentials,
                                             absl::Time now) const override {
    const Authenticator* a = current_.load(std::memory_order_acquire);
    return a != nullptr ? a->AuthenticateCall(peer, credentials, now)
                        : fallback_.AuthenticateCall(peer, credentials, now);
  }

 private:
  std::atomic<const Authenticator*> current_{nullptr};
  PeerOnlyAuthenticator fallback_;
};

// What every handler needs from its process. All outlive the server.
struct Edge {
  sql::Database* db = nullptr;
  const Clock* clock = nullptr;
  crypto::RandomSource* random = nullptr;
  const Policy* policy = nullptr;
  const Authenticator* authenticator = nullptr;
};

// Completes a call; copyable; only the first call has an effect.
using Finisher = std::function<void(absl::Status)>;

// Returns non-OK to fail the call at once (nothing was started); returns OK
// after calling `finish` or arranging for it to be called.
using UnaryBody =
    absl::AnyInvocable<absl::Status(CallContext& call, const Finisher& finish)>;

// The ServerConfig::on_refused_peer of a server with this edge: each call
// refused at the TLS identity check becomes an audit event in the
// deployment log (tenant "_"), role "unauthenticated", through the same
// group commit as every other call. Never blocks; an event that cannot be
// stored is lost only if the store itself is failing.
std::function<void(RefusedPeer)> AuditRefusedPeers(const Edge& edge);

grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context,
                                   const Edge& edge, const char* method,
                                   const google::protobuf::Message& request,
                                   UnaryBody body);

// Timestamps at the edge.
void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out);
absl::StatusOr<absl::Time> FromTimestamp(const google::protobuf::Timestamp& t,
                                         absl::string_view field);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_GRPC_UNARY_CALL_H_
