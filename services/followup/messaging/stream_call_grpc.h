// Server-streaming "watch" RPCs (WatchInbox, WatchEvents) on the gRPC
// callback API, resumable by a durable cursor.
//
// CursorStream never blocks a gRPC thread and never polls:
//   * it subscribes to the tenant's EventBus bell (rung on the store's writer
//     thread once a transaction with events is durable) and, on a ring, only
//     flips a flag and queues a read on a WorkQueue thread;
//   * the read (`Fetch`, after the last cursor considered) runs on that
//     WorkQueue thread, one at a time per stream; its results are written one
//     by one (StartWrite; the next in OnWriteDone);
//   * a stream asks for more only once its client has taken everything it
//     was sent (backpressure: a slow client costs one batch of memory, the
//     rest waits in the table), so SLOW_CONSUMER never needs to be raised;
//   * subscribing happens before the first read, so an event committed
//     between "start" and "subscribed" is found by that read: nothing is
//     missed; each read resumes strictly after the last cursor considered
//     and items go out in cursor order: nothing is duplicated.
// The call is audited (outcome included) before anything is sent. It ends
// on client cancel, a failed read, server shutdown (the host cancels
// streams at the end of its shutdown grace), or when the caller's
// credentials expire (Principal::valid_until: the token's exp or a
// break-glass grant's end; UNAUTHENTICATED TOKEN_EXPIRED), so a stream
// never outlives what let it start: the client opens it again with a fresh
// token from its last cursor.
//
// Lifetime: the reactor deletes itself in OnDone. It calls Finish only when
// no write, read or audit of its own is in flight, so no queued task can
// touch a deleted stream; Unsubscribe in OnDone waits out a ringing bell,
// and detaching the expiry alarm waits out a firing one.
#ifndef CARESEAL_SERVICES_FOLLOWUP_MESSAGING_STREAM_CALL_GRPC_H_
#define CARESEAL_SERVICES_FOLLOWUP_MESSAGING_STREAM_CALL_GRPC_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/common/events/event_bus.h"
#include "services/common/events/work_queue.h"
#include "services/common/grpc/status_convert.h"
#include "services/common/grpc/unary_call.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/status.h"

namespace careseal::messaging {

// Caps concurrent streams per caller (TOO_MANY_STREAMS). Thread-safe.
class StreamLimiter {
 public:
  explicit StreamLimiter(int max_per_actor) : max_(max_per_actor) {}
  bool Acquire(const std::string& actor);
  void Release(const std::string& actor);

 private:
  const int max_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
};

// What a stream's handler shares with its process. All outlive the server.
struct StreamEdge {
  Edge edge;
  events::EventBus* bus = nullptr;
  events::WorkQueue* pump = nullptr;
  StreamLimiter* limiter = nullptr;
};

// Fills `call` for a streaming call (method, time, correlation id) and runs
// authentication, the role row and the stream cap, like RunUnary does for
// unary calls.
absl::Status BeginStreamCall(grpc::CallbackServerContext* context,
                             const StreamEdge& edge, const char* method,
                             CallContext& call, bool* acquired_stream);

template <typename Response>
class CursorStream final : public grpc::ServerWriteReactor<Response> {
 public:
  struct Batch {
    std::vector<Response> items;  // ascending cursor
    int64_t scanned_through = 0;
    bool more = false;
  };
  // Reads what follows `after`. Runs on the pump, never concurrently with
  // itself for one stream.
  using Fetch = absl::AnyInvocable<absl::StatusOr<Batch>(int64_t after)>;

  explicit CursorStream(const StreamEdge& edge) : edge_(edge) {}

  CallContext& call() { return call_; }
  void set_acquired_stream(bool v) { acquired_ = v; }

  // Audits the failed call, then finishes with `status`.
  void Reject(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      busy_ = true;
    }
    edge_.edge.db->Write(
        [this, status](sql::Txn& txn) {
          return AppendAuditEvent(txn, call_, status).status();
        },
        [this, status](absl::Status) {
          {
            absl::MutexLock lock(&mu_);
            busy_ = false;
            end_ = status;
            stopping_ = true;
          }
          Settle();
        });
  }

  // Audits the call, subscribes to the tenant's bell, then streams what
  // follows `after`, live.
  void Start(std::string tenant, int64_t after, Fetch fetch) {
    {
      absl::MutexLock lock(&mu_);
      busy_ = true;
      position_ = after;
      fetch_ = std::move(fetch);
    }
    edge_.edge.db->Write(
        [this](sql::Txn& txn) {
          return AppendAuditEvent(txn, call_, absl::OkStatus()).status();
        },
        [this, tenant = std::move(tenant)](absl::Status audit) {
          if (!audit.ok()) {
            {
              absl::MutexLock lock(&mu_);
              busy_ = false;
              stopping_ = true;
              end_ = Error(absl::StatusCode::kUnavailable, "AUDIT_UNAVAILABLE",
                           "the call could not be audited, so it was not "
                           "answered; retry");
            }
            Settle();
            return;
          }
          const uint64_t id = edge_.bus->Subscribe(
              tenant, [this](int64_t cursor) { OnBell(cursor); });
          {
            absl::MutexLock lock(&mu_);
            subscription_ = id;
          }
          ArmExpiry();
          edge_.pump->Schedule([this] { RunFetch(); });  // busy_ still held
        });
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok) {
        queue_.pop_front();
      } else {
        stopping_ = true;  // the client is gone
        if (end_.ok()) end_ = absl::CancelledError("the stream was broken");
      }
    }
    Settle();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (end_.ok()) end_ = absl::CancelledError("the stream was cancelled");
    }
    Settle();
  }

  void OnDone() override {
    uint64_t id;
    {
      absl::MutexLock lock(&mu_);
      id = subscription_;
    }
    if (id != 0) edge_.bus->Unsubscribe(id);
    if (expiry_ != nullptr) {
      absl::MutexLock lock(&expiry_->mu);
      expiry_->stream = nullptr;  // waits out a firing alarm
    }
    if (acquired_) edge_.limiter->Release(call_.principal.actor);
    delete this;
  }

 private:
  // The expiry alarm's state, shared with its callback (which may run after
  // the stream is gone, or while it is being deleted).
  struct Expiry {
    absl::Mutex mu;
    CursorStream* stream ABSL_GUARDED_BY(mu) = nullptr;
    grpc::Alarm alarm;
  };

  // Sets the alarm for the end of the caller's credentials, if they end.
  void ArmExpiry() {
    const absl::Time until = call_.principal.valid_until;
    if (until == absl::InfiniteFuture()) return;
    expiry_ = std::make_shared<Expiry>();
    {
      absl::MutexLock lock(&expiry_->mu);
      expiry_->stream = this;
    }
    // Measured on the server's clock, waited on the system clock.
    const absl::Duration left =
        std::max(until - call_.now, absl::ZeroDuration());
    std::weak_ptr<Expiry> weak = expiry_;
    expiry_->alarm.Set(
        std::chrono::system_clock::now() + absl::ToChronoNanoseconds(left),
        [weak](bool fired) {
          std::shared_ptr<Expiry> e = weak.lock();
          if (!fired || e == nullptr) return;
          absl::MutexLock lock(&e->mu);
          if (e->stream != nullptr) e->stream->Expire();
        });
  }

  // From the expiry alarm: ends the stream with TOKEN_EXPIRED. Never
  // finishes inline (the stream could be deleted under the alarm): the
  // finish goes through the pump with busy_ held, like a read.
  void Expire() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ || finished_) return;
      stopping_ = true;
      end_ = Error(absl::StatusCode::kUnauthenticated, "TOKEN_EXPIRED",
                   "the credentials this stream was opened with have "
                   "expired; open it again with a new token from the last "
                   "cursor received");
      if (busy_) return;  // the read in flight settles it
      busy_ = true;
    }
    edge_.pump->Schedule([this] {
      {
        absl::MutexLock lock(&mu_);
        busy_ = false;
      }
      Settle();
    });
  }

  // On the writer thread: quick, never blocks on I/O.
  void OnBell(int64_t cursor) {
    bool schedule = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ || finished_ || cursor <= position_) return;
      if (busy_ || writing_ || !queue_.empty()) {
        dirty_ = true;
      } else {
        busy_ = true;
        schedule = true;
      }
    }
    if (schedule) edge_.pump->Schedule([this] { RunFetch(); });
  }

  // On the pump. REQUIRES: busy_ was set for this task.
  void RunFetch() {
    int64_t after;
    {
      absl::MutexLock lock(&mu_);
      dirty_ = false;
      after = position_;
      if (stopping_) {
        busy_ = false;
        after = -1;
      }
    }
    if (after >= 0) {
      absl::StatusOr<Batch> batch = fetch_(after);
      absl::MutexLock lock(&mu_);
      busy_ = false;
      if (!batch.ok()) {
        stopping_ = true;
        end_ = batch.status();
      } else {
        position_ = batch->scanned_through;
        more_ = batch->more;
        for (Response& r : batch->items) queue_.push_back(std::move(r));
      }
    }
    Settle();
  }

  // Decides the next step under the lock, then takes it outside: finish,
  // write the next item, or read more. Safe to call from any thread.
  void Settle() {
    enum class Step { kNone, kFinish, kWrite, kFetch } step = Step::kNone;
    const Response* next = nullptr;
    absl::Status end;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || busy_ || writing_) return;
      if (stopping_) {
        finished_ = true;
        end = end_;
        step = Step::kFinish;
      } else if (!queue_.empty()) {
        writing_ = true;
        next = &queue_.front();
        step = Step::kWrite;
      } else if (more_ || dirty_) {
        more_ = false;
        busy_ = true;
        step = Step::kFetch;
      }
    }
    switch (step) {
      case Step::kFinish:
        this->Finish(ToGrpcStatus(end));
        break;
      case Step::kWrite:
        this->StartWrite(next);
        break;
      case Step::kFetch:
        edge_.pump->Schedule([this] { RunFetch(); });
        break;
      case Step::kNone:
        break;
    }
  }

  const StreamEdge edge_;
  CallContext call_;
  bool acquired_ = false;
  Fetch fetch_;  // used only by RunFetch (one at a time)

  absl::Mutex mu_;
  int64_t position_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Response> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // audit or read in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool more_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;  // rang while busy
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_ ABSL_GUARDED_BY(mu_);
  uint64_t subscription_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<Expiry> expiry_;  // set once, in Start; null if none
};

}  // namespace careseal::messaging

#endif  // CARESEAL_SERVICES_FOLLOWUP_MESSAGING_STREAM_CALL_GRPC_H_
