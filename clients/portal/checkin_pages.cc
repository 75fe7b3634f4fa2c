// Follow-up check-ins: pending check-ins in the task list, then one
// question per screen. Answers stay in the portal session; each instrument
// is submitted (SubmitResponse, with the patient's token) when its last
// screen is answered. An answer that by itself calls for crisis resources
// (PHQ-9 item 9 > 0, any "yes" of the C-SSRS screener) shows them on the very
// next screen, before the rest of the questionnaire; when every required
// item of that instrument is already answered (PHQ-9 item 9: only the
// optional, unscored difficulty question is left) the instrument is
// submitted at once, so the escalation reaches the care team even if the
// patient stops here, and the crisis page shows the resources the service
// returned.
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "clients/portal/portal_impl.h"

namespace careseal::portal {
namespace {

// Crisis resources shown before the service has answered (CLINICAL.md;
// the same as the service's defaults). The service's own, tenant-configured
// resources replace them once a response is submitted.
v1::CrisisResources BuiltInCrisisResources() {
  v1::CrisisResources out;
  out.set_headline("You are not alone. Help is available now.");
  v1::CrisisResource* lifeline = out.add_resources();
  lifeline->set_display_name("988 Suicide & Crisis Lifeline");
  lifeline->set_call_number("988");
  lifeline->set_text_number("988");
  lifeline->set_chat_url("https://988lifeline.org/chat");
  lifeline->set_note("Veterans: press 1");
  v1::CrisisResource* emergency = out.add_resources();
  emergency->set_display_name("Emergency services");
  emergency->set_call_number("911");
  emergency->set_note("If you are in immediate danger, call 911.");
  emergency->set_emergency(true);
  return out;
}

struct Step {
  int instrument;
  int item;
};

std::vector<Step> AllSteps(const CheckInProgress& p) {
  std::vector<Step> out;
  for (size_t i = 0; i < p.instruments.size(); ++i) {
    for (int j = 0; j < p.instruments[i].items_size(); ++j) {
      out.push_back({static_cast<int>(i), j});
    }
  }
  return out;
}

bool Enabled(const CheckInProgress& p, int i, const v1::InstrumentItem& item) {
  if (!item.has_enable_when() || item.enable_when().item_id().empty()) {
    return true;
  }
  const v1::EnableWhen& when = item.enable_when();
  auto it = p.answers[i].find(when.item_id());
  if (it == p.answers[i].end()) return false;
  if (when.answer_case() == v1::EnableWhen::kBoolValue) {
    return it->second.value_case() == v1::Answer::kBoolValue &&
           it->second.bool_value() == when.bool_value();
  }
  return it->second.value_case() == v1::Answer::kIntValue &&
         it->second.int_value() == when.int_value();
}

// The first enabled step after `from` (-1: from the start) of an instrument
// not yet submitted; -1 at the end.
int NextStep(const CheckInProgress& p, int from) {
  const std::vector<Step> steps = AllSteps(p);
  for (int k = from + 1; k < static_cast<int>(steps.size()); ++k) {
    const Step& st = steps[k];
    if (p.submitted[st.instrument] || p.due[st.instrument]) continue;
    if (Enabled(p, st.instrument,
                p.instruments[st.instrument].items(st.item))) {
      return k;
    }
  }
  return -1;
}

// The enabled step before `k` in the same instrument, or -1.
int PreviousStep(const CheckInProgress& p, int k) {
  const std::vector<Step> steps = AllSteps(p);
  for (int j = k - 1; j >= 0; --j) {
    if (steps[j].instrument != steps[k].instrument) return -1;
    if (Enabled(p, steps[j].instrument,
                p.instruments[steps[j].instrument].items(steps[j].item))) {
      return j;
    }
  }
  return -1;
}

// True if no enabled item of instrument `i` comes after step `k`.
bool LastOfInstrument(const CheckInProgress& p, int k) {
  const std::vector<Step> steps = AllSteps(p);
  const int i = steps[k].instrument;
  for (int j = k + 1; j < static_cast<int>(steps.size()); ++j) {
    if (steps[j].instrument != i) break;
    if (Enabled(p, i, p.instruments[i].items(steps[j].item))) return false;
  }
  return true;
}

// Every required, enabled item of instrument `i` answered.
bool RequiredAnswered(const CheckInProgress& p, int i) {
  for (const v1::InstrumentItem& item : p.instruments[i].items()) {
    if (item.required() && Enabled(p, i, item) &&
        p.answers[i].count(item.id()) == 0) {
      return false;
    }
  }
  return true;
}

// An answer that calls for crisis resources by itself.
bool CrisisAnswer(const v1::Instrument& instrument,
                  const v1::InstrumentItem& item, const v1::Answer& answer) {
  for (const std::string& rule : instrument.safety_rules()) {
    if (rule == "PHQ9_ITEM9_POSITIVE" && item.id() == "phq9_9" &&
        answer.value_case() == v1::Answer::kIntValue &&
        answer.int_value() > 0) {
      return true;
    }
    if (absl::StartsWith(rule, "CSSRS_") &&
        answer.value_case() == v1::Answer::kBoolValue && answer.bool_value()) {
      return true;
    }
  }
  return false;
}

std::string CrisisHtml(const v1::CrisisResources& crisis) {
  std::string out = "<ul class=\"crisis-list\">";
  for (const v1::CrisisResource& r : crisis.resources()) {
    absl::StrAppend(&out, "<li><strong>", Esc(r.display_name()),
                    "</strong><ul>");
    if (!r.call_number().empty()) {
      absl::StrAppend(&out,
                      "<li><a class=\"call\" href=\"tel:", Esc(r.call_number()),
                      "\">Call ", Esc(r.call_number()), "</a></li>");
    }
    if (!r.text_number().empty()) {
      absl::StrAppend(&out, "<li><a href=\"sms:", Esc(r.text_number()),
                      "\">Text ", Esc(r.text_number()), "</a></li>");
    }
    if (absl::StartsWith(r.chat_url(), "https://")) {
      absl::StrAppend(&out, "<li><a href=\"", Esc(r.chat_url()),
                      "\" rel=\"noopener\">Chat online at ",
                      Esc(absl::StripPrefix(r.chat_url(), "https://")),
                      "</a></li>");
    }
    if (!r.note().empty()) {
      absl::StrAppend(&out, "<li>", Esc(r.note()), "</li>");
    }
    absl::StrAppend(&out, "</ul></li>");
  }
  absl::StrAppend(&out, "</ul>");
  return out;
}

int StepOf(const httplib::Request& req) {
  int k = -1;
  if (!absl::SimpleAtoi(req.matches[2].str(), &k)) return -1;
  return k;
}

}  // namespace

absl::Status PortalServer::Impl::ListCheckInTasks(
    const PortalSession& s, std::vector<PortalTask>& out) {
  auto as = AsPatient(s);
  if (!as.ok()) return as.status();
  v1::ListCheckInsRequest list;
  list.set_parent(s.patient);
  list.set_state(v1::CHECK_IN_STATE_SENT);
  list.set_page_size(20);
  auto listed = followup->ListCheckIns(list, *as);
  if (!listed.ok()) return listed.status();
  for (const v1::CheckIn& c : listed->check_ins()) {
    std::vector<std::string> names;
    for (const std::string& instrument : c.instruments()) {
      auto as_get = AsPatient(s);
      if (!as_get.ok()) return as_get.status();
      v1::GetInstrumentRequest get;
      get.set_name(instrument);
      auto got = followup->GetInstrument(get, *as_get);
      names.push_back(got.ok() ? got->instrument().display_name()
                               : "a questionnaire");
    }
    PortalTask t;
    t.kind = TaskKind::kCheckIn;
    t.check_in = c.name();
    t.note = c.note();
    t.title = absl::StrJoin(names, ", ");
    out.push_back(std::move(t));
  }
  return absl::OkStatus();
}

void PortalServer::Impl::CheckInStart(const httplib::Request& req,
                                      httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  const int n = TaskIndexOf(req, s, TaskKind::kCheckIn);
  if (n < 0) return NoSuchTask(res);
  const PortalTask& t = s.tasks[n];
  if (t.completed_here) {
    return res.set_redirect(absl::StrCat("/checkin/", n, "/done"), 303);
  }
  CheckInProgress p;
  if (t.progress) {
    p = *t.progress;
  } else {
    auto as = AsPatient(s);
    if (!as.ok()) return SessionEnded(res);
    v1::GetCheckInRequest get;
    get.set_name(t.check_in);
    auto check_in = followup->GetCheckIn(get, *as);
    if (!check_in.ok()) return ServiceRefused(res, ctx, check_in.status());
    if (check_in->check_in().state() != v1::CHECK_IN_STATE_SENT) {
      return Refusal(res, 409, "This check-in is closed",
                     "It was already answered, or it expired or was "
                     "cancelled. Nothing was saved.",
                     std::string(kBackToTasks));
    }
    for (const std::string& name : check_in->check_in().instruments()) {
      auto as_get = AsPatient(s);
      if (!as_get.ok()) return SessionEnded(res);
      v1::GetInstrumentRequest gi;
      gi.set_name(name);
      auto instrument = followup->GetInstrument(gi, *as_get);
      if (!instrument.ok()) {
        return ServiceRefused(res, ctx, instrument.status());
      }
      p.instruments.push_back(instrument->instrument());
    }
    const size_t count = p.instruments.size();
    p.answers.resize(count);
    p.submitted.assign(count, false);
    p.due.assign(count, false);
    p.request_ids.resize(count);
    for (std::string& id : p.request_ids) id = client::NewRequestId();
    sessions.Update(ctx.id, [&](PortalSession& live) {
      if (!live.tasks[n].progress) live.tasks[n].progress = p;
    });
  }
  const int first = NextStep(p, -1);
  if (first < 0) {
    return res.set_redirect(absl::StrCat("/checkin/", n, "/done"), 303);
  }
  std::string list;
  int questions = 0;
  for (const v1::Instrument& instrument : p.instruments) {
    absl::StrAppend(&list, "<li>", Esc(instrument.display_name()), "</li>");
    questions += instrument.items_size();
  }
  Html(res, 200, "Check-in",
       absl::StrCat(
           "<h1>Check-in</h1>",
           t.note.empty()
               ? std::string()
               : absl::StrCat("<p class=\"notice\">", EscLines(t.note), "</p>"),
           "<p>Your care team asks you to answer ", p.instruments.size(),
           p.instruments.size() == 1 ? " short questionnaire"
                                     : " short questionnaires",
           " (about ", questions, " questions, one per screen):</p><ul>", list,
           "</ul><p>If you need help now, call or text 988. In an emergency "
           "call 911.</p><p><a class=\"button\" href=\"/checkin/",
           n, "/q/", first, "\">Start</a></p>", kBackToTasks),
       &s);
}

void PortalServer::Impl::CheckInQuestion(const httplib::Request& req,
                                         httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  const int n = TaskIndexOf(req, s, TaskKind::kCheckIn);
  if (n < 0) return NoSuchTask(res);
  const PortalTask& t = s.tasks[n];
  if (!t.progress) {
    return res.set_redirect(absl::StrCat("/checkin/", n), 303);
  }
  const CheckInProgress& p = *t.progress;
  const std::vector<Step> steps = AllSteps(p);
  const int k = StepOf(req);
  if (k < 0 || k >= static_cast<int>(steps.size()) ||
      p.submitted[steps[k].instrument] || p.due[steps[k].instrument] ||
      !Enabled(p, steps[k].instrument,
               p.instruments[steps[k].instrument].items(steps[k].item))) {
    const int next = NextStep(p, -1);
    return res.set_redirect(next < 0
                                ? absl::StrCat("/checkin/", n, "/done")
                                : absl::StrCat("/checkin/", n, "/q/", next),
                            303);
  }
  RenderQuestion(res, s, n, k, "", 200);
}

void PortalServer::Impl::RenderQuestion(httplib::Response& res,
                                        const PortalSession& s, int n, int k,
                                        absl::string_view error, int status) {
  const CheckInProgress& p = *s.tasks[n].progress;
  const std::vector<Step> steps = AllSteps(p);
  const v1::Instrument& instrument = p.instruments[steps[k].instrument];
  const v1::InstrumentItem& item = instrument.items(steps[k].item);
  const auto& answers = p.answers[steps[k].instrument];
  auto previous = answers.find(item.id());
  const v1::Answer* had =
      previous == answers.end() ? nullptr : &previous->second;
  const char* required = item.required() ? " required" : "";
  std::string inputs;
  switch (item.type()) {
    case v1::ITEM_TYPE_CHOICE:
      for (int o = 0; o < item.options_size(); ++o) {
        const v1::AnswerOption& option = item.options(o);
        const bool on = had != nullptr &&
                        had->value_case() == v1::Answer::kIntValue &&
                        had->int_value() == option.value();
        absl::StrAppend(&inputs,
                        "<div class=\"choice\"><input type=\"radio\" "
                        "id=\"a-",
                        o, "\" name=\"answer\" value=\"", option.value(), "\"",
                        on ? " checked" : "", o == 0 ? required : "",
                        "><label for=\"a-", o, "\">", Esc(option.text()),
                        "</label></div>");
      }
      break;
    case v1::ITEM_TYPE_BOOLEAN:
      for (bool yes : {true, false}) {
        const bool on = had != nullptr &&
                        had->value_case() == v1::Answer::kBoolValue &&
                        had->bool_value() == yes;
        absl::StrAppend(
            &inputs, "<div class=\"choice\"><input type=\"radio\" id=\"a-",
            yes ? "yes" : "no", "\" name=\"answer\" value=\"",
            yes ? "yes" : "no", "\"", on ? " checked" : "", yes ? required : "",
            "><label for=\"a-", yes ? "yes" : "no", "\">", yes ? "Yes" : "No",
            "</label></div>");
      }
      break;
    case v1::ITEM_TYPE_INTEGER:
      absl::StrAppend(
          &inputs, "<p><label for=\"answer\">Your answer",
          item.unit().empty() ? "" : absl::StrCat(" (", Esc(item.unit()), ")"),
          "</label><input type=\"number\" id=\"answer\" name=\"answer\" "
          "inputmode=\"numeric\" min=\"",
          item.min_value(), "\" max=\"", item.max_value(), "\"",
          had != nullptr ? absl::StrCat(" value=\"", had->int_value(), "\"")
                         : "",
          required, "></p>");
      break;
    case v1::ITEM_TYPE_BLOOD_PRESSURE: {
      const v1::BloodPressure bp =
          had != nullptr ? had->blood_pressure() : v1::BloodPressure();
      auto value = [&](int v) {
        return had != nullptr && v > 0 ? absl::StrCat(" value=\"", v, "\"")
                                       : std::string();
      };
      absl::StrAppend(
          &inputs,
          "<p><label for=\"systolic\">Systolic (the top number), "
          "mmHg</label><input type=\"number\" id=\"systolic\" "
          "name=\"systolic\" inputmode=\"numeric\" min=\"50\" max=\"300\"",
          value(bp.systolic_mmhg()), required,
          "></p><p><label for=\"diastolic\">Diastolic (the bottom number), "
          "mmHg</label><input type=\"number\" id=\"diastolic\" "
          "name=\"diastolic\" inputmode=\"numeric\" min=\"30\" max=\"200\"",
          value(bp.diastolic_mmhg()), required,
          "></p><p><label for=\"pulse\">Pulse, beats per minute "
          "(optional)</label><input type=\"number\" id=\"pulse\" "
          "name=\"pulse\" inputmode=\"numeric\" min=\"20\" max=\"250\"",
          value(bp.pulse_bpm()), "></p>");
      break;
    }
    default:
      break;
  }
  // Position within the instrument.
  int position = 0, total = 0;
  for (int j = 0; j < instrument.items_size(); ++j) {
    if (!Enabled(p, steps[k].instrument, instrument.items(j))) continue;
    ++total;
    if (j <= steps[k].item) ++position;
  }
  const int back = PreviousStep(p, k);
  std::string err;
  if (!error.empty()) {
    err =
        absl::StrCat("<p class=\"error\" role=\"alert\">", Esc(error), "</p>");
  }
  Html(res, status, instrument.display_name(),
       absl::StrCat(
           "<p class=\"progress\">", Esc(instrument.display_name()),
           " · Question ", position, " of ", total, "</p>",
           instrument.preamble().empty()
               ? std::string()
               : absl::StrCat("<p class=\"preamble\">",
                              Esc(instrument.preamble()), "</p>"),
           err, "<form method=\"post\" action=\"/checkin/", n, "/q/", k, "\">",
           CsrfInput(s), "<fieldset><legend><h1 class=\"question\">",
           EscLines(item.text()), "</h1></legend>", inputs,
           item.required() ? "" : "<p>This question is optional.</p>",
           "</fieldset><p class=\"actions\"><button type=\"submit\">",
           LastOfInstrument(p, k) ? "Send answers" : "Next", "</button>",
           back >= 0 ? absl::StrCat(" <a href=\"/checkin/", n, "/q/", back,
                                    "\">Back</a>")
                     : std::string(),
           "</p></form><p>If you need help now, call or text 988. In an "
           "emergency call 911.</p>",
           instrument.attribution().empty()
               ? std::string()
               : absl::StrCat("<p class=\"attribution\">",
                              Esc(instrument.attribution()), "</p>")),
       &s);
}

void PortalServer::Impl::CheckInAnswer(const httplib::Request& req,
                                       httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  if (!CsrfOk(req, s)) return CsrfRefused(res);
  const int n = TaskIndexOf(req, s, TaskKind::kCheckIn);
  if (n < 0 || !s.tasks[n].progress) return NoSuchTask(res);
  const CheckInProgress& p = *s.tasks[n].progress;
  const std::vector<Step> steps = AllSteps(p);
  const int k = StepOf(req);
  if (k < 0 || k >= static_cast<int>(steps.size()) ||
      p.submitted[steps[k].instrument] || p.due[steps[k].instrument]) {
    return res.set_redirect(absl::StrCat("/checkin/", n), 303);
  }
  const int i = steps[k].instrument;
  const v1::Instrument& instrument = p.instruments[i];
  const v1::InstrumentItem& item = instrument.items(steps[k].item);

  // Parse and check the answer against the definition.
  std::optional<v1::Answer> answer;
  const std::string raw(
      absl::StripAsciiWhitespace(req.get_param_value("answer")));
  std::string problem;
  switch (item.type()) {
    case v1::ITEM_TYPE_CHOICE:
    case v1::ITEM_TYPE_INTEGER: {
      if (raw.empty()) break;
      int v = 0;
      bool ok = absl::SimpleAtoi(raw, &v);
      if (ok && item.type() == v1::ITEM_TYPE_CHOICE) {
        ok = false;
        for (const auto& o : item.options()) ok |= o.value() == v;
      } else if (ok) {
        ok = v >= item.min_value() && v <= item.max_value();
      }
      if (!ok) {
        problem = "Please choose one of the answers.";
        break;
      }
      answer.emplace();
      answer->set_int_value(v);
      break;
    }
    case v1::ITEM_TYPE_BOOLEAN:
      if (raw.empty()) break;
      if (raw != "yes" && raw != "no") {
        problem = "Please answer yes or no.";
        break;
      }
      answer.emplace();
      answer->set_bool_value(raw == "yes");
      break;
    case v1::ITEM_TYPE_BLOOD_PRESSURE: {
      const std::string sys(
          absl::StripAsciiWhitespace(req.get_param_value("systolic")));
      const std::string dia(
          absl::StripAsciiWhitespace(req.get_param_value("diastolic")));
      const std::string pulse(
          absl::StripAsciiWhitespace(req.get_param_value("pulse")));
      if (sys.empty() && dia.empty() && pulse.empty()) break;
      int sv = 0, dv = 0, pv = 0;
      if (!absl::SimpleAtoi(sys, &sv) || !absl::SimpleAtoi(dia, &dv) ||
          sv < 50 || sv > 300 || dv < 30 || dv > 200 || dv >= sv ||
          (!pulse.empty() &&
           (!absl::SimpleAtoi(pulse, &pv) || pv < 20 || pv > 250))) {
        problem =
            "Please check the numbers: systolic (top) 50-300, diastolic "
            "(bottom) 30-200 and lower than systolic, pulse 20-250.";
        break;
      }
      answer.emplace();
      answer->mutable_blood_pressure()->set_systolic_mmhg(sv);
      answer->mutable_blood_pressure()->set_diastolic_mmhg(dv);
      answer->mutable_blood_pressure()->set_pulse_bpm(pv);
      break;
    }
    default:
      problem = "This question cannot be answered here.";
  }
  if (problem.empty() && !answer && item.required()) {
    problem = "Please choose an answer to continue.";
  }
  if (!problem.empty()) return RenderQuestion(res, s, n, k, problem, 400);
  if (answer) answer->set_item_id(item.id());

  // Store it, then decide where to go.
  const bool crisis = answer && CrisisAnswer(instrument, item, *answer);
  CheckInProgress updated = p;
  if (answer) {
    updated.answers[i][item.id()] = *answer;
  } else {
    updated.answers[i].erase(item.id());
  }
  const bool last = LastOfInstrument(updated, k);
  if (last || (crisis && RequiredAnswered(updated, i))) updated.due[i] = true;
  if (crisis) {
    updated.crisis = BuiltInCrisisResources();
    updated.crisis_from_server = false;
  }
  const int next = NextStep(updated, k);
  updated.resume_step = next;
  sessions.Update(ctx.id, [&](PortalSession& live) {
    CheckInProgress& lp = *live.tasks[n].progress;
    lp.answers[i] = updated.answers[i];
    lp.due[i] = updated.due[i];
    if (crisis) {
      lp.crisis = updated.crisis;
      lp.crisis_from_server = false;
    }
    lp.resume_step = next;
  });
  if (updated.due[i]) {
    absl::Status sent = SubmitDue(ctx, n);
    if (!sent.ok()) {
      const std::string reason = client::ErrorReason(sent);
      if (reason == "CHECK_IN_EXPIRED" || reason == "CHECK_IN_CANCELLED") {
        return Refusal(res, 409, "This check-in is closed",
                       "It expired or was cancelled, so your answers could "
                       "not be sent. If you need help now, call or text 988; "
                       "in an emergency call 911.",
                       std::string(kBackToTasks));
      }
      // Kept in the session; the done page offers to try again.
    }
  }
  auto after = sessions.Peek(ctx.id, Now());
  if (!after) return SessionEnded(res);
  const CheckInProgress& now = *after->tasks[n].progress;
  if (now.crisis) {
    return res.set_redirect(absl::StrCat("/checkin/", n, "/crisis"), 303);
  }
  res.set_redirect(next < 0 ? absl::StrCat("/checkin/", n, "/done")
                            : absl::StrCat("/checkin/", n, "/q/", next),
                   303);
}

absl::Status PortalServer::Impl::SubmitDue(const Ctx& ctx, int n) {
  auto current = sessions.Peek(ctx.id, Now());
  if (!current) return absl::UnauthenticatedError("session ended");
  const PortalSession& s = *current;
  const PortalTask& t = s.tasks[n];
  const CheckInProgress& p = *t.progress;
  absl::Status first_error;
  for (size_t i = 0; i < p.instruments.size(); ++i) {
    if (!p.due[i] || p.submitted[i]) continue;
    v1::SubmitResponseRequest submit;
    submit.set_parent(s.patient);
    submit.set_check_in(t.check_in);
    submit.set_instrument(p.instruments[i].name());
    submit.set_instrument_version(p.instruments[i].version());
    for (const v1::InstrumentItem& item : p.instruments[i].items()) {
      auto it = p.answers[i].find(item.id());
      if (it != p.answers[i].end() && Enabled(p, i, item)) {
        *submit.add_answers() = it->second;
      }
    }
    submit.set_request_id(p.request_ids[i]);
    auto as = AsPatient(s);
    if (!as.ok()) return as.status();
    auto sent = followup->SubmitResponse(submit, *as);
    bool done = sent.ok();
    if (!sent.ok()) {
      if (client::ErrorReason(sent.status()) == "ALREADY_ANSWERED") {
        done = true;  // answered before (another device); nothing to add
      } else if (first_error.ok()) {
        first_error = sent.status();
      }
    }
    if (!done) continue;
    sessions.Update(ctx.id, [&](PortalSession& live) {
      CheckInProgress& lp = *live.tasks[n].progress;
      lp.submitted[i] = true;
      if (sent.ok() && sent->has_crisis_resources()) {
        lp.crisis = sent->crisis_resources();
        lp.crisis_from_server = true;
      }
      if (sent.ok() && sent->escalations_size() > 0) lp.escalated = true;
      bool all = true;
      for (bool b : lp.submitted) all = all && b;
      if (all) live.tasks[n].completed_here = true;
    });
  }
  return first_error;
}

void PortalServer::Impl::CheckInCrisis(const httplib::Request& req,
                                       httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  const int n = TaskIndexOf(req, s, TaskKind::kCheckIn);
  if (n < 0 || !s.tasks[n].progress) return NoSuchTask(res);
  const CheckInProgress& p = *s.tasks[n].progress;
  const v1::CrisisResources crisis =
      p.crisis ? *p.crisis : BuiltInCrisisResources();
  const std::string next =
      p.resume_step >= 0 ? absl::StrCat("/checkin/", n, "/q/", p.resume_step)
                         : absl::StrCat("/checkin/", n, "/done");
  // Shown once; the check-in then continues.
  sessions.Update(ctx.id, [&](PortalSession& live) {
    live.tasks[n].progress->crisis.reset();
  });
  Html(res, 200, "Help is available now",
       absl::StrCat(
           "<section class=\"crisis\" role=\"alert\"><h1>",
           Esc(crisis.headline().empty() ? "Help is available now"
                                         : crisis.headline()),
           "</h1><p>If you are thinking about hurting yourself, please reach "
           "out now. You can talk to someone any time, day or night.</p>",
           CrisisHtml(crisis), "</section>",
           p.escalated ? "<p role=\"status\">Your care team has been told "
                         "about your answer and will contact you.</p>"
                       : "",
           "<p><a class=\"button\" href=\"", next, "\">Continue</a></p>"),
       &s);
}

void PortalServer::Impl::CheckInDone(const httplib::Request& req,
                                     httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const int n = TaskIndexOf(req, *ctx.session, TaskKind::kCheckIn);
  if (n < 0 || !ctx.session->tasks[n].progress) return NoSuchTask(res);
  {
    const CheckInProgress& p = *ctx.session->tasks[n].progress;
    const int next = NextStep(p, -1);
    if (next >= 0) {
      return res.set_redirect(absl::StrCat("/checkin/", n, "/q/", next), 303);
    }
  }
  absl::Status sent = SubmitDue(ctx, n);
  auto after = sessions.Peek(ctx.id, Now());
  if (!after) return SessionEnded(res);
  const PortalTask& t = after->tasks[n];
  if (t.progress->crisis) {
    return res.set_redirect(absl::StrCat("/checkin/", n, "/crisis"), 303);
  }
  if (!t.completed_here) {
    return Html(
        res, 503, "Not sent yet",
        absl::StrCat(
            "<h1>Your answers are not sent yet</h1><p class=\"error\" "
            "role=\"alert\">We could not reach your clinic just now. Your "
            "answers are kept for this session.</p><form method=\"post\" "
            "action=\"/checkin/",
            n, "/send\">", CsrfInput(*after),
            "<p><button type=\"submit\">Try again</button></p></form><p>If "
            "you need help now, call or text 988. In an emergency call "
            "911.</p>",
            kBackToTasks),
        &*after);
  }
  Html(res, 200, "Answers sent",
       absl::StrCat(
           "<h1>Thank you — your answers were sent</h1><p "
           "role=\"status\">Your care team has them now.</p>",
           t.progress->escalated
               ? "<p>Your care team was alerted and will contact you. If "
                 "you need help now, call or text 988. In an emergency "
                 "call 911.</p>"
               : "",
           kBackToTasks),
       &*after);
}

void PortalServer::Impl::CheckInSend(const httplib::Request& req,
                                     httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  if (!CsrfOk(req, *ctx.session)) return CsrfRefused(res);
  const int n = TaskIndexOf(req, *ctx.session, TaskKind::kCheckIn);
  if (n < 0 || !ctx.session->tasks[n].progress) return NoSuchTask(res);
  (void)SubmitDue(ctx, n);
  res.set_redirect(absl::StrCat("/checkin/", n, "/done"), 303);
}

}  // namespace careseal::portal
