#include "services/common/sql/postgres_database.h"

#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/macros.h"
#include "services/common/status.h"

namespace careseal::sql {

namespace {

// Type oids of the built-in types results are typed by (pg_type.h).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;
constexpr Oid kOidOid = 26;
constexpr Oid kNumericOid = 1700;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string Trimmed(const char* text) {
  return std::string(absl::StripTrailingAsciiWhitespace(text ? text : ""));
}

// The error of a failed command. The server's primary message names the
// constraint or the statement's problem; its detail (which may quote row
// values, i.e. health data) is never used, and nor is the primary message of
// a data exception (class 22), which may quote the value it could not take.
absl::Status PgError(PGconn* conn, const PGresult* res,
                     absl::string_view what) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state ? state : "";
  std::string text;
  if (absl::StartsWith(sqlstate, "22")) {
    text = "the server refused a value (data exception)";
  } else if (const char* primary =
                 res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                     : nullptr) {
    text = primary;
  } else {
    text = Trimmed(PQerrorMessage(conn));
  }
  std::string message = absl::StrCat(what, ": ", text);
  if (!sqlstate.empty()) {
    absl::StrAppend(&message, " (SQLSTATE ", sqlstate, ")");
  }
  if (PQstatus(conn) != CONNECTION_OK || absl::StartsWith(sqlstate, "08")) {
    return Error(absl::StatusCode::kUnavailable, "STORE_UNAVAILABLE",
                 absl::StrCat(message, "; retry with the same request_id"));
  }
  if (sqlstate == "23505") {
    return Error(absl::StatusCode::kAlreadyExists, "UNIQUE_VIOLATION", message);
  }
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" ||
      sqlstate == "57014") {
    return Error(absl::StatusCode::kUnavailable, "STORE_BUSY", message);
  }
  if (absl::StartsWith(sqlstate, "53")) {  // insufficient resources
    return Error(absl::StatusCode::kUnavailable, "STORE_IO_ERROR", message);
  }
  return Error(absl::StatusCode::kInternal, "STORE_ERROR", message);
}

bool IsWordChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

// Calls `plain(i)` for each character of `sql` outside quoted text and
// comments, and copies the others to `out` as they are.
template <typename Plain>
void ScanOutsideQuotes(absl::string_view sql, std::string& out, Plain plain) {
  size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      size_t end = sql.find(c, i + 1);
      end = end == absl::string_view::npos ? sql.size() : end + 1;
      absl::StrAppend(&out, sql.substr(i, end - i));
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t end = sql.find('\n', i);
      end = end == absl::string_view::npos ? sql.size() : end;
      absl::StrAppend(&out, sql.substr(i, end - i));
      i = end;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      size_t end = sql.find("*/", i + 2);
      end = end == absl::string_view::npos ? sql.size() : end + 2;
      absl::StrAppend(&out, sql.substr(i, end - i));
      i = end;
    } else {
      i = plain(i);
    }
  }
}

}  // namespace

std::string NumberPlaceholders(absl::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  ScanOutsideQuotes(sql, out, [&](size_t i) {
    if (sql[i] == '?') {
      absl::StrAppend(&out, "$", ++n);
    } else {
      out.push_back(sql[i]);
    }
    return i + 1;
  });
  return out;
}

std::string TranslateDdlForPostgres(absl::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  ScanOutsideQuotes(sql, out, [&](size_t i) {
    if (!absl::ascii_isalpha(sql[i]) && sql[i] != '_') {
      out.push_back(sql[i]);
      return i + 1;
    }
    size_t end = i;
    while (end < sql.size() && IsWordChar(sql[end])) ++end;
    const std::string word = absl::AsciiStrToUpper(sql.substr(i, end - i));
    if (word == "BLOB") {
      out.append("BYTEA");
      return end;
    }
    if (word == "INTEGER") {
      out.append("BIGINT");
      return end;
    }
    if (word == "WITHOUT") {
      size_t next = end;
      while (next < sql.size() && absl::ascii_isspace(sql[next])) ++next;
      size_t next_end = next;
      while (next_end < sql.size() && IsWordChar(sql[next_end])) ++next_end;
      if (absl::AsciiStrToUpper(sql.substr(next, next_end - next)) == "ROWID") {
        return next_end;  // PostgreSQL's tables have no rowid to leave out
      }
    }
    absl::StrAppend(&out, sql.substr(i, end - i));
    return end;
  });
  return out;
}

// One libpq connection with its prepared statements. Used by one thread at a
// time.
class PgConnection final : public Txn {
 public:
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      const std::string& conninfo, bool writer) {
    std::unique_ptr<PgConnection> conn(
        new PgConnection(PQconnectdb(conninfo.c_str())));
    if (conn->conn_ == nullptr || PQstatus(conn->conn_) != CONNECTION_OK) {
      return Error(
          absl::StatusCode::kUnavailable, "STORE_UNAVAILABLE",
          absl::StrCat("cannot connect to PostgreSQL: ",
                       conn->conn_ ? Trimmed(PQerrorMessage(conn->conn_))
                                   : "out of memory"));
    }
    RETURN_IF_ERROR(conn->Setup(writer));
    return conn;
  }

  ~PgConnection() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  // Reconnects a connection the server dropped; its prepared statements are
  // gone with the session.
  absl::Status Reconnect() {
    prepared_.clear();
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      return Error(absl::StatusCode::kUnavailable, "STORE_UNAVAILABLE",
                   absl::StrCat("cannot reconnect to PostgreSQL: ",
                                Trimmed(PQerrorMessage(conn_)),
                                "; retry with the same request_id"));
    }
    return Setup(writer_);
  }

  bool Healthy() const { return PQstatus(conn_) == CONNECTION_OK; }
  int backend_pid() const { return PQbackendPID(conn_); }
  PGconn* handle() { return conn_; }
  bool Idle() const {
    return Healthy() && PQtransactionStatus(conn_) == PQTRANS_IDLE;
  }

  // One statement (or several, separated by ';') without parameters, over
  // the simple protocol: transaction control and migrations.
  absl::Status Run(absl::string_view sql,
                   absl::string_view what = "statement failed") {
    return RunSimple(sql, what).status();
  }

  // COMMIT, checking that it committed: on a transaction that failed,
  // PostgreSQL answers COMMIT with ROLLBACK.
  absl::Status Commit() {
    ASSIGN_OR_RETURN(Result res, RunSimple("COMMIT", "commit failed"));
    if (std::strcmp(PQcmdStatus(res.get()), "COMMIT") != 0) {
      return Error(absl::StatusCode::kInternal, "STORE_ERROR",
                   "commit failed: the transaction was rolled back");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> Exec(absl::string_view sql,
                               absl::Span<const Value> params) override {
    ASSIGN_OR_RETURN(Result res, Execute(sql, params, "statement failed"));
    const char* tuples = PQcmdTuples(res.get());
    return tuples[0] == '\0' ? 0 : std::strtoll(tuples, nullptr, 10);
  }

  absl::StatusOr<std::vector<Row>> Query(
      absl::string_view sql, absl::Span<const Value> params) override {
    ASSIGN_OR_RETURN(Result res, Execute(sql, params, "query failed"));
    const int rows = PQntuples(res.get());
    const int cols = PQnfields(res.get());
    std::vector<Oid> types(cols);
    for (int c = 0; c < cols; ++c) types[c] = PQftype(res.get(), c);
    std::vector<Row> out;
    out.reserve(rows);
    for (int r = 0; r < rows; ++r) {
      std::vector<Value> values(cols);
      for (int c = 0; c < cols; ++c) {
        if (PQgetisnull(res.get(), r, c)) continue;
        const char* text = PQgetvalue(res.get(), r, c);
        switch (types[c]) {
          case kInt2Oid:
          case kInt4Oid:
          case kInt8Oid:
          case kOidOid:
          case kNumericOid:  // sums of integers; no fractions are stored
            values[c] = static_cast<int64_t>(std::strtoll(text, nullptr, 10));
            break;
          case kBoolOid:
            values[c] = static_cast<int64_t>(text[0] == 't' ? 1 : 0);
            break;
          case kByteaOid: {
            size_t len = 0;
            unsigned char* bytes = PQunescapeBytea(
                reinterpret_cast<const unsigned char*>(text), &len);
            if (bytes == nullptr) {
              return Error(absl::StatusCode::kInternal, "STORE_ERROR",
                           "query failed: a bytea value could not be decoded");
            }
            values[c] = Blob{std::string(reinterpret_cast<char*>(bytes), len)};
            PQfreemem(bytes);
            break;
          }
          default:
            values[c] = std::string(text, PQgetlength(res.get(), r, c));
        }
      }
      out.emplace_back(std::move(values));
    }
    return out;
  }

  absl::Status NotifyOthers(absl::string_view channel,
                            absl::string_view payload) override {
    if (!writer_) return absl::OkStatus();  // a read announces nothing
    const Value params[] = {std::string(channel), std::string(payload)};
    return Execute("SELECT pg_notify(?, ?)", params, "notifying failed")
        .status();
  }

  void AfterCommit(absl::AnyInvocable<void()> fn) override {
    after_commit_.push_back(std::move(fn));
  }
  size_t after_commit_count() const { return after_commit_.size(); }
  void DropAfterCommitFrom(size_t n) { after_commit_.resize(n); }
  std::vector<absl::AnyInvocable<void()>> TakeAfterCommit() {
    return std::exchange(after_commit_, {});
  }

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}

  absl::Status Setup(bool writer) {
    writer_ = writer;
    // Notices ("relation already exists, skipping") are not errors; libpq
    // would print them on stderr.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    // An acknowledged write is on the server's disk (and its synchronous
    // standbys', if it has any) whatever the server's default.
    return Run(writer ? "SET synchronous_commit TO on; SET TIME ZONE 'UTC'"
                      : "SET TIME ZONE 'UTC'",
               "setting up the connection failed");
  }

  // `sql` over the simple protocol; its result if it succeeded.
  absl::StatusOr<Result> RunSimple(absl::string_view sql,
                                   absl::string_view what) {
    Result res(PQexec(conn_, std::string(sql).c_str()));
    ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      return PgError(conn_, res.get(), what);
    }
    return res;
  }

  absl::StatusOr<Result> Execute(absl::string_view sql,
                                 absl::Span<const Value> params,
                                 absl::string_view what) {
    // A statement is prepared once per connection and parameter types: an
    // integer is bound as int8, bytes as bytea (binary), text as text, and
    // NULL leaves the type to the statement.
    const int n = static_cast<int>(params.size());
    std::string key(sql);
    key.push_back('\0');
    std::vector<Oid> types(n);
    for (int i = 0; i < n; ++i) {
      const Value& v = params[i];
      if (std::holds_alternative<int64_t>(v)) {
        types[i] = kInt8Oid;
        key.push_back('i');
      } else if (std::holds_alternative<Blob>(v)) {
        types[i] = kByteaOid;
        key.push_back('b');
      } else if (std::holds_alternative<std::string>(v)) {
        types[i] = kTextOid;
        key.push_back('t');
      } else {
        types[i] = 0;
        key.push_back('n');
      }
    }
    auto it = prepared_.find(key);
    if (it == prepared_.end()) {
      std::string name = absl::StrCat("cs", prepared_.size());
      Result res(PQprepare(conn_, name.c_str(), NumberPlaceholders(sql).c_str(),
                           n, types.data()));
      if (res == nullptr || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
        return PgError(conn_, res.get(), what);
      }
      it = prepared_.emplace(std::move(key), std::move(name)).first;
    }
    std::vector<std::string> text(n);
    std::vector<const char*> values(n, nullptr);
    std::vector<int> lengths(n, 0);
    std::vector<int> formats(n, 0);
    for (int i = 0; i < n; ++i) {
      const Value& v = params[i];
      if (const int64_t* x = std::get_if<int64_t>(&v)) {
        text[i] = absl::StrCat(*x);
        values[i] = text[i].c_str();
      } else if (const std::string* s = std::get_if<std::string>(&v)) {
        // Text goes to the server as a C string: a NUL would cut it short.
        if (s->find('\0') != std::string::npos) {
          return Error(absl::StatusCode::kInvalidArgument, "TEXT_HAS_NUL",
                       "a text value holds a NUL character, which the "
                       "PostgreSQL store cannot keep; remove it");
        }
        values[i] = s->c_str();
        lengths[i] = static_cast<int>(s->size());
      } else if (const Blob* b = std::get_if<Blob>(&v)) {
        values[i] = b->bytes.data();
        lengths[i] = static_cast<int>(b->bytes.size());
        formats[i] = 1;
      }
    }
    Result res(PQexecPrepared(conn_, it->second.c_str(), n, values.data(),
                              lengths.data(), formats.data(), 0));
    ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      return PgError(conn_, res.get(), what);
    }
    return res;
  }

  PGconn* conn_;
  bool writer_ = false;
  absl::flat_hash_map<std::string, std::string> prepared_;
  std::vector<absl::AnyInvocable<void()>> after_commit_;
};

namespace {

// LISTENs on a connection of its own, on a thread of its own; makes the
// connection again (and reports a possible gap) when it is lost.
class PgListener final : public Database::Listener {
 public:
  using Fn = absl::AnyInvocable<void(absl::string_view)>;
  PgListener(std::string conninfo, std::string channel, Fn fn,
             absl::AnyInvocable<void()> missed, const std::atomic<int>* own_pid,
             std::unique_ptr<PgConnection> conn)
      : conninfo_(std::move(conninfo)),
        channel_(std::move(channel)),
        fn_(std::move(fn)),
        missed_(std::move(missed)),
        own_pid_(own_pid),
        conn_(std::move(conn)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~PgListener() override {
    stop_ = true;
    thread_.join();
  }

  static absl::Status Listen(PgConnection& conn, const std::string& channel) {
    return conn.Run(absl::StrCat("LISTEN ", channel), "LISTEN failed");
  }

 private:
  void Loop() {
    while (!stop_) {
      if (conn_ == nullptr || !conn_->Healthy()) {
        conn_.reset();
        auto conn = PgConnection::Connect(conninfo_, false);
        if (!conn.ok() || !Listen(**conn, channel_).ok()) {
          for (int i = 0; i < 10 && !stop_; ++i) {
            poll(nullptr, 0, 100);  // try again in a second
          }
          continue;
        }
        conn_ = *std::move(conn);
        missed_();  // what was announced while no connection listened
      }
      // Wakes at least every 200 ms to see whether to stop.
      pollfd p = {PQsocket(conn_->handle()), POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      if (!PQconsumeInput(conn_->handle())) {
        conn_.reset();  // lost: made again on the next turn
        continue;
      }
      while (PGnotify* n = PQnotifies(conn_->handle())) {
        // This process's own writes rang its bus already (AfterCommit).
        if (n->be_pid != own_pid_->load()) fn_(n->extra);
        PQfreemem(n);
      }
    }
  }

  const std::string conninfo_;
  const std::string channel_;
  Fn fn_;
  absl::AnyInvocable<void()> missed_;
  const std::atomic<int>* own_pid_;
  std::unique_ptr<PgConnection> conn_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Database::Listener>>
PostgresDatabase::ListenToOthers(const std::string& channel,
                                 absl::AnyInvocable<void(absl::string_view)> fn,
                                 absl::AnyInvocable<void()> missed) {
  if (channel.empty() ||
      channel.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") !=
          std::string::npos) {
    return InvalidField("channel", "INVALID_CHANNEL",
                        "a channel is lower case letters and '_'");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn,
                   PgConnection::Connect(options_.conninfo, false));
  RETURN_IF_ERROR(PgListener::Listen(*conn, channel));
  return std::make_unique<PgListener>(options_.conninfo, channel, std::move(fn),
                                      std::move(missed), &writer_pid_,
                                      std::move(conn));
}

PostgresDatabase::PostgresDatabase(PostgresOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<PostgresDatabase>> PostgresDatabase::Open(
    PostgresOptions options) {
  if (options.conninfo.empty()) {
    return InvalidField("conninfo", "REQUIRED",
                        "a PostgreSQL connection string or URI is required");
  }
  if (options.max_batch == 0) options.max_batch = 1;
  std::unique_ptr<PostgresDatabase> db(
      new PostgresDatabase(std::move(options)));
  ASSIGN_OR_RETURN(db->writer_conn_,
                   PgConnection::Connect(db->options_.conninfo, true));
  db->writer_pid_ = db->writer_conn_->backend_pid();
  PostgresDatabase* raw = db.get();
  db->writer_ = std::thread([raw] { raw->WriterLoop(); });
  return db;
}

PostgresDatabase::~PostgresDatabase() {
  queue_.Stop();
  if (writer_.joinable()) writer_.join();
}

void PostgresDatabase::Write(WriteFn fn, DoneFn done) {
  queue_.Push(std::move(fn), std::move(done));
}

void PostgresDatabase::WriterLoop() {
  std::vector<internal::WriteJob> batch;
  while (queue_.Take(options_.max_batch, batch)) {
    RunBatch(batch);
    batch.clear();
  }
}

void PostgresDatabase::RunBatch(std::vector<internal::WriteJob>& batch) {
  PgConnection& conn = *writer_conn_;
  std::vector<absl::Status> results(batch.size());
  absl::Status commit = absl::OkStatus();
  if (!conn.Healthy()) {
    commit = conn.Reconnect();
    writer_pid_ = conn.backend_pid();
  }
  if (commit.ok()) {
    commit = conn.Run(absl::StrCat("BEGIN ISOLATION LEVEL READ COMMITTED; "
                                   "SELECT pg_advisory_xact_lock(",
                                   kWriterLockKey, ")"),
                      "starting the write transaction failed");
  }
  if (commit.ok()) {
    results = internal::RunJobsInSavepoints(conn, batch);
    commit = conn.Healthy()
                 ? conn.Commit()
                 : Error(absl::StatusCode::kUnavailable, "STORE_UNAVAILABLE",
                         "the connection to PostgreSQL was lost; retry with "
                         "the same request_id");
  }
  if (!commit.ok() && conn.Healthy()) (void)conn.Run("ROLLBACK");
  std::vector<absl::AnyInvocable<void()>> hooks = conn.TakeAfterCommit();
  queue_.CountBatch(internal::SettleResults(commit, results));
  // COMMIT returned: the batch is durable. Watchers are woken no later than
  // the callers are answered.
  if (commit.ok()) {
    for (auto& hook : hooks) hook();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i].done(std::move(results[i]));
  }
}

absl::Status PostgresDatabase::Read(ReadFn fn) {
  std::unique_ptr<PgConnection> conn;
  {
    // At most max_readers connections: wait for one to be free. A read
    // that waits long (e.g. one nested in another while all are taken)
    // opens one more rather than wait for ever.
    absl::MutexLock lock(&readers_mu_);
    readers_mu_.AwaitWithTimeout(
        absl::Condition(
            +[](PostgresDatabase* self)
                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->readers_mu_) {
                   return !self->idle_readers_.empty() ||
                          self->readers_open_ < self->options_.max_readers;
                 },
            this),
        absl::Seconds(5));
    if (!idle_readers_.empty()) {
      conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
    } else {
      ++readers_open_;
    }
  }
  if (conn != nullptr && !conn->Healthy()) conn.reset();
  if (conn == nullptr) {
    auto connected = PgConnection::Connect(options_.conninfo, false);
    if (!connected.ok()) {
      absl::MutexLock lock(&readers_mu_);
      --readers_open_;
      return connected.status();
    }
    conn = *std::move(connected);
  }
  absl::Status status =
      conn->Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                "starting the read transaction failed");
  if (status.ok()) {
    status = fn(*conn);
    absl::Status end = status.ok() ? conn->Commit() : conn->Run("ROLLBACK");
    if (status.ok()) status = end;
  }
  (void)conn->TakeAfterCommit();  // a read commits nothing
  absl::MutexLock lock(&readers_mu_);
  if (conn->Idle() && idle_readers_.size() < options_.max_readers) {
    idle_readers_.push_back(std::move(conn));
  } else {
    --readers_open_;  // broken, stuck, or one over the limit: closed
  }
  return status;
}

absl::Status PostgresDatabase::Migrate(
    absl::string_view component, const std::vector<Migration>& migrations) {
  // A write job: the writer lock serializes replicas migrating at once.
  return WriteAndWait([&](Txn& txn) -> absl::Status {
    auto& conn = static_cast<PgConnection&>(txn);
    return internal::ApplyMigrations(
        txn, component, migrations, [&](absl::string_view stmt) {
          return conn.Run(TranslateDdlForPostgres(stmt),
                          absl::StrCat("migration of ", component, " failed"));
        });
  });
}

int64_t PostgresDatabase::commits() const { return queue_.commits(); }

int64_t PostgresDatabase::committed_writes() const {
  return queue_.committed_writes();
}

}  // namespace careseal::sql
