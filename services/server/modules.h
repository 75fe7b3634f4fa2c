// The service modules a CareSeal process can host, by name, so that
// careseal-server (all of them) and the one-service binaries are built from
// the same code.
#ifndef CARESEAL_SERVICES_SERVER_MODULES_H_
#define CARESEAL_SERVICES_SERVER_MODULES_H_

#include <string>
#include <vector>

#include "services/common/grpc/server_env.h"

namespace careseal {

// Names: "consent" (more as the services land). An unknown name is an
// INVALID_ARGUMENT when the factory runs.
ModuleFactory ModulesFor(std::vector<std::string> names);

// Every module: what careseal-server runs.
std::vector<std::string> AllModules();

// main() of a process hosting `names`.
int RunModules(int argc, char** argv, const std::string& program,
               std::vector<std::string> names);

}  // namespace careseal

#endif  // CARESEAL_SERVICES_SERVER_MODULES_H_
