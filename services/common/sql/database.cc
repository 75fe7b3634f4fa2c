#include "services/common/sql/database.h"

#include <future>

#include "absl/strings/str_cat.h"
#include "services/common/status.h"

namespace careseal::sql {
namespace {
const std::string& EmptyString() {
  static const std::string* const empty = new std::string();
  return *empty;
}
}  // namespace

bool Row::IsNull(size_t i) const {
  return std::holds_alternative<std::monostate>(values_.at(i));
}

int64_t Row::Int(size_t i) const {
  const Value& v = values_.at(i);
  if (const int64_t* n = std::get_if<int64_t>(&v)) return *n;
  return 0;
}

const std::string& Row::Str(size_t i) const {
  const Value& v = values_.at(i);
  if (const std::string* s = std::get_if<std::string>(&v)) return *s;
  if (const Blob* b = std::get_if<Blob>(&v)) return b->bytes;
  return EmptyString();
}

absl::StatusOr<Row> Txn::QueryOne(absl::string_view sql, Params params,
                                  absl::string_view what) {
  auto rows = Query(sql, params);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    return NotFound("NOT_FOUND", absl::StrCat(what, " not found"));
  }
  return std::move(rows->front());
}

absl::Status Database::WriteAndWait(WriteFn fn) {
  std::promise<absl::Status> promise;
  std::future<absl::Status> future = promise.get_future();
  Write(std::move(fn),
        [&promise](absl::Status status) { promise.set_value(status); });
  return future.get();
}

bool IsUniqueViolation(const absl::Status& status) {
  return ErrorReason(status) == "UNIQUE_VIOLATION";
}

}  // namespace careseal::sql
