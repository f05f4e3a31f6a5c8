// PolicyDiff: what a runtime policy change allows or forbids (`lim policy diff A B`). Both
// policies may come in either form (RuntimePolicy::FromJson); the diff is of their effect, not
// of their text: release, timestamp, generator and a package's "installed"/"source" are not
// compared, key order and digest order do not matter.
//
// Each change is one DiffItem, "allows" when B accepts something A rejected (a digest or path
// added, an exclude added — it widens what passes —, a key trusted, a keyring ignored), "forbids"
// for the reverse, "changes" where neither is simply wider (log_hash_alg, dm_policy, a boot
// setting such as secure_boot). Items are sorted by section, key, value: the output is stable.
// Stateless; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "attest/runtime_policy.h"

namespace lim::attest {

struct DiffItem {
  std::string section;  // "path", "anywhere", "exclude", "key", "keyring", "ignored_keyring", "ima_buf",
                        // "boot_pcr", "boot", "log_hash_alg", "dm_policy", "package"
  std::string key;      // the path, keyring, ima-buf name, boot component, package, or ""
  std::string effect;   // "allows", "forbids", "changes"
  std::string what;     // "digest", "path", "version", "value", …
  std::string value;    // a hex digest, a regex, a base64 key, "A → B", …
  std::string note;     // package and version of a path digest ("coreutils 9.1-1"), or ""

  bool operator<(const DiffItem& o) const;
  bool operator==(const DiffItem& o) const = default;
};

std::vector<DiffItem> DiffPolicies(const RuntimePolicy& a, const RuntimePolicy& b);

// One line per item: "+ path /usr/bin/x digest ab12… (coreutils 9.1-1)" ('+' allows, '-'
// forbids, '~' changes), names escaped (base/escape.h).
std::string DiffText(const std::vector<DiffItem>& items);
// {"identical":bool,"changes":[{"section","key","effect","what","value","note"}…]}, names
// escaped as in the text form (so non-UTF-8 paths stay distinct).
std::string DiffJson(const std::vector<DiffItem>& items);

}  // namespace lim::attest
