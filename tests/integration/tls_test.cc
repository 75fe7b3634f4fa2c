// Mutual TLS at the front door: only certificates from the configured CA,
// currently valid, naming a CareSeal identity in their URI SAN, get in.
#include <grpcpp/grpcpp.h>

#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "services/common/grpc/server_host.h"
#include "tests/testing/test_pki.h"

namespace careseal {
namespace {

using ::careseal::testing::KeyAndCert;
using ::careseal::testing::TestCa;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KeyAndCert server = ca_.IssueServer();
    ServerConfig config;
    config.listen_address = "127.0.0.1:0";
    config.tls = ServerTls{ca_.cert_pem(), server.cert_pem, server.key_pem};
    auto host = ServerHost::Start(config, {});
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
  }

  client::ChannelOptions Options(const KeyAndCert& client) {
    client::ChannelOptions options;
    options.target = "localhost:" + std::to_string(host_->port());
    options.ca_pem = ca_.cert_pem();
    options.cert_pem = client.cert_pem;
    options.key_pem = client.key_pem;
    return options;
  }

  absl::StatusOr<bool> Health(const client::ChannelOptions& options) {
    auto channel = client::MakeChannel(options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    client::HealthClient health(*channel);
    client::CallOptions call;
    call.timeout = absl::Seconds(5);
    call.max_attempts = 1;
    return health.Check("", call);
  }

  TestCa ca_ = TestCa::Create();
  std::unique_ptr<ServerHost> host_;
};

TEST_F(TlsTest, HealthIsServingForAValidClientCertificate) {
  auto serving = Health(Options(
      ca_.IssueClient("spiffe://careseal.local/tenant/clinic-a/ehr/epic")));
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
}

TEST_F(TlsTest, EveryIdentityKindIsAccepted) {
  for (const char* uri :
       {"spiffe://careseal.local/portal", "spiffe://careseal.local/admin",
        "spiffe://careseal.local/tenant/clinic-a/clinician/dr-1",
        "spiffe://careseal.local/tenant/clinic-a/auditor/aud-1"}) {
    auto serving = Health(Options(ca_.IssueClient(uri)));
    EXPECT_TRUE(serving.ok()) << uri << ": " << serving.status();
  }
}

TEST_F(TlsTest, HandshakeFailsWithoutClientCertificate) {
  client::ChannelOptions options =
      Options(ca_.IssueClient("spiffe://careseal.local/portal"));
  // Server-authenticated TLS only: the client presents no certificate.
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_.cert_pem();
  auto channel = grpc::CreateChannel(options.target, grpc::SslCredentials(ssl));
  client::HealthClient health(channel);
  client::CallOptions call;
  call.timeout = absl::Seconds(5);
  call.max_attempts = 1;
  auto serving = health.Check("", call);
  EXPECT_EQ(serving.status().code(), absl::StatusCode::kUnavailable)
      << serving.status();
}

TEST_F(TlsTest, HandshakeFailsWithCertificateFromAnotherCa) {
  TestCa other = TestCa::Create("Some Other CA");
  client::ChannelOptions options = Options(
      other.IssueClient("spiffe://careseal.local/tenant/clinic-a/ehr/epic"));
  auto serving = Health(options);
  EXPECT_EQ(serving.status().code(), absl::StatusCode::kUnavailable)
      << serving.status();
}

TEST_F(TlsTest, HandshakeFailsWithExpiredCertificate) {
  absl::Time now = absl::Now();
  client::ChannelOptions options = Options(
      ca_.IssueClient("spiffe://careseal.local/tenant/clinic-a/ehr/epic",
                      now - absl::Hours(48), now - absl::Hours(24)));
  auto serving = Health(options);
  EXPECT_EQ(serving.status().code(), absl::StatusCode::kUnavailable)
      << serving.status();
}

TEST_F(TlsTest, UnknownSanIsUnauthenticated) {
  for (const char* uri : {"spiffe://evil.example/tenant/clinic-a/ehr/epic",
                          "spiffe://careseal.local/tenant/clinic-a/nurse/n1",
                          "spiffe://careseal.local/tenant/Clinic_A/ehr/epic",
                          "https://careseal.local/portal"}) {
    auto serving = Health(Options(ca_.IssueClient(uri)));
    EXPECT_EQ(serving.status().code(), absl::StatusCode::kUnauthenticated)
        << uri << ": " << serving.status();
  }
}

TEST_F(TlsTest, CertificateWithoutSanIsUnauthenticatedEvenWithAGoodCn) {
  // The CN must never be read as the identity.
  auto serving = Health(Options(ca_.IssueClientWithoutSan(
      "spiffe://careseal.local/tenant/clinic-a/ehr/epic")));
  EXPECT_EQ(serving.status().code(), absl::StatusCode::kUnauthenticated)
      << serving.status();
}

TEST_F(TlsTest, OversizedMessageIsResourceExhaustedAndServerSurvives) {
  client::ChannelOptions options =
      Options(ca_.IssueClient("spiffe://careseal.local/portal"));
  auto channel = client::MakeChannel(options);
  ASSERT_TRUE(channel.ok());
  client::HealthClient health(*channel);
  client::CallOptions call;
  call.max_attempts = 1;
  std::string huge(17 << 20, 'x');  // over the 16 MiB receive limit
  auto result = health.Check(huge, call);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted)
      << result.status();
  auto serving = health.Check("", call);
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
}

TEST(ServerHostTest, InsecureModeRefusesNonLoopbackAddresses) {
  ServerConfig config;
  config.insecure_for_local_dev = true;
  config.listen_address = "0.0.0.0:0";
  auto host = ServerHost::Start(config, {});
  EXPECT_EQ(host.status().code(), absl::StatusCode::kInvalidArgument);
  config.listen_address = "127.0.0.1:0";
  auto local = ServerHost::Start(config, {});
  EXPECT_TRUE(local.ok()) << local.status();
}

TEST(ServerHostTest, MissingTlsMaterialIsRefused) {
  ServerConfig config;
  auto host = ServerHost::Start(config, {});
  EXPECT_EQ(host.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace careseal
