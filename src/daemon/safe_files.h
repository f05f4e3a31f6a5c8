// limd's own files outside the measurement list's format: the log file and the state
// directory. limd runs as root, so a path it opens must not let another user point it at a
// file of their choice (a symlink or hard link planted in a shared directory) or swap what
// it wrote. The rules, after the kernel's fs.protected_regular / protected_symlinks:
//   - the directory that holds the file is owned by root or limd's user, and if every user
//     may write it, it is sticky (otherwise anyone could rename the file away and put a
//     link in its place);
//   - the file is opened with O_NOFOLLOW, created with O_CREAT | O_EXCL (mode 0600);
//   - an existing file must be a regular file with one link; in a sticky world-writable
//     directory it must also belong to root or limd's user (protected_regular refuses
//     another user's file there, because its owner can still replace it with anything).
// Functions are thread-compatible; errors name the flag and the path (kInvalidArgument:
// limd exits 2).
#pragma once

#include <string>

#include "base/status.h"

namespace lim::daemon {

// Opens (creating if absent, mode 0600) path for appending under the rules above; flag
// names the setting in errors ("--log-file"). Returns the fd (O_CLOEXEC).
Result<int> OpenAppendFileSafely(const std::string& flag, const std::string& path);

// The state directory: created with mode 0700 when absent; an existing one must be a
// directory owned by limd's user that neither the group nor others can write, and sit in a
// directory that passes the rule above. A directory that others could write is refused,
// not repaired: whatever they may already have put there (a forged list, chain.json, links)
// would survive a chmod, so the operator has to look first.
Status PrepareStateDir(const std::string& dir);

}  // namespace lim::daemon
