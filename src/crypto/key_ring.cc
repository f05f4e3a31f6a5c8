#include "crypto/key_ring.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace lim {

Result<KeyRing> KeyRing::LoadDir(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code sec;
    if (!it->is_regular_file(sec)) continue;
    files.push_back(it->path().string());
  }
  if (ec) return Status::NotFound(dir + ": cannot read the key directory: " + ec.message());
  std::sort(files.begin(), files.end());
  KeyRing ring;
  for (const auto& f : files) {
    auto k = PublicKey::LoadFile(f);
    if (!k.ok()) {
      ring.problems_.push_back(k.status().message());
      continue;
    }
    for (auto& key : *k) ring.keys_.push_back(std::move(key));
  }
  return ring;
}

Result<KeyRing> KeyRing::Load(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Status::NotFound(path + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return LoadDir(path);
  LIM_ASSIGN_OR_RETURN(std::vector<PublicKey> keys, PublicKey::LoadFile(path));
  return KeyRing(std::move(keys));
}

}  // namespace lim
