// One parser for /proc/<pid>/mountinfo (proc(5)): the fields limd and lim look at, for the
// --watch checks, mount discovery and `lim policy explain`'s fsname. A line that does not
// have the shape (no "maj:min", no " - " separator) is skipped, never a crash. Pure
// functions apart from ReadMountinfo; thread-compatible.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lim {

struct MountinfoLine {
  std::string id;           // the mount id (field 1)
  dev_t dev = 0;            // field 3, major:minor
  std::string mount_point;  // field 5, unescaped
  std::string fstype;       // the first field after " - "
  std::string source;       // the second field after " - " (a device path, "none"…), unescaped
};

// Undoes mountinfo's octal escapes (\040 for a space…).
std::string UnescapeMountinfo(std::string_view s);

std::optional<MountinfoLine> ParseMountinfoLine(std::string_view line);
// The next line of *text (as std::getline splits it, without the '\n'), *text advanced past
// it; false at the end.
bool NextMountinfoLine(std::string_view* text, std::string_view* line);
// Every well-formed line, in order (the last mount on a path is the visible one).
std::vector<MountinfoLine> ParseMountinfo(std::string_view text);
// /proc/self/mountinfo (or another pid's), parsed.
Result<std::vector<MountinfoLine>> ReadMountinfo(const std::string& path = "/proc/self/mountinfo");

// The unique id of the mount that path (relative to dirfd; statx flags) leads to:
// statx STATX_MNT_ID_UNIQUE, Linux 6.8 on — never reused, unlike mountinfo's first field.
// False when the kernel cannot say.
bool UniqueMountId(int dirfd, const char* path, int flags, uint64_t* id);

}  // namespace lim
