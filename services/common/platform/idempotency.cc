#include "services/common/platform/idempotency.h"

#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/status.h"

namespace careseal {

const std::vector<sql::Migration>& IdempotencyMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE idempotency ("
       "  tenant TEXT NOT NULL, actor TEXT NOT NULL, request_id TEXT NOT NULL,"
       "  method TEXT NOT NULL, fingerprint BLOB NOT NULL,"
       "  resource TEXT NOT NULL, create_time_us BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, actor, request_id))"},
      // Keyed by (tenant, request_id, actor): time-ordered request ids
      // (UUID version 7, as the C++ client makes them) then go to the end
      // of their tenant's range of the key's index, a few pages per group
      // commit whoever the caller is, instead of each to a random page of
      // it. Random ones (version 4) still each take a page somewhere, as
      // every id did before. (Not WITHOUT ROWID: its leaf rows are about
      // twice as wide as the index's entries; with random ids sign-consent
      // ran 5-11% slower than before in docs/PERFORMANCE.md, session 12.)
      {2,
       "CREATE TABLE idempotency_by_id ("
       "  tenant TEXT NOT NULL, request_id TEXT NOT NULL, actor TEXT NOT NULL,"
       "  method TEXT NOT NULL, fingerprint BLOB NOT NULL,"
       "  resource TEXT NOT NULL, create_time_us BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, request_id, actor));"
       "INSERT INTO idempotency_by_id (tenant, request_id, actor, method,"
       "  fingerprint, resource, create_time_us) SELECT tenant, request_id,"
       "  actor, method, fingerprint, resource, create_time_us FROM"
       "  idempotency ORDER BY tenant, request_id, actor;"
       "DROP TABLE idempotency;"
       "ALTER TABLE idempotency_by_id RENAME TO idempotency"},
  };
  return *migrations;
}

absl::Status CheckRequestId(absl::string_view id) {
  auto bad = [] {
    return InvalidField("request_id", "INVALID_REQUEST_ID",
                        "request_id must be a UUID "
                        "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) chosen by the "
                        "client and reused on retries");
  };
  if (id.empty()) {
    return InvalidField("request_id", "FIELD_REQUIRED",
                        "request_id is required on every mutation: a UUID "
                        "chosen by the client and reused on retries");
  }
  if (id.size() != 36) return bad();
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-'
             : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                 (c >= 'A' && c <= 'F'))) {
      return bad();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> FindIdempotentResult(
    sql::Txn& txn, const CallContext& call) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT method, fingerprint, resource FROM idempotency WHERE "
                "tenant = ? AND request_id = ? AND actor = ?",
                {sql::Text(AuditTenantOf(call)), sql::Text(call.request_id),
                 sql::Text(call.principal.actor)}));
  if (rows.empty()) return std::nullopt;
  if (rows[0].Str(0) != call.method ||
      rows[0].Str(1) != call.request_fingerprint) {
    return AlreadyExists("REQUEST_ID_REUSED",
                         "this request_id was already used for a different "
                         "request; use a new UUID for a new request");
  }
  return rows[0].Str(2);
}

absl::Status RememberIdempotentResult(sql::Txn& txn, const CallContext& call,
                                      absl::string_view resource) {
  return txn
      .Exec(
          "INSERT INTO idempotency (tenant, request_id, actor, method, "
          "fingerprint, resource, create_time_us) VALUES (?, ?, ?, ?, ?, ?, "
          "?)",
          {sql::Text(AuditTenantOf(call)), sql::Text(call.request_id),
           sql::Text(call.principal.actor), sql::Text(call.method),
           sql::Bytes(call.request_fingerprint),
           sql::Text(std::string(resource)), sql::Int(ToMicros(call.now))})
      .status();
}

std::string DerivedRequestId(absl::string_view seed) {
  std::string d = crypto::Sha256(seed);
  d.resize(16);
  d[6] = static_cast<char>((d[6] & 0x0f) | 0x40);
  d[8] = static_cast<char>((d[8] & 0x3f) | 0x80);
  const std::string h = crypto::HexEncode(d);
  return absl::StrCat(h.substr(0, 8), "-", h.substr(8, 4), "-", h.substr(12, 4),
                      "-", h.substr(16, 4), "-", h.substr(20, 12));
}

}  // namespace careseal
