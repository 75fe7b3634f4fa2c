#include "services/common/crypto/encoding.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/crypto/random.h"
#include "services/common/status.h"

namespace careseal::crypto {
namespace {

void ExpectMalformed(const absl::StatusOr<std::string>& result,
                     absl::string_view reason) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(result.status()), reason);
}

// RFC 4648 section 10.
TEST(Base64Test, Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"}};
  for (const auto& [raw, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(raw), encoded);
    EXPECT_EQ(Base64Decode(encoded).value(), raw);
    std::string url = encoded;
    url.erase(url.find_last_not_of('=') + 1);
    if (encoded.empty()) url.clear();
    EXPECT_EQ(Base64UrlEncode(raw), url);
    EXPECT_EQ(Base64UrlDecode(url).value(), raw);
  }
}

TEST(Base64Test, AlphabetsDifferInTheLastTwoCharacters) {
  const std::string bytes("\xfb\xff\xbf", 3);
  EXPECT_EQ(Base64Encode(bytes), "+/+/");
  EXPECT_EQ(Base64UrlEncode(bytes), "-_-_");
  EXPECT_EQ(Base64Decode("+/+/").value(), bytes);
  EXPECT_EQ(Base64UrlDecode("-_-_").value(), bytes);
}

TEST(Base64Test, RoundTripsEveryLengthAndByte) {
  FakeRandom random(7);
  for (size_t len = 0; len <= 100; ++len) {
    const std::string data = random.Bytes(len);
    EXPECT_EQ(Base64Decode(Base64Encode(data)).value(), data) << len;
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(data)).value(), data) << len;
    EXPECT_EQ(HexDecode(HexEncode(data)).value(), data) << len;
  }
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(Base64Decode(Base64Encode(all)).value(), all);
  EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(all)).value(), all);
  EXPECT_EQ(HexDecode(HexEncode(all)).value(), all);
}

TEST(Base64Test, StandardDecoderIsStrict) {
  for (absl::string_view bad : {
           "Zg",            // Missing padding.
           "Zg=",           // Short padding.
           "Zg===",         // Extra padding.
           "Zm9v=",         // Padding after a full group.
           "====",          // Only padding.
           "Z===",          // Too much padding.
           "Zm=v",          // Padding in the middle.
           "Zm9v\n",        // Whitespace.
           " Zm9v",         // Whitespace.
           "Zm 9v",         // Whitespace.
           "Zm9-",          // URL alphabet.
           "Zm9_",          // URL alphabet.
           "Zh==",          // Non-zero trailing bits ("f" is "Zg==").
           "Zm9=",          // Non-zero trailing bits ("fo" is "Zm8=").
           "Zm9vYg==Zg==",  // Padding before the end.
           "Zm9v\xff",      // Non-ASCII.
       }) {
    ExpectMalformed(Base64Decode(bad), kReasonMalformedBase64);
  }
  ExpectMalformed(Base64Decode(absl::string_view("Zm9v\0\0\0\0", 8)),
                  kReasonMalformedBase64);
}

TEST(Base64Test, UrlDecoderIsStrict) {
  for (absl::string_view bad : {
           "Zg==",   // Padding is not allowed.
           "Zm8=",   // Padding is not allowed.
           "Z",      // Impossible length.
           "Zm9vY",  // Impossible length.
           "Zm9+",   // Standard alphabet.
           "Zm9/",   // Standard alphabet.
           "Zh",     // Non-zero trailing bits.
           "Zm9",    // Non-zero trailing bits.
           "Zm 9v",  // Whitespace.
           "Zm9v\n",
       }) {
    ExpectMalformed(Base64UrlDecode(bad), kReasonMalformedBase64);
  }
}

TEST(HexTest, EncodesLowercase) {
  EXPECT_EQ(HexEncode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(HexEncode(""), "");
}

TEST(HexTest, DecodesEitherCase) {
  EXPECT_EQ(HexDecode("0001abff").value(), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(HexDecode("0001ABFF").value(), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(HexDecode("").value(), "");
}

TEST(HexTest, DecoderIsStrict) {
  for (absl::string_view bad :
       {"0", "abc", "0g", "g0", " 00", "00 ", "0x00", "-1", "zz"}) {
    ExpectMalformed(HexDecode(bad), kReasonMalformedHex);
  }
}

TEST(EncodingTest, ErrorMessagesDoNotEchoTheInput) {
  const absl::StatusOr<std::string> result = Base64Decode("secretZZ!");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message().find("secret"), absl::string_view::npos);
}

}  // namespace
}  // namespace careseal::crypto
