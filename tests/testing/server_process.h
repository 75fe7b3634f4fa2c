// careseal-server as a child process, for tests that need the real binary
// (tests/crash, tests/postgres): started on a free loopback port with the
// development PKI of certs-example/gen-certs.sh, on SQLite or PostgreSQL.
#ifndef CARESEAL_TESTS_TESTING_SERVER_PROCESS_H_
#define CARESEAL_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>

namespace careseal::testing {

class ServerProcess {
 public:
  struct Files {
    std::string certs, db, key_dir, log;
    // A libpq connection string: the server stores in PostgreSQL
    // (--postgres) instead of the SQLite file `db`.
    std::string postgres;
  };

  // Makes the development PKI in f.certs and a master key in f.key_dir.
  // Returns false (with a test failure) if either fails.
  static bool MakeFiles(const std::string& gen_certs, const Files& f);

  // Starts `binary` on a free loopback port and waits until it listens;
  // nullptr (with a test failure) if it does not.
  static std::unique_ptr<ServerProcess> Start(const std::string& binary,
                                              const Files& f);

  ~ServerProcess() { Kill(); }

  int port() const { return port_; }

  // SIGKILL, then reaps the process.
  void Kill();

 private:
  ServerProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  pid_t pid_;
  int stdout_fd_;
  int port_ = 0;
};

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_TESTING_SERVER_PROCESS_H_
