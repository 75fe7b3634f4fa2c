#include "services/common/crypto/key_ring.h"

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/clock.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/random.h"
#include "services/common/status.h"
#include "tests/testing/temp_dir.h"

namespace careseal::crypto {
namespace {

using ::careseal::testing::TempDir;

std::string Key(uint64_t seed) { return FakeRandom(seed).Bytes(32); }

std::unique_ptr<OpenSslEd25519Signer> FixedSigner(uint64_t seed) {
  return OpenSslEd25519Signer::CreateFromRawPrivateKey(Key(seed)).value();
}

void WriteFile(const std::string& path, const std::string& contents,
               mode_t mode) {
  std::ofstream(path, std::ios::binary) << contents;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

mode_t FileMode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

template <typename T>
void ExpectError(const T& result, absl::StatusCode code,
                 absl::string_view reason) {
  absl::Status status;
  if constexpr (std::is_same_v<T, absl::Status>) {
    status = result;
  } else {
    status = result.status();
  }
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_EQ(ErrorReason(status), reason) << status;
}

// ------------------------------------------------------------- KeyRing

TEST(KeyRingTest, WrapUnwrapRoundTrip) {
  auto ring = KeyRing::Create(Key(1)).value();
  FakeRandom random(3);
  const std::string data_key = KeyRing::NewDataKey(random);
  ASSERT_EQ(data_key.size(), KeyRing::kDataKeySize);
  const std::string wrapped = ring->WrapDataKey("acme", data_key).value();
  EXPECT_EQ(wrapped.find(data_key), std::string::npos);
  EXPECT_EQ(ring->UnwrapDataKey("acme", wrapped).value(), data_key);
}

TEST(KeyRingTest, WrappedKeyNamesItsMasterKey) {
  auto ring = KeyRing::Create(Key(1)).value();
  EXPECT_EQ(ring->master_key_id(), KeyRing::MasterKeyId(Key(1)));
  EXPECT_EQ(ring->master_key_id().rfind("aes256gcm:", 0), 0u);
  EXPECT_EQ(ring->master_key_id().size(), 10u + 16u);
  EXPECT_NE(KeyRing::MasterKeyId(Key(1)), KeyRing::MasterKeyId(Key(2)));
  const std::string wrapped = ring->WrapDataKey("acme", Key(9)).value();
  EXPECT_NE(wrapped.find(ring->master_key_id()), std::string::npos);
  EXPECT_EQ(KeyRing::WrappingKeyId(wrapped).value(), ring->master_key_id());
}

TEST(KeyRingTest, WrappedKeyIsBoundToItsTenant) {
  auto ring = KeyRing::Create(Key(1)).value();
  const std::string wrapped = ring->WrapDataKey("acme", Key(9)).value();
  ExpectError(ring->UnwrapDataKey("globex", wrapped),
              absl::StatusCode::kInvalidArgument, kReasonDecryptionFailed);
  ExpectError(ring->UnwrapDataKey("acm", wrapped),
              absl::StatusCode::kInvalidArgument, kReasonDecryptionFailed);
}

TEST(KeyRingTest, TamperingWithAnyByteFails) {
  auto ring = KeyRing::Create(Key(1)).value();
  const std::string wrapped = ring->WrapDataKey("acme", Key(9)).value();
  for (size_t i = 0; i < wrapped.size(); ++i) {
    std::string tampered = wrapped;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    EXPECT_FALSE(ring->UnwrapDataKey("acme", tampered).ok()) << i;
  }
  EXPECT_FALSE(ring->UnwrapDataKey("acme", "").ok());
  EXPECT_FALSE(
      ring->UnwrapDataKey("acme", wrapped.substr(0, wrapped.size() - 1)).ok());
}

TEST(KeyRingTest, UnknownMasterKeyIsReported) {
  auto old_ring = KeyRing::Create(Key(1)).value();
  auto new_ring = KeyRing::Create(Key(2)).value();
  const std::string wrapped = old_ring->WrapDataKey("acme", Key(9)).value();
  ExpectError(new_ring->UnwrapDataKey("acme", wrapped),
              absl::StatusCode::kFailedPrecondition, kReasonUnknownMasterKeyId);
}

TEST(KeyRingTest, RetiredMasterKeyStillUnwraps) {
  auto old_ring = KeyRing::Create(Key(1)).value();
  const std::string old_wrapped = old_ring->WrapDataKey("acme", Key(9)).value();
  auto ring = KeyRing::Create(Key(2), {Key(1)}).value();
  EXPECT_EQ(ring->UnwrapDataKey("acme", old_wrapped).value(), Key(9));
  // Rewrap under the current key.
  const std::string rewrapped = ring->WrapDataKey("acme", Key(9)).value();
  EXPECT_EQ(KeyRing::WrappingKeyId(rewrapped).value(),
            KeyRing::MasterKeyId(Key(2)));
  EXPECT_EQ(ring->UnwrapDataKey("acme", rewrapped).value(), Key(9));
}

TEST(KeyRingTest, RejectsBadInput) {
  ExpectError(KeyRing::Create(std::string(16, 'k')),
              absl::StatusCode::kInvalidArgument, kReasonKeyInvalid);
  ExpectError(KeyRing::Create(Key(1), {"short"}),
              absl::StatusCode::kInvalidArgument, kReasonKeyInvalid);
  auto ring = KeyRing::Create(Key(1)).value();
  ExpectError(ring->WrapDataKey("acme", "short"),
              absl::StatusCode::kInvalidArgument, kReasonKeyInvalid);
  EXPECT_EQ(ring->WrapDataKey("", Key(9)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KeyRingTest, LoadsMasterKeyFile) {
  TempDir dir;
  const std::string path = dir.File("master.key");
  WriteFile(path, Key(1), 0600);
  EXPECT_EQ(LoadMasterKeyFile(path).value(), Key(1));
  WriteFile(path, Key(1), 0400);
  EXPECT_EQ(LoadMasterKeyFile(path).value(), Key(1));
}

TEST(KeyRingTest, RejectsUnsafeOrWrongMasterKeyFiles) {
  TempDir dir;
  const std::string path = dir.File("master.key");
  ExpectError(LoadMasterKeyFile(path), absl::StatusCode::kFailedPrecondition,
              kReasonKeyFileUnreadable);
  WriteFile(path, Key(1), 0644);
  ExpectError(LoadMasterKeyFile(path), absl::StatusCode::kFailedPrecondition,
              kReasonKeyFileInsecure);
  WriteFile(path, Key(1), 0640);
  ExpectError(LoadMasterKeyFile(path), absl::StatusCode::kFailedPrecondition,
              kReasonKeyFileInsecure);
  WriteFile(path, Key(1) + "\n", 0600);
  ExpectError(LoadMasterKeyFile(path), absl::StatusCode::kFailedPrecondition,
              kReasonKeyFileUnreadable);
  ExpectError(LoadMasterKeyFile(dir.path()),
              absl::StatusCode::kFailedPrecondition, kReasonKeyFileUnreadable);
}

// ------------------------------------------------------ SigningKeyRing

TEST(SigningKeyRingTest, RotationKeepsOldSignaturesVerifiable) {
  FakeClock clock;
  auto ring = SigningKeyRing::Create(FixedSigner(1), &clock).value();
  const std::shared_ptr<const Signer> first = ring->Current();
  const std::string first_id = first->key_id();
  const std::string old_signature = first->Sign("receipt 1").value();

  clock.Advance(absl::Hours(24 * 90));
  ASSERT_TRUE(ring->Rotate(FixedSigner(2)).ok());
  const std::shared_ptr<const Signer> second = ring->Current();
  EXPECT_NE(second->key_id(), first_id);
  const std::string new_signature = second->Sign("receipt 2").value();

  EXPECT_TRUE(ring->VerifierFor(first_id)
                  .value()
                  ->Verify(old_signature, "receipt 1")
                  .ok());
  EXPECT_TRUE(ring->VerifierFor(second->key_id())
                  .value()
                  ->Verify(new_signature, "receipt 2")
                  .ok());
  // Keys are not interchangeable.
  EXPECT_FALSE(ring->VerifierFor(first_id)
                   .value()
                   ->Verify(new_signature, "receipt 2")
                   .ok());
  // A signer handed out before the rotation keeps working.
  EXPECT_EQ(first->Sign("late").value().size(), 64u);
}

TEST(SigningKeyRingTest, UnknownKeyIdIsNotFound) {
  FakeClock clock;
  auto ring = SigningKeyRing::Create(FixedSigner(1), &clock).value();
  ExpectError(ring->VerifierFor("ed25519-0000000000000000"),
              absl::StatusCode::kNotFound, kReasonUnknownKeyId);
  ExpectError(ring->VerifierFor(""), absl::StatusCode::kNotFound,
              kReasonUnknownKeyId);
}

TEST(SigningKeyRingTest, ListsPublicKeysWithStatesAndTimes) {
  FakeClock clock;
  const absl::Time t0 = clock.Now();
  auto ring = SigningKeyRing::Create(FixedSigner(1), &clock).value();
  clock.Advance(absl::Hours(1));
  ASSERT_TRUE(ring->Rotate(FixedSigner(2)).ok());
  clock.Advance(absl::Hours(1));
  ASSERT_TRUE(ring->Rotate(FixedSigner(3)).ok());

  const std::vector<PublicKeyInfo> keys = ring->ListPublicKeys();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0].key_id, FixedSigner(3)->key_id());
  EXPECT_EQ(keys[0].public_key_raw, FixedSigner(3)->public_key_raw());
  EXPECT_EQ(keys[0].state, KeyState::kCurrent);
  EXPECT_EQ(keys[0].create_time, t0 + absl::Hours(2));
  EXPECT_EQ(keys[0].retire_time, absl::InfiniteFuture());

  EXPECT_EQ(keys[1].key_id, FixedSigner(2)->key_id());
  EXPECT_EQ(keys[1].state, KeyState::kRetired);
  EXPECT_EQ(keys[1].create_time, t0 + absl::Hours(1));
  EXPECT_EQ(keys[1].retire_time, t0 + absl::Hours(2));

  EXPECT_EQ(keys[2].key_id, FixedSigner(1)->key_id());
  EXPECT_EQ(keys[2].state, KeyState::kRetired);
  EXPECT_EQ(keys[2].create_time, t0);
  EXPECT_EQ(keys[2].retire_time, t0 + absl::Hours(1));
}

TEST(SigningKeyRingTest, RefusesToRotateToAKnownKey) {
  FakeClock clock;
  auto ring = SigningKeyRing::Create(FixedSigner(1), &clock).value();
  ExpectError(ring->Rotate(FixedSigner(1)), absl::StatusCode::kAlreadyExists,
              kReasonKeyIdExists);
  ASSERT_TRUE(ring->Rotate(FixedSigner(2)).ok());
  ExpectError(ring->Rotate(FixedSigner(1)), absl::StatusCode::kAlreadyExists,
              kReasonKeyIdExists);
  EXPECT_EQ(ring->Current()->key_id(), FixedSigner(2)->key_id());
}

TEST(SigningKeyRingTest, RestoredRetiredKeysVerify) {
  FakeClock clock;
  auto old_signer = FixedSigner(1);
  const std::string signature = old_signer->Sign("2025 receipt").value();
  // After a restart: only the new key is loaded; the old public key comes
  // from storage.
  auto ring = SigningKeyRing::Create(FixedSigner(2), &clock).value();
  const absl::Time created = clock.Now() - absl::Hours(100);
  const absl::Time retired = clock.Now() - absl::Hours(10);
  ASSERT_TRUE(
      ring->AddRetiredKey(old_signer->public_key_raw(), created, retired).ok());
  EXPECT_TRUE(ring->VerifierFor(old_signer->key_id())
                  .value()
                  ->Verify(signature, "2025 receipt")
                  .ok());
  ExpectError(
      ring->AddRetiredKey(old_signer->public_key_raw(), created, retired),
      absl::StatusCode::kAlreadyExists, kReasonKeyIdExists);
  ExpectError(ring->AddRetiredKey("short", created, retired),
              absl::StatusCode::kInvalidArgument, kReasonKeyInvalid);
  const auto keys = ring->ListPublicKeys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1].key_id, old_signer->key_id());
  EXPECT_EQ(keys[1].create_time, created);
  EXPECT_EQ(keys[1].retire_time, retired);
}

TEST(SigningKeyRingTest, ConcurrentSignRotateVerify) {
  FakeClock clock;
  auto ring = SigningKeyRing::Create(FixedSigner(100), &clock).value();
  std::vector<std::thread> threads;
  std::vector<int> failures(3, 0);
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string message = std::to_string(t * 1000 + i);
        auto signer = ring->Current();
        auto signature = signer->Sign(message);
        auto verifier = ring->VerifierFor(signer->key_id());
        if (!signature.ok() || !verifier.ok() ||
            !(*verifier)->Verify(*signature, message).ok()) {
          ++failures[t];
        }
      }
    });
  }
  for (int r = 0; r < 20; ++r) {
    ASSERT_TRUE(ring->Rotate(FixedSigner(200 + r)).ok());
  }
  for (auto& thread : threads) thread.join();
  for (int f : failures) EXPECT_EQ(f, 0);
  EXPECT_EQ(ring->ListPublicKeys().size(), 21u);
}

// ------------------------------------------------------------ key files

TEST(LoadOrCreateSigningKeyTest, CreatesA0600FileThenLoadsTheSameKey) {
  TempDir dir;
  const std::string path = dir.File("signing.pem");
  auto created = LoadOrCreateSigningKey(path);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(FileMode(path), 0600u);
  auto loaded = LoadOrCreateSigningKey(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->key_id(), (*created)->key_id());
  const std::string signature = (*created)->Sign("m").value();
  EXPECT_TRUE(OpenSslEd25519Verifier::Create((*loaded)->public_key_raw())
                  .value()
                  ->Verify(signature, "m")
                  .ok());
  // No temporary files are left behind.
  int entries = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator(dir.path())) {
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(LoadOrCreateSigningKeyTest, LoadsAnExistingPemFile) {
  TempDir dir;
  const std::string path = dir.File("signing.pem");
  auto signer = FixedSigner(7);
  WriteFile(path, signer->private_key_pem().value(), 0600);
  EXPECT_EQ(LoadOrCreateSigningKey(path).value()->key_id(), signer->key_id());
}

TEST(LoadOrCreateSigningKeyTest, RejectsUnsafeOrBadFiles) {
  TempDir dir;
  const std::string path = dir.File("signing.pem");
  WriteFile(path, FixedSigner(7)->private_key_pem().value(), 0644);
  ExpectError(LoadOrCreateSigningKey(path),
              absl::StatusCode::kFailedPrecondition, kReasonKeyFileInsecure);
  WriteFile(path, "not a key", 0600);
  ExpectError(LoadOrCreateSigningKey(path), absl::StatusCode::kInvalidArgument,
              kReasonKeyInvalid);
  ExpectError(LoadOrCreateSigningKey(dir.File("missing-dir/signing.pem")),
              absl::StatusCode::kInternal, kReasonKeyFileWriteFailed);
}

TEST(LoadOrCreateSigningKeyTest, ConcurrentCreatorsAgreeOnOneKey) {
  TempDir dir;
  const std::string path = dir.File("signing.pem");
  std::vector<std::string> ids(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto signer = LoadOrCreateSigningKey(path);
      ids[t] = signer.ok() ? (*signer)->key_id() : signer.status().ToString();
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 1; t < 4; ++t) EXPECT_EQ(ids[t], ids[0]);
}

}  // namespace
}  // namespace careseal::crypto
