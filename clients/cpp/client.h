// The public C++ client of CareSeal. It depends on the contracts
// (proto/careseal/v1) and gRPC only, never on the services' code.
//
//   careseal::client::ChannelOptions options;
//   options.target = "127.0.0.1:7443";
//   options.ca_file = "certs-example/out/ca.crt";
//   options.cert_file = "certs-example/out/ehr-demo.crt";
//   options.key_file = "certs-example/out/ehr-demo.key";
//   auto channel = careseal::client::MakeChannel(options);
//   careseal::client::HealthClient health(*channel);
//   absl::StatusOr<bool> serving = health.Check("");
//
// Every call takes CallOptions: a deadline (always set; default 10 s), the
// end user's bearer token, and for mutations the request_id that makes a
// retry safe. Calls are retried on UNAVAILABLE only when they are reads or
// carry a request_id.
#ifndef CARESEAL_CLIENTS_CPP_CLIENT_H_
#define CARESEAL_CLIENTS_CPP_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace careseal::client {

struct ChannelOptions {
  std::string target;     // host:port
  std::string ca_file;    // CA bundle that the server certificate chains to
  std::string cert_file;  // this client's certificate (URI SAN identity)
  std::string key_file;   // its private key
  // PEM contents instead of files (used when non-empty).
  std::string ca_pem, cert_pem, key_pem;
  // Only for a server started with --insecure_for_local_dev on loopback.
  bool insecure_for_local_dev = false;
  // Overrides the name checked against the server certificate.
  std::string server_name_override;
  int max_message_bytes = 16 << 20;
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const ChannelOptions& options);

struct CallOptions {
  absl::Duration timeout = absl::Seconds(10);
  std::string bearer_token;  // the end user's session token, if any
  // A break-glass grant (tenants/{t}/clinicians/{c}/breakGlassGrants/{g})
  // the clinician of bearer_token acts under; sent as careseal-break-glass.
  std::string break_glass_grant;
  std::string request_id;  // mutations: a UUID; generated if empty
  int max_attempts = 3;    // for retryable calls
};

// Converts a gRPC status to absl::Status keeping the rich details, so that
// ErrorReason() and ErrorField() can read them.
absl::Status FromGrpcStatus(const grpc::Status& status);
// google.rpc.ErrorInfo.reason of an error returned by this client.
std::string ErrorReason(const absl::Status& status);
// The first google.rpc.BadRequest field violation's field, if any.
std::string ErrorField(const absl::Status& status);
// google.rpc.ErrorInfo.metadata[key] of an error returned by this client
// ("" if absent), e.g. "attempts_remaining" on SECOND_FACTOR_MISMATCH.
std::string ErrorMetadata(const absl::Status& status, const std::string& key);

// A fresh request id: a time-ordered UUID (version 7, RFC 9562 section
// 5.7): 48 bits of Unix milliseconds, then 74 random bits. Ids made later
// sort after earlier ones, so the server remembers them at the end of its
// request-id index rather than on a random page of it; the random bits keep
// them unguessable and unique.
std::string NewRequestId();

// A fresh random request id (UUID version 4). Any UUID is accepted; the
// server's writes are cheaper with NewRequestId's time-ordered ones.
std::string NewRandomRequestId();

namespace internal {
void Prepare(grpc::ClientContext& context, const CallOptions& options);
bool ShouldRetry(const grpc::Status& status, int attempt, int max_attempts,
                 bool retry_safe);

// Runs `call(context)` with retries as allowed. `retry_safe` is true for
// reads and for mutations that carry a request_id.
template <typename Call>
absl::Status Invoke(const CallOptions& options, bool retry_safe, Call call) {
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext context;
    Prepare(context, options);
    grpc::Status status = call(context);
    if (status.ok()) return absl::OkStatus();
    if (!ShouldRetry(status, attempt, options.max_attempts, retry_safe)) {
      return FromGrpcStatus(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50 << attempt));
  }
}

// Gives a mutation its request id once, before any attempt, so that every
// retry carries the same one.
template <typename Request>
void EnsureRequestId(Request& request) {
  if constexpr (requires { request.request_id(); }) {
    if (request.request_id().empty()) request.set_request_id(NewRequestId());
  }
}

// One unary call of a generated stub's blocking method, with a request id
// and the retries Invoke allows.
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> CallUnary(
    Stub& stub,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    Request& request, const CallOptions& options) {
  EnsureRequestId(request);
  Response response;
  absl::Status status =
      Invoke(options, /*retry_safe=*/true, [&](grpc::ClientContext& context) {
        response.Clear();
        return (stub.*method)(&context, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}
}  // namespace internal

// grpc.health.v1.Health.
class HealthClient {
 public:
  explicit HealthClient(std::shared_ptr<grpc::Channel> channel);
  // True if `service` ("" for the whole server) reports SERVING.
  absl::StatusOr<bool> Check(absl::string_view service,
                             const CallOptions& options = {});

 private:
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_CLIENT_H_
