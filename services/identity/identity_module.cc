#include "services/identity/identity_module.h"

#include "absl/flags/flag.h"
#include "services/common/macros.h"
#include "services/identity/sql_replay_cache.h"

ABSL_FLAG(std::string, token_audience, "careseal",
          "the `aud` every end-user token must carry");

namespace careseal::identity {

// The token authenticator as the edge's Authenticator.
class IdentityModule::Adapter final : public Authenticator {
 public:
  explicit Adapter(const TokenAuthenticator* tokens) : tokens_(tokens) {}
  absl::StatusOr<Principal> Authenticate(const PeerIdentity& peer,
                                         absl::string_view bearer_token,
                                         absl::Time now) const override {
    return tokens_->Authenticate(peer, bearer_token, now);
  }
  absl::StatusOr<Principal> AuthenticateCall(const PeerIdentity& peer,
                                             const CallCredentials& credentials,
                                             absl::Time now) const override {
    return tokens_->Authenticate(peer, credentials.bearer_token, now,
                                 credentials.break_glass_grant);
  }

 private:
  const TokenAuthenticator* const tokens_;
};

IdentityOptions IdentityOptionsFromFlags() {
  IdentityOptions options;
  options.tokens.audience = absl::GetFlag(FLAGS_token_audience);
  return options;
}

absl::StatusOr<std::unique_ptr<IdentityModule>> IdentityModule::Create(
    ServerEnv& env, IdentityOptions options) {
  RETURN_IF_ERROR(IdentityManager::Migrate(*env.db));
  RETURN_IF_ERROR(env.db->Migrate("identity_replay", ReplayCacheMigrations()));
  std::unique_ptr<IdentityModule> module(new IdentityModule());
  module->manager_ = std::make_unique<IdentityManager>(
      IdentityDeps{env.db, env.clock, env.random, env.sealer});
  ASSIGN_OR_RETURN(module->tokens_,
                   TokenAuthenticator::Create(module->manager_.get(), env.clock,
                                              options.tokens, env.db));
  module->grpc_ =
      std::make_unique<IdentityGrpc>(env.edge(), module->manager_.get());
  AddIdentityPolicy(*env.policy);
  if (env.authenticator != nullptr) {
    module->adapter_ = std::make_unique<Adapter>(module->tokens_.get());
    module->slot_ = env.authenticator;
    module->slot_->Set(module->adapter_.get());
  }
  return module;
}

IdentityModule::~IdentityModule() {
  if (slot_ != nullptr) slot_->Set(nullptr);
}

}  // namespace careseal::identity
