// `lim policy from-debs DIR…`, `lim policy from-dpkg`, `lim policy update OLD NEW-DEBS…` and
// `lim policy owner PATH…`: reference values from Debian packages, with an update window
// (src/debs/package_policy.h). Thin: reading packages and building policies live in src/debs.
#include "cli/cmd_policy_debs.h"

#include <cstdio>

#include "attest/remediation.h"
#include "attest/runtime_policy.h"
#include "base/escape.h"
#include "base/file.h"
#include "cli/command.h"
#include "debs/generated_files.h"
#include "debs/package_policy.h"

namespace lim::cli {
namespace {

constexpr size_t kMaxPolicyBytes = 256u << 20;  // a policy of every installed package is tens of MiB

struct Common {
  std::string hash = "sha256";
  size_t keep = debs::kDefaultKeepVersions;
  std::string root = "/";
  std::string merged_usr = "auto";
  std::string format = "native";
  std::string out;
  size_t jobs = debs::DefaultJobs();
};

void AddCommon(CLI::App* cmd, Common* c) {
  cmd->add_option("--hash,-a", c->hash, "file digest algorithm of the policy (default sha256; as limd's list)");
  cmd->add_option("--keep", c->keep, "versions kept per package: the update window (default 3)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--root", c->root, "host root whose /bin, /lib, … links to /usr give the names limd records (default /)");
  cmd->add_option("--merged-usr", c->merged_usr,
                  "auto (the links of --root), yes (Debian 12's /bin, /sbin, /lib* → /usr), no (names as shipped)")
      ->check(CLI::IsMember({"auto", "yes", "no"}));
  cmd->add_option("--format", c->format, "native (lim, with package versions) or keylime")
      ->check(CLI::IsMember({"native", "keylime"}));
  cmd->add_option("-o,--out", c->out, "write here instead of standard output");
  cmd->add_option("-j,--jobs", c->jobs, ".debs read at once (default: one per CPU)")->check(CLI::Range(1, 256));
}

Result<debs::PackagePolicyOptions> Options(const Common& c) {
  debs::PackagePolicyOptions o;
  LIM_ASSIGN_OR_RETURN(o.algo, HashAlgoByName(c.hash));
  o.keep = c.keep;
  o.jobs = c.jobs;
  if (c.merged_usr == "yes") {
    o.usr = debs::UsrMerge::Debian();
  } else if (c.merged_usr == "auto") {
    LIM_ASSIGN_OR_RETURN(o.usr, debs::UsrMerge::Load(c.root));
  }
  return o;
}

// Writes the policy, then the report on stderr. Exit 1 when files disagreed with dpkg's md5sums.
int Emit(const Common& c, const attest::RuntimePolicy& p, const debs::PackagePolicyReport& r) {
  std::vector<std::string> lost;
  std::string json = (c.format == "keylime" ? p.ToKeylimeJson(&lost) : p.ToNativeJson()) + "\n";
  if (c.out.empty()) {
    std::fwrite(json.data(), 1, json.size(), stdout);
  } else if (Status st = WriteFileBytes(c.out, AsBytes(json)); !st.ok()) {
    return ReportError(st);
  }
  for (const auto& n : r.notes) std::fprintf(stderr, "lim: %s\n", Escaped(n).c_str());
  for (const auto& l : lost) std::fprintf(stderr, "lim: not in keylime's form: %s\n", l.c_str());
  std::fprintf(stderr,
               "lim: %zu paths from %zu packages (%zu .debs read, %zu from disk as trust on first use); %zu files "
               "disagree with dpkg's md5sums; %zu versions left the window\n",
               p.paths(), p.packages().size(), r.debs, r.tofu_packages, r.md5_mismatches, r.dropped_versions);
  return r.md5_mismatches ? kExitCheckFailed : kExitOk;
}

struct FromDebsArgs {
  Common c;
  std::vector<std::string> dirs;
};

int RunFromDebs(const FromDebsArgs& a) {
  auto o = Options(a.c);
  if (!o.ok()) return ReportError(o.status());
  debs::PackagePolicyReport r;
  auto p = debs::PolicyFromDebs(a.dirs, *o, &r);
  if (!p.ok()) return ReportError(p.status());
  return Emit(a.c, *p, r);
}

struct FromDpkgArgs {
  Common c;
  std::string admindir = "/var/lib/dpkg";
  std::vector<std::string> debs;
  bool no_apt_cache = false;
  bool check_disk = false;
  std::vector<std::string> packages;
};

int RunFromDpkg(const FromDpkgArgs& a) {
  auto o = Options(a.c);
  if (!o.ok()) return ReportError(o.status());
  auto db = debs::DpkgDb::Load({a.admindir, a.c.root});
  if (!db.ok()) return ReportError(db.status());
  for (const auto& p : db->problems()) std::fprintf(stderr, "lim: %s\n", Escaped(p).c_str());
  debs::FromDpkgOptions from;
  from.deb_dirs = a.debs;
  if (!a.no_apt_cache) from.deb_dirs.push_back(a.c.root == "/" ? "/var/cache/apt/archives" : a.c.root + "/var/cache/apt/archives");
  from.root = a.c.root;
  from.only = a.packages;
  from.check_disk = a.check_disk;
  debs::PackagePolicyReport r;
  auto p = debs::PolicyFromDpkg(*db, from, *o, &r);
  if (!p.ok()) return ReportError(p.status());
  return Emit(a.c, *p, r);
}

struct UpdateArgs {
  Common c;
  std::string old;
  std::vector<std::string> debs;
};

int RunUpdate(const UpdateArgs& a) {
  auto o = Options(a.c);
  if (!o.ok()) return ReportError(o.status());
  auto text = ReadFileTextBounded(a.old, kMaxPolicyBytes, "a runtime policy");
  if (!text.ok()) return ReportError(text.status());
  auto p = attest::RuntimePolicy::FromJson(*text);
  if (!p.ok()) return ReportError(p.status().WithPrefix(a.old));
  debs::PackagePolicyReport r;
  auto fresh = debs::ReadDebs(a.debs, *o, &r);
  if (!fresh.ok()) return ReportError(fresh.status());
  if (Status st = debs::AddPackages(*fresh, *o, &*p, &r); !st.ok()) return ReportError(st);
  return Emit(a.c, *p, r);
}

struct OwnerArgs {
  std::string admindir = "/var/lib/dpkg";
  std::string root = "/";
  std::vector<std::string> paths;
};

// One line per path: "PATH PACKAGE VERSION ARCH [dpkg: NAME] [diverted from X]", or the hint
// for a generated or unowned file. Exit 1 when a path has no package.
int RunOwner(const OwnerArgs& a) {
  auto db = debs::DpkgDb::Load({a.admindir, a.root});
  if (!db.ok()) return ReportError(db.status());
  int rc = kExitOk;
  for (const auto& path : a.paths) {
    if (auto o = db->OwnerOf(path)) {
      std::printf("%s %s %s %s", Escaped(path).c_str(), o->package->name.c_str(), o->package->version.c_str(),
                  o->package->architecture.c_str());
      if (o->dpkg_path != path) std::printf(" (dpkg: %s)", Escaped(o->dpkg_path).c_str());
      if (!o->diverted_from.empty()) std::printf(" (diverted from %s)", Escaped(o->diverted_from).c_str());
      std::printf("\n");
    } else if (auto why = debs::GeneratedReason(db->usr_merge().Canonical(path))) {
      std::printf("%s - generated: %s\n", Escaped(path).c_str(), attest::HintGenerated(path, *why).c_str());
    } else {
      std::printf("%s - %s\n", Escaped(path).c_str(), attest::HintUnowned(path).c_str());
      rc = kExitCheckFailed;
    }
  }
  return rc;
}

}  // namespace

void RegisterPolicyDebs(CLI::App* policy) {
  static FromDebsArgs fd;
  CLI::App* from_debs = policy->add_subcommand(
      "from-debs", "Runtime policy from .deb files: every regular file's digest, with its package and version");
  from_debs->add_option("DIR", fd.dirs, ".deb files or directories of them (e.g. /var/cache/apt/archives)")->required();
  AddCommon(from_debs, &fd.c);
  from_debs->callback([] { ExitCode() = RunFromDebs(fd); });

  static FromDpkgArgs fp;
  CLI::App* from_dpkg = policy->add_subcommand(
      "from-dpkg",
      "Runtime policy of the installed packages: digests from their .debs when at hand, else from disk (trust on "
      "first use) when dpkg's md5sums agree; exit 1 when files disagree with md5sums");
  from_dpkg->add_option("--admindir", fp.admindir, "dpkg database (default /var/lib/dpkg)");
  from_dpkg->add_option("--debs", fp.debs, "directories holding PKG_VERSION_ARCH.deb files (apt's cache is searched too)");
  from_dpkg->add_flag("--no-apt-cache", fp.no_apt_cache, "do not look in ROOT/var/cache/apt/archives");
  from_dpkg->add_flag("--check-disk", fp.check_disk, "also compare installed files with md5sums when the .deb is used");
  from_dpkg->add_option("--package", fp.packages, "only these packages (repeatable)");
  AddCommon(from_dpkg, &fp.c);
  from_dpkg->callback([] { ExitCode() = RunFromDpkg(fp); });

  static UpdateArgs up;
  CLI::App* update = policy->add_subcommand(
      "update", "Merge new package versions into a policy, keeping the last --keep versions per package");
  update->add_option("OLD", up.old, "the current policy (lim's native form keeps package versions)")->required();
  update->add_option("NEW-DEBS", up.debs, ".deb files or directories")->required();
  AddCommon(update, &up.c);
  update->callback([] { ExitCode() = RunUpdate(up); });

  static OwnerArgs ow;
  CLI::App* owner = policy->add_subcommand(
      "owner", "The installed package of each path (through merged /usr and diversions), or why none owns it");
  owner->add_option("PATH", ow.paths, "paths as limd records them")->required();
  owner->add_option("--admindir", ow.admindir, "dpkg database (default /var/lib/dpkg)");
  owner->add_option("--root", ow.root, "host root for the merged-/usr links (default /)");
  owner->callback([] { ExitCode() = RunOwner(ow); });
}

}  // namespace lim::cli
