#include "services/followup/messaging/messaging_module.h"

#include <cstdio>

#include "absl/flags/flag.h"
#include "services/common/events/event_log.h"
#include "services/common/macros.h"
#include "services/common/platform/log_index.h"

ABSL_FLAG(int64_t, urgent_message_check_seconds, 60,
          "how often to look for urgent patient messages that no clinician "
          "has read in time and escalate them (seconds; 0 turns it off)");

ABSL_FLAG(int64_t, event_index_interval_ms, 1000,
          "add the events appended since the last pass to the event log's "
          "patient lookup, this often (milliseconds; until then a patient's "
          "newest events are found by scanning the log's tail); 0 turns the "
          "indexer off");

namespace careseal::messaging {
namespace {

// Events per indexing transaction and transactions per pass, as for the
// audit logs' lookups (audit_module.cc): many events share each lookup
// page, the writer is not held for long, and a backlog is caught up over
// several passes.
constexpr int64_t kEventIndexChunk = 8192;
constexpr int kEventIndexChunksPerPass = 16;

}  // namespace

MessagingOptions MessagingOptionsFromFlags() {
  MessagingOptions options;
  options.urgent_check_interval =
      absl::Seconds(absl::GetFlag(FLAGS_urgent_message_check_seconds));
  options.event_index_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_event_index_interval_ms));
  return options;
}

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
  if (messaging.urgent_check_interval > absl::ZeroDuration()) {
    MessagingManager* manager = module->messaging_.get();
    const Clock* clock = env.clock;
    module->urgent_sweep_ = std::make_unique<Periodic>(
        messaging.urgent_check_interval, [manager, clock] {
          auto raised = manager->CheckUnreadUrgent(clock->Now());
          if (!raised.ok()) {
            std::fprintf(stderr, "messaging: urgent-message sweep failed: %s\n",
                         raised.status().ToString().c_str());
          }
        });
  }
  if (messaging.event_index_interval > absl::ZeroDuration()) {
    sql::Database* db = env.db;
    module->event_indexer_ =
        std::make_unique<Periodic>(messaging.event_index_interval, [db] {
          RunIndexPass(*db, kEventIndexChunk, kEventIndexChunksPerPass,
                       events::IndexEventLogs,
                       "messaging: indexing the event log");
        });
  }
  return module;
}

}  // namespace careseal::messaging
