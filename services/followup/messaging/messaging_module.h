// Messaging and events as a module a server process hosts (the follow-up
// service's part, DESIGN.md): careseal.v1.MessagingService and
// careseal.v1.EventService. Owns the WorkQueue its watch streams read on and
// the per-caller stream cap.
#ifndef CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_MODULE_H_
#define CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_MODULE_H_

#include <memory>

#include "services/common/events/work_queue.h"
#include "services/common/grpc/server_env.h"
#include "services/common/periodic.h"
#include "services/followup/messaging/events_grpc.h"
#include "services/followup/messaging/events_manager.h"
#include "services/followup/messaging/messaging_grpc.h"
#include "services/followup/messaging/messaging_manager.h"

namespace careseal::messaging {

inline constexpr int kMaxStreamsPerCaller = 16;

class MessagingModule final : public ServiceModule {
 public:
  // Applies the schema and registers the policy rows of both services.
  static absl::StatusOr<std::unique_ptr<MessagingModule>> Create(
      ServerEnv& env, MessagingOptions messaging = {},
      EventsOptions events = {});

  std::vector<std::string> ServiceNames() const override {
    return {"careseal.v1.MessagingService", "careseal.v1.EventService"};
  }
  std::vector<grpc::Service*> GrpcServices() override {
    return {messaging_grpc_.get(), events_grpc_.get()};
  }

  MessagingManager& manager() { return *messaging_; }
  EventsManager& events() { return *events_; }

 private:
  MessagingModule() = default;
  // Declared first: destroyed last, after every stream that used it.
  std::unique_ptr<events::WorkQueue> pump_;
  std::unique_ptr<StreamLimiter> limiter_;
  std::unique_ptr<MessagingManager> messaging_;
  std::unique_ptr<EventsManager> events_;
  std::unique_ptr<MessagingGrpc> messaging_grpc_;
  std::unique_ptr<EventsGrpc> events_grpc_;
  // Last: stopped before anything it uses goes away.
  std::unique_ptr<Periodic> urgent_sweep_;
  std::unique_ptr<Periodic> event_indexer_;
};

// MessagingOptions from careseal-server's flags.
MessagingOptions MessagingOptionsFromFlags();

}  // namespace careseal::messaging

#endif  // CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_MODULE_H_
