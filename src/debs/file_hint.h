// What the host's package database says about one file, for `lim appraise` failures: the
// owning package and, checked against dpkg's md5sums, whether the file is still what the
// package installed — then the remediation (attest/remediation.h): reinstall when it differs,
// sign or hash it when it is intact, "generated" or "not owned by any package" otherwise.
// Uses the DpkgDb's md5sums cache: same threading as DpkgDb.
#pragma once

#include <string>
#include <vector>

#include "debs/dpkg_db.h"

namespace lim::debs {

// Lines to print under the file ("package: coreutils 9.1-1 amd64", "hint: …"). path is the
// file's absolute name (any of its merged-/usr names); fd an open descriptor of it (read from
// offset 0 for the md5; -1 to skip the md5 check). Names in the lines are escaped
// (base/escape.h): each line is one line, ready to print.
std::vector<std::string> FileHints(DpkgDb& db, const std::string& path, int fd);

}  // namespace lim::debs
