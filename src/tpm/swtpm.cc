#include "tpm/swtpm.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "base/file.h"

extern char** environ;

namespace lim::tpm {

namespace {

Status MakePrivateDir(const std::string& dir) {
  // mkdir -p, then 0700 on the leaf: the socket and state must be root-only.
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos == dir.size() || dir[pos] == '/') {
      std::string part = dir.substr(0, pos);
      if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::IoError("mkdir " + part + ": " + std::strerror(errno));
      }
    }
  }
  if (::chmod(dir.c_str(), 0700) != 0) return Status::IoError("chmod 0700 " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

// Runs argv, waits, returns the exit status; output goes to log_path.
Result<int> RunTool(const std::vector<std::string>& args, const std::string& log_path) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Status::Unavailable(std::string("cannot run ") + argv[0] + ": " + std::strerror(rc) + " (is swtpm installed?)");
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

pid_t ReadPid(const std::string& path) {
  auto text = ReadFileTextBounded(path, 64, "a pid file");  // a decimal number and a newline
  if (!text.ok()) return 0;
  long v = std::strtol(text->c_str(), nullptr, 10);
  return v > 0 ? static_cast<pid_t>(v) : 0;
}

// The pid is alive and is a swtpm (a recycled pid must not be signalled).
bool IsSwtpm(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  auto cmd = ReadFileText("/proc/" + std::to_string(pid) + "/cmdline");
  return cmd.ok() && cmd->find("swtpm") != std::string::npos;
}

bool SocketAccepts(const SwtpmConfig& c) {
  if (c.tcp_port) return true;  // checked by the TCTI on first use
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = SwtpmSocketPath(c) + ".ctrl";
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::string SwtpmSocketPath(const SwtpmConfig& c) { return c.run_dir + "/sock"; }
std::string SwtpmPidPath(const SwtpmConfig& c) { return c.run_dir + "/swtpm.pid"; }

std::string SwtpmTcti(const SwtpmConfig& c) {
  if (c.tcp_port) return "swtpm:host=127.0.0.1,port=" + std::to_string(c.tcp_port);
  return "swtpm:path=" + SwtpmSocketPath(c);
}

const char* SwtpmNotice() {
  return "note: swtpm is a software TPM emulator, not a hardware root of trust: whoever controls this "
         "machine's root account controls its PCRs and keys";
}

Result<pid_t> SwtpmStart(const SwtpmConfig& c, std::string* note) {
  SwtpmState st = SwtpmStatus(c);
  if (st.running) return st.pid;
  if (SwtpmSocketPath(c).size() >= sizeof(sockaddr_un{}.sun_path) - 6) {
    return Status::InvalidArgument("swtpm socket path too long: " + SwtpmSocketPath(c));
  }
  LIM_RETURN_IF_ERROR(MakePrivateDir(c.state_dir));
  LIM_RETURN_IF_ERROR(MakePrivateDir(c.run_dir));
  std::string log = c.run_dir + "/swtpm.log";
  struct stat sb {};
  bool fresh = ::stat((c.state_dir + "/tpm2-00.permall").c_str(), &sb) != 0;
  if (fresh && c.create_ek_cert) {
    LIM_ASSIGN_OR_RETURN(int rc, RunTool({"swtpm_setup", "--tpm2", "--tpmstate", c.state_dir, "--create-ek-cert",
                                          "--create-platform-cert", "--pcr-banks", "sha1,sha256", "--overwrite"},
                                         log));
    if (rc != 0) {
      if (note) *note = "swtpm_setup failed (exit " + std::to_string(rc) + ", see " + log + "); starting without an EK certificate";
    } else {
      // A marker for `status`; failing to write it only loses that line of status output.
      Status marker = WriteFileBytes(c.state_dir + "/lim-ek-cert", AsBytes("swtpm_setup --create-ek-cert\n"));
      (void)marker;
    }
  }
  std::string sock = SwtpmSocketPath(c);
  ::unlink(sock.c_str());
  ::unlink((sock + ".ctrl").c_str());
  ::unlink(SwtpmPidPath(c).c_str());
  std::vector<std::string> args = {"swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + c.state_dir, "--flags", "startup-clear",
                                   "--daemon", "--pid", "file=" + SwtpmPidPath(c), "--log", "file=" + log};
  if (c.tcp_port) {
    args.insert(args.end(), {"--server", "type=tcp,port=" + std::to_string(c.tcp_port) + ",bindaddr=127.0.0.1", "--ctrl",
                             "type=tcp,port=" + std::to_string(c.tcp_port + 1) + ",bindaddr=127.0.0.1"});
  } else {
    args.insert(args.end(), {"--server", "type=unixio,path=" + sock + ",mode=0600", "--ctrl",
                             "type=unixio,path=" + sock + ".ctrl,mode=0600"});
  }
  if (c.die_with_parent) {
    args.erase(std::find(args.begin(), args.end(), "--daemon"));
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t child = ::fork();
    if (child < 0) return Status::Unavailable(std::string("fork: ") + std::strerror(errno));
    if (child == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int null_fd = ::open("/dev/null", O_RDWR);
      ::dup2(null_fd, 0);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
  } else {
    LIM_ASSIGN_OR_RETURN(int rc, RunTool(args, log));
    if (rc != 0) return Status::Unavailable("swtpm failed to start (exit " + std::to_string(rc) + "); see " + log);
  }
  for (int i = 0; i < 200; ++i) {
    pid_t pid = ReadPid(SwtpmPidPath(c));
    if (pid > 0 && IsSwtpm(pid) && SocketAccepts(c)) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Unavailable("swtpm did not come up within 2 s; see " + log);
}

Status SwtpmStop(const SwtpmConfig& c) {
  pid_t pid = ReadPid(SwtpmPidPath(c));
  if (!IsSwtpm(pid)) return Status::NotFound("swtpm is not running (" + SwtpmPidPath(c) + ")");
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid || ::kill(pid, 0) != 0) break;  // reaped child / gone
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, WNOHANG);  // reap it if it was our child (die_with_parent)
  ::unlink(SwtpmPidPath(c).c_str());
  ::unlink(SwtpmSocketPath(c).c_str());
  ::unlink((SwtpmSocketPath(c) + ".ctrl").c_str());
  return Status::Ok();
}

SwtpmState SwtpmStatus(const SwtpmConfig& c) {
  SwtpmState s;
  s.pid = ReadPid(SwtpmPidPath(c));
  s.running = IsSwtpm(s.pid);
  if (!s.running) s.pid = 0;
  s.tcti = SwtpmTcti(c);
  struct stat sb {};
  s.ek_cert = ::stat((c.state_dir + "/lim-ek-cert").c_str(), &sb) == 0;
  return s;
}

}  // namespace lim::tpm
