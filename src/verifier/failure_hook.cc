#include "verifier/failure_hook.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "base/escape.h"

extern char** environ;

namespace lim::verifier {

FailureHook::FailureHook(std::string command, std::chrono::milliseconds timeout,
                         std::function<void(const std::string&)> log)
    : command_(std::move(command)), timeout_(timeout), log_(std::move(log)) {
  thread_ = std::thread([this] { Loop(); });
}

FailureHook::~FailureHook() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FailureHook::Notify(const std::string& agent, const std::string& reason, std::vector<std::string> lines) {
  std::unique_lock<std::mutex> lk(mu_);
  if (stop_) return;
  if (queue_.size() >= kMaxQueued) {
    lk.unlock();
    log_("lim-verifier: agent=" + agent + " on-failure not run: " + std::to_string(kMaxQueued) + " runs queued");
    return;
  }
  if (lines.size() > kMaxArgs) lines.resize(kMaxArgs);
  queue_.push_back({agent, reason, std::move(lines)});
  cv_.notify_all();
}

void FailureHook::Loop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Run run = std::move(queue_.front());
    queue_.pop_front();
    lk.unlock();
    Execute(run);
    lk.lock();
  }
}

void FailureHook::Execute(const Run& run) {
  // Everything the child needs is built before the spawn.
  std::vector<std::string> env_strings = {"LIM_AGENT=" + run.agent, "LIM_REASON=" + run.reason,
                                          "LIM_FINDING=" + (run.lines.empty() ? std::string() : run.lines[0])};
  std::vector<char*> envp;
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, "LIM_AGENT=", 10) == 0 || std::strncmp(*e, "LIM_REASON=", 11) == 0 ||
        std::strncmp(*e, "LIM_FINDING=", 12) == 0) {
      continue;
    }
    envp.push_back(*e);
  }
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = {command_};
  args.insert(args.end(), run.lines.begin(), run.lines.end());
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, command_.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  std::string what = "lim-verifier: agent=" + run.agent + " on-failure " + Escaped(command_);
  if (rc != 0) {
    log_(what + " did not start: " + std::strerror(rc));
    return;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      log_(what + ": waitpid: " + std::strerror(errno));
      return;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      log_(what + " killed after " + std::to_string(timeout_.count()) + " ms");
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  log_(what + (WIFEXITED(status) ? " exited " + std::to_string(WEXITSTATUS(status))
                                 : " killed by signal " + std::to_string(WTERMSIG(status))));
}

}  // namespace lim::verifier
