// Consent persistence: portable SQL over sql::Txn, so the same code runs on
// SQLite and PostgreSQL. Times are stored as microseconds since the epoch;
// the document a version renders is stored as its exact canonical bytes and
// read back from them (one source of truth).
#ifndef CARESEAL_SERVICES_CONSENT_SQL_CONSENT_STORE_H_
#define CARESEAL_SERVICES_CONSENT_SQL_CONSENT_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/platform/pagination.h"
#include "services/common/sql/database.h"
#include "services/consent/consent_model.h"

namespace careseal::consent {

const std::vector<sql::Migration>& ConsentMigrations();

// Stored fields of a consent that are not part of the public model.
struct ConsentSecrets {
  std::string token_hash;
  bool token_used = false;
  std::string end_reason_sealed;
};

struct ConsentFilter {
  std::string tenant;
  std::string patient;  // "-" for all patients
  std::optional<ConsentState> state;
  std::string procedure_code;  // empty: any
};

// Stateless; every method runs inside the caller's transaction.
class SqlConsentStore {
 public:
  absl::Status InsertTemplate(sql::Txn& txn, const ConsentTemplate& t);
  absl::StatusOr<ConsentTemplate> GetTemplate(sql::Txn& txn,
                                              absl::string_view tenant,
                                              absl::string_view id);
  absl::StatusOr<std::vector<ConsentTemplate>> ListTemplates(
      sql::Txn& txn, absl::string_view tenant, const PageCursor& after,
      bool first, int limit);

  absl::Status InsertVersion(sql::Txn& txn, const TemplateVersion& v);
  // version 0 means the latest.
  absl::StatusOr<TemplateVersion> GetVersion(sql::Txn& txn,
                                             absl::string_view tenant,
                                             absl::string_view template_id,
                                             int version);
  absl::StatusOr<std::vector<TemplateVersion>> ListVersions(
      sql::Txn& txn, absl::string_view tenant, absl::string_view template_id,
      int before_version, int limit);
  // Ids of the tenant's templates whose latest version covers `code`.
  absl::StatusOr<std::vector<std::string>> TemplatesCovering(
      sql::Txn& txn, absl::string_view tenant, absl::string_view code);
  // Marks PENDING and ACTIVE consents of older versions of the template for
  // the given procedures SUPERSEDED; returns their names.
  absl::StatusOr<std::vector<std::string>> SupersedeOlderVersions(
      sql::Txn& txn, const TemplateVersion& newer, absl::Time now);

  absl::Status InsertConsent(sql::Txn& txn, const Consent& c,
                             const std::string& token_hash);
  absl::StatusOr<Consent> GetConsent(sql::Txn& txn, absl::string_view tenant,
                                     absl::string_view patient,
                                     absl::string_view id, absl::Time now,
                                     ConsentSecrets* secrets = nullptr);
  absl::StatusOr<Consent> GetConsentByToken(sql::Txn& txn,
                                            const std::string& token_hash,
                                            absl::Time now,
                                            ConsentSecrets* secrets);
  absl::Status ReplaceToken(sql::Txn& txn, const Consent& c,
                            const std::string& token_hash);
  // Makes the token of patient link `link` the consent's signing token
  // (unless the consent's token was already used).
  absl::Status AttachSigningLink(sql::Txn& txn, const Consent& c,
                                 const std::string& token_hash,
                                 absl::string_view link);
  // Supersedes the patient's other consents for the procedure that are in
  // `state` (PENDING when a new request arrives, ACTIVE when one is signed).
  absl::Status SupersedeSiblings(sql::Txn& txn, const Consent& newer,
                                 ConsentState state, absl::Time now);
  absl::Status MarkSigned(sql::Txn& txn, const Consent& c,
                          const Receipt& receipt,
                          const std::string& evidence_sealed, absl::Time now);
  // Stores EXPIRED if the stored state is still pending or active; returns
  // whether it changed.
  absl::StatusOr<bool> MarkExpired(sql::Txn& txn, const Consent& c,
                                   absl::Time when);
  absl::Status MarkEnded(sql::Txn& txn, const Consent& c, ConsentState state,
                         absl::string_view actor,
                         const std::string& reason_sealed, absl::Time now);
  absl::StatusOr<std::vector<Consent>> ListConsents(sql::Txn& txn,
                                                    const ConsentFilter& f,
                                                    const PageCursor& after,
                                                    bool first, int limit,
                                                    absl::Time now);
  // The patient's consents for a procedure, newest first (at most 50), with
  // only what a consent check reads: names (tenant, patient, id,
  // procedure_code, template_id, version), the effective state and the
  // times (create, expire, valid_until, sign, withdraw, supersede). The
  // other fields (receipt, document digest, signing link, ...) are left
  // empty; use GetConsent for a whole consent.
  absl::StatusOr<std::vector<Consent>> CheckCandidates(
      sql::Txn& txn, absl::string_view tenant, absl::string_view patient,
      absl::string_view code, absl::Time now);
};

// The state a stored consent is in at `now` (PENDING past its deadline and
// ACTIVE past valid_until read as EXPIRED).
ConsentState EffectiveState(ConsentState stored, absl::Time expire_time,
                            std::optional<absl::Time> valid_until,
                            absl::Time now);

}  // namespace careseal::consent

#endif  // CARESEAL_SERVICES_CONSENT_SQL_CONSENT_STORE_H_
