#include "services/common/crypto/ed25519.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/openssl_util.h"
#include "services/common/crypto/sha256.h"
#include "services/common/status.h"

namespace careseal::crypto {
namespace {

std::string Unhex(absl::string_view hex) { return HexDecode(hex).value(); }

struct Rfc8032Vector {
  const char* name;
  const char* secret_key;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, TEST 1 to TEST 3.
const Rfc8032Vector kVectors[] = {
    {"TEST 1",
     "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb882159"
     "0"
     "a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2",
     "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43"
     "e"
     "15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3",
     "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538"
     "d"
     "16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

std::unique_ptr<OpenSslEd25519Signer> Test1Signer() {
  return OpenSslEd25519Signer::CreateFromRawPrivateKey(
             Unhex(kVectors[0].secret_key))
      .value();
}

void ExpectSignatureInvalid(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ErrorReason(status), kReasonSignatureInvalid) << status;
}

void ExpectKeyInvalid(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ErrorReason(status), kReasonKeyInvalid) << status;
}

TEST(Ed25519Test, Rfc8032Vectors) {
  for (const Rfc8032Vector& v : kVectors) {
    SCOPED_TRACE(v.name);
    auto signer =
        OpenSslEd25519Signer::CreateFromRawPrivateKey(Unhex(v.secret_key));
    ASSERT_TRUE(signer.ok()) << signer.status();
    EXPECT_EQ(HexEncode((*signer)->public_key_raw()), v.public_key);
    const std::string message = Unhex(v.message);
    const absl::StatusOr<std::string> signature = (*signer)->Sign(message);
    ASSERT_TRUE(signature.ok()) << signature.status();
    EXPECT_EQ(HexEncode(*signature), v.signature);
    // Deterministic: a second signature on a reused context is identical.
    EXPECT_EQ((*signer)->Sign(message).value(), *signature);

    auto verifier = OpenSslEd25519Verifier::Create(Unhex(v.public_key));
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    EXPECT_TRUE((*verifier)->Verify(Unhex(v.signature), message).ok());
  }
}

TEST(Ed25519Test, KeyIdIsPrefixedTruncatedSha256OfPublicKey) {
  auto signer = Test1Signer();
  const std::string expected =
      "ed25519-" + HexEncode(Sha256(signer->public_key_raw())).substr(0, 16);
  EXPECT_EQ(signer->key_id(), expected);
  EXPECT_EQ(Ed25519KeyId(signer->public_key_raw()), expected);
  auto verifier =
      OpenSslEd25519Verifier::Create(signer->public_key_raw()).value();
  EXPECT_EQ(verifier->key_id(), expected);
}

TEST(Ed25519Test, KeyIdIsStableAcrossPemRoundTrips) {
  auto signer = OpenSslEd25519Signer::Generate().value();
  const std::string pem = signer->private_key_pem().value();
  EXPECT_NE(pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  auto reloaded = OpenSslEd25519Signer::Create(pem).value();
  EXPECT_EQ(reloaded->key_id(), signer->key_id());
  EXPECT_EQ(reloaded->public_key_raw(), signer->public_key_raw());
  EXPECT_EQ(reloaded->Sign("receipt").value(), signer->Sign("receipt").value());

  EXPECT_NE(signer->public_key_pem().find("-----BEGIN PUBLIC KEY-----"),
            std::string::npos);
  auto from_pem =
      OpenSslEd25519Verifier::CreateFromPem(signer->public_key_pem()).value();
  EXPECT_EQ(from_pem->key_id(), signer->key_id());
  EXPECT_TRUE(from_pem->Verify(signer->Sign("x").value(), "x").ok());
}

TEST(Ed25519Test, GeneratedKeysDiffer) {
  auto a = OpenSslEd25519Signer::Generate().value();
  auto b = OpenSslEd25519Signer::Generate().value();
  EXPECT_NE(a->key_id(), b->key_id());
  EXPECT_NE(a->public_key_raw(), b->public_key_raw());
}

TEST(Ed25519Test, SignatureOfOneMessageDoesNotVerifyAnother) {
  auto signer = Test1Signer();
  auto verifier =
      OpenSslEd25519Verifier::Create(signer->public_key_raw()).value();
  const std::string signature = signer->Sign("consent v1").value();
  EXPECT_TRUE(verifier->Verify(signature, "consent v1").ok());
  ExpectSignatureInvalid(verifier->Verify(signature, "consent v2"));
  ExpectSignatureInvalid(verifier->Verify(signature, ""));
  ExpectSignatureInvalid(verifier->Verify(signature, "consent v1 "));
}

TEST(Ed25519Test, SignatureDoesNotVerifyUnderAnotherKey) {
  auto signer = Test1Signer();
  auto other =
      OpenSslEd25519Verifier::Create(Unhex(kVectors[1].public_key)).value();
  ExpectSignatureInvalid(other->Verify(signer->Sign("data").value(), "data"));
}

TEST(Ed25519Test, EverySingleBitFlipFails) {
  auto signer = Test1Signer();
  auto verifier =
      OpenSslEd25519Verifier::Create(signer->public_key_raw()).value();
  const std::string message = "patient consents to treatment plan 7";
  const std::string signature = signer->Sign(message).value();
  for (size_t bit = 0; bit < 8 * signature.size(); ++bit) {
    std::string flipped = signature;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    ExpectSignatureInvalid(verifier->Verify(flipped, message));
  }
  for (size_t bit = 0; bit < 8 * message.size(); ++bit) {
    std::string flipped = message;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    ExpectSignatureInvalid(verifier->Verify(signature, flipped));
  }
  EXPECT_TRUE(verifier->Verify(signature, message).ok());
}

TEST(Ed25519Test, RejectsWrongSignatureSizes) {
  auto signer = Test1Signer();
  auto verifier =
      OpenSslEd25519Verifier::Create(signer->public_key_raw()).value();
  const std::string signature = signer->Sign("m").value();
  ExpectSignatureInvalid(verifier->Verify("", "m"));
  ExpectSignatureInvalid(verifier->Verify(signature.substr(0, 63), "m"));
  ExpectSignatureInvalid(verifier->Verify(signature + "x", "m"));
}

TEST(Ed25519Test, RejectsBadKeyMaterial) {
  ExpectKeyInvalid(
      OpenSslEd25519Signer::CreateFromRawPrivateKey(std::string(31, 'k'))
          .status());
  ExpectKeyInvalid(
      OpenSslEd25519Verifier::Create(std::string(33, 'k')).status());
  ExpectKeyInvalid(OpenSslEd25519Verifier::Create("").status());
  ExpectKeyInvalid(OpenSslEd25519Signer::Create("not a pem").status());
  ExpectKeyInvalid(OpenSslEd25519Signer::Create("").status());
  ExpectKeyInvalid(OpenSslEd25519Verifier::CreateFromPem("junk").status());
  // A public key PEM is not a private key.
  auto signer = Test1Signer();
  ExpectKeyInvalid(
      OpenSslEd25519Signer::Create(signer->public_key_pem()).status());
}

TEST(Ed25519Test, RejectsKeysOfOtherAlgorithms) {
  EvpPkeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_NE(ec, nullptr);
  BioPtr priv(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PrivateKey(priv.get(), ec.get(), nullptr, nullptr, 0,
                                     nullptr, nullptr),
            1);
  ExpectKeyInvalid(
      OpenSslEd25519Signer::Create(MemBioContents(priv.get())).status());
  BioPtr pub(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PUBKEY(pub.get(), ec.get()), 1);
  ExpectKeyInvalid(
      OpenSslEd25519Verifier::CreateFromPem(MemBioContents(pub.get()))
          .status());
}

TEST(Ed25519Test, RejectsEncryptedPemWithoutPrompting) {
  auto signer = OpenSslEd25519Signer::Generate().value();
  const std::string pem = signer->private_key_pem().value();
  EvpPkeyPtr key;
  {
    BioPtr in = NewReadOnlyMemBio(pem);
    key.reset(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
    ASSERT_NE(key, nullptr);
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  static char kPassphrase[] = "correct horse";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(
                out.get(), key.get(), EVP_aes_256_cbc(), kPassphrase,
                sizeof(kPassphrase) - 1, nullptr, nullptr),
            1);
  const std::string encrypted = MemBioContents(out.get());
  ASSERT_NE(encrypted.find("ENCRYPTED PRIVATE KEY"), std::string::npos);
  ExpectKeyInvalid(OpenSslEd25519Signer::Create(encrypted).status());
}

TEST(Ed25519Test, FailuresLeaveNoOpenSslErrorsBehind) {
  auto signer = Test1Signer();
  auto verifier =
      OpenSslEd25519Verifier::Create(signer->public_key_raw()).value();
  ExpectSignatureInvalid(verifier->Verify(std::string(64, '\0'), "m"));
  ExpectKeyInvalid(OpenSslEd25519Signer::Create("junk").status());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(Ed25519Test, ConcurrentSigningAllVerifies) {
  auto signer = OpenSslEd25519Signer::Generate().value();
  auto verifier =
      OpenSslEd25519Verifier::Create(signer->public_key_raw()).value();
  constexpr int kThreads = 4;
  constexpr int kSignsPerThread = 1000;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kSignsPerThread; ++i) {
        const std::string message =
            "thread " + std::to_string(t) + " message " + std::to_string(i);
        absl::StatusOr<std::string> signature = signer->Sign(message);
        if (!signature.ok() || !verifier->Verify(*signature, message).ok() ||
            verifier->Verify(*signature, message + ".").ok()) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << t;
}

}  // namespace
}  // namespace careseal::crypto
