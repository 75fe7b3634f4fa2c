// Internal to careseal-portal: the server's state and page handlers, shared
// by portal_server.cc (links, verification, tasks, consent) and the page
// files instruction_pages.cc, checkin_pages.cc, message_pages.cc and
// consent_choice_pages.cc. Not a public header.
#ifndef CARESEAL_CLIENTS_PORTAL_PORTAL_IMPL_H_
#define CARESEAL_CLIENTS_PORTAL_PORTAL_IMPL_H_

#include <httplib.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/followup_client.h"
#include "clients/cpp/identity_client.h"
#include "clients/cpp/messaging_client.h"
#include "clients/cpp/presession_client.h"
#include "clients/cpp/receipt.h"
#include "clients/portal/jwt_minter.h"
#include "clients/portal/portal_server.h"
#include "clients/portal/session_store.h"
#include "nlohmann/json.hpp"

namespace careseal::portal {

namespace v1 = ::careseal::v1;
using Json = nlohmann::json;

// HTML-escapes text for element content and attribute values.
std::string Esc(absl::string_view in);
// A small, safe subset of Markdown ("# ", "## ", "- ", paragraphs); all
// text escaped, no links, no HTML.
std::string RenderMarkdown(absl::string_view md);
// Escaped text with line breaks kept (<br>).
std::string EscLines(absl::string_view in);
void SecurityHeaders(httplib::Response& res);
std::string CookieOf(const httplib::Request& req);
void SetCookie(httplib::Response& res, const std::string& id);
void ClearCookie(httplib::Response& res);
// Constant-time comparison; false if `a` is empty.
bool SameToken(const std::string& a, const std::string& b);
std::string ReadFile(const std::string& path);
// "Tuesday, November 24 at 9:00 AM" in `tz`.
std::string HumanTime(absl::Time t, absl::TimeZone tz);
absl::Time FromProto(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp ToProto(absl::Time t);

struct PortalServer::Impl {
  PortalOptions options;
  std::unique_ptr<JwtMinter> minter;
  std::unique_ptr<httplib::SSLServer> http;
  std::unique_ptr<client::IdentityClient> identity;
  std::unique_ptr<client::ConsentClient> consent;
  std::unique_ptr<client::PreSessionClient> presession;
  std::unique_ptr<client::FollowUpClient> followup;
  std::unique_ptr<client::MessagingClient> messaging;
  SessionStore sessions;

  absl::Time Now() const { return options.now(); }

  // ---- pages ----------------------------------------------------------

  static std::string Page(absl::string_view title, absl::string_view body,
                          const PortalSession* session = nullptr) {
    std::string nav;
    if (session != nullptr && session->verified) {
      nav = absl::StrCat(
          "<nav aria-label=\"Portal\"><a href=\"/tasks\">Tasks</a> <a "
          "href=\"/messages\">Messages<span class=\"badge\" "
          "data-unread-total hidden></span></a></nav>",
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

  // Like Load, but a background request (the inbox poll) does not count as
  // activity: an idle session still ends after 15 minutes.
  Ctx LoadQuietly(const httplib::Request& req) {
    Ctx ctx;
    ctx.id = CookieOf(req);
    if (!ctx.id.empty()) ctx.session = sessions.Peek(ctx.id, Now());
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
    // RequestConsent's signing token is itself the link (one token opens
    // and signs, Consent.signing_link); /l/<link>/<signing> is the form for
    // a link the EHR made separately. Either way the candidate counts only
    // once verified, and only for the consent the link targets.
    s.signing_candidate =
        req.matches[2].length() > 0 ? req.matches[2].str() : s.link_token;
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
    // SignConsent needs the consent's signing token: it counts only for the
    // consent the verified link targets.
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
    std::string reason_shown = reason;
    if (reason == "SECOND_FACTOR_MISMATCH") {
      // The count travels as ErrorInfo metadata; at 0 the link is locked.
      const std::string left =
          client::ErrorMetadata(status, "attempts_remaining");
      if (left == "0") {
        reason_shown = "LINK_LOCKED";
      } else {
        return VerifyForm(
            req, res,
            left.empty() ? "That does not match our records. Please try again."
                         : absl::StrCat("That does not match our records. ",
                                        left, left == "1" ? " try" : " tries",
                                        " left before this link locks."),
            403);
      }
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
    } else if (reason_shown == "LINK_LOCKED") {
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
    const PortalSession& s = *ctx.session;
    auto as = AsPatient(s);
    if (!as.ok()) return SessionEnded(res);
    // Forms to sign (PENDING) and signed forms the patient may withdraw
    // (ACTIVE).
    std::vector<PortalTask> fresh;
    for (v1::ConsentState state :
         {v1::CONSENT_STATE_PENDING, v1::CONSENT_STATE_ACTIVE}) {
      v1::ListConsentsRequest list;
      list.set_parent(s.patient);
      list.set_state(state);
      list.set_page_size(20);
      auto as_list = AsPatient(s);
      if (!as_list.ok()) return SessionEnded(res);
      auto listed = consent->ListConsents(list, *as_list);
      if (!listed.ok()) return ServiceRefused(res, ctx, listed.status());
      for (const v1::Consent& c : listed->consents()) {
        PortalTask t;
        t.kind = TaskKind::kConsent;
        t.consent = c.name();
        t.active = state == v1::CONSENT_STATE_ACTIVE;
        v1::GetConsentDocumentRequest get;
        get.set_name(c.name());
        auto as_doc = AsPatient(s);
        if (!as_doc.ok()) return SessionEnded(res);
        auto doc = consent->GetConsentDocument(get, *as_doc);
        t.title = doc.ok() ? doc->title() : "Consent form";
        fresh.push_back(std::move(t));
      }
    }
    // Instructions and check-ins come from other services: if one cannot
    // answer, the rest of the list is still shown, with a notice.
    bool partial = false;
    for (absl::Status st :
         {ListInstructionTasks(s, fresh), ListCheckInTasks(s, fresh)}) {
      if (st.ok()) continue;
      if (SessionGone(st)) return ServiceRefused(res, ctx, st);
      partial = true;
    }
    int unread = -1;
    {
      auto as_msg = AsPatient(s);
      if (!as_msg.ok()) return SessionEnded(res);
      v1::GetUnreadCountsRequest counts;
      counts.set_parent(s.patient);
      auto got = messaging->GetUnreadCounts(counts, *as_msg);
      if (got.ok()) unread = got->total_unread();
    }
    // Merge: a task keeps its index for the whole session.
    PortalSession merged;
    sessions.Update(ctx.id, [&](PortalSession& live) {
      for (PortalTask& t : live.tasks) t.listed = false;
      for (PortalTask& f : fresh) {
        auto same = [&](const PortalTask& t) {
          return t.kind == f.kind && t.consent == f.consent &&
                 t.session == f.session && t.check_in == f.check_in;
        };
        auto it = std::find_if(live.tasks.begin(), live.tasks.end(), same);
        if (it == live.tasks.end()) {
          live.tasks.push_back(std::move(f));
          continue;
        }
        it->listed = true;
        it->title = f.title;
        if (f.kind == TaskKind::kInstructions) {
          it->acknowledged = f.acknowledged;
          it->checklist_done = f.checklist_done;
        }
        if (f.kind == TaskKind::kCheckIn) it->note = f.note;
        if (f.kind == TaskKind::kConsent) it->active = f.active;
      }
      merged = live;
    });
    std::string consents, signed_forms, instructions, checkins;
    for (size_t i = 0; i < merged.tasks.size(); ++i) {
      const PortalTask& t = merged.tasks[i];
      switch (t.kind) {
        case TaskKind::kConsent:
          if (t.withdrawn_here) {
            absl::StrAppend(&signed_forms, "<li>Withdrawn: ", Esc(t.title),
                            "</li>");
          } else if (t.declined_here) {
            absl::StrAppend(&consents, "<li>Declined: ", Esc(t.title),
                            " — nothing was signed</li>");
          } else if (!t.receipt_file.empty() || (t.listed && t.active)) {
            absl::StrAppend(&signed_forms, "<li>Signed: ", Esc(t.title));
            if (!t.receipt_file.empty()) {
              absl::StrAppend(&signed_forms, " — <a href=\"/receipt/", i,
                              "\" download=\"consent-receipt.json\">download "
                              "the receipt</a>");
            }
            if (t.listed && t.active) {
              absl::StrAppend(&signed_forms, " — <a href=\"/consent/", i,
                              "/withdraw\">Withdraw my consent</a>");
            }
            absl::StrAppend(&signed_forms, "</li>");
          } else if (t.listed) {
            absl::StrAppend(&consents, "<li><a href=\"/consent/", i,
                            "\">Read and sign: ", Esc(t.title), "</a></li>");
          }
          break;
        case TaskKind::kInstructions:
          if (!t.listed) break;
          absl::StrAppend(&instructions, "<li><a href=\"/instructions/", i,
                          "\">", Esc(t.title), "</a> — ",
                          t.checklist_done ? "done, thank you"
                          : t.acknowledged
                              ? "read; checklist to answer on the day"
                              : "to read and confirm",
                          "</li>");
          break;
        case TaskKind::kCheckIn:
          if (t.listed && !t.completed_here) {
            absl::StrAppend(&checkins, "<li><a href=\"/checkin/", i,
                            "\">Answer: ", Esc(t.title), "</a></li>");
          } else if (t.completed_here) {
            absl::StrAppend(&checkins, "<li>Sent: ", Esc(t.title), "</li>");
          }
          break;
      }
    }
    std::string body = "<h1>Your tasks</h1>";
    if (partial) {
      body +=
          "<p class=\"notice\" role=\"status\">Some of your tasks could not "
          "be loaded just now. Please try again in a few minutes.</p>";
    }
    if (consents.empty() && instructions.empty() && checkins.empty()) {
      body += "<p>Nothing is waiting for you. Thank you.</p>";
    }
    if (!consents.empty()) {
      absl::StrAppend(&body,
                      "<section aria-labelledby=\"h-consents\"><h2 "
                      "id=\"h-consents\">Forms to sign</h2><ul "
                      "class=\"tasks\">",
                      consents, "</ul></section>");
    }
    if (!signed_forms.empty()) {
      absl::StrAppend(&body,
                      "<section aria-labelledby=\"h-signed\"><h2 "
                      "id=\"h-signed\">Your signed forms</h2><ul "
                      "class=\"tasks\">",
                      signed_forms, "</ul></section>");
    }
    if (!instructions.empty()) {
      absl::StrAppend(&body,
                      "<section aria-labelledby=\"h-instructions\"><h2 "
                      "id=\"h-instructions\">Before your infusion</h2><ul "
                      "class=\"tasks\">",
                      instructions, "</ul></section>");
    }
    if (!checkins.empty()) {
      absl::StrAppend(&body,
                      "<section aria-labelledby=\"h-checkins\"><h2 "
                      "id=\"h-checkins\">Check-ins</h2><ul class=\"tasks\">",
                      checkins, "</ul></section>");
    }
    absl::StrAppend(&body,
                    "<section aria-labelledby=\"h-messages\"><h2 "
                    "id=\"h-messages\">Messages</h2><p><a href=\"/messages\">",
                    unread > 0
                        ? absl::StrCat("You have ", unread, " unread message",
                                       unread == 1 ? "" : "s")
                        : std::string("Messages with your care team"),
                    "</a></p></section>");
    Html(res, 200, "Your tasks", body, &merged);
  }

  static bool SessionGone(const absl::Status& status) {
    const std::string reason = client::ErrorReason(status);
    return reason == "SESSION_EXPIRED" || reason == "PRINCIPAL_DISABLED" ||
           reason == "TOKEN_EXPIRED";
  }

  void ServiceRefused(httplib::Response& res, const Ctx& ctx,
                      const absl::Status& status) {
    if (SessionGone(status)) {
      sessions.Erase(ctx.id);
      return SessionEnded(res);
    }
    Refusal(res, 503, "Something went wrong",
            "We could not reach your clinic's records just now. Nothing was "
            "signed or saved. Please try again in a few minutes.",
            "<p><a href=\"/tasks\">Back to your tasks</a></p>");
  }

  void ConsentPage(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
    PortalSession& s = *ctx.session;
    const int n = TaskIndexOf(req, s, TaskKind::kConsent);
    if (n < 0) {
      return Refusal(res, 404, "Not found", "There is no such task.",
                     "<p><a href=\"/tasks\">Back to your tasks</a></p>");
    }
    PortalTask& t = s.tasks[n];
    if (!t.receipt_file.empty()) {
      return res.set_redirect(absl::StrCat("/done/", n), 303);
    }
    if (t.declined_here) {
      return res.set_redirect(absl::StrCat("/consent/", n, "/declined"), 303);
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
    sessions.Update(ctx.id, [&](PortalSession& live) {
      live.tasks[n].document_sha256 = t.document_sha256;
      live.tasks[n].signature_meaning = t.signature_meaning;
    });

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
          "value=\"agree\">I agree and sign</button></p></form><p><a "
          "href=\"/consent/",
          n, "/decline\">I do not want to sign this form</a></p>");
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
    const int n = TaskIndexOf(req, s, TaskKind::kConsent);
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
    sessions.Update(ctx.id, [&](PortalSession& live) {
      live.tasks[n].receipt_file = t.receipt_file;
      live.signing_tokens.erase(t.consent);
    });
    res.set_redirect(absl::StrCat("/done/", n), 303);
  }

  void Done(const httplib::Request& req, httplib::Response& res) {
    Ctx ctx = Load(req);
    if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
    const int n = TaskIndexOf(req, *ctx.session, TaskKind::kConsent);
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
    const int n = TaskIndexOf(req, *ctx.session, TaskKind::kConsent);
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
        tasks.push_back({{"index", i},
                         {"kind", KindName(ctx.session->tasks[i].kind)},
                         {"done", TaskDone(ctx.session->tasks[i])}});
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

  // ---- shared by the page files ----------------------------------------

  static const char* KindName(TaskKind kind) {
    switch (kind) {
      case TaskKind::kConsent:
        return "consent";
      case TaskKind::kInstructions:
        return "instructions";
      case TaskKind::kCheckIn:
        return "check_in";
    }
    return "";
  }
  static bool TaskDone(const PortalTask& t) {
    switch (t.kind) {
      case TaskKind::kConsent:
        return !t.receipt_file.empty() || t.active || t.declined_here ||
               t.withdrawn_here;
      case TaskKind::kInstructions:
        return t.checklist_done;
      case TaskKind::kCheckIn:
        return t.completed_here;
    }
    return false;
  }

  static constexpr absl::string_view kBackToTasks =
      "<p><a href=\"/tasks\">Back to your tasks</a></p>";

  // The task at the URL's index if it is of `kind`, else -1.
  static int TaskIndexOf(const httplib::Request& req, const PortalSession& s,
                         TaskKind kind) {
    const int n = TaskIndex(req, s);
    return n >= 0 && s.tasks[n].kind == kind ? n : -1;
  }
  static void NoSuchTask(httplib::Response& res) {
    Refusal(res, 404, "Not found", "There is no such task.",
            std::string(kBackToTasks));
  }

  // Task list sections (portal_server.cc renders; the page files list).
  absl::Status ListInstructionTasks(const PortalSession& s,
                                    std::vector<PortalTask>& out);
  absl::Status ListCheckInTasks(const PortalSession& s,
                                std::vector<PortalTask>& out);

  // ---- instruction_pages.cc -------------------------------------------
  void InstructionsPage(const httplib::Request& req, httplib::Response& res);
  void AcknowledgeInstructions(const httplib::Request& req,
                               httplib::Response& res);
  void InstructionsDone(const httplib::Request& req, httplib::Response& res);

  // ---- checkin_pages.cc -----------------------------------------------
  void CheckInStart(const httplib::Request& req, httplib::Response& res);
  void CheckInQuestion(const httplib::Request& req, httplib::Response& res);
  void CheckInAnswer(const httplib::Request& req, httplib::Response& res);
  void CheckInCrisis(const httplib::Request& req, httplib::Response& res);
  void CheckInDone(const httplib::Request& req, httplib::Response& res);
  void CheckInSend(const httplib::Request& req, httplib::Response& res);
  // Question screen `k` of task `n` (with an error message when re-shown).
  void RenderQuestion(httplib::Response& res, const PortalSession& s, int n,
                      int k, absl::string_view error, int status);
  // Submits every complete, unsent instrument of task `n`; stores the
  // results in the session. Returns the first error.
  absl::Status SubmitDue(const Ctx& ctx, int n);

  // ---- consent_choice_pages.cc ----------------------------------------
  void DeclineForm(const httplib::Request& req, httplib::Response& res);
  void Decline(const httplib::Request& req, httplib::Response& res);
  void Declined(const httplib::Request& req, httplib::Response& res);
  void WithdrawForm(const httplib::Request& req, httplib::Response& res);
  void Withdraw(const httplib::Request& req, httplib::Response& res);
  void Withdrawn(const httplib::Request& req, httplib::Response& res);

  // A request id from the form's hidden `request_id` if it looks like one
  // (a double-submitted form then acts once), else a new one.
  static std::string RequestIdFrom(const httplib::Request& req);

  // ---- message_pages.cc -----------------------------------------------
  void Threads(const httplib::Request& req, httplib::Response& res);
  void ThreadPage(const httplib::Request& req, httplib::Response& res);
  void ThreadFragment(const httplib::Request& req, httplib::Response& res);
  void Reply(const httplib::Request& req, httplib::Response& res);
  void NewThreadForm(const httplib::Request& req, httplib::Response& res);
  void NewThread(const httplib::Request& req, httplib::Response& res);
  void ApiInbox(const httplib::Request& req, httplib::Response& res);
  // The thread list merged into the session (stable indexes).
  absl::Status RefreshThreads(const Ctx& ctx,
                              std::vector<PortalThread>* threads);
  // The messages of thread `n` as an <ol id="messages">, marking the newest
  // message from the care team read.
  absl::StatusOr<std::string> MessageList(const PortalSession& s, int n);
};

}  // namespace careseal::portal

#endif  // CARESEAL_CLIENTS_PORTAL_PORTAL_IMPL_H_
