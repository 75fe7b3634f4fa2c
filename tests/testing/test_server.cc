#include "tests/testing/test_server.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "services/common/sql/postgres_database.h"
#include "services/common/sql/sqlite_database.h"
#include "services/server/modules.h"

ABSL_DECLARE_FLAG(int64_t, audit_checkpoint_interval_seconds);
ABSL_DECLARE_FLAG(int64_t, urgent_message_check_seconds);
ABSL_DECLARE_FLAG(int64_t, presession_scheduler_interval_seconds);
ABSL_DECLARE_FLAG(int64_t, consent_scheduler_interval_seconds);
ABSL_DECLARE_FLAG(int64_t, followup_scheduler_interval_seconds);

namespace careseal::testing {
namespace {

template <typename T>
T Must(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) {
    std::fprintf(stderr, "TestServer: %s: %s\n", what,
                 value.status().ToString().c_str());
    std::abort();
  }
  return *std::move(value);
}

}  // namespace

TestServer::TestServer(std::vector<std::string> modules)
    : module_names_(modules.empty() ? AllModules() : std::move(modules)),
      clock_(absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()))) {
  key_ring_ = Must(crypto::KeyRing::Create(random_.Bytes(32)), "key ring");
  // Tests drive time: the modules' real-time sweeps stay off, and tests call
  // what the sweeps would call on the fake clock.
  absl::SetFlag(&FLAGS_audit_checkpoint_interval_seconds, 0);
  absl::SetFlag(&FLAGS_urgent_message_check_seconds, 0);
  absl::SetFlag(&FLAGS_presession_scheduler_interval_seconds, 0);
  absl::SetFlag(&FLAGS_consent_scheduler_interval_seconds, 0);
  absl::SetFlag(&FLAGS_followup_scheduler_interval_seconds, 0);
  if (TestStoreIsPostgres()) pg_ = std::make_unique<TempPgDatabase>();
  Start();
}

TestServer::~TestServer() { Stop(); }

void TestServer::Start() {
  if (pg_ != nullptr) {
    db_ = Must(sql::PostgresDatabase::Open({.conninfo = pg_->conninfo()}),
               "database");
  } else {
    db_ = Must(sql::SqliteDatabase::Open({.path = dir_.File("careseal.db")}),
               "database");
  }
  sealer_ = std::make_unique<Sealer>(key_ring_.get(), &random_, &clock_);
  policy_ = std::make_unique<Policy>();
  if (absl::Status s = db_->Migrate("sealer", SealerMigrations()); !s.ok()) {
    std::fprintf(stderr, "TestServer: %s\n", s.ToString().c_str());
    std::abort();
  }
  env_ = ServerEnv{};
  env_.db = db_.get();
  env_.clock = &clock_;
  env_.random = &random_;
  env_.sealer = sealer_.get();
  env_.policy = policy_.get();
  env_.authenticator = &authenticator_;
  env_.internal = &internal_;
  env_.key_dir = dir_.File("keys");
  modules_ = Must(ModulesFor(module_names_)(env_), "modules");
  std::vector<ServiceModule*> raw;
  for (auto& m : modules_) raw.push_back(m.get());
  KeyAndCert server = ca_.IssueServer();
  ServerConfig config;
  config.tls = ServerTls{ca_.cert_pem(), server.cert_pem, server.key_pem};
  // A restart listens on the same port, so existing channels reconnect.
  config.listen_address = "127.0.0.1:" + std::to_string(port_);
  config.on_refused_peer = AuditRefusedPeers(env_.edge());
  host_ = Must(ServerHost::Start(config, raw), "server");
  port_ = host_->port();
  internal_.Set(host_->InProcessChannel());
}

void TestServer::Stop() {
  if (host_) host_->Shutdown(absl::Seconds(5));
  host_.reset();
  modules_.clear();
  db_.reset();
}

std::string TestServer::StoredBytes() {
  if (pg_ != nullptr) return pg_->DumpAllRows();
  std::string out;
  for (const char* file : {"/careseal.db", "/careseal.db-wal"}) {
    std::ifstream in(dir() + file, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    out += bytes.str();
  }
  return out;
}

void TestServer::Restart() {
  Stop();
  Start();
}

client::ChannelOptions TestServer::ChannelOptionsFor(
    const std::string& spiffe_uri) {
  KeyAndCert cert = ca_.IssueClient(spiffe_uri);
  client::ChannelOptions options;
  options.target = "localhost:" + std::to_string(port());
  options.ca_pem = ca_.cert_pem();
  options.cert_pem = cert.cert_pem;
  options.key_pem = cert.key_pem;
  return options;
}

std::shared_ptr<grpc::Channel> TestServer::ChannelFor(
    const std::string& spiffe_uri) {
  return Must(client::MakeChannel(ChannelOptionsFor(spiffe_uri)), "channel");
}

}  // namespace careseal::testing
