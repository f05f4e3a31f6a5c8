#include "debs/file_hint.h"

#include <unistd.h>

#include "attest/remediation.h"
#include "base/escape.h"
#include "crypto/digest.h"
#include "debs/generated_files.h"

namespace lim::debs {

std::vector<std::string> FileHints(DpkgDb& db, const std::string& path, int fd) {
  std::vector<std::string> out;
  auto owner = db.OwnerOf(path);
  if (!owner) {
    auto why = GeneratedReason(db.usr_merge().Canonical(path));
    out.push_back("hint: " + (why ? attest::HintGenerated(path, *why) : attest::HintUnowned(path)));
    return out;
  }
  const DpkgPackage& p = *owner->package;
  std::string line = "package: " + Escaped(p.name) + " " + Escaped(p.version) + " " + Escaped(p.architecture);
  if (owner->dpkg_path != path) line += " (dpkg: " + Escaped(owner->dpkg_path) + ")";
  out.push_back(std::move(line));
  auto sums = db.Md5sums(p);
  if (!sums.ok()) {
    out.push_back("hint: " + Escaped(sums.status().message()));
    return out;
  }
  auto it = (*sums)->find(owner->dpkg_path);
  if (it == (*sums)->end() || fd < 0) {
    out.push_back("hint: dpkg keeps no md5sum for it (a configuration file?): compare with `dpkg --verify " + Escaped(p.name) + "`");
    return out;
  }
  auto md5algo = HashAlgoByName("md5");
  if (!md5algo.ok() || lseek(fd, 0, SEEK_SET) != 0) return out;
  auto md5 = DigestFd(*md5algo, fd, path);
  if (!md5.ok()) {
    out.push_back("hint: " + Escaped(md5.status().message()));
    return out;
  }
  bool same = std::string(md5->begin(), md5->end()) == it->second;
  out.push_back("hint: " + (same ? attest::HintIntactNeedsXattr(path, p.name, p.version)
                                 : attest::HintModified(path, p.name, p.version)));
  return out;
}

}  // namespace lim::debs
