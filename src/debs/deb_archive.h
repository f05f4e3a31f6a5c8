// A .deb read in process: the ar container (debian-binary, control.tar.*, data.tar.*), the
// inner tars streamed through libarchive's decompressors (xz, zstd, gzip, bzip2, none) —
// nothing is extracted to disk — giving the package's name, version and architecture (from
// control.tar's control file) and the digests of every regular file of data.tar.
//
// The input is untrusted (a directory of .debs anyone could have written into): every size is
// bounded (DebLimits), member names are checked (an absolute name or a ".." component is path
// traversal), a short or corrupt stream is an error; each error names the .deb, the member
// and the entry ("x.deb: data.tar.xz: ./../etc/passwd: path traversal"). A hard link inside
// data.tar gets its target's digests. Stateless functions; thread-safe (one libarchive
// reader per call).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"

namespace lim::debs {

struct DebLimits {
  uint64_t max_member_bytes = 4ull << 30;     // one file inside data.tar (uncompressed)
  uint64_t max_total_bytes = 16ull << 30;     // all of data.tar uncompressed (a decompression bomb stops here)
  uint64_t max_files = 1000000;               // entries of data.tar
  uint64_t max_control_bytes = 1u << 20;      // the control file
  uint64_t max_outer_members = 16;            // ar members (a .deb has 3)
};

// The digests read for each file besides the requested algorithm's. Each is one more pass
// of a hash over every byte of data.tar: callers ask only for what they use (a policy from
// .debs needs neither; the dpkg cross-check needs md5).
struct DebDigests {
  bool md5 = true;
  bool sha256 = true;
};

struct DebFile {
  std::string path;  // "/usr/bin/ls": the member name without its "./"
  uint64_t size = 0;
  uint32_t mode = 0;
  Bytes md5;     // as dpkg's md5sums (the cross-check); empty unless asked for
  Bytes sha256;  // empty unless asked for or the requested algorithm is sha256
  Bytes digest;  // in the requested algorithm (== sha256 when that is sha256)
};

struct DebPackage {
  std::string file;  // the .deb it was read from ("<memory>" for ReadDebMemory)
  std::string name, version, architecture;
  std::vector<DebFile> files;  // regular files (and hard links), in archive order
};

Result<DebPackage> ReadDeb(const std::string& path, const HashAlgo& algo, const DebLimits& limits = {},
                           const DebDigests& digests = {});
Result<DebPackage> ReadDebMemory(ByteView data, const HashAlgo& algo, const DebLimits& limits = {},
                                 const std::string& name = "<memory>", const DebDigests& digests = {});

// Every *.deb directly in dir (sorted by name), or dir itself when it is a file.
Result<std::vector<std::string>> ListDebs(const std::string& dir);

}  // namespace lim::debs
