// The patient's other choices about a consent form: declining a form that
// waits for a signature (DeclineConsent with the form's signing token; the
// consent becomes REJECTED) and withdrawing a signed one (WithdrawConsent;
// CheckConsent answers WITHDRAWN from then on). Each is a confirmation page
// saying what happens, with an optional note to the clinic, then a page
// saying it was done. The note is sealed at rest by the service and never
// logged here.
#include <string>

#include "absl/strings/str_cat.h"
#include "clients/portal/portal_impl.h"

namespace careseal::portal {
namespace {

// As the service's limit for a reason (1000 code points); the browser
// counts UTF-16 units, so the form's maxlength is only a first check.
constexpr int kMaxReason = 1000;

std::string ReasonField(absl::string_view label) {
  return absl::StrCat(
      "<p><label for=\"reason\">", label,
      " (optional)</label><textarea id=\"reason\" name=\"reason\" rows=\"4\" "
      "maxlength=\"",
      kMaxReason, "\"></textarea></p>");
}

std::string ConfirmForm(const std::string& action, const std::string& csrf,
                        absl::string_view label, absl::string_view intent,
                        absl::string_view button) {
  return absl::StrCat("<form method=\"post\" action=\"", action, "\">", csrf,
                      "<input type=\"hidden\" name=\"request_id\" value=\"",
                      client::NewRequestId(), "\">", ReasonField(label),
                      "<p><button type=\"submit\" name=\"intent\" value=\"",
                      intent, "\">", button, "</button></p></form>");
}

// The service's answer to a decline or withdrawal it refused, as the page's
// status, title and message; empty title: not one of these.
struct RefusalText {
  int status = 0;
  std::string title;
  std::string message;
};

RefusalText DeclineRefusal(const absl::Status& status) {
  const std::string reason = client::ErrorReason(status);
  if (reason == "FIELD_TOO_LONG") {
    return {400, "Not declined",
            "Please keep your note to 1000 characters. Nothing was declined."};
  }
  if (reason == "SIGNING_TOKEN_USED" || reason == "CONSENT_NOT_PENDING" ||
      reason == "REQUEST_EXPIRED" || reason == "SIGNING_TOKEN_INVALID" ||
      reason == "CONSENT_SUPERSEDED" || reason == "CONSENT_WITHDRAWN") {
    return {409, "This form cannot be declined now",
            "It was already signed or declined, or it expired or was "
            "replaced. Nothing changed now. Contact your clinic if you have "
            "questions."};
  }
  return {};
}

RefusalText WithdrawRefusal(const absl::Status& status) {
  const std::string reason = client::ErrorReason(status);
  if (reason == "FIELD_TOO_LONG") {
    return {400, "Not withdrawn",
            "Please keep your note to 1000 characters. Your consent was not "
            "withdrawn."};
  }
  if (reason == "CONSENT_NOT_WITHDRAWABLE") {
    return {409, "This consent cannot be withdrawn now",
            "It was already withdrawn, or it expired or was replaced. "
            "Nothing changed now. Contact your clinic if you have "
            "questions."};
  }
  return {};
}

}  // namespace

void PortalServer::Impl::DeclineForm(const httplib::Request& req,
                                     httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  const int n = TaskIndexOf(req, s, TaskKind::kConsent);
  if (n < 0) return NoSuchTask(res);
  const PortalTask& t = s.tasks[n];
  if (t.declined_here) {
    return res.set_redirect(absl::StrCat("/consent/", n, "/declined"), 303);
  }
  if (!t.receipt_file.empty() || s.signing_tokens.count(t.consent) == 0) {
    return Refusal(res, 409, "This form cannot be declined here",
                   "Only a form waiting for your signature, opened from the "
                   "link your clinic sent you for it, can be declined.",
                   std::string(kBackToTasks));
  }
  Html(res, 200, "Decline this form?",
       absl::StrCat(
           "<h1>Decline this form?</h1><p>If you decline, <strong>",
           Esc(t.title),
           "</strong> is not signed and your clinic is told. Your clinic "
           "needs your consent before treatment that depends on it, so they "
           "may contact you to talk it through. To sign later, ask them for "
           "a new link.</p>",
           ConfirmForm(absl::StrCat("/consent/", n, "/decline"), CsrfInput(s),
                       "Anything you want your clinic to know", "decline",
                       "Decline this form"),
           "<p><a href=\"/consent/", n, "\">Back to the form</a></p>"),
       &s);
}

void PortalServer::Impl::Decline(const httplib::Request& req,
                                 httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  if (!CsrfOk(req, s)) return CsrfRefused(res);
  const int n = TaskIndexOf(req, s, TaskKind::kConsent);
  if (n < 0) return NoSuchTask(res);
  const PortalTask& t = s.tasks[n];
  const std::string back =
      absl::StrCat("<p><a href=\"/consent/", n, "/decline\">Back</a></p>");
  auto token = s.signing_tokens.find(t.consent);
  if (token == s.signing_tokens.end() || !t.receipt_file.empty()) {
    return Refusal(res, 409, "This form cannot be declined here",
                   "Only a form waiting for your signature, opened from the "
                   "link your clinic sent you for it, can be declined. "
                   "Nothing changed.",
                   std::string(kBackToTasks));
  }
  if (req.get_param_value("intent") != "decline") {
    return Refusal(res, 400, "Not declined",
                   "Press \"Decline this form\" to decline. Nothing changed.",
                   back);
  }
  v1::DeclineConsentRequest decline;
  decline.set_name(t.consent);
  decline.set_signing_token(token->second);
  decline.set_reason(req.get_param_value("reason"));
  decline.set_request_id(RequestIdFrom(req));
  auto as = AsPatient(s);
  if (!as.ok()) return SessionEnded(res);
  auto declined = consent->DeclineConsent(decline, *as);
  if (!declined.ok()) {
    RefusalText r = DeclineRefusal(declined.status());
    if (r.title.empty()) return ServiceRefused(res, ctx, declined.status());
    return Refusal(res, r.status, r.title, r.message,
                   r.status == 400 ? back : std::string(kBackToTasks));
  }
  // The signing token is spent: the form can be neither signed nor declined
  // again through this session.
  const std::string name = t.consent;
  sessions.Update(ctx.id, [&](PortalSession& live) {
    live.tasks[n].declined_here = true;
    live.signing_tokens.erase(name);
  });
  res.set_redirect(absl::StrCat("/consent/", n, "/declined"), 303);
}

void PortalServer::Impl::Declined(const httplib::Request& req,
                                  httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const int n = TaskIndexOf(req, *ctx.session, TaskKind::kConsent);
  if (n < 0 || !ctx.session->tasks[n].declined_here) return NoSuchTask(res);
  Html(res, 200, "Declined",
       absl::StrCat("<h1>You declined this form</h1><p role=\"status\">",
                    Esc(ctx.session->tasks[n].title),
                    " was not signed. Your clinic has been told.</p>",
                    kBackToTasks),
       &*ctx.session);
}

void PortalServer::Impl::WithdrawForm(const httplib::Request& req,
                                      httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  const int n = TaskIndexOf(req, s, TaskKind::kConsent);
  if (n < 0) return NoSuchTask(res);
  const PortalTask& t = s.tasks[n];
  if (t.withdrawn_here) {
    return res.set_redirect(absl::StrCat("/consent/", n, "/withdrawn"), 303);
  }
  if (!t.listed || !t.active) {
    return Refusal(res, 409, "There is no signed consent here to withdraw",
                   "Open your tasks again to see your signed forms.",
                   std::string(kBackToTasks));
  }
  Html(
      res, 200, "Withdraw your consent?",
      absl::StrCat(
          "<h1>Withdraw your consent?</h1><p>You signed <strong>", Esc(t.title),
          "</strong>. You may withdraw your consent at any time.</p><ul>"
          "<li>It takes effect at once: your clinic will not give you "
          "treatment that needs this consent unless you sign a new "
          "one.</li><li>Your clinic is told and may contact you.</li>"
          "<li>What you signed stays in your record, marked as "
          "withdrawn.</li></ul>",
          ConfirmForm(absl::StrCat("/consent/", n, "/withdraw"), CsrfInput(s),
                      "Why, if you want to tell your clinic", "withdraw",
                      "Withdraw my consent"),
          kBackToTasks),
      &s);
}

void PortalServer::Impl::Withdraw(const httplib::Request& req,
                                  httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const PortalSession& s = *ctx.session;
  if (!CsrfOk(req, s)) return CsrfRefused(res);
  const int n = TaskIndexOf(req, s, TaskKind::kConsent);
  if (n < 0) return NoSuchTask(res);
  const PortalTask& t = s.tasks[n];
  const std::string back =
      absl::StrCat("<p><a href=\"/consent/", n, "/withdraw\">Back</a></p>");
  if (t.withdrawn_here) {
    return res.set_redirect(absl::StrCat("/consent/", n, "/withdrawn"), 303);
  }
  if (!t.listed || !t.active) {
    return Refusal(res, 409, "There is no signed consent here to withdraw",
                   "Open your tasks again to see your signed forms. Nothing "
                   "changed.",
                   std::string(kBackToTasks));
  }
  if (req.get_param_value("intent") != "withdraw") {
    return Refusal(res, 400, "Not withdrawn",
                   "Press \"Withdraw my consent\" to withdraw it. Nothing "
                   "changed.",
                   back);
  }
  v1::WithdrawConsentRequest withdraw;
  withdraw.set_name(t.consent);
  withdraw.set_reason(req.get_param_value("reason"));
  withdraw.set_request_id(RequestIdFrom(req));
  auto as = AsPatient(s);
  if (!as.ok()) return SessionEnded(res);
  auto withdrawn = consent->WithdrawConsent(withdraw, *as);
  if (!withdrawn.ok()) {
    RefusalText r = WithdrawRefusal(withdrawn.status());
    if (r.title.empty()) return ServiceRefused(res, ctx, withdrawn.status());
    return Refusal(res, r.status, r.title, r.message,
                   r.status == 400 ? back : std::string(kBackToTasks));
  }
  sessions.Update(ctx.id, [&](PortalSession& live) {
    live.tasks[n].withdrawn_here = true;
  });
  res.set_redirect(absl::StrCat("/consent/", n, "/withdrawn"), 303);
}

void PortalServer::Impl::Withdrawn(const httplib::Request& req,
                                   httplib::Response& res) {
  Ctx ctx = Load(req);
  if (!ctx.session || !ctx.session->verified) return SessionEnded(res);
  const int n = TaskIndexOf(req, *ctx.session, TaskKind::kConsent);
  if (n < 0 || !ctx.session->tasks[n].withdrawn_here) return NoSuchTask(res);
  Html(res, 200, "Consent withdrawn",
       absl::StrCat("<h1>Your consent is withdrawn</h1><p role=\"status\">",
                    Esc(ctx.session->tasks[n].title),
                    ": your consent is withdrawn from now on. Your clinic has "
                    "been told.</p><p>If you change your mind, ask your "
                    "clinic for a new form to sign.</p>",
                    kBackToTasks),
       &*ctx.session);
}

}  // namespace careseal::portal
