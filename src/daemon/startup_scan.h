// StartupScan: what already runs when limd starts (design.md threat model): the executables
// (/proc/*/exe; a memfd one through MeasureProcessExe, process_exe.h), executable file mappings (/proc/*/maps via map_files) and open regular files
// (/proc/*/fd) on the watched filesystems are measured (BPRM_CHECK, MMAP_CHECK, FILE_CHECK
// with the fd's open mask), and writer/reader state is seeded from /proc/*/fdinfo and from
// shared writable mappings in /proc/*/maps (they hold the file open for write after its fd
// is closed) so the first closes are understood. Runs once, before the marks exist (opening files on the
// watched mounts is only safe then). Seeding counts at most one writer and one reader per
// inode (several fds may share one open file; fewer is the safe side: a close ends the
// episode and the change tuple decides). Single-threaded.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "daemon/measurer.h"

namespace lim::daemon {

struct ScanReport {
  uint64_t processes = 0, exes = 0, mappings = 0, fds = 0, writers_seeded = 0, readers_seeded = 0;
  uint64_t writers_from_maps = 0;  // of writers_seeded: inodes held only by a shared writable mapping
  uint64_t memfd_exes = 0;         // executables on the memfd superblock, measured (process_exe.h)
  std::vector<std::string> unmeasurable;  // memfd executables whose measurement failed, for the log
  // The file handle (ReaderCloseGroup::EncodeHandle) and ctime of every inode seeded as
  // read, so the reader-close group can match the closes of these opens.
  struct ReaderHandle {
    InodeKey key;
    std::string handle;
    int64_t ctime_ns = 0;
  };
  std::vector<ReaderHandle> reader_handles;
};

// devs: st_dev of the watched filesystems.
ScanReport StartupScan(Measurer* measurer, const std::set<uint64_t>& devs, pid_t self,
                       const std::function<void(const std::string&)>& log);

// The scan of a superblock marked while limd runs (MountWatch found it): the executables
// and executable mappings of every process on it, measured (BPRM_CHECK, MMAP_CHECK) —
// programs started from it before its mark. No open fds and no writer/reader seeds: the
// marks already exist, and counts are only ever noted in event order by the reader thread.
// Safe on a marked filesystem from one of limd's own threads (its opens are answered at once).
ScanReport ScanExecutables(Measurer* measurer, const std::set<uint64_t>& devs, pid_t self,
                           const std::function<void(const std::string&)>& log);

// ScanExecutables() on a thread of its own (limd's), for superblocks handed over by Add():
// a scan reads every process's maps (tens of milliseconds on a busy host), and the
// discovery thread that marks must not wait for it — the next mount races an exec.
// Several devices queued while a scan runs go into one scan. Add() from any thread; the
// destructor stops the thread after the scan in progress.
class ExecutableScanner {
 public:
  ExecutableScanner(Measurer* measurer, pid_t self, std::function<void(const std::string&)> log);
  ~ExecutableScanner();
  void Add(uint64_t dev);

 private:
  void Loop();
  Measurer* measurer_;
  pid_t self_;
  std::function<void(const std::string&)> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<uint64_t> queued_;  // under mu_
  bool stop_ = false;          // under mu_
  std::thread thread_;
};

}  // namespace lim::daemon
