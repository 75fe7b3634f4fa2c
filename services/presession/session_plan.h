// The session-series plan helper as plain domain logic: explicit start times,
// or the induction pattern (sessions per week, e.g. 3/2/1 — CLINICAL.md:
// 3-4 in week 1, 2-3 in week 2, 1-2 in week 3) followed by maintenance
// sessions every N days (CLINICAL.md: every 2-4 weeks). Mirrors
// careseal.v1.SessionPlan; the gRPC edge converts.
#ifndef CARESEAL_SERVICES_PRESESSION_SESSION_PLAN_H_
#define CARESEAL_SERVICES_PRESESSION_SESSION_PLAN_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace careseal::presession {

inline constexpr int kMaxSessionsPerSeries = 40;

struct SessionPlan {
  std::vector<absl::Time> start_times{};  // explicit; excludes the pattern
  absl::Time first_start_time = absl::InfinitePast();  // pattern start
  std::vector<int> induction_sessions_per_week{};      // 1..8 weeks, 0..7
  int induction_spacing_days = 0;                      // 0: 2 days; 1..3
  int maintenance_sessions = 0;                        // 0..26
  int maintenance_interval_days = 0;                   // 7..56
};

enum class PlannedKind { kInduction, kMaintenance };

struct PlannedSession {
  absl::Time start;
  PlannedKind kind;
};

// The sessions of `plan`, by start time. Pattern arithmetic is in calendar
// days at the same local time in `tz` (a daylight-saving change keeps the
// wall-clock time). Errors (INVALID_ARGUMENT, field under "plan."):
// INVALID_PLAN (both or neither form, counts or intervals out of range, a
// week's sessions not fitting in 7 days, explicit starts not ascending),
// START_TIME_IN_PAST (a start at or before `now`), TOO_MANY_SESSIONS (> 40).
// Explicit starts are all labelled induction.
absl::StatusOr<std::vector<PlannedSession>> ExpandSessionPlan(
    const SessionPlan& plan, absl::Time now, absl::TimeZone tz);

}  // namespace careseal::presession

#endif  // CARESEAL_SERVICES_PRESESSION_SESSION_PLAN_H_
