#include "debs/package_policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "base/hex.h"
#include "crypto/digest.h"
#include "debs/dpkg_version.h"

namespace lim::debs {
namespace {

// Adds one source's packages; source is "deb" or "tofu".
Status AddWithSource(const std::vector<DebPackage>& packages, const std::string& source,
                     const PackagePolicyOptions& options, attest::RuntimePolicy* policy, PackagePolicyReport* report) {
  if (options.keep == 0) return Status::InvalidArgument("the window must keep at least 1 version per package");
  std::map<std::string, std::vector<const DebPackage*>> by_name;
  for (const auto& p : packages) by_name[p.name].push_back(&p);
  for (const auto& [name, fresh] : by_name) {
    attest::PackageInfo info;
    if (auto it = policy->packages().find(name); it != policy->packages().end()) info = it->second;
    std::vector<std::string> all = info.versions;
    for (const DebPackage* p : fresh) {
      if (std::find(all.begin(), all.end(), p->version) == all.end()) all.push_back(p->version);
    }
    std::stable_sort(all.begin(), all.end(),
                     [](const std::string& a, const std::string& b) { return CompareVersions(a, b) > 0; });
    std::vector<std::string> kept(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(options.keep, all.size())));
    for (const auto& old : info.versions) {
      if (std::find(kept.begin(), kept.end(), old) == kept.end()) {
        policy->DropPackageVersion(name, old);
        ++report->dropped_versions;
        report->notes.push_back(name + " " + old + ": left the window of " + std::to_string(options.keep) +
                                " versions");
      }
    }
    info.versions = kept;
    if (info.source.empty() || source == "deb") info.source = source;
    policy->SetPackage(name, info);
    for (const DebPackage* p : fresh) {
      if (std::find(kept.begin(), kept.end(), p->version) == kept.end()) {
        report->notes.push_back(name + " " + p->version + ": older than the window, not added");
        continue;
      }
      for (const auto& f : p->files) {
        policy->AllowPackageFile(options.usr.Canonical(f.path), name, p->version, f.digest);
        ++report->files;
      }
      ++report->packages;
    }
  }
  return Status::Ok();
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// A file of the installed system hashed in md5 and algo; nullopt when it is not a regular
// file (directories, links, devices in a .list). Never follows a symbolic link.
struct DiskDigests {
  Bytes md5, digest;
  uint64_t size = 0;
};

Result<std::optional<DiskDigests>> HashDisk(const std::string& path, const HashAlgo& algo) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOENT || errno == ENOTDIR) return std::optional<DiskDigests>();
    return Status::IoError(path + ": open: " + std::strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return std::optional<DiskDigests>();
  }
  auto md5algo = HashAlgoByName("md5");
  auto m = Hasher::Create(*md5algo);
  auto h = Hasher::Create(algo);
  if (!m.ok() || !h.ok()) {
    close(fd);
    return !m.ok() ? m.status() : h.status();
  }
  Bytes buf(1 << 20);
  DiskDigests d;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return Status::IoError(path + ": read: " + std::strerror(err));
    }
    if (n == 0) break;
    ByteView chunk(buf.data(), static_cast<size_t>(n));
    m->Update(chunk);
    h->Update(chunk);
    d.size += static_cast<uint64_t>(n);
  }
  close(fd);
  d.md5 = m->Final();
  d.digest = h->Final();
  return std::optional<DiskDigests>(std::move(d));
}

std::string Joined(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + path;
}

std::string Key(ByteView b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

}  // namespace

size_t DefaultJobs() { return std::max(1u, std::thread::hardware_concurrency()); }

std::string DebFileName(const std::string& name, const std::string& version, const std::string& arch) {
  std::string v;
  for (char c : version) {
    if (c == ':') {
      v += "%3a";
    } else {
      v += c;
    }
  }
  return name + "_" + v + "_" + arch + ".deb";
}

Status AddPackages(const std::vector<DebPackage>& packages, const PackagePolicyOptions& options,
                   attest::RuntimePolicy* policy, PackagePolicyReport* report) {
  return AddWithSource(packages, "deb", options, policy, report);
}

Result<std::vector<DebPackage>> ReadDebs(const std::vector<std::string>& debs_or_dirs,
                                         const PackagePolicyOptions& options, PackagePolicyReport* report) {
  std::vector<std::string> files;
  for (const auto& arg : debs_or_dirs) {
    LIM_ASSIGN_OR_RETURN(auto some, ListDebs(arg));
    files.insert(files.end(), some.begin(), some.end());
  }
  // One .deb per worker at a time: decompression and hashing are CPU-bound and independent.
  // Largest first: a big .deb taken last would leave the other workers idle while it is
  // read (name order put golang-1.19-go, 100 MiB, near the end of an apt cache).
  std::vector<std::pair<off_t, size_t>> order;  // (size, index)
  for (size_t i = 0; i < files.size(); ++i) {
    struct stat st;
    order.emplace_back(stat(files[i].c_str(), &st) == 0 ? st.st_size : 0, i);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  // A policy needs only the digest it lists: no md5, no extra sha256.
  const DebDigests digests{false, false};
  std::vector<std::optional<Result<DebPackage>>> read(files.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < order.size();) {
      const size_t i = order[k].second;
      read[i] = ReadDeb(files[i], options.algo, options.limits, digests);
    }
  };
  size_t jobs = std::max<size_t>(1, std::min<size_t>(options.jobs, files.size()));
  std::vector<std::thread> threads;
  for (size_t t = 1; t < jobs; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  std::vector<DebPackage> out;
  for (auto& r : read) {
    if (!r->ok()) return r->status();
    ++report->debs;
    out.push_back(std::move(*r).value());
  }
  return out;
}

Result<attest::RuntimePolicy> PolicyFromDebs(const std::vector<std::string>& debs_or_dirs,
                                             const PackagePolicyOptions& options, PackagePolicyReport* report) {
  LIM_ASSIGN_OR_RETURN(auto packages, ReadDebs(debs_or_dirs, options, report));
  attest::RuntimePolicy policy;
  LIM_RETURN_IF_ERROR(AddPackages(packages, options, &policy, report));
  return policy;
}

Result<attest::RuntimePolicy> PolicyFromDpkg(DpkgDb& db, const FromDpkgOptions& from,
                                             const PackagePolicyOptions& options, PackagePolicyReport* report) {
  // Where dpkg put each diverted file: from → to, unless the diverting package is the owner.
  std::map<std::string, const Diversion*> diverted;
  for (const auto& d : db.diversions()) diverted[d.from] = &d;
  auto installed_name = [&](const std::string& path, const std::string& package) {
    auto it = diverted.find(path);
    return it != diverted.end() && it->second->by != package ? it->second->to : path;
  };
  std::set<std::string> only(from.only.begin(), from.only.end());
  std::set<std::string> seen;
  attest::RuntimePolicy policy;
  std::vector<DebPackage> debs, tofu;
  std::map<std::string, std::string> installed;
  for (const DpkgPackage& p : db.packages()) {
    if (!only.empty() && !only.count(p.name)) continue;
    seen.insert(p.name);
    installed[p.name] = p.version;
    LIM_ASSIGN_OR_RETURN(const auto* sums, db.Md5sums(p));
    std::string deb_path;
    // apt writes the epoch's ':' as "%3a"; dpkg-deb --build leaves the epoch out; some keep ':'.
    std::vector<std::string> names = {DebFileName(p.name, p.version, p.architecture),
                                      p.name + "_" + p.version + "_" + p.architecture + ".deb"};
    if (size_t colon = p.version.find(':'); colon != std::string::npos) {
      names.push_back(p.name + "_" + p.version.substr(colon + 1) + "_" + p.architecture + ".deb");
    }
    for (const auto& dir : from.deb_dirs) {
      for (const auto& name : names) {
        if (deb_path.empty() && Exists(dir + "/" + name)) deb_path = dir + "/" + name;
      }
    }
    std::optional<DebPackage> pkg;
    if (!deb_path.empty()) {
      auto d = ReadDeb(deb_path, options.algo, options.limits, DebDigests{true, false});  // md5: dpkg's md5sums
      if (!d.ok()) {
        report->notes.push_back(d.status().message() + " (taking " + p.name + " from disk)");
      } else if (d->name != p.name || d->version != p.version) {
        report->notes.push_back(deb_path + ": holds " + d->name + " " + d->version + ", not " + p.name + " " +
                                p.version + " (taking it from disk)");
      } else {
        ++report->debs;
        pkg = std::move(d).value();
      }
    }
    if (pkg) {
      for (auto& f : pkg->files) {
        auto s = sums->find(f.path);
        if (s != sums->end() && s->second != Key(f.md5)) {
          ++report->md5_mismatches;
          report->notes.push_back(p.name + " " + p.version + ": " + f.path +
                                  ": the .deb's md5 is not the one dpkg recorded at install");
        }
        f.path = installed_name(f.path, p.name);
        if (!from.check_disk || s == sums->end()) continue;
        LIM_ASSIGN_OR_RETURN(auto disk, HashDisk(Joined(from.root, f.path), options.algo));
        if (disk && Key(disk->md5) != s->second) {
          ++report->md5_mismatches;
          report->notes.push_back(p.name + " " + p.version + ": " + f.path +
                                  ": modified on disk (md5 differs from dpkg's md5sums)");
        }
      }
      debs.push_back(std::move(*pkg));
      continue;
    }
    // Trust on first use: the files on disk, when dpkg's md5sums agree.
    DebPackage t;
    t.file = "<disk>";
    t.name = p.name;
    t.version = p.version;
    t.architecture = p.architecture;
    for (const auto& listed : db.FilesOf(p)) {
      std::string path = installed_name(listed, p.name);
      LIM_ASSIGN_OR_RETURN(auto disk, HashDisk(Joined(from.root, path), options.algo));
      if (!disk) continue;
      auto s = sums->find(listed);
      if (s != sums->end() && s->second != Key(disk->md5)) {
        ++report->md5_mismatches;
        report->notes.push_back(p.name + " " + p.version + ": " + path +
                                ": modified on disk (md5 differs from dpkg's md5sums), left out of the policy");
        continue;
      }
      DebFile f;
      f.path = path;
      f.size = disk->size;
      f.md5 = disk->md5;
      f.digest = disk->digest;
      t.files.push_back(std::move(f));
    }
    ++report->tofu_packages;
    tofu.push_back(std::move(t));
  }
  for (const auto& name : only) {
    if (!seen.count(name)) return Status::NotFound("package " + name + " is not installed");
  }
  LIM_RETURN_IF_ERROR(AddWithSource(debs, "deb", options, &policy, report));
  LIM_RETURN_IF_ERROR(AddWithSource(tofu, "tofu", options, &policy, report));
  for (const auto& [name, version] : installed) {
    auto it = policy.packages().find(name);
    if (it == policy.packages().end()) continue;
    attest::PackageInfo info = it->second;
    info.installed = version;
    policy.SetPackage(name, std::move(info));
  }
  return policy;
}

}  // namespace lim::debs
