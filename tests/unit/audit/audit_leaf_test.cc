// The audit leaf is written straight into bytes (CanonicalStringObject, one
// per call on the hot path). Its bytes must equal the canonical JSON of the
// same object built as a Json tree: the format verifiers and stored logs
// rely on, for every kind of string an event can carry.
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/common/platform/audit_writer.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/status.h"
#include "tests/testing/random_text.h"

namespace careseal {
namespace {

using testing::RandomText;

// The leaf as a Json tree, canonicalised: the reference encoding.
absl::StatusOr<std::string> ReferenceLeaf(const CallContext& call,
                                          const absl::Status& outcome) {
  Json leaf = {
      {"format", "careseal.audit-event.v1"},
      {"tenant", AuditTenantOf(call)},
      {"time", Rfc3339(call.now)},
      {"actor", call.principal.actor},
      {"role", call.unauthenticated
                   ? std::string("unauthenticated")
                   : std::string(RoleName(call.principal.role))},
      {"peer", call.principal.peer},
      {"action", call.method},
      {"resource", call.resource},
      {"patient", call.patient},
      {"outcome", absl::StatusCodeToString(outcome.code())},
      {"reason", ErrorReason(outcome)},
      {"request_id", call.request_id},
      {"correlation_id", call.correlation_id},
  };
  if (!call.principal.break_glass_grant.empty()) {
    leaf["break_glass_grant"] = call.principal.break_glass_grant;
  }
  return CanonicalJson(leaf);
}

TEST(AuditLeafTest, EqualsTheCanonicalJsonOfTheSameObject) {
  absl::BitGen gen;
  const absl::StatusCode codes[] = {absl::StatusCode::kOk,
                                    absl::StatusCode::kNotFound,
                                    absl::StatusCode::kPermissionDenied};
  for (int i = 0; i < 5000; ++i) {
    CallContext call;
    call.method = RandomText(gen);
    call.correlation_id = RandomText(gen);
    call.request_id = RandomText(gen);
    call.now = absl::FromUnixMicros(
        absl::Uniform<int64_t>(gen, 0, int64_t{4102444800} * 1000000));
    call.tenant = absl::Bernoulli(gen, 0.2) ? "" : RandomText(gen);
    call.resource = RandomText(gen);
    call.patient = RandomText(gen);
    call.unauthenticated = absl::Bernoulli(gen, 0.1);
    call.principal.role = static_cast<Role>(
        absl::Uniform(gen, 0, static_cast<int>(Role::kSystem) + 1));
    call.principal.tenant = RandomText(gen);
    call.principal.actor = RandomText(gen);
    call.principal.peer = RandomText(gen);
    if (absl::Bernoulli(gen, 0.3)) {
      call.principal.break_glass_grant = RandomText(gen);
    }
    const absl::StatusCode code = codes[i % 3];
    const absl::Status outcome =
        code == absl::StatusCode::kOk
            ? absl::OkStatus()
            : Error(code, "SOME_REASON", RandomText(gen));
    auto fast = AuditLeaf(call, outcome);
    auto reference = ReferenceLeaf(call, outcome);
    ASSERT_TRUE(fast.ok()) << fast.status();
    ASSERT_TRUE(reference.ok()) << reference.status();
    ASSERT_EQ(*fast, *reference) << "case " << i;
  }
}

TEST(AuditLeafTest, InvalidUtf8IsRefusedLikeTheReference) {
  for (const char* bad : {"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80",
                          "\xc0\xaf", "ok\xf4\x90\x80\x80"}) {
    CallContext call;
    call.method = "careseal.v1.ConsentService/GetConsent";
    call.resource = bad;
    auto fast = AuditLeaf(call, absl::OkStatus());
    auto reference = ReferenceLeaf(call, absl::OkStatus());
    EXPECT_FALSE(reference.ok()) << "reference accepted " << bad;
    EXPECT_EQ(fast.status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(ErrorReason(fast.status()), "NOT_UTF8");
  }
}

TEST(AuditLeafTest, KeysOutOfOrderAreRefused) {
  CanonicalStringObject o;
  o.Add("b", "1");
  o.Add("a", "2");
  auto out = std::move(o).Finish();
  EXPECT_EQ(ErrorReason(out.status()), "KEY_ORDER");
  CanonicalStringObject ok;
  ok.Add("a", "x\n\"y\"");
  ok.Add("b", "\x01");
  EXPECT_EQ(*std::move(ok).Finish(),
            "{\"a\":\"x\\n\\\"y\\\"\",\"b\":\"\\u0001\"}");
}

}  // namespace
}  // namespace careseal
