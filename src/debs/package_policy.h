// Runtime policies from Debian packages (`lim policy from-debs|from-dpkg|update`): every
// regular file of a package version becomes an allowed digest for its path, recorded with
// the package and version (attest/runtime_policy.h, package provenance), under the name limd
// measures (merged /usr: a .deb's /bin/ls is /usr/bin/ls on a merged host; a diverted file
// is where dpkg put it).
//
// The update window: a policy keeps at most `keep` versions per package, newest first in
// dpkg's order (debs/dpkg_version.h). Adding a newer version drops the oldest beyond the
// window, and with it the digests only that version had; hosts that still run a kept older
// version get the old-version notice, not a failure.
//
// Sources of digests: a .deb (trusted: the package as the archive shipped it) or, for an
// installed package whose .deb is not at hand, the file on disk — trust on first use, marked
// "tofu" in the policy, and only when dpkg's md5sums agree (a file that does not is left out
// and reported, so the verifier flags it with a reinstall hint). Functions are stateless;
// ReadDebs reads on options.jobs threads of its own, the rest on the calling thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attest/runtime_policy.h"
#include "crypto/hash_algo.h"
#include "debs/deb_archive.h"
#include "debs/dpkg_db.h"
#include "debs/usr_merge.h"

namespace lim::debs {

inline constexpr size_t kDefaultKeepVersions = 3;

// One reader per CPU.
size_t DefaultJobs();

struct PackagePolicyOptions {
  HashAlgo algo = Sha256Algo();
  size_t keep = kDefaultKeepVersions;  // versions per package in the window (≥ 1)
  UsrMerge usr;                        // names as limd measures them (Load("/") for the host)
  DebLimits limits;
  size_t jobs = DefaultJobs();  // .debs read at once (ReadDebs)
};

// What a build saw besides the policy: counts and one line per problem (a .deb that does not
// read, a digest that disagrees with dpkg's md5sums, …).
struct PackagePolicyReport {
  size_t debs = 0;            // .deb files read
  size_t packages = 0;        // packages added
  size_t files = 0;           // files added
  size_t tofu_packages = 0;   // packages taken from disk (no .deb)
  size_t md5_mismatches = 0;  // files whose digest disagrees with dpkg's md5sums
  size_t dropped_versions = 0;  // versions that left the window
  std::vector<std::string> notes;
};

// Adds packages (any number of versions each) to policy and cuts every touched package to the
// window. installed: the host's version of the package ("" when unknown).
Status AddPackages(const std::vector<DebPackage>& packages, const PackagePolicyOptions& options,
                   attest::RuntimePolicy* policy, PackagePolicyReport* report);

// Reads every .deb of the given files and directories, options.jobs at a time on their own
// threads, the largest first (the result in name order either way). The files carry only the
// policy's digest (DebFile::digest; no md5, no sha256 unless that is the algorithm). A .deb that does not read is an error
// (a policy silently missing a package would fail hosts later, far from the cause).
Result<std::vector<DebPackage>> ReadDebs(const std::vector<std::string>& debs_or_dirs, const PackagePolicyOptions& options,
                                         PackagePolicyReport* report);

Result<attest::RuntimePolicy> PolicyFromDebs(const std::vector<std::string>& debs_or_dirs,
                                             const PackagePolicyOptions& options, PackagePolicyReport* report);

struct FromDpkgOptions {
  std::vector<std::string> deb_dirs;  // where to look for PKG_VERSION_ARCH.deb (e.g. /var/cache/apt/archives;
                                      // the epoch as apt's "%3a", as ':', or left out as dpkg-deb does)
  std::string root = "/";             // the installed files are read under root
  std::vector<std::string> only;      // package names to take (empty: every installed package)
  bool check_disk = false;            // also compare files on disk with md5sums when the .deb is used
};

// A policy of the installed packages of db: each from its .deb when one of deb_dirs has the
// installed version, else from disk (tofu). Installed versions are recorded in the policy.
Result<attest::RuntimePolicy> PolicyFromDpkg(DpkgDb& db, const FromDpkgOptions& from,
                                             const PackagePolicyOptions& options, PackagePolicyReport* report);

// "name_version_arch.deb" as apt names a downloaded package (':' in the version as "%3a").
std::string DebFileName(const std::string& name, const std::string& version, const std::string& arch);

}  // namespace lim::debs
