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

void Periodic::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_);
    if (stopping_) return;
    mu_.Unlock();
    task_();
    mu_.Lock();
  }
}

}  // namespace careseal
