// careseal-portal: the patients' web portal (docs/PORTAL.md).
//
//   careseal-portal --listen 127.0.0.1:8443
//     --tls_cert portal-https.crt --tls_key portal-https.key
//     --target 127.0.0.1:7443 --ca certs-example/out/ca.crt
//     --cert certs-example/out/portal.crt --key certs-example/out/portal.key
//     --token_issuer https://portal.careseal.example --token_kid portal-1
//     --token_key portal-token.key
//   (one command line; see docs/PORTAL.md)
//
//   careseal-portal --generate_token_key portal-token.key --token_kid portal-1
//     writes a new Ed25519 key and prints the JWKS to register the portal
//     issuer with (careseal admin issuer register ... --jwks-file).
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "clients/portal/portal_server.h"

namespace {

bool Slurp(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CareSeal patient portal (HTTPS)"};
  std::string listen = "127.0.0.1:8443", tls_cert, tls_key;
  std::string target, ca, cert, key;
  std::string token_key, token_kid = "portal-1",
                         token_issuer = "https://portal.careseal.example",
                         token_audience = "careseal";
  std::string static_dir = CARESEAL_PORTAL_STATIC_DIR;
  std::string generate_key;
  app.add_option("--listen", listen, "host:port to serve HTTPS on");
  app.add_option("--tls_cert", tls_cert, "HTTPS certificate chain (PEM)");
  app.add_option("--tls_key", tls_key, "HTTPS private key (PEM)");
  app.add_option("--target", target, "CareSeal server host:port");
  app.add_option("--ca", ca, "CA bundle of the CareSeal server (PEM)");
  app.add_option("--cert", cert, "the portal's mTLS client certificate");
  app.add_option("--key", key, "its private key");
  app.add_option(
      "--token_key", token_key,
      "Ed25519 private key (PEM) the portal signs patient JWTs with");
  app.add_option("--token_kid", token_kid, "key id in the issuer's JWKS");
  app.add_option("--token_issuer", token_issuer,
                 "the portal issuer's `iss` registered in identity");
  app.add_option("--token_audience", token_audience,
                 "the server's --token_audience");
  app.add_option("--static_dir", static_dir, "clients/portal/static");
  std::string time_zone = "UTC";
  app.add_option("--time_zone", time_zone,
                 "IANA time zone of the clinic, e.g. America/Chicago: times "
                 "are shown and entered in it");
  app.add_option("--generate_token_key", generate_key,
                 "write a new Ed25519 token key to this path, print its JWKS "
                 "and exit");
  CLI11_PARSE(app, argc, argv);

  careseal::portal::JwtMinter::Options mo;
  mo.issuer = token_issuer;
  mo.kid = token_kid;
  mo.audience = token_audience;
  if (!generate_key.empty()) {
    auto minter = careseal::portal::JwtMinter::Generate(mo);
    if (!minter.ok()) {
      std::cerr << minter.status() << "\n";
      return 1;
    }
    auto pem = (*minter)->PrivateKeyPem();
    std::ofstream out(generate_key, std::ios::binary | std::ios::trunc);
    if (!pem.ok() || !(out << *pem)) {
      std::cerr << "cannot write " << generate_key << "\n";
      return 1;
    }
    std::cout << (*minter)->PublicJwks() << "\n";
    return 0;
  }

  careseal::portal::PortalOptions options;
  std::vector<std::string> hp = absl::StrSplit(listen, absl::MaxSplits(':', 1));
  if (hp.size() != 2 || !absl::SimpleAtoi(hp[1], &options.listen_port)) {
    std::cerr << "--listen must be host:port\n";
    return 2;
  }
  options.listen_host = hp[0];
  std::string token_pem;
  if (!Slurp(tls_cert, options.tls_cert_pem) ||
      !Slurp(tls_key, options.tls_key_pem) || !Slurp(token_key, token_pem)) {
    std::cerr << "--tls_cert, --tls_key and --token_key must be readable "
                 "files\n";
    return 2;
  }
  if (target.empty() || ca.empty() || cert.empty() || key.empty()) {
    std::cerr << "--target, --ca, --cert and --key are required\n";
    return 2;
  }
  options.careseal.target = target;
  options.careseal.ca_file = ca;
  options.careseal.cert_file = cert;
  options.careseal.key_file = key;
  options.static_dir = static_dir;
  if (!absl::LoadTimeZone(time_zone, &options.time_zone)) {
    std::cerr << "unknown time zone: " << time_zone << "\n";
    return 1;
  }
  auto minter = careseal::portal::JwtMinter::FromPem(mo, token_pem);
  if (!minter.ok()) {
    std::cerr << minter.status() << "\n";
    return 2;
  }
  // SIGINT/SIGTERM are taken by sigwait below, in this thread only: block
  // them before any thread starts so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto server =
      careseal::portal::PortalServer::Start(options, *std::move(minter));
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  std::cerr << "careseal-portal: serving https://" << options.listen_host << ":"
            << (*server)->port() << "\n";
  int signal = 0;
  sigwait(&stop_signals, &signal);
  (*server)->Stop();
  return 0;
}
