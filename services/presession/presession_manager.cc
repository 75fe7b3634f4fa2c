#include "services/presession/presession_manager.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/events/event_log.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/pagination.h"
#include "services/common/platform/policy.h"
#include "services/common/platform/resource_name.h"
#include "services/common/platform/text.h"
#include "services/common/status.h"

namespace careseal::presession {
namespace {

constexpr char kSessionPattern[] =
    "tenants/{tenant}/patients/{patient}/sessions/{session}";
constexpr char kSeriesPattern[] =
    "tenants/{tenant}/patients/{patient}/sessionSeries/{session_series}";
constexpr char kTemplatePattern[] =
    "tenants/{tenant}/instructionTemplates/{instruction_template}";
constexpr char kVersionPattern[] =
    "tenants/{tenant}/instructionTemplates/{instruction_template}/versions/"
    "{version}";
constexpr char kClinicianPattern[] = "tenants/{tenant}/clinicians/{clinician}";

constexpr size_t kMaxLocation = 200;
constexpr size_t kMaxDosePlanRef = 200;  // bytes
constexpr size_t kMaxExternalId = 128;   // bytes
constexpr size_t kMaxReason = 1000;
constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxBody = 64 * 1024;
constexpr size_t kMaxItems = 30;
constexpr size_t kMaxBring = 20;
constexpr size_t kMaxItemText = 1000;
constexpr size_t kMaxBringText = 200;
constexpr size_t kMaxSymptomsNote = 1000;
constexpr size_t kMaxEscortName = 200;

std::string SessionNameOf(absl::string_view tenant, absl::string_view patient,
                          absl::string_view id) {
  return absl::StrCat(PatientName(tenant, patient), "/sessions/", id);
}

// Records what the call touches, for its audit event.
void Touch(CallContext& call, absl::string_view tenant,
           absl::string_view resource, absl::string_view patient = "") {
  call.tenant = std::string(tenant);
  call.resource = std::string(resource);
  if (!patient.empty() && patient != "-") {
    call.patient = PatientName(tenant, patient);
  }
}

absl::Status Audit(sql::Txn& txn, CallContext& call) {
  ASSIGN_OR_RETURN(call.audit_leaf_index,
                   AppendAuditEvent(txn, call, absl::OkStatus()));
  call.audited = true;
  return absl::OkStatus();
}

absl::Status Emit(sql::Txn& txn, const CallContext& call,
                  events::EventType type, std::string resource,
                  events::EventBus* bus) {
  return events::AppendEvent(
             txn, events::EventFor(call, type, std::move(resource)), bus)
      .status();
}

Actor ActorOf(const Principal& p) { return Actor{p.actor, p.role, p.peer}; }

absl::StatusOr<int64_t> PageOffset(absl::string_view token,
                                   absl::string_view filter) {
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor c, DecodePageToken(token, filter, &first));
  if (first) return 0;
  if (c.key < 0) {
    return InvalidField("page_token", "INVALID_PAGE_TOKEN",
                        "page_token is not valid");
  }
  return c.key;
}

template <typename T>
absl::StatusOr<Page<T>> Paged(std::vector<T> items, int limit, int64_t offset,
                              absl::string_view filter) {
  Page<T> page;
  if (static_cast<int>(items.size()) > limit) {
    items.resize(limit);
    page.next_page_token =
        EncodePageToken(PageCursor{offset + limit, ""}, filter);
  }
  page.items = std::move(items);
  return page;
}

bool IsAckIdChar(char c) {
  return absl::ascii_islower(static_cast<unsigned char>(c)) ||
         absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_' ||
         c == '-';
}

bool ValidItemId(absl::string_view id) {
  return !id.empty() && id.size() <= 64 &&
         std::all_of(id.begin(), id.end(), IsAckIdChar);
}

bool ValidTemplateId(absl::string_view id) {
  if (id.size() < 3 || id.size() > 63) return false;
  if (!absl::ascii_islower(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_islower(static_cast<unsigned char>(c)) ||
           absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-';
  });
}

bool ValidPhone(absl::string_view phone) {
  if (phone.size() < 8 || phone.size() > 16 || phone[0] != '+') return false;
  if (phone[1] == '0') return false;
  return std::all_of(phone.begin() + 1, phone.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

absl::Status CheckLength(absl::string_view field, absl::string_view value,
                         size_t max_code_points) {
  RETURN_IF_ERROR(CheckSingleLine(field, value, 0, max_code_points));
  return absl::OkStatus();
}

// A time as a patient reads it, in the clinic's zone with its
// abbreviation: "Wednesday, November 25 at 9:00 AM CST".
std::string PatientTime(absl::Time t, absl::TimeZone tz) {
  const std::string padded =
      absl::FormatTime("%A, %B %e at %l:%M %p %Z", t, tz);
  std::string out;  // %e and %l pad with a space
  for (char c : padded) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

// Parses "{session}/deliver:{offset}" and "{session}/remind:{offset}:{n}".
struct JobKey {
  std::string session;  // name
  bool reminder = false;
  std::string offset_label;
  int n = 0;
};

absl::StatusOr<JobKey> ParseJobKey(absl::string_view key) {
  JobKey k;
  size_t slash = key.rfind('/');
  if (slash == absl::string_view::npos) {
    return Internal("BAD_JOB_KEY", "a delivery job key is malformed");
  }
  k.session = std::string(key.substr(0, slash));
  std::vector<std::string> parts = absl::StrSplit(key.substr(slash + 1), ':');
  if (parts.size() == 2 && parts[0] == "deliver") {
    k.offset_label = parts[1];
  } else if (parts.size() == 3 && parts[0] == "remind" &&
             absl::SimpleAtoi(parts[2], &k.n)) {
    k.reminder = true;
    k.offset_label = parts[1];
  } else {
    return Internal("BAD_JOB_KEY", "a delivery job key is malformed");
  }
  return k;
}

absl::Duration ParseOffsetLabel(absl::string_view label) {
  if (label.empty()) return absl::ZeroDuration();
  int64_t v = 0;
  if (!absl::SimpleAtoi(label.substr(0, label.size() - 1), &v)) {
    return absl::ZeroDuration();
  }
  switch (label.back()) {
    case 'h':
      return absl::Hours(v);
    case 'm':
      return absl::Minutes(v);
    default:
      return absl::Seconds(v);
  }
}

std::string DeliverKey(absl::string_view session, absl::Duration offset) {
  return absl::StrCat(session, "/deliver:", OffsetLabel(offset));
}

std::string RemindKey(absl::string_view session, absl::string_view label,
                      int n) {
  return absl::StrCat(session, "/remind:", label, ":", n);
}

// Schedules `job`, or moves it (pending again) if the key exists.
absl::Status Upsert(sql::Txn& txn, const scheduler::Job& job) {
  auto existing = scheduler::GetJob(txn, job.key);
  if (existing.ok()) return scheduler::Reschedule(txn, job.key, job.due);
  if (!absl::IsNotFound(existing.status())) return existing.status();
  return scheduler::Schedule(txn, job).status();
}

CallContext SystemCall(absl::string_view method, absl::Time now,
                       crypto::RandomSource& random, absl::string_view tenant,
                       absl::string_view resource, absl::string_view patient) {
  CallContext sys;
  sys.principal = SystemPrincipal();
  sys.method = std::string(method);
  sys.correlation_id = crypto::HexEncode(random.Bytes(12));
  sys.now = now;
  sys.tenant = std::string(tenant);
  sys.resource = std::string(resource);
  sys.patient = std::string(patient);
  return sys;
}

std::string OverrideAd(const std::string& session) {
  return absl::StrCat("presession-override-reason:", session);
}
std::string ChecklistAd(const std::string& attestation) {
  return absl::StrCat("presession-checklist:", attestation);
}

}  // namespace

std::string OffsetLabel(absl::Duration offset) {
  const int64_t s = absl::ToInt64Seconds(offset);
  if (s % 3600 == 0) return absl::StrCat(s / 3600, "h");
  if (s % 60 == 0) return absl::StrCat(s / 60, "m");
  return absl::StrCat(s, "s");
}

std::string Settings::Name() const {
  return absl::StrCat("tenants/", tenant, "/preSessionSettings");
}
std::string InstructionTemplate::Name() const {
  return absl::StrCat("tenants/", tenant, "/instructionTemplates/", id);
}
std::string InstructionTemplate::LatestVersionName() const {
  if (latest_version == 0) return "";
  return absl::StrCat(Name(), "/versions/", latest_version);
}
std::string TemplateVersion::Name() const {
  return absl::StrCat("tenants/", tenant, "/instructionTemplates/", template_id,
                      "/versions/", version);
}
std::string Series::Name() const {
  return absl::StrCat(PatientName(tenant, patient), "/sessionSeries/", id);
}
std::string Session::Name() const { return SessionNameOf(tenant, patient, id); }
std::string Session::PatientName() const {
  return careseal::PatientName(tenant, patient);
}
std::string Attestation::Name() const {
  return absl::StrCat(SessionNameOf(tenant, patient, session), "/attestations/",
                      id);
}

absl::Status ValidateProcedureCode(absl::string_view field,
                                   absl::string_view code) {
  if (code.empty()) {
    return InvalidField(field, "FIELD_REQUIRED",
                        absl::StrCat(field, " is required"));
  }
  if (code.size() > 64 || !std::all_of(code.begin(), code.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
               c == '_' || c == ':' || c == '-';
      })) {
    return InvalidField(
        field, "INVALID_PROCEDURE_CODE",
        absl::StrCat(field, " must be 1-64 letters, digits or . _ : -"));
  }
  return absl::OkStatus();
}

absl::Status ValidateContent(const InstructionContent& c) {
  if (c.title.empty()) {
    return InvalidField("version.title", "FIELD_REQUIRED",
                        "version.title is required");
  }
  RETURN_IF_ERROR(CheckLength("version.title", c.title, kMaxTitle));
  if (c.body_markdown.size() > kMaxBody) {
    return InvalidField("version.body_markdown", "FIELD_TOO_LONG",
                        "version.body_markdown is limited to 64 KiB");
  }
  RETURN_IF_ERROR(
      CheckMultiLine("version.body_markdown", c.body_markdown, 0, kMaxBody));
  auto cutoff = [](absl::string_view field, absl::Duration d) {
    if (d < absl::ZeroDuration() || d > absl::Hours(24)) {
      return InvalidField(field, "CUTOFF_OUT_OF_RANGE",
                          absl::StrCat(field, " must be 0 to 24 hours"));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(cutoff("version.solids_cutoff", c.solids_cutoff));
  RETURN_IF_ERROR(
      cutoff("version.clear_liquids_cutoff", c.clear_liquids_cutoff));
  if (c.clear_liquids_cutoff > c.solids_cutoff) {
    return InvalidField("version.clear_liquids_cutoff", "CUTOFF_OUT_OF_RANGE",
                        "version.clear_liquids_cutoff must not exceed "
                        "version.solids_cutoff");
  }
  if (c.arrival_lead < absl::ZeroDuration() ||
      c.arrival_lead > absl::Hours(2)) {
    return InvalidField("version.arrival_lead", "CUTOFF_OUT_OF_RANGE",
                        "version.arrival_lead must be 0 to 2 hours");
  }
  if (c.medication_holds.size() > kMaxItems) {
    return InvalidField("version.medication_holds", "TOO_MANY_ITEMS",
                        "at most 30 medication holds");
  }
  absl::flat_hash_set<std::string> ids;
  for (size_t i = 0; i < c.medication_holds.size(); ++i) {
    const auto& h = c.medication_holds[i];
    const std::string field = absl::StrCat("version.medication_holds[", i, "]");
    if (!ValidItemId(h.id)) {
      return InvalidField(absl::StrCat(field, ".id"), "INVALID_ID",
                          "ids are 1-64 of [a-z0-9_-]");
    }
    if (!ids.insert(h.id).second) {
      return InvalidField(absl::StrCat(field, ".id"), "DUPLICATE_ID",
                          "medication hold ids must be unique");
    }
    if (h.text.empty()) {
      return InvalidField(absl::StrCat(field, ".text"), "FIELD_REQUIRED",
                          "a medication hold needs text");
    }
    RETURN_IF_ERROR(
        CheckLength(absl::StrCat(field, ".text"), h.text, kMaxItemText));
  }
  if (c.what_to_bring.size() > kMaxBring) {
    return InvalidField("version.what_to_bring", "TOO_MANY_ITEMS",
                        "at most 20 items to bring");
  }
  for (size_t i = 0; i < c.what_to_bring.size(); ++i) {
    const std::string field = absl::StrCat("version.what_to_bring[", i, "]");
    if (c.what_to_bring[i].empty()) {
      return InvalidField(field, "FIELD_REQUIRED", "an item needs text");
    }
    RETURN_IF_ERROR(CheckLength(field, c.what_to_bring[i], kMaxBringText));
  }
  if (c.discharge_acknowledgements.size() > kMaxItems) {
    return InvalidField("version.discharge_acknowledgements", "TOO_MANY_ITEMS",
                        "at most 30 discharge acknowledgements");
  }
  ids.clear();
  for (size_t i = 0; i < c.discharge_acknowledgements.size(); ++i) {
    const auto& a = c.discharge_acknowledgements[i];
    const std::string field =
        absl::StrCat("version.discharge_acknowledgements[", i, "]");
    if (!ValidItemId(a.id)) {
      return InvalidField(absl::StrCat(field, ".id"), "INVALID_ID",
                          "ids are 1-64 of [a-z0-9_-]");
    }
    if (!ids.insert(a.id).second) {
      return InvalidField(absl::StrCat(field, ".id"), "DUPLICATE_ID",
                          "acknowledgement ids must be unique");
    }
    if (a.text.empty()) {
      return InvalidField(absl::StrCat(field, ".text"), "FIELD_REQUIRED",
                          "an acknowledgement needs text");
    }
    RETURN_IF_ERROR(
        CheckLength(absl::StrCat(field, ".text"), a.text, kMaxItemText));
  }
  return absl::OkStatus();
}

absl::Status ValidateSettings(const Settings& s,
                              const std::set<std::string>& paths) {
  if (paths.count("delivery_offsets")) {
    const auto& o = s.delivery.offsets;
    if (o.empty() || o.size() > 5) {
      return InvalidField("settings.delivery_offsets", "OFFSET_OUT_OF_RANGE",
                          "1 to 5 delivery offsets");
    }
    absl::flat_hash_set<int64_t> seen;
    for (size_t i = 0; i < o.size(); ++i) {
      const std::string field =
          absl::StrCat("settings.delivery_offsets[", i, "]");
      if (o[i] < absl::Hours(1) || o[i] > absl::Hours(24 * 14) ||
          o[i] % absl::Seconds(1) != absl::ZeroDuration()) {
        return InvalidField(field, "OFFSET_OUT_OF_RANGE",
                            "an offset is whole seconds from 1 h to 14 days");
      }
      if (!seen.insert(absl::ToInt64Seconds(o[i])).second) {
        return InvalidField(field, "OFFSET_OUT_OF_RANGE",
                            "offsets must be distinct");
      }
    }
  }
  if (paths.count("reminder_after") &&
      (s.delivery.reminder_after < absl::ZeroDuration() ||
       s.delivery.reminder_after > absl::Hours(24 * 7))) {
    return InvalidField("settings.reminder_after", "OFFSET_OUT_OF_RANGE",
                        "reminder_after is 0 (off) to 7 days");
  }
  if (paths.count("max_reminders") &&
      (s.delivery.max_reminders < 0 || s.delivery.max_reminders > 10)) {
    return InvalidField("settings.max_reminders", "OFFSET_OUT_OF_RANGE",
                        "max_reminders is 0 to 10");
  }
  if (paths.count("default_instruction_template") &&
      !s.default_template.empty()) {
    RETURN_IF_ERROR(ResourceName::Parse(kTemplatePattern, s.default_template,
                                        "settings.default_instruction_template")
                        .status());
  }
  return absl::OkStatus();
}

absl::Status PreSessionManager::Migrate(sql::Database& db) {
  RETURN_IF_ERROR(db.Migrate("audit", AuditMigrations()));
  RETURN_IF_ERROR(db.Migrate("idempotency", IdempotencyMigrations()));
  RETURN_IF_ERROR(db.Migrate("sealer", SealerMigrations()));
  RETURN_IF_ERROR(db.Migrate("events", events::EventMigrations()));
  RETURN_IF_ERROR(scheduler::Migrate(db));
  return db.Migrate("presession", PreSessionMigrations());
}

template <typename T>
void PreSessionManager::RunWrite(
    absl::AnyInvocable<absl::StatusOr<T>(sql::Txn&)> fn, Done<T> done,
    bool wake) {
  std::function<void()> waker = wake ? deps_.wake : nullptr;
  sql::WriteValue<T>(
      *deps_.db, std::move(fn),
      [done = std::move(done), waker](absl::StatusOr<T> r) mutable {
        if (r.ok() && waker) waker();
        done(std::move(r));
      });
}

// ---------------------------------------------------------------- settings

absl::StatusOr<Settings> PreSessionManager::LoadSettings(
    sql::Txn& txn, absl::string_view tenant) {
  ASSIGN_OR_RETURN(auto stored, store_.GetSettings(txn, tenant));
  if (stored) return *stored;
  Settings s;
  s.tenant = std::string(tenant);
  return s;
}

absl::StatusOr<Settings> PreSessionManager::GetSettings(
    CallContext& call, absl::string_view tenant) {
  Settings s;
  Touch(call, tenant, absl::StrCat("tenants/", tenant, "/preSessionSettings"));
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(s, LoadSettings(txn, tenant));
    return absl::OkStatus();
  }));
  return s;
}

void PreSessionManager::UpdateSettings(CallContext& call, SettingsUpdate in,
                                       Done<Settings> done) {
  Touch(call, in.tenant,
        absl::StrCat("tenants/", in.tenant, "/preSessionSettings"));
  if (in.paths.empty()) {
    return done(InvalidField("update_mask", "INVALID_UPDATE_MASK",
                             "update_mask is required"));
  }
  for (const std::string& p : in.paths) {
    if (p != "delivery_offsets" && p != "reminder_after" &&
        p != "max_reminders" && p != "default_instruction_template") {
      return done(InvalidField("update_mask", "INVALID_UPDATE_MASK",
                               absl::StrCat("'", p, "' cannot be updated")));
    }
  }
  if (absl::Status s = ValidateSettings(in.settings, in.paths); !s.ok()) {
    return done(s);
  }
  RunWrite<Settings>(
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Settings> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(Settings s, LoadSettings(txn, in.tenant));
        if (prior) {
          RETURN_IF_ERROR(Audit(txn, call));
          return s;
        }
        if (in.paths.count("delivery_offsets")) {
          s.delivery.offsets = in.settings.delivery.offsets;
          std::sort(s.delivery.offsets.begin(), s.delivery.offsets.end(),
                    std::greater<>());
        }
        if (in.paths.count("reminder_after")) {
          s.delivery.reminder_after = in.settings.delivery.reminder_after;
        }
        if (in.paths.count("max_reminders")) {
          s.delivery.max_reminders = in.settings.delivery.max_reminders;
        }
        if (in.paths.count("default_instruction_template")) {
          if (!in.settings.default_template.empty()) {
            ASSIGN_OR_RETURN(ResourceName n,
                             ResourceName::Parse(
                                 kTemplatePattern, in.settings.default_template,
                                 "settings.default_instruction_template"));
            if (n.Get("tenant") != in.tenant) return ResourceNotFound();
            RETURN_IF_ERROR(
                store_
                    .GetTemplate(txn, in.tenant, n.Get("instruction_template"))
                    .status());
          }
          s.default_template = in.settings.default_template;
        }
        s.update_time = call.now;
        RETURN_IF_ERROR(store_.PutSettings(txn, s));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, s.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return s;
      },
      std::move(done));
}

// --------------------------------------------------------------- templates

void PreSessionManager::CreateTemplate(CallContext& call, std::string tenant,
                                       std::string id, std::string display_name,
                                       Done<InstructionTemplate> done) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/instructionTemplates"));
  if (!id.empty() && !ValidTemplateId(id)) {
    return done(InvalidField("instruction_template_id", "INVALID_ID",
                             "instruction_template_id must match "
                             "[a-z][a-z0-9-]{2,62}"));
  }
  if (absl::Status s =
          CheckLength("instruction_template.display_name", display_name, 200);
      !s.ok()) {
    return done(s);
  }
  RunWrite<InstructionTemplate>(
      [this, &call, tenant = std::move(tenant), id = std::move(id),
       display_name = std::move(display_name)](
          sql::Txn& txn) mutable -> absl::StatusOr<InstructionTemplate> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kTemplatePattern,
                                                               *prior, "name"));
          call.resource = *prior;
          RETURN_IF_ERROR(Audit(txn, call));
          return store_.GetTemplate(txn, tenant, n.Get("instruction_template"));
        }
        InstructionTemplate t;
        t.tenant = tenant;
        t.id = id.empty()
                   ? absl::StrCat("it-", crypto::NewOpaqueId(*deps_.random))
                   : id;
        t.display_name = display_name;
        t.create_time = t.update_time = call.now;
        auto existing = store_.GetTemplate(txn, tenant, t.id);
        if (existing.ok()) {
          return AlreadyExists("TEMPLATE_ID_TAKEN",
                               "an instruction template with this id exists");
        }
        call.resource = t.Name();
        RETURN_IF_ERROR(store_.InsertTemplate(txn, t));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, t.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return t;
      },
      std::move(done));
}

void PreSessionManager::PublishVersion(CallContext& call, std::string tenant,
                                       std::string template_id,
                                       InstructionContent content,
                                       Done<TemplateVersion> done) {
  Touch(
      call, tenant,
      absl::StrCat("tenants/", tenant, "/instructionTemplates/", template_id));
  if (absl::Status s = ValidateContent(content); !s.ok()) return done(s);
  RunWrite<TemplateVersion>(
      [this, &call, tenant = std::move(tenant),
       template_id = std::move(template_id), content = std::move(content)](
          sql::Txn& txn) -> absl::StatusOr<TemplateVersion> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kVersionPattern,
                                                               *prior, "name"));
          int v = 0;
          (void)absl::SimpleAtoi(n.Get("version"), &v);
          call.resource = *prior;
          RETURN_IF_ERROR(Audit(txn, call));
          return store_.GetVersion(txn, tenant, template_id, v);
        }
        ASSIGN_OR_RETURN(InstructionTemplate t,
                         store_.GetTemplate(txn, tenant, template_id));
        TemplateVersion v;
        v.tenant = tenant;
        v.template_id = template_id;
        v.version = t.latest_version + 1;
        v.content = content;
        v.canonical = CanonicalContent(content);
        v.content_sha256 = crypto::Sha256(v.canonical);
        v.publish_time = call.now;
        v.publisher = ActorOf(call.principal);
        t.latest_version = v.version;
        t.update_time = call.now;
        call.resource = v.Name();
        RETURN_IF_ERROR(store_.InsertVersion(txn, v));
        RETURN_IF_ERROR(store_.UpdateTemplate(txn, t));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, v.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return v;
      },
      std::move(done));
}

absl::StatusOr<InstructionTemplate> PreSessionManager::GetTemplate(
    CallContext& call, absl::string_view tenant, absl::string_view id) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/instructionTemplates/", id));
  InstructionTemplate t;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(t, store_.GetTemplate(txn, tenant, id));
    return absl::OkStatus();
  }));
  return t;
}

absl::StatusOr<Page<InstructionTemplate>> PreSessionManager::ListTemplates(
    CallContext& call, absl::string_view tenant, int page_size,
    absl::string_view page_token) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/instructionTemplates"));
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter = absl::StrCat("templates:", tenant);
  ASSIGN_OR_RETURN(int64_t offset, PageOffset(page_token, filter));
  std::vector<InstructionTemplate> items;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(items,
                     store_.ListTemplates(txn, tenant, limit + 1, offset));
    return absl::OkStatus();
  }));
  return Paged(std::move(items), limit, offset, filter);
}

absl::StatusOr<TemplateVersion> PreSessionManager::GetVersion(
    CallContext& call, absl::string_view tenant, absl::string_view template_id,
    int version) {
  Touch(call, tenant,
        absl::StrCat("tenants/", tenant, "/instructionTemplates/", template_id,
                     "/versions/",
                     version == 0 ? "latest" : absl::StrCat(version)));
  TemplateVersion v;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    int n = version;
    if (n == 0) {
      ASSIGN_OR_RETURN(InstructionTemplate t,
                       store_.GetTemplate(txn, tenant, template_id));
      if (t.latest_version == 0) return ResourceNotFound();
      n = t.latest_version;
    }
    ASSIGN_OR_RETURN(v, store_.GetVersion(txn, tenant, template_id, n));
    return absl::OkStatus();
  }));
  return v;
}

absl::StatusOr<Page<TemplateVersion>> PreSessionManager::ListVersions(
    CallContext& call, absl::string_view tenant, absl::string_view template_id,
    int page_size, absl::string_view page_token) {
  Touch(
      call, tenant,
      absl::StrCat("tenants/", tenant, "/instructionTemplates/", template_id));
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter =
      absl::StrCat("versions:", tenant, "/", template_id);
  ASSIGN_OR_RETURN(int64_t offset, PageOffset(page_token, filter));
  std::vector<TemplateVersion> items;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(store_.GetTemplate(txn, tenant, template_id).status());
    ASSIGN_OR_RETURN(items, store_.ListVersions(txn, tenant, template_id,
                                                limit + 1, offset));
    return absl::OkStatus();
  }));
  return Paged(std::move(items), limit, offset, filter);
}

absl::StatusOr<TemplateVersion> PreSessionManager::ResolveVersion(
    sql::Txn& txn, absl::string_view tenant, absl::string_view name,
    absl::string_view field) {
  if (name.empty()) {
    return FailedPrecondition(
        "NO_INSTRUCTION_TEMPLATE",
        "no instruction template is named and the "
        "tenant has no default "
        "(PreSessionSettings.default_instruction_template)");
  }
  auto as_version = ResourceName::Parse(kVersionPattern, name, field);
  std::string template_id;
  int version = 0;
  if (as_version.ok()) {
    if (as_version->Get("tenant") != tenant) return ResourceNotFound();
    template_id = as_version->Get("instruction_template");
    if (as_version->Get("version") != "latest" &&
        !absl::SimpleAtoi(as_version->Get("version"), &version)) {
      return ResourceNotFound();
    }
  } else {
    ASSIGN_OR_RETURN(ResourceName n,
                     ResourceName::Parse(kTemplatePattern, name, field));
    if (n.Get("tenant") != tenant) return ResourceNotFound();
    template_id = n.Get("instruction_template");
  }
  ASSIGN_OR_RETURN(InstructionTemplate t,
                   store_.GetTemplate(txn, tenant, template_id));
  if (version == 0) {
    if (t.latest_version == 0) {
      return FailedPrecondition("NO_INSTRUCTION_TEMPLATE",
                                "the instruction template has no published "
                                "version yet");
    }
    version = t.latest_version;
  }
  return store_.GetVersion(txn, tenant, template_id, version);
}

absl::StatusOr<TemplateVersion> PreSessionManager::VersionOf(sql::Txn& txn,
                                                             const Session& s) {
  ASSIGN_OR_RETURN(ResourceName n,
                   ResourceName::Parse(kVersionPattern, s.template_version,
                                       "template_version"));
  int v = 0;
  (void)absl::SimpleAtoi(n.Get("version"), &v);
  return store_.GetVersion(txn, s.tenant, n.Get("instruction_template"), v);
}

// ---------------------------------------------------------------- sessions

absl::StatusOr<Session> PreSessionManager::OpenSession(sql::Txn& txn,
                                                       SessionRow row) {
  Session s = std::move(row.session);
  if (s.readiness_override && !row.override_reason_sealed.empty()) {
    ASSIGN_OR_RETURN(
        s.readiness_override->reason,
        deps_.sealer->Open(txn, s.tenant, row.override_reason_sealed,
                           OverrideAd(s.Name())));
  }
  return s;
}

absl::StatusOr<SessionRow> PreSessionManager::LoadSession(
    sql::Txn& txn, absl::string_view tenant, absl::string_view patient,
    absl::string_view id) {
  return store_.GetSession(txn, tenant, patient, id);
}

absl::Status PreSessionManager::ScheduleDeliveries(sql::Txn& txn,
                                                   const Session& s,
                                                   const Settings& settings,
                                                   absl::Time now,
                                                   bool reschedule) {
  const std::string name = s.Name();
  if (reschedule) {
    RETURN_IF_ERROR(
        scheduler::CancelPrefix(txn, absl::StrCat(name, "/")).status());
  }
  for (const PlannedDelivery& p :
       PlanDeliveries(settings.delivery, s.start, now)) {
    scheduler::Job job;
    job.key = DeliverKey(name, p.offset);
    job.tenant = s.tenant;
    job.kind = kDeliverKind;
    job.due = p.due;
    job.payload = name;
    if (reschedule) {
      RETURN_IF_ERROR(Upsert(txn, job));
    } else {
      RETURN_IF_ERROR(scheduler::Schedule(txn, job).status());
    }
  }
  return absl::OkStatus();
}

absl::Status PreSessionManager::RenumberSeries(sql::Txn& txn,
                                               const std::string& tenant,
                                               const std::string& patient,
                                               const std::string& series,
                                               absl::Time now) {
  SessionFilter f;
  f.tenant = tenant;
  f.patient = patient;
  f.series = series;
  ASSIGN_OR_RETURN(auto rows, store_.ListSessions(txn, f, 1000, 0));
  int n = 0;
  for (SessionRow& row : rows) {
    ++n;
    if (row.session.sequence_number != n) {
      row.session.sequence_number = n;
      row.session.update_time = now;
      RETURN_IF_ERROR(store_.UpdateSession(txn, row));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Session> PreSessionManager::InsertNewSession(
    sql::Txn& txn, CallContext& call, Session s, const Settings& settings) {
  s.id = crypto::NewOpaqueId(*deps_.random);
  s.state = SessionState::kScheduled;
  s.create_time = s.update_time = call.now;
  SessionRow row{s, ""};
  RETURN_IF_ERROR(store_.InsertSession(txn, row));
  RETURN_IF_ERROR(ScheduleDeliveries(txn, s, settings, call.now, false));
  RETURN_IF_ERROR(Emit(txn, call, events::EventType::kSessionScheduled,
                       s.Name(), deps_.bus));
  return s;
}

namespace {

absl::Status ValidateSessionFields(const SessionInput& in, absl::Time now,
                                   bool needs_code) {
  if (needs_code || !in.procedure_code.empty()) {
    RETURN_IF_ERROR(
        ValidateProcedureCode("session.procedure_code", in.procedure_code));
  }
  if (in.kind < 1 || in.kind > 3) {
    return InvalidField("session.kind", "FIELD_REQUIRED",
                        "session.kind must be INDUCTION, MAINTENANCE or OTHER");
  }
  if (!in.start) {
    return InvalidField("session.start_time", "FIELD_REQUIRED",
                        "session.start_time is required");
  }
  if (*in.start <= now) {
    return InvalidField("session.start_time", "START_TIME_IN_PAST",
                        "session.start_time must be in the future");
  }
  if (in.duration && (*in.duration <= absl::ZeroDuration() ||
                      *in.duration > absl::Hours(12))) {
    return InvalidField("session.duration", "INVALID_DURATION",
                        "session.duration must be more than 0 and at most "
                        "12 hours");
  }
  RETURN_IF_ERROR(CheckLength("session.location", in.location, kMaxLocation));
  if (in.dose_plan_ref.size() > kMaxDosePlanRef) {
    return InvalidField("session.dose_plan_ref", "FIELD_TOO_LONG",
                        "session.dose_plan_ref is limited to 200 bytes");
  }
  RETURN_IF_ERROR(CheckSingleLine("session.dose_plan_ref", in.dose_plan_ref, 0,
                                  kMaxDosePlanRef));
  if (in.external_id.size() > kMaxExternalId) {
    return InvalidField("session.external_id", "FIELD_TOO_LONG",
                        "session.external_id is limited to 128 bytes");
  }
  RETURN_IF_ERROR(CheckSingleLine("session.external_id", in.external_id, 0,
                                  kMaxExternalId));
  if (!in.clinician.empty()) {
    ASSIGN_OR_RETURN(ResourceName c,
                     ResourceName::Parse(kClinicianPattern, in.clinician,
                                         "session.clinician"));
    if (c.Get("tenant") != in.tenant) {
      return InvalidField("session.clinician", "INVALID_NAME",
                          "session.clinician must be a clinician of the "
                          "session's tenant");
    }
  }
  return absl::OkStatus();
}

}  // namespace

void PreSessionManager::CreateSession(CallContext& call, SessionInput in,
                                      Done<Session> done) {
  Touch(call, in.tenant,
        absl::StrCat(PatientName(in.tenant, in.patient), "/sessions"),
        in.patient);
  if (absl::Status s = ValidateSessionFields(in, call.now, in.series.empty());
      !s.ok()) {
    return done(s);
  }
  if (!in.series.empty()) {
    auto sn = ResourceName::Parse(kSeriesPattern, in.series, "session.series");
    if (!sn.ok()) return done(sn.status());
    if (sn->Get("tenant") != in.tenant || sn->Get("patient") != in.patient) {
      return done(ResourceNotFound());
    }
  }
  RunWrite<Session>(
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Session> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        if (prior) {
          ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kSessionPattern,
                                                               *prior, "name"));
          call.resource = *prior;
          RETURN_IF_ERROR(Audit(txn, call));
          ASSIGN_OR_RETURN(
              SessionRow row,
              LoadSession(txn, in.tenant, in.patient, n.Get("session")));
          return OpenSession(txn, std::move(row));
        }
        ASSIGN_OR_RETURN(Settings settings, LoadSettings(txn, in.tenant));
        Session s;
        s.tenant = in.tenant;
        s.patient = in.patient;
        s.procedure_code = in.procedure_code;
        s.kind = static_cast<SessionKind>(in.kind);
        s.start = *in.start;
        if (in.duration) s.duration = *in.duration;
        s.location = in.location;
        s.clinician = in.clinician;
        s.dose_plan_ref = in.dose_plan_ref;
        s.external_id = in.external_id;
        std::string template_name = in.instruction_template;
        std::optional<Series> series;
        if (!in.series.empty()) {
          ASSIGN_OR_RETURN(
              ResourceName sn,
              ResourceName::Parse(kSeriesPattern, in.series, "session.series"));
          ASSIGN_OR_RETURN(series, store_.GetSeries(txn, in.tenant, in.patient,
                                                    sn.Get("session_series")));
          if (series->state != SeriesState::kActive) {
            return FailedPrecondition("SERIES_CANCELLED",
                                      "the series is cancelled");
          }
          s.series = series->Name();
          if (s.procedure_code.empty())
            s.procedure_code = series->procedure_code;
          if (s.location.empty()) s.location = series->location;
          if (s.clinician.empty()) s.clinician = series->clinician;
          if (s.dose_plan_ref.empty()) s.dose_plan_ref = series->dose_plan_ref;
          if (template_name.empty())
            template_name = series->instruction_template;
        }
        if (template_name.empty()) template_name = settings.default_template;
        ASSIGN_OR_RETURN(
            TemplateVersion v,
            ResolveVersion(txn, in.tenant, template_name,
                           "session.instruction_template_version"));
        s.template_version = v.Name();
        ASSIGN_OR_RETURN(s,
                         InsertNewSession(txn, call, std::move(s), settings));
        call.resource = s.Name();
        if (series) {
          series->session_count += 1;
          series->update_time = call.now;
          RETURN_IF_ERROR(store_.UpdateSeries(txn, *series));
          RETURN_IF_ERROR(
              RenumberSeries(txn, s.tenant, s.patient, s.series, call.now));
          ASSIGN_OR_RETURN(SessionRow again,
                           LoadSession(txn, s.tenant, s.patient, s.id));
          s = again.session;
        }
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, s.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return s;
      },
      std::move(done), /*wake=*/true);
}

void PreSessionManager::CreateSeries(CallContext& call, SeriesInput in,
                                     Done<SeriesResult> done) {
  Touch(call, in.tenant,
        absl::StrCat(PatientName(in.tenant, in.patient), "/sessionSeries"),
        in.patient);
  absl::Status valid = ValidateProcedureCode("session_series.procedure_code",
                                             in.series.procedure_code);
  if (valid.ok()) {
    valid = CheckLength("session_series.location", in.series.location,
                        kMaxLocation);
  }
  if (valid.ok() && in.series.dose_plan_ref.size() > kMaxDosePlanRef) {
    valid = InvalidField("session_series.dose_plan_ref", "FIELD_TOO_LONG",
                         "dose_plan_ref is limited to 200 bytes");
  }
  if (valid.ok() && !in.series.clinician.empty()) {
    auto c = ResourceName::Parse(kClinicianPattern, in.series.clinician,
                                 "session_series.clinician");
    if (!c.ok()) {
      valid = c.status();
    } else if (c->Get("tenant") != in.tenant) {
      valid = InvalidField("session_series.clinician", "INVALID_NAME",
                           "the clinician must be of the series' tenant");
    }
  }
  if (valid.ok() && in.session_duration &&
      (*in.session_duration <= absl::ZeroDuration() ||
       *in.session_duration > absl::Hours(12))) {
    valid = InvalidField("plan.session_duration", "INVALID_PLAN",
                         "plan.session_duration must be more than 0 and at "
                         "most 12 hours");
  }
  absl::StatusOr<std::vector<PlannedSession>> planned;
  if (valid.ok()) {
    planned = ExpandSessionPlan(in.plan, call.now, in.zone);
    if (!planned.ok()) valid = planned.status();
  }
  if (!valid.ok()) return done(valid);
  RunWrite<SeriesResult>(
      [this, &call, in = std::move(in), planned = *std::move(planned)](
          sql::Txn& txn) -> absl::StatusOr<SeriesResult> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        SeriesResult result;
        if (prior) {
          ASSIGN_OR_RETURN(ResourceName n,
                           ResourceName::Parse(kSeriesPattern, *prior, "name"));
          call.resource = *prior;
          ASSIGN_OR_RETURN(result.series,
                           store_.GetSeries(txn, in.tenant, in.patient,
                                            n.Get("session_series")));
          SessionFilter f;
          f.tenant = in.tenant;
          f.patient = in.patient;
          f.series = *prior;
          ASSIGN_OR_RETURN(auto rows, store_.ListSessions(txn, f, 1000, 0));
          for (SessionRow& r : rows) {
            ASSIGN_OR_RETURN(Session s, OpenSession(txn, std::move(r)));
            result.sessions.push_back(std::move(s));
          }
          RETURN_IF_ERROR(Audit(txn, call));
          return result;
        }
        ASSIGN_OR_RETURN(Settings settings, LoadSettings(txn, in.tenant));
        const std::string template_name = in.series.instruction_template.empty()
                                              ? settings.default_template
                                              : in.series.instruction_template;
        ASSIGN_OR_RETURN(TemplateVersion v,
                         ResolveVersion(txn, in.tenant, template_name,
                                        "session_series.instruction_template"));
        Series series = in.series;
        series.tenant = in.tenant;
        series.patient = in.patient;
        series.id = crypto::NewOpaqueId(*deps_.random);
        series.state = SeriesState::kActive;
        series.session_count = static_cast<int>(planned.size());
        series.create_time = series.update_time = call.now;
        RETURN_IF_ERROR(store_.InsertSeries(txn, series));
        int n = 0;
        for (const PlannedSession& p : planned) {
          Session s;
          s.tenant = in.tenant;
          s.patient = in.patient;
          s.series = series.Name();
          s.procedure_code = series.procedure_code;
          s.kind = p.kind == PlannedKind::kInduction
                       ? SessionKind::kInduction
                       : SessionKind::kMaintenance;
          s.sequence_number = ++n;
          s.start = p.start;
          if (in.session_duration) s.duration = *in.session_duration;
          s.location = series.location;
          s.clinician = series.clinician;
          s.dose_plan_ref = series.dose_plan_ref;
          s.template_version = v.Name();
          ASSIGN_OR_RETURN(Session created,
                           InsertNewSession(txn, call, std::move(s), settings));
          result.sessions.push_back(std::move(created));
        }
        result.series = series;
        call.resource = series.Name();
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, series.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return result;
      },
      std::move(done), /*wake=*/true);
}

absl::StatusOr<Series> PreSessionManager::GetSeries(CallContext& call,
                                                    absl::string_view tenant,
                                                    absl::string_view patient,
                                                    absl::string_view id) {
  Touch(call, tenant,
        absl::StrCat(PatientName(tenant, patient), "/sessionSeries/", id),
        patient);
  Series s;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(s, store_.GetSeries(txn, tenant, patient, id));
    return absl::OkStatus();
  }));
  return s;
}

absl::StatusOr<Page<Series>> PreSessionManager::ListSeries(
    CallContext& call, absl::string_view tenant, absl::string_view patient,
    int state, int page_size, absl::string_view page_token) {
  Touch(call, tenant,
        absl::StrCat(PatientName(tenant, patient), "/sessionSeries"), patient);
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter =
      absl::StrCat("series:", tenant, "/", patient, "/", state);
  ASSIGN_OR_RETURN(int64_t offset, PageOffset(page_token, filter));
  std::vector<Series> items;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(items, store_.ListSeries(txn, tenant, patient, state,
                                              limit + 1, offset));
    return absl::OkStatus();
  }));
  return Paged(std::move(items), limit, offset, filter);
}

void PreSessionManager::CancelSeries(CallContext& call, std::string tenant,
                                     std::string patient, std::string id,
                                     std::string reason,
                                     Done<SeriesResult> done) {
  Touch(call, tenant,
        absl::StrCat(PatientName(tenant, patient), "/sessionSeries/", id),
        patient);
  if (absl::Status s = CheckMultiLine("reason", reason, 0, kMaxReason * 4);
      !s.ok()) {
    return done(s);
  }
  if (CodePoints(reason) > static_cast<long>(kMaxReason)) {
    return done(InvalidField("reason", "FIELD_TOO_LONG",
                             "reason is limited to 1000 characters"));
  }
  RunWrite<SeriesResult>(
      [this, &call, tenant = std::move(tenant), patient = std::move(patient),
       id = std::move(id), reason = std::move(reason)](
          sql::Txn& txn) -> absl::StatusOr<SeriesResult> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        SeriesResult result;
        ASSIGN_OR_RETURN(result.series,
                         store_.GetSeries(txn, tenant, patient, id));
        if (prior) {
          RETURN_IF_ERROR(Audit(txn, call));
          return result;
        }
        if (result.series.state == SeriesState::kCancelled) {
          return FailedPrecondition("SERIES_CANCELLED",
                                    "the series is already cancelled");
        }
        SessionFilter f;
        f.tenant = tenant;
        f.patient = patient;
        f.series = result.series.Name();
        f.state = static_cast<int>(SessionState::kScheduled);
        f.start_from = call.now;
        ASSIGN_OR_RETURN(auto rows, store_.ListSessions(txn, f, 1000, 0));
        for (SessionRow& row : rows) {
          Session& s = row.session;
          s.state = SessionState::kCancelled;
          s.cancel_time = call.now;
          s.cancel_reason = reason;
          s.update_time = call.now;
          RETURN_IF_ERROR(store_.UpdateSession(txn, row));
          RETURN_IF_ERROR(
              scheduler::CancelPrefix(txn, absl::StrCat(s.Name(), "/"))
                  .status());
          RETURN_IF_ERROR(Emit(txn, call, events::EventType::kSessionCancelled,
                               s.Name(), deps_.bus));
          ASSIGN_OR_RETURN(Session opened, OpenSession(txn, std::move(row)));
          result.sessions.push_back(std::move(opened));
        }
        result.series.state = SeriesState::kCancelled;
        result.series.update_time = call.now;
        RETURN_IF_ERROR(store_.UpdateSeries(txn, result.series));
        RETURN_IF_ERROR(
            RememberIdempotentResult(txn, call, result.series.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return result;
      },
      std::move(done));
}

absl::StatusOr<Session> PreSessionManager::GetSession(CallContext& call,
                                                      absl::string_view tenant,
                                                      absl::string_view patient,
                                                      absl::string_view id) {
  Touch(call, tenant, SessionNameOf(tenant, patient, id), patient);
  Session s;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(SessionRow row, LoadSession(txn, tenant, patient, id));
    ASSIGN_OR_RETURN(s, OpenSession(txn, std::move(row)));
    return absl::OkStatus();
  }));
  return s;
}

absl::StatusOr<Page<Session>> PreSessionManager::ListSessions(
    CallContext& call, const SessionFilter& filter, int page_size,
    absl::string_view page_token) {
  Touch(call, filter.tenant,
        absl::StrCat(PatientName(filter.tenant, filter.patient), "/sessions"),
        filter.patient);
  if (filter.start_from && filter.start_before &&
      *filter.start_before <= *filter.start_from) {
    return InvalidField("end_time", "INVALID_TIME_RANGE",
                        "end_time must be after start_time");
  }
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string key = absl::StrCat(
      "sessions:", filter.tenant, "/", filter.patient, "/", filter.series, "/",
      filter.state, "/", filter.start_from ? ToMicros(*filter.start_from) : 0,
      "/", filter.start_before ? ToMicros(*filter.start_before) : 0);
  ASSIGN_OR_RETURN(int64_t offset, PageOffset(page_token, key));
  std::vector<Session> items;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows,
                     store_.ListSessions(txn, filter, limit + 1, offset));
    for (SessionRow& r : rows) {
      ASSIGN_OR_RETURN(Session s, OpenSession(txn, std::move(r)));
      items.push_back(std::move(s));
    }
    return absl::OkStatus();
  }));
  return Paged(std::move(items), limit, offset, key);
}

void PreSessionManager::MoveSession(CallContext& call, MoveInput in,
                                    Done<Session> done) {
  Touch(call, in.tenant, SessionNameOf(in.tenant, in.patient, in.session),
        in.patient);
  absl::Status valid;
  if (!in.start) {
    valid =
        InvalidField("start_time", "FIELD_REQUIRED", "start_time is required");
  } else if (*in.start <= call.now) {
    valid = InvalidField("start_time", "START_TIME_IN_PAST",
                         "start_time must be in the future");
  }
  if (valid.ok()) valid = CheckLength("location", in.location, kMaxLocation);
  if (valid.ok() && !in.clinician.empty()) {
    auto c = ResourceName::Parse(kClinicianPattern, in.clinician, "clinician");
    if (!c.ok()) {
      valid = c.status();
    } else if (c->Get("tenant") != in.tenant) {
      valid = InvalidField("clinician", "INVALID_NAME",
                           "clinician must be of the session's tenant");
    }
  }
  if (valid.ok() && CodePoints(in.reason) > static_cast<long>(kMaxReason)) {
    valid = InvalidField("reason", "FIELD_TOO_LONG",
                         "reason is limited to 1000 characters");
  }
  if (!valid.ok()) return done(valid);
  RunWrite<Session>(
      [this, &call,
       in = std::move(in)](sql::Txn& txn) -> absl::StatusOr<Session> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(SessionRow row,
                         LoadSession(txn, in.tenant, in.patient, in.session));
        if (prior) {
          RETURN_IF_ERROR(Audit(txn, call));
          return OpenSession(txn, std::move(row));
        }
        Session& s = row.session;
        if (s.state != SessionState::kScheduled) {
          return FailedPrecondition("SESSION_NOT_SCHEDULED",
                                    "only a scheduled session can be moved");
        }
        s.start = *in.start;
        if (!in.location.empty()) s.location = in.location;
        if (!in.clinician.empty()) s.clinician = in.clinician;
        s.update_time = call.now;
        RETURN_IF_ERROR(store_.UpdateSession(txn, row));
        ASSIGN_OR_RETURN(Settings settings, LoadSettings(txn, in.tenant));
        RETURN_IF_ERROR(ScheduleDeliveries(txn, s, settings, call.now, true));
        const std::string name = s.Name();
        if (!s.series.empty()) {
          RETURN_IF_ERROR(
              RenumberSeries(txn, s.tenant, s.patient, s.series, call.now));
          ASSIGN_OR_RETURN(row,
                           LoadSession(txn, in.tenant, in.patient, in.session));
        }
        RETURN_IF_ERROR(
            Emit(txn, call, events::EventType::kSessionMoved, name, deps_.bus));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, name));
        RETURN_IF_ERROR(Audit(txn, call));
        return OpenSession(txn, std::move(row));
      },
      std::move(done), /*wake=*/true);
}

void PreSessionManager::CancelSession(CallContext& call, std::string tenant,
                                      std::string patient, std::string id,
                                      std::string reason, Done<Session> done) {
  Touch(call, tenant, SessionNameOf(tenant, patient, id), patient);
  if (absl::Status s = CheckMultiLine("reason", reason, 0, kMaxReason * 4);
      !s.ok()) {
    return done(s);
  }
  if (CodePoints(reason) > static_cast<long>(kMaxReason)) {
    return done(InvalidField("reason", "FIELD_TOO_LONG",
                             "reason is limited to 1000 characters"));
  }
  RunWrite<Session>(
      [this, &call, tenant = std::move(tenant), patient = std::move(patient),
       id = std::move(id),
       reason = std::move(reason)](sql::Txn& txn) -> absl::StatusOr<Session> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(SessionRow row, LoadSession(txn, tenant, patient, id));
        if (prior) {
          RETURN_IF_ERROR(Audit(txn, call));
          return OpenSession(txn, std::move(row));
        }
        Session& s = row.session;
        if (s.state != SessionState::kScheduled) {
          return FailedPrecondition(
              "SESSION_NOT_SCHEDULED",
              "only a scheduled session can be cancelled");
        }
        s.state = SessionState::kCancelled;
        s.cancel_time = call.now;
        s.cancel_reason = reason;
        s.update_time = call.now;
        RETURN_IF_ERROR(store_.UpdateSession(txn, row));
        RETURN_IF_ERROR(
            scheduler::CancelPrefix(txn, absl::StrCat(s.Name(), "/")).status());
        RETURN_IF_ERROR(Emit(txn, call, events::EventType::kSessionCancelled,
                             s.Name(), deps_.bus));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, s.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return OpenSession(txn, std::move(row));
      },
      std::move(done));
}

void PreSessionManager::CompleteSession(CallContext& call, std::string tenant,
                                        std::string patient, std::string id,
                                        std::optional<absl::Time> end_time,
                                        Done<Session> done) {
  Touch(call, tenant, SessionNameOf(tenant, patient, id), patient);
  if (end_time && *end_time > call.now) {
    return done(InvalidField("end_time", "END_TIME_OUT_OF_RANGE",
                             "end_time must not be in the future"));
  }
  RunWrite<Session>(
      [this, &call, tenant = std::move(tenant), patient = std::move(patient),
       id = std::move(id), end_time](sql::Txn& txn) -> absl::StatusOr<Session> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(SessionRow row, LoadSession(txn, tenant, patient, id));
        if (prior) {
          RETURN_IF_ERROR(Audit(txn, call));
          return OpenSession(txn, std::move(row));
        }
        Session& s = row.session;
        const absl::Time end = end_time.value_or(call.now);
        if (end <= s.start - absl::Hours(1)) {
          return InvalidField("end_time", "END_TIME_OUT_OF_RANGE",
                              "end_time must be after the session's start "
                              "minus one hour");
        }
        if (s.state != SessionState::kScheduled) {
          return FailedPrecondition(
              "SESSION_NOT_SCHEDULED",
              "only a scheduled session can be completed");
        }
        s.state = SessionState::kCompleted;
        s.end_time = end;
        s.update_time = call.now;
        RETURN_IF_ERROR(store_.UpdateSession(txn, row));
        RETURN_IF_ERROR(
            scheduler::CancelPrefix(txn, absl::StrCat(s.Name(), "/")).status());
        RETURN_IF_ERROR(Emit(txn, call, events::EventType::kSessionCompleted,
                             s.Name(), deps_.bus));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, s.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return OpenSession(txn, std::move(row));
      },
      std::move(done));
}

// -------------------------------------------------------------- deliveries

absl::StatusOr<InstructionDelivery> PreSessionManager::DeliveryOf(
    sql::Txn& txn, const scheduler::Job& job, const Session& s) {
  ASSIGN_OR_RETURN(JobKey k, ParseJobKey(job.key));
  InstructionDelivery d;
  d.name = absl::StrCat(
      k.session, "/instructionDeliveries/",
      k.reminder ? absl::StrCat("reminder-", k.offset_label, "-", k.n)
                 : absl::StrCat("instructions-", k.offset_label));
  d.kind = k.reminder ? DeliveryKind::kReminder : DeliveryKind::kInstructions;
  d.offset = ParseOffsetLabel(k.offset_label);
  d.due = job.due;
  d.attempts = job.attempts;
  d.template_version = s.template_version;
  d.create_time = s.create_time;
  switch (job.state) {
    case scheduler::JobState::kPending:
      d.state = DeliveryState::kScheduled;
      break;
    case scheduler::JobState::kCancelled:
      d.state = DeliveryState::kCancelled;
      break;
    case scheduler::JobState::kFailed:
      d.state = DeliveryState::kFailed;
      break;
    case scheduler::JobState::kDone: {
      ASSIGN_OR_RETURN(auto record, store_.GetDelivery(txn, job.key));
      d.state = record ? record->state : DeliveryState::kCancelled;
      if (record && record->state == DeliveryState::kDelivered) {
        d.deliver_time = record->deliver_time;
        d.message = record->message;
        d.template_version = record->template_version;
      }
      break;
    }
  }
  return d;
}

absl::StatusOr<Page<InstructionDelivery>> PreSessionManager::ListDeliveries(
    CallContext& call, const DeliveryFilter& filter, int page_size,
    absl::string_view page_token) {
  const std::string prefix =
      filter.session == "-"
          ? absl::StrCat(PatientName(filter.tenant, filter.patient),
                         "/sessions/")
          : absl::StrCat(
                SessionNameOf(filter.tenant, filter.patient, filter.session),
                "/");
  Touch(call, filter.tenant, absl::StrCat(prefix, "instructionDeliveries"),
        filter.patient);
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string key =
      absl::StrCat("deliveries:", prefix, "/", filter.state);
  ASSIGN_OR_RETURN(int64_t offset, PageOffset(page_token, key));
  std::vector<InstructionDelivery> items;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    if (filter.session != "-") {
      RETURN_IF_ERROR(
          LoadSession(txn, filter.tenant, filter.patient, filter.session)
              .status());
    }
    ASSIGN_OR_RETURN(auto jobs, scheduler::ListJobs(txn, prefix));
    std::map<std::string, Session> sessions;
    int64_t skipped = 0;
    for (const scheduler::Job& job : jobs) {
      if (job.kind != kDeliverKind && job.kind != kRemindKind) continue;
      ASSIGN_OR_RETURN(JobKey k, ParseJobKey(job.key));
      auto it = sessions.find(k.session);
      if (it == sessions.end()) {
        ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kSessionPattern,
                                                             k.session, "key"));
        ASSIGN_OR_RETURN(
            SessionRow row,
            LoadSession(txn, filter.tenant, filter.patient, n.Get("session")));
        it = sessions.emplace(k.session, row.session).first;
      }
      ASSIGN_OR_RETURN(InstructionDelivery d, DeliveryOf(txn, job, it->second));
      if (filter.state != 0 && static_cast<int>(d.state) != filter.state) {
        continue;
      }
      if (skipped < offset) {
        ++skipped;
        continue;
      }
      items.push_back(std::move(d));
      if (static_cast<int>(items.size()) > limit) break;
    }
    return absl::OkStatus();
  }));
  return Paged(std::move(items), limit, offset, key);
}

absl::StatusOr<std::optional<Attestation>> PreSessionManager::LatestAttestation(
    sql::Txn& txn, const Session& s) {
  ASSIGN_OR_RETURN(
      auto rows, store_.ListAttestations(txn, s.tenant, s.patient, s.id, 1, 0));
  if (rows.empty()) return std::nullopt;
  Attestation a = rows[0].attestation;
  if (!rows[0].checklist_sealed.empty()) {
    ASSIGN_OR_RETURN(std::string doc,
                     deps_.sealer->Open(txn, a.tenant, rows[0].checklist_sealed,
                                        ChecklistAd(a.Name())));
    ASSIGN_OR_RETURN(a.checklist, ChecklistFromDoc(doc));
  }
  return a;
}

absl::StatusOr<InstructionsView> PreSessionManager::GetInstructions(
    CallContext& call, absl::string_view tenant, absl::string_view patient,
    absl::string_view id) {
  Touch(call, tenant, SessionNameOf(tenant, patient, id), patient);
  InstructionsView view;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(SessionRow row, LoadSession(txn, tenant, patient, id));
    ASSIGN_OR_RETURN(view.session, OpenSession(txn, std::move(row)));
    ASSIGN_OR_RETURN(view.version, VersionOf(txn, view.session));
    ASSIGN_OR_RETURN(view.latest_attestation,
                     LatestAttestation(txn, view.session));
    return absl::OkStatus();
  }));
  return view;
}

absl::StatusOr<Page<Attestation>> PreSessionManager::ListAttestations(
    CallContext& call, absl::string_view tenant, absl::string_view patient,
    absl::string_view session, int page_size, absl::string_view page_token) {
  Touch(call, tenant,
        absl::StrCat(SessionNameOf(tenant, patient, session), "/attestations"),
        patient);
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string key =
      absl::StrCat("attestations:", tenant, "/", patient, "/", session);
  ASSIGN_OR_RETURN(int64_t offset, PageOffset(page_token, key));
  std::vector<Attestation> items;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(LoadSession(txn, tenant, patient, session).status());
    ASSIGN_OR_RETURN(auto rows,
                     store_.ListAttestations(txn, tenant, patient, session,
                                             limit + 1, offset));
    for (AttestationRow& r : rows) {
      Attestation a = std::move(r.attestation);
      if (!r.checklist_sealed.empty()) {
        ASSIGN_OR_RETURN(std::string doc,
                         deps_.sealer->Open(txn, a.tenant, r.checklist_sealed,
                                            ChecklistAd(a.Name())));
        ASSIGN_OR_RETURN(a.checklist, ChecklistFromDoc(doc));
      }
      items.push_back(std::move(a));
    }
    return absl::OkStatus();
  }));
  return Paged(std::move(items), limit, offset, key);
}

absl::Status PreSessionManager::ValidateAcknowledge(const AcknowledgeInput& in,
                                                    absl::Time now) {
  if (in.content_sha256.size() != 32) {
    return InvalidField("content_sha256", "DIGEST_MISMATCH",
                        "content_sha256 must be the 32-byte digest of the "
                        "instructions displayed");
  }
  for (size_t i = 0; i < in.acknowledged_ids.size(); ++i) {
    if (!ValidItemId(in.acknowledged_ids[i])) {
      return InvalidField(absl::StrCat("acknowledged_ids[", i, "]"),
                          "UNKNOWN_ACKNOWLEDGEMENT",
                          "not an acknowledgement of these instructions");
    }
  }
  if (!in.checklist) return absl::OkStatus();
  const ChecklistAnswers& c = *in.checklist;
  auto check_time = [now](absl::string_view field, absl::Time t) {
    if (t == absl::InfinitePast()) {
      return InvalidField(field, "FIELD_REQUIRED",
                          absl::StrCat(field, " is required"));
    }
    if (t > now) {
      return InvalidField(field, "TIME_IN_FUTURE",
                          absl::StrCat(field, " is in the future"));
    }
    if (t < now - absl::Hours(24 * 7)) {
      return InvalidField(field, "TIME_TOO_OLD",
                          absl::StrCat(field, " is more than 7 days ago"));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(
      check_time("checklist.last_solid_food_time", c.facts.last_solid_food));
  RETURN_IF_ERROR(check_time("checklist.last_clear_liquid_time",
                             c.facts.last_clear_liquid));
  if (in.escort_given) {
    if (c.facts.escort_name.empty()) {
      return InvalidField("checklist.escort.name", "FIELD_REQUIRED",
                          "the escort's name is required");
    }
    RETURN_IF_ERROR(CheckLength("checklist.escort.name", c.facts.escort_name,
                                kMaxEscortName));
    if (!ValidPhone(c.facts.escort_phone)) {
      return InvalidField("checklist.escort.phone", "INVALID_PHONE",
                          "the escort's phone must be E.164, e.g. "
                          "+15555550123");
    }
  }
  if (in.holds_answer < 1 || in.holds_answer > 3) {
    return InvalidField("checklist.medication_holds_followed", "FIELD_REQUIRED",
                        "answer YES, NO or UNSURE");
  }
  absl::flat_hash_set<int> seen;
  for (size_t i = 0; i < in.contraindication_values.size(); ++i) {
    const int v = in.contraindication_values[i];
    const std::string field =
        absl::StrCat("checklist.contraindications[", i, "]");
    if (v < 1 || v > 7) {
      return InvalidField(field, "INVALID_ENUM_VALUE",
                          "not a Contraindication value");
    }
    if (!seen.insert(v).second) {
      return InvalidField(field, "DUPLICATE_ID",
                          "each contraindication at most once");
    }
  }
  RETURN_IF_ERROR(CheckMultiLine("checklist.symptoms_note", c.symptoms_note, 0,
                                 kMaxSymptomsNote * 4));
  if (CodePoints(c.symptoms_note) > static_cast<long>(kMaxSymptomsNote)) {
    return InvalidField("checklist.symptoms_note", "FIELD_TOO_LONG",
                        "symptoms_note is limited to 1000 characters");
  }
  return absl::OkStatus();
}

// --------------------------------------------------------------- readiness

absl::StatusOr<SessionReadiness> PreSessionManager::Evaluate(
    sql::Txn& txn, const Session& s, const ConsentAnswer& consent,
    absl::Time now) {
  ReadinessInput in;
  in.scheduled = s.state == SessionState::kScheduled;
  in.start = s.start;
  in.consent = consent.verdict;
  in.current_template_version = s.template_version;
  ASSIGN_OR_RETURN(TemplateVersion v, VersionOf(txn, s));
  in.rules.solids_cutoff = v.content.solids_cutoff;
  in.rules.clear_liquids_cutoff = v.content.clear_liquids_cutoff;
  in.rules.escort_required = v.content.escort_required;
  ASSIGN_OR_RETURN(auto latest, LatestAttestation(txn, s));
  SessionReadiness r;
  r.session = s.Name();
  r.consent = consent.consent;
  if (latest) {
    AttestationFacts facts;
    facts.template_version = latest->template_version;
    facts.create_time = latest->create_time;
    if (latest->checklist) facts.checklist = latest->checklist->facts;
    in.attestation = std::move(facts);
    r.attestation = latest->Name();
  }
  if (s.readiness_override) in.overridden = s.readiness_override->reasons;
  r.readiness = EvaluateReadiness(in);
  r.readiness_override = s.readiness_override;
  r.evaluate_time = now;
  return r;
}

absl::Status PreSessionManager::StoreReadiness(sql::Txn& txn, CallContext& call,
                                               SessionRow& row,
                                               const SessionReadiness& r) {
  const int state = static_cast<int>(r.readiness.state);
  if (row.session.readiness == state) return absl::OkStatus();
  row.session.readiness = state;
  RETURN_IF_ERROR(store_.UpdateSession(txn, row));
  return Emit(txn, call, events::EventType::kReadinessChanged,
              row.session.Name(), deps_.bus);
}

absl::StatusOr<Session> PreSessionManager::SessionForReadiness(
    CallContext& call, absl::string_view tenant, absl::string_view patient,
    absl::string_view id) {
  return GetSession(call, tenant, patient, id);
}

void PreSessionManager::Acknowledge(CallContext& call, AcknowledgeInput in,
                                    ConsentAnswer consent,
                                    Done<AcknowledgeResult> done) {
  Touch(call, in.tenant, SessionNameOf(in.tenant, in.patient, in.session),
        in.patient);
  if (absl::Status s = ValidateAcknowledge(in, call.now); !s.ok()) {
    return done(s);
  }
  RunWrite<AcknowledgeResult>(
      [this, &call, in = std::move(in), consent = std::move(consent)](
          sql::Txn& txn) -> absl::StatusOr<AcknowledgeResult> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(SessionRow row,
                         LoadSession(txn, in.tenant, in.patient, in.session));
        ASSIGN_OR_RETURN(Session session, OpenSession(txn, row));
        AcknowledgeResult result;
        if (prior) {
          ASSIGN_OR_RETURN(auto all,
                           store_.ListAttestations(txn, in.tenant, in.patient,
                                                   in.session, 1000, 0));
          for (AttestationRow& a : all) {
            if (a.attestation.Name() == *prior) {
              result.attestation = a.attestation;
              if (!a.checklist_sealed.empty()) {
                ASSIGN_OR_RETURN(
                    std::string doc,
                    deps_.sealer->Open(txn, in.tenant, a.checklist_sealed,
                                       ChecklistAd(*prior)));
                ASSIGN_OR_RETURN(result.attestation.checklist,
                                 ChecklistFromDoc(doc));
              }
            }
          }
          ASSIGN_OR_RETURN(result.readiness,
                           Evaluate(txn, session, consent, call.now));
          call.resource = *prior;
          RETURN_IF_ERROR(Audit(txn, call));
          return result;
        }
        if (session.state != SessionState::kScheduled) {
          return FailedPrecondition("SESSION_NOT_SCHEDULED",
                                    "the session is cancelled or completed");
        }
        ASSIGN_OR_RETURN(TemplateVersion v, VersionOf(txn, session));
        if (in.content_sha256 != v.content_sha256) {
          return InvalidField("content_sha256", "DIGEST_MISMATCH",
                              "these are not the session's current "
                              "instructions; reload them");
        }
        absl::flat_hash_set<std::string> known, given;
        for (const auto& a : v.content.discharge_acknowledgements) {
          known.insert(a.id);
        }
        for (size_t i = 0; i < in.acknowledged_ids.size(); ++i) {
          if (!known.contains(in.acknowledged_ids[i])) {
            return InvalidField(absl::StrCat("acknowledged_ids[", i, "]"),
                                "UNKNOWN_ACKNOWLEDGEMENT",
                                "not an acknowledgement of these "
                                "instructions");
          }
          given.insert(in.acknowledged_ids[i]);
        }
        for (const auto& a : v.content.discharge_acknowledgements) {
          if (a.required && !given.contains(a.id)) {
            return InvalidField(
                "acknowledged_ids", "ACKNOWLEDGEMENT_MISSING",
                absl::StrCat("the acknowledgement '", a.id, "' is required"));
          }
        }
        if (in.checklist && v.content.escort_required && !in.escort_given) {
          return InvalidField("checklist.escort", "ESCORT_REQUIRED",
                              "these instructions require an escort's name "
                              "and phone");
        }
        AttestationRow arow;
        Attestation& a = arow.attestation;
        a.tenant = in.tenant;
        a.patient = in.patient;
        a.session = in.session;
        a.id = crypto::NewOpaqueId(*deps_.random);
        a.template_version = v.Name();
        a.content_sha256 = v.content_sha256;
        a.acknowledged_ids = in.acknowledged_ids;
        a.attested_by = ActorOf(call.principal);
        a.create_time = call.now;
        if (in.checklist) {
          ASSIGN_OR_RETURN(
              arow.checklist_sealed,
              deps_.sealer->Seal(txn, in.tenant, ChecklistDoc(*in.checklist),
                                 ChecklistAd(a.Name())));
        }
        call.resource = a.Name();
        RETURN_IF_ERROR(store_.InsertAttestation(txn, arow));
        // Acknowledged: no more reminders for this session.
        RETURN_IF_ERROR(scheduler::CancelPrefix(
                            txn, absl::StrCat(session.Name(), "/remind:"))
                            .status());
        RETURN_IF_ERROR(Emit(txn, call,
                             events::EventType::kInstructionsAcknowledged,
                             a.Name(), deps_.bus));
        ASSIGN_OR_RETURN(result.readiness,
                         Evaluate(txn, session, consent, call.now));
        RETURN_IF_ERROR(StoreReadiness(txn, call, row, result.readiness));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, a.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        result.attestation = std::move(a);
        result.attestation.checklist = in.checklist;
        return result;
      },
      std::move(done));
}

void PreSessionManager::CheckReadiness(CallContext& call, std::string tenant,
                                       std::string patient, std::string id,
                                       ConsentAnswer consent,
                                       Done<SessionReadiness> done) {
  Touch(call, tenant, SessionNameOf(tenant, patient, id), patient);
  RunWrite<SessionReadiness>(
      [this, &call, tenant = std::move(tenant), patient = std::move(patient),
       id = std::move(id), consent = std::move(consent)](
          sql::Txn& txn) -> absl::StatusOr<SessionReadiness> {
        ASSIGN_OR_RETURN(SessionRow row, LoadSession(txn, tenant, patient, id));
        ASSIGN_OR_RETURN(Session session, OpenSession(txn, row));
        ASSIGN_OR_RETURN(SessionReadiness r,
                         Evaluate(txn, session, consent, call.now));
        RETURN_IF_ERROR(StoreReadiness(txn, call, row, r));
        RETURN_IF_ERROR(Audit(txn, call));
        return r;
      },
      std::move(done));
}

void PreSessionManager::OverrideReadiness(CallContext& call, OverrideInput in,
                                          ConsentAnswer consent,
                                          Done<SessionReadiness> done) {
  Touch(call, in.tenant, SessionNameOf(in.tenant, in.patient, in.session),
        in.patient);
  if (absl::StripAsciiWhitespace(in.reason).empty()) {
    return done(InvalidField("reason", "FIELD_REQUIRED",
                             "an override needs a clinical reason"));
  }
  if (absl::Status s = CheckMultiLine("reason", in.reason, 0, kMaxReason * 4);
      !s.ok()) {
    return done(s);
  }
  if (CodePoints(in.reason) > static_cast<long>(kMaxReason)) {
    return done(InvalidField("reason", "FIELD_TOO_LONG",
                             "reason is limited to 1000 characters"));
  }
  RunWrite<SessionReadiness>(
      [this, &call, in = std::move(in), consent = std::move(consent)](
          sql::Txn& txn) -> absl::StatusOr<SessionReadiness> {
        ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
        ASSIGN_OR_RETURN(SessionRow row,
                         LoadSession(txn, in.tenant, in.patient, in.session));
        ASSIGN_OR_RETURN(Session session, OpenSession(txn, row));
        if (prior) {
          RETURN_IF_ERROR(Audit(txn, call));
          return Evaluate(txn, session, consent, call.now);
        }
        if (session.state != SessionState::kScheduled) {
          return FailedPrecondition("SESSION_NOT_SCHEDULED",
                                    "the session is cancelled or completed");
        }
        ASSIGN_OR_RETURN(SessionReadiness current,
                         Evaluate(txn, session, consent, call.now));
        RETURN_IF_ERROR(ValidateOverride(current.readiness, in.reasons));
        ReadinessOverride ov;
        ov.clinician = ActorOf(call.principal);
        ov.reason = in.reason;
        ov.reasons = in.reasons;
        ov.create_time = call.now;
        session.readiness_override = ov;
        row.session.readiness_override = ov;
        row.session.readiness_override->reason.clear();
        row.session.update_time = call.now;
        ASSIGN_OR_RETURN(row.override_reason_sealed,
                         deps_.sealer->Seal(txn, in.tenant, in.reason,
                                            OverrideAd(session.Name())));
        RETURN_IF_ERROR(store_.UpdateSession(txn, row));
        ASSIGN_OR_RETURN(SessionReadiness r,
                         Evaluate(txn, session, consent, call.now));
        RETURN_IF_ERROR(StoreReadiness(txn, call, row, r));
        RETURN_IF_ERROR(Emit(txn, call, events::EventType::kReadinessOverridden,
                             session.Name(), deps_.bus));
        RETURN_IF_ERROR(RememberIdempotentResult(txn, call, session.Name()));
        RETURN_IF_ERROR(Audit(txn, call));
        return r;
      },
      std::move(done));
}

// --------------------------------------------------------------- scheduler

namespace {

std::string InstructionsText(const Session& s, const TemplateVersion& v,
                             bool reminder, absl::TimeZone tz) {
  auto when = [&](absl::Time t) { return PatientTime(t, tz); };
  const InstructionContent& c = v.content;
  std::string text;
  if (reminder) {
    absl::StrAppend(&text,
                    "Reminder: please read and acknowledge your pre-session "
                    "instructions.\n\n");
  }
  absl::StrAppend(&text, c.title, "\n\nYour infusion starts ", when(s.start));
  if (!s.location.empty()) absl::StrAppend(&text, " (", s.location, ")");
  absl::StrAppend(&text, ".\n");
  if (c.arrival_lead > absl::ZeroDuration()) {
    absl::StrAppend(&text, "Please arrive by ", when(s.start - c.arrival_lead),
                    ".\n");
  }
  absl::StrAppend(&text, "No solid food after ",
                  when(s.start - c.solids_cutoff), ".\n",
                  "Clear liquids only until ",
                  when(s.start - c.clear_liquids_cutoff), ".\n");
  if (c.escort_required) {
    absl::StrAppend(&text,
                    "An adult must take you home: have their name and phone "
                    "ready.\n");
  }
  for (const auto& h : c.medication_holds) {
    absl::StrAppend(&text, "- ", h.text, "\n");
  }
  if (!c.what_to_bring.empty()) {
    absl::StrAppend(&text, "Bring:");
    for (const auto& b : c.what_to_bring) absl::StrAppend(&text, " ", b, ";");
    text.back() = '.';
    absl::StrAppend(&text, "\n");
  }
  if (!c.body_markdown.empty())
    absl::StrAppend(&text, "\n", c.body_markdown, "\n");
  for (const auto& a : c.discharge_acknowledgements) {
    absl::StrAppend(&text, "After your infusion: ", a.text, "\n");
  }
  absl::StrAppend(&text,
                  "\nPlease acknowledge these instructions in the portal.");
  return text;
}

struct Payload {
  std::string session;
};

Payload ParsePayload(absl::string_view payload) {
  return Payload{std::string(payload)};
}

}  // namespace

absl::StatusOr<DeliveryWork> PreSessionManager::PrepareDelivery(
    const scheduler::Job& job, absl::Time now) {
  (void)now;
  DeliveryWork work;
  const Payload payload = ParsePayload(job.payload);
  ASSIGN_OR_RETURN(JobKey k, ParseJobKey(job.key));
  ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kSessionPattern,
                                                       payload.session, "key"));
  absl::TimeZone tz = absl::UTCTimeZone();
  if (deps_.tenant_zone) {
    ASSIGN_OR_RETURN(tz, deps_.tenant_zone(n.Get("tenant")));
  }
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        SessionRow row,
        LoadSession(txn, n.Get("tenant"), n.Get("patient"), n.Get("session")));
    const Session& s = row.session;
    if (s.state != SessionState::kScheduled) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto latest, LatestAttestation(txn, s));
    const bool acknowledged =
        latest && latest->template_version == s.template_version;
    if (k.reminder && acknowledged) return absl::OkStatus();
    ASSIGN_OR_RETURN(TemplateVersion v, VersionOf(txn, s));
    work.send = true;
    work.patient_name = s.PatientName();
    work.thread_subject = "Before your infusion";
    work.text = InstructionsText(s, v, k.reminder, tz);
    work.thread_request_seed = absl::StrCat("presession-thread:", s.Name());
    // Not the job's due time: a retry after a failure moves it. A move of
    // the session changes the start, and is a new message.
    work.message_request_seed =
        absl::StrCat("presession-message:", job.key, "@", ToMicros(s.start));
    return absl::OkStatus();
  }));
  return work;
}

absl::Status PreSessionManager::CommitDelivery(sql::Txn& txn,
                                               const scheduler::Job& job,
                                               absl::Time now,
                                               const std::string& message) {
  const Payload payload = ParsePayload(job.payload);
  ASSIGN_OR_RETURN(JobKey k, ParseJobKey(job.key));
  ASSIGN_OR_RETURN(ResourceName n, ResourceName::Parse(kSessionPattern,
                                                       payload.session, "key"));
  ASSIGN_OR_RETURN(
      SessionRow row,
      LoadSession(txn, n.Get("tenant"), n.Get("patient"), n.Get("session")));
  const Session& s = row.session;
  DeliveryRecord record;
  record.job_key = job.key;
  record.tenant = s.tenant;
  record.deliver_time = now;
  record.template_version = s.template_version;
  if (message.empty()) {
    record.state = DeliveryState::kCancelled;
    return store_.PutDelivery(txn, record);
  }
  record.state = DeliveryState::kDelivered;
  record.message = message;
  RETURN_IF_ERROR(store_.PutDelivery(txn, record));
  ASSIGN_OR_RETURN(InstructionDelivery d,
                   DeliveryOf(txn, job, s));  // its resource name
  CallContext sys =
      SystemCall("careseal.system/DeliverInstructions", now, *deps_.random,
                 s.tenant, d.name, s.PatientName());
  RETURN_IF_ERROR(Emit(txn, sys, events::EventType::kInstructionsDelivered,
                       d.name, deps_.bus));
  RETURN_IF_ERROR(AppendAuditEvent(txn, sys, absl::OkStatus()).status());
  // Reminders while unacknowledged.
  if (s.state != SessionState::kScheduled) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto latest, LatestAttestation(txn, s));
  if (latest && latest->template_version == s.template_version) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(Settings settings, LoadSettings(txn, s.tenant));
  absl::Time base = now;
  int next = 1;
  if (k.reminder) {
    // ReminderDue(base, n) = base + reminder_after * n.
    base = job.due - settings.delivery.reminder_after * k.n;
    next = k.n + 1;
  } else {
    // A newer delivery restarts the reminders.
    RETURN_IF_ERROR(
        scheduler::CancelPrefix(txn, absl::StrCat(s.Name(), "/remind:"))
            .status());
  }
  std::optional<absl::Time> due =
      ReminderDue(settings.delivery, base, next, s.start);
  if (!due) return absl::OkStatus();
  scheduler::Job reminder;
  reminder.key = RemindKey(s.Name(), k.offset_label, next);
  reminder.tenant = s.tenant;
  reminder.kind = kRemindKind;
  reminder.due = *due;
  reminder.payload = s.Name();
  return Upsert(txn, reminder);
}

}  // namespace careseal::presession
