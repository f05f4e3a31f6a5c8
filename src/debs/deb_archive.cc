#include "debs/deb_archive.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "crypto/digest.h"
#include "debs/control_file.h"
#include "debs/libarchive_api.h"

namespace lim::debs {
namespace {

// ReadDeb and ReadDebMemory load libarchive (and return its error) before anything here runs.
const ArchiveApi& Api() {
  static const ArchiveApi* api = LoadArchiveApi().value();
  return *api;
}

struct ArchiveFree {
  void operator()(archive* a) const { Api().archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

constexpr size_t kBlock = 256 * 1024;


std::string ArchiveError(archive* a) {
  const char* s = Api().archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

// A member name of data.tar as an absolute path: "./usr/bin/ls" → "/usr/bin/ls"; "" for the
// root entry; an error for traversal (absolute names, ".." components).
Result<std::string> MemberPath(std::string_view name) {
  if (!name.empty() && name.front() == '/') return Status::InvalidArgument("absolute member name: path traversal");
  std::string out;
  while (!name.empty()) {
    size_t slash = name.find('/');
    std::string_view part = name.substr(0, slash);
    name.remove_prefix(slash == std::string_view::npos ? name.size() : slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") return Status::InvalidArgument("\"..\" component: path traversal");
    out += '/';
    out += part;
  }
  return out;
}

// Feeds the current outer (ar) member to an inner reader.
struct OuterFeed {
  archive* outer;
  char buf[kBlock];
};

la_ssize_t FeedRead(archive* inner, void* data, const void** block) {
  auto* f = static_cast<OuterFeed*>(data);
  la_ssize_t n = Api().archive_read_data(f->outer, f->buf, sizeof f->buf);
  if (n < 0) {
    Api().archive_set_error(inner, EIO, "ar member: %s", ArchiveError(f->outer).c_str());
    return -1;
  }
  *block = f->buf;
  return n;
}

class Reader {
 public:
  Reader(std::string file, const HashAlgo& algo, const DebLimits& limits, const DebDigests& digests)
      : file_(std::move(file)), algo_(algo), limits_(limits), digests_(digests) {}

  Result<DebPackage> Read(archive* outer) {
    pkg_.file = file_;
    uint64_t members = 0;
    for (;;) {
      archive_entry* e = nullptr;
      int r = Api().archive_read_next_header(outer, &e);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return Err("", "not a .deb (ar): " + ArchiveError(outer));
      if (++members > limits_.max_outer_members) return Err("", "more than " + std::to_string(limits_.max_outer_members) + " ar members");
      std::string member = Api().archive_entry_pathname(e) ? Api().archive_entry_pathname(e) : "";
      if (members == 1 && member != "debian-binary") return Err(member, "the first member is not debian-binary");
      if (member == "debian-binary") {
        char v[16] = {};
        la_ssize_t n = Api().archive_read_data(outer, v, sizeof v);
        if (n < 4 || std::strncmp(v, "2.", 2) != 0) return Err(member, "not format 2.x");
        have_binary_ = true;
      } else if (member.rfind("control.tar", 0) == 0) {
        if (have_control_) return Err(member, "a second control.tar");
        LIM_RETURN_IF_ERROR(Inner(outer, member, true));
        have_control_ = true;
      } else if (member.rfind("data.tar", 0) == 0) {
        if (have_data_) return Err(member, "a second data.tar");
        LIM_RETURN_IF_ERROR(Inner(outer, member, false));
        have_data_ = true;
      } else if (member.empty() || member.front() != '_') {
        return Err(member, "unknown member (dpkg refuses it too)");
      }
    }
    if (!have_binary_) return Err("", "no debian-binary member");
    if (!have_control_) return Err("", "no control.tar member");
    if (!have_data_) return Err("", "no data.tar member");
    if (pkg_.name.empty() || pkg_.version.empty()) return Err("control", "no Package or Version field");
    return std::move(pkg_);
  }

 private:
  Status Err(const std::string& member, const std::string& why) const {
    std::string s = file_ + ": ";
    if (!member.empty()) s += member + ": ";
    return Status::Corrupt(s + why);
  }

  Status Inner(archive* outer, const std::string& member, bool control) {
    ArchivePtr in(Api().archive_read_new());
    if (!in) return Status::Internal("archive_read_new failed");
    Api().archive_read_support_filter_gzip(in.get());
    Api().archive_read_support_filter_xz(in.get());
    Api().archive_read_support_filter_lzma(in.get());
    Api().archive_read_support_filter_zstd(in.get());
    Api().archive_read_support_filter_bzip2(in.get());
    Api().archive_read_support_filter_none(in.get());
    Api().archive_read_support_format_tar(in.get());
    auto feed = std::make_unique<OuterFeed>();
    feed->outer = outer;
    if (Api().archive_read_open(in.get(), feed.get(), nullptr, FeedRead, nullptr) != ARCHIVE_OK) {
      return Err(member, "not a tar: " + ArchiveError(in.get()));
    }
    uint64_t entries = 0;
    for (;;) {
      archive_entry* e = nullptr;
      int r = Api().archive_read_next_header(in.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return Err(member, "truncated or corrupt: " + ArchiveError(in.get()));
      std::string raw = Api().archive_entry_pathname(e) ? Api().archive_entry_pathname(e) : "";
      auto path = MemberPath(raw);
      if (!path.ok()) return Err(member, raw + ": " + path.status().message());
      if (control) {
        if (*path == "/control") LIM_RETURN_IF_ERROR(Control(in.get(), member, raw));
        continue;
      }
      if (++entries > limits_.max_files) return Err(member, "more than " + std::to_string(limits_.max_files) + " entries");
      if (const char* link = Api().archive_entry_hardlink(e)) {
        auto target = MemberPath(link);
        if (!target.ok()) return Err(member, raw + ": hard link: " + target.status().message());
        auto it = by_path_.find(*target);
        if (it == by_path_.end()) return Err(member, raw + ": hard link to " + link + ", not an earlier file");
        DebFile f = pkg_.files[it->second];
        f.path = *path;
        by_path_[f.path] = pkg_.files.size();
        pkg_.files.push_back(std::move(f));
        continue;
      }
      if (Api().archive_entry_filetype(e) != AE_IFREG) continue;
      LIM_RETURN_IF_ERROR(File(in.get(), member, raw, *path, e));
    }
    return Status::Ok();
  }

  Status Control(archive* in, const std::string& member, const std::string& raw) {
    std::string text;
    char buf[16384];
    for (;;) {
      la_ssize_t n = Api().archive_read_data(in, buf, sizeof buf);
      if (n < 0) return Err(member, raw + ": truncated or corrupt: " + ArchiveError(in));
      if (n == 0) break;
      if (text.size() + static_cast<size_t>(n) > limits_.max_control_bytes) {
        return Err(member, raw + ": larger than " + std::to_string(limits_.max_control_bytes) + " bytes");
      }
      text.append(buf, static_cast<size_t>(n));
    }
    auto stanzas = ParseControl(text, file_ + ": " + member + ": control");
    if (!stanzas.ok()) return stanzas.status();
    if (stanzas->empty()) return Err(member, "empty control file");
    const Stanza& s = stanzas->front();
    pkg_.name = s.Get("Package");
    pkg_.version = s.Get("Version");
    pkg_.architecture = s.Get("Architecture");
    if (pkg_.name.find_first_of("/\n ") != std::string::npos || pkg_.version.find_first_of("/\n ") != std::string::npos) {
      return Err(member, "control: bad Package or Version");
    }
    return Status::Ok();
  }

  Status File(archive* in, const std::string& member, const std::string& raw, const std::string& path,
              archive_entry* e) {
    int64_t declared = Api().archive_entry_size(e);
    if (declared < 0 || static_cast<uint64_t>(declared) > limits_.max_member_bytes) {
      return Err(member, raw + ": " + std::to_string(declared) + " bytes, more than the limit of " +
                             std::to_string(limits_.max_member_bytes) + " per file");
    }
    if (total_ + static_cast<uint64_t>(declared) > limits_.max_total_bytes) {
      return Err(member, raw + ": data.tar holds more than " + std::to_string(limits_.max_total_bytes) + " bytes");
    }
    LIM_RETURN_IF_ERROR(Hashers());
    uint64_t got = 0;
    for (;;) {
      la_ssize_t n = Api().archive_read_data(in, buf_.data(), buf_.size());
      if (n < 0) return Err(member, raw + ": truncated or corrupt: " + ArchiveError(in));
      if (n == 0) break;
      got += static_cast<uint64_t>(n);
      if (got > static_cast<uint64_t>(declared)) return Err(member, raw + ": more data than its header says");
      ByteView chunk(buf_.data(), static_cast<size_t>(n));
      if (md5_) md5_->Update(chunk);
      if (sha256_) sha256_->Update(chunk);
      if (other_) other_->Update(chunk);
    }
    if (got != static_cast<uint64_t>(declared)) {
      return Err(member, raw + ": truncated: " + std::to_string(got) + " of " + std::to_string(declared) + " bytes");
    }
    total_ += got;
    DebFile f;
    f.path = path;
    f.size = got;
    f.mode = static_cast<uint32_t>(Api().archive_entry_perm(e));
    if (md5_) f.md5 = md5_->Final();
    if (sha256_) f.sha256 = sha256_->Final();
    f.digest = other_ ? other_->Final() : f.sha256;
    by_path_[path] = pkg_.files.size();
    pkg_.files.push_back(std::move(f));
    return Status::Ok();
  }

  Status Hashers() {
    if (!buf_.empty()) return Status::Ok();
    if (digests_.md5) {
      LIM_ASSIGN_OR_RETURN(auto md5algo, HashAlgoByName("md5"));
      LIM_ASSIGN_OR_RETURN(Hasher m, Hasher::Create(md5algo));
      md5_ = std::make_unique<Hasher>(std::move(m));
    }
    const bool sha256_is_digest = algo_ == Sha256Algo();
    if (digests_.sha256 || sha256_is_digest) {
      LIM_ASSIGN_OR_RETURN(Hasher s, Hasher::Create(Sha256Algo()));
      sha256_ = std::make_unique<Hasher>(std::move(s));
    }
    if (!sha256_is_digest) {
      LIM_ASSIGN_OR_RETURN(Hasher o, Hasher::Create(algo_));
      other_ = std::make_unique<Hasher>(std::move(o));
    }
    buf_.resize(kBlock);
    return Status::Ok();
  }

  std::string file_;
  HashAlgo algo_;
  DebLimits limits_;
  DebDigests digests_;
  DebPackage pkg_;
  bool have_binary_ = false, have_control_ = false, have_data_ = false;
  uint64_t total_ = 0;
  std::unordered_map<std::string, size_t> by_path_;
  std::unique_ptr<Hasher> md5_, sha256_, other_;
  Bytes buf_;
};

ArchivePtr NewOuter() {
  ArchivePtr a(Api().archive_read_new());
  if (a) Api().archive_read_support_format_ar(a.get());
  return a;
}

}  // namespace

Result<DebPackage> ReadDeb(const std::string& path, const HashAlgo& algo, const DebLimits& limits,
                           const DebDigests& digests) {
  if (auto loaded = LoadArchiveApi(); !loaded.ok()) return loaded.status();
  ArchivePtr a = NewOuter();
  if (!a) return Status::Internal("archive_read_new failed");
  if (Api().archive_read_open_filename(a.get(), path.c_str(), 64 * 1024) != ARCHIVE_OK) {
    return Status::Corrupt(path + ": not a .deb (ar): " + ArchiveError(a.get()));
  }
  return Reader(path, algo, limits, digests).Read(a.get());
}

Result<DebPackage> ReadDebMemory(ByteView data, const HashAlgo& algo, const DebLimits& limits,
                                 const std::string& name, const DebDigests& digests) {
  if (auto loaded = LoadArchiveApi(); !loaded.ok()) return loaded.status();
  ArchivePtr a = NewOuter();
  if (!a) return Status::Internal("archive_read_new failed");
  if (Api().archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK) {
    return Status::Corrupt(name + ": not a .deb (ar): " + ArchiveError(a.get()));
  }
  return Reader(name, algo, limits, digests).Read(a.get());
}

Result<std::vector<std::string>> ListDebs(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return Status::NotFound(dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return std::vector<std::string>{dir};
  DIR* d = opendir(dir.c_str());
  if (!d) return Status::NotFound(dir + ": opendir: " + std::strerror(errno));
  std::vector<std::string> out;
  while (dirent* de = readdir(d)) {
    std::string name = de->d_name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".deb") == 0) out.push_back(dir + "/" + name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace lim::debs
