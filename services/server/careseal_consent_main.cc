// careseal-consent: the consent service alone, for clinics that scale out.
#include "services/server/modules.h"

int main(int argc, char** argv) {
  return careseal::RunModules(argc, argv, "careseal-consent", {"consent"});
}
