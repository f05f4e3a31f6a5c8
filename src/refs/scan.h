// Scan: a reference manifest of directory trees (`lim scan`) — every entry's path, kind,
// size, mode and owner ids, the digest of every regular file, the interpreter of every
// script, the target of every link, and the package owner when an OwnerLookup is given.
//
// The walk (refs/tree_walk.h) runs on the calling thread and opens each regular file
// (O_NOFOLLOW, checked to be the inode it stat'ed); a small pool of hashing threads (one per
// CPU by default) reads the open files in big chunks (1 MiB reads, sequential readahead
// advice) through OpenSSL and classifies each from its first chunk. At most a bounded number
// of open files wait in the queue, so memory and descriptors stay bounded on any tree. Hard
// links are hashed once (same device and inode) and their digest given to every name.
//
// Errors with one file (cannot open, read error, changed while read) are reported with its
// path, counted and recorded in its entry; the scan goes on. Walk and open errors are
// reported as the walk meets them, read errors after the hashing, in walk order. Scan() itself fails only when
// its options are unusable (a hash OpenSSL here cannot compute).
//
// Threading: Scan() is called from one thread, and calls on_error on it; the progress
// counters are updated from the walk and hashing threads.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"
#include "refs/file_kind.h"
#include "refs/owner.h"
#include "refs/tree_walk.h"

namespace lim::refs {

struct ManifestEntry {
  std::string path;  // raw bytes, as walked
  FileKind kind = FileKind::kRegular;
  uint64_t size = 0;
  mode_t mode = 0;  // st_mode without the type bits (permissions, setuid, setgid, sticky)
  uid_t uid = 0;
  gid_t gid = 0;
  Bytes digest;                 // regular files that could be read; empty otherwise
  std::string interpreter;      // scripts
  std::string interpreter_arg;  // scripts
  std::string link_target;      // symlinks (raw bytes)
  std::string hardlink_of;      // a later name of an inode already listed: the first name
  std::optional<FileOwner> owner;  // set when an OwnerLookup knows the path
  std::string error;               // why a regular file has no digest
};

struct Manifest {
  HashAlgo algo;
  std::vector<ManifestEntry> entries;  // in walk order, roots in the order given
  bool owners_looked_up = false;
  uint64_t bytes_hashed = 0;
  uint64_t errors = 0;  // walk problems and files that could not be hashed
  uint64_t excluded = 0;
  std::vector<std::string> mounts_skipped;
};

// Counters a progress display reads while Scan runs (relaxed atomics).
struct ScanProgress {
  std::atomic<uint64_t> files_found{0};   // regular files the walk handed to the hashers
  std::atomic<uint64_t> bytes_found{0};   // their sizes
  std::atomic<uint64_t> files_hashed{0};
  std::atomic<uint64_t> bytes_hashed{0};
  std::atomic<bool> walk_done{false};
};

struct ScanOptions {
  WalkOptions walk;
  HashAlgo algo;
  int jobs = 0;                 // hashing threads; 0: one per CPU this process may run on
  size_t read_size = 1 << 20;  // bytes per read
  const OwnerLookup* owners = nullptr;
};

using ScanErrorFn = std::function<void(const std::string& path, const std::string& message)>;

// Scans the roots. A root that cannot be used counts as an error like any other (callers
// that want to refuse missing roots check them first).
Result<Manifest> Scan(const std::vector<std::string>& roots, const ScanOptions& options, const ScanErrorFn& on_error,
                      ScanProgress* progress = nullptr);

// Threads Scan uses when options.jobs is 0: the CPUs in this process's affinity mask.
int DefaultScanJobs();

}  // namespace lim::refs
