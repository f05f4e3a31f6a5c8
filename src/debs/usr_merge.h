// Merged /usr (Debian 12): /bin, /sbin, /lib, /lib64 … are symbolic links into /usr, so one
// file has two names — limd records the name the kernel resolves (/usr/bin/ls), dpkg's
// database and a .deb's data.tar keep the one the package shipped (/bin/ls). UsrMerge learns
// the aliases from the host's actual top-level symbolic links (any "/X → usr/Y" link in the
// root directory, not a fixed list), so a host that is not merged, or merged differently,
// gets exactly its own mapping. Immutable after Load; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace lim::debs {

class UsrMerge {
 public:
  // Reads the symbolic links directly under root ("/" for the host; a test's private tree).
  // A missing root is an error; unreadable links are skipped.
  static Result<UsrMerge> Load(const std::string& root = "/");
  // Explicit aliases ("/bin" → "/usr/bin"), for tests and policies built for another host.
  static UsrMerge FromPairs(std::vector<std::pair<std::string, std::string>> links);
  // Debian 12's merged /usr as usrmerge sets it up (/bin, /sbin, /lib, /lib32, /lib64,
  // /libx32 → /usr/…): for a policy built on a host that is not the target.
  static UsrMerge Debian();

  // The name under /usr when path is under an aliased top-level directory; else path.
  std::string Canonical(std::string_view path) const;
  // Every name of path: itself first, then its other names through the aliases.
  std::vector<std::string> Names(std::string_view path) const;
  const std::vector<std::pair<std::string, std::string>>& links() const { return links_; }

 private:
  std::vector<std::pair<std::string, std::string>> links_;  // "/bin" → "/usr/bin"
};

}  // namespace lim::debs
