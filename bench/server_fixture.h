// The server under load and how its process is observed. Three kinds:
//  * in-process: the real modules plus the echo ceiling on one ServerHost in
//    the bench's own process (client and server share the process, so CPU
//    and RSS figures include the client);
//  * child: the bench binary re-executed as a server (`--serve_child`): the
//    very main() of careseal-server (RunServerMain over every module) with
//    the echo module added, measured through /proc/PID;
//  * remote: an existing server at --target (nothing measured server-side).
#ifndef CARESEAL_BENCH_SERVER_FIXTURE_H_
#define CARESEAL_BENCH_SERVER_FIXTURE_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "services/common/grpc/server_env.h"
#include "services/common/sql/database.h"

namespace careseal::bench {

// The files a local server runs from (a throwaway state directory).
struct ServerFiles {
  std::string dir;
  std::string db;
  // A libpq connection string (careseal-server's --postgres): the server
  // stores in PostgreSQL instead of the SQLite file `db`.
  std::string postgres;
  std::string key_dir;
  std::string master_key;
  std::string ca;    // CA that issued the client certificates
  std::string cert;  // server certificate and key
  std::string key;
};

// Creates `dir`/{keys,careseal.db} paths and a 32-byte master key (0600) if
// there is none yet.
absl::StatusOr<ServerFiles> PrepareStateDir(const std::string& dir,
                                            const std::string& certs_dir);

// The store the server of `files` runs on (SQLite, or PostgreSQL), opened
// as careseal-server opens it.
absl::StatusOr<std::unique_ptr<sql::Database>> OpenStore(
    const ServerFiles& files);

// Runs `script` (certs-example/gen-certs.sh) to make the development PKI in
// `out_dir`.
absl::Status MakeDevPki(const std::string& script, const std::string& out_dir);

// careseal-server's modules plus the echo ceiling.
ModuleFactory BenchModules();

struct ProcessSample {
  double cpu_seconds = 0;  // user + system
  int64_t rss_bytes = 0;   // VmRSS
  int64_t hwm_bytes = 0;   // VmHWM (peak RSS)
};

// Reads /proc/<pid>/stat and /proc/<pid>/status (pid 0: this process).
absl::StatusOr<ProcessSample> SampleProcess(pid_t pid);

class ServerUnderTest {
 public:
  virtual ~ServerUnderTest() = default;
  // host:port to dial.
  virtual std::string target() const = 0;
  // Human-readable: where it runs and what its samples cover.
  virtual std::string description() const = 0;
  // The server's process, if it can be observed; nullopt for a remote one.
  virtual std::optional<pid_t> pid() const = 0;
  // True if the bench's own client shares that process.
  virtual bool shares_process_with_client() const = 0;
};

absl::StatusOr<std::unique_ptr<ServerUnderTest>> StartInProcess(
    const ServerFiles& files);
// `self` is this binary (/proc/self/exe).
absl::StatusOr<std::unique_ptr<ServerUnderTest>> SpawnChild(
    const ServerFiles& files, const std::string& self);
std::unique_ptr<ServerUnderTest> Remote(const std::string& target);

// main() of the child server (`careseal-bench --serve_child ...`).
int RunChildServer(int argc, char** argv);

}  // namespace careseal::bench

#endif  // CARESEAL_BENCH_SERVER_FIXTURE_H_
