// careseal audit ...: the audit log. `export` writes a tenant's log to an
// export file, `verify` checks one offline (no server), `events`,
// `checkpoint`, `proof` and `keys` query the AuditService. Output is JSON
// (proto3 JSON mapping) unless a command says otherwise.
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "clients/cli/cli.h"
#include "clients/cpp/audit_client.h"
#include "clients/cpp/audit_verify.h"
#include "clients/cpp/merkle_verify.h"

namespace careseal::cli {
namespace {

namespace v1 = ::careseal::v1;

// "clinic-a" or "tenants/clinic-a" -> "tenants/clinic-a".
std::string TenantName(const std::string& tenant) {
  return absl::StartsWith(tenant, "tenants/") ? tenant : "tenants/" + tenant;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const Globals& g) {
  return g.Channel();
}

absl::Status ParseTime(const std::string& flag, const std::string& text,
                       google::protobuf::Timestamp* out) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " is not an RFC 3339 time: ", err));
  }
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0));
  out->set_nanos(
      static_cast<int32_t>(((micros % 1000000) + 1000000) % 1000000) * 1000);
  return absl::OkStatus();
}

// The published key that signed `checkpoint`, as PEM.
absl::StatusOr<std::string> KeyFor(client::AuditClient& audit,
                                   const v1::SignedCheckpoint& checkpoint,
                                   const client::CallOptions& options) {
  v1::ListCheckpointKeysRequest request;
  request.set_page_size(1000);
  auto keys = audit.ListCheckpointKeys(request, options);
  if (!keys.ok()) return keys.status();
  for (const auto& k : keys->signing_keys()) {
    if (k.key_id() == checkpoint.key_id()) return k.public_key_pem();
  }
  return absl::NotFoundError(
      absl::StrCat("the server publishes no key ", checkpoint.key_id()));
}

void AddExport(CLI::App& audit, Globals& g, Action& run) {
  auto* cmd = audit.add_subcommand(
      "export",
      "write a tenant's audit log (events, checkpoints, keys) to an export "
      "file for archiving and `careseal audit verify`");
  struct Args {
    std::string tenant, out;
    int64_t end_leaf = 0;
    bool no_checkpoint = false;
    double timeout = 600;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--tenant", a->tenant,
                  "tenant id (or tenants/{t}; _ for "
                  "the deployment log)")
      ->required();
  cmd->add_option("--out", a->out, "export file to write")->required();
  cmd->add_option("--end-leaf", a->end_leaf,
                  "export leaves below this index (default: up to the "
                  "latest checkpoint)");
  cmd->add_flag("--no-checkpoint", a->no_checkpoint,
                "do not sign a checkpoint of the current tree first");
  cmd->add_option("--export-timeout", a->timeout,
                  "deadline of the export stream in seconds")
      ->capture_default_str();
  cmd->callback([&g, &run, a] {
    run = [&g, a] {
      auto channel = Connect(g);
      if (!channel.ok()) return ReportError(channel.status());
      client::AuditClient audit(*channel);
      const std::string tenant = TenantName(a->tenant);
      if (!a->no_checkpoint && a->end_leaf == 0) {
        v1::CreateCheckpointRequest create;
        create.set_parent(tenant);
        auto made = audit.CreateCheckpoint(create, g.Call());
        if (!made.ok() && client::ErrorReason(made.status()) != "EMPTY_LOG") {
          return ReportError(made.status());
        }
      }
      std::ofstream out(a->out, std::ios::binary | std::ios::trunc);
      if (!out) {
        return ReportError(absl::InvalidArgumentError(
            absl::StrCat("cannot write '", a->out, "'")));
      }
      client::CallOptions options = g.Call();
      options.timeout = absl::Seconds(a->timeout);
      auto counts = client::ExportAuditLogToStream(audit, tenant, out, options,
                                                   a->end_leaf);
      if (!counts.ok()) return ReportError(counts.status());
      std::cout << "exported " << counts->events << " events, "
                << counts->checkpoints << " checkpoints and "
                << counts->signing_keys << " signing keys of " << tenant
                << " to " << a->out << "\n";
      return 0;
    };
  });
}

void AddVerify(CLI::App& audit, Action& run) {
  auto* cmd = audit.add_subcommand(
      "verify",
      "verify an export file offline: leaf hashes, the Merkle tree, every "
      "checkpoint's root and signature; no server");
  struct Args {
    std::string file;
    std::vector<std::string> keys;
    bool allow_uncovered = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("file", a->file, "export file")->required();
  cmd->add_option("--key", a->keys,
                  "trusted checkpoint public key (PEM file, from `careseal "
                  "audit keys` or the clinic); repeatable. Without it the "
                  "keys inside the export are trusted");
  cmd->add_flag("--allow-uncovered", a->allow_uncovered,
                "accept events after the last checkpoint");
  cmd->callback([&run, a] {
    run = [a] {
      auto text = ReadFile(a->file);
      if (!text.ok()) return ReportError(text.status());
      client::AuditVerifyOptions options;
      options.allow_uncovered_tail = a->allow_uncovered;
      for (const std::string& path : a->keys) {
        auto pem = ReadFile(path);
        if (!pem.ok()) return ReportError(pem.status());
        options.trusted_keys.push_back(*pem);
      }
      auto report = client::VerifyAuditExport(*text, options);
      if (!report.ok()) {
        std::cout << "INVALID: " << client::ErrorReason(report.status()) << ": "
                  << report.status().message() << "\n";
        return 1;
      }
      const auto& r = *report;
      std::cout << "VALID audit log of " << r.tenant << "\n"
                << "  events:            " << r.events << "\n"
                << "  checkpoints:       " << r.checkpoints << "\n"
                << "  tree size:         " << r.tree_size << "\n"
                << "  root hash:         "
                << absl::BytesToHexString(r.root_hash) << "\n"
                << "  last checkpoint:   " << r.last_checkpoint_time << "\n"
                << "  signed by:         "
                << (r.signing_key_ids.empty()
                        ? std::string("-")
                        : absl::StrJoin(r.signing_key_ids, ", "))
                << "\n";
      if (r.uncovered_events > 0) {
        std::cout << "  WARNING: " << r.uncovered_events
                  << " events after the last checkpoint are not signed\n";
      }
      if (r.keys_from_export) {
        std::cout << "  NOTE: signatures were checked against the keys in "
                     "the export; pass --key to pin the clinic's published "
                     "keys\n";
      }
      return 0;
    };
  });
}

void AddEvents(CLI::App& audit, Globals& g, Action& run) {
  auto* cmd = audit.add_subcommand("events", "list a tenant's audit events");
  auto r = std::make_shared<v1::ListAuditEventsRequest>();
  auto since = std::make_shared<std::string>();
  auto until = std::make_shared<std::string>();
  auto category = std::make_shared<std::string>();
  cmd->add_option_function<std::string>(
         "--tenant",
         [r](const std::string& v) { r->set_parent(TenantName(v)); },
         "tenant id")
      ->required();
  cmd->add_option_function<std::string>(
      "--patient", [r](const std::string& v) { r->set_patient(v); },
      "only events about tenants/{t}/patients/{p}");
  cmd->add_option_function<std::string>(
      "--actor", [r](const std::string& v) { r->set_actor(v); },
      "only events by this actor");
  cmd->add_option_function<std::string>(
      "--action", [r](const std::string& v) { r->set_action(v); },
      "only this action, e.g. /careseal.v1.ConsentService/SignConsent");
  cmd->add_option_function<std::string>(
      "--resource", [r](const std::string& v) { r->set_resource(v); },
      "only events on this resource");
  cmd->add_option("--category", *category,
                  "DATA_READ, DATA_WRITE, AUTHENTICATION, AUTHORIZATION, "
                  "ADMIN, KEY_MANAGEMENT, BREAK_GLASS, SYSTEM_JOB or "
                  "METADATA_READ");
  cmd->add_option("--since", *since, "RFC 3339 time (inclusive)");
  cmd->add_option("--until", *until, "RFC 3339 time (exclusive)");
  cmd->add_flag_function(
      "--failures", [r](int64_t n) { r->set_failures_only(n > 0); },
      "only failed or denied calls");
  cmd->add_option_function<int>(
      "--page-size", [r](int v) { r->set_page_size(v); }, "page size");
  cmd->add_option_function<std::string>(
      "--page-token", [r](const std::string& v) { r->set_page_token(v); },
      "page token");
  cmd->callback([&g, &run, r, since, until, category] {
    run = [&g, r, since, until, category] {
      if (!since->empty()) {
        if (auto s = ParseTime("--since", *since, r->mutable_start_time());
            !s.ok()) {
          return ReportError(s);
        }
      }
      if (!until->empty()) {
        if (auto s = ParseTime("--until", *until, r->mutable_end_time());
            !s.ok()) {
          return ReportError(s);
        }
      }
      if (!category->empty()) {
        v1::AuditCategory c;
        if (!v1::AuditCategory_Parse("AUDIT_CATEGORY_" + *category, &c)) {
          return ReportError(absl::InvalidArgumentError(
              absl::StrCat("unknown category '", *category, "'")));
        }
        r->set_category(c);
      }
      auto channel = Connect(g);
      if (!channel.ok()) return ReportError(channel.status());
      client::AuditClient audit(*channel);
      auto page = audit.ListAuditEvents(*r, g.Call());
      if (!page.ok()) return ReportError(page.status());
      return PrintJson(*page);
    };
  });
}

void AddCheckpoint(CLI::App& audit, Globals& g, Action& run) {
  auto* cmd = audit.add_subcommand(
      "checkpoint",
      "show the latest signed checkpoint (or one of a given size), or sign "
      "one of the current tree with --create");
  struct Args {
    std::string tenant;
    int64_t size = 0;
    bool create = false;
    bool list = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--tenant", a->tenant, "tenant id")->required();
  cmd->add_option("--size", a->size, "tree size of the checkpoint");
  cmd->add_flag("--create", a->create, "sign a checkpoint now");
  cmd->add_flag("--list", a->list, "list the checkpoints instead");
  cmd->callback([&g, &run, a] {
    run = [&g, a] {
      auto channel = Connect(g);
      if (!channel.ok()) return ReportError(channel.status());
      client::AuditClient audit(*channel);
      const std::string tenant = TenantName(a->tenant);
      if (a->create) {
        v1::CreateCheckpointRequest r;
        r.set_parent(tenant);
        auto made = audit.CreateCheckpoint(r, g.Call());
        if (!made.ok()) return ReportError(made.status());
        return PrintJson(*made);
      }
      if (a->list) {
        v1::ListCheckpointsRequest r;
        r.set_parent(tenant);
        r.set_min_tree_size(a->size);
        auto page = audit.ListCheckpoints(r, g.Call());
        if (!page.ok()) return ReportError(page.status());
        return PrintJson(*page);
      }
      v1::GetCheckpointRequest r;
      r.set_parent(tenant);
      r.set_tree_size(a->size);
      auto got = audit.GetCheckpoint(r, g.Call());
      if (!got.ok()) return ReportError(got.status());
      return PrintJson(*got);
    };
  });
}

void AddProof(CLI::App& audit, Globals& g, Action& run) {
  auto* cmd = audit.add_subcommand(
      "proof",
      "fetch and check a proof: --leaf N for an inclusion proof of an event "
      "in a checkpoint, --from-size A for a consistency proof between two "
      "tree sizes; the checkpoint signature is checked against the "
      "published key");
  struct Args {
    std::string tenant;
    int64_t leaf = -1;
    int64_t tree_size = 0;
    int64_t from_size = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--tenant", a->tenant, "tenant id")->required();
  cmd->add_option("--leaf", a->leaf, "leaf index of the event");
  cmd->add_option("--tree-size", a->tree_size,
                  "checkpointed tree size (default: the latest checkpoint)");
  cmd->add_option("--from-size", a->from_size,
                  "first tree size of a consistency proof (to --tree-size)");
  cmd->callback([&g, &run, a] {
    run = [&g, a]() -> int {
      auto channel = Connect(g);
      if (!channel.ok()) return ReportError(channel.status());
      client::AuditClient audit(*channel);
      const std::string tenant = TenantName(a->tenant);
      if (a->leaf >= 0) {
        v1::GetInclusionProofRequest r;
        r.set_parent(tenant);
        r.set_leaf_index(a->leaf);
        r.set_tree_size(a->tree_size);
        auto proof = audit.GetInclusionProof(r, g.Call());
        if (!proof.ok()) return ReportError(proof.status());
        auto key = KeyFor(audit, proof->checkpoint(), g.Call());
        if (!key.ok()) return ReportError(key.status());
        auto cp =
            client::VerifyCheckpoint(proof->checkpoint().payload(),
                                     proof->checkpoint().signature(), *key);
        absl::Status ok = cp.status();
        if (ok.ok()) {
          std::vector<std::string> path(proof->audit_path().begin(),
                                        proof->audit_path().end());
          ok = client::VerifyInclusion(
              client::LeafHash(proof->event().leaf_data()), a->leaf,
              cp->tree_size, path, cp->root_hash);
        }
        PrintJson(*proof);
        if (!ok.ok()) {
          std::cout << "INVALID: " << ok.message() << "\n";
          return 1;
        }
        std::cout << "VALID: leaf " << a->leaf << " is in the tree of size "
                  << cp->tree_size << " signed at " << cp->time << " with key "
                  << cp->key_id << "\n";
        return 0;
      }
      if (a->from_size > 0) {
        v1::GetConsistencyProofRequest r;
        r.set_parent(tenant);
        r.set_first_tree_size(a->from_size);
        r.set_second_tree_size(a->tree_size);
        auto proof = audit.GetConsistencyProof(r, g.Call());
        if (!proof.ok()) return ReportError(proof.status());
        PrintJson(*proof);
        if (!proof->has_first_checkpoint() || !proof->has_second_checkpoint()) {
          std::cout << "UNCHECKED: both sizes need a signed checkpoint to "
                       "check the proof against\n";
          return 1;
        }
        absl::Status ok;
        std::string roots[2];
        const v1::SignedCheckpoint* cps[2] = {&proof->first_checkpoint(),
                                              &proof->second_checkpoint()};
        for (int i = 0; i < 2 && ok.ok(); ++i) {
          auto key = KeyFor(audit, *cps[i], g.Call());
          if (!key.ok()) return ReportError(key.status());
          auto cp = client::VerifyCheckpoint(cps[i]->payload(),
                                             cps[i]->signature(), *key);
          ok = cp.status();
          if (ok.ok()) roots[i] = cp->root_hash;
        }
        if (ok.ok()) {
          std::vector<std::string> hashes(proof->proof().begin(),
                                          proof->proof().end());
          ok = client::VerifyConsistency(proof->first_tree_size(),
                                         proof->second_tree_size(), roots[0],
                                         roots[1], hashes);
        }
        if (!ok.ok()) {
          std::cout << "INVALID: " << ok.message() << "\n";
          return 1;
        }
        std::cout << "VALID: the tree of size " << proof->first_tree_size()
                  << " is a prefix of the tree of size "
                  << proof->second_tree_size() << "\n";
        return 0;
      }
      return ReportError(absl::InvalidArgumentError(
          "give --leaf N (inclusion) or --from-size A (consistency)"));
    };
  });
}

void AddKeys(CLI::App& audit, Globals& g, Action& run) {
  auto* cmd = audit.add_subcommand(
      "keys", "list the checkpoint signing keys (current and retired)");
  auto out_dir = std::make_shared<std::string>();
  cmd->add_option("--out-dir", *out_dir,
                  "also write each public key as <dir>/<key_id>.pem");
  cmd->callback([&g, &run, out_dir] {
    run = [&g, out_dir] {
      auto channel = Connect(g);
      if (!channel.ok()) return ReportError(channel.status());
      client::AuditClient audit(*channel);
      v1::ListCheckpointKeysRequest r;
      r.set_page_size(1000);
      auto keys = audit.ListCheckpointKeys(r, g.Call());
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

}  // namespace

void AddAuditCommands(CLI::App& app, Globals& g, Action& run) {
  auto* audit = app.add_subcommand("audit", "the tamper-evident audit log");
  audit->require_subcommand(1);
  AddExport(*audit, g, run);
  AddVerify(*audit, run);
  AddEvents(*audit, g, run);
  AddCheckpoint(*audit, g, run);
  AddProof(*audit, g, run);
  AddKeys(*audit, g, run);
}

}  // namespace careseal::cli
