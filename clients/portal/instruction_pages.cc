// Pre-session instructions: the upcoming infusions in the task list, the
// readable checklist (fasting cut-offs, escort, medication holds, what to
// bring) with the attestation form, and AcknowledgeInstructions with the
// patient's token. Refusals are pages that say nothing was saved.
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "clients/portal/portal_impl.h"

namespace careseal::portal {
namespace {

// Scheduled infusions starting within this window are listed.
constexpr absl::Duration kUpcoming = absl::Hours(24 * 7);

struct ContraindicationChoice {
  const char* value;  // form value
  v1::Contraindication code;
  const char* label;
};

constexpr ContraindicationChoice kContraindications[] = {
    {"chest_pain", v1::CONTRAINDICATION_CHEST_PAIN, "Chest pain"},
    {"high_home_blood_pressure", v1::CONTRAINDICATION_HIGH_HOME_BLOOD_PRESSURE,
     "High readings on a home blood-pressure monitor"},
    {"pregnancy", v1::CONTRAINDICATION_PREGNANCY,
     "Pregnant or possibly pregnant"},
    {"recent_substance_use", v1::CONTRAINDICATION_RECENT_SUBSTANCE_USE,
     "Alcohol, cannabis or other drugs in the last 24 hours"},
    {"new_medication", v1::CONTRAINDICATION_NEW_MEDICATION,
     "A new medicine since your last visit"},
    {"acute_illness", v1::CONTRAINDICATION_ACUTE_ILLNESS,
     "Fever, or feeling ill"},
    {"other", v1::CONTRAINDICATION_OTHER, "Something else (tell us below)"},
};

// When the day-of checklist opens: the solids cut-off (answering earlier
// cannot rule out later eating), or 24 h before the start if the template
// has no solids cut-off.
absl::Time ChecklistOpens(const v1::GetInstructionsResponse& got) {
  const absl::Time start = FromProto(got.session().start_time());
  const absl::Time solids = FromProto(got.solids_until_time());
  return solids < start ? solids : start - absl::Hours(24);
}

// "2026-11-24T07:30" (datetime-local) in `tz`.
std::string LocalInput(absl::Time t, absl::TimeZone tz) {
  return absl::FormatTime("%Y-%m-%dT%H:%M", t, tz);
}

bool ParseLocal(absl::string_view text, absl::TimeZone tz, absl::Time* out) {
  std::string err;
  const std::string in(absl::StripAsciiWhitespace(text));
  return absl::ParseTime("%Y-%m-%dT%H:%M", in, tz, out, &err) ||
         absl::ParseTime("%Y-%m-%dT%H:%M:%S", in, tz, out, &err);
}

// Phone numbers as people type them, to E.164: "(555) 555-0123" and
// "555 555 0123" become "+15555550123" (North American numbers, the 988/911
// service area); anything else is passed on for the service to judge.
std::string NormalizePhone(absl::string_view in) {
  std::string digits;
  bool plus = false;
  for (char c : in) {
    if (c == '+' && digits.empty()) plus = true;
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) digits += c;
    if (absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      return std::string(absl::StripAsciiWhitespace(in));
    }
  }
  if (plus) return "+" + digits;
  if (digits.size() == 10) return "+1" + digits;
  if (digits.size() == 11 && digits[0] == '1') return "+" + digits;
  return std::string(absl::StripAsciiWhitespace(in));
}

}  // namespace

absl::Status PortalServer::Impl::ListInstructionTasks(
    const PortalSession& s, std::vector<PortalTask>& out) {
  auto as = AsPatient(s);
  if (!as.ok()) return as.status();
  v1::ListSessionsRequest list;
  list.set_parent(s.patient);
  list.set_state(v1::SESSION_STATE_SCHEDULED);
  *list.mutable_start_time() = ToProto(Now());
  *list.mutable_end_time() = ToProto(Now() + kUpcoming);
  list.set_page_size(20);
  auto sessions_listed = presession->ListSessions(list, *as);
  if (!sessions_listed.ok()) return sessions_listed.status();
  for (const v1::Session& session : sessions_listed->sessions()) {
    auto as_get = AsPatient(s);
    if (!as_get.ok()) return as_get.status();
    v1::GetInstructionsRequest get;
    get.set_session(session.name());
    auto got = presession->GetInstructions(get, *as_get);
    if (!got.ok()) continue;  // e.g. no instructions for this session
    PortalTask t;
    t.kind = TaskKind::kInstructions;
    t.session = session.name();
    t.title = absl::StrCat(
        "Before your infusion on ",
        HumanTime(FromProto(session.start_time()), options.time_zone));
    const v1::Attestation& latest = got->latest_attestation();
    t.acknowledged =
        !latest.name().empty() &&
        latest.content_sha256() == got->instructions().content_sha256();
    t.checklist_done = t.acknowledged && latest.has_checklist() &&
                       FromProto(latest.create_time()) >= ChecklistOpens(*got);
    out.push_back(std::move(t));
  }
  return absl::OkStatus();
}

void PortalServer::Impl::InstructionsPage(const httplib::Request& req,
                                          httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  const int n = TaskIndexOf(req, s, TaskKind::kInstructions);
  if (n < 0) return NoSuchTask(res);
  auto as = AsPatient(s);
  if (!as.ok()) return SessionEnded(res);
  v1::GetInstructionsRequest get;
  get.set_session(s.tasks[n].session);
  auto got = presession->GetInstructions(get, *as);
  if (!got.ok()) return ServiceRefused(res, ctx, got.status());
  if (got->session().state() != v1::SESSION_STATE_SCHEDULED) {
    return Refusal(res, 409, "This infusion is no longer scheduled",
                   "It was cancelled, moved into the past or already took "
                   "place. Nothing was saved. Contact your clinic if you "
                   "have questions.",
                   std::string(kBackToTasks));
  }
  const absl::TimeZone tz = options.time_zone;
  const v1::InstructionTemplateVersion& v = got->instructions();
  const absl::Time start = FromProto(got->session().start_time());
  const absl::Time opens = ChecklistOpens(*got);
  const bool checklist_open = Now() >= opens;
  sessions.Update(ctx.id, [&](PortalSession& live) {
    live.tasks[n].instructions_sha256 = v.content_sha256();
    live.tasks[n].checklist_shown = checklist_open;
  });

  std::string body = absl::StrCat(
      "<h1>", Esc(v.title().empty() ? "Before your infusion" : v.title()),
      "</h1><section aria-labelledby=\"h-when\"><h2 id=\"h-when\">Your "
      "infusion</h2><ul class=\"facts\"><li><strong>When:</strong> ",
      Esc(HumanTime(start, tz)), "</li>");
  if (got->has_arrival_time() && FromProto(got->arrival_time()) < start) {
    absl::StrAppend(&body, "<li><strong>Please arrive by:</strong> ",
                    Esc(HumanTime(FromProto(got->arrival_time()), tz)),
                    "</li>");
  }
  if (!got->session().location().empty()) {
    absl::StrAppend(&body, "<li><strong>Where:</strong> ",
                    Esc(got->session().location()), "</li>");
  }
  absl::StrAppend(&body,
                  "</ul></section><section aria-labelledby=\"h-food\"><h2 "
                  "id=\"h-food\">Eating and drinking</h2><ul "
                  "class=\"checklist\">");
  if (FromProto(got->solids_until_time()) < start) {
    absl::StrAppend(&body, "<li>No solid food after <strong>",
                    Esc(HumanTime(FromProto(got->solids_until_time()), tz)),
                    "</strong>.</li>");
  }
  if (FromProto(got->clear_liquids_until_time()) < start) {
    absl::StrAppend(
        &body,
        "<li>Clear liquids (water, clear juice, black coffee or tea) are "
        "fine until <strong>",
        Esc(HumanTime(FromProto(got->clear_liquids_until_time()), tz)),
        "</strong>; nothing after that.</li>");
  }
  absl::StrAppend(&body, "</ul></section>");
  if (v.escort_required()) {
    absl::StrAppend(
        &body,
        "<section aria-labelledby=\"h-escort\"><h2 id=\"h-escort\">Someone "
        "to take you home</h2><p>An adult must take you home after the "
        "infusion. You must not drive until the next day.</p></section>");
  }
  if (v.medication_holds_size() > 0) {
    absl::StrAppend(&body,
                    "<section aria-labelledby=\"h-meds\"><h2 "
                    "id=\"h-meds\">Your medicines</h2><ul "
                    "class=\"checklist\">");
    for (const auto& hold : v.medication_holds()) {
      absl::StrAppend(&body, "<li>", Esc(hold.text()), "</li>");
    }
    absl::StrAppend(&body, "</ul></section>");
  }
  if (v.what_to_bring_size() > 0) {
    absl::StrAppend(&body,
                    "<section aria-labelledby=\"h-bring\"><h2 "
                    "id=\"h-bring\">What to bring</h2><ul "
                    "class=\"checklist\">");
    for (const auto& item : v.what_to_bring()) {
      absl::StrAppend(&body, "<li>", Esc(item), "</li>");
    }
    absl::StrAppend(&body, "</ul></section>");
  }
  if (!v.body_markdown().empty()) {
    absl::StrAppend(&body, "<article class=\"document\">",
                    RenderMarkdown(v.body_markdown()), "</article>");
  }

  // The attestation form.
  absl::StrAppend(&body, "<form method=\"post\" action=\"/instructions/", n,
                  "/acknowledge\">", CsrfInput(s));
  if (v.discharge_acknowledgements_size() > 0) {
    absl::StrAppend(&body,
                    "<fieldset><legend>Please confirm each "
                    "statement</legend>");
    for (int i = 0; i < v.discharge_acknowledgements_size(); ++i) {
      const auto& a = v.discharge_acknowledgements(i);
      absl::StrAppend(&body, "<div class=\"ack\"><input type=\"checkbox\" ",
                      "id=\"ack-", i, "\" name=\"ack\" value=\"", Esc(a.id()),
                      "\"", a.required() ? " required" : "",
                      "><label for=\"ack-", i, "\">", Esc(a.text()),
                      a.required() ? "" : " (optional)", "</label></div>");
    }
    absl::StrAppend(&body, "</fieldset>");
  }
  if (!checklist_open) {
    absl::StrAppend(
        &body, "<p class=\"notice\">On the day of your infusion, from ",
        Esc(HumanTime(opens, tz)),
        ", please come back to this page to answer a short checklist (when "
        "you last ate and drank, who takes you home, your medicines).</p>"
        "<p><button type=\"submit\">I have read these "
        "instructions</button></p></form>");
  } else {
    const std::string max = LocalInput(Now(), tz);
    absl::StrAppend(
        &body,
        "<fieldset><legend>Today's checklist</legend>"
        "<p><label for=\"last_solid_food\">When did you last eat solid "
        "food?</label><input type=\"datetime-local\" id=\"last_solid_food\" "
        "name=\"last_solid_food\" required max=\"",
        max,
        "\"></p><p><label for=\"last_clear_liquid\">When did you last drink "
        "a clear liquid?</label><input type=\"datetime-local\" "
        "id=\"last_clear_liquid\" name=\"last_clear_liquid\" required "
        "max=\"",
        max, "\"></p>");
    const char* req_escort = v.escort_required() ? " required" : "";
    absl::StrAppend(
        &body, "<fieldset><legend>Who is taking you home?",
        v.escort_required() ? "" : " (optional)",
        "</legend><p><label for=\"escort_name\">Their name</label><input "
        "type=\"text\" id=\"escort_name\" name=\"escort_name\" "
        "maxlength=\"200\" autocomplete=\"off\"",
        req_escort,
        "></p><p><label for=\"escort_phone\">Their phone number</label>"
        "<input type=\"tel\" id=\"escort_phone\" name=\"escort_phone\" "
        "maxlength=\"32\" autocomplete=\"off\"",
        req_escort, "></p></fieldset>");
    absl::StrAppend(
        &body,
        "<fieldset><legend>Did you follow the instructions about your "
        "medicines?</legend>"
        "<div class=\"choice\"><input type=\"radio\" id=\"holds-yes\" "
        "name=\"holds\" value=\"yes\" required><label "
        "for=\"holds-yes\">Yes</label></div>"
        "<div class=\"choice\"><input type=\"radio\" id=\"holds-no\" "
        "name=\"holds\" value=\"no\"><label for=\"holds-no\">No</label></div>"
        "<div class=\"choice\"><input type=\"radio\" id=\"holds-unsure\" "
        "name=\"holds\" value=\"unsure\"><label for=\"holds-unsure\">I am not "
        "sure</label></div></fieldset>");
    absl::StrAppend(&body,
                    "<fieldset><legend>Since your last visit, does any of "
                    "this apply to you? Tick all that apply, or \"None of "
                    "these\".</legend>");
    for (const auto& c : kContraindications) {
      absl::StrAppend(&body, "<div class=\"ack\"><input type=\"checkbox\" ",
                      "id=\"ci-", c.value, "\" name=\"contraindication\" ",
                      "value=\"", c.value, "\"><label for=\"ci-", c.value,
                      "\">", c.label, "</label></div>");
    }
    absl::StrAppend(
        &body,
        "<div class=\"ack\"><input type=\"checkbox\" id=\"ci-none\" "
        "name=\"contraindication\" value=\"none\"><label for=\"ci-none\">None "
        "of these</label></div></fieldset>"
        "<p><label for=\"symptoms_note\">Anything else your care team should "
        "know? (optional)</label><textarea id=\"symptoms_note\" "
        "name=\"symptoms_note\" rows=\"3\" maxlength=\"1000\"></textarea></p>"
        "</fieldset><p><button type=\"submit\">Send my answers</button></p>"
        "</form>");
  }
  absl::StrAppend(&body, kBackToTasks);
  Html(res, 200, v.title().empty() ? "Before your infusion" : v.title(), body,
       &s);
}

void PortalServer::Impl::AcknowledgeInstructions(const httplib::Request& req,
                                                 httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  if (!CsrfOk(req, s)) return CsrfRefused(res);
  const int n = TaskIndexOf(req, s, TaskKind::kInstructions);
  if (n < 0) return NoSuchTask(res);
  const PortalTask& t = s.tasks[n];
  const std::string back = absl::StrCat("<p><a href=\"/instructions/", n,
                                        "\">Back to the instructions</a></p>");
  auto refuse = [&](int status, absl::string_view title,
                    absl::string_view why) {
    Refusal(res, status, title, absl::StrCat(why, " Nothing was saved."), back);
  };
  if (t.instructions_sha256.empty()) {
    return refuse(409, "Please read the instructions first",
                  "Open the instructions and read them before confirming.");
  }
  v1::AcknowledgeInstructionsRequest ack;
  ack.set_session(t.session);
  ack.set_content_sha256(t.instructions_sha256);
  for (size_t i = 0; i < req.get_param_value_count("ack"); ++i) {
    ack.add_acknowledged_ids(req.get_param_value("ack", i));
  }
  const bool with_checklist = req.has_param("last_solid_food") ||
                              req.has_param("last_clear_liquid") ||
                              req.has_param("holds");
  if (with_checklist) {
    const absl::TimeZone tz = options.time_zone;
    v1::PreSessionChecklist* c = ack.mutable_checklist();
    absl::Time food, liquid;
    if (!ParseLocal(req.get_param_value("last_solid_food"), tz, &food)) {
      return refuse(400, "Please check the time you last ate",
                    "Enter the date and time you last ate solid food.");
    }
    if (!ParseLocal(req.get_param_value("last_clear_liquid"), tz, &liquid)) {
      return refuse(400, "Please check the time you last drank",
                    "Enter the date and time you last drank a clear liquid.");
    }
    *c->mutable_last_solid_food_time() = ToProto(food);
    *c->mutable_last_clear_liquid_time() = ToProto(liquid);
    const std::string escort_name(
        absl::StripAsciiWhitespace(req.get_param_value("escort_name")));
    const std::string escort_phone(
        absl::StripAsciiWhitespace(req.get_param_value("escort_phone")));
    if (escort_name.empty() != escort_phone.empty()) {
      return refuse(400, "Please check who is taking you home",
                    "Give both the name and the phone number of the adult "
                    "who takes you home.");
    }
    if (!escort_name.empty()) {
      c->mutable_escort()->set_name(escort_name);
      c->mutable_escort()->set_phone(NormalizePhone(escort_phone));
    }
    const std::string holds = req.get_param_value("holds");
    if (holds == "yes") {
      c->set_medication_holds_followed(v1::MEDICATION_HOLDS_ANSWER_YES);
    } else if (holds == "no") {
      c->set_medication_holds_followed(v1::MEDICATION_HOLDS_ANSWER_NO);
    } else if (holds == "unsure") {
      c->set_medication_holds_followed(v1::MEDICATION_HOLDS_ANSWER_UNSURE);
    } else {
      return refuse(400, "Please answer every question",
                    "Tell us whether you followed the instructions about "
                    "your medicines (yes, no or not sure).");
    }
    bool none = false;
    for (size_t i = 0; i < req.get_param_value_count("contraindication"); ++i) {
      const std::string v = req.get_param_value("contraindication", i);
      if (v == "none") {
        none = true;
        continue;
      }
      bool known = false;
      for (const auto& choice : kContraindications) {
        if (v == choice.value) {
          bool dup = false;
          for (int code : c->contraindications()) dup |= code == choice.code;
          if (!dup) c->add_contraindications(choice.code);
          known = true;
        }
      }
      if (!known) {
        return refuse(400, "Please answer every question",
                      "One of the answers was not understood.");
      }
    }
    if (none == (c->contraindications_size() > 0)) {
      return refuse(400, "Please answer every question",
                    none ? "You ticked \"None of these\" and also something "
                           "that applies: tick only what applies."
                         : "Tick what applies to you since your last visit, "
                           "or \"None of these\".");
    }
    c->set_symptoms_note(std::string(
        absl::StripAsciiWhitespace(req.get_param_value("symptoms_note"))));
  }
  ack.set_request_id(client::NewRequestId());
  auto as = AsPatient(s);
  if (!as.ok()) return SessionEnded(res);
  auto done = presession->AcknowledgeInstructions(ack, *as);
  if (!done.ok()) {
    const std::string reason = client::ErrorReason(done.status());
    if (reason == "DIGEST_MISMATCH") {
      return refuse(409, "The instructions have changed",
                    "Your clinic updated these instructions. Please read "
                    "them again.");
    }
    if (reason == "ACKNOWLEDGEMENT_MISSING" ||
        reason == "UNKNOWN_ACKNOWLEDGEMENT") {
      return refuse(400, "Please confirm each statement",
                    "Tick every statement before sending.");
    }
    if (reason == "TIME_IN_FUTURE") {
      return refuse(400, "A time is in the future",
                    "The times you last ate and drank cannot be later than "
                    "now.");
    }
    if (reason == "TIME_TOO_OLD") {
      return refuse(400, "Please check the times",
                    "The times you last ate and drank must be within the "
                    "last 7 days.");
    }
    if (reason == "ESCORT_REQUIRED") {
      return refuse(400, "Who is taking you home?",
                    "Give the name and phone number of the adult who takes "
                    "you home.");
    }
    if (reason == "INVALID_PHONE") {
      return refuse(400, "Please check the phone number",
                    "Enter the phone number with its area code, for example "
                    "555 555 0123 or +1 555 555 0123.");
    }
    if (reason == "FIELD_TOO_LONG") {
      return refuse(400, "An answer is too long",
                    "Please shorten your note (at most 1000 characters).");
    }
    if (reason == "SESSION_NOT_SCHEDULED") {
      return refuse(409, "This infusion is no longer scheduled",
                    "It was cancelled or already took place.");
    }
    return ServiceRefused(res, ctx, done.status());
  }
  const bool ready =
      done->readiness().state() == v1::READINESS_STATE_READY ||
      done->readiness().state() == v1::READINESS_STATE_OVERRIDDEN;
  sessions.Update(ctx.id, [&](PortalSession& live) {
    PortalTask& lt = live.tasks[n];
    lt.acknowledged = true;
    lt.acknowledged_here = true;
    lt.checklist_done = lt.checklist_done || with_checklist;
    lt.ready = ready;
  });
  res.set_redirect(absl::StrCat("/instructions/", n, "/done"), 303);
}

void PortalServer::Impl::InstructionsDone(const httplib::Request& req,
                                          httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const int n = TaskIndexOf(req, *ctx.session, TaskKind::kInstructions);
  if (n < 0 || !ctx.session->tasks[n].acknowledged_here) {
    return NoSuchTask(res);
  }
  const PortalTask& t = ctx.session->tasks[n];
  std::string message;
  if (!t.checklist_done) {
    message =
        "Thank you for reading your instructions. On the day of your "
        "infusion, please come back to answer the short checklist.";
  } else if (t.ready) {
    message = "Thank you. Your answers are with your care team.";
  } else {
    message =
        "Thank you. Your answers are with your care team. They will look at "
        "them before your infusion and may call you.";
  }
  Html(res, 200, "Thank you",
       absl::StrCat("<h1>Thank you</h1><p role=\"status\">", Esc(message),
                    "</p><p><a href=\"/instructions/", n,
                    "\">See your instructions again</a></p>", kBackToTasks),
       &*ctx.session);
}

}  // namespace careseal::portal
