#include "clients/cpp/client.h"

#include <openssl/rand.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace careseal::client {
namespace {

constexpr char kDetailsUrl[] = "type.googleapis.com/google.rpc.Status";

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the ", what, " file '", path, "'"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::string> PemOrFile(const std::string& pem,
                                      const std::string& file,
                                      absl::string_view what) {
  if (!pem.empty()) return pem;
  if (file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", what, " is required (file or PEM)"));
  }
  return ReadFile(file, what);
}

bool Details(const absl::Status& status, google::rpc::Status* out) {
  auto payload = status.GetPayload(kDetailsUrl);
  return payload && out->ParseFromString(std::string(*payload));
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const ChannelOptions& options) {
  if (options.target.empty()) {
    return absl::InvalidArgumentError("a target (host:port) is required");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(-1);  // the server enforces its own limit
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  if (options.insecure_for_local_dev) {
    return grpc::CreateCustomChannel(options.target,
                                     grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  auto ca = PemOrFile(options.ca_pem, options.ca_file, "CA bundle");
  if (!ca.ok()) return ca.status();
  auto cert =
      PemOrFile(options.cert_pem, options.cert_file, "client certificate");
  if (!cert.ok()) return cert.status();
  auto key = PemOrFile(options.key_pem, options.key_file, "client key");
  if (!key.ok()) return key.status();
  ssl.pem_root_certs = *ca;
  ssl.pem_cert_chain = *cert;
  ssl.pem_private_key = *key;
  if (!options.server_name_override.empty()) {
    args.SetSslTargetNameOverride(options.server_name_override);
  }
  return grpc::CreateCustomChannel(options.target, grpc::SslCredentials(ssl),
                                   args);
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status result(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
  if (!status.error_details().empty()) {
    result.SetPayload(kDetailsUrl, absl::Cord(status.error_details()));
  }
  return result;
}

std::string ErrorReason(const absl::Status& status) {
  google::rpc::Status details;
  if (!Details(status, &details)) return "";
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

std::string ErrorField(const absl::Status& status) {
  google::rpc::Status details;
  if (!Details(status, &details)) return "";
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&bad) && bad.field_violations_size() > 0) {
      return bad.field_violations(0).field();
    }
  }
  return "";
}

std::string ErrorMetadata(const absl::Status& status, const std::string& key) {
  google::rpc::Status details;
  if (!Details(status, &details)) return "";
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) {
      auto it = info.metadata().find(key);
      return it != info.metadata().end() ? it->second : "";
    }
  }
  return "";
}

namespace {

std::string FormatUuid(const unsigned char (&b)[16]) {
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
      b[12], b[13], b[14], b[15]);
}

}  // namespace

std::string NewRequestId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) std::abort();
  const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  for (int i = 0; i < 6; ++i)
    b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = (b[6] & 0x0f) | 0x70;  // Version 7.
  b[8] = (b[8] & 0x3f) | 0x80;  // Variant 10xx.
  return FormatUuid(b);
}

std::string NewRandomRequestId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) std::abort();
  b[6] = (b[6] & 0x0f) | 0x40;  // Version 4.
  b[8] = (b[8] & 0x3f) | 0x80;  // Variant 10xx.
  return FormatUuid(b);
}

namespace internal {

void Prepare(grpc::ClientContext& context, const CallOptions& options) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
  if (!options.bearer_token.empty()) {
    context.AddMetadata("authorization",
                        absl::StrCat("Bearer ", options.bearer_token));
  }
  if (!options.break_glass_grant.empty()) {
    context.AddMetadata("careseal-break-glass", options.break_glass_grant);
  }
}

bool ShouldRetry(const grpc::Status& status, int attempt, int max_attempts,
                 bool retry_safe) {
  return retry_safe && attempt < max_attempts &&
         status.error_code() == grpc::StatusCode::UNAVAILABLE;
}

}  // namespace internal

HealthClient::HealthClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)) {}

absl::StatusOr<bool> HealthClient::Check(absl::string_view service,
                                         const CallOptions& options) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(std::string(service));
  grpc::health::v1::HealthCheckResponse response;
  absl::Status status = internal::Invoke(
      options, /*retry_safe=*/true, [&](grpc::ClientContext& context) {
        return stub->Check(&context, request, &response);
      });
  if (!status.ok()) return status;
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

}  // namespace careseal::client
