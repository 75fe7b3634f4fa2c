// SqlPreSessionStore: the pre-session tables (migration component
// "presession") over sql::Txn. Each record is one row: the columns the
// service filters and sorts on, plus the record as JSON (`doc`). Health data
// (checklist answers, override reasons) arrives sealed and is stored in
// separate BLOB columns, never in `doc`.
#ifndef CARESEAL_SERVICES_PRESESSION_SQL_PRESESSION_STORE_H_
#define CARESEAL_SERVICES_PRESESSION_SQL_PRESESSION_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/sql/database.h"
#include "services/presession/presession_model.h"

namespace careseal::presession {

std::vector<sql::Migration> PreSessionMigrations();

// The canonical rendering of a version's content (canonical JSON with the
// format name): what content_sha256 is computed over, stored as is.
std::string CanonicalContent(const InstructionContent& content);

// The checklist answers as the bytes that get sealed, and back.
std::string ChecklistDoc(const ChecklistAnswers& checklist);
absl::StatusOr<ChecklistAnswers> ChecklistFromDoc(const std::string& doc);

struct SessionRow {
  Session session;                     // readiness_override->reason empty
  std::string override_reason_sealed;  // "" if no override
};

struct AttestationRow {
  Attestation attestation;       // checklist unset
  std::string checklist_sealed;  // "" if no checklist
};

// What a delivery job did once it ran.
struct DeliveryRecord {
  std::string job_key;
  std::string tenant;
  DeliveryState state = DeliveryState::kDelivered;
  absl::Time deliver_time;
  std::string message;
  std::string template_version;
};

struct SessionFilter {
  std::string tenant;
  std::string patient;  // "-": all
  std::string series;   // name; "" all
  int state = 0;        // 0 all
  std::optional<absl::Time> start_from;
  std::optional<absl::Time> start_before;
};

class SqlPreSessionStore {
 public:
  // Settings; nullopt if the tenant never changed them.
  absl::StatusOr<std::optional<Settings>> GetSettings(sql::Txn& txn,
                                                      absl::string_view tenant);
  absl::Status PutSettings(sql::Txn& txn, const Settings& s);

  absl::Status InsertTemplate(sql::Txn& txn, const InstructionTemplate& t);
  absl::Status UpdateTemplate(sql::Txn& txn, const InstructionTemplate& t);
  // NOT_FOUND (RESOURCE_NOT_FOUND) if absent.
  absl::StatusOr<InstructionTemplate> GetTemplate(sql::Txn& txn,
                                                  absl::string_view tenant,
                                                  absl::string_view id);
  absl::StatusOr<std::vector<InstructionTemplate>> ListTemplates(
      sql::Txn& txn, absl::string_view tenant, int limit, int64_t offset);

  absl::Status InsertVersion(sql::Txn& txn, const TemplateVersion& v);
  absl::StatusOr<TemplateVersion> GetVersion(sql::Txn& txn,
                                             absl::string_view tenant,
                                             absl::string_view template_id,
                                             int version);
  absl::StatusOr<std::vector<TemplateVersion>> ListVersions(
      sql::Txn& txn, absl::string_view tenant, absl::string_view template_id,
      int limit, int64_t offset);

  absl::Status InsertSeries(sql::Txn& txn, const Series& s);
  absl::Status UpdateSeries(sql::Txn& txn, const Series& s);
  absl::StatusOr<Series> GetSeries(sql::Txn& txn, absl::string_view tenant,
                                   absl::string_view patient,
                                   absl::string_view id);
  // Newest first.
  absl::StatusOr<std::vector<Series>> ListSeries(sql::Txn& txn,
                                                 absl::string_view tenant,
                                                 absl::string_view patient,
                                                 int state, int limit,
                                                 int64_t offset);

  absl::Status InsertSession(sql::Txn& txn, const SessionRow& s);
  absl::Status UpdateSession(sql::Txn& txn, const SessionRow& s);
  absl::StatusOr<SessionRow> GetSession(sql::Txn& txn, absl::string_view tenant,
                                        absl::string_view patient,
                                        absl::string_view id);
  // By start time, then id.
  absl::StatusOr<std::vector<SessionRow>> ListSessions(
      sql::Txn& txn, const SessionFilter& filter, int limit, int64_t offset);

  absl::Status InsertAttestation(sql::Txn& txn, const AttestationRow& a);
  // Newest first.
  absl::StatusOr<std::vector<AttestationRow>> ListAttestations(
      sql::Txn& txn, absl::string_view tenant, absl::string_view patient,
      absl::string_view session, int limit, int64_t offset);

  absl::Status PutDelivery(sql::Txn& txn, const DeliveryRecord& d);
  absl::StatusOr<std::optional<DeliveryRecord>> GetDelivery(
      sql::Txn& txn, absl::string_view job_key);
};

}  // namespace careseal::presession

#endif  // CARESEAL_SERVICES_PRESESSION_SQL_PRESESSION_STORE_H_
