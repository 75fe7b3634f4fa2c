// ServerHost runs a set of CareSeal services on one port behind mutual TLS:
// the server accepts only TLS connections whose client certificate verifies
// against the configured CA, takes the peer identity from the certificate's
// URI SAN (see services/common/identity.h), and refuses unknown identities
// with UNAUTHENTICATED before any handler runs (reporting each refusal to
// ServerConfig::on_refused_peer). It also serves gRPC health
// checking (per service) and server reflection, and applies explicit limits.
#ifndef CARESEAL_SERVICES_COMMON_GRPC_SERVER_HOST_H_
#define CARESEAL_SERVICES_COMMON_GRPC_SERVER_HOST_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/identity.h"

namespace careseal {

struct ServerTls {
  std::string ca_pem;    // CA bundle that client certificates must chain to
  std::string cert_pem;  // server certificate chain
  std::string key_pem;   // server private key
};

struct ServerLimits {
  int max_receive_message_bytes = 16 << 20;
  int max_send_message_bytes = 16 << 20;
  int max_metadata_bytes = 16 << 10;
  int max_concurrent_streams = 1024;  // per connection
  int keepalive_time_ms = 60'000;
  int keepalive_timeout_ms = 20'000;
  int min_client_ping_interval_ms = 30'000;  // stricter pings are abuse
  int max_connection_idle_ms = 30 * 60'000;
};

// A call refused before any handler because its client certificate, though
// issued by the trusted CA, names no CareSeal identity.
struct RefusedPeer {
  std::string method;   // "careseal.v1.ConsentService/GetConsent"
  std::string peer;     // the certificate's URI SANs (or CN), truncated
  absl::Status status;  // UNAUTHENTICATED, as the caller got it
};

struct ServerConfig {
  std::string listen_address = "127.0.0.1:0";
  ServerTls tls;
  // Plaintext without client certificates. Only for a developer's own
  // machine: Start() refuses it on any non-loopback address.
  bool insecure_for_local_dev = false;
  ServerLimits limits;
  // Called for every refused call, on a gRPC thread: must not block (the
  // server audits them: AuditRefusedPeers in unary_call.h).
  std::function<void(RefusedPeer)> on_refused_peer;
};

// A service implementation that the host serves. Implementations own their
// grpc::Service objects; the module must outlive the host.
class ServiceModule {
 public:
  virtual ~ServiceModule() = default;
  // Fully qualified service names, as used by health checking.
  virtual std::vector<std::string> ServiceNames() const = 0;
  virtual std::vector<grpc::Service*> GrpcServices() = 0;
};

// True for a call that came through ServerHost::InProcessChannel: it has no
// authenticated TLS peer and carries this process's in-process secret (256
// random bits made at start-up, compared in constant time). gRPC reports no
// usable peer address for in-process calls, so the secret is what tells them
// from a plaintext network call (--insecure_for_local_dev).
bool IsInProcessCall(const grpc::ServerContextBase& context);

class ServerHost {
 public:
  static absl::StatusOr<std::unique_ptr<ServerHost>> Start(
      const ServerConfig& config, const std::vector<ServiceModule*>& modules);
  ~ServerHost();

  int port() const { return port_; }
  // A channel into this server that never leaves the process, for one
  // service calling another through its contract. Calls on it act as
  // CareSeal itself (Role::kSystem); nothing outside the process can open one.
  // Each call carries the process's in-process secret (see IsInProcessCall).
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // Marks every service NOT_SERVING, stops accepting calls and waits up to
  // `grace` for in-flight calls to finish before cancelling them.
  void Shutdown(absl::Duration grace);
  void Wait();

 private:
  ServerHost() = default;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> service_names_;
  int port_ = 0;
  bool shut_down_ = false;
};

// The peer identity the host authenticated for this call. Returns
// UNAUTHENTICATED if none (e.g. an insecure local-development server).
absl::StatusOr<PeerIdentity> PeerOf(const grpc::ServerContextBase& context);

// True if `address` ("host:port") names a loopback interface.
bool IsLoopbackAddress(absl::string_view address);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_GRPC_SERVER_HOST_H_
