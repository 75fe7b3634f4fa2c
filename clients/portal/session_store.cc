#include "clients/portal/session_store.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "absl/strings/escaping.h"

namespace careseal::portal {

std::string RandomToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) std::abort();
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

std::string SessionStore::Create(PortalSession session, absl::Time now) {
  session.created = now;
  session.last_seen = now;
  std::string id = RandomToken();
  absl::MutexLock lock(&mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = Expired(it->second, now) ? sessions_.erase(it) : std::next(it);
  }
  if (sessions_.size() >= max_sessions_) {
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.last_seen < oldest->second.last_seen) oldest = it;
    }
    sessions_.erase(oldest);
  }
  sessions_.emplace(id, std::move(session));
  return id;
}

std::optional<PortalSession> SessionStore::Touch(const std::string& id,
                                                 absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (Expired(it->second, now)) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_seen = now;
  return it->second;
}

std::optional<PortalSession> SessionStore::Peek(const std::string& id,
                                                absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (Expired(it->second, now)) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

bool SessionStore::Update(const std::string& id,
                          const std::function<void(PortalSession&)>& change) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  change(it->second);
  return true;
}

void SessionStore::Put(const std::string& id, PortalSession session) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it != sessions_.end()) it->second = std::move(session);
}

void SessionStore::Erase(const std::string& id) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(id);
}

size_t SessionStore::size() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

}  // namespace careseal::portal
