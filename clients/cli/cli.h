// The `careseal` command line: shared connection options and the hooks each
// command group uses to register itself.
#ifndef CARESEAL_CLIENTS_CLI_CLI_H_
#define CARESEAL_CLIENTS_CLI_CLI_H_

#include <google/protobuf/message.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/cpp/client.h"

namespace careseal::cli {

struct Globals {
  client::ChannelOptions channel;
  std::string token;
  std::string break_glass_grant;  // sent as careseal-break-glass
  double timeout_seconds = 10;

  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel() const;
  client::CallOptions Call() const;
};

// Prints an error as `error: CODE REASON: message [field]` to stderr and
// returns the exit code for it (2 for bad input, 1 otherwise).
int ReportError(const absl::Status& status);

// The whole file at `path`; INVALID_ARGUMENT naming it if it cannot be read.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// `message` in the proto3 JSON mapping with proto field names.
std::string ToJson(const google::protobuf::Message& message, bool pretty);

// Prints `message` as indented JSON to stdout; returns exit code 0.
int PrintJson(const google::protobuf::Message& message);

// Each command group adds its subcommands; `run` is set to the chosen
// action and returns the process exit code.
using Action = std::function<int()>;
void AddHealthCommands(CLI::App& app, Globals& globals, Action& run);
void AddConsentCommands(CLI::App& app, Globals& globals, Action& run);
void AddAuditCommands(CLI::App& app, Globals& globals, Action& run);
void AddMessagingCommands(CLI::App& app, Globals& globals, Action& run);
void AddEventsCommands(CLI::App& app, Globals& globals, Action& run);
void AddFollowUpCommands(CLI::App& app, Globals& globals, Action& run);
void AddSessionsCommands(CLI::App& app, Globals& globals, Action& run);
void AddIdentityCommands(CLI::App& app, Globals& globals, Action& run);

}  // namespace careseal::cli

#endif  // CARESEAL_CLIENTS_CLI_CLI_H_
