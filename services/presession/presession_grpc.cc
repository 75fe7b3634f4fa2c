#include "services/presession/presession_grpc.h"

#include <memory>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "careseal/v1/consent.grpc.pb.h"
#include "careseal/v1/identity.grpc.pb.h"
#include "services/common/grpc/proto_role.h"
#include "services/common/macros.h"
#include "services/common/platform/resource_name.h"
#include "services/common/status.h"

namespace careseal::presession {
namespace {

#define PS_METHOD(name) "careseal.v1.PreSessionService/" #name

constexpr char kTenantPattern[] = "tenants/{tenant}";
constexpr char kPatientPattern[] = "tenants/{tenant}/patients/{patient}";
constexpr char kSettingsPattern[] = "tenants/{tenant}/preSessionSettings";
constexpr char kSeriesPattern[] =
    "tenants/{tenant}/patients/{patient}/sessionSeries/{session_series}";
constexpr char kSessionPattern[] =
    "tenants/{tenant}/patients/{patient}/sessions/{session}";
constexpr char kTemplatePattern[] =
    "tenants/{tenant}/instructionTemplates/{instruction_template}";
constexpr char kVersionPattern[] =
    "tenants/{tenant}/instructionTemplates/{instruction_template}/versions/"
    "{version}";

absl::Status Authorize(const Edge& edge, const CallContext& call,
                       const ResourceName& name) {
  return edge.policy->Authorize(call.principal, call.method,
                                Scope{name.Get("tenant"), name.Get("patient")},
                                call.now);
}

template <typename T, typename Convert>
Done<T> Reply(Finisher finish, Convert convert) {
  return [finish = std::move(finish),
          convert = std::move(convert)](absl::StatusOr<T> result) mutable {
    if (!result.ok()) return finish(result.status());
    convert(*result);
    finish(absl::OkStatus());
  };
}

// ------------------------------------------------------------ conversions

void ToProto(const Actor& a, v1::Actor* out) {
  out->set_name(a.name);
  out->set_role(ToProtoRole(a.role));
  out->set_peer_identity(a.role == Role::kSystem ? "" : a.peer);
}

void ToDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t us = absl::ToInt64Microseconds(d);
  out->set_seconds(us / 1'000'000);
  out->set_nanos(static_cast<int32_t>((us % 1'000'000) * 1000));
}

absl::StatusOr<absl::Duration> FromDuration(const google::protobuf::Duration& d,
                                            absl::string_view field) {
  if (d.nanos() <= -1'000'000'000 || d.nanos() >= 1'000'000'000 ||
      (d.seconds() > 0 && d.nanos() < 0) ||
      (d.seconds() < 0 && d.nanos() > 0)) {
    return InvalidField(field, "INVALID_DURATION",
                        absl::StrCat(field, " is not a valid duration"));
  }
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

void ToProto(const Settings& s, v1::PreSessionSettings* out) {
  out->set_name(s.Name());
  for (absl::Duration d : s.delivery.offsets) {
    ToDuration(d, out->add_delivery_offsets());
  }
  ToDuration(s.delivery.reminder_after, out->mutable_reminder_after());
  out->set_max_reminders(s.delivery.max_reminders);
  out->set_default_instruction_template(s.default_template);
  if (s.update_time) ToTimestamp(*s.update_time, out->mutable_update_time());
}

void ToProto(const InstructionTemplate& t, v1::InstructionTemplate* out) {
  out->set_name(t.Name());
  out->set_display_name(t.display_name);
  out->set_latest_version(t.LatestVersionName());
  ToTimestamp(t.create_time, out->mutable_create_time());
  ToTimestamp(t.update_time, out->mutable_update_time());
}

void ToProto(const TemplateVersion& v, v1::InstructionTemplateVersion* out) {
  const InstructionContent& c = v.content;
  out->set_name(v.Name());
  out->set_version_number(v.version);
  out->set_title(c.title);
  out->set_body_markdown(c.body_markdown);
  ToDuration(c.solids_cutoff, out->mutable_solids_cutoff());
  ToDuration(c.clear_liquids_cutoff, out->mutable_clear_liquids_cutoff());
  out->set_escort_required(c.escort_required);
  for (const auto& h : c.medication_holds) {
    auto* o = out->add_medication_holds();
    o->set_id(h.id);
    o->set_text(h.text);
  }
  for (const auto& b : c.what_to_bring) out->add_what_to_bring(b);
  ToDuration(c.arrival_lead, out->mutable_arrival_lead());
  for (const auto& a : c.discharge_acknowledgements) {
    auto* o = out->add_discharge_acknowledgements();
    o->set_id(a.id);
    o->set_text(a.text);
    o->set_required(a.required);
  }
  out->set_canonical_format(kCanonicalFormat);
  out->set_content_sha256(v.content_sha256);
  ToTimestamp(v.publish_time, out->mutable_publish_time());
  ToProto(v.publisher, out->mutable_publisher());
}

absl::StatusOr<InstructionContent> FromProto(
    const v1::InstructionTemplateVersion& v) {
  InstructionContent c;
  c.title = v.title();
  c.body_markdown = v.body_markdown();
  if (v.has_solids_cutoff()) {
    ASSIGN_OR_RETURN(c.solids_cutoff,
                     FromDuration(v.solids_cutoff(), "version.solids_cutoff"));
  }
  if (v.has_clear_liquids_cutoff()) {
    ASSIGN_OR_RETURN(
        c.clear_liquids_cutoff,
        FromDuration(v.clear_liquids_cutoff(), "version.clear_liquids_cutoff"));
  }
  c.escort_required = v.escort_required();
  for (const auto& h : v.medication_holds()) {
    c.medication_holds.push_back({h.id(), h.text()});
  }
  for (const auto& b : v.what_to_bring()) c.what_to_bring.push_back(b);
  if (v.has_arrival_lead()) {
    ASSIGN_OR_RETURN(c.arrival_lead,
                     FromDuration(v.arrival_lead(), "version.arrival_lead"));
  }
  for (const auto& a : v.discharge_acknowledgements()) {
    c.discharge_acknowledgements.push_back({a.id(), a.text(), a.required()});
  }
  return c;
}

void ToProto(const Series& s, v1::SessionSeries* out) {
  out->set_name(s.Name());
  out->set_procedure_code(s.procedure_code);
  out->set_clinician(s.clinician);
  out->set_location(s.location);
  out->set_instruction_template(s.instruction_template);
  out->set_dose_plan_ref(s.dose_plan_ref);
  out->set_state(static_cast<v1::SessionSeriesState>(s.state));
  out->set_session_count(s.session_count);
  ToTimestamp(s.create_time, out->mutable_create_time());
  ToTimestamp(s.update_time, out->mutable_update_time());
}

void ToProto(const Session& s, v1::Session* out) {
  out->set_name(s.Name());
  out->set_series(s.series);
  out->set_procedure_code(s.procedure_code);
  out->set_kind(static_cast<v1::SessionKind>(s.kind));
  out->set_sequence_number(s.sequence_number);
  ToTimestamp(s.start, out->mutable_start_time());
  ToDuration(s.duration, out->mutable_duration());
  out->set_location(s.location);
  out->set_clinician(s.clinician);
  out->set_dose_plan_ref(s.dose_plan_ref);
  out->set_external_id(s.external_id);
  out->set_instruction_template_version(s.template_version);
  out->set_state(static_cast<v1::SessionState>(s.state));
  out->set_readiness(static_cast<v1::ReadinessState>(s.readiness));
  ToTimestamp(s.create_time, out->mutable_create_time());
  ToTimestamp(s.update_time, out->mutable_update_time());
  if (s.cancel_time) ToTimestamp(*s.cancel_time, out->mutable_cancel_time());
  out->set_cancel_reason(s.cancel_reason);
  if (s.end_time) ToTimestamp(*s.end_time, out->mutable_end_time());
}

void ToProto(const InstructionDelivery& d, v1::InstructionDelivery* out) {
  out->set_name(d.name);
  out->set_kind(static_cast<v1::DeliveryKind>(d.kind));
  out->set_template_version(d.template_version);
  ToDuration(d.offset, out->mutable_offset());
  ToTimestamp(d.due, out->mutable_due_time());
  out->set_state(static_cast<v1::DeliveryState>(d.state));
  if (d.deliver_time) ToTimestamp(*d.deliver_time, out->mutable_deliver_time());
  out->set_message(d.message);
  out->set_attempts(d.attempts);
  ToTimestamp(d.create_time, out->mutable_create_time());
}

void ToProto(const Attestation& a, v1::Attestation* out) {
  out->set_name(a.Name());
  out->set_template_version(a.template_version);
  out->set_content_sha256(a.content_sha256);
  for (const auto& id : a.acknowledged_ids) out->add_acknowledged_ids(id);
  if (a.checklist) {
    const Checklist& f = a.checklist->facts;
    auto* c = out->mutable_checklist();
    ToTimestamp(f.last_solid_food, c->mutable_last_solid_food_time());
    ToTimestamp(f.last_clear_liquid, c->mutable_last_clear_liquid_time());
    if (!f.escort_name.empty()) {
      c->mutable_escort()->set_name(f.escort_name);
      c->mutable_escort()->set_phone(f.escort_phone);
    }
    c->set_medication_holds_followed(
        static_cast<v1::MedicationHoldsAnswer>(f.holds_followed));
    for (Contraindication x : f.contraindications) {
      c->add_contraindications(static_cast<v1::Contraindication>(x));
    }
    c->set_symptoms_note(a.checklist->symptoms_note);
  }
  ToProto(a.attested_by, out->mutable_attested_by());
  ToTimestamp(a.create_time, out->mutable_create_time());
}

void ToProto(const SessionReadiness& r, v1::SessionReadiness* out) {
  out->set_session(r.session);
  out->set_state(static_cast<v1::ReadinessState>(r.readiness.state));
  for (const ReadinessIssue& i : r.readiness.issues) {
    auto* o = out->add_issues();
    o->set_reason(static_cast<v1::ReadinessReason>(i.reason));
    o->set_message(i.message);
    if (i.contraindication) {
      o->set_contraindication(
          static_cast<v1::Contraindication>(*i.contraindication));
    }
    o->set_overridden(i.overridden);
  }
  out->set_consent(r.consent);
  out->set_attestation(r.attestation);
  if (r.readiness_override) {
    auto* o = out->mutable_readiness_override();
    ToProto(r.readiness_override->clinician, o->mutable_clinician());
    o->set_reason(r.readiness_override->reason);
    for (ReadinessReason reason : r.readiness_override->reasons) {
      o->add_overridden_reasons(static_cast<v1::ReadinessReason>(reason));
    }
    ToTimestamp(r.readiness_override->create_time, o->mutable_create_time());
  }
  ToTimestamp(r.evaluate_time, out->mutable_evaluate_time());
}

// ------------------------------------------------------------ consent check

absl::Status ConsentUnavailable(absl::string_view why) {
  return Error(absl::StatusCode::kUnavailable, "CONSENT_SERVICE_UNAVAILABLE",
               absl::StrCat("the consent service could not answer (", why,
                            "); readiness is not given without it"));
}

// Asks ConsentService.CheckConsent for the session's procedure at its start,
// over the in-process channel, as CareSeal itself. Completes on gRPC's
// callback threads; fails closed.
class ConsentCheck : public std::enable_shared_from_this<ConsentCheck> {
 public:
  using DoneFn = std::function<void(absl::StatusOr<ConsentAnswer>)>;

  ConsentCheck(std::shared_ptr<grpc::Channel> channel, const Session& s,
               DoneFn done)
      : stub_(v1::ConsentService::NewStub(channel)), done_(std::move(done)) {
    req_.set_patient(s.PatientName());
    req_.set_procedure_code(s.procedure_code);
    ToTimestamp(s.start, req_.mutable_at_time());
  }

  void Start() {
    ctx_.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(10));
    auto self = shared_from_this();
    stub_->async()->CheckConsent(&ctx_, &req_, &resp_, [self](grpc::Status s) {
      self->done_(self->Answer(s));
    });
  }

 private:
  absl::StatusOr<ConsentAnswer> Answer(const grpc::Status& s) {
    ConsentAnswer a;
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
      a.verdict = ConsentVerdict::kMissing;  // no such patient: no consent
      return a;
    }
    if (!s.ok()) return ConsentUnavailable(s.error_message());
    a.consent = resp_.consent();
    if (resp_.valid()) {
      a.verdict = ConsentVerdict::kValid;
      return a;
    }
    switch (resp_.reason()) {
      case v1::CONSENT_CHECK_REASON_EXPIRED:
        a.verdict = ConsentVerdict::kExpired;
        break;
      case v1::CONSENT_CHECK_REASON_WITHDRAWN:
        a.verdict = ConsentVerdict::kWithdrawn;
        break;
      case v1::CONSENT_CHECK_REASON_SUPERSEDED:
        a.verdict = ConsentVerdict::kSuperseded;
        break;
      case v1::CONSENT_CHECK_REASON_PENDING_SIGNATURE:
        a.verdict = ConsentVerdict::kPendingSignature;
        break;
      case v1::CONSENT_CHECK_REASON_NO_CONSENT:
        a.verdict = ConsentVerdict::kMissing;
        break;
      case v1::CONSENT_CHECK_REASON_REJECTED:
        a.verdict = ConsentVerdict::kRejected;
        break;
      default:
        return ConsentUnavailable("an answer without a reason");
    }
    return a;
  }

  std::unique_ptr<v1::ConsentService::Stub> stub_;
  DoneFn done_;
  grpc::ClientContext ctx_;
  v1::CheckConsentRequest req_;
  v1::CheckConsentResponse resp_;
};

// Loads the session, asks for consent, then calls `then` with the answer
// (or finishes with the error). `call` lives until finish() is called.
absl::Status WithConsent(InternalChannel* internal, PreSessionManager* manager,
                         CallContext& call, const ResourceName& name,
                         const Finisher& finish,
                         std::function<void(Session, ConsentAnswer)> then) {
  ASSIGN_OR_RETURN(Session s, manager->SessionForReadiness(
                                  call, name.Get("tenant"), name.Get("patient"),
                                  name.Get("session")));
  auto channel = internal->Get();
  if (!channel.ok()) return ConsentUnavailable("the server is starting");
  auto check = std::make_shared<ConsentCheck>(
      *channel, s,
      [finish, then = std::move(then), s](absl::StatusOr<ConsentAnswer> a) {
        if (!a.ok()) return finish(a.status());
        then(s, *std::move(a));
      });
  check->Start();
  return absl::OkStatus();
}

// Asks IdentityService.GetTenant for the tenant's time zone over the
// in-process channel, as CareSeal itself; completes on gRPC's callback
// threads (TenantZoneFrom).
class TenantZoneLookup : public std::enable_shared_from_this<TenantZoneLookup> {
 public:
  using DoneFn = std::function<void(absl::StatusOr<absl::TimeZone>)>;

  TenantZoneLookup(std::shared_ptr<grpc::Channel> channel,
                   absl::string_view tenant, DoneFn done)
      : stub_(v1::IdentityService::NewStub(channel)), done_(std::move(done)) {
    req_.set_name(absl::StrCat("tenants/", tenant));
  }

  void Start() {
    ctx_.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(10));
    auto self = shared_from_this();
    stub_->async()->GetTenant(&ctx_, &req_, &resp_, [self](grpc::Status s) {
      self->done_(TenantZoneFrom(s, self->resp_));
    });
  }

 private:
  std::unique_ptr<v1::IdentityService::Stub> stub_;
  DoneFn done_;
  grpc::ClientContext ctx_;
  v1::GetTenantRequest req_;
  v1::GetTenantResponse resp_;
};

absl::StatusOr<int> VersionNumber(const ResourceName& n) {
  const std::string& v = n.Get("version");
  if (v == "latest") return 0;
  int out = 0;
  if (!absl::SimpleAtoi(v, &out) || out < 1) return ResourceNotFound();
  return out;
}

}  // namespace

absl::StatusOr<absl::TimeZone> TenantZoneFrom(
    const grpc::Status& status, const v1::GetTenantResponse& resp) {
  if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
      status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return absl::UTCTimeZone();
  }
  if (!status.ok()) {
    return Error(absl::StatusCode::kUnavailable, "IDENTITY_SERVICE_UNAVAILABLE",
                 absl::StrCat("the clinic's time zone could not be looked up: ",
                              status.error_message()));
  }
  absl::TimeZone tz;
  if (resp.tenant().time_zone().empty() ||
      !absl::LoadTimeZone(resp.tenant().time_zone(), &tz)) {
    return absl::UTCTimeZone();
  }
  return tz;
}

void AddPreSessionPolicy(Policy& policy) {
  using R = Role;
  const std::initializer_list<Role> readers = {R::kEhrSystem, R::kClinician,
                                               R::kBreakGlass, R::kPatient};
  const std::initializer_list<Role> template_readers = {
      R::kAdmin, R::kEhrSystem, R::kClinician, R::kBreakGlass};
  policy.Allow(PS_METHOD(GetSessionSeries), readers);
  policy.Allow(PS_METHOD(ListSessionSeries), readers);
  policy.Allow(PS_METHOD(CreateSessionSeries), {R::kEhrSystem, R::kClinician});
  // System: the follow-up scheduler reads session times.
  policy.Allow(
      PS_METHOD(GetSession),
      {R::kEhrSystem, R::kClinician, R::kBreakGlass, R::kPatient, R::kSystem});
  policy.Allow(PS_METHOD(ListSessions), readers);
  policy.Allow(PS_METHOD(CreateSession), {R::kEhrSystem, R::kClinician});
  policy.Allow(PS_METHOD(GetInstructionTemplate), template_readers);
  policy.Allow(PS_METHOD(ListInstructionTemplates), template_readers);
  policy.Allow(PS_METHOD(CreateInstructionTemplate),
               {R::kAdmin, R::kEhrSystem});
  policy.Allow(PS_METHOD(GetInstructionTemplateVersion), template_readers);
  policy.Allow(PS_METHOD(ListInstructionTemplateVersions), template_readers);
  policy.Allow(PS_METHOD(ListInstructionDeliveries), readers);
  policy.Allow(PS_METHOD(GetInstructions), readers);
  policy.Allow(PS_METHOD(ListAttestations), readers);
  policy.Allow(PS_METHOD(GetPreSessionSettings),
               {R::kAdmin, R::kEhrSystem, R::kClinician});
  policy.Allow(PS_METHOD(UpdatePreSessionSettings), {R::kAdmin});
  policy.Allow(PS_METHOD(CancelSessionSeries), {R::kEhrSystem, R::kClinician});
  policy.Allow(PS_METHOD(MoveSession), {R::kEhrSystem, R::kClinician});
  policy.Allow(PS_METHOD(CancelSession), {R::kEhrSystem, R::kClinician});
  policy.Allow(PS_METHOD(CompleteSession), {R::kEhrSystem, R::kClinician});
  policy.Allow(PS_METHOD(PublishInstructionTemplateVersion),
               {R::kAdmin, R::kEhrSystem});
  policy.Allow(PS_METHOD(AcknowledgeInstructions),
               {R::kPatient, R::kClinician});
  policy.Allow(PS_METHOD(CheckSessionReadiness), readers);
  policy.Allow(PS_METHOD(OverrideReadiness), {R::kClinician, R::kBreakGlass});
}

// ------------------------------------------------------------------ series

grpc::ServerUnaryReactor* PreSessionGrpc::GetSessionSeries(
    grpc::CallbackServerContext* ctx, const v1::GetSessionSeriesRequest* req,
    v1::GetSessionSeriesResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(GetSessionSeries), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSeriesPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        ASSIGN_OR_RETURN(Series s, manager_->GetSeries(
                                       call, n.Get("tenant"), n.Get("patient"),
                                       n.Get("session_series")));
        ToProto(s, resp->mutable_session_series());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::ListSessionSeries(
    grpc::CallbackServerContext* ctx, const v1::ListSessionSeriesRequest* req,
    v1::ListSessionSeriesResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(ListSessionSeries), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(ResourceName n, ResourceName::ParseWithWildcard(
                                             kPatientPattern, req->parent(),
                                             "parent", "patient"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        if (!v1::SessionSeriesState_IsValid(req->state())) {
          return InvalidField("state", "INVALID_ENUM_VALUE",
                              "state is not a SessionSeriesState value");
        }
        ASSIGN_OR_RETURN(
            auto page, manager_->ListSeries(
                           call, n.Get("tenant"), n.Get("patient"),
                           req->state(), req->page_size(), req->page_token()));
        for (const Series& s : page.items)
          ToProto(s, resp->add_session_series());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::CreateSessionSeries(
    grpc::CallbackServerContext* ctx, const v1::CreateSessionSeriesRequest* req,
    v1::CreateSessionSeriesResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(CreateSessionSeries), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kPatientPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        SeriesInput in;
        in.tenant = n.Get("tenant");
        in.patient = n.Get("patient");
        const v1::SessionSeries& ss = req->session_series();
        in.series.procedure_code = ss.procedure_code();
        in.series.clinician = ss.clinician();
        in.series.location = ss.location();
        in.series.instruction_template = ss.instruction_template();
        in.series.dose_plan_ref = ss.dose_plan_ref();
        const v1::SessionPlan& p = req->plan();
        for (int i = 0; i < p.start_times_size(); ++i) {
          ASSIGN_OR_RETURN(
              absl::Time t,
              FromTimestamp(p.start_times(i),
                            absl::StrCat("plan.start_times[", i, "]")));
          in.plan.start_times.push_back(t);
        }
        if (p.has_first_start_time()) {
          ASSIGN_OR_RETURN(
              in.plan.first_start_time,
              FromTimestamp(p.first_start_time(), "plan.first_start_time"));
        }
        for (int w : p.induction_sessions_per_week()) {
          in.plan.induction_sessions_per_week.push_back(w);
        }
        in.plan.induction_spacing_days = p.induction_spacing_days();
        in.plan.maintenance_sessions = p.maintenance_sessions();
        in.plan.maintenance_interval_days = p.maintenance_interval_days();
        if (p.has_session_duration()) {
          ASSIGN_OR_RETURN(
              in.session_duration,
              FromDuration(p.session_duration(), "plan.session_duration"));
        }
        auto create = [this, &call, finish, resp](SeriesInput in) {
          manager_->CreateSeries(
              call, std::move(in),
              Reply<SeriesResult>(finish, [resp](const SeriesResult& r) {
                ToProto(r.series, resp->mutable_session_series());
                for (const Session& s : r.sessions) {
                  ToProto(s, resp->add_sessions());
                }
              }));
        };
        if (!p.has_first_start_time()) {  // explicit start times
          create(std::move(in));
          return absl::OkStatus();
        }
        // A pattern counts days in the clinic's time zone.
        ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                         internal_->Get());
        const std::string tenant = in.tenant;
        auto lookup = std::make_shared<TenantZoneLookup>(
            channel, tenant,
            [finish, create,
             in = std::move(in)](absl::StatusOr<absl::TimeZone> zone) mutable {
              if (!zone.ok()) return finish(zone.status());
              in.zone = *zone;
              create(std::move(in));
            });
        lookup->Start();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::CancelSessionSeries(
    grpc::CallbackServerContext* ctx, const v1::CancelSessionSeriesRequest* req,
    v1::CancelSessionSeriesResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(CancelSessionSeries), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSeriesPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        manager_->CancelSeries(
            call, n.Get("tenant"), n.Get("patient"), n.Get("session_series"),
            req->reason(),
            Reply<SeriesResult>(finish, [resp](const SeriesResult& r) {
              ToProto(r.series, resp->mutable_session_series());
              for (const Session& s : r.sessions) {
                ToProto(s, resp->add_cancelled_sessions());
              }
            }));
        return absl::OkStatus();
      });
}

// ---------------------------------------------------------------- sessions

grpc::ServerUnaryReactor* PreSessionGrpc::GetSession(
    grpc::CallbackServerContext* ctx, const v1::GetSessionRequest* req,
    v1::GetSessionResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(GetSession), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSessionPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        ASSIGN_OR_RETURN(Session s, manager_->GetSession(call, n.Get("tenant"),
                                                         n.Get("patient"),
                                                         n.Get("session")));
        ToProto(s, resp->mutable_session());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::ListSessions(
    grpc::CallbackServerContext* ctx, const v1::ListSessionsRequest* req,
    v1::ListSessionsResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(ListSessions), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(ResourceName n, ResourceName::ParseWithWildcard(
                                             kPatientPattern, req->parent(),
                                             "parent", "patient"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        if (!v1::SessionState_IsValid(req->state())) {
          return InvalidField("state", "INVALID_ENUM_VALUE",
                              "state is not a SessionState value");
        }
        SessionFilter f;
        f.tenant = n.Get("tenant");
        f.patient = n.Get("patient");
        f.state = req->state();
        if (!req->series().empty()) {
          ASSIGN_OR_RETURN(
              ResourceName sn,
              ResourceName::Parse(kSeriesPattern, req->series(), "series"));
          if (sn.Get("tenant") != f.tenant ||
              (f.patient != "-" && sn.Get("patient") != f.patient)) {
            return ResourceNotFound();
          }
          f.series = req->series();
        }
        if (req->has_start_time()) {
          ASSIGN_OR_RETURN(f.start_from,
                           FromTimestamp(req->start_time(), "start_time"));
        }
        if (req->has_end_time()) {
          ASSIGN_OR_RETURN(f.start_before,
                           FromTimestamp(req->end_time(), "end_time"));
        }
        ASSIGN_OR_RETURN(auto page,
                         manager_->ListSessions(call, f, req->page_size(),
                                                req->page_token()));
        for (const Session& s : page.items) ToProto(s, resp->add_sessions());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::CreateSession(
    grpc::CallbackServerContext* ctx, const v1::CreateSessionRequest* req,
    v1::CreateSessionResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(CreateSession), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kPatientPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        const v1::Session& s = req->session();
        SessionInput in;
        in.tenant = n.Get("tenant");
        in.patient = n.Get("patient");
        in.series = s.series();
        in.procedure_code = s.procedure_code();
        in.kind = s.kind();
        if (s.has_start_time()) {
          ASSIGN_OR_RETURN(in.start,
                           FromTimestamp(s.start_time(), "session.start_time"));
        }
        if (s.has_duration()) {
          ASSIGN_OR_RETURN(in.duration,
                           FromDuration(s.duration(), "session.duration"));
        }
        in.location = s.location();
        in.clinician = s.clinician();
        in.dose_plan_ref = s.dose_plan_ref();
        in.external_id = s.external_id();
        in.instruction_template = s.instruction_template_version();
        manager_->CreateSession(
            call, std::move(in),
            Reply<Session>(finish, [resp](const Session& s) {
              ToProto(s, resp->mutable_session());
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::MoveSession(
    grpc::CallbackServerContext* ctx, const v1::MoveSessionRequest* req,
    v1::MoveSessionResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(MoveSession), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSessionPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        MoveInput in;
        in.tenant = n.Get("tenant");
        in.patient = n.Get("patient");
        in.session = n.Get("session");
        if (req->has_start_time()) {
          ASSIGN_OR_RETURN(in.start,
                           FromTimestamp(req->start_time(), "start_time"));
        }
        in.location = req->location();
        in.clinician = req->clinician();
        in.reason = req->reason();
        manager_->MoveSession(call, std::move(in),
                              Reply<Session>(finish, [resp](const Session& s) {
                                ToProto(s, resp->mutable_session());
                              }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::CancelSession(
    grpc::CallbackServerContext* ctx, const v1::CancelSessionRequest* req,
    v1::CancelSessionResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(CancelSession), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSessionPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        manager_->CancelSession(
            call, n.Get("tenant"), n.Get("patient"), n.Get("session"),
            req->reason(), Reply<Session>(finish, [resp](const Session& s) {
              ToProto(s, resp->mutable_session());
            }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::CompleteSession(
    grpc::CallbackServerContext* ctx, const v1::CompleteSessionRequest* req,
    v1::CompleteSessionResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(CompleteSession), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSessionPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        std::optional<absl::Time> end;
        if (req->has_end_time()) {
          ASSIGN_OR_RETURN(end, FromTimestamp(req->end_time(), "end_time"));
        }
        manager_->CompleteSession(
            call, n.Get("tenant"), n.Get("patient"), n.Get("session"), end,
            Reply<Session>(finish, [resp](const Session& s) {
              ToProto(s, resp->mutable_session());
            }));
        return absl::OkStatus();
      });
}

// --------------------------------------------------------------- templates

grpc::ServerUnaryReactor* PreSessionGrpc::GetInstructionTemplate(
    grpc::CallbackServerContext* ctx,
    const v1::GetInstructionTemplateRequest* req,
    v1::GetInstructionTemplateResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(GetInstructionTemplate), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kTemplatePattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        ASSIGN_OR_RETURN(InstructionTemplate t,
                         manager_->GetTemplate(call, n.Get("tenant"),
                                               n.Get("instruction_template")));
        ToProto(t, resp->mutable_instruction_template());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::ListInstructionTemplates(
    grpc::CallbackServerContext* ctx,
    const v1::ListInstructionTemplatesRequest* req,
    v1::ListInstructionTemplatesResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(ListInstructionTemplates), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        ASSIGN_OR_RETURN(auto page, manager_->ListTemplates(
                                        call, n.Get("tenant"), req->page_size(),
                                        req->page_token()));
        for (const auto& t : page.items) {
          ToProto(t, resp->add_instruction_templates());
        }
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::CreateInstructionTemplate(
    grpc::CallbackServerContext* ctx,
    const v1::CreateInstructionTemplateRequest* req,
    v1::CreateInstructionTemplateResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(CreateInstructionTemplate), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kTenantPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        manager_->CreateTemplate(
            call, n.Get("tenant"), req->instruction_template_id(),
            req->instruction_template().display_name(),
            Reply<InstructionTemplate>(
                finish, [resp](const InstructionTemplate& t) {
                  ToProto(t, resp->mutable_instruction_template());
                }));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::GetInstructionTemplateVersion(
    grpc::CallbackServerContext* ctx,
    const v1::GetInstructionTemplateVersionRequest* req,
    v1::GetInstructionTemplateVersionResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(GetInstructionTemplateVersion), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kVersionPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        ASSIGN_OR_RETURN(int version, VersionNumber(n));
        ASSIGN_OR_RETURN(
            TemplateVersion v,
            manager_->GetVersion(call, n.Get("tenant"),
                                 n.Get("instruction_template"), version));
        ToProto(v, resp->mutable_version());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::ListInstructionTemplateVersions(
    grpc::CallbackServerContext* ctx,
    const v1::ListInstructionTemplateVersionsRequest* req,
    v1::ListInstructionTemplateVersionsResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(ListInstructionTemplateVersions), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kTemplatePattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        ASSIGN_OR_RETURN(
            auto page, manager_->ListVersions(
                           call, n.Get("tenant"), n.Get("instruction_template"),
                           req->page_size(), req->page_token()));
        for (const auto& v : page.items) ToProto(v, resp->add_versions());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::PublishInstructionTemplateVersion(
    grpc::CallbackServerContext* ctx,
    const v1::PublishInstructionTemplateVersionRequest* req,
    v1::PublishInstructionTemplateVersionResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(PublishInstructionTemplateVersion), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kTemplatePattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        ASSIGN_OR_RETURN(InstructionContent content, FromProto(req->version()));
        manager_->PublishVersion(
            call, n.Get("tenant"), n.Get("instruction_template"),
            std::move(content),
            Reply<TemplateVersion>(finish, [resp](const TemplateVersion& v) {
              ToProto(v, resp->mutable_version());
            }));
        return absl::OkStatus();
      });
}

// ---------------------------------------------------------------- settings

grpc::ServerUnaryReactor* PreSessionGrpc::GetPreSessionSettings(
    grpc::CallbackServerContext* ctx,
    const v1::GetPreSessionSettingsRequest* req,
    v1::GetPreSessionSettingsResponse* resp) {
  return RunUnary(ctx, edge_, PS_METHOD(GetPreSessionSettings), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName n,
                                     ResourceName::Parse(kSettingsPattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_, call, n));
                    ASSIGN_OR_RETURN(Settings s, manager_->GetSettings(
                                                     call, n.Get("tenant")));
                    ToProto(s, resp->mutable_settings());
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* PreSessionGrpc::UpdatePreSessionSettings(
    grpc::CallbackServerContext* ctx,
    const v1::UpdatePreSessionSettingsRequest* req,
    v1::UpdatePreSessionSettingsResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(UpdatePreSessionSettings), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSettingsPattern, req->settings().name(),
                                "settings.name"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        SettingsUpdate in;
        in.tenant = n.Get("tenant");
        const v1::PreSessionSettings& s = req->settings();
        for (const std::string& p : req->update_mask().paths()) {
          in.paths.insert(p);
        }
        in.settings.delivery.offsets.clear();
        for (int i = 0; i < s.delivery_offsets_size(); ++i) {
          ASSIGN_OR_RETURN(
              absl::Duration d,
              FromDuration(s.delivery_offsets(i),
                           absl::StrCat("settings.delivery_offsets[", i, "]")));
          in.settings.delivery.offsets.push_back(d);
        }
        ASSIGN_OR_RETURN(
            in.settings.delivery.reminder_after,
            FromDuration(s.reminder_after(), "settings.reminder_after"));
        in.settings.delivery.max_reminders = s.max_reminders();
        in.settings.default_template = s.default_instruction_template();
        manager_->UpdateSettings(
            call, std::move(in),
            Reply<Settings>(finish, [resp](const Settings& s) {
              ToProto(s, resp->mutable_settings());
            }));
        return absl::OkStatus();
      });
}

// ---------------------------------------- deliveries, instructions, attest

grpc::ServerUnaryReactor* PreSessionGrpc::ListInstructionDeliveries(
    grpc::CallbackServerContext* ctx,
    const v1::ListInstructionDeliveriesRequest* req,
    v1::ListInstructionDeliveriesResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(ListInstructionDeliveries), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(ResourceName n, ResourceName::ParseWithWildcard(
                                             kSessionPattern, req->parent(),
                                             "parent", "session"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        if (!v1::DeliveryState_IsValid(req->state())) {
          return InvalidField("state", "INVALID_ENUM_VALUE",
                              "state is not a DeliveryState value");
        }
        DeliveryFilter f{n.Get("tenant"), n.Get("patient"), n.Get("session"),
                         req->state()};
        ASSIGN_OR_RETURN(auto page,
                         manager_->ListDeliveries(call, f, req->page_size(),
                                                  req->page_token()));
        for (const auto& d : page.items) ToProto(d, resp->add_deliveries());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::GetInstructions(
    grpc::CallbackServerContext* ctx, const v1::GetInstructionsRequest* req,
    v1::GetInstructionsResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(GetInstructions), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSessionPattern, req->session(), "session"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        ASSIGN_OR_RETURN(
            InstructionsView v,
            manager_->GetInstructions(call, n.Get("tenant"), n.Get("patient"),
                                      n.Get("session")));
        ToProto(v.session, resp->mutable_session());
        ToProto(v.version, resp->mutable_instructions());
        const InstructionContent& c = v.version.content;
        ToTimestamp(v.session.start - c.solids_cutoff,
                    resp->mutable_solids_until_time());
        ToTimestamp(v.session.start - c.clear_liquids_cutoff,
                    resp->mutable_clear_liquids_until_time());
        ToTimestamp(v.session.start - c.arrival_lead,
                    resp->mutable_arrival_time());
        if (v.latest_attestation) {
          ToProto(*v.latest_attestation, resp->mutable_latest_attestation());
        }
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::ListAttestations(
    grpc::CallbackServerContext* ctx, const v1::ListAttestationsRequest* req,
    v1::ListAttestationsResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(ListAttestations), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSessionPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        ASSIGN_OR_RETURN(auto page, manager_->ListAttestations(
                                        call, n.Get("tenant"), n.Get("patient"),
                                        n.Get("session"), req->page_size(),
                                        req->page_token()));
        for (const auto& a : page.items) ToProto(a, resp->add_attestations());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::AcknowledgeInstructions(
    grpc::CallbackServerContext* ctx,
    const v1::AcknowledgeInstructionsRequest* req,
    v1::AcknowledgeInstructionsResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(AcknowledgeInstructions), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSessionPattern, req->session(), "session"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        AcknowledgeInput in;
        in.tenant = n.Get("tenant");
        in.patient = n.Get("patient");
        in.session = n.Get("session");
        in.content_sha256 = req->content_sha256();
        for (const auto& id : req->acknowledged_ids()) {
          in.acknowledged_ids.push_back(id);
        }
        if (req->has_checklist()) {
          const v1::PreSessionChecklist& c = req->checklist();
          ChecklistAnswers a;
          if (c.has_last_solid_food_time()) {
            ASSIGN_OR_RETURN(a.facts.last_solid_food,
                             FromTimestamp(c.last_solid_food_time(),
                                           "checklist.last_solid_food_time"));
          }
          if (c.has_last_clear_liquid_time()) {
            ASSIGN_OR_RETURN(a.facts.last_clear_liquid,
                             FromTimestamp(c.last_clear_liquid_time(),
                                           "checklist.last_clear_liquid_time"));
          }
          in.escort_given = c.has_escort();
          a.facts.escort_name = c.escort().name();
          a.facts.escort_phone = c.escort().phone();
          in.holds_answer = c.medication_holds_followed();
          if (in.holds_answer >= 1 && in.holds_answer <= 3) {
            a.facts.holds_followed = static_cast<HoldsAnswer>(in.holds_answer);
          }
          for (int x : c.contraindications()) {
            in.contraindication_values.push_back(x);
            if (x >= 1 && x <= 7) {
              a.facts.contraindications.push_back(
                  static_cast<Contraindication>(x));
            }
          }
          a.symptoms_note = c.symptoms_note();
          in.checklist = std::move(a);
        }
        RETURN_IF_ERROR(PreSessionManager::ValidateAcknowledge(in, call.now));
        CallContext* callp = &call;
        PreSessionManager* manager = manager_;
        return WithConsent(
            internal_, manager_, call, n, finish,
            [callp, manager, finish, resp, in = std::move(in)](
                Session, ConsentAnswer consent) mutable {
              manager->Acknowledge(
                  *callp, std::move(in), std::move(consent),
                  Reply<AcknowledgeResult>(
                      finish, [resp](const AcknowledgeResult& r) {
                        ToProto(r.attestation, resp->mutable_attestation());
                        ToProto(r.readiness, resp->mutable_readiness());
                      }));
            });
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::CheckSessionReadiness(
    grpc::CallbackServerContext* ctx,
    const v1::CheckSessionReadinessRequest* req,
    v1::CheckSessionReadinessResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(CheckSessionReadiness), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSessionPattern, req->session(), "session"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        CallContext* callp = &call;
        PreSessionManager* manager = manager_;
        return WithConsent(
            internal_, manager_, call, n, finish,
            [callp, manager, finish, resp](Session s, ConsentAnswer consent) {
              manager->CheckReadiness(
                  *callp, s.tenant, s.patient, s.id, std::move(consent),
                  Reply<SessionReadiness>(
                      finish, [resp](const SessionReadiness& r) {
                        ToProto(r, resp->mutable_readiness());
                      }));
            });
      });
}

grpc::ServerUnaryReactor* PreSessionGrpc::OverrideReadiness(
    grpc::CallbackServerContext* ctx, const v1::OverrideReadinessRequest* req,
    v1::OverrideReadinessResponse* resp) {
  return RunUnary(
      ctx, edge_, PS_METHOD(OverrideReadiness), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName n,
            ResourceName::Parse(kSessionPattern, req->session(), "session"));
        RETURN_IF_ERROR(Authorize(edge_, call, n));
        OverrideInput in;
        in.tenant = n.Get("tenant");
        in.patient = n.Get("patient");
        in.session = n.Get("session");
        in.reason = req->reason();
        for (int i = 0; i < req->reasons_size(); ++i) {
          const int r = req->reasons(i);
          if (r < 1 || r > 16) {
            return InvalidField(absl::StrCat("reasons[", i, "]"),
                                "INVALID_ENUM_VALUE",
                                "not a ReadinessReason value");
          }
          in.reasons.push_back(static_cast<ReadinessReason>(r));
        }
        if (in.reasons.empty()) {
          return InvalidField("reasons", "FIELD_REQUIRED",
                              "name the failing reasons to override");
        }
        CallContext* callp = &call;
        PreSessionManager* manager = manager_;
        return WithConsent(internal_, manager_, call, n, finish,
                           [callp, manager, finish, resp, in = std::move(in)](
                               Session, ConsentAnswer consent) mutable {
                             manager->OverrideReadiness(
                                 *callp, std::move(in), std::move(consent),
                                 Reply<SessionReadiness>(
                                     finish, [resp](const SessionReadiness& r) {
                                       ToProto(r, resp->mutable_readiness());
                                     }));
                           });
      });
}

}  // namespace careseal::presession
