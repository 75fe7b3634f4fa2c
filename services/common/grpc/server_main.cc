#include "services/common/grpc/server_main.h"

#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/common/crypto/key_ring.h"
#include "services/common/events/event_log.h"
#include "services/common/sql/postgres_database.h"
#include "services/common/sql/sqlite_database.h"
#include "services/common/status.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7443",
          "address to listen on (host:port)");
ABSL_FLAG(std::string, tls_ca, "",
          "CA bundle (PEM) that client certificates must chain to");
ABSL_FLAG(std::string, tls_cert, "", "server certificate chain (PEM)");
ABSL_FLAG(std::string, tls_key, "", "server private key (PEM)");
ABSL_FLAG(std::string, db, "var/careseal.db",
          "SQLite database file (the embedded store)");
ABSL_FLAG(std::string, postgres, "",
          "store in PostgreSQL instead of the --db SQLite file: a libpq "
          "connection string or postgresql:// URI (passwords in PGPASSFILE, "
          "not here); any number of replicas may share one database "
          "(docs/POSTGRES.md)");
ABSL_FLAG(bool, wal_coalesce, true,
          "gather each group commit's WAL writes into one write, and a "
          "checkpoint's copies into runs (false: SQLite's own writes; for "
          "comparison)");
ABSL_FLAG(int, checkpoint_pages, 16384,
          "new WAL pages after which the checkpointer copies the WAL back "
          "into the database file");
ABSL_FLAG(std::string, key_dir, "var/keys",
          "directory of the signing keys and the master key (keep it off the "
          "database's disk backups)");
ABSL_FLAG(bool, insecure_for_local_dev, false,
          "serve plaintext without client certificates; refused on any "
          "non-loopback address");
ABSL_FLAG(int, shutdown_grace_seconds, 10,
          "how long in-flight calls may run after SIGTERM");
ABSL_FLAG(std::string, master_key_file, "",
          "32-byte master key that wraps the tenants' data keys (default: "
          "<key_dir>/master.key); never stored in the database");

namespace careseal {
namespace {

int g_signal_pipe[2] = {-1, -1};

void OnSignal(int) {
  char c = 1;
  ssize_t n = write(g_signal_pipe[1], &c, 1);
  (void)n;
}

absl::StatusOr<std::string> Slurp(const std::string& path,
                                  absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (path.empty() || !in) {
    return InvalidField(flag, "TLS_MATERIAL_MISSING",
                        absl::StrCat("cannot read --", flag, " '", path,
                                     "' (run certs-example/gen-certs.sh)"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int Fail(const std::string& program, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(),
               std::string(status.message()).c_str());
  return 1;
}

}  // namespace

void NormalizeFlagSpelling(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (arg[0] != '-' || arg[1] != '-') continue;
    for (char* p = arg + 2; *p != '\0' && *p != '='; ++p) {
      if (*p == '-') *p = '_';
    }
  }
}

void ConfigureProcessForServing() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Keep up to 64 MiB of freed heap at the top instead of trimming it back
  // to the OS after each burst of calls (and faulting it in again), and
  // grow the heap in 16 MiB steps. Bounded: RSS stays flat under load.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

int RunServerMain(int argc, char** argv, const std::string& program,
                  const ModuleFactory& factory) {
  ConfigureProcessForServing();
  absl::SetProgramUsageMessage(
      absl::StrCat(program, ": CareSeal gRPC services over mutual TLS"));
  NormalizeFlagSpelling(argc, argv);
  absl::ParseCommandLine(argc, argv);

  ServerConfig config;
  config.listen_address = absl::GetFlag(FLAGS_listen);
  config.insecure_for_local_dev = absl::GetFlag(FLAGS_insecure_for_local_dev);
  if (!config.insecure_for_local_dev) {
    auto ca = Slurp(absl::GetFlag(FLAGS_tls_ca), "tls_ca");
    auto cert = Slurp(absl::GetFlag(FLAGS_tls_cert), "tls_cert");
    auto key = Slurp(absl::GetFlag(FLAGS_tls_key), "tls_key");
    for (const auto* s : {&ca, &cert, &key}) {
      if (!s->ok()) return Fail(program, s->status());
    }
    config.tls = ServerTls{*ca, *cert, *key};
  }

  std::error_code ec;
  absl::StatusOr<std::unique_ptr<sql::Database>> db;
  if (const std::string postgres = absl::GetFlag(FLAGS_postgres);
      !postgres.empty()) {
    db = sql::PostgresDatabase::Open({.conninfo = postgres});
  } else {
    const std::string db_path = absl::GetFlag(FLAGS_db);
    std::filesystem::path parent = std::filesystem::path(db_path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (absl::GetFlag(FLAGS_checkpoint_pages) < 1) {
      return Fail(program,
                  absl::InvalidArgumentError(
                      "--checkpoint_pages must be a positive number of pages"));
    }
    db = sql::SqliteDatabase::Open(
        {.path = db_path,
         .checkpoint_pages = absl::GetFlag(FLAGS_checkpoint_pages),
         .coalesce_wal_writes = absl::GetFlag(FLAGS_wal_coalesce)});
  }
  if (!db.ok()) return Fail(program, db.status());

  ServerEnv env;
  env.db = db->get();
  env.clock = RealClock::Get();
  env.key_dir = absl::GetFlag(FLAGS_key_dir);
  std::filesystem::create_directories(env.key_dir, ec);
  std::string master_path = absl::GetFlag(FLAGS_master_key_file);
  if (master_path.empty()) master_path = env.key_dir + "/master.key";
  auto master = crypto::LoadMasterKeyFile(master_path);
  if (!master.ok()) {
    return Fail(program,
                absl::Status(master.status().code(),
                             absl::StrCat(master.status().message(),
                                          " (make one: head -c 32 /dev/urandom "
                                          "> ",
                                          master_path, " && chmod 600 ",
                                          master_path, ")")));
  }
  auto key_ring = crypto::KeyRing::Create(*master);
  if (!key_ring.ok()) return Fail(program, key_ring.status());
  crypto::OpenSslRandom random;
  Sealer sealer(key_ring->get(), &random, env.clock);
  Policy policy;
  AuthenticatorSlot authenticator;
  InternalChannel internal;
  env.random = &random;
  env.sealer = &sealer;
  env.policy = &policy;
  env.authenticator = &authenticator;
  env.internal = &internal;
  if (absl::Status s = db->get()->Migrate("sealer", SealerMigrations());
      !s.ok()) {
    return Fail(program, s);
  }

  auto modules = factory(env);
  if (!modules.ok()) return Fail(program, modules.status());
  // Replicas sharing the store: their events ring this process's watchers.
  auto other_processes = events::RingForOtherProcesses(**db);
  if (!other_processes.ok()) return Fail(program, other_processes.status());
  std::vector<ServiceModule*> raw;
  for (auto& m : *modules) raw.push_back(m.get());

  config.on_refused_peer = AuditRefusedPeers(env.edge());
  auto host = ServerHost::Start(config, raw);
  if (!host.ok()) return Fail(program, host.status());
  internal.Set((*host)->InProcessChannel());

  if (pipe(g_signal_pipe) != 0) return 1;
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  std::printf("%s listening on %s (port %d, %s)\n", program.c_str(),
              config.listen_address.c_str(), (*host)->port(),
              config.insecure_for_local_dev ? "INSECURE local development"
                                            : "mutual TLS");
  std::fflush(stdout);

  char c;
  while (read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
  std::printf("%s: shutting down, draining in-flight calls\n", program.c_str());
  std::fflush(stdout);
  (*host)->Shutdown(absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds)));
  host->reset();
  other_processes->reset();
  modules->clear();
  db->reset();  // flushes queued writes
  return 0;
}

}  // namespace careseal
