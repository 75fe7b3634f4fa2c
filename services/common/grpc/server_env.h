// ServerEnv: what a process gives its service modules. Everything here is
// created once per process (by RunServerMain, or by a test) and outlives the
// modules.
#ifndef CARESEAL_SERVICES_COMMON_GRPC_SERVER_ENV_H_
#define CARESEAL_SERVICES_COMMON_GRPC_SERVER_ENV_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/common/clock.h"
#include "services/common/crypto/random.h"
#include "services/common/grpc/server_host.h"
#include "services/common/grpc/unary_call.h"
#include "services/common/platform/policy.h"
#include "services/common/platform/sealer.h"
#include "services/common/sql/database.h"

namespace careseal {

// The channel services of this process use to call each other through
// their contracts; set once the server has started.
class InternalChannel {
 public:
  void Set(std::shared_ptr<grpc::Channel> channel) {
    absl::MutexLock lock(&mu_);
    channel_ = std::move(channel);
  }
  // UNAVAILABLE before the server has started.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Get() const {
    absl::MutexLock lock(&mu_);
    if (channel_ == nullptr) {
      return absl::UnavailableError("the server is still starting");
    }
    return channel_;
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
};

struct ServerEnv {
  sql::Database* db = nullptr;
  const Clock* clock = nullptr;
  crypto::RandomSource* random = nullptr;
  Sealer* sealer = nullptr;
  // Modules add their rows before the server starts; read-only afterwards.
  Policy* policy = nullptr;
  AuthenticatorSlot* authenticator = nullptr;
  InternalChannel* internal = nullptr;
  std::string key_dir;  // where signing keys live

  Edge edge() const { return Edge{db, clock, random, policy, authenticator}; }
};

using ModuleFactory =
    std::function<absl::StatusOr<std::vector<std::unique_ptr<ServiceModule>>>(
        ServerEnv& env)>;

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_GRPC_SERVER_ENV_H_
