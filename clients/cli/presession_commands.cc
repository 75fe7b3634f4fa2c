// careseal sessions ...: infusion sessions and their readiness gate
// (PreSessionService). Responses print as JSON (proto3 JSON mapping).
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/cli/cli.h"
#include "clients/cpp/presession_client.h"

namespace careseal::cli {
namespace {

namespace v1 = ::careseal::v1;
using google::protobuf::util::TimeUtil;

absl::Status ParseTime(const std::string& flag, const std::string& text,
                       google::protobuf::Timestamp* out) {
  if (!TimeUtil::FromString(text, out)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SessionKind> KindFrom(const std::string& name) {
  if (name == "induction") return v1::SESSION_KIND_INDUCTION;
  if (name == "maintenance") return v1::SESSION_KIND_MAINTENANCE;
  if (name == "other") return v1::SESSION_KIND_OTHER;
  return absl::InvalidArgumentError(
      "--kind is one of induction, maintenance, other");
}

absl::StatusOr<v1::SessionState> StateFrom(const std::string& name) {
  if (name.empty()) return v1::SESSION_STATE_UNSPECIFIED;
  if (name == "scheduled") return v1::SESSION_STATE_SCHEDULED;
  if (name == "completed") return v1::SESSION_STATE_COMPLETED;
  if (name == "cancelled") return v1::SESSION_STATE_CANCELLED;
  return absl::InvalidArgumentError(
      "--state is one of scheduled, completed, cancelled");
}

struct ScheduleArgs {
  std::string patient;
  std::string procedure;
  std::vector<std::string> starts;
  std::string first_start;
  std::vector<int> weeks;
  int spacing_days = 0;
  int maintenance = 0;
  int maintenance_interval_days = 0;
  std::string kind = "maintenance";
  std::string series;  // add a single session to this series
  std::string location;
  std::string clinician;
  std::string instruction_template;
  std::string dose_plan_ref;
  std::string external_id;
  int duration_minutes = 0;
};

int RunSchedule(const Globals& g, const ScheduleArgs& a) {
  auto channel = g.Channel();
  if (!channel.ok()) return ReportError(channel.status());
  client::PreSessionClient c(*channel);
  const bool pattern = !a.first_start.empty() || !a.weeks.empty();
  if (a.patient.empty()) {
    return ReportError(absl::InvalidArgumentError(
        "--patient tenants/{t}/patients/{p} is required"));
  }
  if (!pattern && a.starts.size() == 1) {
    v1::CreateSessionRequest req;
    req.set_parent(a.patient);
    v1::Session* s = req.mutable_session();
    s->set_series(a.series);
    s->set_procedure_code(a.procedure);
    auto kind = KindFrom(a.kind);
    if (!kind.ok()) return ReportError(kind.status());
    s->set_kind(*kind);
    if (absl::Status st =
            ParseTime("--start", a.starts[0], s->mutable_start_time());
        !st.ok()) {
      return ReportError(st);
    }
    if (a.duration_minutes > 0) {
      s->mutable_duration()->set_seconds(int64_t{a.duration_minutes} * 60);
    }
    s->set_location(a.location);
    s->set_clinician(a.clinician);
    s->set_dose_plan_ref(a.dose_plan_ref);
    s->set_external_id(a.external_id);
    s->set_instruction_template_version(a.instruction_template);
    auto created = c.CreateSession(req, g.Call());
    if (!created.ok()) return ReportError(created.status());
    return PrintJson(*created);
  }
  v1::CreateSessionSeriesRequest req;
  req.set_parent(a.patient);
  v1::SessionSeries* s = req.mutable_session_series();
  s->set_procedure_code(a.procedure);
  s->set_location(a.location);
  s->set_clinician(a.clinician);
  s->set_instruction_template(a.instruction_template);
  s->set_dose_plan_ref(a.dose_plan_ref);
  v1::SessionPlan* plan = req.mutable_plan();
  for (const std::string& t : a.starts) {
    if (absl::Status st = ParseTime("--start", t, plan->add_start_times());
        !st.ok()) {
      return ReportError(st);
    }
  }
  if (!a.first_start.empty()) {
    if (absl::Status st = ParseTime("--first-start", a.first_start,
                                    plan->mutable_first_start_time());
        !st.ok()) {
      return ReportError(st);
    }
  }
  for (int w : a.weeks) plan->add_induction_sessions_per_week(w);
  plan->set_induction_spacing_days(a.spacing_days);
  plan->set_maintenance_sessions(a.maintenance);
  plan->set_maintenance_interval_days(a.maintenance_interval_days);
  if (a.duration_minutes > 0) {
    plan->mutable_session_duration()->set_seconds(int64_t{a.duration_minutes} *
                                                  60);
  }
  auto created = c.CreateSessionSeries(req, g.Call());
  if (!created.ok()) return ReportError(created.status());
  return PrintJson(*created);
}

}  // namespace

void AddSessionsCommands(CLI::App& app, Globals& g, Action& run) {
  auto* sessions =
      app.add_subcommand("sessions", "infusion sessions and readiness");
  sessions->require_subcommand(1);

  {
    auto* cmd = sessions->add_subcommand(
        "schedule",
        "schedule one session (one --start), or a series (several --start, "
        "or the induction pattern --first-start with --weeks)");
    auto a = std::make_shared<ScheduleArgs>();
    cmd->add_option("--patient", a->patient, "tenants/{t}/patients/{p}")
        ->required();
    cmd->add_option("--procedure", a->procedure,
                    "procedure code, e.g. ketamine-iv (a single session in a "
                    "series defaults to the series' code)");
    cmd->add_option("--start", a->starts, "RFC 3339 start time (repeatable)");
    cmd->add_option("--first-start", a->first_start,
                    "first induction infusion (pattern)");
    cmd->add_option("--weeks", a->weeks,
                    "induction sessions per week, e.g. --weeks 3 2 1")
        ->expected(1, 8);
    cmd->add_option("--spacing-days", a->spacing_days,
                    "days between sessions within a week (default 2)");
    cmd->add_option("--maintenance", a->maintenance,
                    "maintenance sessions after the induction");
    cmd->add_option("--maintenance-interval-days", a->maintenance_interval_days,
                    "days between maintenance sessions (7-56)");
    cmd->add_option("--kind", a->kind,
                    "single session: induction|maintenance|other")
        ->capture_default_str();
    cmd->add_option("--series", a->series,
                    "single session: add it to this series");
    cmd->add_option("--location", a->location, "e.g. \"Suite 2\"");
    cmd->add_option("--clinician", a->clinician, "tenants/{t}/clinicians/{c}");
    cmd->add_option("--template", a->instruction_template,
                    "instruction template or version (default: the tenant's)");
    cmd->add_option("--dose-plan-ref", a->dose_plan_ref,
                    "opaque EHR dose plan reference");
    cmd->add_option("--external-id", a->external_id,
                    "single session: the EHR's appointment id");
    cmd->add_option("--duration-minutes", a->duration_minutes,
                    "length of each session (default 60)");
    cmd->callback(
        [&g, &run, a] { run = [&g, a] { return RunSchedule(g, *a); }; });
  }

  {
    auto* cmd = sessions->add_subcommand(
        "list", "list sessions by start (tenants/{t}/patients/- for all)");
    auto patient = std::make_shared<std::string>();
    auto series = std::make_shared<std::string>();
    auto state = std::make_shared<std::string>();
    auto from = std::make_shared<std::string>();
    auto to = std::make_shared<std::string>();
    auto page_size = std::make_shared<int>(0);
    auto page_token = std::make_shared<std::string>();
    cmd->add_option("--patient", *patient, "tenants/{t}/patients/{p} or /-")
        ->required();
    cmd->add_option("--series", *series, "only this series");
    cmd->add_option("--state", *state, "scheduled|completed|cancelled");
    cmd->add_option("--from", *from, "starting at or after (RFC 3339)");
    cmd->add_option("--to", *to, "starting before (RFC 3339)");
    cmd->add_option("--page-size", *page_size, "page size");
    cmd->add_option("--page-token", *page_token, "next_page_token");
    cmd->callback(
        [&g, &run, patient, series, state, from, to, page_size, page_token] {
          run = [&g, patient, series, state, from, to, page_size, page_token] {
            auto channel = g.Channel();
            if (!channel.ok()) return ReportError(channel.status());
            client::PreSessionClient c(*channel);
            v1::ListSessionsRequest req;
            req.set_parent(*patient);
            req.set_series(*series);
            auto st = StateFrom(*state);
            if (!st.ok()) return ReportError(st.status());
            req.set_state(*st);
            if (!from->empty()) {
              if (auto s = ParseTime("--from", *from, req.mutable_start_time());
                  !s.ok()) {
                return ReportError(s);
              }
            }
            if (!to->empty()) {
              if (auto s = ParseTime("--to", *to, req.mutable_end_time());
                  !s.ok()) {
                return ReportError(s);
              }
            }
            req.set_page_size(*page_size);
            req.set_page_token(*page_token);
            auto listed = c.ListSessions(req, g.Call());
            if (!listed.ok()) return ReportError(listed.status());
            return PrintJson(*listed);
          };
        });
  }

  {
    auto* cmd = sessions->add_subcommand(
        "move", "move a scheduled session; its deliveries follow");
    auto name = std::make_shared<std::string>();
    auto start = std::make_shared<std::string>();
    auto location = std::make_shared<std::string>();
    auto clinician = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    cmd->add_option("session", *name, "tenants/{t}/patients/{p}/sessions/{s}")
        ->required();
    cmd->add_option("--start", *start, "new start (RFC 3339)")->required();
    cmd->add_option("--location", *location, "new location");
    cmd->add_option("--clinician", *clinician, "new clinician");
    cmd->add_option("--reason", *reason, "why (optional)");
    cmd->callback([&g, &run, name, start, location, clinician, reason] {
      run = [&g, name, start, location, clinician, reason] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::PreSessionClient c(*channel);
        v1::MoveSessionRequest req;
        req.set_name(*name);
        if (auto s = ParseTime("--start", *start, req.mutable_start_time());
            !s.ok()) {
          return ReportError(s);
        }
        req.set_location(*location);
        req.set_clinician(*clinician);
        req.set_reason(*reason);
        auto moved = c.MoveSession(req, g.Call());
        if (!moved.ok()) return ReportError(moved.status());
        return PrintJson(*moved);
      };
    });
  }

  {
    auto* cmd = sessions->add_subcommand(
        "cancel", "cancel a session, or a series and its future sessions");
    auto name = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    cmd->add_option("name", *name,
                    "tenants/{t}/patients/{p}/sessions/{s} or "
                    ".../sessionSeries/{s}")
        ->required();
    cmd->add_option("--reason", *reason, "why (optional)");
    cmd->callback([&g, &run, name, reason] {
      run = [&g, name, reason] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::PreSessionClient c(*channel);
        if (absl::StrContains(*name, "/sessionSeries/")) {
          v1::CancelSessionSeriesRequest req;
          req.set_name(*name);
          req.set_reason(*reason);
          auto done = c.CancelSessionSeries(req, g.Call());
          if (!done.ok()) return ReportError(done.status());
          return PrintJson(*done);
        }
        v1::CancelSessionRequest req;
        req.set_name(*name);
        req.set_reason(*reason);
        auto done = c.CancelSession(req, g.Call());
        if (!done.ok()) return ReportError(done.status());
        return PrintJson(*done);
      };
    });
  }

  {
    auto* cmd = sessions->add_subcommand(
        "instructions",
        "publish a version of an instruction template from a JSON file "
        "(careseal.v1.InstructionTemplateVersion); creates the template if "
        "needed");
    auto tenant = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    auto display = std::make_shared<std::string>();
    cmd->add_option("--tenant", *tenant, "tenant id")->required();
    cmd->add_option("--id", *id, "template id, e.g. pre-infusion")->required();
    cmd->add_option("--file", *file, "version JSON file")->required();
    cmd->add_option("--display-name", *display, "for a new template");
    cmd->callback([&g, &run, tenant, id, file, display] {
      run = [&g, tenant, id, file, display] {
        auto text = ReadFile(*file);
        if (!text.ok()) return ReportError(text.status());
        v1::PublishInstructionTemplateVersionRequest publish;
        publish.set_parent(
            absl::StrCat("tenants/", *tenant, "/instructionTemplates/", *id));
        auto parsed = google::protobuf::util::JsonStringToMessage(
            *text, publish.mutable_version());
        if (!parsed.ok()) {
          return ReportError(absl::InvalidArgumentError(
              absl::StrCat("the file is not an InstructionTemplateVersion: ",
                           parsed.ToString())));
        }
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::PreSessionClient c(*channel);
        v1::CreateInstructionTemplateRequest create;
        create.set_parent(absl::StrCat("tenants/", *tenant));
        create.set_instruction_template_id(*id);
        create.mutable_instruction_template()->set_display_name(
            display->empty() ? *id : *display);
        auto created = c.CreateInstructionTemplate(create, g.Call());
        if (!created.ok() &&
            client::ErrorReason(created.status()) != "TEMPLATE_ID_TAKEN") {
          return ReportError(created.status());
        }
        auto published = c.PublishInstructionTemplateVersion(publish, g.Call());
        if (!published.ok()) return ReportError(published.status());
        return PrintJson(*published);
      };
    });
  }

  {
    auto* cmd = sessions->add_subcommand(
        "settings", "show or change the tenant's pre-session settings");
    auto tenant = std::make_shared<std::string>();
    auto default_template = std::make_shared<std::string>();
    auto offsets = std::make_shared<std::vector<double>>();
    auto reminder_hours = std::make_shared<double>(-1);
    auto max_reminders = std::make_shared<int>(-1);
    cmd->add_option("--tenant", *tenant, "tenant id")->required();
    cmd->add_option("--default-template", *default_template,
                    "tenants/{t}/instructionTemplates/{it}");
    cmd->add_option("--offsets-hours", *offsets,
                    "deliver this many hours before each start, e.g. 48 24");
    cmd->add_option("--reminder-hours", *reminder_hours,
                    "remind this long after a delivery (0: off)");
    cmd->add_option("--max-reminders", *max_reminders, "per delivery");
    cmd->callback([&g, &run, tenant, default_template, offsets, reminder_hours,
                   max_reminders] {
      run = [&g, tenant, default_template, offsets, reminder_hours,
             max_reminders] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::PreSessionClient c(*channel);
        const std::string name =
            absl::StrCat("tenants/", *tenant, "/preSessionSettings");
        v1::UpdatePreSessionSettingsRequest req;
        v1::PreSessionSettings* s = req.mutable_settings();
        s->set_name(name);
        auto* mask = req.mutable_update_mask();
        if (!default_template->empty()) {
          s->set_default_instruction_template(*default_template);
          mask->add_paths("default_instruction_template");
        }
        if (!offsets->empty()) {
          for (double h : *offsets) {
            s->add_delivery_offsets()->set_seconds(
                static_cast<int64_t>(h * 3600));
          }
          mask->add_paths("delivery_offsets");
        }
        if (*reminder_hours >= 0) {
          s->mutable_reminder_after()->set_seconds(
              static_cast<int64_t>(*reminder_hours * 3600));
          mask->add_paths("reminder_after");
        }
        if (*max_reminders >= 0) {
          s->set_max_reminders(*max_reminders);
          mask->add_paths("max_reminders");
        }
        if (mask->paths_size() == 0) {
          v1::GetPreSessionSettingsRequest get;
          get.set_name(name);
          auto got = c.GetPreSessionSettings(get, g.Call());
          if (!got.ok()) return ReportError(got.status());
          return PrintJson(*got);
        }
        auto updated = c.UpdatePreSessionSettings(req, g.Call());
        if (!updated.ok()) return ReportError(updated.status());
        return PrintJson(*updated);
      };
    });
  }

  {
    auto* cmd = sessions->add_subcommand(
        "readiness",
        "READY or NOT_READY with one reason per failing item (consent, "
        "instructions, fasting, escort, holds, contraindications)");
    auto name = std::make_shared<std::string>();
    cmd->add_option("session", *name, "tenants/{t}/patients/{p}/sessions/{s}")
        ->required();
    cmd->callback([&g, &run, name] {
      run = [&g, name] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::PreSessionClient c(*channel);
        v1::CheckSessionReadinessRequest req;
        req.set_session(*name);
        auto r = c.CheckSessionReadiness(req, g.Call());
        if (!r.ok()) return ReportError(r.status());
        return PrintJson(*r);
      };
    });
  }
}

}  // namespace careseal::cli
