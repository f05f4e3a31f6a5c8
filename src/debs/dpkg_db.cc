#include "debs/dpkg_db.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>

#include "base/file.h"
#include "base/hex.h"
#include "debs/control_file.h"

namespace lim::debs {
namespace {

// dpkg states whose files are on disk (dpkg(1) "Package states").
bool FilesPresent(std::string_view status) {
  size_t sp = status.rfind(' ');
  std::string_view state = sp == std::string_view::npos ? status : status.substr(sp + 1);
  return state == "installed" || state == "triggers-pending" || state == "triggers-awaited" ||
         state == "half-configured" || state == "unpacked";
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  return out;
}

}  // namespace

void DpkgDb::PathIndex::Reserve(size_t paths, size_t bytes) {
  arena_.reserve(arena_.size() + bytes);
  entries_.reserve(entries_.size() + paths);
  size_t slots = std::max<size_t>(1024, slots_.size());
  while (slots < 2 * (paths_ + paths)) slots *= 2;
  if (slots != slots_.size()) Grow(slots);
}

std::string_view DpkgDb::PathIndex::AddText(std::string_view text) {
  text_offset_ = arena_.size();
  arena_ += text;
  return std::string_view(arena_).substr(text_offset_);
}

uint32_t* DpkgDb::PathIndex::Slot(std::string_view path, size_t hash) {
  const size_t mask = slots_.size() - 1;
  const auto h32 = static_cast<uint32_t>(hash);
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    if (slots_[i] == kNone) return &slots_[i];
    const Entry& e = entries_[slots_[i]];
    if (e.hash == h32 && PathOf(e) == path) return &slots_[i];
  }
}

void DpkgDb::PathIndex::Grow(size_t slots) {
  std::vector<uint32_t> old = std::move(slots_);
  slots_.assign(slots, kNone);
  const size_t mask = slots - 1;
  for (uint32_t first : old) {
    if (first == kNone) continue;
    size_t i = entries_[first].hash & mask;  // paths are distinct: the first free slot
    while (slots_[i] != kNone) i = (i + 1) & mask;
    slots_[i] = first;
  }
}

void DpkgDb::PathIndex::Add(std::string_view path, uint32_t package) {
  if (2 * (paths_ + 1) > slots_.size()) Grow(std::max<size_t>(1024, 2 * slots_.size()));  // at most half full
  const size_t hash = std::hash<std::string_view>()(path);
  uint32_t* slot = Slot(path, hash);
  Entry e{text_offset_ + static_cast<size_t>(path.data() - (arena_.data() + text_offset_)),
          static_cast<uint32_t>(path.size()), package, kNone, static_cast<uint32_t>(hash)};
  const auto index = static_cast<uint32_t>(entries_.size());
  if (*slot == kNone) {
    *slot = index;
    ++paths_;
  } else {
    uint32_t last = *slot;
    while (entries_[last].next != kNone) last = entries_[last].next;
    if (entries_[last].package == package) return;  // listed twice by one package
    entries_[last].next = index;
  }
  entries_.push_back(e);
}

template <typename F>
bool DpkgDb::PathIndex::Any(std::string_view path, F f) const {
  if (slots_.empty()) return false;
  const size_t mask = slots_.size() - 1;
  const size_t hash = std::hash<std::string_view>()(path);
  for (size_t i = hash & mask; slots_[i] != kNone; i = (i + 1) & mask) {
    const Entry& first = entries_[slots_[i]];
    if (first.hash != static_cast<uint32_t>(hash) || PathOf(first) != path) continue;
    for (uint32_t e = slots_[i]; e != kNone; e = entries_[e].next) {
      if (f(entries_[e].package)) return true;
    }
    return false;
  }
  return false;
}

Result<std::vector<DpkgPackage>> ParseStatus(std::string_view text, std::string_view where) {
  LIM_ASSIGN_OR_RETURN(auto stanzas, ParseControl(text, where));
  std::vector<DpkgPackage> out;
  for (const auto& s : stanzas) {
    DpkgPackage p;
    p.name = s.Get("Package");
    if (p.name.empty()) {
      return Status::Corrupt(std::string(where) + ":" + std::to_string(s.line) + ": stanza without Package");
    }
    if (p.name.find_first_of("/:\n") != std::string::npos || p.name == "." || p.name == "..") {
      return Status::Corrupt(std::string(where) + ":" + std::to_string(s.line) + ": bad package name \"" + p.name + "\"");
    }
    p.version = s.Get("Version");
    p.architecture = s.Get("Architecture");
    p.multi_arch = s.Get("Multi-Arch");
    p.status = s.Get("Status");
    if (p.architecture.find_first_of("/:\n") != std::string::npos) {
      return Status::Corrupt(std::string(where) + ":" + std::to_string(s.line) + ": bad architecture");
    }
    p.info_name = p.multi_arch == "same" && !p.architecture.empty() ? p.name + ":" + p.architecture : p.name;
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<Diversion>> ParseDiversions(std::string_view text, std::string_view where) {
  std::vector<std::string_view> lines = Lines(text);
  if (lines.size() % 3 != 0) {
    return Status::Corrupt(std::string(where) + ": " + std::to_string(lines.size()) +
                           " lines, not a multiple of 3 (from, to, package)");
  }
  std::vector<Diversion> out;
  for (size_t i = 0; i < lines.size(); i += 3) {
    Diversion d{std::string(lines[i]), std::string(lines[i + 1]), std::string(lines[i + 2])};
    if (d.from.empty() || d.from[0] != '/' || d.to.empty() || d.to[0] != '/') {
      return Status::Corrupt(std::string(where) + ":" + std::to_string(i + 1) + ": a diversion path must be absolute");
    }
    if (d.by == ":") d.by.clear();
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseMd5sums(std::string_view text, std::string_view where) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t n = 0;
  for (std::string_view line : Lines(text)) {
    ++n;
    if (line.empty()) continue;
    auto bad = [&](const char* why) {
      return Status::Corrupt(std::string(where) + ":" + std::to_string(n) + ": " + why);
    };
    if (line.size() < 35 || line[32] != ' ') return bad("expected \"<32 hex> <path>\"");
    // Exactly 32 hex digits: FromHex alone would take a "0x" prefix and give 15 bytes.
    auto md5 = FromHex(line.substr(0, 32));
    if (!md5.ok() || md5->size() != 16) return bad("md5 is not hex");
    std::string_view path = line.substr(33);
    while (!path.empty() && (path.front() == ' ' || path.front() == '*')) path.remove_prefix(1);
    if (path.empty()) return bad("no path");
    std::string abs = path.front() == '/' ? std::string(path) : "/" + std::string(path);
    out.emplace_back(std::move(abs), std::string(md5->begin(), md5->end()));
  }
  return out;
}

bool DpkgDb::WouldLoad(const Options& options, bool given) {
  if (options.admindir.empty()) return false;
  return given || ::access((options.admindir + "/status").c_str(), F_OK) == 0;
}

Result<std::optional<DpkgDb>> DpkgDb::LoadOptional(const Options& options, bool given) {
  if (!WouldLoad(options, given)) return std::optional<DpkgDb>();
  auto db = Load(options);
  if (!db.ok()) return db.status().WithPrefix("--admindir " + options.admindir);
  return std::optional<DpkgDb>(std::move(db).value());
}

Result<DpkgDb> DpkgDb::Load(const Options& options) {
  DpkgDb db;
  db.options_ = options;
  LIM_ASSIGN_OR_RETURN(db.usr_, UsrMerge::Load(options.root));
  std::string status_path = options.admindir + "/status";
  LIM_ASSIGN_OR_RETURN(std::string status, ReadFileTextBounded(status_path, kMaxStatusBytes, "a dpkg status file"));
  LIM_ASSIGN_OR_RETURN(auto all, ParseStatus(status, status_path));
  for (auto& p : all) {
    if (FilesPresent(p.status)) db.packages_.push_back(std::move(p));
  }
  std::string div_path = options.admindir + "/diversions";
  if (Exists(div_path)) {
    LIM_ASSIGN_OR_RETURN(std::string text, ReadFileTextBounded(div_path, kMaxDiversionsBytes, "a dpkg diversions file"));
    LIM_ASSIGN_OR_RETURN(db.diversions_, ParseDiversions(text, div_path));
    for (size_t i = 0; i < db.diversions_.size(); ++i) {
      db.diverted_to_[db.diversions_[i].to] = i;
      db.diverted_from_[db.diversions_[i].from] = i;
    }
  }
  // Every .list first, so that the index is sized once (problems still in package order).
  std::vector<std::string> texts(db.packages_.size()), problems(db.packages_.size());
  size_t lines_total = 0, bytes_total = 0;
  for (uint32_t i = 0; i < db.packages_.size(); ++i) {
    const DpkgPackage& p = db.packages_[i];
    std::string list = options.admindir + "/info/" + p.info_name + ".list";
    if (!Exists(list)) {
      if (!p.version.empty()) problems[i] = list + ": missing (package " + p.name + " lists no files)";
      continue;
    }
    auto text = ReadFileTextBounded(list, kMaxListBytes, "a dpkg file list");
    if (!text.ok()) {
      problems[i] = text.status().message();
      continue;
    }
    texts[i] = std::move(text).value();
    lines_total += static_cast<size_t>(std::count(texts[i].begin(), texts[i].end(), '\n')) + 1;
    bytes_total += texts[i].size();
  }
  db.paths_.Reserve(lines_total, bytes_total);
  for (uint32_t i = 0; i < db.packages_.size(); ++i) {
    if (!problems[i].empty()) db.problems_.push_back(std::move(problems[i]));
    if (texts[i].empty()) continue;
    const std::string list = options.admindir + "/info/" + db.packages_[i].info_name + ".list";
    std::string_view lines = db.paths_.AddText(texts[i]);
    std::string().swap(texts[i]);
    for (size_t n = 1; !lines.empty(); ++n) {
      size_t nl = lines.find('\n');
      std::string_view line = lines.substr(0, nl);
      lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
      if (line.empty() || line == "/.") continue;
      if (line.front() != '/') {
        db.problems_.push_back(list + ":" + std::to_string(n) + ": not an absolute path");
        break;
      }
      db.paths_.Add(line, i);
    }
  }
  return db;
}

const DpkgPackage* DpkgDb::Find(std::string_view name, std::string_view arch) const {
  for (const auto& p : packages_) {
    if (p.name == name && (arch.empty() || p.architecture == arch)) return &p;
  }
  return nullptr;
}

const DpkgPackage* DpkgDb::ListedBy(const std::string& dpkg_path, const std::string& not_by) const {
  const DpkgPackage* found = nullptr;
  paths_.Any(dpkg_path, [&](uint32_t i) {
    if (packages_[i].name == not_by) return false;
    found = &packages_[i];
    return true;
  });
  return found;
}

std::optional<DpkgOwner> DpkgDb::OwnerOfName(const std::string& name) const {
  if (auto it = diverted_to_.find(name); it != diverted_to_.end()) {
    const Diversion& d = diversions_[it->second];
    if (const DpkgPackage* p = ListedBy(d.from, d.by)) return DpkgOwner{p, d.from, d.from};
  }
  if (auto it = diverted_from_.find(name); it != diverted_from_.end()) {
    const Diversion& d = diversions_[it->second];
    if (d.by.empty()) return std::nullopt;  // the administrator's file now
    const DpkgPackage* by = nullptr;
    paths_.Any(name, [&](uint32_t i) {
      if (packages_[i].name != d.by) return false;
      by = &packages_[i];
      return true;
    });
    if (by) return DpkgOwner{by, name, ""};
    return std::nullopt;
  }
  if (const DpkgPackage* p = ListedBy(name, "")) return DpkgOwner{p, name, ""};
  return std::nullopt;
}

std::optional<DpkgOwner> DpkgDb::OwnerOf(std::string_view path) const {
  for (const auto& name : usr_.Names(path)) {
    if (auto o = OwnerOfName(name)) return o;
  }
  return std::nullopt;
}

std::vector<std::string> DpkgDb::FilesOf(const DpkgPackage& p) const {
  std::vector<std::string> out;
  auto text = ReadFileTextBounded(options_.admindir + "/info/" + p.info_name + ".list", kMaxListBytes);
  if (!text.ok()) return out;
  for (std::string_view line : Lines(*text)) {
    if (!line.empty() && line.front() == '/' && line != "/.") out.emplace_back(line);
  }
  return out;
}

Result<const std::map<std::string, std::string>*> DpkgDb::Md5sums(const DpkgPackage& p) {
  auto it = md5_cache_.find(p.info_name);
  if (it != md5_cache_.end()) return &it->second;
  std::map<std::string, std::string> sums;
  std::string path = options_.admindir + "/info/" + p.info_name + ".md5sums";
  if (Exists(path)) {
    LIM_ASSIGN_OR_RETURN(std::string text, ReadFileTextBounded(path, kMaxListBytes, "a dpkg md5sums file"));
    LIM_ASSIGN_OR_RETURN(auto lines, ParseMd5sums(text, path));
    for (auto& [k, v] : lines) sums[k] = std::move(v);
  }
  return &md5_cache_.emplace(p.info_name, std::move(sums)).first->second;
}

}  // namespace lim::debs
