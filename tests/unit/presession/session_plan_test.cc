#include "services/presession/session_plan.h"

#include <vector>

#include "gtest/gtest.h"
#include "services/common/status.h"

namespace careseal::presession {
namespace {

absl::Time Utc(int y, int m, int d, int h) {
  return absl::FromCivil(absl::CivilHour(y, m, d, h), absl::UTCTimeZone());
}

const absl::Time kNow = Utc(2026, 1, 1, 0);

std::vector<absl::Time> Starts(const std::vector<PlannedSession>& s) {
  std::vector<absl::Time> out;
  for (const auto& p : s) out.push_back(p.start);
  return out;
}

TEST(SessionPlanTest, InductionPatternAndMaintenance) {
  SessionPlan plan;
  plan.first_start_time = Utc(2026, 1, 5, 9);  // a Monday
  plan.induction_sessions_per_week = {3, 2, 1};
  plan.maintenance_sessions = 2;
  plan.maintenance_interval_days = 21;
  auto sessions = ExpandSessionPlan(plan, kNow, absl::UTCTimeZone());
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  EXPECT_EQ(Starts(*sessions),
            (std::vector<absl::Time>{Utc(2026, 1, 5, 9), Utc(2026, 1, 7, 9),
                                     Utc(2026, 1, 9, 9), Utc(2026, 1, 12, 9),
                                     Utc(2026, 1, 14, 9), Utc(2026, 1, 19, 9),
                                     Utc(2026, 2, 9, 9), Utc(2026, 3, 2, 9)}));
  EXPECT_EQ((*sessions)[5].kind, PlannedKind::kInduction);
  EXPECT_EQ((*sessions)[6].kind, PlannedKind::kMaintenance);
}

TEST(SessionPlanTest, KeepsLocalTimeAcrossDaylightSaving) {
  absl::TimeZone ny;
  ASSERT_TRUE(absl::LoadTimeZone("America/New_York", &ny));
  SessionPlan plan;
  // 2026-03-06 09:00 EST; DST starts 2026-03-08.
  plan.first_start_time =
      absl::FromCivil(absl::CivilSecond(2026, 3, 6, 9, 0, 0), ny);
  plan.induction_sessions_per_week = {2};
  plan.induction_spacing_days = 3;
  auto sessions = ExpandSessionPlan(plan, kNow, ny);
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  ASSERT_EQ(sessions->size(), 2u);
  const absl::CivilSecond second =
      absl::ToCivilSecond((*sessions)[1].start, ny);
  EXPECT_EQ(second, absl::CivilSecond(2026, 3, 9, 9, 0, 0));
  EXPECT_EQ((*sessions)[1].start - (*sessions)[0].start, absl::Hours(71));
}

TEST(SessionPlanTest, ExplicitStarts) {
  SessionPlan plan;
  plan.start_times = {Utc(2026, 2, 1, 9), Utc(2026, 2, 3, 9)};
  auto sessions = ExpandSessionPlan(plan, kNow, absl::UTCTimeZone());
  ASSERT_TRUE(sessions.ok());
  EXPECT_EQ(Starts(*sessions), plan.start_times);
}

TEST(SessionPlanTest, RejectsBadPlans) {
  struct Bad {
    SessionPlan plan;
    const char* reason;
  };
  auto pattern = [] {
    SessionPlan p;
    p.first_start_time = Utc(2026, 1, 5, 9);
    p.induction_sessions_per_week = {3, 2, 1};
    return p;
  };
  std::vector<Bad> bad;
  bad.push_back({SessionPlan{}, "INVALID_PLAN"});  // neither form
  {
    SessionPlan p = pattern();
    p.start_times = {Utc(2026, 2, 1, 9)};  // both forms
    bad.push_back({p, "INVALID_PLAN"});
  }
  {
    SessionPlan p = pattern();
    p.first_start_time = kNow;
    bad.push_back({p, "START_TIME_IN_PAST"});
  }
  {
    SessionPlan p;
    p.start_times = {Utc(2026, 2, 3, 9), Utc(2026, 2, 1, 9)};
    bad.push_back({p, "INVALID_PLAN"});  // not ascending
  }
  {
    SessionPlan p = pattern();
    p.induction_sessions_per_week = {5};
    p.induction_spacing_days = 2;  // days 0..8 do not fit a week
    bad.push_back({p, "INVALID_PLAN"});
  }
  {
    SessionPlan p = pattern();
    p.maintenance_sessions = 2;  // no interval
    bad.push_back({p, "INVALID_PLAN"});
  }
  {
    SessionPlan p = pattern();
    p.induction_sessions_per_week = {4, 4, 4, 4, 4, 4, 4, 4};
    p.induction_spacing_days = 1;
    p.maintenance_sessions = 10;
    p.maintenance_interval_days = 14;  // 42 sessions
    bad.push_back({p, "TOO_MANY_SESSIONS"});
  }
  for (const Bad& b : bad) {
    auto result = ExpandSessionPlan(b.plan, kNow, absl::UTCTimeZone());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << b.reason;
    EXPECT_EQ(ErrorReason(result.status()), b.reason);
    EXPECT_FALSE(ErrorField(result.status()).empty());
  }
}

}  // namespace
}  // namespace careseal::presession
