// A fresh directory under $TEST_TMPDIR (or /tmp) removed at destruction.
#ifndef CARESEAL_TESTS_TESTING_TEMP_DIR_H_
#define CARESEAL_TESTS_TESTING_TEMP_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <string>

namespace careseal::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string pattern =
        std::string(base ? base : "/tmp") + "/careseal-test-XXXXXX";
    path_ = mkdtemp(pattern.data()) ? pattern : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_TESTING_TEMP_DIR_H_
