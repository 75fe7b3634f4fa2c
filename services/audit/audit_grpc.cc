#include "services/audit/audit_grpc.h"

#include <deque>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/key_ring.h"
#include "services/common/grpc/server_host.h"
#include "services/common/grpc/status_convert.h"
#include "services/common/identity.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/resource_name.h"
#include "services/common/platform/text.h"
#include "services/common/status.h"

namespace careseal::audit {
namespace {

#define AUDIT_METHOD(name) "careseal.v1.AuditService/" #name

absl::Status BadName(absl::string_view field, absl::string_view pattern) {
  return InvalidField(field, "INVALID_NAME",
                      absl::StrCat(field, " must be ", pattern));
}

// tenants/{tenant}, where {tenant} may also be "_" (the deployment log).
absl::StatusOr<std::string> ParseTenant(absl::string_view name,
                                        absl::string_view field) {
  if (name.empty()) {
    return InvalidField(field, "FIELD_REQUIRED",
                        absl::StrCat(field, " is required (tenants/{tenant})"));
  }
  absl::string_view rest = name;
  if (name.size() > kMaxNameBytes || !absl::ConsumePrefix(&rest, "tenants/") ||
      !(rest == kNoTenantLog || IsValidId(rest))) {
    return BadName(field, "tenants/{tenant}");
  }
  return std::string(rest);
}

// A decimal number without sign or leading zeros.
bool ParseIndex(absl::string_view s, int64_t* out) {
  return !s.empty() && absl::SimpleAtoi(s, out) && *out >= 0 &&
         absl::StrCat(*out) == s;
}

struct EventName {
  std::string tenant;
  int64_t leaf_index = 0;
};

absl::StatusOr<EventName> ParseEventName(absl::string_view name,
                                         absl::string_view field) {
  constexpr char kPattern[] = "tenants/{tenant}/auditEvents/{leaf_index}";
  if (name.empty()) {
    return InvalidField(field, "FIELD_REQUIRED",
                        absl::StrCat(field, " is required (", kPattern, ")"));
  }
  size_t cut = name.find("/auditEvents/");
  if (cut == absl::string_view::npos) return BadName(field, kPattern);
  auto tenant = ParseTenant(name.substr(0, cut), field);
  if (!tenant.ok()) return BadName(field, kPattern);
  EventName out{*tenant, 0};
  if (!ParseIndex(name.substr(cut + 13), &out.leaf_index)) {
    return BadName(field, kPattern);
  }
  return out;
}

absl::Status Authorize(const Edge& edge, const CallContext& call,
                       absl::string_view tenant) {
  return edge.policy->Authorize(call.principal, call.method,
                                Scope{std::string(tenant), ""}, call.now);
}

v1::Role RoleFromName(absl::string_view role) {
  static constexpr std::pair<absl::string_view, v1::Role> kRoles[] = {
      {"ehr_system", v1::ROLE_EHR_SYSTEM},
      {"clinician", v1::ROLE_CLINICIAN},
      {"patient", v1::ROLE_PATIENT},
      {"auditor", v1::ROLE_AUDITOR},
      {"admin", v1::ROLE_ADMIN},
      {"break_glass", v1::ROLE_BREAK_GLASS},
      {"portal", v1::ROLE_PORTAL},
      {"system", v1::ROLE_SYSTEM},
  };
  for (const auto& [name, value] : kRoles) {
    if (name == role) return value;
  }
  return v1::ROLE_UNSPECIFIED;
}

// The contract spells gRPC methods "/package.Service/Method"; the leaf
// records them without the leading slash (internal actions are "system/X").
std::string ContractAction(absl::string_view action) {
  if (absl::StartsWith(action, "/") || absl::StartsWith(action, "system/") ||
      !absl::StrContains(action, '/')) {
    return std::string(action);
  }
  return absl::StrCat("/", action);
}

// Completion of an asynchronous domain call: convert on success, then finish.
template <typename T, typename Convert>
Done<T> Reply(Finisher finish, Convert convert) {
  return [finish = std::move(finish),
          convert = std::move(convert)](absl::StatusOr<T> result) mutable {
    if (!result.ok()) return finish(result.status());
    finish(convert(*result));
  };
}

absl::Status CheckFilterText(absl::string_view field, absl::string_view value) {
  return CheckSingleLine(field, value, 0, kMaxNameBytes);
}

// ExportAuditLog. Steps as in RunUnary: authenticate, role row, authorize
// the tenant, plan; then the call's audit event is made durable before the
// first item goes out (a denied or failed export is audited too). Items are
// buffered one store chunk at a time; the next chunk is read on the gRPC
// thread that reports the previous write done.
class ExportReactor final
    : public grpc::ServerWriteReactor<v1::ExportAuditLogResponse> {
 public:
  ExportReactor(grpc::CallbackServerContext* context, const Edge& edge,
                AuditManager* manager, const v1::ExportAuditLogRequest& req)
      : edge_(edge), manager_(manager) {
    call_.method = AUDIT_METHOD(ExportAuditLog);
    call_.now = edge_.clock->Now();
    call_.correlation_id = crypto::HexEncode(edge_.random->Bytes(12));
    absl::Status started = Start(*context, req);
    if (!started.ok()) {
      AuditThenFinish(started);
      return;
    }
    edge_.db->Write(
        [this](sql::Txn& txn) {
          return AppendAuditEvent(txn, call_, absl::OkStatus()).status();
        },
        [this](absl::Status audit) {
          if (!audit.ok()) {
            Finish(ToGrpcStatus(
                Error(absl::StatusCode::kUnavailable, "AUDIT_UNAVAILABLE",
                      "the export could not be audited, so it was not started; "
                      "retry")));
            return;
          }
          // The buffer is non-empty or the export is complete, so this does
          // not read the store on the writer thread.
          WriteNext();
        });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                          "the client stopped reading the export"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Start(grpc::CallbackServerContext& context,
                     const v1::ExportAuditLogRequest& req) {
    call_.unauthenticated = true;  // until the authenticator accepts it
    ASSIGN_OR_RETURN(PeerIdentity peer, PeerOf(context));
    call_.principal.peer = peer.uri;
    call_.principal.actor = peer.uri;
    ASSIGN_OR_RETURN(call_.principal,
                     edge_.authenticator->AuthenticateCall(
                         peer, CredentialsOf(context), call_.now));
    call_.unauthenticated = false;
    if (!edge_.policy->Allows(call_.method, call_.principal.role)) {
      return PermissionDenied(
          "ROLE_NOT_ALLOWED",
          absl::StrCat("the role ", RoleName(call_.principal.role),
                       " may not call ", call_.method));
    }
    ASSIGN_OR_RETURN(std::string tenant, ParseTenant(req.parent(), "parent"));
    RETURN_IF_ERROR(Authorize(edge_, call_, tenant));
    ASSIGN_OR_RETURN(plan_,
                     manager_->PlanExport(call_, tenant, req.start_leaf_index(),
                                          req.end_leaf_index()));
    next_leaf_ = plan_.start;
    for (const CheckpointKey& k : plan_.keys) {
      v1::ExportAuditLogResponse item;
      RETURN_IF_ERROR(ToProto(k, item.mutable_signing_key()));
      buffer_.push_back(std::move(item));
    }
    return Refill();
  }

  // Reads chunks until the buffer holds something or the export is done.
  absl::Status Refill() {
    while (buffer_.empty() && next_leaf_ < plan_.end) {
      ASSIGN_OR_RETURN(
          ExportChunk chunk,
          manager_->ReadExportChunk(plan_, next_leaf_, kExportChunkEvents));
      size_t c = 0;
      for (const AuditEvent& e : chunk.events) {
        v1::ExportAuditLogResponse item;
        ToProto(e, item.mutable_event());
        buffer_.push_back(std::move(item));
        // Each checkpoint right after the event that completes its size.
        while (c < chunk.checkpoints.size() &&
               chunk.checkpoints[c].tree_size <= e.leaf_index + 1) {
          ToProto(chunk.checkpoints[c++],
                  buffer_.emplace_back().mutable_checkpoint());
        }
      }
      // Checkpoints whose last event is missing from storage still go out.
      while (c < chunk.checkpoints.size()) {
        ToProto(chunk.checkpoints[c++],
                buffer_.emplace_back().mutable_checkpoint());
      }
      next_leaf_ = chunk.next;
    }
    return absl::OkStatus();
  }

  void WriteNext() {
    if (absl::Status s = Refill(); !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    if (buffer_.empty()) {
      Finish(grpc::Status::OK);
      return;
    }
    current_ = std::move(buffer_.front());
    buffer_.pop_front();
    StartWrite(&current_);
  }

  // A call refused before streaming: audited, then answered.
  void AuditThenFinish(absl::Status status) {
    edge_.db->Write(
        [this, status](sql::Txn& txn) {
          return AppendAuditEvent(txn, call_, status).status();
        },
        [this, status](absl::Status) { Finish(ToGrpcStatus(status)); });
  }

  const Edge edge_;
  AuditManager* const manager_;
  CallContext call_;
  ExportPlan plan_;
  int64_t next_leaf_ = 0;
  std::deque<v1::ExportAuditLogResponse> buffer_;
  v1::ExportAuditLogResponse current_;
};

}  // namespace

void ToProto(const AuditEvent& e, v1::AuditEvent* out) {
  out->set_name(e.Name());
  out->set_leaf_index(e.leaf_index);
  out->set_tenant(absl::StrCat("tenants/", e.tenant));
  v1::Actor* actor = out->mutable_actor();
  actor->set_name(e.actor);
  actor->set_role(RoleFromName(e.role));
  actor->set_peer_identity(e.peer);
  actor->set_break_glass_grant(e.break_glass_grant);
  out->set_action(ContractAction(e.action));
  out->set_category(static_cast<v1::AuditCategory>(e.category()));
  out->set_resource(e.resource);
  out->set_patient(e.patient);
  out->set_outcome_code(OutcomeCode(e.outcome));
  out->set_outcome_reason(e.outcome_reason);
  ToTimestamp(e.time, out->mutable_time());
  out->set_request_id(e.request_id);
  out->set_correlation_id(e.correlation_id);
  out->set_leaf_data(e.leaf);
  out->set_leaf_hash(e.leaf_hash);
}

void ToProto(const Checkpoint& c, v1::SignedCheckpoint* out) {
  out->set_name(c.Name());
  out->set_tenant(absl::StrCat("tenants/", c.tenant));
  out->set_tree_size(c.tree_size);
  out->set_root_hash(c.root_hash);
  ToTimestamp(c.time, out->mutable_time());
  out->set_key_id(c.key_id);
  out->set_algorithm("Ed25519");
  out->set_format(kCheckpointFormat);
  out->set_payload(c.payload);
  out->set_signature(c.signature);
}

absl::Status ToProto(const CheckpointKey& k, v1::SigningKey* out) {
  out->set_name(absl::StrCat("signingKeys/", k.key_id));
  out->set_key_id(k.key_id);
  out->set_purpose(v1::KEY_PURPOSE_AUDIT_CHECKPOINT);
  out->set_algorithm("Ed25519");
  out->set_public_key(k.public_key);
  ASSIGN_OR_RETURN(std::string pem, crypto::Ed25519PublicKeyPem(k.public_key));
  out->set_public_key_pem(pem);
  out->set_state(k.active ? v1::SIGNING_KEY_STATE_ACTIVE
                          : v1::SIGNING_KEY_STATE_RETIRED);
  ToTimestamp(k.create_time, out->mutable_create_time());
  if (k.retire_time) ToTimestamp(*k.retire_time, out->mutable_retire_time());
  return absl::OkStatus();
}

void AddAuditPolicy(Policy& policy) {
  using R = Role;
  for (const char* method :
       {AUDIT_METHOD(GetAuditEvent), AUDIT_METHOD(ListAuditEvents),
        AUDIT_METHOD(GetCheckpoint), AUDIT_METHOD(ListCheckpoints),
        AUDIT_METHOD(CreateCheckpoint), AUDIT_METHOD(GetInclusionProof),
        AUDIT_METHOD(GetConsistencyProof), AUDIT_METHOD(ExportAuditLog)}) {
    policy.Allow(method, {R::kAuditor, R::kAdmin});
  }
  policy.Allow(AUDIT_METHOD(ListCheckpointKeys),
               {R::kEhrSystem, R::kClinician, R::kPatient, R::kAuditor,
                R::kAdmin, R::kBreakGlass, R::kPortal, R::kSystem});
}

grpc::ServerUnaryReactor* AuditGrpc::GetAuditEvent(
    grpc::CallbackServerContext* ctx, const v1::GetAuditEventRequest* req,
    v1::GetAuditEventResponse* resp) {
  return RunUnary(
      ctx, edge_, AUDIT_METHOD(GetAuditEvent), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(EventName name, ParseEventName(req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name.tenant));
        ASSIGN_OR_RETURN(AuditEvent e, manager_->GetEvent(call, name.tenant,
                                                          name.leaf_index));
        ToProto(e, resp->mutable_event());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditGrpc::ListAuditEvents(
    grpc::CallbackServerContext* ctx, const v1::ListAuditEventsRequest* req,
    v1::ListAuditEventsResponse* resp) {
  return RunUnary(
      ctx, edge_, AUDIT_METHOD(ListAuditEvents), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        EventFilter filter;
        ASSIGN_OR_RETURN(filter.tenant, ParseTenant(req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, filter.tenant));
        if (!req->patient().empty()) {
          RETURN_IF_ERROR(
              ResourceName::Parse("tenants/{tenant}/patients/{patient}",
                                  req->patient(), "patient")
                  .status());
          filter.patient = req->patient();
        }
        RETURN_IF_ERROR(CheckFilterText("actor", req->actor()));
        RETURN_IF_ERROR(CheckFilterText("action", req->action()));
        RETURN_IF_ERROR(CheckFilterText("resource", req->resource()));
        filter.actor = req->actor();
        absl::string_view action = req->action();
        absl::ConsumePrefix(&action, "/");
        filter.action = std::string(action);
        filter.resource = req->resource();
        if (req->category() != v1::AUDIT_CATEGORY_UNSPECIFIED) {
          if (!v1::AuditCategory_IsValid(req->category())) {
            return InvalidField("category", "INVALID_ENUM_VALUE",
                                "category is not an AuditCategory value");
          }
          filter.category = static_cast<Category>(req->category());
        }
        if (req->has_start_time()) {
          ASSIGN_OR_RETURN(filter.start_time,
                           FromTimestamp(req->start_time(), "start_time"));
        }
        if (req->has_end_time()) {
          ASSIGN_OR_RETURN(filter.end_time,
                           FromTimestamp(req->end_time(), "end_time"));
        }
        filter.failures_only = req->failures_only();
        ASSIGN_OR_RETURN(auto page,
                         manager_->ListEvents(call, filter, req->page_size(),
                                              req->page_token()));
        for (const AuditEvent& e : page.items) ToProto(e, resp->add_events());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditGrpc::GetCheckpoint(
    grpc::CallbackServerContext* ctx, const v1::GetCheckpointRequest* req,
    v1::GetCheckpointResponse* resp) {
  return RunUnary(ctx, edge_, AUDIT_METHOD(GetCheckpoint), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(std::string tenant,
                                     ParseTenant(req->parent(), "parent"));
                    RETURN_IF_ERROR(Authorize(edge_, call, tenant));
                    ASSIGN_OR_RETURN(Checkpoint c,
                                     manager_->GetCheckpoint(call, tenant,
                                                             req->tree_size()));
                    ToProto(c, resp->mutable_checkpoint());
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* AuditGrpc::ListCheckpoints(
    grpc::CallbackServerContext* ctx, const v1::ListCheckpointsRequest* req,
    v1::ListCheckpointsResponse* resp) {
  return RunUnary(ctx, edge_, AUDIT_METHOD(ListCheckpoints), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(std::string tenant,
                                     ParseTenant(req->parent(), "parent"));
                    RETURN_IF_ERROR(Authorize(edge_, call, tenant));
                    if (req->min_tree_size() < 0) {
                      return InvalidField("min_tree_size", "INVALID_TREE_SIZE",
                                          "min_tree_size must not be negative");
                    }
                    ASSIGN_OR_RETURN(auto page,
                                     manager_->ListCheckpoints(
                                         call, tenant, req->min_tree_size(),
                                         req->page_size(), req->page_token()));
                    for (const Checkpoint& c : page.items) {
                      ToProto(c, resp->add_checkpoints());
                    }
                    resp->set_next_page_token(page.next_page_token);
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* AuditGrpc::CreateCheckpoint(
    grpc::CallbackServerContext* ctx, const v1::CreateCheckpointRequest* req,
    v1::CreateCheckpointResponse* resp) {
  return RunUnary(ctx, edge_, AUDIT_METHOD(CreateCheckpoint), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(std::string tenant,
                                     ParseTenant(req->parent(), "parent"));
                    RETURN_IF_ERROR(Authorize(edge_, call, tenant));
                    manager_->CreateCheckpoint(
                        call, std::move(tenant),
                        Reply<Checkpoint>(finish, [resp](const Checkpoint& c) {
                          ToProto(c, resp->mutable_checkpoint());
                          return absl::OkStatus();
                        }));
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* AuditGrpc::GetInclusionProof(
    grpc::CallbackServerContext* ctx, const v1::GetInclusionProofRequest* req,
    v1::GetInclusionProofResponse* resp) {
  return RunUnary(
      ctx, edge_, AUDIT_METHOD(GetInclusionProof), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(std::string tenant,
                         ParseTenant(req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, tenant));
        int64_t leaf_index = 0;
        switch (req->leaf_case()) {
          case v1::GetInclusionProofRequest::kEvent: {
            ASSIGN_OR_RETURN(EventName name,
                             ParseEventName(req->event(), "event"));
            if (name.tenant != tenant) {
              return InvalidField("event", "INVALID_NAME",
                                  "event must be an event of parent");
            }
            leaf_index = name.leaf_index;
            break;
          }
          case v1::GetInclusionProofRequest::kLeafIndex:
            leaf_index = req->leaf_index();
            break;
          case v1::GetInclusionProofRequest::LEAF_NOT_SET:
            return InvalidField("leaf_index", "FIELD_REQUIRED",
                                "name the leaf: event or leaf_index");
        }
        ASSIGN_OR_RETURN(InclusionProofResult r,
                         manager_->GetInclusionProof(call, tenant, leaf_index,
                                                     req->tree_size()));
        ToProto(r.event, resp->mutable_event());
        ToProto(r.checkpoint, resp->mutable_checkpoint());
        for (std::string& h : r.audit_path) {
          resp->add_audit_path(std::move(h));
        }
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditGrpc::GetConsistencyProof(
    grpc::CallbackServerContext* ctx, const v1::GetConsistencyProofRequest* req,
    v1::GetConsistencyProofResponse* resp) {
  return RunUnary(
      ctx, edge_, AUDIT_METHOD(GetConsistencyProof), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(std::string tenant,
                         ParseTenant(req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, tenant));
        if (req->second_tree_size() < 0) {
          return InvalidField("second_tree_size", "INVALID_TREE_SIZE",
                              "second_tree_size must not be negative");
        }
        ASSIGN_OR_RETURN(
            ConsistencyProofResult r,
            manager_->GetConsistencyProof(call, tenant, req->first_tree_size(),
                                          req->second_tree_size()));
        resp->set_first_tree_size(r.first_tree_size);
        resp->set_second_tree_size(r.second_tree_size);
        for (std::string& h : r.proof) resp->add_proof(std::move(h));
        if (r.first_checkpoint) {
          ToProto(*r.first_checkpoint, resp->mutable_first_checkpoint());
        }
        if (r.second_checkpoint) {
          ToProto(*r.second_checkpoint, resp->mutable_second_checkpoint());
        }
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditGrpc::ListCheckpointKeys(
    grpc::CallbackServerContext* ctx, const v1::ListCheckpointKeysRequest* req,
    v1::ListCheckpointKeysResponse* resp) {
  return RunUnary(ctx, edge_, AUDIT_METHOD(ListCheckpointKeys), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(auto page, manager_->ListCheckpointKeys(
                                                    call, req->page_size(),
                                                    req->page_token()));
                    for (const CheckpointKey& k : page.items) {
                      RETURN_IF_ERROR(ToProto(k, resp->add_signing_keys()));
                    }
                    resp->set_next_page_token(page.next_page_token);
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerWriteReactor<v1::ExportAuditLogResponse>* AuditGrpc::ExportAuditLog(
    grpc::CallbackServerContext* ctx, const v1::ExportAuditLogRequest* req) {
  return new ExportReactor(ctx, edge_, manager_, *req);
}

}  // namespace careseal::audit
