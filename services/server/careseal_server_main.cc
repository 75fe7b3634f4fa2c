#include "services/common/grpc/server_main.h"

int main(int argc, char** argv) {
  return careseal::RunServerMain(
      argc, argv, "careseal-server",
      [](careseal::ServerEnv&)
          -> absl::StatusOr<
              std::vector<std::unique_ptr<careseal::ServiceModule>>> {
        return std::vector<std::unique_ptr<careseal::ServiceModule>>();
      });
}
