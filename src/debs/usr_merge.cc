#include "debs/usr_merge.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "base/file.h"

namespace lim::debs {
namespace {

// "under" is a prefix of path at a component boundary; returns the rest ("" or "/…").
bool Under(std::string_view path, std::string_view under, std::string_view* rest) {
  if (path.size() < under.size() || path.compare(0, under.size(), under) != 0) return false;
  if (path.size() > under.size() && path[under.size()] != '/') return false;
  *rest = path.substr(under.size());
  return true;
}

}  // namespace

Result<UsrMerge> UsrMerge::Load(const std::string& root) {
  DIR* d = opendir(root.c_str());
  if (!d) return Status::NotFound(root + ": opendir: " + std::strerror(errno));
  std::vector<std::pair<std::string, std::string>> links;
  std::string base = root.empty() || root.back() != '/' ? root + "/" : root;
  while (dirent* de = readdir(d)) {
    std::string name = de->d_name;
    if (name == "." || name == ".." || name == "usr") continue;
    struct stat st;
    if (lstat((base + name).c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) continue;
    std::string target = ReadLink(base + name);
    if (target.rfind("/", 0) == 0) target.erase(0, 1);
    while (!target.empty() && target.back() == '/') target.pop_back();
    // Only links into /usr count ("usr/bin", "/usr/lib64"); others (/vmlinuz) are not merges.
    if (target.rfind("usr/", 0) != 0 || target.size() <= 4 || target.find("/../") != std::string::npos) continue;
    links.emplace_back("/" + name, "/" + target);
  }
  closedir(d);
  return FromPairs(std::move(links));
}

UsrMerge UsrMerge::FromPairs(std::vector<std::pair<std::string, std::string>> links) {
  UsrMerge m;
  m.links_ = std::move(links);
  return m;
}

UsrMerge UsrMerge::Debian() {
  std::vector<std::pair<std::string, std::string>> links;
  for (const char* d : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    links.emplace_back(std::string("/") + d, std::string("/usr/") + d);
  }
  return FromPairs(std::move(links));
}

std::string UsrMerge::Canonical(std::string_view path) const {
  std::string_view rest;
  for (const auto& [alias, target] : links_) {
    if (Under(path, alias, &rest)) return target + std::string(rest);
  }
  return std::string(path);
}

std::vector<std::string> UsrMerge::Names(std::string_view path) const {
  std::vector<std::string> out = {std::string(path)};
  std::string_view rest;
  for (const auto& [alias, target] : links_) {
    if (Under(path, alias, &rest)) out.push_back(target + std::string(rest));
    if (Under(path, target, &rest)) out.push_back(alias + std::string(rest));
  }
  return out;
}

}  // namespace lim::debs
