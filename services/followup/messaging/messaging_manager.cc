#include "services/followup/messaging/messaging_manager.h"

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/events/event_log.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/pagination.h"
#include "services/common/platform/policy.h"
#include "services/common/platform/resource_name.h"
#include "services/common/platform/text.h"
#include "services/common/status.h"

namespace careseal::messaging {
namespace {

constexpr char kThreadPattern[] =
    "tenants/{tenant}/patients/{patient}/threads/{thread}";
constexpr char kMessagePattern[] =
    "tenants/{tenant}/patients/{patient}/threads/{thread}/messages/{message}";

std::string ThreadName(const ThreadKey& k) {
  return absl::StrCat("tenants/", k.tenant, "/patients/", k.patient,
                      "/threads/", k.thread);
}

std::string MessageName(const MessageKey& k) {
  return absl::StrCat(ThreadName({k.tenant, k.patient, k.thread}), "/messages/",
                      k.message);
}

MessageKey KeyOf(const Message& m) {
  return {m.tenant, m.patient, m.thread_id, m.id};
}

absl::StatusOr<MessageKey> ParseMessageName(absl::string_view name) {
  ASSIGN_OR_RETURN(ResourceName n,
                   ResourceName::Parse(kMessagePattern, name, "name"));
  return MessageKey{n.Get("tenant"), n.Get("patient"), n.Get("thread"),
                    n.Get("message")};
}

// Records what the call touches, for its audit event.
void Touch(CallContext& call, absl::string_view tenant,
           absl::string_view resource, absl::string_view patient_id = "") {
  call.tenant = std::string(tenant);
  call.resource = std::string(resource);
  if (!patient_id.empty() && patient_id != "-") {
    call.patient = PatientName(tenant, patient_id);
  }
}

absl::Status Audit(sql::Txn& txn, CallContext& call) {
  ASSIGN_OR_RETURN(call.audit_leaf_index,
                   AppendAuditEvent(txn, call, absl::OkStatus()));
  call.audited = true;
  return absl::OkStatus();
}

// Patients and clinicians take part in threads; an EHR only reads them.
bool IsParticipant(Role role) {
  return role == Role::kPatient || role == Role::kClinician ||
         role == Role::kBreakGlass;
}

Actor ActorOf(const Principal& p) { return Actor{p.actor, p.role, p.peer}; }

bool StartsWith(absl::string_view s, absl::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The content's magic bytes for each allowed type.
bool ContentMatches(absl::string_view type, absl::string_view content) {
  if (type == "image/png") {
    return StartsWith(content, absl::string_view("\x89PNG\r\n\x1a\n", 8));
  }
  if (type == "image/jpeg") {
    return StartsWith(content, absl::string_view("\xFF\xD8\xFF", 3));
  }
  if (type == "application/pdf") return StartsWith(content, "%PDF-");
  return false;
}

std::string BodyAd(const std::string& name) {
  return absl::StrCat("message-body:", name);
}
std::string FilenameAd(const std::string& name) {
  return absl::StrCat("message-attachment-name:", name);
}
std::string ContentAd(const std::string& name) {
  return absl::StrCat("message-attachment:", name);
}
std::string ReasonAd(const std::string& name) {
  return absl::StrCat("message-retract-reason:", name);
}
std::string SubjectAd(const std::string& name) {
  return absl::StrCat("thread-subject:", name);
}

}  // namespace

std::string Thread::Name() const { return ThreadName({tenant, patient, id}); }
std::string Message::ThreadName() const {
  return messaging::ThreadName({tenant, patient, thread_id});
}
std::string Message::Name() const { return MessageName(KeyOf(*this)); }

absl::Status ValidateMessageText(absl::string_view field,
                                 absl::string_view text, bool has_attachment) {
  if (absl::StripAsciiWhitespace(text).empty() && !has_attachment) {
    return InvalidField(field, "EMPTY_MESSAGE",
                        "a message needs text or an attachment");
  }
  RETURN_IF_ERROR(CheckMultiLine(field, text, 0, kMaxText * 4));
  if (CodePoints(text) > static_cast<long>(kMaxText)) {
    return InvalidField(
        field, "FIELD_TOO_LONG",
        absl::StrCat(field, " is limited to ", kMaxText, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAttachment(const AttachmentInput& a) {
  absl::Status name =
      CheckSingleLine("attachment.filename", a.filename, 1, kMaxFilename);
  if (!name.ok() || a.filename.find_first_of("/\\") != std::string::npos ||
      a.filename == "." || a.filename == "..") {
    return InvalidField("attachment.filename", "INVALID_FILENAME",
                        "attachment.filename must be 1-200 characters on one "
                        "line without path separators or control characters");
  }
  if (a.content.empty()) {
    return InvalidField("attachment.content", "FIELD_REQUIRED",
                        "attachment.content is empty");
  }
  if (a.content.size() > kMaxAttachmentBytes) {
    return InvalidField("attachment.content", "ATTACHMENT_TOO_LARGE",
                        "an attachment is limited to 1 MiB");
  }
  if (a.content_type != "image/png" && a.content_type != "image/jpeg" &&
      a.content_type != "application/pdf") {
    return InvalidField("attachment.content_type",
                        "ATTACHMENT_TYPE_NOT_ALLOWED",
                        "attachments are image/png, image/jpeg or "
                        "application/pdf");
  }
  if (!ContentMatches(a.content_type, a.content)) {
    return InvalidField("attachment.content", "ATTACHMENT_TYPE_MISMATCH",
                        "the attachment's content is not of its declared "
                        "content_type");
  }
  return absl::OkStatus();
}

absl::Status MessagingManager::Migrate(sql::Database& db) {
  RETURN_IF_ERROR(db.Migrate("audit", AuditMigrations()));
  RETURN_IF_ERROR(db.Migrate("idempotency", IdempotencyMigrations()));
  RETURN_IF_ERROR(db.Migrate("sealer", SealerMigrations()));
  RETURN_IF_ERROR(db.Migrate("events", events::EventMigrations()));
  return db.Migrate("messaging", MessagingMigrations());
}

template <typename T>
void MessagingManager::RunWrite(
    absl::AnyInvocable<absl::StatusOr<T>(sql::Txn&)> fn, Done<T> done) {
  sql::WriteValue<T>(*deps_.db, std::move(fn), std::move(done));
}

absl::StatusOr<Message> MessagingManager::OpenMessage(sql::Txn& txn,
                                                      MessageRow row,
                                                      bool with_receipts) {
  Message m = std::move(row.message);
  const std::string name = m.Name();
  if (m.retracted) {
    m.text.clear();
    m.attachment.reset();
    if (!row.retract_reason_sealed.empty()) {
      ASSIGN_OR_RETURN(
          m.retract_reason,
          deps_.sealer->Open(txn, m.tenant, row.retract_reason_sealed,
                             ReasonAd(name)));
    }
  } else {
    ASSIGN_OR_RETURN(m.text, deps_.sealer->Open(txn, m.tenant, row.body_sealed,
                                                BodyAd(name)));
    if (m.attachment) {
      ASSIGN_OR_RETURN(
          m.attachment->filename,
          deps_.sealer->Open(txn, m.tenant, row.attachment_filename_sealed,
                             FilenameAd(name)));
      if (!row.attachment_content_sealed.empty()) {
        ASSIGN_OR_RETURN(
            m.attachment->content,
            deps_.sealer->Open(txn, m.tenant, row.attachment_content_sealed,
                               ContentAd(name)));
      }
    }
  }
  if (with_receipts) {
    ASSIGN_OR_RETURN(m.read_receipts, store_.Receipts(txn, KeyOf(m)));
    for (ReadReceipt& r : m.read_receipts) r.message = name;
  }
  return m;
}

void MessagingManager::CreateThread(CallContext& call, CreateThreadInput in,
                                    Done<Thread> done) {
  Touch(call, in.tenant,
        absl::StrCat(PatientName(in.tenant, in.patient), "/threads"),
        in.patient);
  absl::Status valid =
      CheckSingleLine("thread.subject", in.subject, 1, kMaxSubject);
  if (valid.ok() &&
      (in.category < static_cast<int>(ThreadCategory::kInstructions) ||
       in.category > static_cast<int>(ThreadCategory::kGeneral))) {
    valid = InvalidField("thread.category", "INVALID_ENUM_VALUE",
                         "thread.category must be a ThreadCategory value");
  }
  if (!valid.ok()) return done(valid);
  RunWrite<Thread>(
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Thread> {
        const Side side = SideOf(call.principal.role);
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          ASSIGN_OR_RETURN(ResourceName n,
                           ResourceName::Parse(kThreadPattern, *prior, "name"));
          ASSIGN_OR_RETURN(
              ThreadRow row,
              store_.GetThread(txn, {in.tenant, in.patient, n.Get("thread")},
                               side));
          ASSIGN_OR_RETURN(
              row.thread.subject,
              deps_.sealer->Open(txn, in.tenant, row.subject_sealed,
                                 SubjectAd(*prior)));
          call.resource = *prior;
          RETURN_IF_ERROR(Audit(txn, call));
          return row.thread;
        }
        ThreadRow row;
        Thread& t = row.thread;
        t.tenant = in.tenant;
        t.patient = in.patient;
        t.id = crypto::NewOpaqueId(*deps_.random);
        t.subject = in.subject;
        t.category = static_cast<ThreadCategory>(in.category);
        t.created_by = ActorOf(call.principal);
        t.create_time = t.last_message_time = call.now;
        ASSIGN_OR_RETURN(t.activity_seq, store_.NextActivity(txn, in.tenant));
        ASSIGN_OR_RETURN(row.subject_sealed,
                         deps_.sealer->Seal(txn, in.tenant, in.subject,
                                            SubjectAd(t.Name())));
        call.resource = t.Name();
        RETURN_IF_ERROR(store_.InsertThread(txn, row));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, t.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return t;
      },
      std::move(done));
}

absl::StatusOr<Message> MessagingManager::InsertMessageLocked(
    sql::Txn& txn, CallContext& call, const ThreadKey& key,
    const std::string& text, MessagePriority priority,
    const AttachmentInput* att, const std::string& corrects) {
  const Side side = SideOf(call.principal.role);
  ASSIGN_OR_RETURN(const int64_t message_count,
                   store_.ThreadMessageCount(txn, key));
  MessageRow row;
  Message& m = row.message;
  m.tenant = key.tenant;
  m.patient = key.patient;
  m.thread_id = key.thread;
  m.id = crypto::NewOpaqueId(*deps_.random);
  m.seq = message_count + 1;
  m.sender = ActorOf(call.principal);
  m.sender_side = side;
  m.text = text;
  m.priority = priority;
  m.create_time = call.now;
  m.delivery_status = DeliveryStatus::kSent;
  m.corrects = corrects;
  const std::string name = m.Name();
  ASSIGN_OR_RETURN(row.body_sealed,
                   deps_.sealer->Seal(txn, key.tenant, text, BodyAd(name)));
  if (att != nullptr) {
    Attachment a;
    a.filename = att->filename;
    a.content_type = att->content_type;
    a.size_bytes = static_cast<int64_t>(att->content.size());
    a.sha256 = crypto::Sha256(att->content);
    ASSIGN_OR_RETURN(
        row.attachment_filename_sealed,
        deps_.sealer->Seal(txn, key.tenant, att->filename, FilenameAd(name)));
    ASSIGN_OR_RETURN(
        row.attachment_content_sealed,
        deps_.sealer->Seal(txn, key.tenant, att->content, ContentAd(name)));
    m.attachment = std::move(a);
  }
  ASSIGN_OR_RETURN(int64_t activity, store_.NextActivity(txn, key.tenant));
  const bool urgent_pending =
      side == Side::kPatient && priority == MessagePriority::kUrgent;
  RETURN_IF_ERROR(store_.InsertMessage(txn, row, urgent_pending));
  RETURN_IF_ERROR(store_.TouchThread(txn, key, call.now, activity));
  call.resource = name;
  RETURN_IF_ERROR(
      events::AppendEvent(
          txn,
          events::EventFor(call, events::EventType::kMessageReceived, name),
          deps_.bus)
          .status());
  return m;
}

void MessagingManager::SendMessage(CallContext& call, SendInput in,
                                   Done<Message> done) {
  const ThreadKey key{in.tenant, in.patient, in.thread};
  Touch(call, in.tenant, absl::StrCat(ThreadName(key), "/messages"),
        in.patient);
  absl::Status valid =
      ValidateMessageText("text", in.text, in.attachment.has_value());
  if (valid.ok() && in.attachment) valid = ValidateAttachment(*in.attachment);
  if (valid.ok() &&
      in.priority != static_cast<int>(MessagePriority::kRoutine) &&
      in.priority != static_cast<int>(MessagePriority::kUrgent)) {
    valid = InvalidField("priority", "INVALID_ENUM_VALUE",
                         "priority must be MESSAGE_PRIORITY_ROUTINE or "
                         "MESSAGE_PRIORITY_URGENT");
  }
  if (!valid.ok()) return done(valid);
  RunWrite<Message>(
      [this, &call, key,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Message> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          ASSIGN_OR_RETURN(MessageKey k, ParseMessageName(*prior));
          ASSIGN_OR_RETURN(MessageRow row, store_.GetMessage(txn, k, false));
          call.resource = *prior;
          RETURN_IF_ERROR(Audit(txn, call));
          return OpenMessage(txn, std::move(row), /*with_receipts=*/true);
        }
        ASSIGN_OR_RETURN(
            Message m,
            InsertMessageLocked(txn, call, key, in.text,
                                static_cast<MessagePriority>(in.priority),
                                in.attachment ? &*in.attachment : nullptr,
                                /*corrects=*/""));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, m.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return m;
      },
      std::move(done));
}

void MessagingManager::MarkRead(CallContext& call, MarkReadInput in,
                                Done<MarkReadResult> done) {
  const ThreadKey key{in.tenant, in.patient, in.thread};
  Touch(call, in.tenant, ThreadName(key), in.patient);
  RunWrite<MarkReadResult>(
      [this, &call, key,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<MarkReadResult> {
        const Side side = SideOf(call.principal.role);
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        RETURN_IF_ERROR(store_.ThreadMessageCount(txn, key).status());
        auto up_to = store_.GetMessage(
            txn, {key.tenant, key.patient, key.thread, in.up_to_message},
            false);
        if (!up_to.ok()) {
          if (up_to.status().code() != absl::StatusCode::kNotFound) {
            return up_to.status();
          }
          return InvalidField("up_to_message", "MESSAGE_NOT_IN_THREAD",
                              "up_to_message is not a message of this "
                              "thread");
        }
        MarkReadResult result;
        if (prior) {
          ASSIGN_OR_RETURN(result.read_receipts,
                           store_.ReceiptsOf(txn, key, call.principal.actor,
                                             up_to->message.seq));
        } else {
          ASSIGN_OR_RETURN(auto unread, store_.UnreadUpTo(txn, key, side,
                                                          up_to->message.seq));
          const Actor reader = ActorOf(call.principal);
          for (const MessageRow& row : unread) {
            const MessageKey mk = KeyOf(row.message);
            RETURN_IF_ERROR(store_.MarkRead(txn, mk, reader, call.now));
            const std::string name = MessageName(mk);
            RETURN_IF_ERROR(
                events::AppendEvent(
                    txn,
                    events::EventFor(call, events::EventType::kMessageRead,
                                     name),
                    deps_.bus)
                    .status());
            result.read_receipts.push_back(ReadReceipt{name, reader, call.now});
          }
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, ThreadName(key)));
        }
        ASSIGN_OR_RETURN(ThreadRow thread, store_.GetThread(txn, key, side));
        ASSIGN_OR_RETURN(
            thread.thread.subject,
            deps_.sealer->Open(txn, key.tenant, thread.subject_sealed,
                               SubjectAd(ThreadName(key))));
        result.thread = std::move(thread.thread);
        call.resource = ThreadName(key);
        RETURN_IF_ERROR(Audit(txn, call));
        return result;
      },
      std::move(done));
}

void MessagingManager::RetractMessage(CallContext& call, RetractInput in,
                                      Done<RetractResult> done) {
  const MessageKey key{in.tenant, in.patient, in.thread, in.message};
  Touch(call, in.tenant, MessageName(key), in.patient);
  absl::Status valid =
      CheckSingleLine("reason", in.reason, 1, kMaxRetractReason);
  if (valid.ok() && !in.corrected_text.empty()) {
    valid = ValidateMessageText("corrected_text", in.corrected_text, false);
  }
  if (!valid.ok()) return done(valid);
  RunWrite<RetractResult>(
      [this, &call, key,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<RetractResult> {
        const std::string name = MessageName(key);
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(MessageRow original,
                         store_.GetMessage(txn, key, false));
        RetractResult result;
        if (prior) {
          if (!original.message.correction.empty()) {
            ASSIGN_OR_RETURN(MessageKey ck,
                             ParseMessageName(original.message.correction));
            ASSIGN_OR_RETURN(MessageRow c, store_.GetMessage(txn, ck, false));
            ASSIGN_OR_RETURN(result.correction,
                             OpenMessage(txn, std::move(c), true));
          }
          ASSIGN_OR_RETURN(result.message,
                           OpenMessage(txn, std::move(original), true));
          call.resource = name;
          RETURN_IF_ERROR(Audit(txn, call));
          return result;
        }
        if (original.message.sender.name != call.principal.actor) {
          return PermissionDenied("NOT_SENDER",
                                  "only the sender of a message can retract "
                                  "it");
        }
        if (original.message.retracted) {
          return FailedPrecondition("ALREADY_RETRACTED",
                                    "the message was already retracted");
        }
        std::string correction;
        if (!in.corrected_text.empty()) {
          ASSIGN_OR_RETURN(
              Message c,
              InsertMessageLocked(
                  txn, call, {key.tenant, key.patient, key.thread},
                  in.corrected_text, original.message.priority, nullptr, name));
          correction = c.Name();
          result.correction = std::move(c);
        }
        // The original body stays sealed in its row for the record; readers
        // see only that it was retracted, when and why.
        ASSIGN_OR_RETURN(
            std::string reason_sealed,
            deps_.sealer->Seal(txn, key.tenant, in.reason, ReasonAd(name)));
        RETURN_IF_ERROR(store_.MarkRetracted(txn, key, call.now, reason_sealed,
                                             correction));
        RETURN_IF_ERROR(
            events::AppendEvent(
                txn,
                events::EventFor(call, events::EventType::kMessageRetracted,
                                 name),
                deps_.bus)
                .status());
        call.resource = name;
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, name));
        RETURN_IF_ERROR(Audit(txn, call));
        ASSIGN_OR_RETURN(MessageRow after, store_.GetMessage(txn, key, false));
        ASSIGN_OR_RETURN(result.message,
                         OpenMessage(txn, std::move(after), true));
        return result;
      },
      std::move(done));
}

absl::StatusOr<Thread> MessagingManager::GetThread(CallContext& call,
                                                   const ThreadKey& key) {
  Touch(call, key.tenant, ThreadName(key), key.patient);
  absl::StatusOr<Thread> out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(ThreadRow row,
                     store_.GetThread(txn, key, SideOf(call.principal.role)));
    ASSIGN_OR_RETURN(row.thread.subject,
                     deps_.sealer->Open(txn, key.tenant, row.subject_sealed,
                                        SubjectAd(ThreadName(key))));
    out = std::move(row.thread);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<Page<Thread>> MessagingManager::ListThreads(
    CallContext& call, const ListThreadsInput& in, int page_size,
    absl::string_view page_token) {
  Touch(call, in.tenant,
        absl::StrCat(PatientName(in.tenant, in.patient), "/threads"),
        in.patient);
  if (in.category < 0 ||
      in.category > static_cast<int>(ThreadCategory::kGeneral)) {
    return InvalidField("category", "INVALID_ENUM_VALUE",
                        "category must be a ThreadCategory value");
  }
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  ThreadFilter filter;
  filter.tenant = in.tenant;
  filter.patient = in.patient;
  filter.category = static_cast<ThreadCategory>(in.category);
  filter.unread_only = in.unread_only;
  filter.side = SideOf(call.principal.role);
  const std::string filter_key = absl::StrCat(
      "threads|", in.tenant, "|", in.patient, "|", in.category, "|",
      in.unread_only ? 1 : 0, "|", static_cast<int>(filter.side));
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter_key, &first));
  if (!first && after.key <= 0) {
    return InvalidField("page_token", "INVALID_PAGE_TOKEN",
                        "page_token is not one this server issued");
  }
  Page<Thread> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        auto rows,
        store_.ListThreads(txn, filter, first ? 0 : after.key, limit + 1));
    for (ThreadRow& row : rows) {
      ASSIGN_OR_RETURN(row.thread.subject,
                       deps_.sealer->Open(txn, in.tenant, row.subject_sealed,
                                          SubjectAd(row.thread.Name())));
      page.items.push_back(std::move(row.thread));
    }
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token =
        EncodePageToken({page.items.back().activity_seq, ""}, filter_key);
  }
  return page;
}

absl::StatusOr<Message> MessagingManager::GetMessage(CallContext& call,
                                                     const MessageKey& key) {
  Touch(call, key.tenant, MessageName(key), key.patient);
  absl::StatusOr<Message> out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(MessageRow row, store_.GetMessage(txn, key, true));
    out = OpenMessage(txn, std::move(row), /*with_receipts=*/true);
    return out.status();
  }));
  if (IsParticipant(call.principal.role) &&
      out->sender_side != SideOf(call.principal.role) &&
      out->delivery_status == DeliveryStatus::kSent) {
    out->delivery_status = DeliveryStatus::kDelivered;
    MarkDeliveredLater({key}, call.now);
  }
  return out;
}

absl::StatusOr<Page<Message>> MessagingManager::ListMessages(
    CallContext& call, const ThreadKey& key, int page_size,
    absl::string_view page_token) {
  Touch(call, key.tenant, absl::StrCat(ThreadName(key), "/messages"),
        key.patient);
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter_key = absl::StrCat("messages|", ThreadName(key));
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter_key, &first));
  if (!first && after.key <= 0) {
    return InvalidField("page_token", "INVALID_PAGE_TOKEN",
                        "page_token is not one this server issued");
  }
  Page<Message> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(store_.ThreadMessageCount(txn, key).status());
    ASSIGN_OR_RETURN(
        auto rows,
        store_.ListMessages(txn, key, first ? 0 : after.key, limit + 1));
    for (MessageRow& row : rows) {
      ASSIGN_OR_RETURN(
          Message m, OpenMessage(txn, std::move(row), /*with_receipts=*/true));
      page.items.push_back(std::move(m));
    }
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token =
        EncodePageToken({page.items.back().seq, ""}, filter_key);
  }
  if (IsParticipant(call.principal.role)) {
    std::vector<MessageKey> delivered;
    for (Message& m : page.items) {
      if (m.sender_side != SideOf(call.principal.role) &&
          m.delivery_status == DeliveryStatus::kSent) {
        m.delivery_status = DeliveryStatus::kDelivered;
        delivered.push_back(KeyOf(m));
      }
    }
    if (!delivered.empty()) MarkDeliveredLater(std::move(delivered), call.now);
  }
  return page;
}

absl::StatusOr<UnreadCounts> MessagingManager::GetUnreadCounts(
    CallContext& call, absl::string_view tenant, absl::string_view patient) {
  Touch(call, tenant, absl::StrCat(PatientName(tenant, patient), "/threads"),
        patient);
  absl::StatusOr<UnreadCounts> out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    out = store_.CountUnread(txn, std::string(tenant), std::string(patient),
                             SideOf(call.principal.role));
    return out.status();
  }));
  return out;
}

absl::StatusOr<int64_t> MessagingManager::ResolveInboxStart(
    CallContext& call, absl::string_view tenant, absl::string_view patient,
    std::optional<int64_t> after) {
  Touch(call, tenant, absl::StrCat(PatientName(tenant, patient), "/threads"),
        patient);
  int64_t start = 0;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    if (after) {
      RETURN_IF_ERROR(events::CheckResumeCursor(txn, tenant, *after,
                                                /*zero_is_oldest=*/true,
                                                "after_cursor"));
      start = *after;
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(start, events::HeadCursor(txn, tenant));
    return absl::OkStatus();
  }));
  return start;
}

absl::StatusOr<InboxBatch> MessagingManager::ReadInbox(
    const InboxQuery& query) {
  InboxBatch batch;
  std::vector<MessageKey> delivered;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    events::EventQuery q;
    q.tenant = query.tenant;
    q.after = query.after;
    q.types = {events::EventType::kMessageReceived,
               events::EventType::kMessageRead,
               events::EventType::kMessageRetracted};
    if (query.patient != "-")
      q.patient = PatientName(query.tenant, query.patient);
    q.limit = query.limit;
    ASSIGN_OR_RETURN(events::EventBatch events, events::ReadEvents(txn, q));
    batch.scanned_through = events.scanned_through;
    batch.more = events.more;
    for (const events::EventRecord& e : events.events) {
      auto key = ParseMessageName(e.resource);
      if (!key.ok()) continue;  // not a message event of this service
      InboxUpdate u;
      u.cursor = e.cursor;
      switch (e.type) {
        case events::EventType::kMessageReceived: {
          auto row = store_.GetMessage(txn, *key, false);
          if (!row.ok()) continue;
          u.kind = InboxUpdate::Kind::kMessage;
          ASSIGN_OR_RETURN(u.message, OpenMessage(txn, *std::move(row), true));
          if (u.message.sender_side != query.viewer &&
              u.message.delivery_status == DeliveryStatus::kSent) {
            u.message.delivery_status = DeliveryStatus::kDelivered;
            delivered.push_back(*key);
          }
          break;
        }
        case events::EventType::kMessageRead:
          u.kind = InboxUpdate::Kind::kReadReceipt;
          u.read_receipt = ReadReceipt{
              e.resource, Actor{e.actor, e.actor_role, e.actor_peer}, e.time};
          break;
        case events::EventType::kMessageRetracted: {
          auto row = store_.GetMessage(txn, *key, false);
          if (!row.ok()) continue;
          u.kind = InboxUpdate::Kind::kRetraction;
          u.retraction = Retraction{e.resource, row->message.correction,
                                    row->message.retract_time.value_or(e.time)};
          break;
        }
        default:
          continue;
      }
      batch.updates.push_back(std::move(u));
    }
    return absl::OkStatus();
  }));
  if (!delivered.empty()) {
    MarkDeliveredLater(std::move(delivered), deps_.clock->Now());
  }
  return batch;
}

void MessagingManager::MarkDeliveredLater(std::vector<MessageKey> keys,
                                          absl::Time now) {
  // Delivery state is best effort: a lost update leaves SENT, never a lie.
  // The job may outlive this manager (it is not awaited): it captures only
  // the stateless store.
  deps_.db->Write(
      [store = store_, keys = std::move(keys),
       now](sql::Txn& txn) mutable -> absl::Status {
        for (const MessageKey& k : keys) {
          RETURN_IF_ERROR(store.MarkDelivered(txn, k, now).status());
        }
        return absl::OkStatus();
      },
      [](absl::Status) {});
}

absl::StatusOr<std::vector<UnreadEscalation>>
MessagingManager::CheckUnreadUrgent(absl::Time now) {
  std::vector<UnreadEscalation> raised;
  const absl::Time due = now - deps_.options.urgent_read_timeout;
  constexpr int kBatch = 100;
  while (true) {
    std::vector<UnreadEscalation> batch;
    RETURN_IF_ERROR(deps_.db->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
      batch.clear();
      ASSIGN_OR_RETURN(auto rows, store_.DueUrgent(txn, due, kBatch));
      for (const MessageRow& row : rows) {
        const Message& m = row.message;
        const std::string id = crypto::NewOpaqueId(*deps_.random);
        UnreadEscalation e;
        e.tenant = m.tenant;
        e.patient = m.patient;
        e.name =
            absl::StrCat(PatientName(m.tenant, m.patient), "/escalations/", id);
        e.message = m.Name();
        e.create_time = now;
        CallContext sys;
        sys.principal = SystemPrincipal();
        sys.method = "careseal.system/EscalateUnreadUrgentMessage";
        sys.correlation_id = crypto::HexEncode(deps_.random->Bytes(12));
        sys.now = now;
        sys.tenant = m.tenant;
        sys.resource = e.name;
        sys.patient = PatientName(m.tenant, m.patient);
        RETURN_IF_ERROR(store_.InsertEscalation(txn, id, e));
        RETURN_IF_ERROR(store_.MarkEscalated(txn, KeyOf(m), now));
        RETURN_IF_ERROR(
            events::AppendEvent(
                txn,
                events::EventFor(sys, events::EventType::kEscalationRaised,
                                 e.name),
                deps_.bus)
                .status());
        RETURN_IF_ERROR(AppendAuditEvent(txn, sys, absl::OkStatus()).status());
        batch.push_back(std::move(e));
      }
      return absl::OkStatus();
    }));
    const bool full = static_cast<int>(batch.size()) == kBatch;
    for (UnreadEscalation& e : batch) raised.push_back(std::move(e));
    if (!full) break;
  }
  return raised;
}

}  // namespace careseal::messaging
