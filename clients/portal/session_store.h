// The portal's server-side sessions. The browser holds only a random
// 256-bit cookie value; the link token, the CareSeal session token (`sid`),
// the patient's resource name and the consents' signing tokens stay here.
// A session ends after 15 minutes without a request (idle) or 12 hours after
// it began (absolute), matching the identity service's portal sessions.
// Thread-safe.
#ifndef CARESEAL_CLIENTS_PORTAL_SESSION_STORE_H_
#define CARESEAL_CLIENTS_PORTAL_SESSION_STORE_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "careseal/v1/followup.pb.h"

namespace careseal::portal {

// What a task is about.
enum class TaskKind { kConsent, kInstructions, kCheckIn };

// A follow-up check-in being answered one question per screen. Answers stay
// here (never in URLs or logs) until each instrument is submitted.
struct CheckInProgress {
  std::vector<careseal::v1::Instrument> instruments;  // in check-in order
  // Answers by instrument index, then item id.
  std::vector<std::map<std::string, careseal::v1::Answer>> answers;
  std::vector<bool> submitted;           // per instrument
  std::vector<std::string> request_ids;  // per instrument, kept on retry
  std::vector<bool> due;                 // complete, waiting to be sent
  // Crisis resources to show on the next screen, and where to go after.
  std::optional<careseal::v1::CrisisResources> crisis;
  bool crisis_from_server = false;  // else the portal's built-in defaults
  bool escalated = false;           // the care team was alerted
  int resume_step = -1;             // -1: the end
};

// One task the portal listed, addressed in URLs by its index only (resource
// names stay out of URLs and logs). Indexes are stable for the session: a
// new listing updates tasks in place and appends new ones.
struct PortalTask {
  TaskKind kind = TaskKind::kConsent;
  bool listed = true;  // pending (or a signed consent) at the latest listing
  std::string title;   // shown in the task list
  // kConsent
  std::string consent;            // tenants/t/patients/p/consents/c
  std::string document_sha256;    // of the document last shown (raw bytes)
  std::string signature_meaning;  // as last shown
  std::string receipt_file;       // set once signed through this session
  bool active = false;            // ACTIVE (signed) at the latest listing
  bool declined_here = false;     // declined through this session
  bool withdrawn_here = false;    // withdrawn through this session
  // kInstructions
  std::string session;              // tenants/t/patients/p/sessions/s
  std::string instructions_sha256;  // content_sha256 of the version shown
  bool checklist_shown = false;     // the day-of checklist was on the form
  bool acknowledged = false;        // current version acknowledged
  bool checklist_done = false;      // day-of checklist answered
  bool acknowledged_here = false;   // through this session
  bool ready = false;               // readiness after the last attestation
  // kCheckIn
  std::string check_in;  // tenants/t/patients/p/checkIns/c
  std::string note;      // the clinician's note to the patient
  std::optional<CheckInProgress> progress;  // once opened
  bool completed_here = false;
};

// A message thread the portal listed (addressed by index, like tasks).
struct PortalThread {
  std::string name;
  std::string subject;
  int unread = 0;
  int message_count = 0;
  absl::Time last_message_time;
};

struct PortalSession {
  std::string csrf;  // synchronizer token for every POST
  absl::Time created;
  absl::Time last_seen;
  std::string link_token;         // from /l/<token>: the identity link
  std::string signing_candidate;  // from /l/<token>/<signing>, until checked
  bool verified = false;
  std::string patient;        // tenants/t/patients/p
  std::string session_name;   // .../portalSessions/s
  std::string session_token;  // the `sid` claim
  // Consent name -> the signing token that proves the link (the link token
  // when the link was the consent's signing link).
  std::map<std::string, std::string> signing_tokens;
  std::vector<PortalTask> tasks;
  std::vector<PortalThread> threads;
};

class SessionStore {
 public:
  static constexpr absl::Duration kIdle = absl::Minutes(15);
  static constexpr absl::Duration kAbsolute = absl::Hours(12);

  explicit SessionStore(size_t max_sessions = 10000)
      : max_sessions_(max_sessions) {}

  // Starts a session; returns its cookie id. Expired sessions are dropped;
  // when full, the least recently seen session is dropped.
  std::string Create(PortalSession session, absl::Time now);
  // The session for `id` if live at `now` (and marks it seen); an expired
  // one is erased and nullopt returned.
  std::optional<PortalSession> Touch(const std::string& id, absl::Time now);
  // The session for `id` if live at `now`, without marking it seen (for
  // background requests such as the inbox poll, which must not keep an idle
  // session alive).
  std::optional<PortalSession> Peek(const std::string& id, absl::Time now);
  // Replaces the stored session (if still present).
  void Put(const std::string& id, PortalSession session);
  // Changes the stored session in place under the lock (if still present),
  // so that concurrent requests of one session do not overwrite each
  // other's changes. Returns false if the session is gone.
  bool Update(const std::string& id,
              const std::function<void(PortalSession&)>& change);
  void Erase(const std::string& id);
  size_t size() const;

 private:
  static bool Expired(const PortalSession& s, absl::Time now) {
    return now - s.last_seen >= kIdle || now - s.created >= kAbsolute;
  }
  const size_t max_sessions_;
  mutable absl::Mutex mu_;
  std::map<std::string, PortalSession> sessions_ ABSL_GUARDED_BY(mu_);
};

// 32 random bytes, base64url (no padding). Aborts if the RNG fails.
std::string RandomToken();

}  // namespace careseal::portal

#endif  // CARESEAL_CLIENTS_PORTAL_SESSION_STORE_H_
