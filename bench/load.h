// A closed-loop load generator on gRPC's callback client API: `inflight`
// slots each keep exactly one call outstanding and start the next one from
// the completion of the previous one, so the offered load adapts to the
// server (no coordinated-omission bias from a fixed arrival rate, and no
// client thread per call).
#ifndef CARESEAL_BENCH_LOAD_H_
#define CARESEAL_BENCH_LOAD_H_

#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace careseal::bench {

// Called exactly once per call, on a gRPC thread, with the call's outcome
// (a scenario may turn a wrong answer into a non-OK status).
using Completion = std::function<void(const grpc::Status&)>;

// What the slots call. Thread-safe: Start runs concurrently on many threads.
class CallSource {
 public:
  virtual ~CallSource() = default;
  // Starts one call for `slot` and arranges for `done` to run when it ends.
  // Returns false (without calling `done`) when there is nothing left to
  // call, e.g. a pool of pending consents is used up. The call's
  // grpc::ClientContext must be destroyed before `done` runs: once the last
  // slot's `done` has run, the caller may drop its channels, and a context
  // holds a channel reference. A channel whose last reference goes on one of
  // gRPC's callback threads joins that thread from itself and frees the
  // completion queue it is polling (seen as a crash in
  // grpc_completion_queue_next on a callback thread at the bench's exit,
  // while the machine was busy compiling).
  virtual bool Start(int slot, Completion done) = 0;
};

struct LoadResult {
  int64_t ok = 0;
  int64_t errors = 0;
  std::array<int64_t, 17> errors_by_code{};
  std::string first_error;
  double seconds = 0;  // length of the measured window
  bool source_exhausted = false;
  std::vector<uint32_t> latencies_us;  // of the calls counted in `ok`

  double CallsPerSecond() const { return seconds > 0 ? ok / seconds : 0; }
  // q in [0, 1]; milliseconds.
  double PercentileMs(double q) const;
};

struct LoadHooks {
  // Run by the driving thread right when the measured window opens / closes
  // (e.g. to read the server's CPU time).
  std::function<void()> on_window_start;
  std::function<void()> on_window_end;
};

// Runs `inflight` slots over `source`: `warmup` unmeasured, then `window`
// measured. Calls that complete inside the window are counted. Returns once
// every outstanding call has completed.
LoadResult RunForDuration(CallSource& source, int inflight,
                          absl::Duration warmup, absl::Duration window,
                          const LoadHooks& hooks = {});

// Runs exactly `calls` calls (fewer if the source runs out) over `inflight`
// slots, all counted; for setting up data through the public API.
LoadResult RunCount(CallSource& source, int inflight, int64_t calls);

}  // namespace careseal::bench

#endif  // CARESEAL_BENCH_LOAD_H_
