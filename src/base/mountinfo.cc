#include "base/mountinfo.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdlib>

#include "base/file.h"

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U  // 6.8+: the mount's id, never reused
#endif

namespace lim {

std::string UnescapeMountinfo(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      out.push_back(static_cast<char>(v));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

namespace {

// The next whitespace-separated field of *rest (as `istream >> string` takes it), *rest
// advanced past it; empty at the end.
std::string_view NextField(std::string_view* rest) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  size_t b = 0;
  while (b < rest->size() && space((*rest)[b])) ++b;
  size_t e = b;
  while (e < rest->size() && !space((*rest)[e])) ++e;
  std::string_view f = rest->substr(b, e - b);
  rest->remove_prefix(e);
  return f;
}

}  // namespace

// Without an istringstream: this runs for every line of a process's mountinfo on each exec
// from a filesystem limd does not mark (LateExecs), and a stream per line was most of it.
std::optional<MountinfoLine> ParseMountinfoLine(std::string_view line) {
  std::string_view rest = line;
  std::string_view id = NextField(&rest);
  NextField(&rest);  // parent id
  std::string_view devno = NextField(&rest);
  NextField(&rest);  // root
  std::string_view mnt = NextField(&rest);
  size_t sep = line.find(" - ");
  size_t colon = devno.find(':');
  if (sep == std::string_view::npos || colon == std::string_view::npos) return std::nullopt;
  MountinfoLine m;
  m.id = std::string(id);
  std::string maj(devno.substr(0, colon)), mnr(devno.substr(colon + 1));
  m.dev = makedev(static_cast<unsigned>(std::strtoul(maj.c_str(), nullptr, 10)),
                  static_cast<unsigned>(std::strtoul(mnr.c_str(), nullptr, 10)));
  size_t type_end = line.find(' ', sep + 3);
  m.fstype = std::string(line.substr(sep + 3, type_end == std::string_view::npos ? std::string_view::npos
                                                                                 : type_end - sep - 3));
  if (type_end != std::string_view::npos) {
    size_t source_end = line.find(' ', type_end + 1);
    m.source = UnescapeMountinfo(line.substr(
        type_end + 1, source_end == std::string_view::npos ? std::string_view::npos : source_end - type_end - 1));
  }
  m.mount_point = UnescapeMountinfo(mnt);
  return m;
}

bool NextMountinfoLine(std::string_view* text, std::string_view* line) {
  if (text->empty()) return false;
  size_t nl = text->find('\n');
  *line = text->substr(0, nl);
  *text = nl == std::string_view::npos ? std::string_view() : text->substr(nl + 1);
  return true;
}

std::vector<MountinfoLine> ParseMountinfo(std::string_view text) {
  std::vector<MountinfoLine> out;
  std::string_view line;
  while (NextMountinfoLine(&text, &line)) {
    if (auto m = ParseMountinfoLine(line)) out.push_back(std::move(*m));
  }
  return out;
}

Result<std::vector<MountinfoLine>> ReadMountinfo(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(std::string text, ReadFileText(path));
  return ParseMountinfo(text);
}

bool UniqueMountId(int dirfd, const char* path, int flags, uint64_t* id) {
  struct statx sx {};
  if (::statx(dirfd, path, flags, STATX_MNT_ID_UNIQUE, &sx) != 0 || !(sx.stx_mask & STATX_MNT_ID_UNIQUE)) return false;
  *id = sx.stx_mnt_id;
  return true;
}

}  // namespace lim
