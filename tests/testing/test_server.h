// A real CareSeal server for integration tests: the given service modules on
// 127.0.0.1 port 0 behind mutual TLS (certificates from an in-memory TestCa),
// SQLite in a temporary directory (or, when CARESEAL_TEST_STORE=postgres, a
// database of its own in the test PostgreSQL cluster), a FakeClock the test
// moves, and channels for any SPIFFE identity through the public client
// library. Restart() stops and starts the server over the same database and
// keys.
#ifndef CARESEAL_TESTS_TESTING_TEST_SERVER_H_
#define CARESEAL_TESTS_TESTING_TEST_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "clients/cpp/client.h"
#include "services/common/clock.h"
#include "services/common/crypto/key_ring.h"
#include "services/common/crypto/random.h"
#include "services/common/grpc/server_env.h"
#include "services/common/sql/database.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace careseal::testing {

inline constexpr char kEhrA[] =
    "spiffe://careseal.local/tenant/clinic-a/ehr/epic";
inline constexpr char kEhrB[] =
    "spiffe://careseal.local/tenant/clinic-b/ehr/epic";
inline constexpr char kClinicianA[] =
    "spiffe://careseal.local/tenant/clinic-a/clinician/dr-a";
inline constexpr char kPortal[] = "spiffe://careseal.local/portal";
inline constexpr char kAdmin[] = "spiffe://careseal.local/admin";

class TestServer {
 public:
  // Aborts the test binary with a message if the server cannot start.
  explicit TestServer(std::vector<std::string> modules = {});
  ~TestServer();

  FakeClock& clock() { return clock_; }
  ServerEnv& env() { return env_; }
  int port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  // The modules, in the order given (for tests that reach into one).
  ServiceModule* module(size_t i) { return modules_.at(i).get(); }

  client::ChannelOptions ChannelOptionsFor(const std::string& spiffe_uri);
  std::shared_ptr<grpc::Channel> ChannelFor(const std::string& spiffe_uri);

  void Restart();

  // What the store holds, for checks that something is not stored in clear:
  // SQLite's database and WAL files, or every row of the PostgreSQL
  // database as text.
  std::string StoredBytes();

 private:
  void Start();
  void Stop();

  std::vector<std::string> module_names_;
  TempDir dir_;
  TestCa ca_ = TestCa::Create();
  FakeClock clock_;
  crypto::OpenSslRandom random_;
  std::unique_ptr<crypto::KeyRing> key_ring_;
  std::unique_ptr<TempPgDatabase> pg_;  // outlives db_
  std::unique_ptr<sql::Database> db_;
  std::unique_ptr<Sealer> sealer_;
  std::unique_ptr<Policy> policy_;
  AuthenticatorSlot authenticator_;
  InternalChannel internal_;
  ServerEnv env_;
  std::vector<std::unique_ptr<ServiceModule>> modules_;
  std::unique_ptr<ServerHost> host_;
  int port_ = 0;
};

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_TESTING_TEST_SERVER_H_
