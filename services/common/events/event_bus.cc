#include "services/common/events/event_bus.h"

#include <limits>
#include <vector>

namespace careseal::events {

EventBus& EventBus::Default() {
  static EventBus* const bus = new EventBus();
  return *bus;
}

uint64_t EventBus::Subscribe(absl::string_view tenant, Callback fn) {
  auto entry = std::make_shared<Entry>();
  entry->tenant = std::string(tenant);
  {
    absl::MutexLock lock(&entry->mu);
    entry->fn = std::move(fn);
  }
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  entries_.emplace(id, std::move(entry));
  return id;
}

void EventBus::Unsubscribe(uint64_t id) {
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    entry = std::move(it->second);
    entries_.erase(it);
  }
  // Waits for a callback in progress; none starts afterwards.
  absl::MutexLock lock(&entry->mu);
  entry->active = false;
  entry->fn = nullptr;
}

void EventBus::Publish(absl::string_view tenant, int64_t cursor) {
  std::vector<std::shared_ptr<Entry>> targets;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, entry] : entries_) {
      if (entry->tenant == tenant) targets.push_back(entry);
    }
  }
  for (const auto& entry : targets) {
    absl::MutexLock lock(&entry->mu);
    if (entry->active) entry->fn(cursor);
  }
}

void EventBus::RingAll() {
  std::vector<std::shared_ptr<Entry>> targets;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, entry] : entries_) targets.push_back(entry);
  }
  for (const auto& entry : targets) {
    absl::MutexLock lock(&entry->mu);
    if (entry->active) entry->fn(std::numeric_limits<int64_t>::max());
  }
}

size_t EventBus::subscriber_count() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace careseal::events
