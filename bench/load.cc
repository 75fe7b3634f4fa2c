#include "bench/load.h"

#include <algorithm>
#include <thread>

namespace careseal::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

enum Phase : int { kWarmup = 0, kMeasure = 1, kStop = 2 };

class ClosedLoop {
 public:
  ClosedLoop(CallSource& source, int inflight, int64_t budget)
      : source_(source), slots_(inflight), remaining_(budget) {
    for (Slot& s : slots_) s.latencies_us.reserve(1 << 16);
  }

  void Begin(Phase phase) {
    phase_.store(phase);
    {
      absl::MutexLock lock(&mu_);
      active_ = static_cast<int>(slots_.size());
    }
    for (size_t i = 0; i < slots_.size(); ++i) Issue(static_cast<int>(i));
  }

  void SetPhase(Phase phase) { phase_.store(phase); }

  // Blocks until every slot has stopped (or `deadline` passes, if given).
  // Returns true if all slots stopped.
  bool WaitStopped(std::optional<SteadyClock::time_point> deadline) {
    absl::MutexLock lock(&mu_);
    auto all_stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return active_ == 0;
    };
    if (!deadline) {
      mu_.Await(absl::Condition(&all_stopped));
      return true;
    }
    const absl::Duration wait =
        absl::FromChrono(*deadline - SteadyClock::now());
    return mu_.AwaitWithTimeout(absl::Condition(&all_stopped), wait);
  }

  LoadResult Collect(double seconds) {
    LoadResult result;
    result.seconds = seconds;
    result.source_exhausted = exhausted_.load();
    size_t total = 0;
    for (const Slot& s : slots_) total += s.latencies_us.size();
    result.latencies_us.reserve(total);
    for (const Slot& s : slots_) {
      result.ok += s.ok;
      result.errors += s.errors;
      for (size_t c = 0; c < s.errors_by_code.size(); ++c) {
        result.errors_by_code[c] += s.errors_by_code[c];
      }
      result.latencies_us.insert(result.latencies_us.end(),
                                 s.latencies_us.begin(), s.latencies_us.end());
    }
    absl::MutexLock lock(&mu_);
    result.first_error = first_error_;
    return result;
  }

  SteadyClock::time_point last_completion() const {
    SteadyClock::time_point last{};
    for (const Slot& s : slots_) last = std::max(last, s.last_completion);
    return last;
  }

 private:
  // Owned by one slot: at most one call of a slot is outstanding, and the
  // next call starts from the previous completion, so no locking.
  struct Slot {
    int64_t ok = 0;
    int64_t errors = 0;
    std::array<int64_t, 17> errors_by_code{};
    std::vector<uint32_t> latencies_us;
    SteadyClock::time_point last_completion{};
  };

  void Issue(int slot) {
    if (phase_.load() == kStop ||
        (remaining_ >= 0 && remaining_.fetch_sub(1) <= 0)) {
      SlotStopped();
      return;
    }
    const SteadyClock::time_point start = SteadyClock::now();
    const bool started =
        source_.Start(slot, [this, slot, start](const grpc::Status& status) {
          OnDone(slot, start, status);
        });
    if (!started) {
      exhausted_.store(true);
      SlotStopped();
    }
  }

  void OnDone(int slot, SteadyClock::time_point start,
              const grpc::Status& status) {
    const SteadyClock::time_point end = SteadyClock::now();
    Slot& s = slots_[slot];
    if (phase_.load() == kMeasure) {
      s.last_completion = end;
      if (status.ok()) {
        ++s.ok;
        const auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(end - start)
                .count();
        s.latencies_us.push_back(static_cast<uint32_t>(
            std::min<int64_t>(us, std::numeric_limits<uint32_t>::max())));
      } else {
        ++s.errors;
        const size_t code = static_cast<size_t>(status.error_code());
        if (code < s.errors_by_code.size()) ++s.errors_by_code[code];
        absl::MutexLock lock(&mu_);
        if (first_error_.empty()) {
          first_error_ = std::to_string(status.error_code()) + ": " +
                         status.error_message();
        }
      }
    }
    Issue(slot);
  }

  void SlotStopped() {
    absl::MutexLock lock(&mu_);
    --active_;
  }

  CallSource& source_;
  std::vector<Slot> slots_;
  std::atomic<int> phase_{kWarmup};
  std::atomic<int64_t> remaining_;  // -1: unlimited
  std::atomic<bool> exhausted_{false};
  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

double LoadResult::PercentileMs(double q) const {
  if (latencies_us.empty()) return 0;
  std::vector<uint32_t> sorted = latencies_us;
  const size_t k = std::min(sorted.size() - 1,
                            static_cast<size_t>(q * (sorted.size() - 1) + 0.5));
  std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
  return sorted[k] / 1000.0;
}

LoadResult RunForDuration(CallSource& source, int inflight,
                          absl::Duration warmup, absl::Duration window,
                          const LoadHooks& hooks) {
  ClosedLoop loop(source, inflight, /*budget=*/-1);
  loop.Begin(kWarmup);
  const SteadyClock::time_point warm_end =
      SteadyClock::now() + absl::ToChronoNanoseconds(warmup);
  // A source that runs dry during warm-up ends the run early.
  loop.WaitStopped(warm_end);
  loop.SetPhase(kMeasure);
  const SteadyClock::time_point start = SteadyClock::now();
  if (hooks.on_window_start) hooks.on_window_start();
  const bool dry = loop.WaitStopped(start + absl::ToChronoNanoseconds(window));
  SteadyClock::time_point end = SteadyClock::now();
  if (dry) end = std::max(start, loop.last_completion());
  if (hooks.on_window_end) hooks.on_window_end();
  loop.SetPhase(kStop);
  loop.WaitStopped(std::nullopt);
  return loop.Collect(std::chrono::duration<double>(end - start).count());
}

LoadResult RunCount(CallSource& source, int inflight, int64_t calls) {
  ClosedLoop loop(source, inflight, calls);
  const SteadyClock::time_point start = SteadyClock::now();
  loop.Begin(kMeasure);
  loop.WaitStopped(std::nullopt);
  return loop.Collect(
      std::chrono::duration<double>(SteadyClock::now() - start).count());
}

}  // namespace careseal::bench
