#include "services/server/modules.h"

#include "absl/strings/str_cat.h"
#include "services/audit/audit_module.h"
#include "services/common/grpc/server_main.h"
#include "services/common/macros.h"
#include "services/common/status.h"
#include "services/consent/consent_module.h"
#include "services/followup/messaging/messaging_module.h"
#include "services/followup/service/followup_module.h"
#include "services/presession/presession_module.h"
#include "services/identity/identity_module.h"

namespace careseal {

std::vector<std::string> AllModules() {
  return {"consent",  "audit",    "messaging",
          "followup", "identity", "presession"};
}

ModuleFactory ModulesFor(std::vector<std::string> names) {
  return [names = std::move(names)](ServerEnv& env)
             -> absl::StatusOr<std::vector<std::unique_ptr<ServiceModule>>> {
    std::vector<std::unique_ptr<ServiceModule>> modules;
    for (const std::string& name : names) {
      if (name == "consent") {
        ASSIGN_OR_RETURN(auto m, consent::ConsentModule::Create(env));
        modules.push_back(std::move(m));
      } else if (name == "audit") {
        ASSIGN_OR_RETURN(auto m, audit::AuditModule::Create(env));
        modules.push_back(std::move(m));
      } else if (name == "messaging") {
        ASSIGN_OR_RETURN(auto m,
                         messaging::MessagingModule::Create(
                             env, messaging::MessagingOptionsFromFlags()));
        modules.push_back(std::move(m));
      } else if (name == "presession") {
        ASSIGN_OR_RETURN(auto m,
                         presession::PreSessionModule::Create(
                             env, presession::PreSessionOptionsFromFlags()));
        modules.push_back(std::move(m));
      } else if (name == "followup") {
        ASSIGN_OR_RETURN(auto m,
                         followup::FollowUpModule::Create(
                             env, followup::FollowUpOptionsFromFlags()));
        modules.push_back(std::move(m));
      } else if (name == "identity") {
        ASSIGN_OR_RETURN(auto m,
                         identity::IdentityModule::Create(
                             env, identity::IdentityOptionsFromFlags()));
        modules.push_back(std::move(m));
      } else {
        return InvalidField(
            "modules", "UNKNOWN_MODULE",
            absl::StrCat("no service module named '", name, "'"));
      }
    }
    return modules;
  };
}

int RunModules(int argc, char** argv, const std::string& program,
               std::vector<std::string> names) {
  return RunServerMain(argc, argv, program, ModulesFor(std::move(names)));
}

}  // namespace careseal
