#include "services/presession/session_plan.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "services/common/status.h"

namespace careseal::presession {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view message) {
  return InvalidField(absl::StrCat("plan.", field), "INVALID_PLAN", message);
}

// `days` calendar days after `t`, at the same local time in `tz`.
absl::Time AddDays(absl::Time t, int days, absl::TimeZone tz) {
  const absl::CivilSecond local = absl::ToCivilSecond(t, tz);
  const absl::CivilDay day = absl::CivilDay(local) + days;
  const absl::CivilSecond shifted(day.year(), day.month(), day.day(),
                                  local.hour(), local.minute(), local.second());
  return absl::FromCivil(shifted, tz) + (t - absl::FromCivil(local, tz));
}

}  // namespace

absl::StatusOr<std::vector<PlannedSession>> ExpandSessionPlan(
    const SessionPlan& plan, absl::Time now, absl::TimeZone tz) {
  const bool has_pattern = plan.first_start_time != absl::InfinitePast() ||
                           !plan.induction_sessions_per_week.empty() ||
                           plan.induction_spacing_days != 0 ||
                           plan.maintenance_sessions != 0 ||
                           plan.maintenance_interval_days != 0;
  const bool has_explicit = !plan.start_times.empty();
  if (has_pattern == has_explicit) {
    return Invalid("start_times",
                   "give either explicit start_times or the pattern fields");
  }
  std::vector<PlannedSession> out;
  if (has_explicit) {
    if (plan.start_times.size() > kMaxSessionsPerSeries) {
      return InvalidField("plan.start_times", "TOO_MANY_SESSIONS",
                          "a series has at most 40 sessions");
    }
    for (size_t i = 0; i < plan.start_times.size(); ++i) {
      if (plan.start_times[i] <= now) {
        return InvalidField("plan.start_times", "START_TIME_IN_PAST",
                            "every start time must be in the future");
      }
      if (i > 0 && plan.start_times[i] <= plan.start_times[i - 1]) {
        return Invalid("start_times", "start_times must be ascending");
      }
      out.push_back({plan.start_times[i], PlannedKind::kInduction});
    }
    return out;
  }
  if (plan.first_start_time == absl::InfinitePast()) {
    return Invalid("first_start_time", "the pattern needs first_start_time");
  }
  if (plan.first_start_time <= now) {
    return InvalidField("plan.first_start_time", "START_TIME_IN_PAST",
                        "the first start time must be in the future");
  }
  const auto& weeks = plan.induction_sessions_per_week;
  if (weeks.empty() || weeks.size() > 8) {
    return Invalid("induction_sessions_per_week", "give 1 to 8 weeks");
  }
  const int spacing =
      plan.induction_spacing_days == 0 ? 2 : plan.induction_spacing_days;
  if (spacing < 1 || spacing > 3) {
    return Invalid("induction_spacing_days", "spacing is 1 to 3 days");
  }
  int total = plan.maintenance_sessions;
  for (int n : weeks) {
    if (n < 0 || n > 7) {
      return Invalid("induction_sessions_per_week",
                     "each week has 0 to 7 sessions");
    }
    if (n > 0 && (n - 1) * spacing >= 7) {
      return Invalid("induction_sessions_per_week",
                     "a week's sessions at this spacing do not fit in 7 days");
    }
    total += n;
  }
  if (plan.maintenance_sessions < 0 || plan.maintenance_sessions > 26) {
    return Invalid("maintenance_sessions", "0 to 26 maintenance sessions");
  }
  if (plan.maintenance_sessions > 0 && (plan.maintenance_interval_days < 7 ||
                                        plan.maintenance_interval_days > 56)) {
    return Invalid("maintenance_interval_days",
                   "maintenance interval is 7 to 56 days");
  }
  if (plan.maintenance_sessions == 0 && plan.maintenance_interval_days != 0) {
    return Invalid("maintenance_interval_days",
                   "an interval needs maintenance_sessions");
  }
  if (total == 0) {
    return Invalid("induction_sessions_per_week", "the plan has no sessions");
  }
  if (total > kMaxSessionsPerSeries) {
    return InvalidField("plan", "TOO_MANY_SESSIONS",
                        "a series has at most 40 sessions");
  }
  int last_day = -1;
  for (size_t week = 0; week < weeks.size(); ++week) {
    for (int i = 0; i < weeks[week]; ++i) {
      last_day = static_cast<int>(7 * week) + i * spacing;
      out.push_back({AddDays(plan.first_start_time, last_day, tz),
                     PlannedKind::kInduction});
    }
  }
  if (last_day < 0) last_day = 0;  // maintenance only: counted from the first
  for (int m = 1; m <= plan.maintenance_sessions; ++m) {
    out.push_back({AddDays(plan.first_start_time,
                           last_day + m * plan.maintenance_interval_days, tz),
                   PlannedKind::kMaintenance});
  }
  return out;
}

}  // namespace careseal::presession
