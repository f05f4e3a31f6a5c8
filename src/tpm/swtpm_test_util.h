// Test helper (header only, used by tpm and cli tests): one private swtpm per test process,
// on a unix socket in a fresh temp dir, started on first use and killed by pid at exit (it
// also dies with the process: SwtpmConfig::die_with_parent). Test thread only.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "tests/testing.h"
#include "tpm/pcr.h"
#include "tpm/swtpm.h"
#include "tpm/tpm.h"

namespace lim::tpm::testing {

class SwtpmEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (started_) {
      EXPECT_TRUE(SwtpmStop(config_).ok());
      started_ = false;
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::path(config_.run_dir).parent_path(), ec);
    }
  }
  const SwtpmConfig& Get() {
    if (!started_) {
      std::string dir = lim::testing::MakeTempDir();
      config_.state_dir = dir + "/state";
      config_.run_dir = dir + "/run";
      config_.create_ek_cert = false;
      config_.die_with_parent = true;
      auto pid = SwtpmStart(config_);
      if (!pid.ok()) {
        ADD_FAILURE() << "cannot start swtpm: " << pid.status().message();
      }
      started_ = pid.ok();
    }
    return config_;
  }

 private:
  SwtpmConfig config_;
  bool started_ = false;
};

inline SwtpmEnvironment& Swtpm() {
  static SwtpmEnvironment* env = [] {
    auto* e = new SwtpmEnvironment;
    ::testing::AddGlobalTestEnvironment(e);  // gtest owns it and calls TearDown at exit
    return e;
  }();
  return *env;
}

inline std::string SwtpmTctiForTests() { return SwtpmTcti(Swtpm().Get()); }

// The config of another swtpm of the test's own (another TPM: state and sockets under dir,
// no EK certificate, a child that dies with the test); SwtpmStart it, SwtpmStop it.
inline SwtpmConfig OtherSwtpmConfig(const std::string& dir) {
  SwtpmConfig c;
  c.state_dir = dir + "/state";
  c.run_dir = dir + "/run";
  c.create_ek_cert = false;
  c.die_with_parent = true;
  return c;
}

// A Tpm on the test swtpm (null, with a test failure, when it cannot be opened).
inline std::unique_ptr<Tpm> OpenTestTpm() {
  auto t = OpenTpm(SwtpmTctiForTests());
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? std::move(*t) : nullptr;
}

// Runs a tpm2-tools command line against the test swtpm.
inline lim::testing::CommandResult Tpm2Tools(const std::string& cmd) {
  return lim::testing::Run("export TPM2TOOLS_TCTI=" + lim::testing::ShellQuote(SwtpmTctiForTests()) +
                           "; timeout 60 sh -c " + lim::testing::ShellQuote(cmd));
}

// The transient objects and sessions loaded in the test swtpm (tpm2_getcap's lines; empty
// when every command flushed what it made).
inline std::string LoadedTpmHandles() {
  return Tpm2Tools("tpm2_getcap handles-transient; tpm2_getcap handles-loaded-session").out;
}

// Parses tpm2_pcrread's output ("  sha256:\n    0 : 0x…").
inline PcrValues ParseTpm2PcrRead(const std::string& text) {
  PcrValues out;
  std::istringstream in(text);
  std::string line;
  uint16_t bank = 0;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (line.find("0x") == std::string::npos) {
      std::string name = line.substr(0, colon);
      name.erase(0, name.find_first_not_of(' '));
      auto alg = ParseBankName(name);
      bank = alg.ok() ? *alg : 0;
      continue;
    }
    int idx = std::atoi(line.c_str());
    auto hex = FromHex(line.substr(line.find("0x") + 2));
    if (bank && hex.ok()) out[bank][idx] = *hex;
  }
  return out;
}

}  // namespace lim::tpm::testing
