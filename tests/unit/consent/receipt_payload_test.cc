// The receipt payload is written straight into canonical bytes (one per
// signature, on the store's writer). Those bytes are what is signed and what
// verifiers outside CareSeal read (docs/RECEIPTS.md), so they must equal the
// canonical JSON of the same object built as a Json tree, for every kind of
// text a receipt can carry, and decode back to the same facts.
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "gtest/gtest.h"
#include "services/common/crypto/encoding.h"
#include "services/common/platform/canonical_json.h"
#include "services/consent/consent_canonical.h"
#include "tests/testing/random_text.h"

namespace careseal::consent {
namespace {

using testing::RandomText;

// The payload as a Json tree, canonicalised: the reference encoding.
absl::StatusOr<std::string> ReferencePayload(const ReceiptFacts& f) {
  Json doc = {
      {"format", kReceiptFormat},
      {"consent", f.consent},
      {"tenant", f.tenant},
      {"patient", f.patient},
      {"template_version", f.template_version},
      {"procedure_code", f.procedure_code},
      {"document_sha256", crypto::HexEncode(f.document_sha256)},
      {"acknowledged_ids", f.acknowledged_ids},
      {"printed_name", f.printed_name},
      {"signature_meaning", f.signature_meaning},
      {"signing_method", SigningMethodName(f.signing_method)},
      {"sign_time", Rfc3339(f.sign_time)},
      {"drawn_signature_sha256", crypto::HexEncode(f.drawn_signature_sha256)},
      {"key_id", f.key_id},
      {"audit_leaf_index", f.audit_leaf_index},
  };
  return CanonicalJson(doc);
}

std::string RandomBytes(absl::BitGen& gen, size_t n) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(absl::Uniform(gen, 0, 256));
  return out;
}

ReceiptFacts RandomFacts(absl::BitGen& gen) {
  ReceiptFacts f;
  f.consent = RandomText(gen);
  f.tenant = RandomText(gen);
  f.patient = RandomText(gen);
  f.template_version = RandomText(gen);
  f.procedure_code = RandomText(gen);
  f.document_sha256 = RandomBytes(gen, 32);
  const int acks = absl::Uniform(gen, 0, 5);
  for (int i = 0; i < acks; ++i) f.acknowledged_ids.push_back(RandomText(gen));
  f.printed_name = RandomText(gen);
  f.signature_meaning = RandomText(gen);
  f.signing_method = absl::Bernoulli(gen, 0.5)
                         ? SigningMethod::kTypedName
                         : SigningMethod::kTypedNameWithDrawn;
  f.sign_time = absl::FromUnixMicros(
      absl::Uniform<int64_t>(gen, 0, int64_t{4102444800} * 1000000));
  if (f.signing_method == SigningMethod::kTypedNameWithDrawn) {
    f.drawn_signature_sha256 = RandomBytes(gen, 32);
  }
  f.key_id = RandomText(gen);
  f.audit_leaf_index = absl::Bernoulli(gen, 0.1)
                           ? int64_t{0}
                           : absl::Uniform<int64_t>(gen, 0, int64_t{1} << 62);
  return f;
}

TEST(ReceiptPayloadTest, EqualsTheCanonicalJsonOfTheSameObject) {
  absl::BitGen gen;
  for (int i = 0; i < 5000; ++i) {
    const ReceiptFacts f = RandomFacts(gen);
    auto fast = EncodeReceiptPayload(f);
    auto reference = ReferencePayload(f);
    ASSERT_TRUE(fast.ok()) << fast.status();
    ASSERT_TRUE(reference.ok()) << reference.status();
    ASSERT_EQ(*fast, *reference) << "case " << i;
  }
}

TEST(ReceiptPayloadTest, DecodesBackToTheSameFacts) {
  absl::BitGen gen;
  for (int i = 0; i < 1000; ++i) {
    const ReceiptFacts f = RandomFacts(gen);
    auto payload = EncodeReceiptPayload(f);
    ASSERT_TRUE(payload.ok()) << payload.status();
    auto back = DecodeReceiptPayload(*payload);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->consent, f.consent);
    EXPECT_EQ(back->tenant, f.tenant);
    EXPECT_EQ(back->patient, f.patient);
    EXPECT_EQ(back->template_version, f.template_version);
    EXPECT_EQ(back->procedure_code, f.procedure_code);
    EXPECT_EQ(back->document_sha256, f.document_sha256);
    EXPECT_EQ(back->acknowledged_ids, f.acknowledged_ids);
    EXPECT_EQ(back->printed_name, f.printed_name);
    EXPECT_EQ(back->signature_meaning, f.signature_meaning);
    EXPECT_EQ(back->signing_method, f.signing_method);
    EXPECT_EQ(back->sign_time, f.sign_time);
    EXPECT_EQ(back->drawn_signature_sha256, f.drawn_signature_sha256);
    EXPECT_EQ(back->key_id, f.key_id);
    EXPECT_EQ(back->audit_leaf_index, f.audit_leaf_index);
  }
}

TEST(ReceiptPayloadTest, InvalidUtf8IsRefused) {
  ReceiptFacts f;
  f.printed_name = "Ana\xff";
  EXPECT_EQ(EncodeReceiptPayload(f).status().code(),
            absl::StatusCode::kInternal);
  f.printed_name = "Ana";
  f.acknowledged_ids = {"risks", "\xc3"};
  EXPECT_EQ(EncodeReceiptPayload(f).status().code(),
            absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace careseal::consent
