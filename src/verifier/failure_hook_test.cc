#include "verifier/failure_hook.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "base/file.h"
#include "tests/testing.h"

namespace lim::verifier {
namespace {

class FailureHookTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = lim::testing::MakeTempDir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Script(const std::string& name, const std::string& body) {
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileBytes(path, AsBytes("#!/bin/sh\n" + body)).ok());
    ::chmod(path.c_str(), 0700);
    return path;
  }
  std::function<void(const std::string&)> Logger() {
    return [this](const std::string& l) {
      std::lock_guard<std::mutex> lk(mu_);
      log_ += l + "\n";
    };
  }
  std::string Log() {
    std::lock_guard<std::mutex> lk(mu_);
    return log_;
  }
  std::string Wait(const std::string& path, int ms = 5000) {
    for (int i = 0; i < ms / 20; ++i) {
      auto t = ReadFileText(path);
      if (t.ok() && !t->empty() && t->back() == '\n') return *t;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "";
  }

  std::string dir_;
  std::mutex mu_;
  std::string log_;
};

TEST_F(FailureHookTest, RunsWithTheLinesAsArgumentsAndInTheEnvironmentWithoutAShell) {
  std::string out = dir_ + "/out";
  std::string cmd = Script("hook", "printf '%s|%s|%s|%s|%s|%s\\n' \"$#\" \"$LIM_AGENT\" \"$LIM_REASON\" \"$LIM_FINDING\" "
                                   "\"$1\" \"$2\" > " + out + "\n");
  {
    FailureHook hook(cmd, std::chrono::milliseconds(5000), Logger());
    // A line with shell metacharacters reaches the command as one argument, unexpanded.
    hook.Notify("web1", "unknown-file",
                {"lim-verifier: agent=web1 reason=unknown-file path=\"/tmp/$(id) `x`; y\"", "second line"});
    EXPECT_EQ(Wait(out),
              "2|web1|unknown-file|lim-verifier: agent=web1 reason=unknown-file path=\"/tmp/$(id) `x`; y\"|"
              "lim-verifier: agent=web1 reason=unknown-file path=\"/tmp/$(id) `x`; y\"|second line\n");
  }
  EXPECT_EQ(Log(), "");  // exit 0: nothing logged
}

TEST_F(FailureHookTest, ACommandThatOutlivesTheTimeoutIsKilledAndLogged) {
  std::string cmd = Script("slow", "exec sleep 30\n");
  auto t0 = std::chrono::steady_clock::now();
  {
    FailureHook hook(cmd, std::chrono::milliseconds(200), Logger());
    hook.Notify("web1", "nonce", {"line"});
    for (int i = 0; i < 250 && Log().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_NE(Log().find("lim-verifier: agent=web1 on-failure " + cmd + " killed after 200 ms"), std::string::npos)
      << Log();
}

TEST_F(FailureHookTest, AFailingOrMissingCommandIsLoggedNotFatal) {
  {
    FailureHook hook(Script("fails", "exit 3\n"), std::chrono::milliseconds(2000), Logger());
    hook.Notify("web1", "nonce", {"line"});
    for (int i = 0; i < 250 && Log().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(Log().find(" exited 3"), std::string::npos) << Log();
  {
    FailureHook hook(dir_ + "/nosuch", std::chrono::milliseconds(2000), Logger());
    hook.Notify("web2", "nonce", {"line"});
    for (int i = 0; i < 250 && Log().find("web2") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  EXPECT_NE(Log().find("agent=web2 on-failure " + dir_ + "/nosuch did not start"), std::string::npos) << Log();
}

}  // namespace
}  // namespace lim::verifier
