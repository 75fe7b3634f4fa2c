#include "tests/testing/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace careseal::testing {

bool ServerProcess::MakeFiles(const std::string& gen_certs, const Files& f) {
  if (std::system(
          absl::StrCat("bash '", gen_certs, "' '", f.certs, "' >/dev/null")
              .c_str()) != 0) {
    ADD_FAILURE() << "gen-certs.sh failed";
    return false;
  }
  if (std::system(absl::StrCat("mkdir -p '", f.key_dir,
                               "' && head -c 32 /dev/urandom > '", f.key_dir,
                               "/master.key' && chmod 600 '", f.key_dir,
                               "/master.key'")
                      .c_str()) != 0) {
    ADD_FAILURE() << "cannot make a master key in " << f.key_dir;
    return false;
  }
  return true;
}

std::unique_ptr<ServerProcess> ServerProcess::Start(const std::string& binary,
                                                    const Files& f) {
  std::vector<std::string> args = {
      binary,
      "--listen=127.0.0.1:0",
      absl::StrCat("--tls_ca=", f.certs, "/ca.crt"),
      absl::StrCat("--tls_cert=", f.certs, "/server.crt"),
      absl::StrCat("--tls_key=", f.certs, "/server.key"),
      f.postgres.empty() ? absl::StrCat("--db=", f.db)
                         : absl::StrCat("--postgres=", f.postgres),
      absl::StrCat("--key_dir=", f.key_dir)};
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return nullptr;
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], STDOUT_FILENO);
    const int log = open(f.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (log >= 0) dup2(log, STDERR_FILENO);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::unique_ptr<ServerProcess> server(new ServerProcess(pid, out[0]));
  std::string seen;
  for (int waited_ms = 0; waited_ms < 30'000; waited_ms += 100) {
    pollfd p = {out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    const ssize_t n = read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    seen.append(buf, n);
    const size_t at = seen.find("(port ");
    const size_t end = seen.find(',', at);
    if (at != std::string::npos && end != std::string::npos &&
        absl::SimpleAtoi(seen.substr(at + 6, end - at - 6), &server->port_)) {
      return server;
    }
  }
  ADD_FAILURE() << "careseal-server did not start; stdout: " << seen << "; see "
                << f.log;
  return nullptr;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  close(stdout_fd_);
  pid_ = -1;
}

}  // namespace careseal::testing
