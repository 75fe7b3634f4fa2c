#include "services/common/periodic.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace careseal {
namespace {

TEST(PeriodicTest, RunsRepeatedlyUntilDestroyed) {
  std::atomic<int> runs{0};
  absl::Notification third;
  {
    Periodic periodic(absl::Milliseconds(1), [&] {
      if (++runs == 3) third.Notify();
    });
    third.WaitForNotification();
  }
  const int at_stop = runs.load();
  EXPECT_GE(at_stop, 3);
  // Destroyed: the task never runs again.
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(runs.load(), at_stop);
}

TEST(PeriodicTest, DestroyingDoesNotWaitForTheInterval) {
  std::atomic<int> runs{0};
  {
    Periodic periodic(absl::Hours(24), [&] { ++runs; });
  }
  EXPECT_EQ(runs.load(), 0);  // stopped before its first interval
}

TEST(PeriodicTest, RunSoonRunsTheTaskWithoutWaitingForTheInterval) {
  std::atomic<int> runs{0};
  absl::Notification first, second;
  Periodic periodic(absl::Hours(24), [&] {
    const int n = ++runs;
    if (n == 1) first.Notify();
    if (n == 2) second.Notify();
  });
  periodic.RunSoon();
  first.WaitForNotification();  // a day early
  EXPECT_FALSE(second.HasBeenNotified());
  periodic.RunSoon();
  second.WaitForNotification();
  EXPECT_EQ(runs.load(), 2);
}

}  // namespace
}  // namespace careseal
