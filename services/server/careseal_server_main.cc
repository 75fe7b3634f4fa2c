// careseal-server: every service in one process on one port, over the
// embedded SQLite store.
#include "services/server/modules.h"

int main(int argc, char** argv) {
  return careseal::RunModules(argc, argv, "careseal-server",
                              careseal::AllModules());
}
