// The identity service as a module a server process hosts.
#ifndef CARESEAL_SERVICES_IDENTITY_IDENTITY_MODULE_H_
#define CARESEAL_SERVICES_IDENTITY_IDENTITY_MODULE_H_

#include <memory>
#include <string>
#include <vector>

#include "services/common/grpc/server_env.h"
#include "services/identity/identity_grpc.h"
#include "services/identity/identity_manager.h"
#include "services/identity/token_authenticator.h"

namespace careseal::identity {

struct IdentityOptions {
  TokenAuthenticatorOptions tokens;
};

// --token_audience (default "careseal").
IdentityOptions IdentityOptionsFromFlags();

class IdentityModule final : public ServiceModule {
 public:
  // Applies the schema, registers the service's policy rows and installs
  // the token authenticator as the process's authenticator
  // (env.authenticator), so every RPC of every hosted service gets end-user
  // principals. The destructor uninstalls it.
  static absl::StatusOr<std::unique_ptr<IdentityModule>> Create(
      ServerEnv& env, IdentityOptions options = {});
  ~IdentityModule() override;

  std::vector<std::string> ServiceNames() const override {
    return {"careseal.v1.IdentityService"};
  }
  std::vector<grpc::Service*> GrpcServices() override { return {grpc_.get()}; }

  IdentityManager& manager() { return *manager_; }

 private:
  class Adapter;
  IdentityModule() = default;
  AuthenticatorSlot* slot_ = nullptr;
  std::unique_ptr<IdentityManager> manager_;
  std::unique_ptr<TokenAuthenticator> tokens_;
  std::unique_ptr<Adapter> adapter_;
  std::unique_ptr<IdentityGrpc> grpc_;
};

}  // namespace careseal::identity

#endif  // CARESEAL_SERVICES_IDENTITY_IDENTITY_MODULE_H_
