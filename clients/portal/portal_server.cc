#include "clients/portal/portal_server.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cstdio>
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
#include "nlohmann/json.hpp"

namespace careseal::portal {
namespace {

namespace v1 = ::careseal::v1;
using Json = nlohmann::json;

constexpr char kCookie[] = "__Host-careseal-portal";

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

// A small, safe subset of Markdown: "# " and "## " headings, "- " lists,
// paragraphs. Everything is escaped; no links, no HTML.
std::string RenderMarkdown(absl::string_view md) {
  std::string out, para;
  bool in_list = false;
  auto flush = [&] {
    if (!para.empty()) absl::StrAppend(&out, "<p>", Esc(para), "</p>\n");
    para.clear();
  };
  auto close_list = [&] {
    if (in_list) out += "</ul>\n";
    in_list = false;
  };
  for (absl::string_view line : absl::StrSplit(md, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) {
      flush();
      close_list();
    } else if (absl::ConsumePrefix(&line, "## ")) {
      flush();
      close_list();
      absl::StrAppend(&out, "<h3>", Esc(line), "</h3>\n");
    } else if (absl::ConsumePrefix(&line, "# ")) {
      flush();
      close_list();
      absl::StrAppend(&out, "<h2>", Esc(line), "</h2>\n");
    } else if (absl::ConsumePrefix(&line, "- ")) {
      flush();
      if (!in_list) out += "<ul>\n";
      in_list = true;
      absl::StrAppend(&out, "<li>", Esc(line), "</li>\n");
    } else {
      close_list();
      absl::StrAppend(&para, para.empty() ? "" : " ", line);
    }
  }
  flush();
  close_list();
  return out;
}

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

}  // namespace

struct PortalServer::Impl {
  PortalOptions options;
  std::unique_ptr<JwtMinter> minter;
  std::unique_ptr<httplib::SSLServer> http;
  std::unique_ptr<client::IdentityClient> identity;
  std::unique_ptr<client::ConsentClient> consent;
  SessionStore sessions;

  absl::Time Now() const { return options.now(); }

  // ---- pages ----------------------------------------------------------

  static std::string Page(absl::string_view title, absl::string_view body,
                          const PortalSession* session = nullptr) {
    std::string nav;
    if (session != nullptr && session->verified) {
      nav = absl::StrCat(
          "<form method=\"post\" action=\"/logout\" class=\"logout\">",
          "<input type=\"hidden\" name=\"csrf\" value=\"", Esc(session->csrf),
          "\"><button type=\"submit\">Sign out</button></form>");
    }
    return absl::StrCat(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\"><title>",
        Esc(title),
        " — CareSeal</title><link rel=\"stylesheet\" "
        "href=\"/static/portal.css\"><script type=\"module\" "
        "src=\"/static/portal.js\"></script></head><body",
        session != nullptr && session->verified ? " data-signed-in=\"1\"" : "",
        "><a class=\"skip\" href=\"#main\">Skip to content</a><header><p "
        "class=\"brand\">CareSeal patient portal</p>",
        nav,
        "</header><div id=\"idle-warning\" role=\"alert\" hidden></div>"
        "<main id=\"main\">",
        body, "</main></body></html>\n");
  }

  static void Html(httplib::Response& res, int status, absl::string_view title,
                   absl::string_view body,
                   const PortalSession* session = nullptr) {
    res.status = status;
    res.set_content(Page(title, body, session), "text/html; charset=utf-8");
  }

  static void Refusal(httplib::Response& res, int status,
                      absl::string_view title, absl::string_view message,
                      absl::string_view next_html = "") {
    Html(res, status, title,
         absl::StrCat("<h1>", Esc(title), "</h1><p class=\"error\">",
                      Esc(message), "</p>", next_html));
  }

  static void SessionEnded(httplib::Response& res) {
    ClearCookie(res);
    Refusal(res, 401, "Your session has ended",
            "For your privacy you were signed out after 15 minutes without "
            "activity, or the session was closed. Nothing was signed. Open "
            "the link from your clinic again to continue.");
  }

  static void CsrfRefused(httplib::Response& res) {
    Refusal(res, 403, "This form could not be accepted",
            "The form was not sent from this page (its security token is "
            "missing or wrong). Nothing was signed or saved. Go back, reload "
            "the page and try again.",
            "<p><a href=\"/tasks\">Back to your tasks</a></p>");
  }

  // ---- helpers --------------------------------------------------------

  struct Ctx {
    std::string id;
    std::optional<PortalSession> session;
  };

  Ctx Load(const httplib::Request& req) {
    Ctx ctx;
    ctx.id = CookieOf(req);
    if (!ctx.id.empty()) ctx.session = sessions.Touch(ctx.id, Now());
    return ctx;
  }

  static bool CsrfOk(const httplib::Request& req, const PortalSession& s) {
    return SameToken(req.get_param_value("csrf"), s.csrf);
  }

  client::CallOptions AsPortal() const {
    client::CallOptions o;
    o.timeout = options.call_timeout;
    return o;
  }

  absl::StatusOr<client::CallOptions> AsPatient(const PortalSession& s) const {
    auto token = minter->Mint(s.patient, s.session_token, Now());
    if (!token.ok()) return token.status();
    client::CallOptions o;
    o.timeout = options.call_timeout;
    o.bearer_token = *std::move(token);
    o.max_attempts = 1;  // a retry would replay the token's jti
    return o;
  }

  static std::string CsrfInput(const PortalSession& s) {
    return absl::StrCat("<input type=\"hidden\" name=\"csrf\" value=\"",
                        Esc(s.csrf), "\">");
  }

  // Index from the URL into the session's task list, or -1.
  static int TaskIndex(const httplib::Request& req, const PortalSession& s) {
    int n = -1;
    if (!absl::SimpleAtoi(req.matches[1].str(), &n) || n < 0 ||
        n >= static_cast<int>(s.tasks.size())) {
      return -1;
    }
    return n;
  }

  // ---- handlers -------------------------------------------------------

  void OpenLink(const httplib::Request& req, httplib::Response& res) {
    Ctx old = Load(req);
    if (!old.id.empty()) sessions.Erase(old.id);
    PortalSession s;
    s.csrf = RandomToken();
    s.link_token = req.matches[1].str();
    s.signing_candidate = req.matches[2].str();
    SetCookie(res, sessions.Create(std::move(s), Now()));
    res.set_redirect("/verify", 303);  // the token leaves the address bar
  }

  void VerifyForm(const httplib::Request& req, httplib::Response& res,
                  absl::string_view error = "", int status = 200) {
    Ctx ctx = Load(req);
    if (!ctx.session || ctx.session->link_token.empty()) {
      return SessionEnded(res);
    }
    if (ctx.session->verified) return res.set_redirect("/tasks", 303);
    std::string err;
    if (!error.empty()) {
      err = absl::StrCat("<p class=\"error\" role=\"alert\">", Esc(error),
                         "</p>");
    }
    Html(res, status, "Confirm it is you",
         absl::StrCat(
             "<h1>Confirm it is you</h1>", err,
             "<p>To protect your health information, enter your date of "
             "birth, or the code your clinic sent you if they asked you "
             "to use a code.</p>"
             "<form method=\"post\" action=\"/verify\">",
             CsrfInput(*ctx.session),
             "<p><label for=\"dob\">Date of birth</label>"
             "<input type=\"date\" id=\"dob\" name=\"dob\" "
             "autocomplete=\"bday\"></p>"
             "<p><label for=\"code\">Or the 8-digit code from your "
             "clinic</label><input type=\"text\" id=\"code\" name=\"code\" "
             "inputmode=\"numeric\" pattern=\"[0-9]{8}\" maxlength=\"8\" "
             "autocomplete=\"one-time-code\"></p>"
             "<p><button type=\"submit\">Continue</button></p></form>"));
  }

  void Verify(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (!ctx.session || ctx.session->link_token.empty()) {
      return SessionEnded(res);
    }
    if (!CsrfOk(req, *ctx.session)) return CsrfRefused(res);
    if (ctx.session->verified) return res.set_redirect("/tasks", 303);
    v1::RedeemLinkRequest r;
    r.set_link_token(ctx.session->link_token);
    const std::string dob =
        std::string(absl::StripAsciiWhitespace(req.get_param_value("dob")));
    const std::string code =
        std::string(absl::StripAsciiWhitespace(req.get_param_value("code")));
    if (dob.empty() == code.empty()) {
      return VerifyForm(req, res,
                        "Enter either your date of birth or your code.", 400);
    }
    if (!dob.empty()) {
      std::vector<std::string> p = absl::StrSplit(dob, '-');
      int y = 0, m = 0, d = 0;
      if (p.size() != 3 || !absl::SimpleAtoi(p[0], &y) ||
          !absl::SimpleAtoi(p[1], &m) || !absl::SimpleAtoi(p[2], &d)) {
        return VerifyForm(req, res,
                          "Enter the date of birth as year-month-day.", 400);
      }
      r.mutable_date_of_birth()->set_year(y);
      r.mutable_date_of_birth()->set_month(m);
      r.mutable_date_of_birth()->set_day(d);
    } else {
      r.set_one_time_code(code);
    }
    r.set_client_address(req.remote_addr.substr(0, 64));
    r.set_user_agent(req.get_header_value("User-Agent").substr(0, 512));
    auto redeemed = identity->RedeemLink(r, AsPortal());
    if (!redeemed.ok()) return VerifyRefused(req, res, ctx, redeemed.status());

    PortalSession s = *std::move(ctx.session);
    s.verified = true;
    s.patient = redeemed->patient();
    s.session_name = redeemed->session().name();
    s.session_token = redeemed->session_token();
    // A consent link carries the consent's signing token after the link
    // token (/l/<link>/<signing>): SignConsent needs it, and it counts only
    // for the consent the verified link targets.
    const std::string& target = redeemed->session().target();
    if (!s.signing_candidate.empty() &&
        absl::StartsWith(target, s.patient + "/consents/")) {
      v1::GetConsentDocumentRequest doc;
      doc.set_signing_token(s.signing_candidate);
      auto found = consent->GetConsentDocument(doc, AsPortal());
      if (found.ok() && found->consent() == target) {
        s.signing_tokens[target] = s.signing_candidate;
      }
    }
    s.signing_candidate.clear();
    // New privileges, new session id (no fixation of a pre-login cookie).
    sessions.Erase(ctx.id);
    SetCookie(res, sessions.Create(std::move(s), Now()));
    res.set_redirect("/tasks", 303);
  }

  void VerifyRefused(const httplib::Request& req, httplib::Response& res,
                     const Ctx& ctx, const absl::Status& status) {
    const std::string reason = client::ErrorReason(status);
    if (reason == "SECOND_FACTOR_MISMATCH") {
      return VerifyForm(
          req, res,
          absl::StrCat("That does not match our records. ", status.message()),
          403);
    }
    if (reason == "WRONG_FACTOR") {
      return VerifyForm(req, res,
                        "This link needs the other kind of check: try the "
                        "code from your clinic instead of your date of birth, "
                        "or the other way round.",
                        400);
    }
    if (reason == "CODE_NOT_ISSUED" || reason == "CODE_EXPIRED") {
      return VerifyForm(req, res,
                        "That code is not valid any more. Ask your clinic "
                        "for a new code.",
                        403);
    }
    if (reason == "RATE_LIMITED") {
      return VerifyForm(req, res,
                        "Too many tries. Please wait 10 minutes and try "
                        "again.",
                        429);
    }
    std::string title = "We could not open this link";
    std::string message =
        "Something went wrong on our side. Please try again in a few "
        "minutes. Nothing was signed.";
    int code = 503;
    if (reason == "LINK_ALREADY_USED") {
      title = "This link was already used";
      message =
          "Each link works once. Nothing was signed with it now. If you need "
          "to continue, ask your clinic for a new link.";
      code = 409;
    } else if (reason == "LINK_LOCKED") {
      title = "This link is locked";
      message =
          "There were too many tries that did not match. Please contact "
          "your clinic for a new link.";
      code = 403;
    } else if (reason == "LINK_EXPIRED" || reason == "LINK_REVOKED" ||
               reason == "LINK_NOT_FOUND" || reason == "PATIENT_DISABLED") {
      title = "This link does not work any more";
      message = "Please contact your clinic for a new link.";
      code = 410;
    }
    if (code != 503) {
      sessions.Erase(ctx.id);
      ClearCookie(res);
    }
    Refusal(res, code, title, message);
  }

  void Tasks(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
    PortalSession& s = *ctx.session;
    auto as = AsPatient(s);
    if (!as.ok()) return SessionEnded(res);
    v1::ListConsentsRequest list;
    list.set_parent(s.patient);
    list.set_state(v1::CONSENT_STATE_PENDING);
    list.set_page_size(20);
    auto pending = consent->ListConsents(list, *as);
    if (!pending.ok()) return ServiceRefused(res, ctx, pending.status());
    std::vector<PortalTask> tasks;
    for (PortalTask& t : s.tasks) {
      if (!t.receipt_file.empty()) tasks.push_back(std::move(t));
    }
    for (const v1::Consent& c : pending->consents()) {
      PortalTask t;
      t.consent = c.name();
      v1::GetConsentDocumentRequest get;
      get.set_name(c.name());
      auto as_doc = AsPatient(s);
      if (!as_doc.ok()) return SessionEnded(res);
      auto doc = consent->GetConsentDocument(get, *as_doc);
      t.title = doc.ok() ? doc->title() : "Consent form";
      tasks.push_back(std::move(t));
    }
    s.tasks = std::move(tasks);
    std::string items;
    for (size_t i = 0; i < s.tasks.size(); ++i) {
      const PortalTask& t = s.tasks[i];
      if (t.receipt_file.empty()) {
        absl::StrAppend(&items, "<li><a href=\"/consent/", i,
                        "\">Read and sign: ", Esc(t.title), "</a></li>");
      } else {
        absl::StrAppend(&items, "<li>Signed: ", Esc(t.title),
                        " — <a href=\"/receipt/", i,
                        "\" download=\"consent-receipt.json\">download the "
                        "receipt</a></li>");
      }
    }
    if (items.empty())
      items = "<li>Nothing is waiting for you. Thank you.</li>";
    sessions.Put(ctx.id, s);
    Html(
        res, 200, "Your tasks",
        absl::StrCat("<h1>Your tasks</h1><ul class=\"tasks\">", items, "</ul>"),
        &s);
  }

  void ServiceRefused(httplib::Response& res, const Ctx& ctx,
                      const absl::Status& status) {
    const std::string reason = client::ErrorReason(status);
    if (reason == "SESSION_EXPIRED" || reason == "PRINCIPAL_DISABLED" ||
        reason == "TOKEN_EXPIRED") {
      sessions.Erase(ctx.id);
      return SessionEnded(res);
    }
    Refusal(res, 503, "Something went wrong",
            "We could not reach your clinic's records just now. Nothing was "
            "signed. Please try again in a few minutes.",
            "<p><a href=\"/tasks\">Back to your tasks</a></p>");
  }

  void ConsentPage(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
    PortalSession& s = *ctx.session;
    const int n = TaskIndex(req, s);
    if (n < 0) {
      return Refusal(res, 404, "Not found", "There is no such task.",
                     "<p><a href=\"/tasks\">Back to your tasks</a></p>");
    }
    PortalTask& t = s.tasks[n];
    if (!t.receipt_file.empty()) {
      return res.set_redirect(absl::StrCat("/done/", n), 303);
    }
    auto as = AsPatient(s);
    if (!as.ok()) return SessionEnded(res);
    v1::GetConsentDocumentRequest get;
    get.set_name(t.consent);
    auto doc = consent->GetConsentDocument(get, *as);
    if (!doc.ok()) return ServiceRefused(res, ctx, doc.status());
    if (doc->state() != v1::CONSENT_STATE_PENDING) {
      return Refusal(res, 409, "This consent is not waiting for a signature",
                     "It was signed, declined, withdrawn or replaced. "
                     "Nothing was signed now.",
                     "<p><a href=\"/tasks\">Back to your tasks</a></p>");
    }
    t.document_sha256 = doc->document_sha256();
    t.signature_meaning = doc->signature_meaning();
    sessions.Put(ctx.id, s);

    std::string acks;
    for (int i = 0; i < doc->acknowledgements_size(); ++i) {
      const auto& a = doc->acknowledgements(i);
      absl::StrAppend(&acks, "<div class=\"ack\"><input type=\"checkbox\" ",
                      "id=\"ack-", i, "\" name=\"ack\" value=\"", Esc(a.id()),
                      "\"", a.required() ? " required" : "",
                      "><label for=\"ack-", i, "\">", Esc(a.text()),
                      a.required() ? "" : " (optional)", "</label></div>");
    }
    std::string form;
    if (s.signing_tokens.count(t.consent) == 0) {
      form =
          "<p class=\"notice\">To sign this form, open the link your clinic "
          "sent you for it.</p>";
    } else {
      form = absl::StrCat(
          "<form method=\"post\" action=\"/consent/", n, "/sign\">",
          CsrfInput(s),
          "<fieldset><legend>Please confirm each statement</legend>", acks,
          "</fieldset><section aria-labelledby=\"esign-h\"><h2 "
          "id=\"esign-h\">Signing electronically</h2><p>",
          Esc(doc->esign_disclosure()),
          "</p></section><p>By signing you confirm: <strong>",
          Esc(doc->signature_meaning()),
          "</strong></p><p><label for=\"printed_name\">Type your full "
          "name</label><input type=\"text\" id=\"printed_name\" "
          "name=\"printed_name\" autocomplete=\"name\" required "
          "maxlength=\"200\"></p><p><button type=\"submit\" name=\"intent\" "
          "value=\"agree\">I agree and sign</button></p></form>");
    }
    Html(res, 200, doc->title(),
         absl::StrCat("<h1>", Esc(doc->title()),
                      "</h1><article class=\"document\">",
                      RenderMarkdown(doc->body_markdown()), "</article>", form,
                      "<p><a href=\"/tasks\">Back to your tasks</a></p>"),
         &s);
  }

  void Sign(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
    PortalSession& s = *ctx.session;
    if (!CsrfOk(req, s)) return CsrfRefused(res);
    const int n = TaskIndex(req, s);
    if (n < 0) {
      return Refusal(res, 404, "Not found", "There is no such task.");
    }
    PortalTask& t = s.tasks[n];
    const std::string back = absl::StrCat("<p><a href=\"/consent/", n,
                                          "\">Back to the form</a></p>");
    auto token = s.signing_tokens.find(t.consent);
    if (t.document_sha256.empty() || token == s.signing_tokens.end()) {
      return Refusal(res, 409, "Please read the form first",
                     "Open the form and read it before signing. Nothing was "
                     "signed.",
                     back);
    }
    if (req.get_param_value("intent") != "agree") {
      return Refusal(res, 400, "Not signed",
                     "Press \"I agree and sign\" to sign. Nothing was signed.",
                     back);
    }
    v1::SignConsentRequest sign;
    sign.set_name(t.consent);
    sign.set_signing_token(token->second);
    sign.set_document_sha256(t.document_sha256);
    for (size_t i = 0; i < req.get_param_value_count("ack"); ++i) {
      sign.add_acknowledged_ids(req.get_param_value("ack", i));
    }
    sign.set_intent_to_sign(true);
    sign.set_printed_name(req.get_param_value("printed_name"));
    sign.set_signature_meaning(t.signature_meaning);
    sign.set_signing_method(v1::SIGNING_METHOD_TYPED_NAME);
    sign.set_client_address(req.remote_addr.substr(0, 64));
    sign.set_user_agent(req.get_header_value("User-Agent").substr(0, 512));
    sign.set_request_id(client::NewRequestId());
    auto as = AsPatient(s);
    if (!as.ok()) return SessionEnded(res);
    auto signed_consent = consent->SignConsent(sign, *as);
    if (!signed_consent.ok()) {
      const std::string reason = client::ErrorReason(signed_consent.status());
      if (reason == "ACKNOWLEDGEMENT_MISSING") {
        return Refusal(res, 400, "Not signed",
                       "Please tick every statement before signing. Nothing "
                       "was signed.",
                       back);
      }
      if (reason == "INVALID_PRINTED_NAME") {
        return Refusal(res, 400, "Not signed",
                       "Please type your full name (at least 2 letters). "
                       "Nothing was signed.",
                       back);
      }
      if (reason == "DIGEST_MISMATCH") {
        return Refusal(res, 409, "The form has changed",
                       "Please read the form again before signing. Nothing "
                       "was signed.",
                       back);
      }
      if (reason == "SIGNING_TOKEN_USED" || reason == "CONSENT_NOT_PENDING" ||
          reason == "REQUEST_EXPIRED" || reason == "CONSENT_SUPERSEDED" ||
          reason == "CONSENT_WITHDRAWN" || reason == "SIGNING_TOKEN_INVALID") {
        return Refusal(res, 409, "This form cannot be signed now",
                       "It was already signed or declined, or it expired or "
                       "was replaced. Nothing was signed now. Contact your "
                       "clinic if you have questions.",
                       "<p><a href=\"/tasks\">Back to your tasks</a></p>");
      }
      return ServiceRefused(res, ctx, signed_consent.status());
    }
    auto file = client::EncodeReceiptFile(signed_consent->receipt());
    t.receipt_file = file.ok() ? *file : "";
    s.signing_tokens.erase(t.consent);
    sessions.Put(ctx.id, s);
    res.set_redirect(absl::StrCat("/done/", n), 303);
  }

  void Done(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
    const int n = TaskIndex(req, *ctx.session);
    if (n < 0 || ctx.session->tasks[n].receipt_file.empty()) {
      return Refusal(res, 404, "Not found", "There is no signed form here.",
                     "<p><a href=\"/tasks\">Back to your tasks</a></p>");
    }
    Html(res, 200, "Signed",
         absl::StrCat(
             "<h1>Thank you — your form is signed</h1><p role=\"status\">",
             Esc(ctx.session->tasks[n].title),
             " is signed. Your clinic has it now.</p><p><a href=\"/receipt/", n,
             "\" download=\"consent-receipt.json\">Download your signed "
             "receipt</a> (a file you can keep; anyone can check it with "
             "<code>careseal consent verify</code>).</p><p><a "
             "href=\"/tasks\">Back to your tasks</a></p>"),
         &*ctx.session);
  }

  void Receipt(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
    const int n = TaskIndex(req, *ctx.session);
    if (n < 0 || ctx.session->tasks[n].receipt_file.empty()) {
      return Refusal(res, 404, "Not found", "There is no receipt here.");
    }
    res.set_header("Content-Disposition",
                   "attachment; filename=\"consent-receipt.json\"");
    res.set_content(ctx.session->tasks[n].receipt_file, "application/json");
  }

  void Logout(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (!ctx.session) return SessionEnded(res);
    if (!CsrfOk(req, *ctx.session)) return CsrfRefused(res);
    if (ctx.session->verified) {
      auto as = AsPatient(*ctx.session);
      if (as.ok()) {
        v1::EndPatientSessionRequest end;
        end.set_name(ctx.session->session_name);
        (void)identity->EndPatientSession(end, *as);
      }
    }
    sessions.Erase(ctx.id);
    ClearCookie(res);
    Html(res, 200, "Signed out",
         "<h1>You are signed out</h1><p>You can close this page.</p>");
  }

  void ApiSession(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    Json out = {
        {"signed_in", ctx.session && ctx.session->verified},
        {"idle_timeout_seconds", absl::ToInt64Seconds(SessionStore::kIdle)}};
    if (ctx.session && ctx.session->verified) {
      Json tasks = Json::array();
      for (size_t i = 0; i < ctx.session->tasks.size(); ++i) {
        tasks.push_back(
            {{"index", i},
             {"kind", "consent"},
             {"done", !ctx.session->tasks[i].receipt_file.empty()}});
      }
      out["tasks"] = tasks;
    }
    res.set_content(out.dump(), "application/json");
  }

  void Static(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1].str();
    const std::string body = ReadFile(options.static_dir + "/" + name);
    if (body.empty()) {
      return Refusal(res, 404, "Not found", "There is no such page.");
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_content(body, absl::EndsWith(name, ".css")
                              ? "text/css; charset=utf-8"
                              : "text/javascript; charset=utf-8");
  }

  void Home(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (ctx.session && ctx.session->verified) {
      return res.set_redirect("/tasks", 303);
    }
    Html(res, 200, "Welcome",
         "<h1>Welcome</h1><p>Open the link your clinic sent you by text or "
         "email to continue.</p>");
  }
};

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
  http.Get(R"(/done/(\d{1,4}))", route(&Impl::Done));
  http.Get(R"(/receipt/(\d{1,4}))", route(&Impl::Receipt));
  http.Post("/logout", route(&Impl::Logout));
  http.Get("/api/session", route(&Impl::ApiSession));
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
