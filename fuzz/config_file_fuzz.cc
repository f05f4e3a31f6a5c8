// libFuzzer target for limd's config file: ParseConfigText on any text, then the same
// text through CLI11's config machinery (AddConfigOption, `--config FILE`) into an app with
// options of every kind limd has (strings, a repeated list, integers, a switch, options
// that exclude each other). Any input must end in values or a CLI11 error that
// DescribeParseError turns into a message — never an uncaught exception or a crash.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "daemon/config_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = lim::daemon::ParseConfigText(text, [](const std::string& key) {
    return key == "nope" ? lim::Status::InvalidArgument("unknown key '" + key + "'") : lim::Status::Ok();
  });
  if (parsed.ok()) {
    for (const auto& e : *parsed) {
      if (e.line < 1 || e.key.empty() || e.value.empty()) std::abort();
    }
  } else if (parsed.status().message().empty()) {
    std::abort();
  }

  // The whole path: the text as a config file (a memfd, named through /proc/self/fd).
  int fd = ::memfd_create("limd.conf", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    ::close(fd);
    return 0;
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  CLI::App app{"limd"};
  std::string state, policy, builtin, log_level;
  std::vector<std::string> watch;
  int workers = 0;
  int64_t timeout_ms = 0;
  bool no_tpm = false;
  app.add_option("--state", state);
  app.add_option("--watch", watch);
  app.add_option("--workers", workers);
  app.add_option("--decision-timeout-ms", timeout_ms);
  app.add_flag("--no-tpm", no_tpm);
  app.add_option("--log-level", log_level)->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  auto* p = app.add_option("--policy", policy);
  auto* b = app.add_option("--builtin-policy", builtin);
  p->excludes(b);
  lim::daemon::AddConfigOption(&app, "/nonexistent/limd.conf");
  std::vector<std::string> args = {"limd", "--config", path};
  if (size && data[0] & 1) args.push_back("--workers=3");  // a flag that overrides the file
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    (void)lim::daemon::ConfigFileWithHiddenEntries(app);
  } catch (const CLI::Error& e) {
    if (lim::daemon::DescribeParseError(app, e).empty()) std::abort();
  }
  ::close(fd);
  return 0;
}
