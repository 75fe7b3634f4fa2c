// The portal's server-side sessions. The browser holds only a random
// 256-bit cookie value; the link token, the CareSeal session token (`sid`),
// the patient's resource name and the consents' signing tokens stay here.
// A session ends after 15 minutes without a request (idle) or 12 hours after
// it began (absolute), matching the identity service's portal sessions.
// Thread-safe.
#ifndef CARESEAL_CLIENTS_PORTAL_SESSION_STORE_H_
#define CARESEAL_CLIENTS_PORTAL_SESSION_STORE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace careseal::portal {

// One pending task the portal listed, addressed in URLs by its index only
// (resource names stay out of URLs and logs).
struct PortalTask {
  std::string consent;            // tenants/t/patients/p/consents/c
  std::string title;              // shown in the task list
  std::string document_sha256;    // of the document last shown (raw bytes)
  std::string signature_meaning;  // as last shown
  std::string receipt_file;       // set once signed through this session
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
  // Replaces the stored session (if still present).
  void Put(const std::string& id, PortalSession session);
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
