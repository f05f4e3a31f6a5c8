// Test helpers: real .deb files built with dpkg-deb from temp trees, and a private dpkg
// root (dpkg --root: its own admindir, nothing of the host's database touched). Test thread
// only.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "base/file.h"
#include "tests/testing.h"

namespace lim::debs::testing {

using lim::testing::Run;
using lim::testing::ShellQuote;

inline bool HaveDpkg() { return Run("command -v dpkg-deb && command -v dpkg").exit_code == 0; }

// Builds DIR/NAME_VERSION.deb holding files (path under / → content; a content starting with
// "@link:" makes a hard link to the named earlier path) with the given compressor.
inline std::string MakeDeb(const std::string& dir, const std::string& name, const std::string& version,
                           const std::map<std::string, std::string>& files, const std::string& compress = "xz",
                           const std::string& arch = "all") {
  std::string tree = dir + "/tree-" + name + "-" + std::to_string(std::hash<std::string>()(version));
  std::filesystem::remove_all(tree);
  std::filesystem::create_directories(tree + "/DEBIAN");
  std::string control = "Package: " + name + "\nVersion: " + version + "\nArchitecture: " + arch +
                        "\nMaintainer: lim tests <t@example.org>\nDescription: test package\n";
  EXPECT_TRUE(WriteFileBytes(tree + "/DEBIAN/control", AsBytes(control)).ok());
  for (const auto& [path, content] : files) {
    std::filesystem::create_directories(std::filesystem::path(tree + path).parent_path());
    if (content.rfind("@link:", 0) == 0) {
      std::filesystem::create_hard_link(tree + content.substr(6), tree + path);
    } else {
      EXPECT_TRUE(WriteFileBytes(tree + path, AsBytes(content), 0755).ok());
    }
  }
  std::string out = dir + "/" + name + "_" + version + "_" + arch + ".deb";
  auto r = Run("dpkg-deb -Z" + compress + " --root-owner-group --build " + ShellQuote(tree) + " " + ShellQuote(out));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::filesystem::remove_all(tree);
  return out;
}

// A private root with merged /usr (bin → usr/bin, sbin, lib) and an empty dpkg database.
inline std::string MakeRoot(const std::string& dir) {
  std::string root = dir + "/root";
  std::filesystem::create_directories(root + "/var/lib/dpkg/info");
  std::filesystem::create_directories(root + "/var/lib/dpkg/updates");
  for (const char* d : {"bin", "sbin", "lib"}) {
    std::filesystem::create_directories(root + "/usr/" + d);
    std::filesystem::create_directory_symlink(std::string("usr/") + d, root + "/" + d);
  }
  EXPECT_TRUE(WriteFileBytes(root + "/var/lib/dpkg/status", {}).ok());
  return root;
}

inline void Install(const std::string& root, const std::string& deb) {
  auto r = Run("dpkg --root=" + ShellQuote(root) + " --force-not-root --force-script-chrootless -i " + ShellQuote(deb));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace lim::debs::testing
