#include "services/common/authn/jwt.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "services/common/clock.h"
#include "services/common/crypto/ed25519.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/openssl_util.h"
#include "services/common/status.h"

namespace careseal::authn {
namespace {

using Json = nlohmann::json;
using crypto::Base64UrlDecode;
using crypto::Base64UrlEncode;

constexpr char kIssuer[] = "spiffe://careseal.local/tenant/t1/ehr/acme";
constexpr char kAudience[] = "careseal";
constexpr char kSubject[] = "clin_7q2x9";
constexpr char kEsKid[] = "acme-es-2026";
constexpr char kEdKid[] = "portal-ed-2026";

// ------------------------------------------------------------- Assertions

template <typename T>
::testing::AssertionResult HasReason(const absl::StatusOr<T>& result,
                                     absl::StatusCode code,
                                     absl::string_view reason,
                                     absl::string_view message_part = "") {
  if (result.ok()) return ::testing::AssertionFailure() << "accepted";
  if (result.status().code() != code ||
      ErrorReason(result.status()) != reason ||
      !absl::StrContains(result.status().message(), message_part)) {
    return ::testing::AssertionFailure()
           << "got " << result.status() << " reason "
           << ErrorReason(result.status()) << ", want " << reason << " / \""
           << message_part << "\"";
  }
  return ::testing::AssertionSuccess();
}

#define EXPECT_REASON(expr, code, reason) \
  EXPECT_TRUE(HasReason((expr), (code), (reason)))
#define EXPECT_UNAUTHENTICATED(expr, reason) \
  EXPECT_REASON(expr, absl::StatusCode::kUnauthenticated, reason)
// Also pins the check that fired, by a fragment of its message.
#define EXPECT_UNAUTHENTICATED_AT(expr, reason, message_part)                 \
  EXPECT_TRUE(HasReason((expr), absl::StatusCode::kUnauthenticated, (reason), \
                        (message_part)))
#define EXPECT_INVALID_JWKS(json, reason) \
  EXPECT_REASON(Jwks::Parse(json), absl::StatusCode::kInvalidArgument, reason)

// ---------------------------------------------------------------- Helpers

// {"keys": a.keys + b.keys}.
std::string MergeJwks(const std::string& a, const std::string& b) {
  Json merged = Json::parse(a);
  const Json other = Json::parse(b);
  for (const Json& key : other["keys"]) merged["keys"].push_back(key);
  return merged.dump();
}

std::vector<std::string> Parts(const std::string& token) {
  return absl::StrSplit(token, '.');
}

std::string Join(const std::vector<std::string>& parts) {
  return absl::StrCat(parts[0], ".", parts[1], ".", parts[2]);
}

std::string EncodeJson(const Json& j) { return Base64UrlEncode(j.dump()); }

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t out_len = 0;
  EXPECT_NE(
      EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(),
                key.size(), reinterpret_cast<const unsigned char*>(data.data()),
                data.size(), out, sizeof(out), &out_len),
      nullptr);
  return std::string(reinterpret_cast<char*>(out), out_len);
}

std::string PemOf(EVP_PKEY* key) {
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                     nullptr, nullptr),
            1);
  return crypto::MemBioContents(bio.get());
}

class JwtTest : public ::testing::Test {
 protected:
  JwtTest()
      : cache_(&clock_),
        verifier_(JwtVerifier::Create(&clock_, &cache_).value()),
        es_(JwtSigner::GenerateEs256(kEsKid).value()),
        ed_(JwtSigner::GenerateEd25519(kEdKid).value()),
        keys_(Jwks::Parse(MergeJwks(es_->PublicJwks(), ed_->PublicJwks()))
                  .value()) {
    policy_.issuer = kIssuer;
    policy_.audience = kAudience;
  }

  int64_t Now() const { return absl::ToUnixSeconds(clock_.Now()); }

  // Valid claims: issued now, living `lifetime_s` seconds, a fresh jti.
  Json Claims(int64_t lifetime_s = 600) {
    return Json{{"iss", kIssuer},
                {"sub", kSubject},
                {"aud", kAudience},
                {"iat", Now()},
                {"exp", Now() + lifetime_s},
                {"jti", absl::StrCat("jti-", next_jti_++)},
                {"role", "clinician"}};
  }

  std::string SignEs(const Json& claims) { return es_->Sign(claims).value(); }
  std::string SignEd(const Json& claims) { return ed_->Sign(claims).value(); }

  absl::StatusOr<VerifiedToken> Verify(absl::string_view token) {
    return verifier_->Verify(token, keys_, policy_);
  }

  FakeClock clock_;
  InMemoryReplayCache cache_;
  std::unique_ptr<JwtVerifier> verifier_;
  std::unique_ptr<JwtSigner> es_;
  std::unique_ptr<JwtSigner> ed_;
  Jwks keys_;
  TokenPolicy policy_;
  int next_jti_ = 0;
};

// ------------------------------------------------------------ Valid tokens

TEST_F(JwtTest, ValidEs256TokenVerifies) {
  Json claims = Claims(900);
  absl::StatusOr<VerifiedToken> token = Verify(SignEs(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->issuer, kIssuer);
  EXPECT_EQ(token->subject, kSubject);
  EXPECT_EQ(token->audience, kAudience);
  EXPECT_EQ(token->jwt_id, claims["jti"]);
  EXPECT_EQ(token->issued_at, clock_.Now());
  EXPECT_EQ(token->not_before, clock_.Now());
  EXPECT_EQ(token->expires_at, clock_.Now() + absl::Minutes(15));
  EXPECT_EQ(token->claims["role"], "clinician");
}

TEST_F(JwtTest, ValidEdDsaTokenVerifies) {
  Json claims = Claims();
  claims["nbf"] = Now() - 5;
  absl::StatusOr<VerifiedToken> token = Verify(SignEd(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->subject, kSubject);
  EXPECT_EQ(token->not_before, clock_.Now() - absl::Seconds(5));
  EXPECT_EQ(token->claims, claims);
}

TEST_F(JwtTest, HeadersCarryAlgKidAndTyp) {
  Json es_header = Json::parse(*Base64UrlDecode(Parts(SignEs(Claims()))[0]));
  EXPECT_EQ(es_header["alg"], "ES256");
  EXPECT_EQ(es_header["kid"], kEsKid);
  EXPECT_EQ(es_header["typ"], "JWT");
  Json ed_header = Json::parse(*Base64UrlDecode(Parts(SignEd(Claims()))[0]));
  EXPECT_EQ(ed_header["alg"], "EdDSA");
  EXPECT_EQ(ed_header["kid"], kEdKid);
}

TEST_F(JwtTest, AudienceArrayContainingOursVerifies) {
  Json claims = Claims();
  claims["aud"] = {"other-service", kAudience};
  EXPECT_TRUE(Verify(SignEs(claims)).ok());
}

TEST_F(JwtTest, FractionalNumericDatesVerify) {
  Json claims = Claims();
  claims["iat"] = static_cast<double>(Now()) + 0.5;
  claims["exp"] = static_cast<double>(Now()) + 600.25;
  absl::StatusOr<VerifiedToken> token = Verify(SignEd(claims));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->issued_at, clock_.Now() + absl::Milliseconds(500));
}

// Many ES256 signatures: some have R or S with a leading zero byte, which
// must be padded by the signer and accepted by the verifier.
TEST_F(JwtTest, ManyEs256SignaturesAllVerify) {
  for (int i = 0; i < 300; ++i) {
    std::string token = SignEs(Claims());
    ASSERT_EQ(Base64UrlDecode(Parts(token)[2])->size(), 64u);
    ASSERT_TRUE(Verify(token).ok()) << i;
  }
}

TEST_F(JwtTest, SignersLoadFromPem) {
  crypto::EvpPkeyPtr p256(EVP_EC_gen("P-256"));
  ASSERT_NE(p256, nullptr);
  absl::StatusOr<std::unique_ptr<JwtSigner>> es =
      JwtSigner::CreateEs256(PemOf(p256.get()), "pem-es");
  ASSERT_TRUE(es.ok()) << es.status();
  auto ed25519 = crypto::OpenSslEd25519Signer::Generate().value();
  absl::StatusOr<std::unique_ptr<JwtSigner>> ed =
      JwtSigner::CreateEd25519(ed25519->private_key_pem().value(), "pem-ed");
  ASSERT_TRUE(ed.ok()) << ed.status();

  Jwks keys =
      Jwks::Parse(MergeJwks((*es)->PublicJwks(), (*ed)->PublicJwks())).value();
  EXPECT_EQ(keys.KeyIds(), (std::vector<std::string>{"pem-ed", "pem-es"}));
  EXPECT_TRUE(
      verifier_->Verify((*es)->Sign(Claims()).value(), keys, policy_).ok());
  EXPECT_TRUE(
      verifier_->Verify((*ed)->Sign(Claims()).value(), keys, policy_).ok());

  // Wrong key types and curves are refused.
  EXPECT_REASON(JwtSigner::CreateEs256(ed25519->private_key_pem().value(), "k"),
                absl::StatusCode::kInvalidArgument, "KEY_INVALID");
  crypto::EvpPkeyPtr p384(EVP_EC_gen("P-384"));
  EXPECT_REASON(JwtSigner::CreateEs256(PemOf(p384.get()), "k"),
                absl::StatusCode::kInvalidArgument, "KEY_INVALID");
  EXPECT_REASON(JwtSigner::CreateEd25519(PemOf(p256.get()), "k"),
                absl::StatusCode::kInvalidArgument, "KEY_INVALID");
  EXPECT_REASON(JwtSigner::CreateEs256("not a pem", "k"),
                absl::StatusCode::kInvalidArgument, "KEY_INVALID");
  EXPECT_REASON(JwtSigner::GenerateEs256(""),
                absl::StatusCode::kInvalidArgument, "KEY_INVALID");
  EXPECT_EQ(es_->Sign(Json::array({1, 2})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------------ Time and lifetime
// Skew is 30 s. Accepted iff  now < exp + skew,  nbf <= now + skew,
// iat <= now + skew,  exp - iat <= 15 min.

TEST_F(JwtTest, ExpiryBoundaryBothSides) {
  const absl::Time t = clock_.Now();
  Json claims = Claims(600);  // exp = T + 600 s.
  const absl::Time exp = t + absl::Seconds(600);
  const absl::Duration skew = policy_.clock_skew;

  clock_.Set(exp + skew - absl::Seconds(1));
  EXPECT_TRUE(Verify(SignEs(claims)).ok());

  claims["jti"] = "second";
  clock_.Set(exp + skew);
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenExpired,
                            "expired");
  clock_.Set(exp + skew + absl::Seconds(1));
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEd(claims)), kReasonTokenExpired,
                            "expired");
  // One second before the boundary it is still fine (and was not consumed
  // by the failed attempts).
  clock_.Set(exp + skew - absl::Seconds(1));
  EXPECT_TRUE(Verify(SignEd(claims)).ok());
}

TEST_F(JwtTest, TokenExpiredOneSecondAgoAndBeyondSkewFails) {
  const absl::Time t = clock_.Now();
  Json claims = Claims();
  claims["iat"] = absl::ToUnixSeconds(t) - 300;
  claims["exp"] = absl::ToUnixSeconds(t) - 1;  // exp = T - 1 s.
  // Within skew at T: accepted.
  EXPECT_TRUE(Verify(SignEs(claims)).ok());
  claims["jti"] = "other";
  clock_.Set(t + policy_.clock_skew - absl::Seconds(1));
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenExpired,
                            "expired");
  clock_.Set(t + policy_.clock_skew + absl::Seconds(1));
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenExpired,
                            "expired");
}

TEST_F(JwtTest, NotBeforeBoundaryBothSides) {
  const absl::Time t = clock_.Now();
  Json claims = Claims();
  const int64_t nbf = absl::ToUnixSeconds(t) + 120;
  claims["nbf"] = nbf;
  claims["exp"] = nbf + 600;
  const absl::Time nbf_time = absl::FromUnixSeconds(nbf);

  clock_.Set(nbf_time - policy_.clock_skew - absl::Seconds(1));
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "(nbf)");
  clock_.Set(nbf_time - policy_.clock_skew);
  EXPECT_TRUE(Verify(SignEs(claims)).ok());
}

TEST_F(JwtTest, IssuedInTheFutureBoundaryBothSides) {
  const absl::Time t = clock_.Now();
  Json claims = Claims();
  const int64_t iat = absl::ToUnixSeconds(t) + 300;
  claims["iat"] = iat;
  claims["exp"] = iat + 600;
  const absl::Time iat_time = absl::FromUnixSeconds(iat);

  clock_.Set(iat_time - policy_.clock_skew - absl::Seconds(1));
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEd(claims)), kReasonTokenInvalid,
                            "(iat)");
  clock_.Set(iat_time - policy_.clock_skew);
  EXPECT_TRUE(Verify(SignEd(claims)).ok());
}

TEST_F(JwtTest, LifetimeOfFifteenMinutesAcceptedSixteenRejected) {
  EXPECT_TRUE(Verify(SignEs(Claims(15 * 60))).ok());
  EXPECT_UNAUTHENTICATED(Verify(SignEs(Claims(15 * 60 + 1))),
                         kReasonTokenInvalid);
  absl::StatusOr<VerifiedToken> sixteen = Verify(SignEs(Claims(16 * 60)));
  EXPECT_UNAUTHENTICATED(sixteen, kReasonTokenInvalid);
  EXPECT_EQ(sixteen.status().message(), "token lifetime exceeds 15 minutes");
  EXPECT_TRUE(Verify(SignEd(Claims(15 * 60))).ok());
  EXPECT_UNAUTHENTICATED(Verify(SignEd(Claims(16 * 60))), kReasonTokenInvalid);
}

TEST_F(JwtTest, ExpBeforeIatRejected) {
  Json claims = Claims();
  claims["exp"] = Now() + 10;
  claims["iat"] = Now() + 20;
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "expires before it is issued");
}

TEST_F(JwtTest, MalformedOrMissingTimesRejected) {
  for (const char* claim : {"exp", "iat"}) {
    Json missing = Claims();
    missing.erase(claim);
    EXPECT_UNAUTHENTICATED(Verify(SignEs(missing)), kReasonTokenInvalid)
        << claim;
  }
  for (const char* claim : {"exp", "iat", "nbf"}) {
    for (const Json& bad : {Json("1767225600"), Json(-5), Json(true),
                            Json(1e300), Json::array({1})}) {
      Json claims = Claims();
      claims[claim] = bad;
      EXPECT_UNAUTHENTICATED(Verify(SignEs(claims)), kReasonTokenInvalid)
          << claim << "=" << bad.dump();
    }
  }
}

// ------------------------------------------------------- Issuer, audience

TEST_F(JwtTest, WrongIssuerRejected) {
  Json claims = Claims();
  claims["iss"] = "spiffe://careseal.local/tenant/t2/ehr/other";
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonIssuerNotAllowed,
                            "issuer");
  claims.erase("iss");
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEd(claims)), kReasonIssuerNotAllowed,
                            "issuer");
  claims["iss"] = Json::array({kIssuer});
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEd(claims)), kReasonIssuerNotAllowed,
                            "issuer");
}

TEST_F(JwtTest, WrongAudienceRejected) {
  Json claims = Claims();
  claims["aud"] = "another-service";
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "audience");
  claims["aud"] = {"a", "b"};
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "audience");
  claims["aud"] = {kAudience, 7};  // Arrays must hold strings only.
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "audience");
  claims["aud"] = Json::array();
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "audience");
  claims.erase("aud");
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "audience");
}

// -------------------------------------------------------------- Key choice

TEST_F(JwtTest, UnknownKidRejected) {
  auto stranger = JwtSigner::GenerateEs256("not-registered").value();
  EXPECT_UNAUTHENTICATED_AT(Verify(stranger->Sign(Claims()).value()),
                            kReasonTokenInvalid, "unknown key id");
  auto stranger_ed = JwtSigner::GenerateEd25519("not-registered").value();
  EXPECT_UNAUTHENTICATED_AT(Verify(stranger_ed->Sign(Claims()).value()),
                            kReasonTokenInvalid, "unknown key id");
  // No kid at all.
  std::vector<std::string> parts = Parts(SignEs(Claims()));
  parts[0] = EncodeJson({{"alg", "ES256"}});
  EXPECT_UNAUTHENTICATED_AT(Verify(Join(parts)), kReasonTokenInvalid,
                            "no \"kid\"");
}

TEST_F(JwtTest, KeyFromAnotherJwksRejected) {
  // EHR B's own, valid token (its issuer name in iss), checked against EHR
  // A's key set: B's key is not in it.
  auto ehr_b = JwtSigner::GenerateEs256("ehr-b-key").value();
  Jwks b_keys = Jwks::Parse(ehr_b->PublicJwks()).value();
  std::string token = ehr_b->Sign(Claims()).value();
  EXPECT_UNAUTHENTICATED_AT(Verify(token), kReasonTokenInvalid,
                            "unknown key id");
  // ...and A's tokens do not verify under B's key set either.
  EXPECT_UNAUTHENTICATED_AT(
      verifier_->Verify(SignEs(Claims()), b_keys, policy_), kReasonTokenInvalid,
      "unknown key id");
  // Sanity: the same token is fine with B's set.
  EXPECT_TRUE(verifier_->Verify(token, b_keys, policy_).ok());
}

TEST_F(JwtTest, AlgMustMatchKeyType) {
  // EdDSA-signed token naming the ES256 key.
  auto raw_ed = crypto::OpenSslEd25519Signer::Generate().value();
  std::string input =
      absl::StrCat(EncodeJson({{"alg", "EdDSA"}, {"kid", kEsKid}}), ".",
                   EncodeJson(Claims()));
  std::string token =
      absl::StrCat(input, ".", Base64UrlEncode(raw_ed->Sign(input).value()));
  EXPECT_UNAUTHENTICATED_AT(Verify(token), kReasonTokenInvalid,
                            "does not match the type of its key");
  // An ES256 token relabelled to name the Ed25519 key.
  std::vector<std::string> parts = Parts(SignEs(Claims()));
  parts[0] = EncodeJson({{"alg", "ES256"}, {"kid", kEdKid}});
  EXPECT_UNAUTHENTICATED_AT(Verify(Join(parts)), kReasonTokenInvalid,
                            "does not match the type of its key");
}

// ------------------------------------------------------------- Signatures

TEST_F(JwtTest, FlippedSignatureByteRejected) {
  for (bool es : {true, false}) {
    for (size_t index : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
      std::vector<std::string> parts =
          Parts(es ? SignEs(Claims()) : SignEd(Claims()));
      std::string sig = *Base64UrlDecode(parts[2]);
      sig[index] ^= 0x01;
      parts[2] = Base64UrlEncode(sig);
      EXPECT_UNAUTHENTICATED_AT(Verify(Join(parts)), kReasonTokenInvalid,
                                "signature does not verify")
          << (es ? "ES256" : "EdDSA") << " byte " << index;
    }
  }
}

TEST_F(JwtTest, ResignedWithAnotherKeyUnderSameKidRejected) {
  auto impostor_es = JwtSigner::GenerateEs256(kEsKid).value();
  EXPECT_UNAUTHENTICATED_AT(Verify(impostor_es->Sign(Claims()).value()),
                            kReasonTokenInvalid, "signature does not verify");
  auto impostor_ed = JwtSigner::GenerateEd25519(kEdKid).value();
  EXPECT_UNAUTHENTICATED_AT(Verify(impostor_ed->Sign(Claims()).value()),
                            kReasonTokenInvalid, "signature does not verify");
}

TEST_F(JwtTest, Es256SignatureOfWrongLengthRejected) {
  std::vector<std::string> parts = Parts(SignEs(Claims()));
  std::string sig = *Base64UrlDecode(parts[2]);
  // R and S each left-padded with a zero byte: same numbers, 66 bytes.
  std::string padded = absl::StrCat(std::string(1, '\0'), sig.substr(0, 32),
                                    std::string(1, '\0'), sig.substr(32));
  parts[2] = Base64UrlEncode(padded);
  EXPECT_UNAUTHENTICATED_AT(Verify(Join(parts)), kReasonTokenInvalid,
                            "must be 64 bytes");
  parts[2] = Base64UrlEncode(sig.substr(0, 63));
  EXPECT_UNAUTHENTICATED_AT(Verify(Join(parts)), kReasonTokenInvalid,
                            "must be 64 bytes");
}

TEST_F(JwtTest, AlgNoneRejected) {
  for (const char* none : {"none", "None", "NONE"}) {
    std::string header = EncodeJson({{"alg", none}, {"kid", kEsKid}});
    std::string payload = EncodeJson(Claims());
    EXPECT_UNAUTHENTICATED_AT(Verify(absl::StrCat(header, ".", payload, ".")),
                              kReasonTokenInvalid, "alg \"none\"");
    // With a stolen signature appended, too.
    std::string real_sig = Parts(SignEs(Claims()))[2];
    EXPECT_UNAUTHENTICATED_AT(
        Verify(absl::StrCat(header, ".", payload, ".", real_sig)),
        kReasonTokenInvalid, "alg \"none\"");
  }
}

// The classic confusion attack: an attacker who knows the public key signs
// with HMAC using the public key bytes as the secret, hoping the verifier
// feeds "the key" to whatever alg the header names.
TEST_F(JwtTest, Hs256WithPublicKeyAsSecretRejected) {
  Json es_jwk = Json::parse(es_->PublicJwks())["keys"][0];
  Json ed_jwk = Json::parse(ed_->PublicJwks())["keys"][0];
  const std::vector<std::pair<std::string, std::string>> attempts = {
      {kEsKid, es_->PublicJwks()},
      {kEsKid, es_jwk.dump()},
      {kEsKid, *Base64UrlDecode(es_jwk["x"].get<std::string>()) +
                   *Base64UrlDecode(es_jwk["y"].get<std::string>())},
      {kEdKid, ed_->PublicJwks()},
      {kEdKid, *Base64UrlDecode(ed_jwk["x"].get<std::string>())},
  };
  for (const char* alg : {"HS256", "HS384", "HS512"}) {
    for (const auto& [kid, secret] : attempts) {
      std::string input = absl::StrCat(EncodeJson({{"alg", alg}, {"kid", kid}}),
                                       ".", EncodeJson(Claims()));
      std::string token =
          absl::StrCat(input, ".", Base64UrlEncode(HmacSha256(secret, input)));
      EXPECT_UNAUTHENTICATED_AT(Verify(token), kReasonTokenInvalid,
                                "alg must be ES256 or EdDSA")
          << alg << " " << kid;
    }
  }
  // Other algorithms CareSeal never registers keys for.
  for (const char* alg : {"RS256", "PS256", "ES384", "ES512", "ED25519", ""}) {
    std::vector<std::string> parts = Parts(SignEs(Claims()));
    parts[0] = EncodeJson({{"alg", alg}, {"kid", kEsKid}});
    EXPECT_UNAUTHENTICATED_AT(Verify(Join(parts)), kReasonTokenInvalid,
                              "alg must be ES256 or EdDSA")
        << alg;
  }
}

TEST_F(JwtTest, TamperedPayloadRejected) {
  for (bool es : {true, false}) {
    Json claims = Claims();
    std::vector<std::string> parts =
        Parts(es ? SignEs(claims) : SignEd(claims));
    claims["sub"] = "pat_someone_else";
    parts[1] = EncodeJson(claims);
    EXPECT_UNAUTHENTICATED_AT(Verify(Join(parts)), kReasonTokenInvalid,
                              "signature does not verify")
        << es;
    claims = Claims();
    claims["role"] = "admin";
    parts[1] = EncodeJson(claims);
    EXPECT_UNAUTHENTICATED_AT(Verify(Join(parts)), kReasonTokenInvalid,
                              "signature does not verify")
        << es;
  }
}

TEST_F(JwtTest, TamperedHeaderRejected) {
  std::vector<std::string> parts = Parts(SignEd(Claims()));
  parts[0] =
      EncodeJson({{"alg", "EdDSA"}, {"kid", kEdKid}, {"typ", "JWT"}, {"x", 1}});
  EXPECT_UNAUTHENTICATED_AT(Verify(Join(parts)), kReasonTokenInvalid,
                            "signature does not verify");
}

// --------------------------------------------------------- Required claims

TEST_F(JwtTest, MissingOrEmptySubRejected) {
  Json claims = Claims();
  claims.erase("sub");
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "\"sub\"");
  claims["sub"] = "";
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "\"sub\"");
  claims["sub"] = 42;
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "\"sub\"");
}

TEST_F(JwtTest, MissingJtiRejected) {
  Json claims = Claims();
  claims.erase("jti");
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "\"jti\"");
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEd(claims)), kReasonTokenInvalid,
                            "\"jti\"");
  claims["jti"] = "";
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "\"jti\"");
  claims["jti"] = std::string(kMaxJwtIdBytes + 1, 'j');
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEs(claims)), kReasonTokenInvalid,
                            "\"jti\"");
}

// ------------------------------------------------------------------ Replay

TEST_F(JwtTest, ReplayedJtiRejected) {
  std::string token = SignEs(Claims());
  EXPECT_TRUE(Verify(token).ok());
  EXPECT_UNAUTHENTICATED_AT(Verify(token), kReasonTokenReplayed,
                            "already used");
  clock_.Advance(absl::Seconds(60));
  EXPECT_UNAUTHENTICATED_AT(Verify(token), kReasonTokenReplayed,
                            "already used");
  // A new token reusing the jti (even under another key) is a replay too.
  Json claims = Claims();
  claims["jti"] = Json::parse(*Base64UrlDecode(Parts(token)[1]))["jti"];
  EXPECT_UNAUTHENTICATED_AT(Verify(SignEd(claims)), kReasonTokenReplayed,
                            "already used");
}

TEST_F(JwtTest, RejectedTokenDoesNotConsumeJti) {
  Json claims = Claims();
  Json wrong = claims;
  wrong["aud"] = "elsewhere";
  EXPECT_UNAUTHENTICATED(Verify(SignEs(wrong)), kReasonTokenInvalid);
  EXPECT_TRUE(Verify(SignEs(claims)).ok());
}

TEST_F(JwtTest, SameJtiFromAnotherIssuerIsNotAReplay) {
  Json claims = Claims();
  EXPECT_TRUE(Verify(SignEs(claims)).ok());
  TokenPolicy portal = policy_;
  portal.issuer = "spiffe://careseal.local/portal";
  claims["iss"] = portal.issuer;
  EXPECT_TRUE(verifier_->Verify(SignEd(claims), keys_, portal).ok());
}

TEST(InMemoryReplayCacheTest, EvictsExpiredEntries) {
  FakeClock clock;
  InMemoryReplayCache cache(&clock);
  const absl::Time t = clock.Now();
  EXPECT_TRUE(cache.CheckAndRemember("iss", "a", t + absl::Seconds(10)));
  EXPECT_TRUE(cache.CheckAndRemember("iss", "b", t + absl::Seconds(20)));
  EXPECT_FALSE(cache.CheckAndRemember("iss", "a", t + absl::Seconds(10)));
  EXPECT_EQ(cache.size(), 2u);
  clock.Set(t + absl::Seconds(10));  // Kept up to and including expires_at.
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.CheckAndRemember("iss", "a", t + absl::Seconds(10)));
  clock.Set(t + absl::Seconds(11));
  EXPECT_EQ(cache.size(), 1u);
  clock.Set(t + absl::Seconds(21));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(InMemoryReplayCacheTest, KeysAreUnambiguous) {
  FakeClock clock;
  InMemoryReplayCache cache(&clock);
  const absl::Time later = clock.Now() + absl::Minutes(1);
  EXPECT_TRUE(cache.CheckAndRemember("ab", "c", later));
  EXPECT_TRUE(cache.CheckAndRemember("a", "bc", later));
  EXPECT_TRUE(cache.CheckAndRemember("a:b", "c", later));
}

TEST(InMemoryReplayCacheTest, FullCacheFailsClosedUntilEntriesExpire) {
  FakeClock clock;
  InMemoryReplayCache cache(&clock, /*max_entries=*/3);
  const absl::Time t = clock.Now();
  for (const char* jti : {"1", "2", "3"}) {
    EXPECT_TRUE(cache.CheckAndRemember("iss", jti, t + absl::Seconds(5)));
  }
  // Full of live entries: a new pair is refused, and no live pair is
  // forgotten to make room.
  EXPECT_FALSE(cache.CheckAndRemember("iss", "4", t + absl::Seconds(5)));
  EXPECT_FALSE(cache.CheckAndRemember("iss", "1", t + absl::Seconds(5)));
  clock.Advance(absl::Seconds(6));
  EXPECT_TRUE(cache.CheckAndRemember("iss", "4", t + absl::Seconds(20)));
}

TEST_F(JwtTest, ConcurrentVerificationIsSafe) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 200; ++i) {
    tokens.push_back(i % 2 == 0 ? SignEs(Claims()) : SignEd(Claims()));
  }
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    // Every thread tries every token: each must be accepted exactly once.
    threads.emplace_back([&] {
      for (const std::string& token : tokens) {
        if (Verify(token).ok()) ++accepted;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(accepted.load(), 200);
}

// ---------------------------------------------------------- Garbage input

TEST_F(JwtTest, GarbageInputRejected) {
  std::string valid = SignEs(Claims());
  std::vector<std::string> p = Parts(valid);
  const std::vector<std::string> garbage = {
      "",
      "garbage",
      "a.b",
      "a.b.c.d",
      absl::StrCat(valid, ".", p[2]),
      "..",
      "!!!.###.$$$",
      absl::StrCat(p[0], "=.", p[1], ".", p[2]),  // Padding.
      absl::StrCat(p[0], ".", p[1], ".", p[2], "="),
      absl::StrCat(" ", valid),  // Whitespace.
      absl::StrCat(valid, "\n"),
      absl::StrCat(p[0], ".", p[1], "+/.", p[2]),  // Wrong alphabet.
      absl::StrCat(Base64UrlEncode("not json"), ".", p[1], ".", p[2]),
      absl::StrCat(EncodeJson(Json::array({"ES256"})), ".", p[1], ".", p[2]),
      absl::StrCat(Base64UrlEncode("{\"alg\":\"ES256\",\"kid\":\"x\",\"alg\":"
                                   "\"none\"}"),
                   ".", p[1], ".", p[2]),  // Duplicate member.
      absl::StrCat(EncodeJson({{"alg", "ES256"},
                               {"kid", kEsKid},
                               {"crit", {"exp"}},
                               {"exp", 1}}),
                   ".", p[1], ".", p[2]),
      absl::StrCat(
          EncodeJson({{"alg", "ES256"}, {"kid", kEsKid}, {"typ", "JOSE+JSON"}}),
          ".", p[1], ".", p[2]),
      absl::StrCat(EncodeJson({{"alg", 256}, {"kid", kEsKid}}), ".", p[1], ".",
                   p[2]),
      absl::StrCat(EncodeJson({{"alg", "ES256"}, {"kid", 1}}), ".", p[1], ".",
                   p[2]),
      std::string(kMaxTokenBytes + 1, 'a'),
      std::string("\0\0\0", 3),
  };
  for (const std::string& token : garbage) {
    EXPECT_UNAUTHENTICATED(Verify(token), kReasonTokenInvalid)
        << "input #" << (&token - garbage.data());
  }
}

TEST_F(JwtTest, SignedButNonObjectOrDuplicateClaimsRejected) {
  // Payloads that are authentic but not usable claims.
  auto raw_ed = crypto::OpenSslEd25519Signer::Generate().value();
  Json jwk = {{"kty", "OKP"},
              {"crv", "Ed25519"},
              {"kid", "k"},
              {"x", Base64UrlEncode(raw_ed->public_key_raw())}};
  Json set = {{"keys", Json::array({jwk})}};
  Jwks keys = Jwks::Parse(set.dump()).value();
  const std::string header = EncodeJson({{"alg", "EdDSA"}, {"kid", "k"}});
  Json claims = Claims();
  std::string dup = claims.dump();
  dup.insert(dup.size() - 1, ",\"sub\":\"pat_other\"");
  for (const std::string& payload :
       {std::string("[1,2]"), std::string("not json"), std::string(""), dup}) {
    std::string input = absl::StrCat(header, ".", Base64UrlEncode(payload));
    std::string token =
        absl::StrCat(input, ".", Base64UrlEncode(raw_ed->Sign(input).value()));
    EXPECT_UNAUTHENTICATED(verifier_->Verify(token, keys, policy_),
                           kReasonTokenInvalid)
        << payload;
  }
}

TEST_F(JwtTest, MessagesDoNotEchoTokenOrClaims) {
  Json claims = Claims();
  claims["sub"] = "pat_secret_subject";
  claims["aud"] = "aud_secret_value";
  std::string token = SignEs(claims);
  absl::StatusOr<VerifiedToken> result = Verify(token);
  ASSERT_FALSE(result.ok());
  std::string message(result.status().message());
  EXPECT_EQ(message.find("secret"), std::string::npos) << message;
  for (const std::string& part : Parts(token)) {
    EXPECT_EQ(message.find(part), std::string::npos);
  }
}

TEST_F(JwtTest, UnusablePolicyRejected) {
  std::string token = SignEs(Claims());
  for (int i = 0; i < 4; ++i) {
    TokenPolicy bad = policy_;
    if (i == 0) bad.issuer.clear();
    if (i == 1) bad.audience.clear();
    if (i == 2) bad.max_lifetime = absl::ZeroDuration();
    if (i == 3) bad.clock_skew = -absl::Seconds(1);
    EXPECT_REASON(verifier_->Verify(token, keys_, bad),
                  absl::StatusCode::kInvalidArgument,
                  kReasonTokenPolicyInvalid);
  }
  EXPECT_FALSE(JwtVerifier::Create(nullptr, &cache_).ok());
  EXPECT_FALSE(JwtVerifier::Create(&clock_, nullptr).ok());
}

// -------------------------------------------------------------------- JWKS

class JwksTest : public JwtTest {
 protected:
  Json EcJwk() { return Json::parse(es_->PublicJwks())["keys"][0]; }
  Json OkpJwk() { return Json::parse(ed_->PublicJwks())["keys"][0]; }
  static std::string SetOf(const Json& key) {
    return Json{{"keys", Json::array({key})}}.dump();
  }
};

TEST_F(JwksTest, JwksWithPrivateKeyRejected) {
  Json ec = EcJwk();
  ec["d"] = Base64UrlEncode(std::string(32, '\x11'));
  EXPECT_INVALID_JWKS(SetOf(ec), kReasonJwksContainsPrivateKey);
  Json okp = OkpJwk();
  okp["d"] = Base64UrlEncode(std::string(32, '\x22'));
  EXPECT_INVALID_JWKS(SetOf(okp), kReasonJwksContainsPrivateKey);
  // Reported even when another key is broken in some other way.
  Json set = {{"keys", {{{"kty", "RSA"}}, ec}}};
  EXPECT_INVALID_JWKS(set.dump(), kReasonJwksContainsPrivateKey);
}

TEST_F(JwksTest, AcceptsBothKeyTypesWithOptionalMembers) {
  Json ec = EcJwk();
  ec["key_ops"] = {"verify"};
  ec["x5t#S256"] = "ignored";
  Json okp = OkpJwk();
  okp.erase("alg");
  okp.erase("use");
  absl::StatusOr<Jwks> keys = Jwks::Parse(Json{{"keys", {ec, okp}}}.dump());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_TRUE(keys->Contains(kEsKid));
  EXPECT_TRUE(keys->Contains(kEdKid));
  EXPECT_FALSE(keys->Contains("nope"));
}

TEST_F(JwksTest, UnusableSetsRejected) {
  const Json ec = EcJwk();
  const Json okp = OkpJwk();
  auto with = [](Json key, const char* name, Json value) {
    key[name] = std::move(value);
    return key;
  };
  auto without = [](Json key, const char* name) {
    key.erase(name);
    return key;
  };
  Json off_curve = ec;
  {
    std::string y = *Base64UrlDecode(ec["y"].get<std::string>());
    y[31] ^= 0x01;
    off_curve["y"] = Base64UrlEncode(y);
  }
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "{"},
      {"array", "[]"},
      {"no keys", "{}"},
      {"keys not array", R"({"keys":{}})"},
      {"empty keys", R"({"keys":[]})"},
      {"key not object", R"({"keys":["x"]})"},
      {"missing kid", SetOf(without(ec, "kid"))},
      {"empty kid", SetOf(with(ec, "kid", ""))},
      {"numeric kid", SetOf(with(ec, "kid", 7))},
      {"duplicate kid", Json{{"keys", {ec, with(okp, "kid", kEsKid)}}}.dump()},
      {"RSA", SetOf(with(with(ec, "kty", "RSA"), "n", "AQAB"))},
      {"oct", SetOf(Json{{"kty", "oct"}, {"kid", "h"}, {"k", "c2VjcmV0"}})},
      {"missing kty", SetOf(without(ec, "kty"))},
      {"P-384", SetOf(with(ec, "crv", "P-384"))},
      {"secp256k1", SetOf(with(ec, "crv", "secp256k1"))},
      {"X25519", SetOf(with(okp, "crv", "X25519"))},
      {"Ed448", SetOf(with(okp, "crv", "Ed448"))},
      {"EC alg mismatch", SetOf(with(ec, "alg", "EdDSA"))},
      {"EC alg HS256", SetOf(with(ec, "alg", "HS256"))},
      {"OKP alg mismatch", SetOf(with(okp, "alg", "ES256"))},
      {"use enc", SetOf(with(ec, "use", "enc"))},
      {"key_ops sign only", SetOf(with(ec, "key_ops", {"sign"}))},
      {"short x", SetOf(with(ec, "x", Base64UrlEncode(std::string(31, 'x'))))},
      {"missing y", SetOf(without(ec, "y"))},
      {"padded x", SetOf(with(okp, "x", okp["x"].get<std::string>() + "="))},
      {"OKP short x",
       SetOf(with(okp, "x", Base64UrlEncode(std::string(33, 'x'))))},
      {"off-curve point", SetOf(off_curve)},
      {"duplicate member",
       R"({"keys":[{"kty":"OKP","kty":"EC","crv":"Ed25519","kid":"a","x":")" +
           okp["x"].get<std::string>() + R"("}]})"},
      {"too many keys",
       [&] {
         Json set = {{"keys", Json::array()}};
         for (size_t i = 0; i <= kMaxJwksKeys; ++i) {
           set["keys"].push_back(with(okp, "kid", absl::StrCat("k", i)));
         }
         return set.dump();
       }()},
  };
  for (const auto& [name, json] : cases) {
    EXPECT_INVALID_JWKS(json, kReasonInvalidJwks) << name;
  }
}

}  // namespace
}  // namespace careseal::authn
