// The storage seam of CareSeal. Stores are written once, as SQL against Txn,
// and run on any Database backend (SQLite embedded, PostgreSQL for clinics
// that scale out). SQL is written with `?` placeholders and the portable
// subset both engines accept (ON CONFLICT, RETURNING, BIGINT, TEXT, BLOB ->
// BYTEA in migrations).
//
// Writes are durable before their completion runs: a backend batches
// concurrent writes into one transaction (group commit) and calls each job's
// completion after the commit has reached stable storage. Each job runs in its
// own savepoint, so one job's error undoes only that job.
#ifndef CARESEAL_SERVICES_COMMON_SQL_DATABASE_H_
#define CARESEAL_SERVICES_COMMON_SQL_DATABASE_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace careseal::sql {

// Binary data; distinct from text so that backends bind it as BLOB/BYTEA.
struct Blob {
  std::string bytes;
};

using Value = std::variant<std::monostate, int64_t, std::string, Blob>;

inline Value Null() { return std::monostate{}; }
inline Value Int(int64_t v) { return v; }
inline Value Text(std::string v) { return v; }
inline Value Bytes(std::string v) { return Blob{std::move(v)}; }

// One result row. Accessors check the column index; a NULL reads as 0 / "".
class Row {
 public:
  explicit Row(std::vector<Value> values) : values_(std::move(values)) {}
  size_t size() const { return values_.size(); }
  bool IsNull(size_t i) const;
  int64_t Int(size_t i) const;
  // Text or blob column contents.
  const std::string& Str(size_t i) const;

 private:
  std::vector<Value> values_;
};

using Params = std::initializer_list<Value>;

// A connection inside a transaction. Not thread-safe; valid only inside the
// function it was passed to.
class Txn {
 public:
  virtual ~Txn() = default;
  // Runs one statement; returns the number of rows changed.
  virtual absl::StatusOr<int64_t> Exec(absl::string_view sql,
                                       absl::Span<const Value> params) = 0;
  virtual absl::StatusOr<std::vector<Row>> Query(
      absl::string_view sql, absl::Span<const Value> params) = 0;

  absl::StatusOr<int64_t> Exec(absl::string_view sql, Params params = {}) {
    return Exec(sql, absl::MakeConstSpan(params.begin(), params.size()));
  }
  absl::StatusOr<std::vector<Row>> Query(absl::string_view sql,
                                         Params params = {}) {
    return Query(sql, absl::MakeConstSpan(params.begin(), params.size()));
  }
  // The single row of a query, NOT_FOUND with `what` in the message if none.
  absl::StatusOr<Row> QueryOne(absl::string_view sql, Params params,
                               absl::string_view what);

  // Runs `fn` once the current write job's changes are durable, on the
  // thread that runs the job's `done`, just before it; dropped if the job is
  // undone or the commit fails. For in-process notifications of committed data
  // (services/common/events). `fn` must be quick and must not block or
  // write. Ignored inside Database::Read.
  virtual void AfterCommit(absl::AnyInvocable<void()> fn) = 0;

  // Announces `payload` (text) on `channel` to the other processes sharing
  // the store, once the current write job commits: PostgreSQL's NOTIFY,
  // which the server delivers at commit to Database::ListenToOthers in every
  // process. A store no other process shares (SQLite) does nothing. Ignored
  // inside Database::Read.
  virtual absl::Status NotifyOthers(absl::string_view channel,
                                    absl::string_view payload) {
    (void)channel;
    (void)payload;
    return absl::OkStatus();
  }
};

enum class Dialect { kSqlite, kPostgres };

struct Migration {
  int version;
  std::string sql;  // may hold several statements separated by ';'
};

class Database {
 public:
  using WriteFn = absl::AnyInvocable<absl::Status(Txn&)>;
  using ReadFn = absl::AnyInvocable<absl::Status(Txn&)>;
  using DoneFn = absl::AnyInvocable<void(absl::Status)>;

  virtual ~Database() = default;

  // Queues `fn` to run inside a write transaction shared with other queued
  // writes. `done` receives fn's status once the transaction is durable, or
  // the error that undid fn (fn's error, or a failed commit). `done` runs on
  // one of the store's threads (SQLite: the completion thread, in commit
  // order): it must be quick and must not block. Thread-safe.
  virtual void Write(WriteFn fn, DoneFn done) = 0;

  // Runs `fn` on the calling thread over a consistent read snapshot. `fn`
  // must not write. Thread-safe.
  virtual absl::Status Read(ReadFn fn) = 0;

  // Applies, in order and each once, the migrations of `component` that have
  // not been applied yet. Thread-safe; called at start-up.
  virtual absl::Status Migrate(absl::string_view component,
                               const std::vector<Migration>& migrations) = 0;

  virtual Dialect dialect() const = 0;

  // Stops its listening when destroyed.
  class Listener {
   public:
    virtual ~Listener() = default;
  };
  // Calls `fn(payload)` for each payload another process announces on
  // `channel` (Txn::NotifyOthers), on a thread of the listener's own, until
  // the returned listener is destroyed; and `missed()` after announcements
  // may have been lost (the listening connection was lost and made again).
  // nullptr on a store no other process shares (SQLite). `channel`: lower
  // case letters and '_'.
  virtual absl::StatusOr<std::unique_ptr<Listener>> ListenToOthers(
      const std::string& channel,
      absl::AnyInvocable<void(absl::string_view payload)> fn,
      absl::AnyInvocable<void()> missed) {
    (void)channel;
    (void)fn;
    (void)missed;
    return nullptr;
  }

  // Blocks until `fn` is durable. For start-up code and tests; never call it
  // on a gRPC callback thread.
  absl::Status WriteAndWait(WriteFn fn);
};

// Database::Write for a job that produces a value: `done` receives fn's
// value once the transaction holding it is durable, or the error that undid
// it (fn's own error, or a failed commit).
template <typename T>
void WriteValue(Database& db, absl::AnyInvocable<absl::StatusOr<T>(Txn&)> fn,
                absl::AnyInvocable<void(absl::StatusOr<T>)> done) {
  auto result = std::make_shared<absl::StatusOr<T>>(
      absl::InternalError("the write did not run"));
  db.Write(
      [fn = std::move(fn), result](Txn& txn) mutable -> absl::Status {
        *result = fn(txn);
        return result->status();
      },
      [result, done = std::move(done)](absl::Status status) mutable {
        if (!status.ok()) {
          done(status);
        } else {
          done(std::move(*result));
        }
      });
}

// True for errors that mean "the row already exists" (unique violation).
bool IsUniqueViolation(const absl::Status& status);

}  // namespace careseal::sql

#endif  // CARESEAL_SERVICES_COMMON_SQL_DATABASE_H_
