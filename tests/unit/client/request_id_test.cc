#include <cstdlib>
#include <set>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"

namespace careseal::client {
namespace {

bool IsUuidText(const std::string& id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    const char c = id[i];
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

int64_t MillisOf(const std::string& v7) {
  const std::string hex = v7.substr(0, 8) + v7.substr(9, 4);
  return static_cast<int64_t>(std::strtoull(hex.c_str(), nullptr, 16));
}

TEST(NewRequestIdTest, IsAVersion7UuidOfTheCurrentMillisecond) {
  const int64_t before = absl::ToUnixMillis(absl::Now());
  const std::string id = NewRequestId();
  const int64_t after = absl::ToUnixMillis(absl::Now());
  ASSERT_TRUE(IsUuidText(id)) << id;
  EXPECT_EQ(id[14], '7') << id;
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  EXPECT_GE(MillisOf(id), before) << id;
  EXPECT_LE(MillisOf(id), after) << id;
}

TEST(NewRequestIdTest, LaterIdsSortAfterEarlierOnesAndNoneRepeat) {
  std::set<std::string> seen;
  std::string previous = NewRequestId();
  for (int i = 0; i < 20; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
    const std::string next = NewRequestId();
    EXPECT_LT(previous, next);
    previous = next;
  }
  for (int i = 0; i < 10000; ++i) {
    EXPECT_TRUE(seen.insert(NewRequestId()).second);
  }
}

TEST(NewRandomRequestIdTest, IsAVersion4Uuid) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewRandomRequestId();
    ASSERT_TRUE(IsUuidText(id)) << id;
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    EXPECT_TRUE(seen.insert(id).second);
  }
}

}  // namespace
}  // namespace careseal::client
