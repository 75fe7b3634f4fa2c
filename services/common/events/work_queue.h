// WorkQueue: a few threads for work that must not run on a gRPC thread or on
// the store's own threads, e.g. a stream reading what is new after the
// EventBus rang. Tasks run in FIFO order per thread pool; the destructor runs
// the tasks already queued, then joins. Thread-safe.
#ifndef CARESEAL_SERVICES_COMMON_EVENTS_WORK_QUEUE_H_
#define CARESEAL_SERVICES_COMMON_EVENTS_WORK_QUEUE_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace careseal::events {

class WorkQueue {
 public:
  explicit WorkQueue(int threads);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `task`; never blocks on the task.
  void Schedule(absl::AnyInvocable<void()> task);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace careseal::events

#endif  // CARESEAL_SERVICES_COMMON_EVENTS_WORK_QUEUE_H_
