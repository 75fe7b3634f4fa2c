#include "services/followup/messaging/events_manager.h"

#include <arpa/inet.h>

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/common/macros.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/pagination.h"
#include "services/common/platform/policy.h"
#include "services/common/platform/resource_name.h"
#include "services/common/status.h"
#include "services/followup/messaging/sql_messaging_store.h"

namespace careseal::messaging {
namespace {

void Touch(CallContext& call, absl::string_view tenant,
           absl::string_view resource, absl::string_view patient_id = "") {
  call.tenant = std::string(tenant);
  call.resource = std::string(resource);
  if (!patient_id.empty()) call.patient = PatientName(tenant, patient_id);
}

absl::Status Audit(sql::Txn& txn, CallContext& call) {
  ASSIGN_OR_RETURN(call.audit_leaf_index,
                   AppendAuditEvent(txn, call, absl::OkStatus()));
  call.audited = true;
  return absl::OkStatus();
}

std::string WebhookName(absl::string_view tenant, absl::string_view id) {
  return absl::StrCat("tenants/", tenant, "/webhooks/", id);
}

std::string SecretAd(const std::string& name) {
  return absl::StrCat("webhook-secret:", name);
}

absl::Status ValidateTypes(absl::string_view field,
                           const std::vector<int>& types) {
  for (int t : types) {
    if (!events::IsValidEventType(t)) {
      return InvalidField(field, "INVALID_ENUM_VALUE",
                          absl::StrCat(field,
                                       " holds a value that is not an "
                                       "EventType"));
    }
  }
  return absl::OkStatus();
}

// Loopback, private, link-local, unspecified, and other non-public literals.
bool IsPrivateAddress(absl::string_view host) {
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  unsigned char v4[4];
  if (inet_pton(AF_INET, h.c_str(), v4) == 1) {
    return v4[0] == 0 || v4[0] == 10 || v4[0] == 127 ||
           (v4[0] == 169 && v4[1] == 254) ||
           (v4[0] == 172 && (v4[1] & 0xF0) == 16) ||
           (v4[0] == 192 && v4[1] == 168) ||
           (v4[0] == 100 && (v4[1] & 0xC0) == 64);
  }
  unsigned char v6[16];
  if (inet_pton(AF_INET6, h.c_str(), v6) == 1) {
    static const unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char kAny[16] = {};
    const bool mapped_v4 =
        std::all_of(v6, v6 + 10, [](unsigned char c) { return c == 0; }) &&
        v6[10] == 0xFF && v6[11] == 0xFF;
    return std::equal(v6, v6 + 16, kLoopback) ||
           std::equal(v6, v6 + 16, kAny) || (v6[0] & 0xFE) == 0xFC ||
           (v6[0] == 0xFE && (v6[1] & 0xC0) == 0x80) || mapped_v4;
  }
  const std::string lower = absl::AsciiStrToLower(h);
  return lower == "localhost" || absl::EndsWith(lower, ".localhost") ||
         absl::EndsWith(lower, ".local") || absl::EndsWith(lower, ".internal");
}

absl::StatusOr<Webhook> FromRow(const WebhookRow& row) {
  Webhook w;
  w.tenant = row.tenant;
  w.id = row.id;
  w.url = row.url;
  for (absl::string_view part :
       absl::StrSplit(row.event_types, ',', absl::SkipEmpty())) {
    int v = 0;
    if (!absl::SimpleAtoi(part, &v) || !events::IsValidEventType(v)) {
      return Internal("WEBHOOK_CORRUPT", "a stored webhook is corrupt");
    }
    w.event_types.push_back(static_cast<events::EventType>(v));
  }
  w.state = static_cast<WebhookState>(row.state);
  w.create_time = row.create_time;
  w.delivered_cursor = row.delivered_cursor;
  w.last_delivery_time = row.last_delivery_time;
  w.last_error_http_status = row.last_error_http_status;
  return w;
}

}  // namespace

std::string Webhook::Name() const { return WebhookName(tenant, id); }

absl::Status ValidateWebhook(const WebhookInput& in, bool allow_private) {
  constexpr char kUrl[] = "webhook.url";
  if (in.url.empty()) {
    return InvalidField(kUrl, "FIELD_REQUIRED", "webhook.url is required");
  }
  if (in.url.size() > kMaxWebhookUrlBytes) {
    return InvalidField(kUrl, "FIELD_TOO_LONG",
                        "webhook.url is limited to 2048 bytes");
  }
  for (char c : in.url) {
    if (static_cast<unsigned char>(c) <= 0x20 ||
        static_cast<unsigned char>(c) >= 0x7F) {
      return InvalidField(kUrl, "INVALID_URL",
                          "webhook.url must be an absolute URL without "
                          "spaces or control characters");
    }
  }
  absl::string_view rest = in.url;
  const size_t scheme_end = rest.find("://");
  if (scheme_end == absl::string_view::npos || scheme_end == 0) {
    return InvalidField(kUrl, "INVALID_URL",
                        "webhook.url must be an absolute https URL");
  }
  if (absl::AsciiStrToLower(rest.substr(0, scheme_end)) != "https") {
    return InvalidField(kUrl, "URL_NOT_ALLOWED",
                        "webhooks are delivered over https only");
  }
  rest.remove_prefix(scheme_end + 3);
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != absl::string_view::npos) {
    return InvalidField(kUrl, "URL_NOT_ALLOWED",
                        "webhook.url must not carry credentials; "
                        "authenticate deliveries with the signature");
  }
  absl::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) {
      return InvalidField(kUrl, "INVALID_URL", "webhook.url has a bad host");
    }
    host = host.substr(0, close + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (host.empty()) {
    return InvalidField(kUrl, "INVALID_URL", "webhook.url has no host");
  }
  if (!allow_private && IsPrivateAddress(host)) {
    return InvalidField(kUrl, "URL_NOT_ALLOWED",
                        "webhook.url points to a loopback or private "
                        "address");
  }
  if (in.secret.size() < kMinWebhookSecret) {
    return InvalidField("webhook.secret", "SECRET_TOO_SHORT",
                        "webhook.secret must be at least 32 random bytes");
  }
  if (in.secret.size() > kMaxWebhookSecret) {
    return InvalidField("webhook.secret", "FIELD_TOO_LONG",
                        "webhook.secret is limited to 256 bytes");
  }
  return ValidateTypes("webhook.event_types", in.event_types);
}

absl::Status EventsManager::Migrate(sql::Database& db) {
  return MessagingManager::Migrate(db);
}

absl::StatusOr<events::EventQuery> EventsManager::QueryFor(
    const EventFilter& filter, int64_t after) const {
  RETURN_IF_ERROR(ValidateTypes("types", filter.types));
  events::EventQuery q;
  q.tenant = filter.tenant;
  q.after = after;
  for (int t : filter.types)
    q.types.push_back(static_cast<events::EventType>(t));
  if (!filter.patient.empty()) {
    q.patient = PatientName(filter.tenant, filter.patient);
  }
  return q;
}

absl::StatusOr<Page<events::EventRecord>> EventsManager::ListEvents(
    CallContext& call, const EventFilter& filter, int64_t after, int page_size,
    absl::string_view page_token) {
  Touch(call, filter.tenant, absl::StrCat("tenants/", filter.tenant, "/events"),
        filter.patient);
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  ASSIGN_OR_RETURN(events::EventQuery q, QueryFor(filter, after));
  const std::string filter_key =
      absl::StrCat("events|", filter.tenant, "|", after, "|",
                   absl::StrJoin(filter.types, ","), "|", filter.patient);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor token,
                   DecodePageToken(page_token, filter_key, &first));
  if (!first) q.after = token.key;
  q.limit = limit;
  Page<events::EventRecord> page;
  events::EventBatch batch;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    if (first) {
      RETURN_IF_ERROR(events::CheckResumeCursor(txn, filter.tenant, after,
                                                /*zero_is_oldest=*/true,
                                                "after_cursor"));
    }
    ASSIGN_OR_RETURN(batch, events::ReadEvents(txn, q));
    return absl::OkStatus();
  }));
  page.items = std::move(batch.events);
  if (batch.more) {
    page.next_page_token =
        EncodePageToken({batch.scanned_through, ""}, filter_key);
  }
  return page;
}

absl::StatusOr<int64_t> EventsManager::ResolveWatchStart(
    CallContext& call, const EventFilter& filter,
    std::optional<int64_t> after) {
  Touch(call, filter.tenant, absl::StrCat("tenants/", filter.tenant, "/events"),
        filter.patient);
  RETURN_IF_ERROR(QueryFor(filter, 0).status());
  int64_t start = 0;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    if (after) {
      RETURN_IF_ERROR(events::CheckResumeCursor(txn, filter.tenant, *after,
                                                /*zero_is_oldest=*/true,
                                                "after_cursor"));
      start = *after;
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(start, events::HeadCursor(txn, filter.tenant));
    return absl::OkStatus();
  }));
  return start;
}

absl::StatusOr<events::EventBatch> EventsManager::ReadForWatch(
    const events::EventQuery& q) {
  events::EventBatch batch;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(batch, events::ReadEvents(txn, q));
    return absl::OkStatus();
  }));
  return batch;
}

void EventsManager::CreateWebhook(CallContext& call, WebhookInput in,
                                  Done<Webhook> done) {
  Touch(call, in.tenant, absl::StrCat("tenants/", in.tenant, "/webhooks"));
  absl::Status valid =
      ValidateWebhook(in, deps_.options.allow_private_webhook_urls);
  if (!valid.ok()) return done(valid);
  auto result =
      std::make_shared<absl::StatusOr<Webhook>>(Internal("NOT_RUN", "not run"));
  deps_.db->Write(
      [this, &call, in = std::move(in), result](sql::Txn& txn) -> absl::Status {
        *result = [&]() -> absl::StatusOr<Webhook> {
          SqlWebhookStore store;
          ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
          if (prior) {
            ASSIGN_OR_RETURN(
                ResourceName n,
                ResourceName::Parse("tenants/{tenant}/webhooks/{webhook}",
                                    *prior, "name"));
            ASSIGN_OR_RETURN(WebhookRow row,
                             store.Get(txn, in.tenant, n.Get("webhook")));
            call.resource = *prior;
            RETURN_IF_ERROR(Audit(txn, call));
            return FromRow(row);
          }
          ASSIGN_OR_RETURN(int64_t count, store.Count(txn, in.tenant));
          if (count >= kMaxWebhooksPerTenant) {
            return Error(absl::StatusCode::kResourceExhausted,
                         "TOO_MANY_WEBHOOKS",
                         "a tenant has at most 10 webhooks; delete one first");
          }
          WebhookRow row;
          row.tenant = in.tenant;
          row.id = crypto::NewOpaqueId(*deps_.random);
          row.url = in.url;
          row.event_types = absl::StrJoin(in.event_types, ",");
          row.state = static_cast<int>(WebhookState::kActive);
          row.create_time = call.now;
          ASSIGN_OR_RETURN(row.delivered_cursor,
                           events::HeadCursor(txn, in.tenant));
          const std::string name = WebhookName(in.tenant, row.id);
          ASSIGN_OR_RETURN(
              row.secret_sealed,
              deps_.sealer->Seal(txn, in.tenant, in.secret, SecretAd(name)));
          call.resource = name;
          RETURN_IF_ERROR(store.Insert(txn, row));
          RETURN_IF_ERROR(RememberIdempotentResult(txn, call, name));
          RETURN_IF_ERROR(Audit(txn, call));
          return FromRow(row);
        }();
        return result->status();
      },
      [result, done = std::move(done)](absl::Status status) mutable {
        if (!status.ok()) return done(status);
        done(std::move(*result));
      });
}

absl::StatusOr<Webhook> EventsManager::GetWebhook(CallContext& call,
                                                  absl::string_view tenant,
                                                  absl::string_view id) {
  Touch(call, tenant, WebhookName(tenant, id));
  absl::StatusOr<Webhook> out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        WebhookRow row,
        SqlWebhookStore().Get(txn, std::string(tenant), std::string(id)));
    out = FromRow(row);
    return out.status();
  }));
  return out;
}

absl::StatusOr<Page<Webhook>> EventsManager::ListWebhooks(
    CallContext& call, absl::string_view tenant, int page_size,
    absl::string_view page_token) {
  Touch(call, tenant, absl::StrCat("tenants/", tenant, "/webhooks"));
  ASSIGN_OR_RETURN(int limit, NormalizePageSize(page_size));
  const std::string filter_key = absl::StrCat("webhooks|", tenant);
  bool first = false;
  ASSIGN_OR_RETURN(PageCursor after,
                   DecodePageToken(page_token, filter_key, &first));
  Page<Webhook> page;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, SqlWebhookStore().List(
                                    txn, std::string(tenant),
                                    first ? "" : after.tiebreak, limit + 1));
    for (const WebhookRow& row : rows) {
      ASSIGN_OR_RETURN(Webhook w, FromRow(row));
      page.items.push_back(std::move(w));
    }
    return absl::OkStatus();
  }));
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.resize(limit);
    page.next_page_token =
        EncodePageToken({0, page.items.back().id}, filter_key);
  }
  return page;
}

void EventsManager::DeleteWebhook(CallContext& call, std::string tenant,
                                  std::string id, Done<bool> done) {
  Touch(call, tenant, WebhookName(tenant, id));
  auto result =
      std::make_shared<absl::StatusOr<bool>>(Internal("NOT_RUN", "not run"));
  deps_.db->Write(
      [&call, tenant = std::move(tenant), id = std::move(id),
       result](sql::Txn& txn) -> absl::Status {
        *result = [&]() -> absl::StatusOr<bool> {
          ASSIGN_OR_RETURN(auto prior, FindIdempotentResult(txn, call));
          if (!prior) {
            ASSIGN_OR_RETURN(int64_t n,
                             SqlWebhookStore().Delete(txn, tenant, id));
            if (n == 0) return ResourceNotFound();
            RETURN_IF_ERROR(
                RememberIdempotentResult(txn, call, WebhookName(tenant, id)));
          }
          RETURN_IF_ERROR(Audit(txn, call));
          return true;
        }();
        return result->status();
      },
      [result, done = std::move(done)](absl::Status status) mutable {
        if (!status.ok()) return done(status);
        done(std::move(*result));
      });
}

absl::StatusOr<std::string> EventsManager::WebhookSecret(
    absl::string_view tenant, absl::string_view id) {
  absl::StatusOr<std::string> out;
  RETURN_IF_ERROR(deps_.db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(
        WebhookRow row,
        SqlWebhookStore().Get(txn, std::string(tenant), std::string(id)));
    out = deps_.sealer->Open(txn, tenant, row.secret_sealed,
                             SecretAd(WebhookName(tenant, id)));
    return out.status();
  }));
  return out;
}

}  // namespace careseal::messaging
