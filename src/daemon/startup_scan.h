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

#include <functional>
#include <set>
#include <string>

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

}  // namespace lim::daemon
