#include "services/common/platform/audit_batcher.h"

#include <utility>

#include "absl/container/flat_hash_map.h"

namespace careseal {

AuditBatcher& AuditBatcher::For(sql::Database* db) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* batchers =
      new absl::flat_hash_map<sql::Database*, std::unique_ptr<AuditBatcher>>;
  absl::MutexLock lock(&mu);
  std::unique_ptr<AuditBatcher>& b = (*batchers)[db];
  if (b == nullptr) b.reset(new AuditBatcher(db));
  return *b;
}

void AuditBatcher::Append(PreparedAuditEvent event, Done done) {
  Entry entry;
  entry.event = std::move(event);
  entry.done = std::move(done);
  Add(std::move(entry));
}

void AuditBatcher::ReadAudited(CallContext& call, ReadFn read, Done done) {
  absl::StatusOr<PreparedAuditEvent> event =
      PrepareAuditEvent(call, absl::OkStatus());
  if (!event.ok()) return done(event.status());
  Entry entry;
  entry.event = *std::move(event);
  entry.done = std::move(done);
  entry.read = std::move(read);
  entry.call = &call;
  Add(std::move(entry));
}

void AuditBatcher::Add(Entry entry) {
  {
    absl::MutexLock lock(&mu_);
    pending_.push_back(std::move(entry));
    if (scheduled_) return;  // the queued job will take it
    scheduled_ = true;
  }
  Schedule();
}

void AuditBatcher::Schedule() {
  auto batch = std::make_shared<Batch>();
  db_->Write(
      [this, batch](sql::Txn& txn) {
        Take(*batch);
        std::vector<const PreparedAuditEvent*> events;
        events.reserve(batch->entries.size());
        for (Entry& e : batch->entries) {
          if (e.read) {
            e.read_status = e.read(txn);
            if (!e.read_status.ok()) continue;  // audited by its edge
          }
          events.push_back(&e.event);
        }
        return AppendPreparedAuditEvents(txn, events);
      },
      [this, batch](absl::Status status) {
        if (!batch->ran) Take(*batch);  // refused before it ran
        for (Entry& e : batch->entries) {
          if (status.ok() && e.call != nullptr) {
            if (!e.read_status.ok()) {
              e.done(e.read_status);
              continue;
            }
            e.call->audited = true;
          }
          e.done(status);
        }
      });
}

void AuditBatcher::Take(Batch& batch) {
  absl::MutexLock lock(&mu_);
  batch.ran = true;
  batch.entries.swap(pending_);
  scheduled_ = false;
}

}  // namespace careseal
