#include "services/common/sql/write_batch.h"

#include <string>
#include <utility>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/common/macros.h"
#include "services/common/status.h"

namespace careseal::sql::internal {

void WriteQueue::Push(Database::WriteFn fn, Database::DoneFn done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(WriteJob{std::move(fn), std::move(done)});
      return;
    }
  }
  done(Error(absl::StatusCode::kUnavailable, "SHUTTING_DOWN",
             "the store is shutting down; retry with the same request_id"));
}

bool WriteQueue::Take(size_t max, std::vector<WriteJob>& batch) {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](WriteQueue* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
        return self->stopping_ || !self->queue_.empty();
      },
      this));
  if (queue_.empty()) return false;  // stopping, and drained
  while (!queue_.empty() && batch.size() < max) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return true;
}

void WriteQueue::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
}

void WriteQueue::CountBatch(int64_t ok) {
  absl::MutexLock lock(&mu_);
  ++commits_;
  committed_writes_ += ok;
}

int64_t WriteQueue::commits() const {
  absl::MutexLock lock(&mu_);
  return commits_;
}

int64_t WriteQueue::committed_writes() const {
  absl::MutexLock lock(&mu_);
  return committed_writes_;
}

int64_t SettleResults(const absl::Status& commit,
                      std::vector<absl::Status>& results) {
  int64_t ok = 0;
  for (absl::Status& result : results) {
    if (!commit.ok() && (result.ok() || ErrorReason(result).empty())) {
      result = commit;
    }
    if (result.ok()) ++ok;
  }
  return ok;
}

absl::Status ApplyMigrations(
    Txn& txn, absl::string_view component,
    const std::vector<Migration>& migrations,
    absl::FunctionRef<absl::Status(absl::string_view statement)> run) {
  const std::string name(component);
  RETURN_IF_ERROR(
      run("CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT "
          "NULL, version INTEGER NOT NULL, PRIMARY KEY (component, version))"));
  for (const Migration& m : migrations) {
    ASSIGN_OR_RETURN(
        auto rows,
        txn.Query("SELECT 1 FROM schema_migrations WHERE component = ? AND "
                  "version = ?",
                  {Text(name), Int(m.version)}));
    if (!rows.empty()) continue;
    for (absl::string_view stmt : absl::StrSplit(m.sql, ';')) {
      stmt = absl::StripAsciiWhitespace(stmt);
      if (stmt.empty()) continue;
      RETURN_IF_ERROR(run(stmt));
    }
    RETURN_IF_ERROR(txn.Exec("INSERT INTO schema_migrations (component, "
                             "version) VALUES (?, ?)",
                             {Text(name), Int(m.version)})
                        .status());
  }
  return absl::OkStatus();
}

}  // namespace careseal::sql::internal
