// A fresh, empty folder for one test, under the system's temporary directory, removed with everything in it when
// the test ends. Shared by the tests that write files (tensor I/O, tokenizers, checkpoints).
//
//   tg::testing::TempDir tmp;
//   save_npy(tmp.file("t.npy"), t);
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace tg::testing {

struct TempDir {
  std::filesystem::path dir;
  // The folder is named after the process and a counter, so parallel test processes never share one.
  TempDir() {
    static std::atomic<int> counter{0};
    dir = std::filesystem::temp_directory_path() /
          ("tg_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace tg::testing
