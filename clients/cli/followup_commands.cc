// careseal followup ...: ad hoc check-ins, questionnaire responses, outcome
// series and the safety escalation queue. Responses print as JSON (proto3
// JSON mapping).
#include <google/protobuf/util/time_util.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/cli/cli.h"
#include "clients/cpp/followup_client.h"

namespace careseal::cli {
namespace {

namespace v1 = ::careseal::v1;

std::string InstrumentName(const std::string& s) {
  return absl::StartsWith(s, "instruments/") ? s : "instruments/" + s;
}

struct SendArgs {
  std::string patient;
  std::vector<std::string> instruments;
  std::string session;
  std::string note;
  double expire_hours = 0;
};

int RunSend(const Globals& g, const SendArgs& a) {
  auto channel = g.Channel();
  if (!channel.ok()) return ReportError(channel.status());
  client::FollowUpClient c(*channel);
  v1::SendCheckInRequest r;
  r.set_parent(a.patient);
  for (const std::string& i : a.instruments) {
    r.add_instruments(InstrumentName(i));
  }
  r.set_session(a.session);
  r.set_note(a.note);
  if (a.expire_hours > 0) {
    const int64_t now = google::protobuf::util::TimeUtil::TimestampToSeconds(
        google::protobuf::util::TimeUtil::GetCurrentTime());
    r.mutable_expire_time()->set_seconds(
        now + static_cast<int64_t>(a.expire_hours * 3600));
  }
  auto sent = c.SendCheckIn(r, g.Call());
  if (!sent.ok()) return ReportError(sent.status());
  return PrintJson(*sent);
}

}  // namespace

void AddFollowUpCommands(CLI::App& app, Globals& g, Action& run) {
  auto* followup = app.add_subcommand(
      "followup", "follow-up check-ins, responses, outcomes, escalations");
  followup->require_subcommand(1);

  {
    auto* cmd = followup->add_subcommand(
        "send", "send an ad hoc check-in to a patient's inbox");
    auto a = std::make_shared<SendArgs>();
    cmd->add_option("--patient", a->patient, "tenants/{t}/patients/{p}")
        ->required();
    cmd->add_option("--instrument", a->instruments,
                    "phq-9, gad-7, side-effects, blood-pressure, "
                    "cssrs-screener, home-safe (repeat, 1..5)")
        ->required();
    cmd->add_option("--session", a->session,
                    "tenants/{t}/patients/{p}/sessions/{s}");
    cmd->add_option("--note", a->note, "note to the patient");
    cmd->add_option("--expire-hours", a->expire_hours,
                    "expire after this many hours (default 72)");
    cmd->callback([&g, &run, a] { run = [&g, a] { return RunSend(g, *a); }; });
  }

  {
    auto* cmd = followup->add_subcommand(
        "responses", "list questionnaire responses, newest first");
    auto patient = std::make_shared<std::string>();
    auto instrument = std::make_shared<std::string>();
    auto flagged = std::make_shared<bool>(false);
    auto page_size = std::make_shared<int>(0);
    auto page_token = std::make_shared<std::string>();
    cmd->add_option("--patient", *patient,
                    "tenants/{t}/patients/{p} (or - for all)")
        ->required();
    cmd->add_option("--instrument", *instrument, "only this instrument");
    cmd->add_flag("--flagged", *flagged, "only responses with a flag");
    cmd->add_option("--page-size", *page_size, "items per page");
    cmd->add_option("--page-token", *page_token, "from next_page_token");
    cmd->callback(
        [&g, &run, patient, instrument, flagged, page_size, page_token] {
          run = [&g, patient, instrument, flagged, page_size, page_token] {
            auto channel = g.Channel();
            if (!channel.ok()) return ReportError(channel.status());
            client::FollowUpClient c(*channel);
            v1::ListQuestionnaireResponsesRequest r;
            r.set_parent(*patient);
            if (!instrument->empty())
              r.set_instrument(InstrumentName(*instrument));
            r.set_flagged_only(*flagged);
            r.set_page_size(*page_size);
            r.set_page_token(*page_token);
            auto out = c.ListQuestionnaireResponses(r, g.Call());
            if (!out.ok()) return ReportError(out.status());
            return PrintJson(*out);
          };
        });
  }

  {
    auto* cmd = followup->add_subcommand(
        "series", "a patient's scores over time with response/remission");
    auto patient = std::make_shared<std::string>();
    auto instrument = std::make_shared<std::string>("phq-9");
    cmd->add_option("--patient", *patient, "tenants/{t}/patients/{p}")
        ->required();
    cmd->add_option("--instrument", *instrument, "a scored instrument")
        ->capture_default_str();
    cmd->callback([&g, &run, patient, instrument] {
      run = [&g, patient, instrument] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::FollowUpClient c(*channel);
        v1::GetOutcomeSeriesRequest r;
        r.set_patient(*patient);
        r.set_instrument(InstrumentName(*instrument));
        auto out = c.GetOutcomeSeries(r, g.Call());
        if (!out.ok()) return ReportError(out.status());
        return PrintJson(*out);
      };
    });
  }

  {
    auto* cmd = followup->add_subcommand(
        "escalations", "the safety queue (default: open, all patients)");
    auto parent = std::make_shared<std::string>();
    auto all = std::make_shared<bool>(false);
    auto page_size = std::make_shared<int>(0);
    auto page_token = std::make_shared<std::string>();
    cmd->add_option("--parent", *parent,
                    "tenants/{t}/patients/{p} or tenants/{t}/patients/-")
        ->required();
    cmd->add_flag("--all", *all, "acknowledged ones too");
    cmd->add_option("--page-size", *page_size, "items per page");
    cmd->add_option("--page-token", *page_token, "from next_page_token");
    cmd->callback([&g, &run, parent, all, page_size, page_token] {
      run = [&g, parent, all, page_size, page_token] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::FollowUpClient c(*channel);
        v1::ListEscalationsRequest r;
        r.set_parent(*parent);
        if (!*all) r.set_state(v1::ESCALATION_STATE_OPEN);
        r.set_page_size(*page_size);
        r.set_page_token(*page_token);
        auto out = c.ListEscalations(r, g.Call());
        if (!out.ok()) return ReportError(out.status());
        return PrintJson(*out);
      };
    });
  }

  {
    auto* cmd = followup->add_subcommand("ack", "acknowledge an escalation");
    auto name = std::make_shared<std::string>();
    auto note = std::make_shared<std::string>();
    cmd->add_option("name", *name, "tenants/{t}/patients/{p}/escalations/{e}")
        ->required();
    cmd->add_option("--note", *note, "acknowledgement note");
    cmd->callback([&g, &run, name, note] {
      run = [&g, name, note] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::FollowUpClient c(*channel);
        v1::AcknowledgeEscalationRequest r;
        r.set_name(*name);
        r.set_note(*note);
        auto out = c.AcknowledgeEscalation(r, g.Call());
        if (!out.ok()) return ReportError(out.status());
        return PrintJson(*out);
      };
    });
  }
}

}  // namespace careseal::cli
