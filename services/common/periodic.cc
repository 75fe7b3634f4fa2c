#include "services/common/periodic.h"

#include <utility>

namespace careseal {

Periodic::Periodic(absl::Duration interval, absl::AnyInvocable<void()> task)
    : interval_(interval),
      task_(std::move(task)),
      thread_([this] { Loop(); }) {}

Periodic::~Periodic() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void Periodic::RunSoon() {
  absl::MutexLock lock(&mu_);
  soon_ = true;
}

void Periodic::Loop() {
  absl::MutexLock lock(&mu_);
  const auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || soon_;
  };
  while (true) {
    mu_.AwaitWithTimeout(absl::Condition(&woken), interval_);
    if (stopping_) return;
    soon_ = false;
    mu_.Unlock();
    task_();
    mu_.Lock();
  }
}

}  // namespace careseal
