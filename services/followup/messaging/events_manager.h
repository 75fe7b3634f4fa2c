// EventsManager: the domain behind careseal.v1.EventService. Events are
// written by every service (services/common/events/event_log.h); this reads
// them for the EHR (ListEvents, WatchEvents) and keeps the tenant's webhook
// subscriptions (secrets sealed at rest).
//
// Webhook DELIVERY is not implemented yet: it needs the durable job
// scheduler (leases, retries with backoff for 24 h) that a later issue
// builds. Storage is complete; the gRPC edge refuses CreateWebhook with
// UNIMPLEMENTED (WEBHOOK_DELIVERY_UNAVAILABLE) while
// EventsOptions.webhook_delivery_available is false, so no EHR is told that
// events will be POSTed when they will not.
//
// Plain C++: no gRPC, no protobuf. Same REQUIREs as MessagingManager.
#ifndef CARESEAL_SERVICES_FOLLOWUP_MESSAGING_EVENTS_MANAGER_H_
#define CARESEAL_SERVICES_FOLLOWUP_MESSAGING_EVENTS_MANAGER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/clock.h"
#include "services/common/crypto/random.h"
#include "services/common/events/event_log.h"
#include "services/common/platform/call.h"
#include "services/common/platform/sealer.h"
#include "services/common/sql/database.h"
#include "services/followup/messaging/messaging_manager.h"

namespace careseal::messaging {

inline constexpr size_t kMaxWebhookUrlBytes = 2048;
inline constexpr size_t kMinWebhookSecret = 32;
inline constexpr size_t kMaxWebhookSecret = 256;
inline constexpr int kMaxWebhooksPerTenant = 10;

enum class WebhookState : int { kActive = 1, kFailing = 2, kDisabled = 3 };

struct Webhook {
  std::string tenant;
  std::string id;
  std::string url;
  std::vector<events::EventType> event_types;  // empty: all
  WebhookState state = WebhookState::kActive;
  absl::Time create_time;
  // Deliveries start after this cursor (the head at creation).
  int64_t delivered_cursor = 0;
  std::optional<absl::Time> last_delivery_time;
  int last_error_http_status = 0;

  std::string Name() const;  // tenants/{t}/webhooks/{id}
};

struct WebhookInput {
  std::string tenant;
  std::string url;
  std::vector<int> event_types;  // contract values; validated
  std::string secret;
};

struct EventsOptions {
  // Accept webhook URLs on loopback/private addresses (development only).
  bool allow_private_webhook_urls = false;
  // True once signed delivery exists (see the file comment).
  bool webhook_delivery_available = false;
};

struct EventsDeps {
  sql::Database* db = nullptr;
  const Clock* clock = nullptr;
  crypto::RandomSource* random = nullptr;
  Sealer* sealer = nullptr;
  EventsOptions options;
};

struct EventFilter {
  std::string tenant;
  std::vector<int> types;  // contract values; validated; empty: all
  std::string patient;     // patient id; empty: all
};

class EventsManager {
 public:
  explicit EventsManager(EventsDeps deps) : deps_(std::move(deps)) {}

  // Events, webhooks and the shared schemas.
  static absl::Status Migrate(sql::Database& db);

  const EventsOptions& options() const { return deps_.options; }

  // Ascending cursor after `after` (0: from the oldest retained).
  absl::StatusOr<Page<events::EventRecord>> ListEvents(
      CallContext& call, const EventFilter& filter, int64_t after,
      int page_size, absl::string_view page_token);

  // The cursor a watch starts after: `after` once validated, or the head.
  absl::StatusOr<int64_t> ResolveWatchStart(CallContext& call,
                                            const EventFilter& filter,
                                            std::optional<int64_t> after);
  // Validated query for a watch (types converted). Thread-safe read.
  absl::StatusOr<events::EventBatch> ReadForWatch(const events::EventQuery& q);
  absl::StatusOr<events::EventQuery> QueryFor(const EventFilter& filter,
                                              int64_t after) const;

  void CreateWebhook(CallContext& call, WebhookInput in, Done<Webhook> done);
  absl::StatusOr<Webhook> GetWebhook(CallContext& call,
                                     absl::string_view tenant,
                                     absl::string_view id);
  absl::StatusOr<Page<Webhook>> ListWebhooks(CallContext& call,
                                             absl::string_view tenant,
                                             int page_size,
                                             absl::string_view page_token);
  void DeleteWebhook(CallContext& call, std::string tenant, std::string id,
                     Done<bool> done);

  // The sealed secret, opened (for the deliverer to come, and tests).
  absl::StatusOr<std::string> WebhookSecret(absl::string_view tenant,
                                            absl::string_view id);

 private:
  EventsDeps deps_;
};

// INVALID_ARGUMENT (INVALID_URL, URL_NOT_ALLOWED, SECRET_TOO_SHORT,
// FIELD_TOO_LONG, INVALID_ENUM_VALUE) naming the field, exposed for tests.
absl::Status ValidateWebhook(const WebhookInput& in, bool allow_private);

}  // namespace careseal::messaging

#endif  // CARESEAL_SERVICES_FOLLOWUP_MESSAGING_EVENTS_MANAGER_H_
