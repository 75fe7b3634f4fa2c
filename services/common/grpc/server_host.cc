#include "services/common/grpc/server_host.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/support/client_interceptor.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/clock.h"
#include "services/common/grpc/status_convert.h"
#include "services/common/status.h"

namespace careseal {
namespace {

// The peer identity of a TLS connection: exactly one spiffe:// URI SAN that
// names a CareSeal identity (the CN is never read).
absl::StatusOr<PeerIdentity> IdentityOf(const grpc::AuthContext& context) {
  std::vector<grpc::string_ref> uris =
      context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME);
  std::vector<std::string> spiffe;
  for (const auto& uri : uris) {
    std::string value(uri.data(), uri.size());
    if (absl::StartsWith(value, "spiffe://")) spiffe.push_back(value);
  }
  if (spiffe.size() != 1) {
    return Unauthenticated(
        "UNKNOWN_PEER_IDENTITY",
        "the client certificate must carry exactly one spiffe:// URI SAN "
        "naming a CareSeal identity");
  }
  return PeerIdentity::Parse(spiffe[0]);
}

// What the certificate says about itself, for the audit event of a refused
// call: its URI SANs, else its common name; at most 512 bytes.
std::string DescribePeer(const grpc::AuthContext& context) {
  std::string out;
  for (const auto& uri :
       context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    if (!out.empty()) out += ",";
    out.append(uri.data(), uri.size());
  }
  if (out.empty()) {
    for (const auto& cn :
         context.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      out = absl::StrCat("CN=", absl::string_view(cn.data(), cn.size()));
      break;
    }
  }
  if (out.size() > 512) out.resize(512);
  return out;
}

// Runs for every call on the server (before any handler, health checks and
// reflection included) and refuses unknown identities with UNAUTHENTICATED,
// reporting each refusal.
class PeerIdentityProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit PeerIdentityProcessor(std::function<void(RefusedPeer)> on_refused)
      : on_refused_(std::move(on_refused)) {}

  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata,
                       grpc::AuthContext* context,
                       OutputMetadata* /*consumed_auth_metadata*/,
                       OutputMetadata* /*response_metadata*/) override {
    absl::Status status = IdentityOf(*context).status();
    if (!status.ok() && on_refused_) {
      RefusedPeer refused;
      auto path = auth_metadata.find(":path");
      if (path != auth_metadata.end()) {
        absl::string_view method(path->second.data(), path->second.size());
        absl::ConsumePrefix(&method, "/");
        refused.method = std::string(method.substr(0, 256));
      } else {
        refused.method = "unknown";
      }
      refused.peer = DescribePeer(*context);
      refused.status = status;
      on_refused_(std::move(refused));
    }
    return ToGrpcStatus(status);
  }

 private:
  const std::function<void(RefusedPeer)> on_refused_;
};

constexpr char kInProcessHeader[] = "careseal-in-process";

// The process's in-process secret, hex; made once from the OS CSPRNG.
const std::string& InProcessSecret() {
  static const std::string* secret = [] {
    unsigned char bytes[32];
    if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();
    static const char kHex[] = "0123456789abcdef";
    auto* out = new std::string;
    for (unsigned char b : bytes) {
      out->push_back(kHex[b >> 4]);
      out->push_back(kHex[b & 15]);
    }
    return out;
  }();
  return *secret;
}

// Adds the in-process secret to every call of the in-process channel.
class InProcessMarker final : public grpc::experimental::Interceptor {
 public:
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::
                PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(kInProcessHeader,
                                                 InProcessSecret());
    }
    methods->Proceed();
  }
};

class InProcessMarkerFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new InProcessMarker;
  }
};

}  // namespace

bool IsInProcessCall(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) return false;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kInProcessHeader);
  if (it == metadata.end()) return false;
  const std::string& secret = InProcessSecret();
  return it->second.size() == secret.size() &&
         CRYPTO_memcmp(it->second.data(), secret.data(), secret.size()) == 0;
}

bool IsLoopbackAddress(absl::string_view address) {
  absl::string_view host = address;
  size_t colon = address.rfind(':');
  if (colon != absl::string_view::npos) host = address.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::StatusOr<PeerIdentity> PeerOf(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) return IdentityOf(*auth);
  return Unauthenticated("NO_PEER_IDENTITY",
                         "this call carries no authenticated peer identity");
}

absl::StatusOr<std::unique_ptr<ServerHost>> ServerHost::Start(
    const ServerConfig& config, const std::vector<ServiceModule*>& modules) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (config.insecure_for_local_dev) {
    if (!IsLoopbackAddress(config.listen_address)) {
      return InvalidField(
          "listen_address", "INSECURE_NON_LOOPBACK",
          "--insecure_for_local_dev only listens on loopback addresses "
          "(127.0.0.1, [::1], localhost)");
    }
    credentials = grpc::InsecureServerCredentials();
  } else {
    if (config.tls.ca_pem.empty() || config.tls.cert_pem.empty() ||
        config.tls.key_pem.empty()) {
      return InvalidField("tls", "TLS_MATERIAL_MISSING",
                          "a CA bundle, a server certificate and its key are "
                          "all required (see certs-example/README.md)");
    }
    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = config.tls.ca_pem;
    options.pem_key_cert_pairs.push_back(
        {config.tls.key_pem, config.tls.cert_pem});
    credentials = grpc::SslServerCredentials(options);
    credentials->SetAuthMetadataProcessor(
        std::make_shared<PeerIdentityProcessor>(config.on_refused_peer));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::unique_ptr<ServerHost> host(new ServerHost());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen_address, credentials, &host->port_);
  const ServerLimits& limits = config.limits;
  builder.SetMaxReceiveMessageSize(limits.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(limits.max_send_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE,
                             limits.max_metadata_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             limits.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             limits.keepalive_time_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             limits.keepalive_timeout_ms);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      limits.min_client_ping_interval_ms);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             limits.max_connection_idle_ms);
  for (ServiceModule* module : modules) {
    for (grpc::Service* service : module->GrpcServices()) {
      builder.RegisterService(service);
    }
    for (const std::string& name : module->ServiceNames()) {
      host->service_names_.push_back(name);
    }
  }
  host->server_ = builder.BuildAndStart();
  if (host->server_ == nullptr || host->port_ == 0) {
    return Error(absl::StatusCode::kUnavailable, "LISTEN_FAILED",
                 absl::StrCat("cannot listen on ", config.listen_address,
                              " (address in use, or bad TLS material)"));
  }
  grpc::HealthCheckServiceInterface* health =
      host->server_->GetHealthCheckService();
  health->SetServingStatus(true);
  for (const std::string& name : host->service_names_) {
    health->SetServingStatus(name, true);
  }
  return host;
}

ServerHost::~ServerHost() { Shutdown(absl::ZeroDuration()); }

void ServerHost::Shutdown(absl::Duration grace) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(absl::ToChronoTime(RealClock::Get()->Now() + grace));
  server_->Wait();
}

std::shared_ptr<grpc::Channel> ServerHost::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  std::vector<
      std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(std::make_unique<InProcessMarkerFactory>());
  return server_->experimental().InProcessChannelWithInterceptors(
      args, std::move(interceptors));
}

void ServerHost::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace careseal
