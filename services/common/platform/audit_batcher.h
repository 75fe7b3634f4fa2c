// AuditBatcher: gathers the audit events of calls that end close together
// into one job of the store's group commit: one head update per tenant for
// the lot instead of a job, a savepoint and a head update per call. Each
// event's canonical leaf and hash are made on the caller's thread, off the
// store's single writer. Every caller learns only once its event is durable;
// if the batch cannot be appended, every caller in it learns so.
//
// A hot audited read can also ride in the batch (ReadAudited): it runs in
// the transaction that appends its event, on the store's writer, whose page
// cache stays warm, instead of a read transaction of its own on a reader
// connection whose cache every commit empties.
#ifndef CARESEAL_SERVICES_COMMON_PLATFORM_AUDIT_BATCHER_H_
#define CARESEAL_SERVICES_COMMON_PLATFORM_AUDIT_BATCHER_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/call.h"
#include "services/common/sql/database.h"

namespace careseal {

class AuditBatcher {
 public:
  using Done = absl::AnyInvocable<void(absl::Status)>;
  using ReadFn = absl::AnyInvocable<absl::Status(sql::Txn&)>;

  // The batcher of `db`; created on first use and kept for the process (a
  // batcher holds nothing between batches, so a later database at the same
  // address can use it too). Thread-safe.
  static AuditBatcher& For(sql::Database* db);

  // Appends `event`; `done` runs (on the store's completion thread) once it
  // is durable, or with the store's error.
  void Append(PreparedAuditEvent event, Done done);

  // Runs `read` (which must only read, and quickly: it holds the writer)
  // inside the transaction that appends `call`'s audit event with the
  // outcome OK. If `read` succeeds and the batch is durable, `call.audited`
  // is set and `done(OK)` runs: the call's event is in the log. Otherwise
  // `done` gets the read's or the store's error and no event of `call` was
  // appended (the caller's edge audits the failure as for any call).
  // `call` must stay valid until `done` runs.
  void ReadAudited(CallContext& call, ReadFn read, Done done);

 private:
  struct Entry {
    PreparedAuditEvent event;
    Done done;
    ReadFn read;                  // none for a plain Append
    CallContext* call = nullptr;  // ReadAudited's
    absl::Status read_status;     // set in the batch's transaction
  };
  struct Batch {
    bool ran = false;
    std::vector<Entry> entries;
  };

  explicit AuditBatcher(sql::Database* db) : db_(db) {}

  void Add(Entry entry);
  // Queues one store job that takes every entry pending when it runs.
  void Schedule();
  void Take(Batch& batch);

  sql::Database* const db_;
  absl::Mutex mu_;
  std::vector<Entry> pending_ ABSL_GUARDED_BY(mu_);
  bool scheduled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace careseal

#endif  // CARESEAL_SERVICES_COMMON_PLATFORM_AUDIT_BATCHER_H_
