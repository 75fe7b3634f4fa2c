#include "bench/server_fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/echo_service.h"
#include "services/common/crypto/key_ring.h"
#include "services/common/grpc/server_main.h"
#include "services/common/macros.h"
#include "services/common/sql/postgres_database.h"
#include "services/common/sql/sqlite_database.h"
#include "services/server/modules.h"

ABSL_DECLARE_FLAG(bool, wal_coalesce);     // server_main.cc
ABSL_DECLARE_FLAG(int, checkpoint_pages);  // server_main.cc
ABSL_DECLARE_FLAG(std::string, postgres);  // server_main.cc

namespace careseal::bench {
namespace {

absl::StatusOr<std::string> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The server of RunServerMain (services/common/grpc/server_main.cc), built
// the same way, in this process: same store options, same environment, same
// modules, same ServerHost defaults (TLS, limits, threads).
class InProcessServer final : public ServerUnderTest {
 public:
  static absl::StatusOr<std::unique_ptr<ServerUnderTest>> Start(
      const ServerFiles& files) {
    std::unique_ptr<InProcessServer> s(new InProcessServer());
    ServerConfig config;
    config.listen_address = "127.0.0.1:0";
    ASSIGN_OR_RETURN(config.tls.ca_pem, Slurp(files.ca));
    ASSIGN_OR_RETURN(config.tls.cert_pem, Slurp(files.cert));
    ASSIGN_OR_RETURN(config.tls.key_pem, Slurp(files.key));
    ASSIGN_OR_RETURN(s->db_, OpenStore(files));
    ASSIGN_OR_RETURN(std::string master,
                     crypto::LoadMasterKeyFile(files.master_key));
    ASSIGN_OR_RETURN(s->key_ring_, crypto::KeyRing::Create(master));
    s->sealer_ = std::make_unique<Sealer>(s->key_ring_.get(), &s->random_,
                                          RealClock::Get());
    ServerEnv& env = s->env_;
    env.db = s->db_.get();
    env.clock = RealClock::Get();
    env.random = &s->random_;
    env.sealer = s->sealer_.get();
    env.policy = &s->policy_;
    env.authenticator = &s->authenticator_;
    env.internal = &s->internal_;
    env.key_dir = files.key_dir;
    RETURN_IF_ERROR(s->db_->Migrate("sealer", SealerMigrations()));
    ASSIGN_OR_RETURN(s->modules_, BenchModules()(env));
    std::vector<ServiceModule*> raw;
    for (auto& m : s->modules_) raw.push_back(m.get());
    ASSIGN_OR_RETURN(s->host_, ServerHost::Start(config, raw));
    s->internal_.Set(s->host_->InProcessChannel());
    return s;
  }

  ~InProcessServer() override {
    if (host_ != nullptr) host_->Shutdown(absl::Seconds(5));
    host_.reset();
    modules_.clear();
    db_.reset();
  }

  std::string target() const override {
    return absl::StrCat("127.0.0.1:", host_->port());
  }
  std::string description() const override {
    return "in-process (client and server share this process: CPU and RSS "
           "are the whole process's)";
  }
  std::optional<pid_t> pid() const override { return 0; }
  bool shares_process_with_client() const override { return true; }

 private:
  InProcessServer() = default;
  crypto::OpenSslRandom random_;
  std::unique_ptr<crypto::KeyRing> key_ring_;
  std::unique_ptr<sql::Database> db_;
  std::unique_ptr<Sealer> sealer_;
  Policy policy_;
  AuthenticatorSlot authenticator_;
  InternalChannel internal_;
  ServerEnv env_;
  std::vector<std::unique_ptr<ServiceModule>> modules_;
  std::unique_ptr<ServerHost> host_;
};

class ChildServer final : public ServerUnderTest {
 public:
  static absl::StatusOr<std::unique_ptr<ServerUnderTest>> Spawn(
      const ServerFiles& files, const std::string& self) {
    std::vector<std::string> args = {
        self,
        "--serve_child",
        "--listen=127.0.0.1:0",
        absl::StrCat("--tls_ca=", files.ca),
        absl::StrCat("--tls_cert=", files.cert),
        absl::StrCat("--tls_key=", files.key),
        files.postgres.empty() ? absl::StrCat("--db=", files.db)
                               : absl::StrCat("--postgres=", files.postgres),
        absl::StrCat("--wal_coalesce=", absl::GetFlag(FLAGS_wal_coalesce)),
        absl::StrCat("--checkpoint_pages=",
                     absl::GetFlag(FLAGS_checkpoint_pages)),
        absl::StrCat("--key_dir=", files.key_dir),
        absl::StrCat("--master_key_file=", files.master_key)};
    const std::string log = absl::StrCat(files.dir, "/server.log");
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], STDOUT_FILENO);
      const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (err >= 0) dup2(err, STDERR_FILENO);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(self.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    std::unique_ptr<ChildServer> child(new ChildServer(pid, out[0]));
    // "careseal-bench (server) listening on 127.0.0.1:0 (port N, ...)"
    std::string seen;
    const auto deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      pollfd p = {out[0], POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[512];
      const ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      seen.append(buf, n);
      const size_t at = seen.find("(port ");
      if (at == std::string::npos) continue;
      const size_t end = seen.find(',', at);
      if (end == std::string::npos) continue;
      int port = 0;
      if (absl::SimpleAtoi(seen.substr(at + 6, end - at - 6), &port)) {
        child->port_ = port;
        return child;
      }
    }
    return absl::UnavailableError(absl::StrCat(
        "the child server did not start; see ", log, " (stdout: ", seen, ")"));
  }

  ~ChildServer() override {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    close(stdout_fd_);
  }

  std::string target() const override {
    return absl::StrCat("127.0.0.1:", port_);
  }
  std::string description() const override {
    return absl::StrCat("child process ", pid_,
                        " (careseal-server's main + echo; CPU and RSS from "
                        "/proc/",
                        pid_, ")");
  }
  std::optional<pid_t> pid() const override { return pid_; }
  bool shares_process_with_client() const override { return false; }

 private:
  ChildServer(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  pid_t pid_;
  int stdout_fd_;
  int port_ = 0;
};

class RemoteServer final : public ServerUnderTest {
 public:
  explicit RemoteServer(std::string target) : target_(std::move(target)) {}
  std::string target() const override { return target_; }
  std::string description() const override {
    return absl::StrCat("remote server at ", target_,
                        " (server CPU and RSS not observed)");
  }
  std::optional<pid_t> pid() const override { return std::nullopt; }
  bool shares_process_with_client() const override { return false; }

 private:
  std::string target_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<sql::Database>> OpenStore(
    const ServerFiles& files) {
  if (!files.postgres.empty()) {
    return sql::PostgresDatabase::Open({.conninfo = files.postgres});
  }
  return sql::SqliteDatabase::Open(
      {.path = files.db,
       .checkpoint_pages = absl::GetFlag(FLAGS_checkpoint_pages),
       .coalesce_wal_writes = absl::GetFlag(FLAGS_wal_coalesce)});
}

absl::StatusOr<ServerFiles> PrepareStateDir(const std::string& dir,
                                            const std::string& certs_dir) {
  ServerFiles f;
  f.dir = dir;
  f.db = absl::StrCat(dir, "/careseal.db");
  f.postgres = absl::GetFlag(FLAGS_postgres);
  f.key_dir = absl::StrCat(dir, "/keys");
  f.master_key = absl::StrCat(f.key_dir, "/master.key");
  f.ca = absl::StrCat(certs_dir, "/ca.crt");
  f.cert = absl::StrCat(certs_dir, "/server.crt");
  f.key = absl::StrCat(certs_dir, "/server.key");
  std::error_code ec;
  std::filesystem::create_directories(f.key_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", f.key_dir, ": ", ec.message()));
  }
  if (!std::filesystem::exists(f.master_key)) {
    crypto::OpenSslRandom random;
    const std::string key = random.Bytes(32);
    const int fd =
        open(f.master_key.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 ||
        write(fd, key.data(), key.size()) != static_cast<ssize_t>(key.size())) {
      if (fd >= 0) close(fd);
      return absl::InternalError(
          absl::StrCat("cannot write the master key ", f.master_key));
    }
    close(fd);
  }
  return f;
}

absl::Status MakeDevPki(const std::string& script, const std::string& out_dir) {
  const std::string command =
      absl::StrCat("bash '", script, "' '", out_dir, "' >/dev/null");
  if (std::system(command.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("'", command, "' failed"));
  }
  return absl::OkStatus();
}

ModuleFactory BenchModules() {
  ModuleFactory real = ModulesFor(AllModules());
  return [real](ServerEnv& env)
             -> absl::StatusOr<std::vector<std::unique_ptr<ServiceModule>>> {
    ASSIGN_OR_RETURN(auto modules, real(env));
    modules.push_back(std::make_unique<EchoModule>());
    return modules;
  };
}

absl::StatusOr<ProcessSample> SampleProcess(pid_t pid) {
  const std::string base =
      pid == 0 ? std::string("/proc/self") : absl::StrCat("/proc/", pid);
  ASSIGN_OR_RETURN(std::string stat, Slurp(base + "/stat"));
  // Fields after the command name (which may contain spaces) start at ") ".
  const size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) {
    return absl::InternalError("unreadable /proc stat");
  }
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(close_paren + 2), ' ');
  // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 here.
  int64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::InternalError("unreadable /proc stat times");
  }
  ProcessSample sample;
  sample.cpu_seconds =
      static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
  ASSIGN_OR_RETURN(std::string status, Slurp(base + "/status"));
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    int64_t* out = nullptr;
    if (absl::ConsumePrefix(&line, "VmRSS:")) out = &sample.rss_bytes;
    if (absl::ConsumePrefix(&line, "VmHWM:")) out = &sample.hwm_bytes;
    if (out == nullptr) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, " kB");
    int64_t kb = 0;
    if (absl::SimpleAtoi(line, &kb)) *out = kb * 1024;
  }
  return sample;
}

absl::StatusOr<std::unique_ptr<ServerUnderTest>> StartInProcess(
    const ServerFiles& files) {
  return InProcessServer::Start(files);
}

absl::StatusOr<std::unique_ptr<ServerUnderTest>> SpawnChild(
    const ServerFiles& files, const std::string& self) {
  return ChildServer::Spawn(files, self);
}

std::unique_ptr<ServerUnderTest> Remote(const std::string& target) {
  return std::make_unique<RemoteServer>(target);
}

int RunChildServer(int argc, char** argv) {
  return RunServerMain(argc, argv, "careseal-bench (server)", BenchModules());
}

}  // namespace careseal::bench
