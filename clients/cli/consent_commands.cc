// careseal consent ...: the consent commands. Output is the response as JSON
// (proto3 JSON mapping) unless a command says otherwise.
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/cli/cli.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/receipt.h"

namespace careseal::cli {
namespace {

namespace v1 = ::careseal::v1;

// Runs `call` against a ConsentClient and prints its response as JSON.
template <typename Call>
int WithClient(const Globals& globals, Call call) {
  auto channel = globals.Channel();
  if (!channel.ok()) return ReportError(channel.status());
  client::ConsentClient consent(*channel);
  auto response = call(consent);
  if (!response.ok()) return ReportError(response.status());
  return PrintJson(*response);
}

void AddTemplateCommands(CLI::App& consent, Globals& g, Action& run) {
  auto* tmpl = consent.add_subcommand("template", "consent templates");
  tmpl->require_subcommand(1);

  auto* create = tmpl->add_subcommand("create", "create an empty template");
  auto args = std::make_shared<std::vector<std::string>>(3);
  create->add_option("--tenant", (*args)[0], "tenant id")->required();
  create->add_option("--id", (*args)[1], "template id ([a-z][a-z0-9-]{2,62})");
  create->add_option("--display-name", (*args)[2], "display name")->required();
  create->callback([&g, &run, args] {
    run = [&g, args] {
      v1::CreateConsentTemplateRequest r;
      r.set_parent("tenants/" + (*args)[0]);
      r.set_consent_template_id((*args)[1]);
      r.mutable_consent_template()->set_display_name((*args)[2]);
      return WithClient(
          g, [&](auto& c) { return c.CreateConsentTemplate(r, g.Call()); });
    };
  });

  auto* publish =
      tmpl->add_subcommand("publish",
                           "publish a new immutable version from a JSON file "
                           "(careseal.v1.ConsentTemplateVersion)");
  auto pub = std::make_shared<std::vector<std::string>>(2);
  publish
      ->add_option("--template", (*pub)[0], "tenants/{t}/consentTemplates/{id}")
      ->required();
  publish->add_option("--file", (*pub)[1], "version JSON file")->required();
  publish->callback([&g, &run, pub] {
    run = [&g, pub] {
      auto text = ReadFile((*pub)[1]);
      if (!text.ok()) return ReportError(text.status());
      v1::PublishConsentTemplateVersionRequest r;
      r.set_parent((*pub)[0]);
      auto parsed = google::protobuf::util::JsonStringToMessage(
          *text, r.mutable_version());
      if (!parsed.ok()) {
        return ReportError(absl::InvalidArgumentError(
            absl::StrCat("the version file is not a ConsentTemplateVersion: ",
                         parsed.ToString())));
      }
      return WithClient(g, [&](auto& c) {
        return c.PublishConsentTemplateVersion(r, g.Call());
      });
    };
  });

  auto* list = tmpl->add_subcommand("list", "list a tenant's templates");
  auto tenant = std::make_shared<std::string>();
  list->add_option("--tenant", *tenant, "tenant id")->required();
  list->callback([&g, &run, tenant] {
    run = [&g, tenant] {
      v1::ListConsentTemplatesRequest r;
      r.set_parent("tenants/" + *tenant);
      return WithClient(
          g, [&](auto& c) { return c.ListConsentTemplates(r, g.Call()); });
    };
  });
}

}  // namespace

void AddConsentCommands(CLI::App& app, Globals& g, Action& run) {
  auto* consent = app.add_subcommand("consent", "informed consent");
  consent->require_subcommand(1);
  AddTemplateCommands(*consent, g, run);

  // request
  {
    auto* cmd = consent->add_subcommand(
        "request",
        "request a consent; prints the consent and its one-time "
        "signing token for the patient's link");
    auto r = std::make_shared<v1::RequestConsentRequest>();
    auto hours = std::make_shared<int>(0);
    cmd->add_option_function<std::string>(
           "--patient", [r](const std::string& v) { r->set_parent(v); },
           "tenants/{t}/patients/{p}")
        ->required();
    cmd->add_option_function<std::string>(
           "--procedure",
           [r](const std::string& v) { r->set_procedure_code(v); },
           "procedure code, e.g. ketamine-iv-induction")
        ->required();
    cmd->add_option_function<std::string>(
        "--template-version",
        [r](const std::string& v) { r->set_template_version(v); },
        "version or template name (default: the one covering the procedure)");
    cmd->add_option("--expire-hours", *hours,
                    "signing deadline in hours (default 168)");
    cmd->callback([&g, &run, r, hours] {
      run = [&g, r, hours] {
        if (*hours > 0) {
          absl::Time t = absl::Now() + absl::Hours(*hours);
          r->mutable_expire_time()->set_seconds(absl::ToUnixSeconds(t));
        }
        return WithClient(
            g, [&](auto& c) { return c.RequestConsent(*r, g.Call()); });
      };
    });
  }

  // sign (the portal's call, for integrators testing with the portal identity)
  {
    auto* cmd = consent->add_subcommand(
        "sign",
        "sign a consent with its signing token, acknowledging every "
        "item of the document (portal identity)");
    auto token = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    cmd->add_option("--token", *token, "signing token")->required();
    cmd->add_option("--printed-name", *name, "signer's full name")->required();
    cmd->callback([&g, &run, token, name] {
      run = [&g, token, name] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::ConsentClient c(*channel);
        v1::GetConsentDocumentRequest get;
        get.set_signing_token(*token);
        auto doc = c.GetConsentDocument(get, g.Call());
        if (!doc.ok()) return ReportError(doc.status());
        v1::SignConsentRequest sign;
        sign.set_name(doc->consent());
        sign.set_signing_token(*token);
        sign.set_document_sha256(doc->document_sha256());
        for (const auto& a : doc->acknowledgements()) {
          sign.add_acknowledged_ids(a.id());
        }
        sign.set_intent_to_sign(true);
        sign.set_printed_name(*name);
        sign.set_signature_meaning(doc->signature_meaning());
        sign.set_signing_method(v1::SIGNING_METHOD_TYPED_NAME);
        auto signed_ = c.SignConsent(sign, g.Call());
        if (!signed_.ok()) return ReportError(signed_.status());
        return PrintJson(*signed_);
      };
    });
  }

  // show
  {
    auto* cmd = consent->add_subcommand("show", "show a consent");
    auto name = std::make_shared<std::string>();
    auto receipt_out = std::make_shared<std::string>();
    cmd->add_option("name", *name, "tenants/{t}/patients/{p}/consents/{c}")
        ->required();
    cmd->add_option("--receipt-out", *receipt_out,
                    "also write the signed receipt file here (for `consent "
                    "verify`)");
    cmd->callback([&g, &run, name, receipt_out] {
      run = [&g, name, receipt_out] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::ConsentClient c(*channel);
        v1::GetConsentRequest get;
        get.set_name(*name);
        auto consent = c.GetConsent(get, g.Call());
        if (!consent.ok()) return ReportError(consent.status());
        if (!receipt_out->empty()) {
          auto file = client::EncodeReceiptFile(consent->consent().receipt());
          if (!file.ok()) return ReportError(file.status());
          std::ofstream out(*receipt_out, std::ios::binary);
          out << *file;
          if (!out) {
            return ReportError(absl::InvalidArgumentError(
                absl::StrCat("cannot write '", *receipt_out, "'")));
          }
        }
        return PrintJson(*consent);
      };
    });
  }

  // list
  {
    auto* cmd = consent->add_subcommand("list", "list a patient's consents");
    auto r = std::make_shared<v1::ListConsentsRequest>();
    cmd->add_option_function<std::string>(
           "--patient", [r](const std::string& v) { r->set_parent(v); },
           "tenants/{t}/patients/{p} (or tenants/{t}/patients/-)")
        ->required();
    cmd->add_option_function<std::string>(
        "--state",
        [r](const std::string& v) {
          v1::ConsentState s;
          if (v1::ConsentState_Parse("CONSENT_STATE_" + v, &s))
            r->set_state(s);
          else
            r->set_state(static_cast<v1::ConsentState>(-1));
        },
        "PENDING, ACTIVE, WITHDRAWN, EXPIRED, SUPERSEDED or REJECTED");
    cmd->add_option_function<int>(
        "--page-size", [r](int v) { r->set_page_size(v); }, "page size");
    cmd->add_option_function<std::string>(
        "--page-token", [r](const std::string& v) { r->set_page_token(v); },
        "page token");
    cmd->callback([&g, &run, r] {
      run = [&g, r] {
        return WithClient(
            g, [&](auto& c) { return c.ListConsents(*r, g.Call()); });
      };
    });
  }

  // withdraw
  {
    auto* cmd = consent->add_subcommand("withdraw", "withdraw a consent");
    auto r = std::make_shared<v1::WithdrawConsentRequest>();
    cmd->add_option_function<std::string>(
           "name", [r](const std::string& v) { r->set_name(v); },
           "consent name")
        ->required();
    cmd->add_option_function<std::string>(
        "--reason", [r](const std::string& v) { r->set_reason(v); },
        "why (required for clinicians)");
    cmd->callback([&g, &run, r] {
      run = [&g, r] {
        return WithClient(
            g, [&](auto& c) { return c.WithdrawConsent(*r, g.Call()); });
      };
    });
  }

  // check
  {
    auto* cmd = consent->add_subcommand(
        "check", "is consent valid for this procedure (now or at a time)?");
    auto r = std::make_shared<v1::CheckConsentRequest>();
    auto at = std::make_shared<std::string>();
    cmd->add_option_function<std::string>(
           "--patient", [r](const std::string& v) { r->set_patient(v); },
           "tenants/{t}/patients/{p}")
        ->required();
    cmd->add_option_function<std::string>(
           "--procedure",
           [r](const std::string& v) { r->set_procedure_code(v); },
           "procedure code")
        ->required();
    cmd->add_option("--at", *at, "RFC 3339 time, e.g. 2026-12-01T09:00:00Z");
    cmd->callback([&g, &run, r, at] {
      run = [&g, r, at]() -> int {
        if (!at->empty()) {
          absl::Time t;
          std::string err;
          if (!absl::ParseTime(absl::RFC3339_full, *at, &t, &err)) {
            return ReportError(absl::InvalidArgumentError(
                absl::StrCat("--at is not an RFC 3339 time: ", err)));
          }
          r->mutable_at_time()->set_seconds(absl::ToUnixSeconds(t));
        }
        return WithClient(
            g, [&](auto& c) { return c.CheckConsent(*r, g.Call()); });
      };
    });
  }

  // keys
  {
    auto* cmd = consent->add_subcommand(
        "keys", "list the receipt signing keys (current and retired)");
    auto out_dir = std::make_shared<std::string>();
    cmd->add_option("--out-dir", *out_dir,
                    "also write each public key as <dir>/<key_id>.pem");
    cmd->callback([&g, &run, out_dir] {
      run = [&g, out_dir] {
        auto channel = g.Channel();
        if (!channel.ok()) return ReportError(channel.status());
        client::ConsentClient c(*channel);
        auto keys = c.ListSigningKeys({}, g.Call());
        if (!keys.ok()) return ReportError(keys.status());
        if (!out_dir->empty()) {
          for (const auto& k : keys->signing_keys()) {
            std::ofstream out(*out_dir + "/" + k.key_id() + ".pem");
            out << k.public_key_pem();
          }
        }
        return PrintJson(*keys);
      };
    });
  }

  // verify (offline)
  {
    auto* cmd = consent->add_subcommand(
        "verify",
        "verify a receipt file offline against a public key; no server");
    auto receipt = std::make_shared<std::string>();
    auto key = std::make_shared<std::string>();
    cmd->add_option("receipt", *receipt, "receipt file")->required();
    cmd->add_option("--public-key", *key, "public key PEM file")->required();
    cmd->callback([&run, receipt, key] {
      run = [receipt, key] {
        auto text = ReadFile(*receipt);
        if (!text.ok()) return ReportError(text.status());
        auto pem = ReadFile(*key);
        if (!pem.ok()) return ReportError(pem.status());
        auto verified = client::VerifyReceiptFile(*text, *pem);
        if (!verified.ok()) {
          std::cout << "INVALID: " << client::ErrorReason(verified.status())
                    << ": " << verified.status().message() << "\n";
          return 1;
        }
        const auto& v = *verified;
        std::cout << "VALID receipt signed with key " << v.key_id << "\n"
                  << "  consent:           " << v.consent << "\n"
                  << "  patient:           " << v.patient << "\n"
                  << "  printed name:      " << v.printed_name << "\n"
                  << "  signed at (UTC):   " << v.sign_time << "\n"
                  << "  meaning:           " << v.signature_meaning << "\n"
                  << "  method:            " << v.signing_method << "\n"
                  << "  document:          " << v.template_version << "\n"
                  << "  document SHA-256:  " << v.document_sha256_hex << "\n"
                  << "  procedure:         " << v.procedure_code << "\n"
                  << "  acknowledgements:  " << v.acknowledged_ids.size()
                  << "\n"
                  << "  audit leaf index:  " << v.audit_leaf_index << "\n";
        return 0;
      };
    });
  }
}

}  // namespace careseal::cli
