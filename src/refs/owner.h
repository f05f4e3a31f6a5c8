// OwnerLookup: who provides a file — the package (and version) that installed a path — for
// the owner column of a reference manifest (`lim scan`). An interface only: the dpkg
// implementation lives with the Debian code (issue 16); a scan without one leaves owners
// empty, which means "not looked up", never "owned by no package".
//
// Threading: the scan calls Owner after hashing from as many threads as it hashed with, at
// once: Owner must be safe to call concurrently (a const lookup in a loaded index is).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lim::refs {

struct FileOwner {
  std::string package;  // "libc6", "openssh-client"
  std::string version;  // "2.36-9+deb12u4"; "" when not known
};

class OwnerLookup {
 public:
  virtual ~OwnerLookup() = default;
  // path: as the manifest records it (raw bytes). nullopt: owned by no package known to
  // this lookup.
  virtual std::optional<FileOwner> Owner(std::string_view path) const = 0;
};

}  // namespace lim::refs
