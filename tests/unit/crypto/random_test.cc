#include "services/common/crypto/random.h"

#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace careseal::crypto {
namespace {

// Returns a fixed byte pattern, for known answers.
class ConstantRandom final : public RandomSource {
 public:
  explicit ConstantRandom(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string Bytes(size_t n) override { return bytes_.substr(0, n); }

 private:
  const std::string bytes_;
};

TEST(OpenSslRandomTest, ReturnsRequestedSizes) {
  OpenSslRandom random;
  for (size_t n : {0, 1, 16, 32, 1000}) EXPECT_EQ(random.Bytes(n).size(), n);
}

TEST(OpenSslRandomTest, OutputsDiffer) {
  OpenSslRandom random;
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(random.Bytes(16));
  EXPECT_EQ(seen.size(), 100u);
}

TEST(FillRandomTest, SmallAndLargeRequestsAcrossThreadsNeverRepeat) {
  // Sizes below and above the per-thread block's limit, from four threads:
  // no two 16-byte draws agree, and no draw is all zeros (a wiped byte
  // handed out again would be).
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> out(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&out, t] {
      for (int i = 0; i < 2000; ++i) {
        unsigned char small[16];
        FillRandom(small, sizeof small);
        out[t].emplace_back(reinterpret_cast<char*>(small), sizeof small);
        if (i % 100 == 0) {
          unsigned char large[100];
          FillRandom(large, sizeof large);
          out[t].emplace_back(reinterpret_cast<char*>(large), 16);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> seen;
  size_t total = 0;
  for (const auto& v : out) {
    total += v.size();
    seen.insert(v.begin(), v.end());
  }
  EXPECT_EQ(seen.size(), total);
  EXPECT_EQ(seen.count(std::string(16, '\0')), 0u);
}

TEST(FillRandomTest, AForkedChildDoesNotRepeatItsParentsBytes) {
  // The parent's thread has a block in use; a child that served from its
  // copy of that block would hand out the very bytes the parent hands out
  // next.
  OpenSslRandom random;
  (void)random.Bytes(16);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string bytes = random.Bytes(32);
    const bool ok = write(fds[1], bytes.data(), bytes.size()) ==
                    static_cast<ssize_t>(bytes.size());
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  std::string from_child(32, '\0');
  size_t got = 0;
  while (got < from_child.size()) {
    const ssize_t r =
        read(fds[0], from_child.data() + got, from_child.size() - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, from_child.size());
  EXPECT_NE(random.Bytes(32), from_child);
}

TEST(FakeRandomTest, SameSeedSameStream) {
  FakeRandom a(42), b(42), c(43);
  const std::string from_a = a.Bytes(100);
  EXPECT_EQ(from_a, b.Bytes(100));
  EXPECT_NE(from_a, c.Bytes(100));
}

TEST(FakeRandomTest, IsAStream) {
  FakeRandom whole(1), parts(1);
  const std::string all = whole.Bytes(70);
  std::string pieces = parts.Bytes(3);  // Sequenced: operator+ is not.
  pieces += parts.Bytes(40);
  pieces += parts.Bytes(0);
  pieces += parts.Bytes(27);
  EXPECT_EQ(pieces, all);
  EXPECT_NE(whole.Bytes(16), all.substr(0, 16));  // Never repeats.
}

TEST(FakeRandomTest, IsThreadSafe) {
  FakeRandom random(5);
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> out(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&random, &out, t] {
      for (int i = 0; i < 500; ++i) out[t].push_back(random.Bytes(16));
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> seen;
  for (const auto& v : out) seen.insert(v.begin(), v.end());
  EXPECT_EQ(seen.size(), 2000u);
}

TEST(NewOpaqueIdTest, FormatIsLowercaseBase32StartingWithALetter) {
  OpenSslRandom random;
  const std::regex pattern("[a-h][a-z2-7]{25}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewOpaqueId(random);
    EXPECT_TRUE(std::regex_match(id, pattern)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(NewOpaqueIdTest, KnownAnswers) {
  ConstantRandom zeros(std::string(16, '\0'));
  EXPECT_EQ(NewOpaqueId(zeros), "aaaaaaaaaaaaaaaaaaaaaaaaaa");
  ConstantRandom ones(std::string(16, '\xff'));
  EXPECT_EQ(NewOpaqueId(ones), "h7777777777777777777777777");
  // Value 1: only the last digit is non-zero.
  ConstantRandom one(std::string(15, '\0') + "\x01");
  EXPECT_EQ(NewOpaqueId(one), "aaaaaaaaaaaaaaaaaaaaaaaaab");
  // The top bit alone is 2^127 = 4 * 32^25: first digit 'e'.
  ConstantRandom top(std::string("\x80") + std::string(15, '\0'));
  EXPECT_EQ(NewOpaqueId(top), "eaaaaaaaaaaaaaaaaaaaaaaaaa");
}

TEST(NewOpaqueIdTest, DeterministicWithFakeRandom) {
  FakeRandom a(9), b(9);
  EXPECT_EQ(NewOpaqueId(a), NewOpaqueId(b));
}

TEST(NewUuidTest, IsVersion4) {
  OpenSslRandom random;
  const std::regex pattern(
      "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string uuid = NewUuid(random);
    EXPECT_TRUE(std::regex_match(uuid, pattern)) << uuid;
    seen.insert(uuid);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(NewUuidTest, KnownAnswer) {
  ConstantRandom ones(std::string(16, '\xff'));
  EXPECT_EQ(NewUuid(ones), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  ConstantRandom zeros(std::string(16, '\0'));
  EXPECT_EQ(NewUuid(zeros), "00000000-0000-4000-8000-000000000000");
}

}  // namespace
}  // namespace careseal::crypto
