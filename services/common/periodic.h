// Periodic: runs a task every `interval` on a thread of its own until it is
// destroyed. For sweeps that are safe to repeat (each run re-reads what is
// due from the store), e.g. signing audit checkpoints of grown trees or
// escalating urgent messages nobody has read. The first run is one interval
// after construction, or sooner after RunSoon(). The destructor stops the
// loop (waiting for a run in progress) and joins.
#ifndef CARESEAL_SERVICES_COMMON_PERIODIC_H_
#define CARESEAL_SERVICES_COMMON_PERIODIC_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace careseal {

class Periodic {
 public:
  // REQUIRES: interval > 0.
  Periodic(absl::Duration interval, absl::AnyInvocable<void()> task);
  ~Periodic();

  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;

  // Makes the loop run the task now instead of at the end of its interval
  // (after the run in progress, if one is; the next interval starts after
  // that run). Thread-safe; never blocks on the task.
  void RunSoon();

 private:
  void Loop();

  const absl::Duration interval_;
  absl::AnyInvocable<void()> task_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool soon_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PERIODIC_H_
