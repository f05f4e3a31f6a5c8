// The dpkg database of a Debian host (dpkg's --admindir, /var/lib/dpkg): which installed
// package, version and architecture owns a path, the md5sums dpkg recorded for its files,
// and diversions. Parsed by lim itself — status (deb822), info/PKG[:ARCH].list,
// info/PKG[:ARCH].md5sums, diversions — each file read with a size limit, every malformed
// line an error naming the file and line, never a crash.
//
// Owner lookups take the path as limd measured it and try every name of it through merged
// /usr (debs/usr_merge.h: /usr/bin/ls → dpkg's /bin/ls) and through diversions (a file dpkg
// moved aside to DIVERTED belongs to the package that shipped the original; the file at the
// original path belongs to the diverting package, or to nobody for a local diversion).
// Files no package owns can still be known: GeneratedReason (debs/generated_files.h).
//
// Loaded once (Load), then read-only except for the md5sums cache, which Md5sums fills on
// demand: use one DpkgDb per thread, or load every md5sums first.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "debs/usr_merge.h"

namespace lim::debs {

// Size limits of the database files (a real status is a few MiB, a .list well under 1 MiB).
inline constexpr size_t kMaxStatusBytes = 64u << 20;
inline constexpr size_t kMaxListBytes = 16u << 20;
inline constexpr size_t kMaxDiversionsBytes = 4u << 20;

struct DpkgPackage {
  std::string name;          // "coreutils"
  std::string version;       // "9.1-1"
  std::string architecture;  // "amd64", "all"
  std::string multi_arch;    // "same" names the info files PKG:ARCH.*
  std::string status;        // "install ok installed"
  std::string info_name;     // "coreutils" or "libc6:amd64": the info/ file stem
};

struct Diversion {
  std::string from;  // the path the package ships
  std::string to;    // where dpkg puts the diverted file
  std::string by;    // the diverting package; "" for a local (administrator's) diversion
};

struct DpkgOwner {
  const DpkgPackage* package = nullptr;
  std::string dpkg_path;     // the name dpkg's .list has ("/bin/ls")
  std::string diverted_from; // set when the file is a diverted original now at this path
};

// Parsers (exposed for tests and the fuzz target).
Result<std::vector<DpkgPackage>> ParseStatus(std::string_view text, std::string_view where);
Result<std::vector<Diversion>> ParseDiversions(std::string_view text, std::string_view where);
// "md5hex  path" lines (path without its leading '/'), as dpkg writes them → ("/path", raw md5).
Result<std::vector<std::pair<std::string, std::string>>> ParseMd5sums(std::string_view text, std::string_view where);

class DpkgDb {
 public:
  struct Options {
    std::string admindir = "/var/lib/dpkg";
    std::string root = "/";  // its top-level symbolic links give the merged-/usr aliases
  };
  static Result<DpkgDb> Load(const Options& options);
  // The rule of every command with --admindir: "" means no database (nullopt); one the user
  // named (given) must load; the default is loaded only when its status file is there.
  // Errors carry the "--admindir DIR" prefix.
  static Result<std::optional<DpkgDb>> LoadOptional(const Options& options, bool given);
  // Whether LoadOptional would load a database (rather than return nullopt): a caller that
  // loads it on another thread knows at once whether there will be one.
  static bool WouldLoad(const Options& options, bool given);

  // Installed packages (status "… installed"), by name; Multi-Arch: same packages of several
  // architectures are several entries with the same name.
  const std::vector<DpkgPackage>& packages() const { return packages_; }
  const DpkgPackage* Find(std::string_view name, std::string_view arch = {}) const;
  // The owner of path under any of its names, nullopt when no installed package owns it.
  std::optional<DpkgOwner> OwnerOf(std::string_view path) const;
  // The paths of a package's .list (as dpkg names them).
  std::vector<std::string> FilesOf(const DpkgPackage& p) const;
  // path → raw md5 from the package's md5sums (cached after the first call; an absent
  // md5sums file gives an empty map: some packages ship none).
  Result<const std::map<std::string, std::string>*> Md5sums(const DpkgPackage& p);
  const std::vector<Diversion>& diversions() const { return diversions_; }
  const UsrMerge& usr_merge() const { return usr_; }
  // Files that could not be read or parsed (a package's .list), each one line; the rest of
  // the database is still usable.
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  // dpkg path → the packages whose .list has it, in package order: an open-addressing table
  // over the .list texts, kept in one arena. A host lists ~160,000 paths; a hash-map node
  // and a string per path cost `lim scan` of /usr/share 12 % of its CPU, half of it in
  // freeing them. Copyable and movable (offsets, not pointers).
  class PathIndex {
   public:
    // Room for `paths` more paths and `bytes` more text: no rehash and no arena copy while
    // they are added.
    void Reserve(size_t paths, size_t bytes);
    // Appends the text of one .list to the arena; its lines are then added with Add.
    std::string_view AddText(std::string_view text);
    // path must be a view into the text AddText returned last.
    void Add(std::string_view path, uint32_t package);
    // Calls f(package) for each package listing path until f returns true; true when one did.
    template <typename F>
    bool Any(std::string_view path, F f) const;

   private:
    static constexpr uint32_t kNone = UINT32_MAX;
    struct Entry {
      size_t offset;
      uint32_t size;
      uint32_t package;
      uint32_t next;  // the next package listing the same path, or kNone
      uint32_t hash;  // of the path (low bits: rehashing needs no path)
    };
    std::string_view PathOf(const Entry& e) const { return std::string_view(arena_).substr(e.offset, e.size); }
    uint32_t* Slot(std::string_view path, size_t hash);
    void Grow(size_t slots);

    std::string arena_;
    size_t text_offset_ = 0;          // where AddText's last text starts in arena_
    std::vector<Entry> entries_;      // the first entry of each path, then the others
    std::vector<uint32_t> slots_;     // kNone, or an index into entries_ (a path's first)
    size_t paths_ = 0;
  };

  std::optional<DpkgOwner> OwnerOfName(const std::string& name) const;
  const DpkgPackage* ListedBy(const std::string& dpkg_path, const std::string& not_by) const;

  Options options_;
  UsrMerge usr_;
  std::vector<DpkgPackage> packages_;
  PathIndex paths_;
  std::vector<Diversion> diversions_;
  std::unordered_map<std::string, size_t> diverted_to_, diverted_from_;  // path → index into diversions_
  std::map<std::string, std::map<std::string, std::string>> md5_cache_;  // info_name → sums
  std::vector<std::string> problems_;
};

}  // namespace lim::debs
