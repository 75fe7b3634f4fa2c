// Random strings for canonical-encoding tests: text that mixes ASCII, every
// control character, quotes, backslashes, DEL and multi-byte UTF-8 (2, 3 and
// 4 bytes), the cases where a hand-written JSON writer can go wrong.
#ifndef CARESEAL_TESTS_TESTING_RANDOM_TEXT_H_
#define CARESEAL_TESTS_TESTING_RANDOM_TEXT_H_

#include <string>
#include <vector>

#include "absl/random/random.h"

namespace careseal::testing {

inline std::string RandomText(absl::BitGen& gen) {
  static const std::vector<std::string> pieces = {
      "a",
      "Z",
      "0",
      " ",
      "\"",
      "\\",
      "/",
      "\x7f",
      "é",
      "€",
      "😀",
      "名",
      "tenants/clinic-a/patients/p-1",
      "careseal.v1.ConsentService/SignConsent"};
  std::string out;
  const int n = absl::Uniform(gen, 0, 12);
  for (int i = 0; i < n; ++i) {
    if (absl::Bernoulli(gen, 0.25)) {
      out.push_back(static_cast<char>(absl::Uniform(gen, 0, 0x20)));
    } else {
      out += pieces[absl::Uniform<size_t>(gen, 0, pieces.size())];
    }
  }
  return out;
}

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_TESTING_RANDOM_TEXT_H_
