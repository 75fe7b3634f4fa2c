// careseal-portal: the patients' web portal. An HTTPS server (cpp-httplib
// over OpenSSL, TLS 1.2+) serving server-rendered HTML pages, static CSS and
// JavaScript modules from `static_dir`, and a small JSON API. It calls
// CareSeal over mutual TLS with the portal's client certificate through
// clients/cpp only, presenting a freshly minted patient JWT (JwtMinter) per
// call once the patient has verified a link.
//
// Flows: /l/<token> -> /verify (date of birth or one-time code,
// RedeemLink) -> /tasks (pending consents, upcoming infusions' instructions,
// follow-up check-ins) -> /consent/<n> (sign), /instructions/<n>
// (checklist and attestation), /checkin/<n>/q/<k> (one question per
// screen, crisis resources at once); /messages (threads, reply, unread
// badges polled by portal.js through /api/inbox). Routes and what is not
// built: docs/PORTAL.md.
#ifndef CARESEAL_CLIENTS_PORTAL_PORTAL_SERVER_H_
#define CARESEAL_CLIENTS_PORTAL_PORTAL_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "clients/portal/jwt_minter.h"
#include "clients/portal/session_store.h"

namespace httplib {
class SSLServer;
struct Request;
struct Response;
}  // namespace httplib

namespace careseal::portal {

struct PortalOptions {
  std::string listen_host = "127.0.0.1";
  int listen_port = 8443;    // 0: any free port (see PortalServer::port())
  std::string tls_cert_pem;  // the portal's HTTPS certificate chain
  std::string tls_key_pem;
  std::string static_dir;  // clients/portal/static
  // CareSeal target and the portal's mTLS client identity.
  client::ChannelOptions careseal;
  // Time source (tests pass the servers' FakeClock); default absl::Now.
  std::function<absl::Time()> now;
  // Times are shown, and entered by patients (last food, last drink), in
  // this zone: the clinic's (the tenant's time zone is not readable by the
  // portal or patients, so it is configured here).
  absl::TimeZone time_zone = absl::UTCTimeZone();
  absl::Duration call_timeout = absl::Seconds(10);
};

class PortalServer {
 public:
  // Binds and starts serving on a background thread.
  static absl::StatusOr<std::unique_ptr<PortalServer>> Start(
      PortalOptions options, std::unique_ptr<JwtMinter> minter);
  ~PortalServer();  // stops and joins

  int port() const { return port_; }
  // Blocks until Stop() (for main).
  void Wait();
  void Stop();

 private:
  PortalServer(PortalOptions options, std::unique_ptr<JwtMinter> minter);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace careseal::portal

#endif  // CARESEAL_CLIENTS_PORTAL_PORTAL_SERVER_H_
