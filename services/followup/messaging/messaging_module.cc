#include "services/followup/messaging/messaging_module.h"

#include "services/common/macros.h"

namespace careseal::messaging {

absl::StatusOr<std::unique_ptr<MessagingModule>> MessagingModule::Create(
    ServerEnv& env, MessagingOptions messaging, EventsOptions events) {
  RETURN_IF_ERROR(MessagingManager::Migrate(*env.db));
  std::unique_ptr<MessagingModule> module(new MessagingModule());
  module->pump_ = std::make_unique<events::WorkQueue>(2);
  module->limiter_ = std::make_unique<StreamLimiter>(kMaxStreamsPerCaller);
  MessagingDeps deps;
  deps.db = env.db;
  deps.clock = env.clock;
  deps.random = env.random;
  deps.sealer = env.sealer;
  deps.options = messaging;
  module->messaging_ = std::make_unique<MessagingManager>(deps);
  module->events_ = std::make_unique<EventsManager>(
      EventsDeps{env.db, env.clock, env.random, env.sealer, events});
  StreamEdge edge{env.edge(), deps.bus, module->pump_.get(),
                  module->limiter_.get()};
  module->messaging_grpc_ =
      std::make_unique<MessagingGrpc>(edge, module->messaging_.get());
  module->events_grpc_ =
      std::make_unique<EventsGrpc>(edge, module->events_.get());
  AddMessagingPolicy(*env.policy);
  AddEventsPolicy(*env.policy);
  return module;
}

}  // namespace careseal::messaging
