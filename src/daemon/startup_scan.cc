#include "daemon/startup_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/file.h"
#include "base/own_threads.h"
#include "daemon/proc_context.h"
#include "daemon/process_exe.h"
#include "daemon/reader_close_group.h"
#include "ima/policy.h"

namespace lim::daemon {

namespace {

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

// One scan over /proc: each process's executable, executable mappings and (unless
// executables_only) open files on the watched filesystems, then the seeded counts.
class Scanner {
 public:
  Scanner(Measurer* measurer, const std::set<uint64_t>& devs, const std::function<void(const std::string&)>& log,
          bool executables_only)
      : measurer_(measurer), devs_(devs), log_(log), executables_only_(executables_only),
        // Executable mappings of a memfd (a JIT's double mapping, a loader's library) are
        // measured too: the kernel's MMAP_CHECK sees them, fanotify never will.
        memfd_dev_(MemfdDevice()) {}

  ScanReport Run(pid_t self) {
    for (const auto& name : List("/proc")) {
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      pid_t pid = std::atoi(name.c_str());
      if (pid == self) continue;
      rep_.processes++;
      std::string base = "/proc/" + name;
      ScanExe(name, base, pid);
      ScanMaps(base, pid);
      if (!executables_only_) ScanFds(base, pid);
    }
    Seed();
    LogReport();
    return std::move(rep_);
  }

 private:
  // Whether a file on a watched filesystem (or a memfd mapping) was measured.
  bool Measure(const std::string& open_path, const std::string& name, pid_t pid, ima::ImaHook func, uint32_t mask) {
    struct stat st;
    if (::stat(open_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    bool memfd_map = func == ima::ImaHook::kMmapCheck && memfd_dev_ != 0 && st.st_dev == memfd_dev_;
    if (!devs_.count(st.st_dev) && !memfd_map) return false;
    int fd = ::open(open_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    Access a = ProcessAccess(fd, pid, func, mask, memfd_map ? MemfdImaName(name) : name);
    if (memfd_map) a.fsname = "tmpfs";
    Verdict v = measurer_->Process(a);
    if (!v.status.ok() && log_) log_("start scan: " + name + ": " + v.status.message());
    ::close(fd);
    return true;
  }

  void ScanExe(const std::string& name, const std::string& base, pid_t pid) {
    std::string exe = ReadLink(base + "/exe");
    if (exe.empty()) return;
    // A memfd exec never raised a fanotify event (process_exe.h): measured through its fd.
    ExeOutcome o = MeasureProcessExe(measurer_, nullptr, pid, ExeOptions{"start scan", "", false});
    if (o.kind == ExeOutcome::Kind::kMemfd) {
      rep_.memfd_exes++;
      if (!o.verdict.status.ok()) rep_.unmeasurable.push_back(name + ": " + o.link + ": " + o.verdict.status.message());
    } else if (Measure(base + "/exe", exe, pid, ima::ImaHook::kBprmCheck, ima::may::kExec)) {
      rep_.exes++;
    }
  }

  void ScanMaps(const std::string& base, pid_t pid) {
    std::ifstream maps(base + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
      std::istringstream ls(line);
      std::string range, perms, off, dev, ino, path;
      ls >> range >> perms >> off >> dev >> ino;
      std::getline(ls, path);
      path.erase(0, path.find_first_not_of(' '));
      if (perms.size() < 4 || path.empty() || path[0] != '/') continue;
      if (perms[1] == 'w' && perms[3] == 's' && !executables_only_) {
        // A shared writable mapping holds its file open for write even after the fd is
        // closed: a writer until the mapping's last fput (FAN_CLOSE_WRITE).
        struct stat st;
        if (::stat((base + "/map_files/" + range).c_str(), &st) == 0 && S_ISREG(st.st_mode) && devs_.count(st.st_dev)) {
          auto& s = seeds_[InodeKey{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)}];
          if (!s.first) map_writer_keys_.insert({static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)});
          s.first = true;
        }
      }
      if (perms[2] == 'x' && Measure(base + "/map_files/" + range, path, pid, ima::ImaHook::kMmapCheck, ima::may::kExec)) {
        rep_.mappings++;
      }
    }
  }

  void ScanFds(const std::string& base, pid_t pid) {
    std::string line;
    for (const auto& fdname : List(base + "/fd")) {
      std::string fdpath = base + "/fd/" + fdname;
      struct stat st;
      if (::stat(fdpath.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !devs_.count(st.st_dev)) continue;
      std::ifstream info(base + "/fdinfo/" + fdname);
      int flags = 0;
      while (std::getline(info, line)) {
        if (line.rfind("flags:", 0) == 0) flags = static_cast<int>(std::strtol(line.c_str() + 6, nullptr, 8));
      }
      InodeKey key{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
      auto& s = seeds_[key];
      if (OpensForWrite(flags)) s.first = true;
      if (OpensReadOnly(flags) && !s.second) {
        s.second = true;
        auto h = ReaderCloseGroup::EncodeHandle(AT_FDCWD, fdpath.c_str(), AT_SYMLINK_FOLLOW);
        if (h) {
          rep_.reader_handles.push_back(
              {key, *h, static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec});
        }
      }
      if (!OpensForWrite(flags) && Measure(fdpath, ReadLink(fdpath), pid, ima::ImaHook::kFileCheck, FileCheckMask(flags))) {
        rep_.fds++;
      }
    }
  }

  // The writers and readers found, counted as if their opens had been seen.
  void Seed() {
    for (const auto& [key, s] : seeds_) {
      OpenCounts c = measurer_->NoteOpen(key, s.first, s.second);
      measurer_->Skip(key, c.ticket);
      rep_.writers_seeded += s.first;
      rep_.writers_from_maps += map_writer_keys_.count({key.dev, key.ino});
      rep_.readers_seeded += s.second;
    }
  }

  void LogReport() {
    if (!log_) return;
    const ScanReport& rep = rep_;
    if (executables_only_) {
      log_("discovery scan: measured " + std::to_string(rep.exes) + " executables, " + std::to_string(rep.mappings) +
           " executable mappings of " + std::to_string(rep.processes) + " processes");
      return;
    }
    log_("start scan: " + std::to_string(rep.processes) + " processes, measured " + std::to_string(rep.exes) +
         " executables (" + std::to_string(rep.memfd_exes) + " memfd), " + std::to_string(rep.mappings) +
         " executable mappings, " + std::to_string(rep.fds) + " open files on watched filesystems; seeded " +
         std::to_string(rep.writers_seeded) + " writers (" + std::to_string(rep.writers_from_maps) +
         " from shared writable mappings), " + std::to_string(rep.readers_seeded) + " readers");
    for (const auto& u : rep.unmeasurable) log_("start scan: cannot measure executable of pid " + u);
  }

  Measurer* measurer_;
  const std::set<uint64_t>& devs_;
  const std::function<void(const std::string&)>& log_;
  const bool executables_only_;
  const uint64_t memfd_dev_;
  ScanReport rep_;
  // Per inode: (a writer seen, a reader seen).
  std::map<InodeKey, std::pair<bool, bool>, bool (*)(const InodeKey&, const InodeKey&)> seeds_{
      [](const InodeKey& a, const InodeKey& b) { return a.dev != b.dev ? a.dev < b.dev : a.ino < b.ino; }};
  std::set<std::pair<uint64_t, uint64_t>> map_writer_keys_;  // writers seen only in maps
};

ScanReport Scan(Measurer* measurer, const std::set<uint64_t>& devs, pid_t self,
                const std::function<void(const std::string&)>& log, bool executables_only) {
  return Scanner(measurer, devs, log, executables_only).Run(self);
}

}  // namespace

ScanReport StartupScan(Measurer* measurer, const std::set<uint64_t>& devs, pid_t self,
                       const std::function<void(const std::string&)>& log) {
  return Scan(measurer, devs, self, log, false);
}

ScanReport ScanExecutables(Measurer* measurer, const std::set<uint64_t>& devs, pid_t self,
                           const std::function<void(const std::string&)>& log) {
  return Scan(measurer, devs, self, log, true);
}

ExecutableScanner::ExecutableScanner(Measurer* measurer, pid_t self, std::function<void(const std::string&)> log)
    : measurer_(measurer), self_(self), log_(std::move(log)) {
  thread_ = StartOwnThread([this] { Loop(); });
}

ExecutableScanner::~ExecutableScanner() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ExecutableScanner::Add(uint64_t dev) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    queued_.insert(dev);
  }
  cv_.notify_all();
}

void ExecutableScanner::Loop() {
  for (;;) {
    std::set<uint64_t> devs;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queued_.empty(); });
      if (stop_) return;
      devs.swap(queued_);
    }
    ScanExecutables(measurer_, devs, self_, log_);
  }
}

}  // namespace lim::daemon
