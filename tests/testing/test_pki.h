// An in-memory PKI for hermetic tests: a CA that issues server and client
// certificates as PEM strings, so tests need no files and no openssl CLI.
//
// All keys are ECDSA P-256 and all signatures ECDSA with SHA-256, like the
// development PKI of certs-example/gen-certs.sh. Every certificate gets a fresh
// key and a random serial number.
//
// Real time: validity periods are relative to absl::Now(), since OpenSSL checks
// certificate validity against the real clock during a TLS handshake. This is
// the one place where tests may depend on real time; no test should sleep on
// it.
//
// Test-only code: on an OpenSSL failure it prints the OpenSSL error queue to
// stderr and aborts. Never link this into a product binary.
#ifndef CARESEAL_TESTS_TESTING_TEST_PKI_H_
#define CARESEAL_TESTS_TESTING_TEST_PKI_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace careseal::testing {

// A private key (PKCS#8 PEM, unencrypted) and its certificate (PEM).
struct KeyAndCert {
  std::string key_pem;
  std::string cert_pem;
};

// A self-signed certificate authority held in memory.
//
// Copies are cheap and share the same CA key. Const methods are safe to call
// from several threads at once.
class TestCa {
 public:
  // Makes a new CA with a fresh key: CA:TRUE, pathlen:0, keyCertSign and
  // cRLSign, valid from now-1h to now+1d. Two CAs never trust each other's
  // certificates, even with equal names.
  static TestCa Create(std::string_view common_name = "CareSeal Test CA");

  // The CA certificate (PEM), to use as the trust bundle of servers and
  // clients.
  const std::string& cert_pem() const;

  // A server certificate with the given DNS and IP subjectAltNames (IPv4 or
  // IPv6 literals), extendedKeyUsage serverAuth, valid now-1h .. now+1d.
  // REQUIRES: dns and ips are not both empty.
  KeyAndCert IssueServer(std::vector<std::string> dns = {"localhost"},
                         std::vector<std::string> ips = {"127.0.0.1"}) const;

  // A client certificate whose only subjectAltName is URI:`uri_san` (e.g.
  // "spiffe://careseal.local/portal"), extendedKeyUsage clientAuth, valid
  // from `not_before` to `not_after`. The subject CN is a fixed placeholder
  // that is never an identity, so code that reads the CN instead of the SAN
  // fails its tests. Pass a past `not_after` for an expired certificate.
  // REQUIRES: not_before <= not_after; uri_san is not empty.
  KeyAndCert IssueClient(std::string_view uri_san, absl::Time not_before,
                         absl::Time not_after) const;

  // As above, valid now-1h .. now+1d.
  KeyAndCert IssueClient(std::string_view uri_san) const;

  // A client certificate (clientAuth) with subject CN `cn` and no
  // subjectAltName at all, valid now-1h .. now+1d. Put a SPIFFE id in `cn` to
  // check that a server does not take the identity from the CN.
  KeyAndCert IssueClientWithoutSan(std::string_view cn) const;

 private:
  struct State;
  explicit TestCa(std::shared_ptr<const State> state);

  std::shared_ptr<const State> state_;
};

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_TESTING_TEST_PKI_H_
