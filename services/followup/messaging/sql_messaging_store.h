// SqlMessagingStore: the messaging tables, as portable SQL over sql::Txn.
// Rows carry the sealed forms of health data (subjects, bodies, attachments,
// retraction reasons); MessagingManager seals and opens them. Plain C++.
// Stateless and thread-compatible: every call uses only its txn.
#ifndef CARESEAL_SERVICES_FOLLOWUP_MESSAGING_SQL_MESSAGING_STORE_H_
#define CARESEAL_SERVICES_FOLLOWUP_MESSAGING_SQL_MESSAGING_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/sql/database.h"
#include "services/followup/messaging/messaging_model.h"

namespace careseal::messaging {

const std::vector<sql::Migration>& MessagingMigrations();

struct ThreadKey {
  std::string tenant;
  std::string patient;
  std::string thread;
};

struct MessageKey {
  std::string tenant;
  std::string patient;
  std::string thread;
  std::string message;
};

struct ThreadRow {
  Thread thread;  // subject empty; unread counts for the side asked
  std::string subject_sealed;
};

struct MessageRow {
  Message message;  // text, attachment filename/content and reason empty
  std::string body_sealed;
  std::string attachment_filename_sealed;
  std::string attachment_content_sealed;  // only when asked for
  std::string retract_reason_sealed;
  std::optional<absl::Time> delivered_time;
  std::optional<absl::Time> read_time;
};

struct ThreadFilter {
  std::string tenant;
  std::string patient;  // "-" for every patient
  ThreadCategory category = ThreadCategory::kUnspecified;  // no filter
  bool unread_only = false;
  Side side = Side::kCareTeam;  // the reader's side, for unread counts
};

class SqlMessagingStore {
 public:
  // The tenant's next activity number (orders threads by latest activity).
  absl::StatusOr<int64_t> NextActivity(sql::Txn& txn,
                                       const std::string& tenant);

  absl::Status InsertThread(sql::Txn& txn, const ThreadRow& row);
  // NOT_FOUND (RESOURCE_NOT_FOUND) if absent.
  absl::StatusOr<ThreadRow> GetThread(sql::Txn& txn, const ThreadKey& key,
                                      Side side);
  // The thread's message count, without the unread counts GetThread adds;
  // NOT_FOUND (RESOURCE_NOT_FOUND) if the thread is absent.
  absl::StatusOr<int64_t> ThreadMessageCount(sql::Txn& txn,
                                             const ThreadKey& key);
  // Latest activity first; `before_activity` 0 starts at the newest.
  absl::StatusOr<std::vector<ThreadRow>> ListThreads(sql::Txn& txn,
                                                     const ThreadFilter& filter,
                                                     int64_t before_activity,
                                                     int limit);
  // A message was added: count, last message time, activity.
  absl::Status TouchThread(sql::Txn& txn, const ThreadKey& key, absl::Time time,
                           int64_t activity_seq);

  // `urgent_pending`: an urgent patient message awaiting a clinician's read.
  absl::Status InsertMessage(sql::Txn& txn, const MessageRow& row,
                             bool urgent_pending);
  absl::StatusOr<MessageRow> GetMessage(sql::Txn& txn, const MessageKey& key,
                                        bool with_content);
  // Newest first; `before_seq` 0 starts at the newest.
  absl::StatusOr<std::vector<MessageRow>> ListMessages(sql::Txn& txn,
                                                       const ThreadKey& key,
                                                       int64_t before_seq,
                                                       int limit);
  absl::StatusOr<std::vector<ReadReceipt>> Receipts(sql::Txn& txn,
                                                    const MessageKey& key);
  // Receipts `reader` holds in the thread for messages with seq <=
  // up_to_seq, message names set (the answer to a MarkRead retry).
  absl::StatusOr<std::vector<ReadReceipt>> ReceiptsOf(sql::Txn& txn,
                                                      const ThreadKey& key,
                                                      const std::string& reader,
                                                      int64_t up_to_seq);

  // Messages to `recipient` in the thread with seq <= up_to_seq not yet read.
  absl::StatusOr<std::vector<MessageRow>> UnreadUpTo(sql::Txn& txn,
                                                     const ThreadKey& key,
                                                     Side recipient,
                                                     int64_t up_to_seq);
  absl::Status MarkRead(sql::Txn& txn, const MessageKey& key,
                        const Actor& reader, absl::Time time);
  // Sets delivered time where unset; returns how many changed.
  absl::StatusOr<int64_t> MarkDelivered(sql::Txn& txn, const MessageKey& key,
                                        absl::Time time);
  absl::Status MarkRetracted(sql::Txn& txn, const MessageKey& key,
                             absl::Time time, const std::string& reason_sealed,
                             const std::string& correction);
  absl::Status SetCorrects(sql::Txn& txn, const MessageKey& key,
                           const std::string& corrects);

  // Unread for `side`; `patient` "-" for every patient of the tenant.
  absl::StatusOr<UnreadCounts> CountUnread(sql::Txn& txn,
                                           const std::string& tenant,
                                           const std::string& patient,
                                           Side side);

  // Urgent patient messages no clinician has read, created at or before
  // `created_before`, oldest first (every tenant).
  absl::StatusOr<std::vector<MessageRow>> DueUrgent(sql::Txn& txn,
                                                    absl::Time created_before,
                                                    int limit);
  absl::Status MarkEscalated(sql::Txn& txn, const MessageKey& key,
                             absl::Time time);
  absl::Status InsertEscalation(sql::Txn& txn, const std::string& id,
                                const UnreadEscalation& e);
};

// A stored webhook subscription (secret sealed).
struct WebhookRow {
  std::string tenant;
  std::string id;
  std::string url;
  std::string event_types;  // comma-separated contract values; "" for all
  std::string secret_sealed;
  int state = 1;
  absl::Time create_time;
  int64_t delivered_cursor = 0;
  std::optional<absl::Time> last_delivery_time;
  int last_error_http_status = 0;
};

class SqlWebhookStore {
 public:
  absl::Status Insert(sql::Txn& txn, const WebhookRow& row);
  // NOT_FOUND (RESOURCE_NOT_FOUND) if absent.
  absl::StatusOr<WebhookRow> Get(sql::Txn& txn, const std::string& tenant,
                                 const std::string& id);
  // By id; `after_id` "" starts at the first.
  absl::StatusOr<std::vector<WebhookRow>> List(sql::Txn& txn,
                                               const std::string& tenant,
                                               const std::string& after_id,
                                               int limit);
  absl::StatusOr<int64_t> Count(sql::Txn& txn, const std::string& tenant);
  // Returns the number of rows deleted.
  absl::StatusOr<int64_t> Delete(sql::Txn& txn, const std::string& tenant,
                                 const std::string& id);
};

}  // namespace careseal::messaging

#endif  // CARESEAL_SERVICES_FOLLOWUP_MESSAGING_SQL_MESSAGING_STORE_H_
