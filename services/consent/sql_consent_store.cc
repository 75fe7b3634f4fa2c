#include "services/consent/sql_consent_store.h"

#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/policy.h"
#include "services/common/status.h"

namespace careseal::consent {
namespace {

using sql::Bytes;
using sql::Int;
using sql::Null;
using sql::Text;

sql::Value OptTime(const std::optional<absl::Time>& t) {
  return t ? Int(ToMicros(*t)) : Null();
}

std::optional<absl::Time> ReadOptTime(const sql::Row& row, size_t i) {
  if (row.IsNull(i)) return std::nullopt;
  return FromMicros(row.Int(i));
}

// Column lists are macros so that every statement is one string literal,
// built at compile time (not per call) and found in the statement cache.
#define CONSENT_COLUMNS                                                    \
  "tenant, patient, consent_id, template_id, version, procedure_code, "    \
  "state, document_sha256, requested_by, create_time_us, update_time_us, " \
  "expire_time_us, valid_until_us, sign_time_us, withdraw_time_us, "       \
  "withdrawn_by, decline_time_us, supersede_time_us, superseded_by, "      \
  "receipt_payload, receipt_signature, receipt_key_id, token_hash, "       \
  "token_used, end_reason_sealed, signing_link"

// The state a stored consent is in at the time bound twice (see
// EffectiveState).
#define EFFECTIVE_STATE                                                     \
  "(CASE WHEN state = 1 AND expire_time_us <= ? THEN 4 WHEN state = 2 AND " \
  "valid_until_us IS NOT NULL AND valid_until_us <= ? THEN 4 ELSE state "   \
  "END)"

Consent ConsentFromRow(const sql::Row& r, absl::Time now,
                       ConsentSecrets* secrets) {
  Consent c;
  c.tenant = r.Str(0);
  c.patient = r.Str(1);
  c.id = r.Str(2);
  c.template_id = r.Str(3);
  c.version = static_cast<int>(r.Int(4));
  c.procedure_code = r.Str(5);
  c.document_sha256 = r.Str(7);
  c.requested_by = r.Str(8);
  c.create_time = FromMicros(r.Int(9));
  c.update_time = FromMicros(r.Int(10));
  c.expire_time = FromMicros(r.Int(11));
  c.valid_until = ReadOptTime(r, 12);
  c.sign_time = ReadOptTime(r, 13);
  c.withdraw_time = ReadOptTime(r, 14);
  c.withdrawn_by = r.Str(15);
  c.decline_time = ReadOptTime(r, 16);
  c.supersede_time = ReadOptTime(r, 17);
  c.superseded_by = r.Str(18);
  if (!r.IsNull(19))
    c.receipt = Receipt{r.Str(19), r.Str(20), r.Str(21), nullptr};
  c.state = EffectiveState(static_cast<ConsentState>(r.Int(6)), c.expire_time,
                           c.valid_until, now);
  if (secrets != nullptr) {
    secrets->token_hash = r.Str(22);
    secrets->token_used = r.Int(23) != 0;
    secrets->end_reason_sealed = r.Str(24);
  }
  c.signing_link = r.Str(25);
  return c;
}

// The parsed content of a stored document. Documents are immutable and
// read on every RequestConsent, SignConsent and GetDocument, so parses are
// kept, keyed by the exact document bytes (no assumption about any other
// column); a bounded set, emptied when full.
absl::StatusOr<std::shared_ptr<const TemplateVersionContent>> ParseDocument(
    const std::string& canonical_document) {
  static constexpr size_t kMaxEntries = 128;
  static absl::Mutex mu(absl::kConstInit);
  static auto* parsed =
      new absl::flat_hash_map<std::string,
                              std::shared_ptr<const TemplateVersionContent>>;
  {
    absl::MutexLock lock(&mu);
    auto it = parsed->find(canonical_document);
    if (it != parsed->end()) return it->second;
  }
  // Every member has the type the service writes; anything else is a
  // corrupt document, never an exception.
  const absl::Status corrupt =
      Internal("DOCUMENT_CORRUPT", "a stored consent document is corrupt");
  auto text = [](const Json& object, const char* key, std::string* out) {
    auto it = object.find(key);
    if (it == object.end()) return true;  // absent: ""
    if (!it->is_string()) return false;
    *out = it->get<std::string>();
    return true;
  };
  Json doc = Json::parse(canonical_document, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return corrupt;
  auto content = std::make_shared<TemplateVersionContent>();
  if (!text(doc, "title", &content->title) ||
      !text(doc, "body_markdown", &content->body_markdown) ||
      !text(doc, "esign_disclosure", &content->esign_disclosure) ||
      !text(doc, "signature_meaning", &content->signature_meaning)) {
    return corrupt;
  }
  const Json none = Json::array();
  const Json& acks =
      doc.contains("acknowledgements") ? doc["acknowledgements"] : none;
  const Json& codes =
      doc.contains("procedure_codes") ? doc["procedure_codes"] : none;
  if (!acks.is_array() || !codes.is_array()) return corrupt;
  for (const Json& a : acks) {
    Acknowledgement ack;
    if (!a.is_object() || !text(a, "id", &ack.id) ||
        !text(a, "text", &ack.text)) {
      return corrupt;
    }
    auto required = a.find("required");
    if (required != a.end() && !required->is_boolean()) return corrupt;
    ack.required = required == a.end() || required->get<bool>();
    content->acknowledgements.push_back(std::move(ack));
  }
  for (const Json& p : codes) {
    if (!p.is_string()) return corrupt;
    content->procedure_codes.push_back(p.get<std::string>());
  }
  absl::MutexLock lock(&mu);
  if (parsed->size() >= kMaxEntries) parsed->clear();
  parsed->emplace(canonical_document, content);
  return content;
}

absl::StatusOr<TemplateVersion> VersionFromRow(const sql::Row& r) {
  TemplateVersion v;
  v.tenant = r.Str(0);
  v.template_id = r.Str(1);
  v.version = static_cast<int>(r.Int(2));
  v.canonical_document = r.Str(3);
  v.document_sha256 = r.Str(4);
  v.publish_time = FromMicros(r.Int(5));
  v.publisher = r.Str(6);
  ASSIGN_OR_RETURN(std::shared_ptr<const TemplateVersionContent> content,
                   ParseDocument(v.canonical_document));
  v.content = *content;
  v.content.requires_reconsent = r.Int(7) != 0;
  return v;
}

#define VERSION_COLUMNS                                                 \
  "tenant, template_id, version, canonical_document, document_sha256, " \
  "publish_time_us, publisher, requires_reconsent"

ConsentTemplate TemplateFromRow(const sql::Row& r) {
  ConsentTemplate t;
  t.tenant = r.Str(0);
  t.id = r.Str(1);
  t.display_name = r.Str(2);
  t.latest_version = static_cast<int>(r.Int(3));
  t.create_time = FromMicros(r.Int(4));
  t.update_time = FromMicros(r.Int(5));
  return t;
}

#define TEMPLATE_COLUMNS                                                \
  "tenant, template_id, display_name, latest_version, create_time_us, " \
  "update_time_us"

}  // namespace

ConsentState EffectiveState(ConsentState stored, absl::Time expire_time,
                            std::optional<absl::Time> valid_until,
                            absl::Time now) {
  if (stored == ConsentState::kPending && now >= expire_time) {
    return ConsentState::kExpired;
  }
  if (stored == ConsentState::kActive && valid_until && now >= *valid_until) {
    return ConsentState::kExpired;
  }
  return stored;
}

const std::vector<sql::Migration>& ConsentMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE consent_templates ("
       "  tenant TEXT NOT NULL, template_id TEXT NOT NULL,"
       "  display_name TEXT NOT NULL, latest_version BIGINT NOT NULL,"
       "  create_time_us BIGINT NOT NULL, update_time_us BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, template_id));"
       "CREATE TABLE consent_template_versions ("
       "  tenant TEXT NOT NULL, template_id TEXT NOT NULL,"
       "  version BIGINT NOT NULL, canonical_document BLOB NOT NULL,"
       "  document_sha256 BLOB NOT NULL, publish_time_us BIGINT NOT NULL,"
       "  publisher TEXT NOT NULL, requires_reconsent BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, template_id, version));"
       "CREATE TABLE consent_version_procedures ("
       "  tenant TEXT NOT NULL, procedure_code TEXT NOT NULL,"
       "  template_id TEXT NOT NULL, version BIGINT NOT NULL,"
       "  PRIMARY KEY (tenant, procedure_code, template_id, version));"
       "CREATE TABLE consents ("
       "  tenant TEXT NOT NULL, patient TEXT NOT NULL,"
       "  consent_id TEXT NOT NULL, template_id TEXT NOT NULL,"
       "  version BIGINT NOT NULL, procedure_code TEXT NOT NULL,"
       "  state BIGINT NOT NULL, document_sha256 BLOB NOT NULL,"
       "  requested_by TEXT NOT NULL, create_time_us BIGINT NOT NULL,"
       "  update_time_us BIGINT NOT NULL, expire_time_us BIGINT NOT NULL,"
       "  valid_until_us BIGINT, sign_time_us BIGINT,"
       "  withdraw_time_us BIGINT, withdrawn_by TEXT NOT NULL DEFAULT '',"
       "  decline_time_us BIGINT, supersede_time_us BIGINT,"
       "  superseded_by TEXT NOT NULL DEFAULT '',"
       "  receipt_payload BLOB, receipt_signature BLOB, receipt_key_id TEXT,"
       "  token_hash BLOB NOT NULL, token_used BIGINT NOT NULL DEFAULT 0,"
       "  end_reason_sealed BLOB, evidence_sealed BLOB,"
       "  PRIMARY KEY (tenant, patient, consent_id));"
       "CREATE INDEX consents_by_procedure ON consents (tenant, patient, "
       "procedure_code, create_time_us);"
       "CREATE INDEX consents_by_tenant ON consents (tenant, create_time_us, "
       "consent_id);"
       "CREATE UNIQUE INDEX consents_by_token ON consents (token_hash)"},
      // A patient's consents for a procedure in the order CheckCandidates reads
      // them (create_time_us, consent_id): without consent_id the planner
      // preferred consents_by_tenant for its ORDER BY and scanned the whole
      // tenant on every CheckConsent.
      {2,
       "CREATE INDEX consents_by_patient_procedure ON consents (tenant, "
       "patient, procedure_code, create_time_us, consent_id);"
       "DROP INDEX consents_by_procedure"},
      // The patient link (IdentityService) whose token is the consent's
      // signing token: one token both opens the portal and signs.
      {3,
       "ALTER TABLE consents ADD COLUMN signing_link TEXT NOT NULL DEFAULT "
       "''"},
  };
  return *migrations;
}

absl::Status SqlConsentStore::InsertTemplate(sql::Txn& txn,
                                             const ConsentTemplate& t) {
  absl::Status s =
      txn.Exec("INSERT INTO consent_templates (" TEMPLATE_COLUMNS
               ") VALUES (?, ?, ?, ?, ?, ?)",
               {Text(t.tenant), Text(t.id), Text(t.display_name),
                Int(t.latest_version), Int(ToMicros(t.create_time)),
                Int(ToMicros(t.update_time))})
          .status();
  if (sql::IsUniqueViolation(s)) {
    return AlreadyExists("TEMPLATE_ID_TAKEN",
                         "a consent template with this id already exists");
  }
  return s;
}

absl::StatusOr<ConsentTemplate> SqlConsentStore::GetTemplate(
    sql::Txn& txn, absl::string_view tenant, absl::string_view id) {
  ASSIGN_OR_RETURN(
      auto rows, txn.Query("SELECT " TEMPLATE_COLUMNS " FROM consent_templates "
                           "WHERE tenant = ? AND "
                           "template_id = ?",
                           {Text(std::string(tenant)), Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return TemplateFromRow(rows[0]);
}

absl::StatusOr<std::vector<ConsentTemplate>> SqlConsentStore::ListTemplates(
    sql::Txn& txn, absl::string_view tenant, const PageCursor& after,
    bool first, int limit) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT " TEMPLATE_COLUMNS
                             " FROM consent_templates WHERE tenant = ? AND "
                             "(? = 1 OR template_id > ?) ORDER BY template_id "
                             "LIMIT ?",
                             {Text(std::string(tenant)), Int(first ? 1 : 0),
                              Text(after.tiebreak), Int(limit)}));
  std::vector<ConsentTemplate> out;
  for (const auto& r : rows) out.push_back(TemplateFromRow(r));
  return out;
}

absl::Status SqlConsentStore::InsertVersion(sql::Txn& txn,
                                            const TemplateVersion& v) {
  RETURN_IF_ERROR(
      txn.Exec("INSERT INTO consent_template_versions (" VERSION_COLUMNS
               ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               {Text(v.tenant), Text(v.template_id), Int(v.version),
                Bytes(v.canonical_document), Bytes(v.document_sha256),
                Int(ToMicros(v.publish_time)), Text(v.publisher),
                Int(v.content.requires_reconsent ? 1 : 0)})
          .status());
  for (const std::string& code : v.content.procedure_codes) {
    RETURN_IF_ERROR(txn.Exec("INSERT INTO consent_version_procedures (tenant, "
                             "procedure_code, template_id, version) VALUES "
                             "(?, ?, ?, ?)",
                             {Text(v.tenant), Text(code), Text(v.template_id),
                              Int(v.version)})
                        .status());
  }
  return txn
      .Exec(
          "UPDATE consent_templates SET latest_version = ?, update_time_us "
          "= ? WHERE tenant = ? AND template_id = ?",
          {Int(v.version), Int(ToMicros(v.publish_time)), Text(v.tenant),
           Text(v.template_id)})
      .status();
}

absl::StatusOr<TemplateVersion> SqlConsentStore::GetVersion(
    sql::Txn& txn, absl::string_view tenant, absl::string_view template_id,
    int version) {
  std::vector<sql::Row> rows;
  if (version == 0) {
    ASSIGN_OR_RETURN(
        rows,
        txn.Query("SELECT " VERSION_COLUMNS " FROM consent_template_versions "
                  "WHERE tenant = ? AND template_id = "
                  "? ORDER BY version DESC LIMIT 1",
                  {Text(std::string(tenant)), Text(std::string(template_id))}));
  } else {
    ASSIGN_OR_RETURN(
        rows,
        txn.Query("SELECT " VERSION_COLUMNS " FROM consent_template_versions "
                  "WHERE tenant = ? AND template_id = "
                  "? AND version = ?",
                  {Text(std::string(tenant)), Text(std::string(template_id)),
                   Int(version)}));
  }
  if (rows.empty()) return ResourceNotFound();
  return VersionFromRow(rows[0]);
}

absl::StatusOr<std::vector<TemplateVersion>> SqlConsentStore::ListVersions(
    sql::Txn& txn, absl::string_view tenant, absl::string_view template_id,
    int before_version, int limit) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " VERSION_COLUMNS
                " FROM consent_template_versions WHERE tenant = "
                "? AND template_id = ? AND version < ? ORDER BY "
                "version DESC LIMIT ?",
                {Text(std::string(tenant)), Text(std::string(template_id)),
                 Int(before_version), Int(limit)}));
  std::vector<TemplateVersion> out;
  for (const auto& r : rows) {
    ASSIGN_OR_RETURN(TemplateVersion v, VersionFromRow(r));
    out.push_back(std::move(v));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> SqlConsentStore::TemplatesCovering(
    sql::Txn& txn, absl::string_view tenant, absl::string_view code) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT p.template_id FROM consent_version_procedures p JOIN "
                "consent_templates t ON t.tenant = p.tenant AND t.template_id "
                "= p.template_id AND t.latest_version = p.version WHERE "
                "p.tenant = ? AND p.procedure_code = ? ORDER BY p.template_id",
                {Text(std::string(tenant)), Text(std::string(code))}));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.Str(0));
  return out;
}

absl::StatusOr<std::vector<std::string>>
SqlConsentStore::SupersedeOlderVersions(sql::Txn& txn,
                                        const TemplateVersion& newer,
                                        absl::Time now) {
  std::vector<std::string> names;
  for (const std::string& code : newer.content.procedure_codes) {
    ASSIGN_OR_RETURN(
        auto rows,
        txn.Query("UPDATE consents SET state = ?, supersede_time_us = ?, "
                  "update_time_us = ? WHERE tenant = ? AND template_id = ? AND "
                  "version < ? AND procedure_code = ? AND state IN (?, ?) "
                  "RETURNING patient, consent_id",
                  {Int(static_cast<int>(ConsentState::kSuperseded)),
                   Int(ToMicros(now)), Int(ToMicros(now)), Text(newer.tenant),
                   Text(newer.template_id), Int(newer.version), Text(code),
                   Int(static_cast<int>(ConsentState::kPending)),
                   Int(static_cast<int>(ConsentState::kActive))}));
    for (const auto& r : rows) {
      names.push_back(absl::StrCat("tenants/", newer.tenant, "/patients/",
                                   r.Str(0), "/consents/", r.Str(1)));
    }
  }
  return names;
}

absl::Status SqlConsentStore::InsertConsent(sql::Txn& txn, const Consent& c,
                                            const std::string& token_hash) {
  return txn
      .Exec(
          "INSERT INTO consents (tenant, patient, consent_id, template_id, "
          "version, procedure_code, state, document_sha256, requested_by, "
          "create_time_us, update_time_us, expire_time_us, valid_until_us, "
          "token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          {Text(c.tenant), Text(c.patient), Text(c.id), Text(c.template_id),
           Int(c.version), Text(c.procedure_code),
           Int(static_cast<int>(c.state)), Bytes(c.document_sha256),
           Text(c.requested_by), Int(ToMicros(c.create_time)),
           Int(ToMicros(c.update_time)), Int(ToMicros(c.expire_time)),
           OptTime(c.valid_until), Bytes(token_hash)})
      .status();
}

absl::StatusOr<Consent> SqlConsentStore::GetConsent(
    sql::Txn& txn, absl::string_view tenant, absl::string_view patient,
    absl::string_view id, absl::Time now, ConsentSecrets* secrets) {
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT " CONSENT_COLUMNS
                " FROM consents WHERE tenant = ? AND patient = ? "
                "AND consent_id = ?",
                {Text(std::string(tenant)), Text(std::string(patient)),
                 Text(std::string(id))}));
  if (rows.empty()) return ResourceNotFound();
  return ConsentFromRow(rows[0], now, secrets);
}

absl::StatusOr<Consent> SqlConsentStore::GetConsentByToken(
    sql::Txn& txn, const std::string& token_hash, absl::Time now,
    ConsentSecrets* secrets) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT " CONSENT_COLUMNS " FROM consents WHERE "
                             "token_hash = ?",
                             {Bytes(token_hash)}));
  if (rows.empty()) return ResourceNotFound();
  return ConsentFromRow(rows[0], now, secrets);
}

absl::Status SqlConsentStore::ReplaceToken(sql::Txn& txn, const Consent& c,
                                           const std::string& token_hash) {
  return txn
      .Exec(
          "UPDATE consents SET token_hash = ? WHERE tenant = ? AND patient "
          "= ? AND consent_id = ? AND token_used = 0",
          {Bytes(token_hash), Text(c.tenant), Text(c.patient), Text(c.id)})
      .status();
}

absl::Status SqlConsentStore::AttachSigningLink(sql::Txn& txn, const Consent& c,
                                                const std::string& token_hash,
                                                absl::string_view link) {
  return txn
      .Exec(
          "UPDATE consents SET token_hash = ?, signing_link = ? WHERE tenant "
          "= ? AND patient = ? AND consent_id = ? AND token_used = 0",
          {Bytes(token_hash), Text(std::string(link)), Text(c.tenant),
           Text(c.patient), Text(c.id)})
      .status();
}

absl::Status SqlConsentStore::SupersedeSiblings(sql::Txn& txn,
                                                const Consent& newer,
                                                ConsentState state,
                                                absl::Time now) {
  return txn
      .Exec(
          "UPDATE consents SET state = ?, supersede_time_us = ?, "
          "update_time_us = ?, superseded_by = ? WHERE tenant = ? AND "
          "patient = ? AND procedure_code = ? AND state = ? AND consent_id "
          "<> ?",
          {Int(static_cast<int>(ConsentState::kSuperseded)), Int(ToMicros(now)),
           Int(ToMicros(now)), Text(newer.Name()), Text(newer.tenant),
           Text(newer.patient), Text(newer.procedure_code),
           Int(static_cast<int>(state)), Text(newer.id)})
      .status();
}

absl::Status SqlConsentStore::MarkSigned(sql::Txn& txn, const Consent& c,
                                         const Receipt& receipt,
                                         const std::string& evidence_sealed,
                                         absl::Time now) {
  ASSIGN_OR_RETURN(
      int64_t changed,
      txn.Exec("UPDATE consents SET state = ?, sign_time_us = ?, "
               "update_time_us = ?, token_used = 1, receipt_payload = ?, "
               "receipt_signature = ?, receipt_key_id = ?, evidence_sealed = ? "
               "WHERE tenant = ? AND patient = ? AND consent_id = ? AND state "
               "= ? AND token_used = 0",
               {Int(static_cast<int>(ConsentState::kActive)),
                Int(ToMicros(now)), Int(ToMicros(now)), Bytes(receipt.payload),
                Bytes(receipt.signature), Text(receipt.key_id),
                Bytes(evidence_sealed), Text(c.tenant), Text(c.patient),
                Text(c.id), Int(static_cast<int>(ConsentState::kPending))}));
  if (changed != 1) {
    return FailedPrecondition("CONSENT_NOT_PENDING",
                              "the consent is no longer awaiting signature");
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> SqlConsentStore::MarkExpired(sql::Txn& txn,
                                                  const Consent& c,
                                                  absl::Time when) {
  ASSIGN_OR_RETURN(
      int64_t changed,
      txn.Exec("UPDATE consents SET state = ?, update_time_us = ? WHERE "
               "tenant = ? AND patient = ? AND consent_id = ? AND state IN "
               "(?, ?)",
               {Int(static_cast<int>(ConsentState::kExpired)),
                Int(ToMicros(when)), Text(c.tenant), Text(c.patient),
                Text(c.id), Int(static_cast<int>(ConsentState::kPending)),
                Int(static_cast<int>(ConsentState::kActive))}));
  return changed == 1;
}

absl::Status SqlConsentStore::MarkEnded(sql::Txn& txn, const Consent& c,
                                        ConsentState state,
                                        absl::string_view actor,
                                        const std::string& reason_sealed,
                                        absl::Time now) {
  const bool withdrawn = state == ConsentState::kWithdrawn;
  return txn
      .Exec(
          "UPDATE consents SET state = ?, update_time_us = ?, token_used = "
          "1, end_reason_sealed = ?, withdraw_time_us = ?, withdrawn_by = "
          "?, decline_time_us = ? WHERE tenant = ? AND patient = ? AND "
          "consent_id = ?",
          {Int(static_cast<int>(state)), Int(ToMicros(now)),
           reason_sealed.empty() ? Null() : Bytes(reason_sealed),
           withdrawn ? Int(ToMicros(now)) : Null(),
           Text(withdrawn ? std::string(actor) : std::string()),
           withdrawn ? Null() : Int(ToMicros(now)), Text(c.tenant),
           Text(c.patient), Text(c.id)})
      .status();
}

absl::StatusOr<std::vector<Consent>> SqlConsentStore::ListConsents(
    sql::Txn& txn, const ConsentFilter& f, const PageCursor& after, bool first,
    int limit, absl::Time now) {
  // Effective state in SQL (EFFECTIVE_STATE) so that filtering and paging
  // agree.
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query(
          ("SELECT " CONSENT_COLUMNS
           " FROM consents WHERE tenant = ? AND (? = '-' OR patient = ?) "
           "AND (? = 0 OR " EFFECTIVE_STATE
           " = ?) AND (? = '' OR procedure_code = ?) AND (? = 1 OR "
           "create_time_us < ? OR (create_time_us = ? AND consent_id < ?)) "
           "ORDER BY create_time_us DESC, consent_id DESC LIMIT ?"),
          {Text(f.tenant), Text(f.patient), Text(f.patient),
           Int(f.state ? static_cast<int>(*f.state) : 0), Int(ToMicros(now)),
           Int(ToMicros(now)), Int(f.state ? static_cast<int>(*f.state) : 0),
           Text(f.procedure_code), Text(f.procedure_code), Int(first ? 1 : 0),
           Int(after.key), Int(after.key), Text(after.tiebreak), Int(limit)}));
  std::vector<Consent> out;
  for (const auto& r : rows) out.push_back(ConsentFromRow(r, now, nullptr));
  return out;
}

absl::StatusOr<std::vector<Consent>> SqlConsentStore::CheckCandidates(
    sql::Txn& txn, absl::string_view tenant, absl::string_view patient,
    absl::string_view code, absl::Time now) {
  // Only columns stored before the receipt and the sealed evidence: a signed
  // consent's row runs into overflow pages, which a later column (such as
  // signing_link, added last) would make SQLite walk on every check.
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT consent_id, template_id, version, state, "
                "create_time_us, expire_time_us, valid_until_us, "
                "sign_time_us, withdraw_time_us, supersede_time_us "
                "FROM consents WHERE tenant = ? AND patient = ? "
                "AND procedure_code = ? ORDER BY create_time_us "
                "DESC, consent_id DESC LIMIT 50",
                {Text(std::string(tenant)), Text(std::string(patient)),
                 Text(std::string(code))}));
  std::vector<Consent> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    Consent& c = out.emplace_back();
    c.tenant = std::string(tenant);
    c.patient = std::string(patient);
    c.procedure_code = std::string(code);
    c.id = r.Str(0);
    c.template_id = r.Str(1);
    c.version = static_cast<int>(r.Int(2));
    c.create_time = FromMicros(r.Int(4));
    c.expire_time = FromMicros(r.Int(5));
    c.valid_until = ReadOptTime(r, 6);
    c.sign_time = ReadOptTime(r, 7);
    c.withdraw_time = ReadOptTime(r, 8);
    c.supersede_time = ReadOptTime(r, 9);
    c.state = EffectiveState(static_cast<ConsentState>(r.Int(3)), c.expire_time,
                             c.valid_until, now);
  }
  return out;
}

}  // namespace careseal::consent
