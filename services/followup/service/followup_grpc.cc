#include "services/followup/service/followup_grpc.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "careseal/v1/messaging.grpc.pb.h"
#include "services/common/crypto/random.h"
#include "services/common/grpc/proto_role.h"
#include "services/common/macros.h"
#include "services/common/platform/idempotency.h"
#include "services/common/platform/resource_name.h"
#include "services/common/status.h"

namespace careseal::followup {
namespace {

#define FOLLOWUP_METHOD(name) "careseal.v1.FollowUpService/" #name

constexpr char kPatientPattern[] = "tenants/{tenant}/patients/{patient}";
constexpr char kCheckInPattern[] =
    "tenants/{tenant}/patients/{patient}/checkIns/{check_in}";
constexpr char kResponsePattern[] =
    "tenants/{tenant}/patients/{patient}/questionnaireResponses/{response}";
constexpr char kEscalationPattern[] =
    "tenants/{tenant}/patients/{patient}/escalations/{escalation}";
constexpr char kSettingsPattern[] = "tenants/{tenant}/followUpSettings";
constexpr char kInstrumentPattern[] = "instruments/{instrument}";

absl::Status Authorize(const Edge& edge, const CallContext& call,
                       const ResourceName& name) {
  return edge.policy->Authorize(call.principal, call.method,
                                Scope{name.Get("tenant"), name.Get("patient")},
                                call.now);
}

// Patients may not use the tenants/{t}/patients/- wildcard.
absl::Status NoWildcardForPatient(const CallContext& call,
                                  const ResourceName& name) {
  if (call.principal.role == Role::kPatient && name.Get("patient") == "-") {
    return ResourceNotFound();
  }
  return absl::OkStatus();
}

void ToProto(const FollowUpActor& a, v1::Actor* out) {
  out->set_name(a.name);
  out->set_role(ToProtoRole(a.role));
  out->set_peer_identity(a.role == Role::kSystem ? "" : a.peer);
}

v1::ResponseFlag ToProtoFlag(ResponseFlag f) {
  switch (f) {
    case ResponseFlag::kPhq9Item9Positive:
      return v1::RESPONSE_FLAG_PHQ9_ITEM9_POSITIVE;
    case ResponseFlag::kCssrsHighRisk:
      return v1::RESPONSE_FLAG_CSSRS_HIGH_RISK;
    case ResponseFlag::kCssrsModerateRisk:
      return v1::RESPONSE_FLAG_CSSRS_MODERATE_RISK;
    case ResponseFlag::kCssrsLowRisk:
      return v1::RESPONSE_FLAG_CSSRS_LOW_RISK;
    case ResponseFlag::kBloodPressureCrisis:
    case ResponseFlag::kBloodPressureHigh:
      return v1::RESPONSE_FLAG_BLOOD_PRESSURE_HIGH;
    case ResponseFlag::kSideEffectSevere:
      return v1::RESPONSE_FLAG_SIDE_EFFECT_SEVERE;
    case ResponseFlag::kHomeSafeNotConfirmed:
      return v1::RESPONSE_FLAG_HOME_SAFE_NOT_CONFIRMED;
  }
  return v1::RESPONSE_FLAG_UNSPECIFIED;
}

v1::ItemType ToProtoItemType(ItemType t) {
  switch (t) {
    case ItemType::kInteger:
      return v1::ITEM_TYPE_INTEGER;
    case ItemType::kChoice:
      return v1::ITEM_TYPE_CHOICE;
    case ItemType::kBoolean:
      return v1::ITEM_TYPE_BOOLEAN;
    case ItemType::kBloodPressure:
      return v1::ITEM_TYPE_BLOOD_PRESSURE;
  }
  return v1::ITEM_TYPE_UNSPECIFIED;
}

std::string InstrumentName(absl::string_view id) {
  return absl::StrCat("instruments/", id);
}

void ToProto(const Instrument& in, v1::Instrument* out) {
  out->set_name(InstrumentName(in.id));
  out->set_version(in.version);
  out->set_display_name(in.display_name);
  out->set_preamble(in.preamble);
  out->set_loinc_panel_code(in.loinc_panel_code);
  out->set_loinc_total_code(in.loinc_total_code);
  for (const InstrumentItem& item : in.items) {
    v1::InstrumentItem* i = out->add_items();
    i->set_id(item.id);
    i->set_text(item.text);
    i->set_type(ToProtoItemType(item.type));
    i->set_required(item.required);
    for (const AnswerOption& o : item.options) {
      v1::AnswerOption* po = i->add_options();
      po->set_value(o.value);
      po->set_text(o.label);
    }
    i->set_min_value(item.min_value);
    i->set_max_value(item.max_value);
    i->set_unit(item.unit);
    i->set_scored(item.scored);
    i->set_loinc_code(item.loinc_code);
    if (item.enable_when) {
      v1::EnableWhen* w = i->mutable_enable_when();
      w->set_item_id(item.enable_when->item_id);
      if (const bool* b = std::get_if<bool>(&item.enable_when->equals)) {
        w->set_bool_value(*b);
      } else {
        w->set_int_value(std::get<int>(item.enable_when->equals));
      }
    }
  }
  out->set_scoring_rule(std::string(ScoringRuleName(in.scoring_rule)));
  out->set_min_score(in.min_score);
  out->set_max_score(in.max_score);
  for (const ScoreBand& b : in.bands) {
    v1::ScoreBand* pb = out->add_bands();
    pb->set_min_score(b.min_score);
    pb->set_max_score(b.max_score);
    pb->set_code(b.code);
    pb->set_display_name(b.display_name);
  }
  for (ResponseFlag f : in.safety_rules) {
    const v1::ResponseFlag pf = ToProtoFlag(f);
    // The contract names the rule by the flag it raises.
    std::string name = v1::ResponseFlag_Name(pf);
    absl::string_view n = name;
    if (absl::ConsumePrefix(&n, "RESPONSE_FLAG_")) name = std::string(n);
    bool seen = false;
    for (const std::string& s : out->safety_rules()) seen |= s == name;
    if (!seen) out->add_safety_rules(name);
  }
  out->set_response_drop_percent(in.response_drop_percent);
  out->set_remission_below(in.remission_below);
  out->set_attribution(in.attribution);
}

void ToProto(const CrisisResources& in, v1::CrisisResources* out) {
  out->set_headline(in.headline);
  for (const CrisisResource& r : in.resources) {
    v1::CrisisResource* pr = out->add_resources();
    pr->set_display_name(r.display_name);
    pr->set_call_number(r.call_number);
    pr->set_text_number(r.text_number);
    pr->set_chat_url(r.chat_url);
    pr->set_note(r.note);
    pr->set_emergency(r.emergency);
  }
}

void ToProto(const AnswerValue& a, v1::Answer* out) {
  out->set_item_id(a.item_id);
  if (const int* i = std::get_if<int>(&a.value)) {
    out->set_int_value(*i);
  } else if (const bool* b = std::get_if<bool>(&a.value)) {
    out->set_bool_value(*b);
  } else {
    const auto& bp = std::get<BloodPressure>(a.value);
    out->mutable_blood_pressure()->set_systolic_mmhg(bp.systolic_mmhg);
    out->mutable_blood_pressure()->set_diastolic_mmhg(bp.diastolic_mmhg);
    out->mutable_blood_pressure()->set_pulse_bpm(bp.pulse_bpm);
  }
}

void ToProto(const StoredResponse& r, v1::QuestionnaireResponse* out) {
  out->set_name(r.Name());
  out->set_instrument(InstrumentName(r.instrument));
  out->set_instrument_version(r.instrument_version);
  out->set_check_in(r.check_in);
  out->set_session(r.session);
  for (const AnswerValue& a : r.answers) ToProto(a, out->add_answers());
  if (r.score) out->set_score(*r.score);
  out->set_band(r.band);
  out->set_band_display_name(r.band_display_name);
  for (ResponseFlag f : r.flags) {
    const v1::ResponseFlag pf = ToProtoFlag(f);
    bool seen = false;
    for (int x : out->flags()) seen |= x == pf;
    if (!seen) out->add_flags(pf);
  }
  for (const std::string& e : r.escalations) out->add_escalations(e);
  ToProto(r.submitted_by, out->mutable_submitted_by());
  ToTimestamp(r.submit_time, out->mutable_submit_time());
}

void ToProto(const Escalation& e, v1::Escalation* out) {
  out->set_name(e.Name());
  out->set_trigger(static_cast<v1::EscalationTrigger>(e.trigger));
  out->set_priority(static_cast<v1::EscalationPriority>(e.priority));
  out->set_source(e.source);
  out->set_state(static_cast<v1::EscalationState>(e.state));
  out->set_level(static_cast<v1::EscalationLevel>(e.level));
  ToTimestamp(e.create_time, out->mutable_create_time());
  if (e.ack_deadline) ToTimestamp(*e.ack_deadline, out->mutable_ack_deadline());
  if (e.reescalate_time) {
    ToTimestamp(*e.reescalate_time, out->mutable_reescalate_time());
  }
  if (e.acknowledge_time) {
    ToTimestamp(*e.acknowledge_time, out->mutable_acknowledge_time());
    ToProto(e.acknowledged_by, out->mutable_acknowledged_by());
  }
  out->set_note(e.note);
  for (const std::string& r : e.recipients) out->add_recipients(r);
  ToTimestamp(e.update_time, out->mutable_update_time());
}

void ToProto(const CheckIn& c, v1::CheckIn* out) {
  out->set_name(c.Name());
  out->set_kind(static_cast<v1::CheckInKind>(c.kind));
  out->set_session(c.session);
  out->set_rule_id(c.rule_id);
  for (const std::string& i : c.instruments) {
    out->add_instruments(InstrumentName(i));
  }
  out->set_state(static_cast<v1::CheckInState>(c.state));
  ToTimestamp(c.due_time, out->mutable_due_time());
  if (c.send_time) ToTimestamp(*c.send_time, out->mutable_send_time());
  ToTimestamp(c.expire_time, out->mutable_expire_time());
  out->set_reminders_sent(c.reminders_sent);
  for (const std::string& r : c.responses) out->add_responses(r);
  out->set_message(c.message);
  out->set_note(c.note);
  ToProto(c.created_by, out->mutable_created_by());
  ToTimestamp(c.create_time, out->mutable_create_time());
}

void ToProto(const OutcomePointData& p, v1::OutcomePoint* out) {
  out->set_response(p.response);
  ToTimestamp(p.time, out->mutable_time());
  out->set_score(p.score);
  out->set_band(p.band);
  out->set_session(p.session);
  out->set_change_from_baseline_percent(
      p.markers.change_from_baseline_percent.value_or(0));
  out->set_response_marker(p.markers.response);
  out->set_remission_marker(p.markers.remission);
}

void ToProto(const TenantSettings& s, absl::string_view tenant,
             v1::FollowUpSettings* out) {
  out->set_name(absl::StrCat("tenants/", tenant, "/followUpSettings"));
  out->mutable_escalation_ack_deadline()->set_seconds(
      absl::ToInt64Seconds(s.escalation_ack_deadline));
  out->set_blood_pressure_systolic_threshold(s.bp_systolic_threshold);
  out->set_blood_pressure_diastolic_threshold(s.bp_diastolic_threshold);
  ToProto(s.crisis_resources, out->mutable_crisis_resources());
  for (const CheckInRule& r : s.rules) {
    v1::CheckInRule* rule = out->add_rules();
    rule->set_id(r.id);
    rule->set_anchor(static_cast<v1::CheckInAnchor>(r.anchor));
    rule->mutable_offset()->set_seconds(absl::ToInt64Seconds(r.offset));
    for (const std::string& i : r.instruments) {
      rule->add_instruments(InstrumentName(i));
    }
    rule->mutable_reminder_after()->set_seconds(
        absl::ToInt64Seconds(r.reminder_after));
    rule->mutable_expire_after()->set_seconds(
        absl::ToInt64Seconds(r.expire_after));
  }
  if (s.update_time) ToTimestamp(*s.update_time, out->mutable_update_time());
}

// instruments/{id} -> id; INVALID_ARGUMENT naming `field`.
absl::StatusOr<std::string> InstrumentId(absl::string_view name,
                                         absl::string_view field) {
  ASSIGN_OR_RETURN(ResourceName n,
                   ResourceName::Parse(kInstrumentPattern, name, field));
  return n.Get("instrument");
}

absl::StatusOr<AnswerValue> FromProto(const v1::Answer& a, size_t index) {
  AnswerValue out;
  out.item_id = a.item_id();
  switch (a.value_case()) {
    case v1::Answer::kIntValue:
      out.value = a.int_value();
      break;
    case v1::Answer::kBoolValue:
      out.value = a.bool_value();
      break;
    case v1::Answer::kBloodPressure:
      out.value = BloodPressure{a.blood_pressure().systolic_mmhg(),
                                a.blood_pressure().diastolic_mmhg(),
                                a.blood_pressure().pulse_bpm()};
      break;
    case v1::Answer::VALUE_NOT_SET:
      return InvalidField(absl::StrCat("answers[", index, "]"),
                          kReasonAnswerTypeMismatch, "the answer has no value");
  }
  return out;
}

// An RFC 4122 (version 4 layout) UUID derived from the caller's request id,
// so that a retried SendCheckIn delivers the same inbox message.
std::string CheckInRequestId(absl::string_view request_id,
                             absl::string_view purpose,
                             crypto::RandomSource& random) {
  if (request_id.empty()) return crypto::NewUuid(random);
  return DerivedRequestId(
      absl::StrCat("followup-check-in:", purpose, ":", request_id));
}

// A MessagingService error as this call's error: absent patients answer like
// absent ones; anything else names the failed delivery.
absl::Status DeliveryError(const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return ResourceNotFound();
  return Error(static_cast<absl::StatusCode>(s.error_code()),
               "INBOX_DELIVERY_FAILED",
               absl::StrCat("delivering the check-in to the inbox failed: ",
                            s.error_message()));
}

// Delivers a check-in to the patient's inbox: a FOLLOW_UP thread and one
// message, through MessagingService over the in-process channel (the caller
// is CareSeal itself, Role::kSystem). Completes on gRPC's callback threads.
class InboxDelivery : public std::enable_shared_from_this<InboxDelivery> {
 public:
  using DoneFn = std::function<void(absl::StatusOr<std::string> message)>;

  InboxDelivery(std::shared_ptr<grpc::Channel> channel, std::string patient,
                std::string text, std::string thread_request_id,
                std::string message_request_id, DoneFn done)
      : stub_(v1::MessagingService::NewStub(channel)),
        patient_(std::move(patient)),
        text_(std::move(text)),
        thread_request_id_(std::move(thread_request_id)),
        message_request_id_(std::move(message_request_id)),
        done_(std::move(done)) {}

  void Start() {
    thread_req_.set_parent(patient_);
    thread_req_.mutable_thread()->set_subject("Check-in from your care team");
    thread_req_.mutable_thread()->set_category(v1::THREAD_CATEGORY_FOLLOW_UP);
    thread_req_.set_request_id(thread_request_id_);
    auto self = shared_from_this();
    stub_->async()->CreateThread(
        &thread_ctx_, &thread_req_, &thread_resp_,
        [self](grpc::Status s) { self->ThreadCreated(std::move(s)); });
  }

 private:
  void ThreadCreated(grpc::Status s) {
    if (!s.ok()) return done_(DeliveryError(s));
    message_req_.set_parent(thread_resp_.thread().name());
    message_req_.set_text(text_);
    message_req_.set_priority(v1::MESSAGE_PRIORITY_ROUTINE);
    message_req_.set_request_id(message_request_id_);
    auto self = shared_from_this();
    stub_->async()->SendMessage(
        &message_ctx_, &message_req_, &message_resp_,
        [self](grpc::Status s) { self->MessageSent(std::move(s)); });
  }

  void MessageSent(grpc::Status s) {
    if (!s.ok()) return done_(DeliveryError(s));
    done_(message_resp_.message().name());
  }

  std::unique_ptr<v1::MessagingService::Stub> stub_;
  const std::string patient_;
  const std::string text_;
  const std::string thread_request_id_;
  const std::string message_request_id_;
  DoneFn done_;
  grpc::ClientContext thread_ctx_;
  v1::CreateThreadRequest thread_req_;
  v1::CreateThreadResponse thread_resp_;
  grpc::ClientContext message_ctx_;
  v1::SendMessageRequest message_req_;
  v1::SendMessageResponse message_resp_;
};

}  // namespace

void AddFollowUpPolicy(Policy& policy) {
  using R = Role;
  const std::initializer_list<Role> every = {
      R::kEhrSystem, R::kClinician,  R::kPatient, R::kAuditor,
      R::kAdmin,     R::kBreakGlass, R::kPortal,  R::kSystem};
  policy.Allow(FOLLOWUP_METHOD(GetInstrument), every);
  policy.Allow(FOLLOWUP_METHOD(ListInstruments), every);
  policy.Allow(FOLLOWUP_METHOD(GetCheckIn),
               {R::kPatient, R::kClinician, R::kEhrSystem, R::kBreakGlass});
  policy.Allow(FOLLOWUP_METHOD(ListCheckIns),
               {R::kPatient, R::kClinician, R::kEhrSystem, R::kBreakGlass});
  policy.Allow(FOLLOWUP_METHOD(GetQuestionnaireResponse),
               {R::kPatient, R::kClinician, R::kEhrSystem, R::kBreakGlass});
  policy.Allow(FOLLOWUP_METHOD(ListQuestionnaireResponses),
               {R::kPatient, R::kClinician, R::kEhrSystem, R::kBreakGlass});
  policy.Allow(FOLLOWUP_METHOD(GetOutcomeSeries),
               {R::kClinician, R::kEhrSystem, R::kBreakGlass, R::kPatient});
  policy.Allow(FOLLOWUP_METHOD(GetEscalation),
               {R::kClinician, R::kBreakGlass, R::kEhrSystem});
  policy.Allow(FOLLOWUP_METHOD(ListEscalations),
               {R::kClinician, R::kBreakGlass, R::kEhrSystem});
  policy.Allow(FOLLOWUP_METHOD(GetFollowUpSettings),
               {R::kAdmin, R::kEhrSystem, R::kClinician});
  policy.Allow(FOLLOWUP_METHOD(UpdateFollowUpSettings), {R::kAdmin});
  policy.Allow(FOLLOWUP_METHOD(SendCheckIn), {R::kClinician, R::kEhrSystem});
  policy.Allow(FOLLOWUP_METHOD(SubmitResponse), {R::kPatient, R::kClinician});
  policy.Allow(FOLLOWUP_METHOD(AcknowledgeEscalation),
               {R::kClinician, R::kBreakGlass});
}

grpc::ServerUnaryReactor* FollowUpGrpc::GetInstrument(
    grpc::CallbackServerContext* ctx, const v1::GetInstrumentRequest* req,
    v1::GetInstrumentResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(GetInstrument), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        call.resource = req->name();
        ASSIGN_OR_RETURN(std::string id, InstrumentId(req->name(), "name"));
        if (req->version() < 0) {
          return InvalidField("version", "INVALID_VERSION",
                              "version must be 0 (current) or positive");
        }
        const Instrument* in = manager_->instruments().Find(id, req->version());
        if (in == nullptr) return ResourceNotFound();
        ToProto(*in, resp->mutable_instrument());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::ListInstruments(
    grpc::CallbackServerContext* ctx, const v1::ListInstrumentsRequest* req,
    v1::ListInstrumentsResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(ListInstruments), *req,
      [this, resp](CallContext& call, const Finisher& finish) {
        call.resource = "instruments";
        // Six built-in instruments: always one page.
        for (const Instrument* in : manager_->instruments().Current()) {
          ToProto(*in, resp->add_instruments());
        }
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::GetCheckIn(
    grpc::CallbackServerContext* ctx, const v1::GetCheckInRequest* req,
    v1::GetCheckInResponse* resp) {
  return RunUnary(ctx, edge_, FOLLOWUP_METHOD(GetCheckIn), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName name,
                                     ResourceName::Parse(kCheckInPattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_, call, name));
                    ASSIGN_OR_RETURN(CheckIn c, manager_->GetCheckIn(
                                                    call, name.Get("tenant"),
                                                    name.Get("patient"),
                                                    name.Get("check_in")));
                    ToProto(c, resp->mutable_check_in());
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* FollowUpGrpc::ListCheckIns(
    grpc::CallbackServerContext* ctx, const v1::ListCheckInsRequest* req,
    v1::ListCheckInsResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(ListCheckIns), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(ResourceName name, ResourceName::ParseWithWildcard(
                                                kPatientPattern, req->parent(),
                                                "parent", "patient"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        RETURN_IF_ERROR(NoWildcardForPatient(call, name));
        if (!v1::CheckInState_IsValid(req->state())) {
          return InvalidField("state", "INVALID_ENUM_VALUE",
                              "state is not a CheckInState value");
        }
        CheckInFilter f;
        f.tenant = name.Get("tenant");
        f.patient = name.Get("patient");
        f.state = req->state();
        f.session = req->session();
        ASSIGN_OR_RETURN(auto page,
                         manager_->ListCheckIns(call, f, req->page_size(),
                                                req->page_token()));
        for (const CheckIn& c : page.items) ToProto(c, resp->add_check_ins());
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::GetQuestionnaireResponse(
    grpc::CallbackServerContext* ctx,
    const v1::GetQuestionnaireResponseRequest* req,
    v1::GetQuestionnaireResponseResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(GetQuestionnaireResponse), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kResponsePattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        ASSIGN_OR_RETURN(
            StoredResponse r,
            manager_->GetResponse(call, name.Get("tenant"), name.Get("patient"),
                                  name.Get("response")));
        ToProto(r, resp->mutable_response());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::ListQuestionnaireResponses(
    grpc::CallbackServerContext* ctx,
    const v1::ListQuestionnaireResponsesRequest* req,
    v1::ListQuestionnaireResponsesResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(ListQuestionnaireResponses), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(ResourceName name, ResourceName::ParseWithWildcard(
                                                kPatientPattern, req->parent(),
                                                "parent", "patient"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        RETURN_IF_ERROR(NoWildcardForPatient(call, name));
        ResponseFilter f;
        f.tenant = name.Get("tenant");
        f.patient = name.Get("patient");
        if (!req->instrument().empty()) {
          ASSIGN_OR_RETURN(f.instrument,
                           InstrumentId(req->instrument(), "instrument"));
        }
        f.flagged_only = req->flagged_only();
        if (req->has_start_time()) {
          ASSIGN_OR_RETURN(f.start_time,
                           FromTimestamp(req->start_time(), "start_time"));
        }
        if (req->has_end_time()) {
          ASSIGN_OR_RETURN(f.end_time,
                           FromTimestamp(req->end_time(), "end_time"));
        }
        ASSIGN_OR_RETURN(auto page,
                         manager_->ListResponses(call, f, req->page_size(),
                                                 req->page_token()));
        for (const StoredResponse& r : page.items) {
          ToProto(r, resp->add_responses());
        }
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::GetOutcomeSeries(
    grpc::CallbackServerContext* ctx, const v1::GetOutcomeSeriesRequest* req,
    v1::GetOutcomeSeriesResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(GetOutcomeSeries), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kPatientPattern, req->patient(), "patient"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        ASSIGN_OR_RETURN(std::string id,
                         InstrumentId(req->instrument(), "instrument"));
        const Instrument* in = manager_->instruments().Find(id);
        if (in == nullptr) return ResourceNotFound();
        if (!in->HasScore()) {
          return InvalidField("instrument", "INSTRUMENT_NOT_SCORED",
                              "the instrument has no score");
        }
        std::optional<absl::Time> start, end;
        if (req->has_start_time()) {
          ASSIGN_OR_RETURN(start,
                           FromTimestamp(req->start_time(), "start_time"));
        }
        if (req->has_end_time()) {
          ASSIGN_OR_RETURN(end, FromTimestamp(req->end_time(), "end_time"));
        }
        ASSIGN_OR_RETURN(
            OutcomeSeries s,
            manager_->GetOutcomeSeries(call, name.Get("tenant"),
                                       name.Get("patient"), *in, start, end));
        resp->set_patient(req->patient());
        resp->set_instrument(InstrumentName(id));
        if (s.baseline) ToProto(*s.baseline, resp->mutable_baseline());
        for (const OutcomePointData& p : s.points) {
          ToProto(p, resp->add_points());
        }
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::GetEscalation(
    grpc::CallbackServerContext* ctx, const v1::GetEscalationRequest* req,
    v1::GetEscalationResponse* resp) {
  return RunUnary(ctx, edge_, FOLLOWUP_METHOD(GetEscalation), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName name,
                                     ResourceName::Parse(kEscalationPattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_, call, name));
                    ASSIGN_OR_RETURN(Escalation e, manager_->GetEscalation(
                                                       call, name.Get("tenant"),
                                                       name.Get("patient"),
                                                       name.Get("escalation")));
                    ToProto(e, resp->mutable_escalation());
                    finish(absl::OkStatus());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* FollowUpGrpc::ListEscalations(
    grpc::CallbackServerContext* ctx, const v1::ListEscalationsRequest* req,
    v1::ListEscalationsResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(ListEscalations), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(ResourceName name, ResourceName::ParseWithWildcard(
                                                kPatientPattern, req->parent(),
                                                "parent", "patient"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        if (!v1::EscalationState_IsValid(req->state())) {
          return InvalidField("state", "INVALID_ENUM_VALUE",
                              "state is not an EscalationState value");
        }
        if (!v1::EscalationLevel_IsValid(req->level())) {
          return InvalidField("level", "INVALID_ENUM_VALUE",
                              "level is not an EscalationLevel value");
        }
        if (!v1::EscalationPriority_IsValid(req->priority())) {
          return InvalidField("priority", "INVALID_ENUM_VALUE",
                              "priority is not an EscalationPriority value");
        }
        EscalationFilter f;
        f.tenant = name.Get("tenant");
        f.patient = name.Get("patient");
        f.state = req->state();
        f.level = req->level();
        f.priority = req->priority();
        ASSIGN_OR_RETURN(auto page,
                         manager_->ListEscalations(call, f, req->page_size(),
                                                   req->page_token()));
        for (const Escalation& e : page.items) {
          ToProto(e, resp->add_escalations());
        }
        resp->set_next_page_token(page.next_page_token);
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::GetFollowUpSettings(
    grpc::CallbackServerContext* ctx, const v1::GetFollowUpSettingsRequest* req,
    v1::GetFollowUpSettingsResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(GetFollowUpSettings), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kSettingsPattern, req->name(), "name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        ASSIGN_OR_RETURN(TenantSettings s,
                         manager_->GetSettings(call, name.Get("tenant")));
        ToProto(s, name.Get("tenant"), resp->mutable_settings());
        finish(absl::OkStatus());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::UpdateFollowUpSettings(
    grpc::CallbackServerContext* ctx,
    const v1::UpdateFollowUpSettingsRequest* req,
    v1::UpdateFollowUpSettingsResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(UpdateFollowUpSettings), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kSettingsPattern, req->settings().name(),
                                "settings.name"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        TenantSettings in;
        std::vector<CheckInRule> rule_list;
        const auto& s = req->settings();
        in.bp_systolic_threshold = s.blood_pressure_systolic_threshold();
        in.bp_diastolic_threshold = s.blood_pressure_diastolic_threshold();
        in.escalation_ack_deadline =
            absl::Seconds(s.escalation_ack_deadline().seconds()) +
            absl::Nanoseconds(s.escalation_ack_deadline().nanos());
        std::vector<std::string> paths(req->update_mask().paths().begin(),
                                       req->update_mask().paths().end());
        for (int i = 0; i < s.rules_size(); ++i) {
          const v1::CheckInRule& r = s.rules(i);
          CheckInRule rule;
          rule.id = r.id();
          rule.anchor = static_cast<CheckInAnchor>(r.anchor());
          rule.offset = absl::Seconds(r.offset().seconds());
          for (int j = 0; j < r.instruments_size(); ++j) {
            auto id = InstrumentId(
                r.instruments(j),
                absl::StrCat("settings.rules[", i, "].instruments[", j, "]"));
            if (!id.ok()) {
              return InvalidField(
                  absl::StrCat("settings.rules[", i, "].instruments[", j, "]"),
                  "UNKNOWN_INSTRUMENT", "instruments must be instruments/{id}");
            }
            rule.instruments.push_back(*id);
          }
          rule.reminder_after = absl::Seconds(r.reminder_after().seconds());
          rule.expire_after = r.has_expire_after()
                                  ? absl::Seconds(r.expire_after().seconds())
                                  : absl::Hours(72);
          rule_list.push_back(std::move(rule));
        }
        in.rules = std::move(rule_list);
        in.crisis_resources.headline = s.crisis_resources().headline();
        in.crisis_resources.resources.clear();
        for (const v1::CrisisResource& r : s.crisis_resources().resources()) {
          in.crisis_resources.resources.push_back(
              {r.display_name(), r.call_number(), r.text_number(), r.chat_url(),
               r.note(), r.emergency()});
        }
        const std::string tenant = name.Get("tenant");
        manager_->UpdateSettings(
            call, tenant, in, std::move(paths),
            [finish, resp, tenant](absl::StatusOr<TenantSettings> r) {
              if (!r.ok()) return finish(r.status());
              ToProto(*r, tenant, resp->mutable_settings());
              finish(absl::OkStatus());
            });
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::SendCheckIn(
    grpc::CallbackServerContext* ctx, const v1::SendCheckInRequest* req,
    v1::SendCheckInResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(SendCheckIn), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kPatientPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        call.tenant = name.Get("tenant");
        call.patient = req->parent();
        call.resource = absl::StrCat(req->parent(), "/checkIns");
        SendCheckInInput in;
        in.tenant = name.Get("tenant");
        in.patient = name.Get("patient");
        for (int i = 0; i < req->instruments_size(); ++i) {
          auto id = InstrumentId(req->instruments(i),
                                 absl::StrCat("instruments[", i, "]"));
          if (!id.ok()) {
            return InvalidField(absl::StrCat("instruments[", i, "]"),
                                "UNKNOWN_INSTRUMENT",
                                "instruments must be instruments/{id}");
          }
          in.instruments.push_back(*id);
        }
        in.session = req->session();
        in.note = req->note();
        if (req->has_expire_time()) {
          ASSIGN_OR_RETURN(in.expire_time,
                           FromTimestamp(req->expire_time(), "expire_time"));
        }
        RETURN_IF_ERROR(manager_->ValidateSendCheckIn(call, in));
        if (!in.session.empty()) {
          ASSIGN_OR_RETURN(
              ResourceName sn,
              ResourceName::Parse(
                  "tenants/{tenant}/patients/{patient}/sessions/{session}",
                  in.session, "session"));
          if (sn.Get("tenant") != in.tenant ||
              sn.Get("patient") != in.patient) {
            return ResourceNotFound();
          }
        }
        ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                         internal_->Get());
        std::string text = "Your care team asks you to answer a check-in:";
        for (const std::string& id : in.instruments) {
          const Instrument* instrument = manager_->instruments().Find(id);
          absl::StrAppend(&text, " ", instrument->display_name, ";");
        }
        text.pop_back();
        text += ".";
        if (!in.note.empty()) absl::StrAppend(&text, "\n\n", in.note);
        // `call` lives until finish() is called (RunUnary's reactor).
        CallContext* callp = &call;
        auto delivery = std::make_shared<InboxDelivery>(
            channel, req->parent(), std::move(text),
            CheckInRequestId(call.request_id, "thread", *edge_.random),
            CheckInRequestId(call.request_id, "message", *edge_.random),
            [this, callp, finish, resp,
             in = std::move(in)](absl::StatusOr<std::string> message) mutable {
              if (!message.ok()) return finish(message.status());
              manager_->StoreSentCheckIn(
                  *callp, std::move(in), *std::move(message),
                  [finish, resp](absl::StatusOr<CheckIn> c) {
                    if (!c.ok()) return finish(c.status());
                    ToProto(*c, resp->mutable_check_in());
                    finish(absl::OkStatus());
                  });
            });
        delivery->Start();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::SubmitResponse(
    grpc::CallbackServerContext* ctx, const v1::SubmitResponseRequest* req,
    v1::SubmitResponseResponse* resp) {
  return RunUnary(
      ctx, edge_, FOLLOWUP_METHOD(SubmitResponse), *req,
      [this, req, resp](CallContext& call, const Finisher& finish) {
        ASSIGN_OR_RETURN(
            ResourceName name,
            ResourceName::Parse(kPatientPattern, req->parent(), "parent"));
        RETURN_IF_ERROR(Authorize(edge_, call, name));
        SubmitInput in;
        in.tenant = name.Get("tenant");
        in.patient = name.Get("patient");
        in.check_in = req->check_in();
        ASSIGN_OR_RETURN(in.instrument,
                         InstrumentId(req->instrument(), "instrument"));
        in.instrument_version = req->instrument_version();
        for (int i = 0; i < req->answers_size(); ++i) {
          ASSIGN_OR_RETURN(AnswerValue a, FromProto(req->answers(i), i));
          in.answers.push_back(std::move(a));
        }
        manager_->SubmitResponse(
            call, std::move(in),
            [finish, resp](absl::StatusOr<SubmitResult> r) {
              if (!r.ok()) return finish(r.status());
              ToProto(r->response, resp->mutable_response());
              for (const Escalation& e : r->escalations) {
                ToProto(e, resp->add_escalations());
              }
              if (r->crisis_resources) {
                ToProto(*r->crisis_resources, resp->mutable_crisis_resources());
              }
              finish(absl::OkStatus());
            });
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FollowUpGrpc::AcknowledgeEscalation(
    grpc::CallbackServerContext* ctx,
    const v1::AcknowledgeEscalationRequest* req,
    v1::AcknowledgeEscalationResponse* resp) {
  return RunUnary(ctx, edge_, FOLLOWUP_METHOD(AcknowledgeEscalation), *req,
                  [this, req, resp](CallContext& call, const Finisher& finish) {
                    ASSIGN_OR_RETURN(ResourceName name,
                                     ResourceName::Parse(kEscalationPattern,
                                                         req->name(), "name"));
                    RETURN_IF_ERROR(Authorize(edge_, call, name));
                    manager_->AcknowledgeEscalation(
                        call, name.Get("tenant"), name.Get("patient"),
                        name.Get("escalation"), req->note(),
                        [finish, resp](absl::StatusOr<Escalation> e) {
                          if (!e.ok()) return finish(e.status());
                          ToProto(*e, resp->mutable_escalation());
                          finish(absl::OkStatus());
                        });
                    return absl::OkStatus();
                  });
}

}  // namespace careseal::followup
