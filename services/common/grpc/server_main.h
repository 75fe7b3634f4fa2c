// The main() shared by careseal-server and the one-service binaries: flags
// (Abseil flags; --flagfile works), TLS material, the store, signal handling
// and graceful shutdown. Each binary passes the factory of its modules.
#ifndef CARESEAL_SERVICES_COMMON_GRPC_SERVER_MAIN_H_
#define CARESEAL_SERVICES_COMMON_GRPC_SERVER_MAIN_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/grpc/server_env.h"

namespace careseal {

// Parses flags, opens the store, builds the modules, serves until SIGTERM or
// SIGINT, then drains in-flight calls. Returns the process exit code.
int RunServerMain(int argc, char** argv, const std::string& program,
                  const ModuleFactory& factory);

// Process-wide settings for a serving process (RunServerMain calls it):
// Abseil's Mutex deadlock-cycle detection off (Debian builds Abseil without
// NDEBUG, so every Mutex otherwise updates a global lock graph on each
// acquisition and destruction; tests keep it on), and glibc malloc told to
// keep freed memory instead of returning and re-faulting it on every burst.
void ConfigureProcessForServing();

// Accepts both --flag-name and --flag_name spellings (Abseil wants the
// latter); rewrites argv in place.
void NormalizeFlagSpelling(int argc, char** argv);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_GRPC_SERVER_MAIN_H_
