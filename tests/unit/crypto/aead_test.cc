#include "services/common/crypto/aead.h"

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "services/common/crypto/random.h"
#include "services/common/status.h"

namespace careseal::crypto {
namespace {

constexpr absl::string_view kAd = "tenant/acme/patients/p1/answers/a1";

std::unique_ptr<OpenSslAes256Gcm> NewAead(uint64_t seed = 1) {
  FakeRandom random(seed);
  return OpenSslAes256Gcm::Create(random.Bytes(32)).value();
}

void ExpectDecryptionFailed(const absl::StatusOr<std::string>& result) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(result.status()), kReasonDecryptionFailed)
      << result.status();
}

TEST(Aes256GcmTest, RoundTripsManySizes) {
  auto aead = NewAead();
  FakeRandom random(2);
  for (size_t size : {0, 1, 15, 16, 17, 31, 32, 33, 1000, 65536}) {
    const std::string plaintext = random.Bytes(size);
    const std::string ciphertext = aead->Encrypt(plaintext, kAd).value();
    EXPECT_EQ(ciphertext.size(), size + OpenSslAes256Gcm::kOverhead);
    EXPECT_EQ(ciphertext[0], '\x01');
    EXPECT_EQ(aead->Decrypt(ciphertext, kAd).value(), plaintext) << size;
  }
}

TEST(Aes256GcmTest, EmptyAssociatedDataWorks) {
  auto aead = NewAead();
  const std::string ciphertext = aead->Encrypt("body", "").value();
  EXPECT_EQ(aead->Decrypt(ciphertext, "").value(), "body");
  ExpectDecryptionFailed(aead->Decrypt(ciphertext, "x"));
}

TEST(Aes256GcmTest, CiphertextHidesPlaintextAndNoncesAreFresh) {
  auto aead = NewAead();
  const std::string plaintext = "ketamine 0.5 mg/kg";
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string ciphertext = aead->Encrypt(plaintext, kAd).value();
    EXPECT_EQ(ciphertext.find(plaintext), std::string::npos);
    seen.insert(ciphertext.substr(1, OpenSslAes256Gcm::kNonceSize));
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Aes256GcmTest, TamperingWithAnyByteFails) {
  auto aead = NewAead();
  const std::string ciphertext = aead->Encrypt("sealed answer", kAd).value();
  for (size_t i = 0; i < ciphertext.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string tampered = ciphertext;
      tampered[i] = static_cast<char>(tampered[i] ^ mask);
      ExpectDecryptionFailed(aead->Decrypt(tampered, kAd));
    }
  }
}

TEST(Aes256GcmTest, TruncationAndExtensionFail) {
  auto aead = NewAead();
  const std::string ciphertext = aead->Encrypt("sealed answer", kAd).value();
  for (size_t len = 0; len < ciphertext.size(); ++len) {
    ExpectDecryptionFailed(aead->Decrypt(ciphertext.substr(0, len), kAd));
  }
  ExpectDecryptionFailed(aead->Decrypt(ciphertext + "x", kAd));
}

TEST(Aes256GcmTest, WrongAssociatedDataFails) {
  auto aead = NewAead();
  const std::string ciphertext = aead->Encrypt("sealed answer", kAd).value();
  ExpectDecryptionFailed(
      aead->Decrypt(ciphertext, "tenant/acme/patients/p2/answers/a1"));
  ExpectDecryptionFailed(aead->Decrypt(ciphertext, ""));
}

TEST(Aes256GcmTest, WrongKeyFails) {
  auto aead = NewAead(1);
  auto other = NewAead(2);
  const std::string ciphertext = aead->Encrypt("sealed answer", kAd).value();
  ExpectDecryptionFailed(other->Decrypt(ciphertext, kAd));
}

TEST(Aes256GcmTest, RejectsWrongKeySize) {
  for (size_t size : {0, 16, 24, 31, 33}) {
    auto aead = OpenSslAes256Gcm::Create(std::string(size, 'k'));
    ASSERT_FALSE(aead.ok());
    EXPECT_EQ(aead.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorReason(aead.status()), kReasonKeyInvalid);
  }
}

// Known answer: decrypts a ciphertext assembled from the NIST GCM test case
// 15 (AES-256, 96-bit IV, no AAD), proving the format is plain AES-256-GCM.
TEST(Aes256GcmTest, InteroperatesWithStandardGcm) {
  const std::string key(
      "\xfe\xff\xe9\x92\x86\x65\x73\x1c\x6d\x6a\x8f\x94\x67\x30\x83\x08"
      "\xfe\xff\xe9\x92\x86\x65\x73\x1c\x6d\x6a\x8f\x94\x67\x30\x83\x08",
      32);
  const std::string nonce("\xca\xfe\xba\xbe\xfa\xce\xdb\xad\xde\xca\xf8\x88",
                          12);
  const std::string plaintext(
      "\xd9\x31\x32\x25\xf8\x84\x06\xe5\xa5\x59\x09\xc5\xaf\xf5\x26\x9a"
      "\x86\xa7\xa9\x53\x15\x34\xf7\xda\x2e\x4c\x30\x3d\x8a\x31\x8a\x72"
      "\x1c\x3c\x0c\x95\x95\x68\x09\x53\x2f\xcf\x0e\x24\x49\xa6\xb5\x25"
      "\xb1\x6a\xed\xf5\xaa\x0d\xe6\x57\xba\x63\x7b\x39\x1a\xaf\xd2\x55",
      64);
  const std::string ciphertext(
      "\x52\x2d\xc1\xf0\x99\x56\x7d\x07\xf4\x7f\x37\xa3\x2a\x84\x42\x7d"
      "\x64\x3a\x8c\xdc\xbf\xe5\xc0\xc9\x75\x98\xa2\xbd\x25\x55\xd1\xaa"
      "\x8c\xb0\x8e\x48\x59\x0d\xbb\x3d\xa7\xb0\x8b\x10\x56\x82\x88\x38"
      "\xc5\xf6\x1e\x63\x93\xba\x7a\x0a\xbc\xc9\xf6\x62\x89\x80\x15\xad",
      64);
  const std::string tag(
      "\xb0\x94\xda\xc5\xd9\x34\x71\xbd\xec\x1a\x50\x22\x70\xe3\xcc\x6c", 16);
  auto aead = OpenSslAes256Gcm::Create(key).value();
  EXPECT_EQ(aead->Decrypt("\x01" + nonce + ciphertext + tag, "").value(),
            plaintext);
}

}  // namespace
}  // namespace careseal::crypto
