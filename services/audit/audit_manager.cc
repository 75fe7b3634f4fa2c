#include "services/audit/audit_manager.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/audit/merkle.h"
#include "services/common/crypto/encoding.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/pagination.h"
#include "services/common/platform/policy.h"
#include "services/common/status.h"

namespace careseal::audit {
namespace {

std::string TenantName(absl::string_view tenant) {
  return absl::StrCat("tenants/", tenant);
}

std::string CheckpointName(absl::string_view tenant, int64_t size) {
  return absl::StrCat("tenants/", tenant, "/checkpoints/", size);
}

// Records what the call touches, for its audit event.
void Touch(CallContext& call, absl::string_view tenant,
           absl::string_view resource, absl::string_view patient = "") {
  call.tenant = std::string(tenant);
  call.resource = std::string(resource);
  call.patient = std::string(patient);
}

absl::Status Audit(sql::Txn& txn, CallContext& call) {
  ASSIGN_OR_RETURN(call.audit_leaf_index,
                   AppendAuditEvent(txn, call, absl::OkStatus()));
  call.audited = true;
  return absl::OkStatus();
}

absl::Status NoCheckpoint() {
  return NotFound("NO_CHECKPOINT",
                  "there is no signed checkpoint of this tree size (or none "
                  "yet); create one with CreateCheckpoint");
}

absl::Status InvalidTreeSize(absl::string_view field,
                             absl::string_view message) {
  return InvalidField(field, "INVALID_TREE_SIZE", message);
}

bool StartsWithAny(absl::string_view s,
                   std::initializer_list<absl::string_view> prefixes) {
  for (absl::string_view p : prefixes) {
    if (absl::StartsWith(s, p)) return true;
  }
  return false;
}

bool ContainsAny(absl::string_view s,
                 std::initializer_list<absl::string_view> parts) {
  for (absl::string_view p : parts) {
    if (absl::StrContains(s, p)) return true;
  }
  return false;
}

}  // namespace

Category CategoryOf(absl::string_view action, absl::string_view role,
                    absl::string_view outcome) {
  if (outcome == "UNAUTHENTICATED") return Category::kAuthentication;
  if (outcome == "PERMISSION_DENIED") return Category::kAuthorization;
  absl::string_view service = action;
  absl::string_view method = action;
  if (size_t slash = action.rfind('/'); slash != absl::string_view::npos) {
    service = action.substr(0, slash);
    method = action.substr(slash + 1);
  }
  if (role == "break_glass" || absl::StrContains(method, "BreakGlass")) {
    return Category::kBreakGlass;
  }
  if (role == "system" || absl::StartsWith(action, "system/")) {
    return Category::kSystemJob;
  }
  const bool read =
      StartsWithAny(method, {"Get", "List", "Check", "Watch", "Export"});
  if (absl::StrContains(method, "SigningKey") ||
      absl::StrContains(method, "CheckpointKey")) {
    return read ? Category::kMetadataRead : Category::kKeyManagement;
  }
  if (absl::EndsWith(service, ".AuditService")) {
    return read ? Category::kMetadataRead : Category::kAdmin;
  }
  if (ContainsAny(method, {"Template", "Tenant", "Issuer", "Clinician",
                           "Webhook", "Settings", "Instrument"})) {
    return read ? Category::kMetadataRead : Category::kAdmin;
  }
  return read ? Category::kDataRead : Category::kDataWrite;
}

int OutcomeCode(absl::string_view outcome) {
  for (int code = 0; code <= 16; ++code) {
    if (absl::StatusCodeToString(static_cast<absl::StatusCode>(code)) ==
        outcome) {
      return code;
    }
  }
  return static_cast<int>(absl::StatusCode::kUnknown);
}

std::string AuditEvent::Name() const {
  return absl::StrCat("tenants/", tenant, "/auditEvents/", leaf_index);
}

std::string Checkpoint::Name() const {
  return CheckpointName(tenant, tree_size);
}

absl::StatusOr<std::string> EncodeCheckpointPayload(const Checkpoint& c) {
  Json payload = {
      {"format", kCheckpointFormat},
      {"tenant", TenantName(c.tenant)},
      {"tree_size", c.tree_size},
      {"root_hash", crypto::HexEncode(c.root_hash)},
      {"time", Rfc3339(c.time)},
      {"key_id", c.key_id},
  };
  return CanonicalJson(payload);
}

absl::Status AuditManager::Migrate(sql::Database& db) {
  RETURN_IF_ERROR(db.Migrate("audit", AuditMigrations()));
  RETURN_IF_ERROR(db.Migrate("idempotency", IdempotencyMigrations()));
  RETURN_IF_ERROR(db.Migrate("signing_keys", SigningKeyMigrations()));
  return db.Migrate("audit_service", AuditServiceMigrations());
}

absl::StatusOr<AuditEvent> AuditManager::GetEvent(CallContext& call,
                                                  absl::string_view tenant,
                                                  int64_t leaf_index) {
  Touch(call, tenant,
        absl::StrCat(TenantName(tenant), "/auditEvents/", leaf_index));
  absl::StatusOr<AuditEvent> out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) {
    out = store_.GetEvent(txn, tenant, leaf_index);
    return out.status();
  }));
  return out;
}

absl::StatusOr<Page<AuditEvent>> AuditManager::ListEvents(
    CallContext& call, const EventFilter& filter, int page_size,
    absl::string_view page_token) {
  Touch(call, filter.tenant,
        absl::StrCat(TenantName(filter.tenant), "/auditEvents"),
        filter.patient);
  if (filter.start_time && filter.end_time &&
      *filter.end_time <= *filter.start_time) {
    return InvalidField("end_time", "INVALID_TIME_RANGE",
                        "end_time must be after start_time");
  }
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter_key = absl::StrCat(
      "events\x1f", filter.tenant, "\x1f", filter.patient, "\x1f", filter.actor,
      "\x1f", filter.action, "\x1f", filter.resource, "\x1f",
      filter.category ? static_cast<int>(*filter.category) : 0, "\x1f",
      filter.start_time ? ToMicros(*filter.start_time) : -1, "\x1f",
      filter.end_time ? ToMicros(*filter.end_time) : -1, "\x1f",
      filter.failures_only ? 1 : 0);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor cursor,
                   DecodePageToken(page_token, filter_key, &first));
  int64_t after = first ? -1 : cursor.key;
  Page<AuditEvent> page;
  bool exhausted = false;
  int scanned = 0;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    // One match beyond the page tells whether another page exists.
    while (static_cast<int>(page.items.size()) <= limit &&
           scanned < kMaxScannedEventsPerPage) {
      const int want = filter.category
                           ? std::min(1000, kMaxScannedEventsPerPage - scanned)
                           : limit + 1 - static_cast<int>(page.items.size());
      ASSIGN_OR_RETURN(std::vector<AuditEvent> batch,
                       store_.ScanEvents(txn, filter, after, want));
      for (AuditEvent& e : batch) {
        after = e.leaf_index;
        ++scanned;
        if (filter.category && e.category() != *filter.category) continue;
        page.items.push_back(std::move(e));
        if (static_cast<int>(page.items.size()) > limit) break;
      }
      if (static_cast<int>(batch.size()) < want) {
        exhausted = true;
        break;
      }
    }
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token =
        EncodePageToken({page.items.back().leaf_index, ""}, filter_key);
  } else if (!exhausted) {
    // The scan budget ran out before the page filled: resume after the last
    // event examined.
    page.next_page_token = EncodePageToken({after, ""}, filter_key);
  }
  return page;
}

absl::StatusOr<Checkpoint> AuditManager::GetCheckpoint(CallContext& call,
                                                       absl::string_view tenant,
                                                       int64_t tree_size) {
  Touch(call, tenant,
        tree_size > 0 ? CheckpointName(tenant, tree_size)
                      : absl::StrCat(TenantName(tenant), "/checkpoints"));
  if (tree_size < 0) {
    return InvalidTreeSize("tree_size", "tree_size must not be negative");
  }
  std::optional<StoredCheckpoint> found;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(found, store_.GetCheckpoint(txn, tenant, tree_size));
    return absl::OkStatus();
  }));
  if (!found) return NoCheckpoint();
  return found->checkpoint;
}

absl::StatusOr<Page<Checkpoint>> AuditManager::ListCheckpoints(
    CallContext& call, absl::string_view tenant, int64_t min_tree_size,
    int page_size, absl::string_view page_token) {
  Touch(call, tenant, absl::StrCat(TenantName(tenant), "/checkpoints"));
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter_key =
      absl::StrCat("checkpoints\x1f", tenant, "\x1f", min_tree_size);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor cursor,
                   DecodePageToken(page_token, filter_key, &first));
  Page<Checkpoint> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(page.items,
                     store_.ListCheckpoints(txn, tenant, min_tree_size,
                                            first ? 0 : cursor.key, limit + 1));
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token =
        EncodePageToken({page.items.back().tree_size, ""}, filter_key);
  }
  return page;
}

absl::StatusOr<Checkpoint> AuditManager::CheckpointLocked(
    sql::Txn& txn, absl::string_view tenant, absl::Time now) {
  ASSIGN_OR_RETURN(int64_t size, store_.TreeSize(txn, tenant));
  ASSIGN_OR_RETURN(std::optional<StoredCheckpoint> latest,
                   store_.GetCheckpoint(txn, tenant, 0));
  if (size == 0) {
    return FailedPrecondition("EMPTY_LOG",
                              "the tenant's audit log has no events yet");
  }
  if (latest && latest->checkpoint.tree_size >= size) {
    return latest->checkpoint;
  }
  CompactRange range;
  if (latest) {
    ASSIGN_OR_RETURN(range,
                     CompactRange::FromFrontier(
                         static_cast<uint64_t>(latest->checkpoint.tree_size),
                         std::move(latest->frontier)));
  }
  ASSIGN_OR_RETURN(
      std::vector<std::string> hashes,
      store_.LeafHashes(txn, tenant, static_cast<int64_t>(range.size()), size));
  for (const std::string& h : hashes) range.Append(h);
  std::shared_ptr<const crypto::Signer> signer =
      deps_.checkpoint_keys->ring().Current();
  Checkpoint c;
  c.tenant = std::string(tenant);
  c.tree_size = size;
  c.root_hash = range.Root();
  // Checkpoint times never go backwards, even if the clock does.
  c.time = latest ? std::max(now, latest->checkpoint.time) : now;
  c.key_id = signer->key_id();
  ASSIGN_OR_RETURN(c.payload, EncodeCheckpointPayload(c));
  ASSIGN_OR_RETURN(c.signature, signer->Sign(c.payload));
  RETURN_IF_ERROR(store_.InsertCheckpoint(txn, c, range.frontier()));
  return c;
}

void AuditManager::CreateCheckpoint(CallContext& call, std::string tenant,
                                    Done<Checkpoint> done) {
  Touch(call, tenant, absl::StrCat(TenantName(tenant), "/checkpoints"));
  auto result = std::make_shared<absl::StatusOr<Checkpoint>>(
      Internal("NOT_RUN", "the write did not run"));
  deps_.db->Write(
      [this, &call, tenant = std::move(tenant),
       result](sql::Txn& txn) -> absl::Status {
        *result = [&]() -> absl::StatusOr<Checkpoint> {
          ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
          Checkpoint c;
          if (prior) {
            int64_t size = 0;
            absl::string_view rest(*prior);
            if (!absl::ConsumePrefix(
                    &rest, absl::StrCat(TenantName(tenant), "/checkpoints/")) ||
                !absl::SimpleAtoi(rest, &size)) {
              return Internal("IDEMPOTENCY_CORRUPT",
                              "a remembered checkpoint name is malformed");
            }
            ASSIGN_OR_RETURN(auto stored,
                             store_.GetCheckpoint(txn, tenant, size));
            if (!stored) return NoCheckpoint();
            c = std::move(stored->checkpoint);
          } else {
            ASSIGN_OR_RETURN(c, CheckpointLocked(txn, tenant, call.now));
            RETURN_IF_ERROR(RememberIdempotentResult(txn, call, c.Name()));
          }
          call.resource = c.Name();
          RETURN_IF_ERROR(Audit(txn, call));
          return c;
        }();
        return result->status();
      },
      [result, done = std::move(done)](absl::Status status) mutable {
        if (!status.ok()) return done(status);
        done(std::move(*result));
      });
}

absl::StatusOr<InclusionProofResult> AuditManager::GetInclusionProof(
    CallContext& call, absl::string_view tenant, int64_t leaf_index,
    int64_t tree_size) {
  Touch(call, tenant,
        absl::StrCat(TenantName(tenant), "/auditEvents/", leaf_index));
  if (leaf_index < 0) {
    return InvalidField("leaf_index", "INVALID_LEAF_INDEX",
                        "leaf_index must not be negative");
  }
  if (tree_size < 0) {
    return InvalidTreeSize("tree_size", "tree_size must not be negative");
  }
  InclusionProofResult out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto checkpoint,
                     store_.GetCheckpoint(txn, tenant, tree_size));
    if (!checkpoint) return NoCheckpoint();
    out.checkpoint = std::move(checkpoint->checkpoint);
    if (leaf_index >= out.checkpoint.tree_size) {
      return FailedPrecondition(
          "LEAF_NOT_IN_TREE",
          absl::StrCat("leaf ", leaf_index, " is not in the tree of size ",
                       out.checkpoint.tree_size,
                       "; ask for a later checkpoint (CreateCheckpoint)"));
    }
    ASSIGN_OR_RETURN(out.event, store_.GetEvent(txn, tenant, leaf_index));
    ASSIGN_OR_RETURN(
        std::vector<std::string> hashes,
        store_.LeafHashes(txn, tenant, 0, out.checkpoint.tree_size));
    ASSIGN_OR_RETURN(out.audit_path,
                     InclusionProof(hashes, static_cast<uint64_t>(leaf_index)));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<ConsistencyProofResult> AuditManager::GetConsistencyProof(
    CallContext& call, absl::string_view tenant, int64_t first_tree_size,
    int64_t second_tree_size) {
  Touch(call, tenant, absl::StrCat(TenantName(tenant), "/checkpoints"));
  ConsistencyProofResult out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(int64_t size, store_.TreeSize(txn, tenant));
    if (second_tree_size == 0) {
      ASSIGN_OR_RETURN(auto latest, store_.GetCheckpoint(txn, tenant, 0));
      if (!latest) return NoCheckpoint();
      second_tree_size = latest->checkpoint.tree_size;
    }
    if (first_tree_size < 1 || first_tree_size > second_tree_size ||
        second_tree_size > size) {
      return InvalidTreeSize(
          first_tree_size < 1 || first_tree_size > second_tree_size
              ? "first_tree_size"
              : "second_tree_size",
          absl::StrCat("need 1 <= first_tree_size <= second_tree_size <= ",
                       size, " (the current tree size)"));
    }
    out.first_tree_size = first_tree_size;
    out.second_tree_size = second_tree_size;
    ASSIGN_OR_RETURN(std::vector<std::string> hashes,
                     store_.LeafHashes(txn, tenant, 0, second_tree_size));
    ASSIGN_OR_RETURN(
        out.proof,
        ConsistencyProof(hashes, static_cast<uint64_t>(first_tree_size)));
    ASSIGN_OR_RETURN(auto first,
                     store_.GetCheckpoint(txn, tenant, first_tree_size));
    if (first) out.first_checkpoint = std::move(first->checkpoint);
    ASSIGN_OR_RETURN(auto second,
                     store_.GetCheckpoint(txn, tenant, second_tree_size));
    if (second) out.second_checkpoint = std::move(second->checkpoint);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<Page<CheckpointKey>> AuditManager::ListCheckpointKeys(
    CallContext& call, int page_size, absl::string_view page_token) {
  call.resource = "signingKeys";
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor cursor,
                   DecodePageToken(page_token, "checkpoint-keys", &first));
  std::vector<CheckpointKey> keys;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(keys,
                     store_.SigningKeys(txn, deps_.checkpoint_keys->purpose()));
    return absl::OkStatus();
  }));
  const int64_t offset = first ? 0 : cursor.key;
  Page<CheckpointKey> page;
  for (int64_t i = offset; i < static_cast<int64_t>(keys.size()) &&
                           static_cast<int>(page.items.size()) < limit;
       ++i) {
    page.items.push_back(keys[i]);
  }
  const int64_t next = offset + static_cast<int64_t>(page.items.size());
  if (next < static_cast<int64_t>(keys.size())) {
    page.next_page_token = EncodePageToken({next, ""}, "checkpoint-keys");
  }
  return page;
}

absl::StatusOr<ExportPlan> AuditManager::PlanExport(CallContext& call,
                                                    absl::string_view tenant,
                                                    int64_t start_leaf_index,
                                                    int64_t end_leaf_index) {
  Touch(call, tenant, absl::StrCat(TenantName(tenant), "/auditEvents"));
  ExportPlan plan;
  plan.tenant = std::string(tenant);
  plan.start = start_leaf_index;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(int64_t size, store_.TreeSize(txn, tenant));
    plan.end = end_leaf_index;
    if (end_leaf_index == 0) {
      ASSIGN_OR_RETURN(auto latest, store_.GetCheckpoint(txn, tenant, 0));
      plan.end = latest ? latest->checkpoint.tree_size : 0;
    }
    if (start_leaf_index < 0 || end_leaf_index < 0 || plan.end > size ||
        start_leaf_index > plan.end) {
      return InvalidField(
          start_leaf_index < 0 || start_leaf_index > plan.end
              ? "start_leaf_index"
              : "end_leaf_index",
          "INVALID_RANGE",
          absl::StrCat("need 0 <= start_leaf_index <= end_leaf_index <= ", size,
                       " (the current tree size); end_leaf_index 0 "
                       "means the latest checkpoint's size (",
                       plan.end, ")"));
    }
    ASSIGN_OR_RETURN(plan.keys,
                     store_.SigningKeys(txn, deps_.checkpoint_keys->purpose()));
    return absl::OkStatus();
  }));
  return plan;
}

absl::StatusOr<ExportChunk> AuditManager::ReadExportChunk(
    const ExportPlan& plan, int64_t from, int max_events) {
  ExportChunk chunk;
  chunk.next = std::min(plan.end, from + std::max(1, max_events));
  if (from >= plan.end) {
    chunk.next = plan.end;
    return chunk;
  }
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(chunk.events,
                     store_.EventRange(txn, plan.tenant, from, chunk.next));
    ASSIGN_OR_RETURN(
        chunk.checkpoints,
        store_.CheckpointsBetween(txn, plan.tenant, from, chunk.next));
    return absl::OkStatus();
  }));
  return chunk;
}

absl::StatusOr<std::vector<Checkpoint>> AuditManager::CheckpointGrownTenants() {
  std::vector<GrownTenant> grown;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(grown, store_.GrownTenants(txn));
    return absl::OkStatus();
  }));
  std::vector<Checkpoint> created;
  for (const GrownTenant& t : grown) {
    Checkpoint c;
    absl::Status s = deps_.db->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
      ASSIGN_OR_RETURN(c, CheckpointLocked(txn, t.tenant, deps_.clock->Now()));
      return absl::OkStatus();
    });
    // Another replica signing the same size first is not an error.
    if (sql::IsUniqueViolation(s)) continue;
    RETURN_IF_ERROR(s);
    created.push_back(std::move(c));
  }
  return created;
}

}  // namespace careseal::audit
