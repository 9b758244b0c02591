// Helpers shared by the tests: where the shared assets and fixtures are, temp dirs, skipping.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace kotsu::test {

inline std::string shared_dir() {
  return (std::filesystem::path(KOTSU_SOURCE_DIR) / ".." / "shared").lexically_normal().string();
}
inline std::string fixture_dir() { return KOTSU_FIXTURE_DIR; }
inline std::string fixture(const std::string& name) { return fixture_dir() + "/" + name; }

// A fresh directory under the system temp dir, removed when the test process exits.
inline std::string temp_dir(const std::string& tag) {
  struct Cleanup {
    std::vector<std::filesystem::path> dirs;
    ~Cleanup() {
      std::error_code ec;
      for (auto& d : dirs) std::filesystem::remove_all(d, ec);
    }
  };
  static Cleanup cleanup;
  std::random_device rd;
  auto p = std::filesystem::temp_directory_path() / ("kotsu-test-" + tag + "-" + std::to_string(rd()));
  std::filesystem::create_directories(p);
  cleanup.dirs.push_back(p);
  return p.string();
}

}  // namespace kotsu::test

#define KOTSU_REQUIRE_PATH(path)                                                         \
  do {                                                                                   \
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "asset not found: " << (path); \
  } while (0)
