#include "tests/testing/test_pki.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace careseal::testing {
namespace {

// RAII owners for the OpenSSL objects used here.
template <auto kFree>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using Asn1IntegerPtr =
    std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;
using ExtensionPtr =
    std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

// Prints `what` and the drained OpenSSL error queue, then aborts.
[[noreturn]] void Die(std::string_view what) {
  std::string message =
      absl::StrCat("careseal::testing::TestCa: ", std::string(what));
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    absl::StrAppend(&message, "\n  openssl: ", buf);
  }
  std::fprintf(stderr, "%s\n", message.c_str());
  std::abort();
}

void Check(bool ok, std::string_view what) {
  if (!ok) Die(what);
}

PkeyPtr NewP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  Check(key != nullptr, "generating an EC P-256 key");
  return key;
}

void SetRandomSerial(X509* cert) {
  // 127 random bits: positive, unique in practice, within RFC 5280's 20 bytes.
  BignumPtr bn(BN_new());
  Check(bn != nullptr &&
            BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1,
        "drawing a random serial number");
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  Check(serial != nullptr && X509_set_serialNumber(cert, serial.get()) == 1,
        "setting the serial number");
}

void SetName(X509_NAME* name, std::string_view common_name) {
  const std::string org = "CareSeal test";
  const std::string cn(common_name);
  Check(X509_NAME_add_entry_by_txt(
            name, "O", MBSTRING_UTF8,
            reinterpret_cast<const unsigned char*>(org.data()),
            static_cast<int>(org.size()), -1, 0) == 1 &&
            X509_NAME_add_entry_by_txt(
                name, "CN", MBSTRING_UTF8,
                reinterpret_cast<const unsigned char*>(cn.data()),
                static_cast<int>(cn.size()), -1, 0) == 1,
        absl::StrCat("setting the name CN=", std::string(common_name)));
}

void SetValidity(X509* cert, absl::Time not_before, absl::Time not_after) {
  Check(not_before <= not_after, "not_before is after not_after");
  Check(ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(not_before)) !=
                nullptr &&
            ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(not_after)) !=
                nullptr,
        "setting the validity period");
}

// Adds one extension given in openssl.cnf syntax, e.g. (NID_key_usage,
// "critical,digitalSignature"). `ctx` names the subject and issuer.
void AddExtension(X509* cert, X509V3_CTX* ctx, int nid,
                  const std::string& value) {
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  Check(ext != nullptr && X509_add_ext(cert, ext.get(), -1) == 1,
        absl::StrCat("adding extension ", OBJ_nid2sn(nid), "=", value));
}

// A certificate with everything but extensions and signature: version 3,
// random serial, subject, issuer name, validity and public key.
X509Ptr NewCertificate(EVP_PKEY* subject_key, std::string_view common_name,
                       X509* issuer, absl::Time not_before,
                       absl::Time not_after) {
  X509Ptr cert(X509_new());
  Check(cert != nullptr, "allocating a certificate");
  Check(X509_set_version(cert.get(), X509_VERSION_3) == 1,
        "setting the version");
  SetRandomSerial(cert.get());
  SetName(X509_get_subject_name(cert.get()), common_name);
  X509_NAME* issuer_name = issuer == nullptr ? X509_get_subject_name(cert.get())
                                             : X509_get_subject_name(issuer);
  Check(X509_set_issuer_name(cert.get(), issuer_name) == 1,
        "setting the issuer name");
  SetValidity(cert.get(), not_before, not_after);
  Check(X509_set_pubkey(cert.get(), subject_key) == 1,
        "setting the public key");
  return cert;
}

void Sign(X509* cert, EVP_PKEY* issuer_key) {
  Check(X509_sign(cert, issuer_key, EVP_sha256()) > 0,
        "signing the certificate");
}

std::string CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  Check(bio != nullptr && PEM_write_bio_X509(bio.get(), cert) == 1,
        "writing a certificate as PEM");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  Check(bio != nullptr &&
            PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                     nullptr, nullptr) == 1,
        "writing a private key as PEM");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

// The default validity of everything issued here. absl::Now() (the real
// clock) is deliberate and allowed in this test PKI only: OpenSSL checks
// validity against real time during the handshake. One hour of slack before
// now tolerates clock skew between the issuing and the verifying side.
absl::Time DefaultNotBefore() { return absl::Now() - absl::Hours(1); }
absl::Time DefaultNotAfter() { return absl::Now() + absl::Hours(24); }

}  // namespace

struct TestCa::State {
  PkeyPtr key;
  X509Ptr cert;
  std::string cert_pem;

  // Issues a leaf signed by this CA with the given extended key usage and
  // subjectAltName (empty: no SAN extension).
  KeyAndCert IssueLeaf(std::string_view common_name, absl::Time not_before,
                       absl::Time not_after, const std::string& eku,
                       const std::string& san) const {
    PkeyPtr leaf_key = NewP256Key();
    X509Ptr leaf = NewCertificate(leaf_key.get(), common_name, cert.get(),
                                  not_before, not_after);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert.get(), leaf.get(), nullptr, nullptr, 0);
    AddExtension(leaf.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(leaf.get(), &ctx, NID_key_usage, "critical,digitalSignature");
    AddExtension(leaf.get(), &ctx, NID_ext_key_usage, eku);
    if (!san.empty()) {
      AddExtension(leaf.get(), &ctx, NID_subject_alt_name, san);
    }
    AddExtension(leaf.get(), &ctx, NID_subject_key_identifier, "hash");
    AddExtension(leaf.get(), &ctx, NID_authority_key_identifier, "keyid");
    Sign(leaf.get(), key.get());
    return KeyAndCert{.key_pem = KeyToPem(leaf_key.get()),
                      .cert_pem = CertToPem(leaf.get())};
  }
};

TestCa::TestCa(std::shared_ptr<const State> state) : state_(std::move(state)) {}

TestCa TestCa::Create(std::string_view common_name) {
  auto state = std::make_shared<State>();
  state->key = NewP256Key();
  state->cert =
      NewCertificate(state->key.get(), common_name,
                     /*issuer=*/nullptr, DefaultNotBefore(), DefaultNotAfter());
  X509* cert = state->cert.get();
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  AddExtension(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  AddExtension(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert, &ctx, NID_subject_key_identifier, "hash");
  Sign(cert, state->key.get());
  state->cert_pem = CertToPem(cert);
  return TestCa(std::move(state));
}

const std::string& TestCa::cert_pem() const { return state_->cert_pem; }

KeyAndCert TestCa::IssueServer(std::vector<std::string> dns,
                               std::vector<std::string> ips) const {
  Check(!dns.empty() || !ips.empty(),
        "IssueServer needs at least one DNS name or IP address");
  std::vector<std::string> names;
  for (const std::string& name : dns) names.push_back("DNS:" + name);
  for (const std::string& ip : ips) names.push_back("IP:" + ip);
  const std::string common_name =
      dns.empty() ? std::string("careseal-test-server") : dns.front();
  return state_->IssueLeaf(common_name, DefaultNotBefore(), DefaultNotAfter(),
                           "serverAuth", absl::StrJoin(names, ","));
}

KeyAndCert TestCa::IssueClient(std::string_view uri_san, absl::Time not_before,
                               absl::Time not_after) const {
  Check(!uri_san.empty(), "IssueClient needs a URI");
  // X509V3_EXT_conf_nid would split a URI containing ',' into several names.
  Check(uri_san.find(',') == std::string_view::npos,
        absl::StrCat("IssueClient: URI must not contain ',': ",
                     std::string(uri_san)));
  return state_->IssueLeaf("careseal-test-client (identity is in the SAN)",
                           not_before, not_after, "clientAuth",
                           absl::StrCat("URI:", std::string(uri_san)));
}

KeyAndCert TestCa::IssueClient(std::string_view uri_san) const {
  return IssueClient(uri_san, DefaultNotBefore(), DefaultNotAfter());
}

KeyAndCert TestCa::IssueClientWithoutSan(std::string_view cn) const {
  return state_->IssueLeaf(cn, DefaultNotBefore(), DefaultNotAfter(),
                           "clientAuth", /*san=*/"");
}

}  // namespace careseal::testing
