#include "base/mountinfo.h"

#include <sys/sysmacros.h>

#include <cstdlib>
#include <sstream>

#include "base/file.h"

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

std::optional<MountinfoLine> ParseMountinfoLine(std::string_view line) {
  std::istringstream ls{std::string(line)};
  std::string id, parent, devno, root, mnt;
  ls >> id >> parent >> devno >> root >> mnt;
  size_t sep = line.find(" - ");
  size_t colon = devno.find(':');
  if (sep == std::string_view::npos || colon == std::string::npos) return std::nullopt;
  MountinfoLine m;
  m.id = id;
  m.dev = makedev(static_cast<unsigned>(std::strtoul(devno.c_str(), nullptr, 10)),
                  static_cast<unsigned>(std::strtoul(devno.c_str() + colon + 1, nullptr, 10)));
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

std::vector<MountinfoLine> ParseMountinfo(std::string_view text) {
  std::vector<MountinfoLine> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (auto m = ParseMountinfoLine(line)) out.push_back(std::move(*m));
  }
  return out;
}

Result<std::vector<MountinfoLine>> ReadMountinfo(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(std::string text, ReadFileText(path));
  return ParseMountinfo(text);
}

}  // namespace lim
