#include "tests/testing.h"

#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace lim::testing {

std::string Fixture(const std::string& relative) {
  const char* env = std::getenv("LIM_FIXTURES");
  std::string base = env ? env : LIM_DEFAULT_FIXTURES;
  return base + "/" + relative;
}

std::string SourcePath(const std::string& relative) { return std::string(LIM_SOURCE_DIR) + "/" + relative; }

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "<cannot read " + path + ": " + strerror(errno) + ">";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string LimBinary() {
  const char* env = std::getenv("LIM_BIN");
  if (env) return env;
  // Test binaries live in build/src/<module>/; lim is build/src/cli/lim.
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "lim";
  std::string path(exe, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/')) + "/../cli/lim";
}

std::string MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp ? tmp : "/tmp") + "/limtest.XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

std::string LimCommand(const std::string& args) { return ShellQuote(LimBinary()) + " " + args; }

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

CommandResult Run(const std::string& command_line) {
  std::string dir = MakeTempDir();
  std::string out = dir + "/out", err = dir + "/err";
  std::string cmd = "(" + command_line + ") >" + out + " 2>" + err + " </dev/null";
  int st = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  r.out = slurp(out);
  r.err = slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  rmdir(dir.c_str());
  return r;
}

}  // namespace lim::testing
