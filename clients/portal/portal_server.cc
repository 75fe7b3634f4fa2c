#include "clients/portal/portal_server.h"

#include <cmark.h>
#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/identity_client.h"
#include "clients/cpp/receipt.h"
#include "clients/portal/portal_impl.h"
#include "nlohmann/json.hpp"

namespace careseal::portal {
namespace {
constexpr char kCookie[] = "__Host-careseal-portal";
}  // namespace

std::string Esc(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// CommonMark through Debian's libcmark, safe mode: raw HTML is dropped and
// javascript:/vbscript:/file:/data: (except images) links are removed.
// Headings move one level down (the page's own title is the only <h1>).
std::string RenderMarkdown(absl::string_view md) {
  cmark_node* doc =
      cmark_parse_document(md.data(), md.size(), CMARK_OPT_DEFAULT);
  if (doc == nullptr) return absl::StrCat("<p>", Esc(md), "</p>\n");
  cmark_iter* it = cmark_iter_new(doc);
  for (cmark_event_type ev; (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE;) {
    cmark_node* node = cmark_iter_get_node(it);
    if (ev == CMARK_EVENT_ENTER &&
        cmark_node_get_type(node) == CMARK_NODE_HEADING) {
      cmark_node_set_heading_level(
          node, std::min(6, cmark_node_get_heading_level(node) + 1));
    }
  }
  cmark_iter_free(it);
  char* html = cmark_render_html(doc, CMARK_OPT_SAFE);
  std::string out = html == nullptr ? "" : html;
  std::free(html);
  cmark_node_free(doc);
  return out;
}

namespace {

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out;
}

// Loads a PEM chain and key into the server context. False on failure.
bool ConfigureTls(SSL_CTX& ctx, const std::string& cert_pem,
                  const std::string& key_pem) {
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION |
                                SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
  BIO* bio =
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  if (bio == nullptr) return false;
  X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  bool ok = leaf != nullptr && SSL_CTX_use_certificate(&ctx, leaf) == 1;
  X509_free(leaf);
  while (ok) {
    X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (extra == nullptr) {
      ERR_clear_error();  // end of the chain
      break;
    }
    if (SSL_CTX_add_extra_chain_cert(&ctx, extra) != 1) {
      X509_free(extra);
      ok = false;
    }
  }
  BIO_free(bio);
  if (!ok) return false;
  bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  if (bio == nullptr) return false;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ok = key != nullptr && SSL_CTX_use_PrivateKey(&ctx, key) == 1 &&
       SSL_CTX_check_private_key(&ctx) == 1;
  EVP_PKEY_free(key);
  return ok;
}

}  // namespace

void SecurityHeaders(httplib::Response& res) {
  if (res.has_header("Content-Security-Policy")) return;
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; frame-ancestors 'none'; "
                 "base-uri 'none'; form-action 'self'; object-src 'none'");
  res.set_header("Strict-Transport-Security",
                 "max-age=31536000; includeSubDomains");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Cross-Origin-Opener-Policy", "same-origin");
  res.set_header("Permissions-Policy",
                 "camera=(), microphone=(), geolocation=()");
  if (!res.has_header("Cache-Control")) {
    res.set_header("Cache-Control", "no-store");
  }
}

std::string CookieOf(const httplib::Request& req) {
  const std::string header = req.get_header_value("Cookie");
  for (absl::string_view part : absl::StrSplit(header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, kCookie) &&
        absl::ConsumePrefix(&part, "=")) {
      return std::string(part);
    }
  }
  return "";
}

void SetCookie(httplib::Response& res, const std::string& id) {
  res.set_header("Set-Cookie",
                 absl::StrCat(kCookie, "=", id,
                              "; Path=/; Secure; HttpOnly; SameSite=Strict"));
}

void ClearCookie(httplib::Response& res) {
  res.set_header("Set-Cookie",
                 absl::StrCat(kCookie,
                              "=; Path=/; Secure; HttpOnly; SameSite=Strict; "
                              "Max-Age=0"));
}

bool SameToken(const std::string& a, const std::string& b) {
  return !a.empty() && a.size() == b.size() &&
         CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string EscLines(absl::string_view in) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(in, '\n')) {
    if (!out.empty()) out += "<br>";
    absl::StrAppend(&out, Esc(absl::StripTrailingAsciiWhitespace(line)));
  }
  return out;
}

std::string HumanTime(absl::Time t, absl::TimeZone tz) {
  std::string s = absl::FormatTime("%A, %B %e at %l:%M %p", t, tz);
  // %e and %l pad with a space.
  std::string out;
  for (char c : s) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t us = absl::ToUnixMicros(t);
  ts.set_seconds(us / 1000000);
  ts.set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
  return ts;
}

PortalServer::PortalServer(PortalOptions options,
                           std::unique_ptr<JwtMinter> minter)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->minter = std::move(minter);
  if (!impl_->options.now) impl_->options.now = [] { return absl::Now(); };
}

absl::StatusOr<std::unique_ptr<PortalServer>> PortalServer::Start(
    PortalOptions options, std::unique_ptr<JwtMinter> minter) {
  if (minter == nullptr) return absl::InvalidArgumentError("no token minter");
  auto channel = client::MakeChannel(options.careseal);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<PortalServer> server(
      new PortalServer(std::move(options), std::move(minter)));
  Impl& impl = *server->impl_;
  impl.identity = std::make_unique<client::IdentityClient>(*channel);
  impl.consent = std::make_unique<client::ConsentClient>(*channel);
  impl.presession = std::make_unique<client::PreSessionClient>(*channel);
  impl.followup = std::make_unique<client::FollowUpClient>(*channel);
  impl.messaging = std::make_unique<client::MessagingClient>(*channel);
  bool tls_ok = false;
  impl.http = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
    tls_ok =
        ConfigureTls(ctx, impl.options.tls_cert_pem, impl.options.tls_key_pem);
    return tls_ok;
  });
  if (!tls_ok || !impl.http->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot load the portal's TLS certificate and key: ", OpenSslErrors()));
  }
  httplib::SSLServer& http = *impl.http;
  auto route = [&impl](void (Impl::*handler)(const httplib::Request&,
                                             httplib::Response&)) {
    return
        [&impl, handler](const httplib::Request& req, httplib::Response& res) {
          SecurityHeaders(res);
          (impl.*handler)(req, res);
        };
  };
  http.Get("/", route(&Impl::Home));
  http.Get(R"(/l/([A-Za-z0-9_-]{16,128})(?:/([A-Za-z0-9_-]{16,128}))?)",
           route(&Impl::OpenLink));
  http.Get("/verify",
           [&impl](const httplib::Request& req, httplib::Response& res) {
             SecurityHeaders(res);
             impl.VerifyForm(req, res);
           });
  http.Post("/verify", route(&Impl::Verify));
  http.Get("/tasks", route(&Impl::Tasks));
  http.Get(R"(/consent/(\d{1,4}))", route(&Impl::ConsentPage));
  http.Post(R"(/consent/(\d{1,4})/sign)", route(&Impl::Sign));
  http.Get(R"(/consent/(\d{1,4})/decline)", route(&Impl::DeclineForm));
  http.Post(R"(/consent/(\d{1,4})/decline)", route(&Impl::Decline));
  http.Get(R"(/consent/(\d{1,4})/declined)", route(&Impl::Declined));
  http.Get(R"(/consent/(\d{1,4})/withdraw)", route(&Impl::WithdrawForm));
  http.Post(R"(/consent/(\d{1,4})/withdraw)", route(&Impl::Withdraw));
  http.Get(R"(/consent/(\d{1,4})/withdrawn)", route(&Impl::Withdrawn));
  http.Get(R"(/done/(\d{1,4}))", route(&Impl::Done));
  http.Get(R"(/receipt/(\d{1,4}))", route(&Impl::Receipt));
  http.Post("/logout", route(&Impl::Logout));
  http.Get("/api/session", route(&Impl::ApiSession));
  // Pre-session instructions (instruction_pages.cc).
  http.Get(R"(/instructions/(\d{1,4}))", route(&Impl::InstructionsPage));
  http.Post(R"(/instructions/(\d{1,4})/acknowledge)",
            route(&Impl::AcknowledgeInstructions));
  http.Get(R"(/instructions/(\d{1,4})/done)", route(&Impl::InstructionsDone));
  // Follow-up check-ins, one question per screen (checkin_pages.cc).
  http.Get(R"(/checkin/(\d{1,4}))", route(&Impl::CheckInStart));
  http.Get(R"(/checkin/(\d{1,4})/q/(\d{1,4}))", route(&Impl::CheckInQuestion));
  http.Post(R"(/checkin/(\d{1,4})/q/(\d{1,4}))", route(&Impl::CheckInAnswer));
  http.Get(R"(/checkin/(\d{1,4})/crisis)", route(&Impl::CheckInCrisis));
  http.Get(R"(/checkin/(\d{1,4})/done)", route(&Impl::CheckInDone));
  http.Post(R"(/checkin/(\d{1,4})/send)", route(&Impl::CheckInSend));
  // Messages (message_pages.cc).
  http.Get("/messages", route(&Impl::Threads));
  http.Get("/messages/new", route(&Impl::NewThreadForm));
  http.Post("/messages/new", route(&Impl::NewThread));
  http.Get(R"(/messages/(\d{1,4}))", route(&Impl::ThreadPage));
  http.Get(R"(/messages/(\d{1,4})/list)", route(&Impl::ThreadFragment));
  http.Post(R"(/messages/(\d{1,4})/reply)", route(&Impl::Reply));
  http.Get("/api/inbox", route(&Impl::ApiInbox));
  http.Get(R"(/static/(portal\.css|portal\.js))", route(&Impl::Static));
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    SecurityHeaders(res);
    if (res.body.empty()) {
      Impl::Refusal(res, res.status, "Not found", "There is no such page.");
    }
  });
  http.set_payload_max_length(64 * 1024);
  http.set_logger(
      [](const httplib::Request& req, const httplib::Response& res) {
        // Paths carry no health data; a link token is redacted.
        std::string path =
            absl::StartsWith(req.path, "/l/") ? "/l/<redacted>" : req.path;
        std::fprintf(stderr, "portal: %s %s %d\n", req.method.c_str(),
                     path.c_str(), res.status);
      });
  if (impl.options.listen_port == 0) {
    server->port_ = http.bind_to_any_port(impl.options.listen_host);
  } else if (http.bind_to_port(impl.options.listen_host,
                               impl.options.listen_port)) {
    server->port_ = impl.options.listen_port;
  } else {
    server->port_ = -1;
  }
  if (server->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ",
                                               impl.options.listen_host, ":",
                                               impl.options.listen_port));
  }
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  return server;
}

void PortalServer::Wait() {
  if (thread_.joinable()) thread_.join();
}

void PortalServer::Stop() {
  if (impl_->http) impl_->http->stop();
  Wait();
}

PortalServer::~PortalServer() { Stop(); }

}  // namespace careseal::portal
