// MessagingManager: the messaging domain. Plain C++: no gRPC, no protobuf.
//
// Threads belong to a patient; the other side is the tenant's care-team pool
// (any clinician reads and answers for it). Bodies, subjects, attachment
// names and contents, and retraction reasons are sealed at rest
// (Sealer, per-tenant key, associated data naming the record).
//
// Writes run as one group-commit job each: request id, read, change, event
// (events::AppendEvent, same transaction), audit event, remembered request
// id. `done` runs on the writer thread once durable and must not block;
// watchers are rung by the event's after-commit hook, also only once
// durable. Reads run on the caller's thread over a snapshot.
//
// REQUIRES for every call with a CallContext: `call` outlives the call
// (until `done` ran) and the caller has authorized `call.principal` for the
// tenant and patient.
#ifndef CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_MANAGER_H_
#define CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_MANAGER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "services/common/clock.h"
#include "services/common/crypto/random.h"
#include "services/common/events/event_bus.h"
#include "services/common/platform/call.h"
#include "services/common/platform/sealer.h"
#include "services/common/sql/database.h"
#include "services/followup/messaging/messaging_model.h"
#include "services/followup/messaging/sql_messaging_store.h"

namespace careseal::messaging {

template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;
};

// Limits of the contract (messaging.proto).
inline constexpr size_t kMaxSubject = 200;
inline constexpr size_t kMaxText = 8000;  // code points
inline constexpr size_t kMaxAttachmentBytes = 1 << 20;
inline constexpr size_t kMaxFilename = 200;
inline constexpr size_t kMaxRetractReason = 1000;

struct MessagingOptions {
  // An urgent patient message that no clinician reads this long raises an
  // escalation. Default: FollowUpSettings.urgent_message_read_timeout's
  // default (followup.proto: 30 min). Per-tenant settings replace it when
  // FollowUpSettings lands.
  absl::Duration urgent_read_timeout = absl::Minutes(30);
  // How often the module sweeps for such messages (CheckUnreadUrgent);
  // zero: only when called (tests drive it on their fake clock).
  absl::Duration urgent_check_interval = absl::ZeroDuration();
  // How often the module adds the events appended since its last pass to
  // the event log's patient lookup (events::IndexEventLogs); until then a
  // patient's newest events are found by scanning the log's tail. Zero:
  // never (tests drive it).
  absl::Duration event_index_interval = absl::ZeroDuration();
};

struct MessagingDeps {
  sql::Database* db = nullptr;
  const Clock* clock = nullptr;
  crypto::RandomSource* random = nullptr;
  Sealer* sealer = nullptr;
  events::EventBus* bus = &events::EventBus::Default();
  MessagingOptions options;
};

struct CreateThreadInput {
  std::string tenant;
  std::string patient;
  std::string subject;
  int category = 0;  // contract value; validated
};

struct AttachmentInput {
  std::string filename;
  std::string content_type;
  std::string content;
};

struct SendInput {
  std::string tenant;
  std::string patient;
  std::string thread;
  std::string text;
  int priority = 0;  // contract value; validated
  std::optional<AttachmentInput> attachment;
};

struct MarkReadInput {
  std::string tenant;
  std::string patient;
  std::string thread;
  std::string up_to_message;  // message id in `thread`
};

struct MarkReadResult {
  Thread thread;
  std::vector<ReadReceipt> read_receipts;  // created by this call
};

struct RetractInput {
  std::string tenant;
  std::string patient;
  std::string thread;
  std::string message;
  std::string reason;
  std::string corrected_text;  // optional
};

struct RetractResult {
  Message message;
  std::optional<Message> correction;
};

struct ListThreadsInput {
  std::string tenant;
  std::string patient;  // "-": the care team's inbox
  int category = 0;     // 0: all
  bool unread_only = false;
};

// What a live inbox reads after the EventBus rang.
struct InboxQuery {
  std::string tenant;
  std::string patient;  // patient id, or "-" for the care team's inbox
  int64_t after = 0;
  Side viewer = Side::kCareTeam;
  int limit = 100;
};

struct InboxBatch {
  std::vector<InboxUpdate> updates;  // ascending cursor
  int64_t scanned_through = 0;
  bool more = false;
};

class MessagingManager {
 public:
  explicit MessagingManager(MessagingDeps deps) : deps_(std::move(deps)) {}

  // Applies the messaging schema (and the shared audit, idempotency,
  // sealing and event schemas).
  static absl::Status Migrate(sql::Database& db);

  void CreateThread(CallContext& call, CreateThreadInput in, Done<Thread> done);
  void SendMessage(CallContext& call, SendInput in, Done<Message> done);
  void MarkRead(CallContext& call, MarkReadInput in, Done<MarkReadResult> done);
  void RetractMessage(CallContext& call, RetractInput in,
                      Done<RetractResult> done);

  absl::StatusOr<Thread> GetThread(CallContext& call, const ThreadKey& key);
  absl::StatusOr<Page<Thread>> ListThreads(CallContext& call,
                                           const ListThreadsInput& in,
                                           int page_size,
                                           absl::string_view page_token);
  // With the attachment's content.
  absl::StatusOr<Message> GetMessage(CallContext& call, const MessageKey& key);
  // Newest first, attachment content omitted.
  absl::StatusOr<Page<Message>> ListMessages(CallContext& call,
                                             const ThreadKey& key,
                                             int page_size,
                                             absl::string_view page_token);
  absl::StatusOr<UnreadCounts> GetUnreadCounts(CallContext& call,
                                               absl::string_view tenant,
                                               absl::string_view patient);

  // Live inbox. ResolveInboxStart validates a resume cursor (nullopt: start
  // at the newest cursor) and returns the cursor to read after. Records what
  // the watch reaches in `call` for its audit event.
  absl::StatusOr<int64_t> ResolveInboxStart(CallContext& call,
                                            absl::string_view tenant,
                                            absl::string_view patient,
                                            std::optional<int64_t> after);
  // Updates after `query.after`, with current message state (text opened;
  // empty once retracted). Messages pushed to the other side are marked
  // DELIVERED (asynchronously). Thread-safe; blocks on a read.
  absl::StatusOr<InboxBatch> ReadInbox(const InboxQuery& query);

  // The module's periodic sweep (MessagingOptions.urgent_check_interval;
  // in careseal-server --urgent_message_check_seconds): every urgent patient
  // message that no clinician read within options.urgent_read_timeout of `now`
  // gets one escalation (EVENT_TYPE_ESCALATION_RAISED, audited as CareSeal
  // itself). Idempotent: a message escalates once. Blocks until durable: call
  // it from a scheduler thread, never from a gRPC or writer thread.
  absl::StatusOr<std::vector<UnreadEscalation>> CheckUnreadUrgent(
      absl::Time now);

  events::EventBus& bus() { return *deps_.bus; }

 private:
  template <typename T>
  void RunWrite(absl::AnyInvocable<absl::StatusOr<T>(sql::Txn&)> fn,
                Done<T> done);
  absl::StatusOr<Message> OpenMessage(sql::Txn& txn, MessageRow row,
                                      bool with_receipts);
  absl::StatusOr<Message> InsertMessageLocked(sql::Txn& txn, CallContext& call,
                                              const ThreadKey& key,
                                              const std::string& text,
                                              MessagePriority priority,
                                              const AttachmentInput* att,
                                              const std::string& corrects);
  void MarkDeliveredLater(std::vector<MessageKey> keys, absl::Time now);

  MessagingDeps deps_;
  SqlMessagingStore store_;
};

// Validation, exposed for tests. INVALID_ARGUMENT naming the field.
absl::Status ValidateMessageText(absl::string_view field,
                                 absl::string_view text, bool has_attachment);
absl::Status ValidateAttachment(const AttachmentInput& attachment);

}  // namespace careseal::messaging

#endif  // CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_MANAGER_H_
