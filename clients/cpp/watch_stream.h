// Reading a CareSeal watch stream (WatchInbox, WatchEvents) from C++.
//
//   auto stream = events.WatchEvents(request, {.bearer_token = token});
//   careseal::v1::WatchEventsResponse item;
//   while (stream->Next(&item)) { ... persist item.event().cursor() ... }
//   absl::Status end = stream->Finish();
//
// Next blocks the calling thread until an item arrives or the stream ends;
// Cancel (any thread) ends it. A watch is long-lived: its deadline is
// WatchOptions.max_duration, not CallOptions.timeout. To survive server
// restarts use the Resume helpers of the clients, which reconnect after the
// last cursor received.
#ifndef CARESEAL_CLIENTS_CPP_WATCH_STREAM_H_
#define CARESEAL_CLIENTS_CPP_WATCH_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"

namespace careseal::client {

struct WatchOptions {
  // The stream's deadline; it then ends with DEADLINE_EXCEEDED.
  absl::Duration max_duration = absl::Hours(24);
  std::string bearer_token;
  // Resume helpers: reconnections allowed in a row without receiving
  // anything (UNAVAILABLE, e.g. during a server restart).
  int max_reconnects = 20;
  absl::Duration reconnect_backoff = absl::Milliseconds(100);
};

template <typename Response>
class WatchStream {
 public:
  template <typename Open>
  WatchStream(const WatchOptions& options, Open open)
      : context_(std::make_unique<grpc::ClientContext>()) {
    context_->set_deadline(
        absl::ToChronoTime(absl::Now() + options.max_duration));
    if (!options.bearer_token.empty()) {
      context_->AddMetadata("authorization", "Bearer " + options.bearer_token);
    }
    reader_ = open(context_.get());
  }

  // Blocks until the next item (true) or the end of the stream (false).
  bool Next(Response* out) { return reader_->Read(out); }

  // Ends the stream from any thread; Next then returns false.
  void Cancel() {
    cancelled_ = true;
    context_->TryCancel();
  }
  bool cancelled() const { return cancelled_; }

  // The stream's final status. REQUIRES: Next returned false.
  absl::Status Finish() { return FromGrpcStatus(reader_->Finish()); }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReader<Response>> reader_;
  std::atomic<bool> cancelled_{false};
};

namespace internal {

// Runs watches one after another, each resuming after the last cursor
// received, until `on_item` returns false (OK), the stream ends with an
// error other than UNAVAILABLE, or max_reconnects reconnections in a row got
// nothing. `open(after_cursor or -1)` opens a stream; `cursor(item)` reads an
// item's cursor.
template <typename Response, typename Open, typename CursorOf, typename OnItem>
absl::Status ResumeWatch(const WatchOptions& options, int64_t after, Open open,
                         CursorOf cursor, OnItem on_item) {
  int failures = 0;
  while (true) {
    std::unique_ptr<WatchStream<Response>> stream = open(after);
    Response item;
    while (stream->Next(&item)) {
      failures = 0;
      after = cursor(item);
      if (!on_item(item)) {
        stream->Cancel();
        while (stream->Next(&item)) {
        }
        (void)stream->Finish();
        return absl::OkStatus();
      }
    }
    absl::Status end = stream->Finish();
    const bool retryable =
        end.code() == absl::StatusCode::kUnavailable ||
        (end.code() == absl::StatusCode::kCancelled && !stream->cancelled());
    if (!retryable || ++failures > options.max_reconnects) return end;
    absl::SleepFor(options.reconnect_backoff * failures);
  }
}

}  // namespace internal
}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_WATCH_STREAM_H_
