#include "tests/testing/test_pki.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace careseal::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <auto kFree>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL_free>>;

constexpr char kEhr[] =
    "spiffe://careseal.local/tenant/demo-clinic/ehr/demo-ehr";

X509Ptr ParseCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr ParseKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// The subjectAltNames of `cert` as "URI:...", "DNS:...", "IP:..." strings.
std::vector<std::string> SubjectAltNames(X509* cert) {
  std::vector<std::string> out;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    int type = 0;
    const ASN1_STRING* value =
        static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(name, &type));
    const std::string bytes(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
        static_cast<size_t>(ASN1_STRING_length(value)));
    switch (type) {
      case GEN_URI:
        out.push_back("URI:" + bytes);
        break;
      case GEN_DNS:
        out.push_back("DNS:" + bytes);
        break;
      case GEN_IPADD:
        if (bytes.size() == 4) {
          out.push_back("IP:" + std::to_string(static_cast<uint8_t>(bytes[0])) +
                        "." + std::to_string(static_cast<uint8_t>(bytes[1])) +
                        "." + std::to_string(static_cast<uint8_t>(bytes[2])) +
                        "." + std::to_string(static_cast<uint8_t>(bytes[3])));
        } else {
          out.push_back("IP:(" + std::to_string(bytes.size()) + " bytes)");
        }
        break;
      default:
        out.push_back("other");
    }
  }
  return out;
}

std::string CommonName(X509* cert) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf,
                            sizeof(buf));
  return buf;
}

// Runs X509_verify_cert of `cert_pem` against the single trust anchor
// `ca_pem` for `purpose`; returns the X509_V_* result.
int Verify(const std::string& ca_pem, const std::string& cert_pem,
           int purpose) {
  X509Ptr ca = ParseCert(ca_pem);
  X509Ptr cert = ParseCert(cert_pem);
  EXPECT_NE(ca, nullptr);
  EXPECT_NE(cert, nullptr);
  StorePtr store(X509_STORE_new());
  EXPECT_EQ(X509_STORE_add_cert(store.get(), ca.get()), 1);
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  EXPECT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr),
            1);
  EXPECT_EQ(X509_STORE_CTX_set_purpose(ctx.get(), purpose), 1);
  X509_verify_cert(ctx.get());
  return X509_STORE_CTX_get_error(ctx.get());
}

TEST(TestCaTest, CaIsSelfSignedP256CaCertificate) {
  const TestCa ca = TestCa::Create("Some CA");
  X509Ptr cert = ParseCert(ca.cert_pem());
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(CommonName(cert.get()), "Some CA");
  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  EXPECT_EQ(X509_get_key_usage(cert.get()) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN),
            static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(cert.get())), 256);
  EXPECT_TRUE(EVP_PKEY_is_a(X509_get0_pubkey(cert.get()), "EC"));
  EXPECT_EQ(Verify(ca.cert_pem(), ca.cert_pem(), X509_PURPOSE_ANY), X509_V_OK);
}

TEST(TestCaTest, ClientCertificateCarriesOnlyTheUriSanAndClientAuth) {
  const TestCa ca = TestCa::Create();
  const KeyAndCert client = ca.IssueClient(kEhr);
  X509Ptr cert = ParseCert(client.cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_THAT(SubjectAltNames(cert.get()),
              ElementsAre(std::string("URI:") + kEhr));
  EXPECT_NE(CommonName(cert.get()), kEhr);  // the identity is not in the CN
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()),
            static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);

  PkeyPtr key = ParseKey(client.key_pem);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
}

TEST(TestCaTest, ValidClientCertificateVerifiesAgainstItsCa) {
  const TestCa ca = TestCa::Create();
  const KeyAndCert client = ca.IssueClient(kEhr);
  EXPECT_EQ(Verify(ca.cert_pem(), client.cert_pem, X509_PURPOSE_SSL_CLIENT),
            X509_V_OK);
  // clientAuth only: it cannot serve as a server certificate.
  EXPECT_EQ(Verify(ca.cert_pem(), client.cert_pem, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_INVALID_PURPOSE);
}

TEST(TestCaTest, ExpiredClientCertificateFailsVerification) {
  const TestCa ca = TestCa::Create();
  const absl::Time now = absl::Now();
  const KeyAndCert expired =
      ca.IssueClient(kEhr, now - absl::Hours(48), now - absl::Hours(24));
  EXPECT_EQ(Verify(ca.cert_pem(), expired.cert_pem, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST(TestCaTest, NotYetValidClientCertificateFailsVerification) {
  const TestCa ca = TestCa::Create();
  const absl::Time now = absl::Now();
  const KeyAndCert future =
      ca.IssueClient(kEhr, now + absl::Hours(2), now + absl::Hours(4));
  EXPECT_EQ(Verify(ca.cert_pem(), future.cert_pem, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_NOT_YET_VALID);
}

TEST(TestCaTest, CertificateFromAnotherCaFailsVerification) {
  const TestCa ca = TestCa::Create();
  const TestCa other = TestCa::Create();  // same name, different key
  const KeyAndCert foreign = other.IssueClient(kEhr);
  EXPECT_EQ(Verify(ca.cert_pem(), foreign.cert_pem, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST(TestCaTest, ServerCertificateNamesLocalhostForServerAuth) {
  const TestCa ca = TestCa::Create();
  const KeyAndCert server = ca.IssueServer();
  X509Ptr cert = ParseCert(server.cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_THAT(SubjectAltNames(cert.get()),
              ElementsAre("DNS:localhost", "IP:127.0.0.1"));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "example.com", 0, 0, nullptr), 0);
  EXPECT_EQ(Verify(ca.cert_pem(), server.cert_pem, X509_PURPOSE_SSL_SERVER),
            X509_V_OK);
}

TEST(TestCaTest, ServerCertificateTakesIpv6Literals) {
  const TestCa ca = TestCa::Create();
  X509Ptr cert = ParseCert(ca.IssueServer({}, {"::1"}).cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 0);
}

TEST(TestCaTest, ClientWithoutSanHasOnlyTheCommonName) {
  const TestCa ca = TestCa::Create();
  const KeyAndCert client = ca.IssueClientWithoutSan(kEhr);
  X509Ptr cert = ParseCert(client.cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_THAT(SubjectAltNames(cert.get()), IsEmpty());
  EXPECT_EQ(CommonName(cert.get()), kEhr);
  EXPECT_EQ(Verify(ca.cert_pem(), client.cert_pem, X509_PURPOSE_SSL_CLIENT),
            X509_V_OK);
}

TEST(TestCaTest, EachCertificateHasItsOwnKeyAndSerial) {
  const TestCa ca = TestCa::Create();
  const KeyAndCert a = ca.IssueClient(kEhr);
  const KeyAndCert b = ca.IssueClient(kEhr);
  EXPECT_NE(a.key_pem, b.key_pem);
  X509Ptr cert_a = ParseCert(a.cert_pem);
  X509Ptr cert_b = ParseCert(b.cert_pem);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(cert_a.get()),
                             X509_get0_serialNumber(cert_b.get())),
            0);
}

TEST(TestCaDeathTest, MisuseAbortsWithAReadableMessage) {
  const TestCa ca = TestCa::Create();
  EXPECT_DEATH(ca.IssueServer({}, {}), "needs at least one DNS name");
  const absl::Time now = absl::Now();
  EXPECT_DEATH(ca.IssueClient(kEhr, now, now - absl::Hours(1)),
               "not_before is after not_after");
}

// Mutual TLS 1.3 handshake in memory: the server requires and verifies a
// client certificate; the client verifies the server's name "localhost".
class MemoryHandshake {
 public:
  MemoryHandshake(const TestCa& server_ca, const KeyAndCert& server,
                  const TestCa& client_ca, const KeyAndCert& client) {
    server_ctx_ = NewCtx(TLS_server_method(), client_ca, server);
    client_ctx_ = NewCtx(TLS_client_method(), server_ca, client);
    SSL_CTX_set_verify(server_ctx_.get(),
                       SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       nullptr);
    SSL_CTX_set_verify(client_ctx_.get(), SSL_VERIFY_PEER, nullptr);
    server_ssl_.reset(SSL_new(server_ctx_.get()));
    client_ssl_.reset(SSL_new(client_ctx_.get()));
    SSL_set1_host(client_ssl_.get(), "localhost");
    BIO* server_bio = nullptr;
    BIO* client_bio = nullptr;
    BIO_new_bio_pair(&server_bio, 0, &client_bio, 0);
    SSL_set_bio(server_ssl_.get(), server_bio, server_bio);
    SSL_set_bio(client_ssl_.get(), client_bio, client_bio);
    SSL_set_accept_state(server_ssl_.get());
    SSL_set_connect_state(client_ssl_.get());
  }

  // True if both sides complete the handshake.
  bool Run() {
    bool server_done = false;
    bool client_done = false;
    for (int round = 0; round < 20 && !(server_done && client_done); ++round) {
      if (!client_done) {
        const int r = SSL_do_handshake(client_ssl_.get());
        if (r == 1) {
          client_done = true;
        } else if (SSL_get_error(client_ssl_.get(), r) != SSL_ERROR_WANT_READ) {
          return false;
        }
      }
      if (!server_done) {
        const int r = SSL_do_handshake(server_ssl_.get());
        if (r == 1) {
          server_done = true;
        } else if (SSL_get_error(server_ssl_.get(), r) != SSL_ERROR_WANT_READ) {
          return false;
        }
      }
    }
    // In TLS 1.3 the client finishes first; the server's verdict on the
    // client certificate reaches the client only on its next read.
    char byte;
    SSL_read(client_ssl_.get(), &byte, 1);
    return server_done && client_done &&
           SSL_get_verify_result(server_ssl_.get()) == X509_V_OK &&
           SSL_get_verify_result(client_ssl_.get()) == X509_V_OK;
  }

 private:
  static SslCtxPtr NewCtx(const SSL_METHOD* method, const TestCa& trust,
                          const KeyAndCert& own) {
    SslCtxPtr ctx(SSL_CTX_new(method));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
    X509Ptr ca = ParseCert(trust.cert_pem());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca.get());
    X509Ptr cert = ParseCert(own.cert_pem);
    PkeyPtr key = ParseKey(own.key_pem);
    EXPECT_EQ(SSL_CTX_use_certificate(ctx.get(), cert.get()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx.get(), key.get()), 1);
    return ctx;
  }

  SslCtxPtr server_ctx_;
  SslCtxPtr client_ctx_;
  SslPtr server_ssl_;
  SslPtr client_ssl_;
};

TEST(TestCaTest, CertificatesWorkForMutualTls) {
  const TestCa ca = TestCa::Create();
  MemoryHandshake handshake(ca, ca.IssueServer(), ca, ca.IssueClient(kEhr));
  EXPECT_TRUE(handshake.Run());
  ERR_clear_error();
}

TEST(TestCaTest, MutualTlsRejectsExpiredAndForeignClients) {
  const TestCa ca = TestCa::Create();
  const TestCa other = TestCa::Create();
  const absl::Time now = absl::Now();
  const KeyAndCert server = ca.IssueServer();
  EXPECT_FALSE(MemoryHandshake(ca, server, ca,
                               ca.IssueClient(kEhr, now - absl::Hours(48),
                                              now - absl::Hours(24)))
                   .Run());
  EXPECT_FALSE(MemoryHandshake(ca, server, ca, other.IssueClient(kEhr)).Run());
  ERR_clear_error();
}

}  // namespace
}  // namespace careseal::testing
