#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "clients/cli/cli.h"

namespace careseal::cli {

absl::StatusOr<std::shared_ptr<grpc::Channel>> Globals::Channel() const {
  return client::MakeChannel(channel);
}

client::CallOptions Globals::Call() const {
  client::CallOptions options;
  options.timeout = absl::Seconds(timeout_seconds);
  options.bearer_token = token;
  options.break_glass_grant = break_glass_grant;
  return options;
}

int ReportError(const absl::Status& status) {
  std::string reason = client::ErrorReason(status);
  std::string field = client::ErrorField(status);
  std::cerr << "error: " << absl::StatusCodeToString(status.code());
  if (!reason.empty()) std::cerr << " " << reason;
  std::cerr << ": " << status.message();
  if (!field.empty()) std::cerr << " [field " << field << "]";
  std::cerr << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read '", path, "'"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

int PrintJson(const google::protobuf::Message& message) {
  std::cout << ToJson(message, /*pretty=*/true);
  return 0;
}

void AddHealthCommands(CLI::App& app, Globals& globals, Action& run) {
  auto* health = app.add_subcommand(
      "health", "ask the server whether it (or one service) is SERVING");
  auto service = std::make_shared<std::string>();
  health->add_option("--service", *service,
                     "fully qualified service name; empty for the server");
  health->callback([&globals, &run, service] {
    run = [&globals, service] {
      auto channel = globals.Channel();
      if (!channel.ok()) return ReportError(channel.status());
      client::HealthClient client(*channel);
      auto serving = client.Check(*service, globals.Call());
      if (!serving.ok()) return ReportError(serving.status());
      std::cout << (*serving ? "SERVING" : "NOT_SERVING") << "\n";
      return *serving ? 0 : 1;
    };
  });
}

}  // namespace careseal::cli

int main(int argc, char** argv) {
  using careseal::cli::Globals;
  CLI::App app{
      "careseal: the CareSeal command line for clinicians, admins and "
      "integrators"};
  app.require_subcommand(1);
  Globals globals;
  globals.channel.target = "127.0.0.1:7443";
  app.add_option("--target", globals.channel.target, "server host:port")
      ->envname("CARESEAL_TARGET")
      ->capture_default_str();
  app.add_option("--ca", globals.channel.ca_file, "CA bundle (PEM)")
      ->envname("CARESEAL_CA");
  app.add_option("--cert", globals.channel.cert_file,
                 "client certificate (PEM)")
      ->envname("CARESEAL_CERT");
  app.add_option("--key", globals.channel.key_file, "client key (PEM)")
      ->envname("CARESEAL_KEY");
  app.add_option("--token", globals.token,
                 "end-user bearer token (JWT) sent with each call")
      ->envname("CARESEAL_TOKEN");
  app.add_option("--break-glass", globals.break_glass_grant,
                 "act under this break-glass grant "
                 "(tenants/{t}/clinicians/{c}/breakGlassGrants/{g}, from "
                 "`careseal break-glass start`); every call is audited and "
                 "flagged with it")
      ->envname("CARESEAL_BREAK_GLASS");
  app.add_option("--timeout", globals.timeout_seconds,
                 "deadline of each call in seconds")
      ->capture_default_str();
  app.add_flag("--insecure-for-local-dev",
               globals.channel.insecure_for_local_dev,
               "plaintext to a local development server");

  careseal::cli::Action run;
  careseal::cli::AddHealthCommands(app, globals, run);
  careseal::cli::AddConsentCommands(app, globals, run);
  careseal::cli::AddAuditCommands(app, globals, run);
  careseal::cli::AddMessagingCommands(app, globals, run);
  careseal::cli::AddEventsCommands(app, globals, run);
  careseal::cli::AddFollowUpCommands(app, globals, run);
  careseal::cli::AddSessionsCommands(app, globals, run);
  careseal::cli::AddIdentityCommands(app, globals, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return run ? run() : 0;
}
