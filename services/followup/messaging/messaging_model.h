// The messaging domain's plain types: threads between a patient and the
// tenant's care-team pool, messages with sealed bodies and attachments,
// read receipts, and the updates a live inbox streams. No gRPC, no protobuf;
// enum values equal the contract's (messaging.proto) so the edge converts by
// value after validating.
#ifndef CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_MODEL_H_
#define CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/common/platform/principal.h"

namespace careseal::messaging {

enum class ThreadCategory : int {
  kUnspecified = 0,
  kInstructions = 1,
  kFollowUp = 2,
  kBilling = 3,
  kGeneral = 4,
};

enum class MessagePriority : int {
  kUnspecified = 0,
  kRoutine = 1,
  kUrgent = 2,
};

enum class DeliveryStatus : int {
  kSent = 1,
  kDelivered = 2,
  kRead = 3,
};

// The two sides of a thread. A message goes from its sender's side to the
// other; reads and unread counts are per side (any clinician reading reads
// for the care team).
enum class Side : int {
  kPatient = 1,
  kCareTeam = 2,  // clinicians, break-glass, and CareSeal's own messages
};

// The side a principal writes and reads for.
inline Side SideOf(Role role) {
  return role == Role::kPatient ? Side::kPatient : Side::kCareTeam;
}
inline Side OtherSide(Side side) {
  return side == Side::kPatient ? Side::kCareTeam : Side::kPatient;
}

struct Actor {
  std::string name;  // tenants/{t}/clinicians/{c}, tenants/{t}/patients/{p}
  Role role = Role::kSystem;
  std::string peer;
};

struct Thread {
  std::string tenant;
  std::string patient;  // patient id
  std::string id;
  std::string subject;
  ThreadCategory category = ThreadCategory::kUnspecified;
  Actor created_by;
  absl::Time create_time;
  absl::Time last_message_time;  // create_time until the first message
  int message_count = 0;
  // For the caller's side: messages from the other side not yet read.
  int unread_count = 0;
  int urgent_unread_count = 0;
  // Orders threads by latest activity (commit order); also the page key.
  int64_t activity_seq = 0;

  std::string Name() const;
};

struct Attachment {
  std::string filename;
  std::string content_type;  // image/png, image/jpeg, application/pdf
  std::string content;       // empty unless asked for (GetMessage)
  int64_t size_bytes = 0;
  std::string sha256;  // raw 32 bytes
};

struct ReadReceipt {
  std::string message;  // message resource name
  Actor reader;
  absl::Time read_time;
};

struct Message {
  std::string tenant;
  std::string patient;
  std::string thread_id;
  std::string id;
  int64_t seq = 0;  // position in its thread, 1-based
  Actor sender;
  Side sender_side = Side::kCareTeam;
  std::string text;  // "" once retracted
  MessagePriority priority = MessagePriority::kUnspecified;
  std::optional<Attachment> attachment;  // cleared once retracted
  std::string related_resource;
  absl::Time create_time;
  DeliveryStatus delivery_status = DeliveryStatus::kSent;
  std::vector<ReadReceipt> read_receipts;
  bool retracted = false;
  std::optional<absl::Time> retract_time;
  std::string retract_reason;
  std::string correction;  // name of the correcting message
  std::string corrects;    // name of the message this one corrects

  std::string ThreadName() const;
  std::string Name() const;
};

struct Retraction {
  std::string message;
  std::string correction;
  absl::Time retract_time;
};

// One item of a live inbox, at its durable cursor.
struct InboxUpdate {
  enum class Kind { kMessage, kReadReceipt, kRetraction };
  int64_t cursor = 0;
  Kind kind = Kind::kMessage;
  Message message;
  ReadReceipt read_receipt;
  Retraction retraction;
};

struct ThreadUnread {
  std::string thread;  // resource name
  int unread = 0;
  int urgent_unread = 0;
};

struct UnreadCounts {
  int total_unread = 0;
  int urgent_unread = 0;
  std::vector<ThreadUnread> threads;  // latest activity first, at most 100
};

// An escalation raised because an urgent patient message went unread.
struct UnreadEscalation {
  std::string name;  // tenants/{t}/patients/{p}/escalations/{e}
  std::string tenant;
  std::string patient;
  std::string message;  // the urgent message (source)
  absl::Time create_time;
};

}  // namespace careseal::messaging

#endif  // CARESEAL_SERVICES_FOLLOWUP_MESSAGING_MESSAGING_MODEL_H_
