#include "services/common/sql/sqlite_database.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "services/common/macros.h"
#include "services/common/sql/sqlite_config.h"
#include "services/common/sql/sqlite_wal_vfs.h"
#include "services/common/status.h"

namespace careseal::sql {

namespace {

// Passes of one checkpoint run at most (SqliteDatabase::CheckpointLoop).
constexpr int kMaxCheckpointPasses = 8;

// Flushes `path` to stable storage through `fd`, a descriptor of our own
// opened on first use (fsync acts on the file, so it covers SQLite's writes
// through its descriptor too). As PostgreSQL does, a failed flush stops the
// process: the kernel may have dropped the dirty pages, so no later fsync
// could be trusted. Restart recovers from what the disk holds; unanswered
// calls are retried with their request_id.
void FdatasyncOrDie(int& fd, const std::string& path) {
  if (fd < 0) {
    fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "careseal: cannot open %s: %s\n", path.c_str(),
                   std::strerror(errno));
      std::abort();
    }
  }
  while (fdatasync(fd) != 0) {
    if (errno == EINTR) continue;
    std::fprintf(stderr, "careseal: fdatasync of %s failed: %s\n", path.c_str(),
                 std::strerror(errno));
    std::abort();
  }
}

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  int extended = db ? sqlite3_extended_errcode(db) : rc;
  std::string message =
      absl::StrCat(what, ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if (extended == SQLITE_CONSTRAINT_UNIQUE ||
      extended == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return Error(absl::StatusCode::kAlreadyExists, "UNIQUE_VIOLATION", message);
  }
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    return Error(absl::StatusCode::kUnavailable, "STORE_BUSY", message);
  }
  if (rc == SQLITE_FULL || rc == SQLITE_IOERR) {
    return Error(absl::StatusCode::kUnavailable, "STORE_IO_ERROR", message);
  }
  return Error(absl::StatusCode::kInternal, "STORE_ERROR", message);
}

}  // namespace

// One sqlite3 handle with its prepared-statement cache. Used by one thread at
// a time.
class SqliteConnection final : public Txn {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  using Txn::Exec;
  using Txn::Query;

  absl::StatusOr<int64_t> Exec(absl::string_view sql,
                               absl::Span<const Value> params) override {
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql, params));
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc == SQLITE_ROW) continue;
      absl::Status status = SqliteError(db_, rc, "statement failed");
      sqlite3_reset(stmt);
      return status;
    }
    sqlite3_reset(stmt);
    return static_cast<int64_t>(sqlite3_changes(db_));
  }

  absl::StatusOr<std::vector<Row>> Query(
      absl::string_view sql, absl::Span<const Value> params) override {
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql, params));
    std::vector<Row> rows;
    const int columns = sqlite3_column_count(stmt);
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        absl::Status status = SqliteError(db_, rc, "query failed");
        sqlite3_reset(stmt);
        return status;
      }
      std::vector<Value> values;
      values.reserve(columns);
      for (int i = 0; i < columns; ++i) {
        switch (sqlite3_column_type(stmt, i)) {
          case SQLITE_NULL:
            values.emplace_back(std::monostate{});
            break;
          case SQLITE_INTEGER:
            values.emplace_back(
                static_cast<int64_t>(sqlite3_column_int64(stmt, i)));
            break;
          case SQLITE_BLOB: {
            const void* data = sqlite3_column_blob(stmt, i);
            int n = sqlite3_column_bytes(stmt, i);
            values.emplace_back(
                Blob{std::string(static_cast<const char*>(data), n)});
            break;
          }
          default: {
            const unsigned char* text = sqlite3_column_text(stmt, i);
            int n = sqlite3_column_bytes(stmt, i);
            values.emplace_back(
                std::string(reinterpret_cast<const char*>(text), n));
          }
        }
      }
      rows.emplace_back(std::move(values));
    }
    sqlite3_reset(stmt);
    return rows;
  }

  void AfterCommit(absl::AnyInvocable<void()> fn) override {
    after_commit_.push_back(std::move(fn));
  }
  // Hooks registered since the last TakeAfterCommit / DropAfterCommitFrom.
  size_t after_commit_count() const { return after_commit_.size(); }
  void DropAfterCommitFrom(size_t first) {
    after_commit_.erase(after_commit_.begin() + first, after_commit_.end());
  }
  std::vector<absl::AnyInvocable<void()>> TakeAfterCommit() {
    return std::exchange(after_commit_, {});
  }

  sqlite3* handle() const { return db_; }

  // Runs a statement without parameters from the statement cache: for the
  // transaction control of every call (BEGIN, SAVEPOINT, COMMIT, ...), which
  // sqlite3_exec would parse anew each time.
  absl::Status Run(absl::string_view sql) { return Exec(sql, {}).status(); }
  // A file connection is not lost (internal::RunJobsInSavepoints asks).
  bool Healthy() const { return true; }

  // Runs a statement without parameters and without caching it.
  absl::Status Raw(absl::string_view sql) {
    std::string copy(sql);
    char* err = nullptr;
    int rc = sqlite3_exec(db_, copy.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      absl::Status status = SqliteError(db_, rc, "statement failed");
      sqlite3_free(err);
      return status;
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<sqlite3_stmt*> Prepare(absl::string_view sql,
                                        absl::Span<const Value> params) {
    sqlite3_stmt* stmt = nullptr;
    auto it = statements_.find(sql);
    if (it != statements_.end()) {
      stmt = it->second;
    } else {
      int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare failed");
      statements_.emplace(std::string(sql), stmt);
    }
    sqlite3_clear_bindings(stmt);
    if (static_cast<int>(params.size()) != sqlite3_bind_parameter_count(stmt)) {
      return Internal(
          "STORE_ERROR",
          absl::StrCat("statement expects ", sqlite3_bind_parameter_count(stmt),
                       " parameters, got ", params.size()));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      const Value& v = params[i];
      if (std::holds_alternative<std::monostate>(v)) {
        rc = sqlite3_bind_null(stmt, index);
      } else if (const int64_t* n = std::get_if<int64_t>(&v)) {
        rc = sqlite3_bind_int64(stmt, index, *n);
      } else if (const std::string* s = std::get_if<std::string>(&v)) {
        rc = sqlite3_bind_text64(stmt, index, s->data(), s->size(),
                                 SQLITE_STATIC, SQLITE_UTF8);
      } else {
        const Blob& b = std::get<Blob>(v);
        rc = sqlite3_bind_blob64(stmt, index, b.bytes.data(), b.bytes.size(),
                                 SQLITE_STATIC);
      }
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "bind failed");
    }
    return stmt;
  }

  sqlite3* db_;
  absl::flat_hash_map<std::string, sqlite3_stmt*> statements_;
  std::vector<absl::AnyInvocable<void()>> after_commit_;
};

SqliteDatabase::SqliteDatabase(SqliteOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<SqliteConnection>> SqliteDatabase::Connect(
    Role role) {
  // Before SQLite initializes (the VFS lookup below would initialize it).
  ConfigureSqlite();
  const bool writer = role == Role::kWriter;
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (writer) flags |= SQLITE_OPEN_CREATE;
  const char* vfs = role != Role::kReader && options_.coalesce_wal_writes
                        ? CoalescingWalVfsName()
                        : nullptr;
  int rc = sqlite3_open_v2(options_.path.c_str(), &db, flags, vfs);
  if (rc != SQLITE_OK) {
    absl::Status status =
        Error(absl::StatusCode::kUnavailable, "STORE_OPEN_FAILED",
              absl::StrCat("cannot open database ", options_.path, ": ",
                           db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close_v2(db);
    return status;
  }
  auto conn = std::make_unique<SqliteConnection>(db);
  sqlite3_busy_timeout(db, options_.busy_timeout_ms);
  RETURN_IF_ERROR(conn->Raw("PRAGMA journal_mode=WAL"));
  // Readers and the checkpointer: synchronous=FULL. The writer's COMMIT
  // only writes the WAL (NORMAL: no fsync in the commit; checkpoints and
  // WAL resets still sync); the completion thread makes each committed
  // batch durable with its own fdatasync of the WAL before answering it, so
  // the writer runs the next batch while the disk flushes the last one.
  RETURN_IF_ERROR(conn->Raw(writer ? "PRAGMA synchronous=NORMAL"
                                   : "PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(conn->Raw("PRAGMA foreign_keys=ON"));
  // Each job of a group commit runs in a savepoint, whose undo records (the
  // statement journal) would otherwise go to a temporary file with a write()
  // per page; keep them in memory. Durability is the WAL's, unchanged.
  RETURN_IF_ERROR(conn->Raw("PRAGMA temp_store=MEMORY"));
  if (writer) {
    // A batch dirties a few hundred pages; a cache that holds them all keeps
    // SQLite from spilling them into the WAL before the commit.
    RETURN_IF_ERROR(conn->Raw(
        absl::StrCat("PRAGMA cache_size=-", options_.writer_cache_kib)));
  }
  return conn;
}

absl::StatusOr<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(
    SqliteOptions options) {
  if (options.path.empty()) {
    return InvalidField("path", "MISSING_DATABASE_PATH",
                        "a database file path is required");
  }
  if (options.max_batch == 0) options.max_batch = 1;
  if (options.checkpoint_pages < 1) options.checkpoint_pages = 1;
  std::unique_ptr<SqliteDatabase> db(new SqliteDatabase(std::move(options)));
  ASSIGN_OR_RETURN(db->writer_conn_, db->Connect(Role::kWriter));
  ASSIGN_OR_RETURN(db->checkpoint_conn_, db->Connect(Role::kCheckpointer));
  // The hook replaces SQLite's automatic checkpoint, which would run inside
  // the writer's COMMIT and hold every caller of the batch meanwhile.
  sqlite3_wal_hook(db->writer_conn_->handle(), &SqliteDatabase::OnWalCommit,
                   db.get());
  SqliteDatabase* raw = db.get();
  db->writer_ = std::thread([raw] {
    pthread_setname_np(pthread_self(), "sql-writer");
    raw->WriterLoop();
  });
  db->completer_ = std::thread([raw] {
    pthread_setname_np(pthread_self(), "sql-complete");
    raw->CompletionLoop();
  });
  db->checkpointer_ = std::thread([raw] {
    pthread_setname_np(pthread_self(), "sql-checkpoint");
    raw->CheckpointLoop();
  });
  return db;
}

SqliteDatabase::~SqliteDatabase() {
  queue_.Stop();
  if (writer_.joinable()) writer_.join();
  {
    absl::MutexLock lock(&done_mu_);
    writer_stopped_ = true;
  }
  if (completer_.joinable()) completer_.join();
  {
    absl::MutexLock lock(&checkpoint_mu_);
    checkpoint_stop_ = true;
  }
  if (checkpointer_.joinable()) checkpointer_.join();
  if (wal_fd_ >= 0) close(wal_fd_);
  if (db_fd_ >= 0) close(db_fd_);
}

int SqliteDatabase::OnWalCommit(void* self, sqlite3*, const char*, int pages) {
  auto* db = static_cast<SqliteDatabase*>(self);
  absl::MutexLock lock(&db->checkpoint_mu_);
  if (pages < db->wal_pages_) db->wal_copied_ = 0;  // the WAL restarted
  db->wal_pages_ = pages;
  return SQLITE_OK;
}

void SqliteDatabase::CheckpointLoop() {
  const int threshold = options_.checkpoint_pages;
  while (true) {
    {
      absl::MutexLock lock(&checkpoint_mu_);
      // Frames not yet copied back.
      auto due = [&]() {
        return checkpoint_stop_ || wal_pages_ - wal_copied_ >= threshold;
      };
      checkpoint_mu_.Await(absl::Condition(&due));
      if (checkpoint_stop_) return;
    }
    // PASSIVE copies what no reader still needs, without waiting for anyone
    // and without holding up the writer. The WAL can only start over from
    // its beginning when a write transaction begins with every frame copied,
    // which a checkpoint running beside a busy writer never sees; so once
    // the bulk is copied the writer copies the last few frames itself before
    // its next batch (RestartWalIfDue). A busy writer appends thousands of
    // frames while a pass copies, so passes repeat until what is left is a
    // tail (1/64 of the threshold) or a pass copies nothing new: the
    // copying stays on this thread, off the writer's.
    const int tail = std::max(1, threshold / 64);
    int log = 0;
    int copied = 0;
    int rc = SQLITE_OK;
    for (int pass = 0; pass < kMaxCheckpointPasses; ++pass) {
      const int before = copied;
      rc = sqlite3_wal_checkpoint_v2(checkpoint_conn_->handle(), nullptr,
                                     SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
      // A pass copies the WAL as it was when the pass began; the writer has
      // committed more since (wal_pages_, from the commit hook). Stop when
      // that is a tail, or when a pass copied nothing new (stuck behind a
      // reader's snapshot, or the WAL restarted).
      int remaining;
      {
        absl::MutexLock lock(&checkpoint_mu_);
        remaining = wal_pages_ - copied;
      }
      if (rc != SQLITE_OK || remaining <= tail || copied <= before) break;
    }
    // The checkpoint that copies the last frames syncs the database file
    // (SQLite does when a checkpoint reaches the WAL's end), and that one is
    // the writer's (RestartWalIfDue): it would flush every page copied here
    // since the last restart, up to checkpoint_pages of them, while its
    // batch's callers wait. Flushed here first, that leaves the writer the
    // tail's pages.
    if (rc == SQLITE_OK && copied > 0) FdatasyncOrDie(db_fd_, options_.path);
    restart_due_.store(true, std::memory_order_release);
    absl::MutexLock lock(&checkpoint_mu_);
    ++checkpoints_;
    // Unless the WAL restarted meanwhile (the hook then reset the count).
    if (rc == SQLITE_OK && copied > 0 && copied <= wal_pages_) {
      wal_copied_ = copied;
    }
  }
}

void SqliteDatabase::RestartWalIfDue() {
  if (!restart_due_.exchange(false, std::memory_order_acq_rel)) return;
  // Copies the frames written since the checkpointer's run (a few batches),
  // so that the BEGIN that follows finds the WAL fully copied and restarts
  // it. BUSY (the checkpointer is running again) just means next time.
  int log = 0;
  int copied = 0;
  (void)sqlite3_wal_checkpoint_v2(writer_conn_->handle(), nullptr,
                                  SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
}

void SqliteDatabase::SyncWal() {
  // Every batch taken by the caller had returned from COMMIT, so its WAL
  // frames were written before this call: on return they are on stable
  // storage. fsync acts on the file, so this descriptor of our own covers
  // the writes SQLite made through its descriptor.
  FdatasyncOrDie(wal_fd_, options_.path + "-wal");
}

void SqliteDatabase::CompletionLoop() {
  while (true) {
    std::deque<Outcome> outcomes;
    {
      absl::MutexLock lock(&done_mu_);
      done_mu_.Await(absl::Condition(
          +[](SqliteDatabase* self)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->done_mu_) {
                 return self->writer_stopped_ || !self->outcomes_.empty();
               },
          this));
      if (outcomes_.empty()) return;  // the writer has stopped: all done
      outcomes.swap(outcomes_);
    }
    // One flush for every batch committed since the last one.
    bool committed = false;
    for (const Outcome& o : outcomes) committed = committed || o.committed;
    if (committed) SyncWal();
    for (Outcome& outcome : outcomes) {
      // Watchers are woken no later than the callers are answered.
      for (auto& hook : outcome.hooks) hook();
      for (size_t i = 0; i < outcome.dones.size(); ++i) {
        outcome.dones[i](std::move(outcome.results[i]));
      }
    }
  }
}

void SqliteDatabase::Write(WriteFn fn, DoneFn done) {
  queue_.Push(std::move(fn), std::move(done));
}

void SqliteDatabase::WriterLoop() {
  std::vector<internal::WriteJob> batch;
  while (queue_.Take(options_.max_batch, batch)) {
    RestartWalIfDue();
    RunBatch(batch);
    batch.clear();
  }
}

void SqliteDatabase::RunBatch(std::vector<internal::WriteJob>& batch) {
  std::vector<absl::Status> results(batch.size());
  absl::Status commit = writer_conn_->Run("BEGIN IMMEDIATE");
  if (commit.ok()) {
    results = internal::RunJobsInSavepoints(*writer_conn_, batch);
    commit = writer_conn_->Run("COMMIT");
    if (!commit.ok()) (void)writer_conn_->Raw("ROLLBACK");
    // The commit's frames were written when it was published (the VFS's
    // barrier); anything still buffered is written now, before the
    // completion thread's flush.
    if (!FlushWalBuffer(writer_conn_->handle())) {
      std::fprintf(stderr, "careseal: writing the WAL failed; stopping\n");
      std::abort();
    }
  }
  // Committed (or undone): the completion thread flushes the WAL, runs the
  // hooks of the committed jobs, then answers each job, while this thread
  // goes on with the next batch.
  Outcome outcome;
  outcome.committed = commit.ok();
  outcome.hooks = writer_conn_->TakeAfterCommit();
  if (!commit.ok()) outcome.hooks.clear();
  queue_.CountBatch(internal::SettleResults(commit, results));
  outcome.dones.reserve(batch.size());
  for (internal::WriteJob& job : batch) {
    outcome.dones.push_back(std::move(job.done));
  }
  outcome.results = std::move(results);
  absl::MutexLock lock(&done_mu_);
  outcomes_.push_back(std::move(outcome));
}

absl::Status SqliteDatabase::Read(ReadFn fn) {
  std::unique_ptr<SqliteConnection> conn;
  {
    absl::MutexLock lock(&readers_mu_);
    if (!idle_readers_.empty()) {
      conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
    }
  }
  if (conn == nullptr) {
    ASSIGN_OR_RETURN(conn, Connect(Role::kReader));
  }
  absl::Status status = conn->Run("BEGIN");
  if (status.ok()) {
    status = fn(*conn);
    absl::Status end = conn->Run("COMMIT");
    if (status.ok()) status = end;
  }
  (void)conn->TakeAfterCommit();  // a read commits nothing
  absl::MutexLock lock(&readers_mu_);
  if (idle_readers_.size() < options_.max_readers) {
    idle_readers_.push_back(std::move(conn));
  }
  return status;
}

absl::Status SqliteDatabase::Migrate(absl::string_view component,
                                     const std::vector<Migration>& migrations) {
  return WriteAndWait([&](Txn& txn) -> absl::Status {
    auto* conn = static_cast<SqliteConnection*>(&txn);
    return internal::ApplyMigrations(
        txn, component, migrations,
        [conn](absl::string_view stmt) { return conn->Raw(stmt); });
  });
}

int64_t SqliteDatabase::commits() const { return queue_.commits(); }

int64_t SqliteDatabase::committed_writes() const {
  return queue_.committed_writes();
}

int64_t SqliteDatabase::checkpoints() const {
  absl::MutexLock lock(&checkpoint_mu_);
  return checkpoints_;
}

}  // namespace careseal::sql
