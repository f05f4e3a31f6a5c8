// Remediation hints: one sentence that tells an operator what a finding means for a package
// and what to run, put in a Finding's detail (verifier) and under `lim appraise` failures.
// The texts are fixed so that tests and log searches can rely on them:
//
//   `/usr/bin/ssh` has a digest of no version of openssh-client (installed 1:9.2p1-2);
//   reinstall: `apt-get install --reinstall openssh-client`
//   `/usr/local/bin/x` is not owned by any package
//
// Paths are shown escaped (base/escape.h), so a hint stays one line. Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace lim::attest {

// The digest matches no version of the owning package. installed: the version installed on
// the host ("" when not known; then newest, the newest version the policy knows, is named).
std::string HintNoVersion(std::string_view path, std::string_view package, std::string_view installed,
                          std::string_view newest);
// The file differs from what dpkg installed (its md5sums), e.g. under `lim appraise`.
std::string HintModified(std::string_view path, std::string_view package, std::string_view version);
// The file is the package's as installed (md5sums agree), it only lacks a valid security.ima.
std::string HintIntactNeedsXattr(std::string_view path, std::string_view package, std::string_view version);
// No package owns the path (scope names what was searched: "any package", "any package in the policy").
std::string HintUnowned(std::string_view path, std::string_view scope = "any package");
// A file generated on the host (ld.so.cache, *.pyc, initramfs): no package digest exists.
std::string HintGenerated(std::string_view path, std::string_view reason);
// An older version's digest, still allowed by the policy window.
std::string HintOldVersion(std::string_view path, std::string_view package, std::string_view version,
                           std::string_view newest);

}  // namespace lim::attest
