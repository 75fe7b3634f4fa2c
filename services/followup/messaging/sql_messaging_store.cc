#include "services/followup/messaging/sql_messaging_store.h"

#include "absl/strings/str_cat.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/policy.h"
#include "services/common/status.h"

namespace careseal::messaging {
namespace {

using sql::Bytes;
using sql::Int;
using sql::Null;
using sql::Text;

Role RoleFromName(absl::string_view name) {
  for (Role r : kAllRoles) {
    if (RoleName(r) == name) return r;
  }
  return Role::kSystem;
}

sql::Value OptTime(const std::optional<absl::Time>& t) {
  return t ? Int(ToMicros(*t)) : Null();
}

std::optional<absl::Time> ReadOptTime(const sql::Row& row, size_t i) {
  if (row.IsNull(i)) return std::nullopt;
  return FromMicros(row.Int(i));
}

constexpr char kUnreadCondition[] =
    "m.tenant = t.tenant AND m.patient = t.patient AND m.thread_id = "
    "t.thread_id AND m.recipient_side = ? AND m.read_time_us IS NULL AND "
    "m.retracted = 0";

std::string ThreadSelect() {
  return absl::StrCat(
      "SELECT t.tenant, t.patient, t.thread_id, t.subject_sealed, t.category, "
      "t.created_by, t.created_by_role, t.created_by_peer, t.create_time_us, "
      "t.last_message_time_us, t.message_count, t.activity_seq, "
      "(SELECT COUNT(*) FROM msg_messages m WHERE ",
      kUnreadCondition, "), (SELECT COUNT(*) FROM msg_messages m WHERE ",
      kUnreadCondition, " AND m.priority = 2) FROM msg_threads t");
}

ThreadRow ThreadFromRow(const sql::Row& r) {
  ThreadRow row;
  Thread& t = row.thread;
  t.tenant = r.Str(0);
  t.patient = r.Str(1);
  t.id = r.Str(2);
  row.subject_sealed = r.Str(3);
  t.category = static_cast<ThreadCategory>(r.Int(4));
  t.created_by = Actor{r.Str(5), RoleFromName(r.Str(6)), r.Str(7)};
  t.create_time = FromMicros(r.Int(8));
  t.last_message_time = FromMicros(r.Int(9));
  t.message_count = static_cast<int>(r.Int(10));
  t.activity_seq = r.Int(11);
  t.unread_count = static_cast<int>(r.Int(12));
  t.urgent_unread_count = static_cast<int>(r.Int(13));
  return row;
}

constexpr char kMessageColumns[] =
    "tenant, patient, thread_id, message_id, seq, sender, sender_role, "
    "sender_peer, sender_side, body_sealed, priority, att_filename_sealed, "
    "att_content_type, att_size, att_sha256, related_resource, "
    "create_time_us, delivered_time_us, read_time_us, retracted, "
    "retract_time_us, retract_reason_sealed, correction, corrects";

MessageRow MessageFromRow(const sql::Row& r) {
  MessageRow row;
  Message& m = row.message;
  m.tenant = r.Str(0);
  m.patient = r.Str(1);
  m.thread_id = r.Str(2);
  m.id = r.Str(3);
  m.seq = r.Int(4);
  m.sender = Actor{r.Str(5), RoleFromName(r.Str(6)), r.Str(7)};
  m.sender_side = static_cast<Side>(r.Int(8));
  row.body_sealed = r.Str(9);
  m.priority = static_cast<MessagePriority>(r.Int(10));
  if (!r.IsNull(11)) {
    row.attachment_filename_sealed = r.Str(11);
    Attachment a;
    a.content_type = r.Str(12);
    a.size_bytes = r.Int(13);
    a.sha256 = r.Str(14);
    m.attachment = std::move(a);
  }
  m.related_resource = r.Str(15);
  m.create_time = FromMicros(r.Int(16));
  row.delivered_time = ReadOptTime(r, 17);
  row.read_time = ReadOptTime(r, 18);
  m.delivery_status = row.read_time        ? DeliveryStatus::kRead
                      : row.delivered_time ? DeliveryStatus::kDelivered
                                           : DeliveryStatus::kSent;
  m.retracted = r.Int(19) != 0;
  m.retract_time = ReadOptTime(r, 20);
  row.retract_reason_sealed = r.Str(21);
  m.correction = r.Str(22);
  m.corrects = r.Str(23);
  return row;
}

std::vector<sql::Value> KeyParams(const MessageKey& k) {
  return {Text(k.tenant), Text(k.patient), Text(k.thread), Text(k.message)};
}

constexpr char kMessageWhere[] =
    " WHERE tenant = ? AND patient = ? AND thread_id = ? AND message_id = ?";

}  // namespace

const std::vector<sql::Migration>& MessagingMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE msg_activity (tenant TEXT PRIMARY KEY,"
       "  last_seq BIGINT NOT NULL);"
       "CREATE TABLE msg_threads ("
       "  tenant TEXT NOT NULL, patient TEXT NOT NULL,"
       "  thread_id TEXT NOT NULL, subject_sealed BLOB NOT NULL,"
       "  category INTEGER NOT NULL, created_by TEXT NOT NULL,"
       "  created_by_role TEXT NOT NULL, created_by_peer TEXT NOT NULL,"
       "  create_time_us BIGINT NOT NULL,"
       "  last_message_time_us BIGINT NOT NULL,"
       "  message_count INTEGER NOT NULL, activity_seq BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, patient, thread_id));"
       "CREATE INDEX msg_threads_activity ON msg_threads (tenant,"
       "  activity_seq);"
       "CREATE INDEX msg_threads_patient ON msg_threads (tenant, patient,"
       "  activity_seq);"
       "CREATE TABLE msg_messages ("
       "  tenant TEXT NOT NULL, patient TEXT NOT NULL,"
       "  thread_id TEXT NOT NULL, message_id TEXT NOT NULL,"
       "  seq BIGINT NOT NULL, sender TEXT NOT NULL,"
       "  sender_role TEXT NOT NULL, sender_peer TEXT NOT NULL,"
       "  sender_side INTEGER NOT NULL, recipient_side INTEGER NOT NULL,"
       "  body_sealed BLOB NOT NULL, priority INTEGER NOT NULL,"
       "  att_filename_sealed BLOB, att_content_type TEXT,"
       "  att_size BIGINT, att_sha256 BLOB, att_content_sealed BLOB,"
       "  related_resource TEXT NOT NULL, create_time_us BIGINT NOT NULL,"
       "  delivered_time_us BIGINT, read_time_us BIGINT,"
       "  retracted INTEGER NOT NULL, retract_time_us BIGINT,"
       "  retract_reason_sealed BLOB, correction TEXT NOT NULL,"
       "  corrects TEXT NOT NULL, urgent_pending INTEGER NOT NULL,"
       "  escalated_time_us BIGINT,"
       "  PRIMARY KEY (tenant, patient, thread_id, message_id),"
       "  UNIQUE (tenant, patient, thread_id, seq));"
       "CREATE INDEX msg_messages_unread ON msg_messages (tenant, patient,"
       "  thread_id, recipient_side, read_time_us);"
       "CREATE INDEX msg_messages_urgent ON msg_messages (urgent_pending,"
       "  create_time_us);"
       "CREATE TABLE msg_receipts ("
       "  tenant TEXT NOT NULL, patient TEXT NOT NULL,"
       "  thread_id TEXT NOT NULL, message_id TEXT NOT NULL,"
       "  reader TEXT NOT NULL, reader_role TEXT NOT NULL,"
       "  reader_peer TEXT NOT NULL, read_time_us BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, patient, thread_id, message_id, reader));"
       "CREATE TABLE msg_escalations ("
       "  tenant TEXT NOT NULL, patient TEXT NOT NULL,"
       "  escalation_id TEXT NOT NULL, source TEXT NOT NULL,"
       "  create_time_us BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, patient, escalation_id));"
       "CREATE TABLE webhooks ("
       "  tenant TEXT NOT NULL, webhook_id TEXT NOT NULL, url TEXT NOT NULL,"
       "  event_types TEXT NOT NULL, secret_sealed BLOB NOT NULL,"
       "  state INTEGER NOT NULL, create_time_us BIGINT NOT NULL,"
       "  delivered_cursor BIGINT NOT NULL, last_delivery_time_us BIGINT,"
       "  last_error_http_status INTEGER NOT NULL,"
       "  PRIMARY KEY (tenant, webhook_id))"},
      // Only urgent patient messages awaiting a clinician are looked up
      // (DueUrgent); every other message wrote a row of this index too.
      {2,
       "DROP INDEX msg_messages_urgent;"
       "CREATE INDEX msg_messages_urgent ON msg_messages (create_time_us)"
       "  WHERE urgent_pending = 1"},
  };
  return *migrations;
}

absl::StatusOr<int64_t> SqlMessagingStore::NextActivity(
    sql::Txn& txn, const std::string& tenant) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("INSERT INTO msg_activity (tenant, last_seq) VALUES (?, 1) "
                "ON CONFLICT (tenant) DO UPDATE SET last_seq = "
                "msg_activity.last_seq + 1 RETURNING last_seq",
                {Text(tenant)}));
  if (rows.size() != 1) {
    return Internal("ACTIVITY_FAILED", "the activity counter did not advance");
  }
  return rows[0].Int(0);
}

absl::Status SqlMessagingStore::InsertThread(sql::Txn& txn,
                                             const ThreadRow& row) {
  const Thread& t = row.thread;
  return txn
      .Exec(
          "INSERT INTO msg_threads (tenant, patient, thread_id, "
          "subject_sealed, category, created_by, created_by_role, "
          "created_by_peer, create_time_us, last_message_time_us, "
          "message_count, activity_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
          "?, ?)",
          {Text(t.tenant), Text(t.patient), Text(t.id),
           Bytes(row.subject_sealed), Int(static_cast<int>(t.category)),
           Text(t.created_by.name),
           Text(std::string(RoleName(t.created_by.role))),
           Text(t.created_by.peer), Int(ToMicros(t.create_time)),
           Int(ToMicros(t.last_message_time)), Int(t.message_count),
           Int(t.activity_seq)})
      .status();
}

absl::StatusOr<ThreadRow> SqlMessagingStore::GetThread(sql::Txn& txn,
                                                       const ThreadKey& key,
                                                       Side side) {
  const int s = static_cast<int>(side);
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat(ThreadSelect(),
                             " WHERE t.tenant = ? AND t.patient = ? AND "
                             "t.thread_id = ?"),
                {Int(s), Int(s), Text(key.tenant), Text(key.patient),
                 Text(key.thread)}));
  if (rows.empty()) return ResourceNotFound();
  return ThreadFromRow(rows[0]);
}

absl::StatusOr<int64_t> SqlMessagingStore::ThreadMessageCount(
    sql::Txn& txn, const ThreadKey& key) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT message_count FROM msg_threads WHERE "
                "tenant = ? AND patient = ? AND thread_id = ?",
                {Text(key.tenant), Text(key.patient), Text(key.thread)}));
  if (rows.empty()) return ResourceNotFound();
  return rows[0].Int(0);
}

absl::StatusOr<std::vector<ThreadRow>> SqlMessagingStore::ListThreads(
    sql::Txn& txn, const ThreadFilter& f, int64_t before_activity, int limit) {
  const int s = static_cast<int>(f.side);
  std::string q = absl::StrCat(ThreadSelect(), " WHERE t.tenant = ?");
  std::vector<sql::Value> params = {Int(s), Int(s), Text(f.tenant)};
  if (f.patient != "-") {
    absl::StrAppend(&q, " AND t.patient = ?");
    params.push_back(Text(f.patient));
  }
  if (f.category != ThreadCategory::kUnspecified) {
    absl::StrAppend(&q, " AND t.category = ?");
    params.push_back(Int(static_cast<int>(f.category)));
  }
  if (f.unread_only) {
    absl::StrAppend(&q, " AND EXISTS (SELECT 1 FROM msg_messages m WHERE ",
                    kUnreadCondition, ")");
    params.push_back(Int(s));
  }
  if (before_activity > 0) {
    absl::StrAppend(&q, " AND t.activity_seq < ?");
    params.push_back(Int(before_activity));
  }
  absl::StrAppend(&q, " ORDER BY t.activity_seq DESC LIMIT ?");
  params.push_back(Int(limit));
  ASSIGN_OR_RETURN(auto rows, txn.Query(q, absl::MakeConstSpan(params)));
  std::vector<ThreadRow> out;
  out.reserve(rows.size());
  for (const sql::Row& r : rows) out.push_back(ThreadFromRow(r));
  return out;
}

absl::Status SqlMessagingStore::TouchThread(sql::Txn& txn, const ThreadKey& key,
                                            absl::Time time,
                                            int64_t activity_seq) {
  return txn
      .Exec(
          "UPDATE msg_threads SET message_count = message_count + 1, "
          "last_message_time_us = ?, activity_seq = ? WHERE tenant = ? AND "
          "patient = ? AND thread_id = ?",
          {Int(ToMicros(time)), Int(activity_seq), Text(key.tenant),
           Text(key.patient), Text(key.thread)})
      .status();
}

absl::Status SqlMessagingStore::InsertMessage(sql::Txn& txn,
                                              const MessageRow& row,
                                              bool urgent_pending) {
  const Message& m = row.message;
  const bool has_att = m.attachment.has_value();
  return txn
      .Exec(
          "INSERT INTO msg_messages (tenant, patient, thread_id, message_id, "
          "seq, sender, sender_role, sender_peer, sender_side, "
          "recipient_side, body_sealed, priority, att_filename_sealed, "
          "att_content_type, att_size, att_sha256, att_content_sealed, "
          "related_resource, create_time_us, delivered_time_us, "
          "read_time_us, retracted, retract_time_us, retract_reason_sealed, "
          "correction, corrects, urgent_pending, escalated_time_us) VALUES "
          "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, "
          "NULL, 0, NULL, NULL, '', ?, ?, NULL)",
          {Text(m.tenant),
           Text(m.patient),
           Text(m.thread_id),
           Text(m.id),
           Int(m.seq),
           Text(m.sender.name),
           Text(std::string(RoleName(m.sender.role))),
           Text(m.sender.peer),
           Int(static_cast<int>(m.sender_side)),
           Int(static_cast<int>(OtherSide(m.sender_side))),
           Bytes(row.body_sealed),
           Int(static_cast<int>(m.priority)),
           has_att ? Bytes(row.attachment_filename_sealed) : Null(),
           has_att ? Text(m.attachment->content_type) : Null(),
           has_att ? Int(m.attachment->size_bytes) : Null(),
           has_att ? Bytes(m.attachment->sha256) : Null(),
           has_att ? Bytes(row.attachment_content_sealed) : Null(),
           Text(m.related_resource),
           Int(ToMicros(m.create_time)),
           Text(m.corrects),
           Int(urgent_pending ? 1 : 0)})
      .status();
}

absl::StatusOr<MessageRow> SqlMessagingStore::GetMessage(sql::Txn& txn,
                                                         const MessageKey& key,
                                                         bool with_content) {
  std::vector<sql::Value> params = KeyParams(key);
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kMessageColumns,
                             with_content ? ", att_content_sealed" : "",
                             " FROM msg_messages", kMessageWhere),
                absl::MakeConstSpan(params)));
  if (rows.empty()) return ResourceNotFound();
  MessageRow row = MessageFromRow(rows[0]);
  if (with_content) row.attachment_content_sealed = rows[0].Str(24);
  return row;
}

absl::StatusOr<std::vector<MessageRow>> SqlMessagingStore::ListMessages(
    sql::Txn& txn, const ThreadKey& key, int64_t before_seq, int limit) {
  std::string q =
      absl::StrCat("SELECT ", kMessageColumns,
                   " FROM msg_messages WHERE tenant = ? AND patient = ? AND "
                   "thread_id = ?");
  std::vector<sql::Value> params = {Text(key.tenant), Text(key.patient),
                                    Text(key.thread)};
  if (before_seq > 0) {
    absl::StrAppend(&q, " AND seq < ?");
    params.push_back(Int(before_seq));
  }
  absl::StrAppend(&q, " ORDER BY seq DESC LIMIT ?");
  params.push_back(Int(limit));
  ASSIGN_OR_RETURN(auto rows, txn.Query(q, absl::MakeConstSpan(params)));
  std::vector<MessageRow> out;
  out.reserve(rows.size());
  for (const sql::Row& r : rows) out.push_back(MessageFromRow(r));
  return out;
}

absl::StatusOr<std::vector<ReadReceipt>> SqlMessagingStore::Receipts(
    sql::Txn& txn, const MessageKey& key) {
  std::vector<sql::Value> params = KeyParams(key);
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT reader, reader_role, reader_peer, "
                             "read_time_us FROM msg_receipts",
                             kMessageWhere, " ORDER BY read_time_us, reader"),
                absl::MakeConstSpan(params)));
  std::vector<ReadReceipt> out;
  for (const sql::Row& r : rows) {
    out.push_back(ReadReceipt{"",
                              Actor{r.Str(0), RoleFromName(r.Str(1)), r.Str(2)},
                              FromMicros(r.Int(3))});
  }
  return out;
}

absl::StatusOr<std::vector<ReadReceipt>> SqlMessagingStore::ReceiptsOf(
    sql::Txn& txn, const ThreadKey& key, const std::string& reader,
    int64_t up_to_seq) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT r.message_id, r.reader, r.reader_role, r.reader_peer, "
                "r.read_time_us FROM msg_receipts r JOIN msg_messages m ON "
                "m.tenant = r.tenant AND m.patient = r.patient AND "
                "m.thread_id = r.thread_id AND m.message_id = r.message_id "
                "WHERE r.tenant = ? AND r.patient = ? AND r.thread_id = ? AND "
                "r.reader = ? AND m.seq <= ? ORDER BY m.seq",
                {Text(key.tenant), Text(key.patient), Text(key.thread),
                 Text(reader), Int(up_to_seq)}));
  std::vector<ReadReceipt> out;
  for (const sql::Row& r : rows) {
    out.push_back(ReadReceipt{
        absl::StrCat("tenants/", key.tenant, "/patients/", key.patient,
                     "/threads/", key.thread, "/messages/", r.Str(0)),
        Actor{r.Str(1), RoleFromName(r.Str(2)), r.Str(3)},
        FromMicros(r.Int(4))});
  }
  return out;
}

absl::StatusOr<std::vector<MessageRow>> SqlMessagingStore::UnreadUpTo(
    sql::Txn& txn, const ThreadKey& key, Side recipient, int64_t up_to_seq) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kMessageColumns,
                             " FROM msg_messages WHERE tenant = ? AND "
                             "patient = ? AND thread_id = ? AND "
                             "recipient_side = ? AND read_time_us IS NULL "
                             "AND seq <= ? ORDER BY seq"),
                {Text(key.tenant), Text(key.patient), Text(key.thread),
                 Int(static_cast<int>(recipient)), Int(up_to_seq)}));
  std::vector<MessageRow> out;
  for (const sql::Row& r : rows) out.push_back(MessageFromRow(r));
  return out;
}

absl::Status SqlMessagingStore::MarkRead(sql::Txn& txn, const MessageKey& key,
                                         const Actor& reader, absl::Time time) {
  std::vector<sql::Value> params = {Int(ToMicros(time))};
  for (sql::Value& v : KeyParams(key)) params.push_back(std::move(v));
  RETURN_IF_ERROR(
      txn.Exec(absl::StrCat("UPDATE msg_messages SET read_time_us = ?, "
                            "urgent_pending = 0",
                            kMessageWhere),
               absl::MakeConstSpan(params))
          .status());
  return txn
      .Exec(
          "INSERT INTO msg_receipts (tenant, patient, thread_id, message_id, "
          "reader, reader_role, reader_peer, read_time_us) VALUES (?, ?, ?, "
          "?, ?, ?, ?, ?) ON CONFLICT (tenant, patient, thread_id, "
          "message_id, reader) DO NOTHING",
          {Text(key.tenant), Text(key.patient), Text(key.thread),
           Text(key.message), Text(reader.name),
           Text(std::string(RoleName(reader.role))), Text(reader.peer),
           Int(ToMicros(time))})
      .status();
}

absl::StatusOr<int64_t> SqlMessagingStore::MarkDelivered(sql::Txn& txn,
                                                         const MessageKey& key,
                                                         absl::Time time) {
  std::vector<sql::Value> params = {Int(ToMicros(time))};
  for (sql::Value& v : KeyParams(key)) params.push_back(std::move(v));
  return txn.Exec(absl::StrCat("UPDATE msg_messages SET delivered_time_us = ?",
                               kMessageWhere, " AND delivered_time_us IS NULL"),
                  absl::MakeConstSpan(params));
}

absl::Status SqlMessagingStore::MarkRetracted(sql::Txn& txn,
                                              const MessageKey& key,
                                              absl::Time time,
                                              const std::string& reason_sealed,
                                              const std::string& correction) {
  std::vector<sql::Value> params = {Int(ToMicros(time)), Bytes(reason_sealed),
                                    Text(correction)};
  for (sql::Value& v : KeyParams(key)) params.push_back(std::move(v));
  return txn
      .Exec(absl::StrCat("UPDATE msg_messages SET retracted = 1, "
                         "retract_time_us = ?, retract_reason_sealed = ?, "
                         "correction = ?, urgent_pending = 0",
                         kMessageWhere),
            absl::MakeConstSpan(params))
      .status();
}

absl::Status SqlMessagingStore::SetCorrects(sql::Txn& txn,
                                            const MessageKey& key,
                                            const std::string& corrects) {
  std::vector<sql::Value> params = {Text(corrects)};
  for (sql::Value& v : KeyParams(key)) params.push_back(std::move(v));
  return txn
      .Exec(absl::StrCat("UPDATE msg_messages SET corrects = ?", kMessageWhere),
            absl::MakeConstSpan(params))
      .status();
}

absl::StatusOr<UnreadCounts> SqlMessagingStore::CountUnread(
    sql::Txn& txn, const std::string& tenant, const std::string& patient,
    Side side) {
  std::string q =
      "SELECT m.patient, m.thread_id, COUNT(*), SUM(CASE WHEN m.priority = 2 "
      "THEN 1 ELSE 0 END), MAX(t.activity_seq) FROM msg_messages m JOIN "
      "msg_threads t ON t.tenant = m.tenant AND t.patient = m.patient AND "
      "t.thread_id = m.thread_id WHERE m.tenant = ? AND m.recipient_side = ? "
      "AND m.read_time_us IS NULL AND m.retracted = 0";
  std::vector<sql::Value> params = {Text(tenant), Int(static_cast<int>(side))};
  if (patient != "-") {
    absl::StrAppend(&q, " AND m.patient = ?");
    params.push_back(Text(patient));
  }
  absl::StrAppend(&q,
                  " GROUP BY m.patient, m.thread_id ORDER BY "
                  "MAX(t.activity_seq) DESC");
  ASSIGN_OR_RETURN(auto rows, txn.Query(q, absl::MakeConstSpan(params)));
  UnreadCounts counts;
  for (const sql::Row& r : rows) {
    const int unread = static_cast<int>(r.Int(2));
    const int urgent = static_cast<int>(r.Int(3));
    counts.total_unread += unread;
    counts.urgent_unread += urgent;
    if (counts.threads.size() < 100) {
      counts.threads.push_back(
          ThreadUnread{absl::StrCat("tenants/", tenant, "/patients/", r.Str(0),
                                    "/threads/", r.Str(1)),
                       unread, urgent});
    }
  }
  return counts;
}

absl::StatusOr<std::vector<MessageRow>> SqlMessagingStore::DueUrgent(
    sql::Txn& txn, absl::Time created_before, int limit) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(absl::StrCat("SELECT ", kMessageColumns,
                             " FROM msg_messages WHERE urgent_pending = 1 "
                             "AND create_time_us <= ? ORDER BY "
                             "create_time_us LIMIT ?"),
                {Int(ToMicros(created_before)), Int(limit)}));
  std::vector<MessageRow> out;
  for (const sql::Row& r : rows) out.push_back(MessageFromRow(r));
  return out;
}

absl::Status SqlMessagingStore::MarkEscalated(sql::Txn& txn,
                                              const MessageKey& key,
                                              absl::Time time) {
  std::vector<sql::Value> params = {Int(ToMicros(time))};
  for (sql::Value& v : KeyParams(key)) params.push_back(std::move(v));
  return txn
      .Exec(absl::StrCat("UPDATE msg_messages SET urgent_pending = 0, "
                         "escalated_time_us = ?",
                         kMessageWhere, " AND urgent_pending = 1"),
            absl::MakeConstSpan(params))
      .status();
}

absl::Status SqlMessagingStore::InsertEscalation(sql::Txn& txn,
                                                 const std::string& id,
                                                 const UnreadEscalation& e) {
  return txn
      .Exec(
          "INSERT INTO msg_escalations (tenant, patient, escalation_id, "
          "source, create_time_us) VALUES (?, ?, ?, ?, ?)",
          {Text(e.tenant), Text(e.patient), Text(id), Text(e.message),
           Int(ToMicros(e.create_time))})
      .status();
}

namespace {

constexpr char kWebhookColumns[] =
    "tenant, webhook_id, url, event_types, secret_sealed, state, "
    "create_time_us, delivered_cursor, last_delivery_time_us, "
    "last_error_http_status";

WebhookRow WebhookFromRow(const sql::Row& r) {
  WebhookRow w;
  w.tenant = r.Str(0);
  w.id = r.Str(1);
  w.url = r.Str(2);
  w.event_types = r.Str(3);
  w.secret_sealed = r.Str(4);
  w.state = static_cast<int>(r.Int(5));
  w.create_time = FromMicros(r.Int(6));
  w.delivered_cursor = r.Int(7);
  w.last_delivery_time = ReadOptTime(r, 8);
  w.last_error_http_status = static_cast<int>(r.Int(9));
  return w;
}

}  // namespace

absl::Status SqlWebhookStore::Insert(sql::Txn& txn, const WebhookRow& w) {
  return txn
      .Exec(absl::StrCat("INSERT INTO webhooks (", kWebhookColumns,
                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            {Text(w.tenant), Text(w.id), Text(w.url), Text(w.event_types),
             Bytes(w.secret_sealed), Int(w.state), Int(ToMicros(w.create_time)),
             Int(w.delivered_cursor), OptTime(w.last_delivery_time),
             Int(w.last_error_http_status)})
      .status();
}

absl::StatusOr<WebhookRow> SqlWebhookStore::Get(sql::Txn& txn,
                                                const std::string& tenant,
                                                const std::string& id) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query(absl::StrCat("SELECT ", kWebhookColumns,
                                          " FROM webhooks WHERE tenant = ? "
                                          "AND webhook_id = ?"),
                             {Text(tenant), Text(id)}));
  if (rows.empty()) return ResourceNotFound();
  return WebhookFromRow(rows[0]);
}

absl::StatusOr<std::vector<WebhookRow>> SqlWebhookStore::List(
    sql::Txn& txn, const std::string& tenant, const std::string& after_id,
    int limit) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query(absl::StrCat("SELECT ", kWebhookColumns,
                                          " FROM webhooks WHERE tenant = ? "
                                          "AND webhook_id > ? ORDER BY "
                                          "webhook_id LIMIT ?"),
                             {Text(tenant), Text(after_id), Int(limit)}));
  std::vector<WebhookRow> out;
  for (const sql::Row& r : rows) out.push_back(WebhookFromRow(r));
  return out;
}

absl::StatusOr<int64_t> SqlWebhookStore::Count(sql::Txn& txn,
                                               const std::string& tenant) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT COUNT(*) FROM webhooks WHERE tenant = ?",
                             {Text(tenant)}));
  return rows.empty() ? 0 : rows[0].Int(0);
}

absl::StatusOr<int64_t> SqlWebhookStore::Delete(sql::Txn& txn,
                                                const std::string& tenant,
                                                const std::string& id) {
  return txn.Exec("DELETE FROM webhooks WHERE tenant = ? AND webhook_id = ?",
                  {Text(tenant), Text(id)});
}

}  // namespace careseal::messaging
