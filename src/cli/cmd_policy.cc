// `lim policy check|show|explain`: the kernel's IMA policy language, read-back and decisions
// (src/ima/policy*.h). Thin: parsing, printing and matching live in the library.
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <algorithm>
#include <sstream>

#include "attest/policy_diff.h"
#include "attest/runtime_policy.h"
#include "debs/dpkg_db.h"
#include "debs/dpkg_version.h"
#include "crypto/hash_algo.h"
#include "tcg/event_log.h"
#include "base/file.h"
#include "base/escape.h"
#include "base/mountinfo.h"
#include "cli/cmd_policy_debs.h"
#include "cli/command.h"
#include "ima/evm.h"
#include "ima/policy.h"
#include "ima/policy_builtin.h"
#include "ima/policy_match.h"

namespace lim::cli {

namespace {

struct PolicySource {
  std::string file;
  std::string builtin;
};

Result<ima::Policy> LoadSource(const PolicySource& s) {
  if (!s.file.empty() && !s.builtin.empty()) return Status::InvalidArgument("give either FILE or --builtin, not both");
  if (!s.builtin.empty()) return ima::BuiltinPolicy(s.builtin);
  if (s.file.empty()) return Status::InvalidArgument("give a policy FILE or --builtin NAME");
  return ima::LoadPolicyFile(s.file);
}

void AddSourceOptions(CLI::App* cmd, PolicySource* s) {
  cmd->add_option("FILE", s->file, "policy file (as written to /sys/kernel/security/ima/policy)");
  cmd->add_option("--builtin", s->builtin,
                  "built-in policy: tcb, ima_tcb, appraise_tcb, secure_boot, critical_data, fail_securely "
                  "(combine with '|', as in ima_policy=)");
}

std::string Trimmed(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// ---- check ----

int RunCheck(const std::string& file) {
  Result<std::string> text = ReadFileTextBounded(file, ima::kMaxPolicyFileSize, "a policy file");
  if (!text.ok()) return ReportError(text.status());
  ima::PolicyParseOutput out = ima::CheckPolicy(*text, file);
  // Diagnostics in line order, errors and warnings interleaved.
  std::vector<std::pair<ima::PolicyDiagnostic, bool>> all;
  for (const auto& e : out.errors) all.push_back({e, true});
  for (const auto& w : out.warnings) all.push_back({w, false});
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.first.line != b.first.line ? a.first.line < b.first.line : a.first.column < b.first.column;
  });
  for (const auto& [d, is_error] : all) {
    ima::PolicyDiagnostic shown = d;
    if (!is_error) shown.message = "warning: " + shown.message;
    std::printf("%s\n", Escaped(ima::FormatDiagnostic(file, shown)).c_str());
  }
  if (!out.errors.empty()) {
    std::printf("%s: rejected: %zu bad rule%s (the kernel refuses the whole policy)\n", Escaped(file).c_str(),
                out.errors.size(), out.errors.size() == 1 ? "" : "s");
    return kExitCheckFailed;
  }
  std::printf("%s: accepted: %zu rule%s\n", Escaped(file).c_str(), out.policy.rules.size(),
              out.policy.rules.size() == 1 ? "" : "s");
  return kExitOk;
}

// ---- show ----

int RunShow(const PolicySource& s) {
  Result<ima::Policy> p = LoadSource(s);
  if (!p.ok()) return ReportError(p.status());
  std::string shown = ima::ShowPolicy(*p);
  std::fwrite(shown.data(), 1, shown.size(), stdout);
  return kExitOk;
}

// ---- explain ----

struct ExplainArgs {
  PolicySource source;
  std::string func;
  std::string mask;
  std::string path;
  std::optional<uint32_t> uid, euid, suid, gid, egid, sgid, fowner, fgroup;
  std::string fsmagic, fsuuid, fsname;
  bool cap_setuid = false, cap_setgid = false;
  std::vector<std::string> labels;
  std::string keyring;
  std::string state = "/var/lib/lim";  // limd's state directory: its files are not measured
  bool verbose = false;
};

// Whether path lies in limd's state directory (both resolved; a path that does not exist
// is compared as given, made absolute).
bool InStateDir(const std::string& path, const std::string& state) {
  auto resolve = [](const std::string& p) {
    char real[PATH_MAX];
    if (::realpath(p.c_str(), real)) return std::string(real);
    return std::filesystem::absolute(p).lexically_normal().string();
  };
  std::string dir = resolve(state), file = resolve(path);
  if (dir.empty() || dir.back() != '/') dir += '/';
  return file.size() > dir.size() && file.compare(0, dir.size(), dir) == 0;
}

struct KnownFs {
  const char* name;
  uint64_t magic;
};
// include/uapi/linux/magic.h, for --fsmagic NAME.
constexpr KnownFs kKnownFs[] = {
    {"proc", 0x9fa0},           {"sysfs", 0x62656572},     {"debugfs", 0x64626720},   {"tmpfs", 0x01021994},
    {"ramfs", 0x858458f6},      {"devpts", 0x1cd1},        {"binfmt_misc", 0x42494e4d}, {"securityfs", 0x73636673},
    {"selinuxfs", 0xf97cff8c},  {"smackfs", 0x43415d53},   {"cgroup", 0x27e0eb},      {"cgroup2", 0x63677270},
    {"nsfs", 0x6e736673},       {"efivarfs", 0xde5e81e4},  {"ext4", 0xef53},          {"xfs", 0x58465342},
    {"btrfs", 0x9123683e},      {"overlay", 0x794c7630},   {"squashfs", 0x73717368},  {"vfat", 0x4d44},
    {"fuse", 0x65735546},       {"nfs", 0x6969},           {"f2fs", 0xf2f52010},      {"erofs", 0xe0f5e1e2},
};

Result<uint32_t> ParseMask(const std::string& text) {
  uint32_t mask = 0;
  std::string s = text;
  for (char& c : s) {
    if (c == ',' || c == '|') c = ' ';
  }
  std::istringstream in(s);
  std::string tok;
  while (in >> tok) {
    std::string t = tok;
    for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (t.rfind("MAY_", 0) == 0) t = t.substr(4);
    if (t == "EXEC") mask |= ima::may::kExec;
    else if (t == "WRITE") mask |= ima::may::kWrite;
    else if (t == "READ") mask |= ima::may::kRead;
    else if (t == "APPEND") mask |= ima::may::kAppend;
    else {
      char* end = nullptr;
      unsigned long v = std::strtoul(tok.c_str(), &end, 0);
      if (!end || *end || v > 0xff) return Status::InvalidArgument("--mask: unknown access '" + tok + "' (MAY_EXEC, MAY_WRITE, MAY_READ, MAY_APPEND or a number)");
      mask |= static_cast<uint32_t>(v);
    }
  }
  return mask;
}

// The filesystem type of a device, from /proc/self/mountinfo ("" when no mount shows it).
std::string FsTypeOfDevice(dev_t dev) {
  auto mounts = ReadMountinfo();
  if (!mounts.ok()) return "";
  for (const auto& m : *mounts) {
    if (m.dev == dev) return m.fstype;
  }
  return "";
}

Result<ima::PolicyAccess> BuildAccess(const ExplainArgs& a, std::vector<std::string>* notes,
                                      std::vector<std::string>* storage) {
  ima::PolicyAccess acc;
  LIM_ASSIGN_OR_RETURN(acc.func, ima::ImaHookByName(a.func, /*allow_internal=*/true));
  if (a.mask.empty()) {
    acc.mask = ima::DefaultMask(acc.func);
  } else {
    LIM_ASSIGN_OR_RETURN(acc.mask, ParseMask(a.mask));
  }
  acc.uid = a.uid.value_or(0);
  acc.euid = a.euid.value_or(acc.uid);
  acc.suid = a.suid.value_or(acc.euid);
  acc.gid = a.gid.value_or(0);
  acc.egid = a.egid.value_or(acc.gid);
  acc.sgid = a.sgid.value_or(acc.egid);
  acc.cap_setuid = a.cap_setuid;
  acc.cap_setgid = a.cap_setgid;

  // Inode and superblock facts come from the path when it exists; flags override them.
  struct stat st {};
  bool have_stat = !a.path.empty() && ::stat(a.path.c_str(), &st) == 0;
  storage->reserve(16);  // string_views into storage must stay valid
  if (have_stat) {
    struct statfs sfs {};
    if (::statfs(a.path.c_str(), &sfs) == 0) acc.fsmagic = static_cast<uint64_t>(sfs.f_type);
    acc.fowner = st.st_uid;
    acc.fgroup = st.st_gid;
    storage->push_back(FsTypeOfDevice(st.st_dev));
    acc.fsname = storage->back();
    notes->push_back("inode facts from " + a.path);
  }
  if (a.fowner) acc.fowner = *a.fowner;
  if (a.fgroup) acc.fgroup = *a.fgroup;
  if (!a.fsmagic.empty()) {
    bool named = false;
    for (const KnownFs& fs : kKnownFs) {
      if (a.fsmagic == fs.name) {
        acc.fsmagic = fs.magic;
        storage->push_back(fs.name);
        if (a.fsname.empty()) acc.fsname = storage->back();
        named = true;
      }
    }
    if (!named) {
      char* end = nullptr;
      unsigned long long v = std::strtoull(a.fsmagic.c_str(), &end, 16);
      if (!end || *end || a.fsmagic.empty()) {
        return Status::InvalidArgument("--fsmagic: '" + a.fsmagic + "' is neither a hex number nor a known filesystem");
      }
      acc.fsmagic = v;
    }
  }
  if (!a.fsname.empty()) acc.fsname = a.fsname;
  if (!a.fsuuid.empty()) {
    LIM_ASSIGN_OR_RETURN(ima::Policy probe, ima::ParsePolicy("measure fsuuid=" + a.fsuuid, "--fsuuid"));
    acc.fsuuid = probe.rules[0].fsuuid;
  }
  for (const std::string& l : a.labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos) {
      storage->push_back(l);
      acc.func_data = storage->back();
      acc.has_func_data = true;
      continue;
    }
    std::string key = l.substr(0, eq), value = l.substr(eq + 1);
    if (key == "obj" || key == "subj") {
      // A full SELinux context user:role:type[:level].
      std::istringstream parts(value);
      std::string user, role, type;
      std::getline(parts, user, ':');
      std::getline(parts, role, ':');
      std::getline(parts, type, ':');
      int base = key == "obj" ? ima::kObjUser : ima::kSubjUser;
      for (const std::string* v : {&user, &role, &type}) {
        storage->push_back(*v);
        acc.lsm[static_cast<size_t>(base++)] = storage->back();
      }
      continue;
    }
    int field = -1;
    for (int f = 0; f < ima::kLsmFieldCount; ++f) {
      if (ima::LsmFieldName(f) == key) field = f;
    }
    if (field < 0) {
      return Status::InvalidArgument("--label " + l +
                                     ": KEY must be obj_user, obj_role, obj_type, subj_user, subj_role, subj_type, "
                                     "obj or subj (or give a keyring/critical-data label without '=')");
    }
    storage->push_back(value);
    acc.lsm[static_cast<size_t>(field)] = storage->back();
  }
  if (!a.keyring.empty()) {
    storage->push_back(a.keyring);
    acc.func_data = storage->back();
    acc.has_func_data = true;
  }
  if (storage->size() > 16) return Status::InvalidArgument("too many --label options (at most 12)");
  return acc;
}

std::string MaskName(uint32_t mask) { return ima::may::MaskText(mask, "none"); }

std::string FlagsText(uint32_t action) {
  using namespace ima;
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if (action & bit) s += s.empty() ? name : std::string(" ") + name;
  };
  add(rule_flag::kDigsigRequired, "digsig_required");
  add(rule_flag::kModsigAllowed, "modsig_allowed");
  add(rule_flag::kCheckBlacklist, "check_blacklist");
  add(rule_flag::kVerityRequired, "verity_required");
  add(rule_flag::kPermitDirectio, "permit_directio");
  add(rule_flag::kFailUnverifiableSigs, "fail_unverifiable_sigs");
  add(appraise_sub::kFile, "file_appraise");
  add(appraise_sub::kMmap, "mmap_appraise");
  add(appraise_sub::kBprm, "bprm_appraise");
  add(appraise_sub::kRead, "read_appraise");
  add(appraise_sub::kCreds, "creds_appraise");
  return s.empty() ? "none" : s;
}

int RunExplain(const ExplainArgs& a) {
  Result<ima::Policy> p = LoadSource(a.source);
  if (!p.ok()) return ReportError(p.status());
  std::vector<std::string> notes;
  std::vector<std::string> storage;
  Result<ima::PolicyAccess> acc = BuildAccess(a, &notes, &storage);
  if (!acc.ok()) return ReportError(acc.status());
  ima::PolicyMatcher matcher(*p);
  ima::PolicyDecision d = matcher.Decide(*acc);

  for (int c = 0; c < ima::kActionClassCount; ++c) {
    auto cls = static_cast<ima::ActionClass>(c);
    const ima::ClassDecision& cd = d.classes[static_cast<size_t>(c)];
    std::string line = std::string(ima::ActionClassName(cls)) + ": ";
    if (cd.rule < 0) {
      line += "no (no rule matched)";
    } else {
      const ima::PolicyRule& r = matcher.rule(static_cast<size_t>(cd.rule));
      line += std::string(cd.yes ? "yes" : "no") + " rule " + std::to_string(cd.rule + 1) + ": " +
              Trimmed(ima::ShowRule(r));
      if (!cd.yes && (r.action & ima::action::kDoMask)) line += " (cleared by the appraise rule)";
    }
    std::printf("%s\n", line.c_str());
  }
  // limd's own state files are its securityfs (docs/limd.md "limd does not measure its own
  // state files"): whatever the policy says, limd records no FILE_CHECK of them.
  bool own = acc->func == ima::ImaHook::kFileCheck && !a.path.empty() && InStateDir(a.path, a.state);
  if (own) {
    std::printf("limd: not measured if limd wrote it: %s is in limd's state directory %s, and limd never measures "
                "its own state files at FILE_CHECK\n",
                a.path.c_str(), a.state.c_str());
  }
  if (!a.verbose) return kExitOk;

  const ima::PolicyAccess& x = *acc;
  std::printf("inputs: func=%s mask=0x%x (%s) uid=%u euid=%u suid=%u gid=%u egid=%u sgid=%u%s%s fowner=%u fgroup=%u "
              "fsmagic=0x%llx fsname=%s\n",
              std::string(ima::ImaHookName(x.func)).c_str(), x.mask, MaskName(x.mask).c_str(), x.uid, x.euid, x.suid, x.gid, x.egid, x.sgid,
              x.cap_setuid ? " CAP_SETUID" : "", x.cap_setgid ? " CAP_SETGID" : "", x.fowner, x.fgroup,
              static_cast<unsigned long long>(x.fsmagic), std::string(x.fsname).c_str());
  for (const std::string& n : notes) std::printf("note: %s\n", n.c_str());
  std::printf("note: limd excludes the files it writes in its state directory %s (the list, status.json, …) from "
              "FILE_CHECK, as the kernel never measures its securityfs list\n",
              a.state.c_str());
  std::printf("pcr: %s\n", d.pcr < 0 ? "default" : std::to_string(d.pcr).c_str());
  std::printf("template: %s\n", d.template_name ? d.template_name->c_str() : "default");
  std::printf("flags: %s\n", FlagsText(d.action).c_str());
  for (size_t i = 0; i < matcher.size(); ++i) {
    const ima::PolicyRule& r = matcher.rule(i);
    int c = static_cast<int>(ima::ClassOfAction(r.action));
    const ima::ClassDecision& cd = d.classes[static_cast<size_t>(c)];
    std::string cls(ima::ActionClassName(static_cast<ima::ActionClass>(c)));
    std::string why = matcher.Mismatch(i, x);
    if (!cd.considered) {
      why = "not consulted (the policy has no " + cls + " rule, so the kernel does not ask)";
    } else if (why.empty()) {
      why = cd.rule == static_cast<int>(i) ? "matches: decides " + cls
                                           : "matches, but " + cls + " was decided by rule " + std::to_string(cd.rule + 1);
    }
    std::printf("rule %zu: %s: %s\n", i + 1, Trimmed(ima::ShowRule(r)).c_str(), why.c_str());
  }
  return kExitOk;
}

// `lim policy learn LIST`: a runtime policy (reference values for a verifier) allowing every
// file, ima-buf and keyring entry of a known-good list; with a dpkg database, every learned
// path an installed package owns records that package and its installed version (the native
// form's provenance, source "tofu": the digest is what the host ran, not one read from a .deb).
struct LearnArgs {
  std::string list;
  std::string format = "native";
  std::string out;
  std::string admindir = "/var/lib/dpkg";
  bool admindir_given = false;
  std::string root = "/";
};

// Adds owners from the dpkg database to every path of p an installed package owns; returns
// how many paths got one.
size_t AddDpkgOwners(const debs::DpkgDb& db, attest::RuntimePolicy* p) {
  size_t owned = 0;
  for (const std::string& path : p->PathNames()) {
    auto o = db.OwnerOf(path);
    if (!o) continue;
    const std::string& name = o->package->name;
    const std::string& version = o->package->version;
    attest::PackageInfo info;
    if (auto it = p->packages().find(name); it != p->packages().end()) info = it->second;
    if (std::find(info.versions.begin(), info.versions.end(), version) == info.versions.end()) {
      info.versions.push_back(version);
      // Newest first (several architectures of a Multi-Arch package may differ).
      std::sort(info.versions.begin(), info.versions.end(),
                [](const std::string& a, const std::string& b) { return debs::CompareVersions(a, b) > 0; });
    }
    info.installed = info.versions.front();
    info.source = "tofu";
    p->SetPackage(name, std::move(info));
    std::vector<std::string> digests = *p->PathDigests(path);
    for (const std::string& d : digests) p->AllowPackageFile(path, name, version, Bytes(d.begin(), d.end()));
    ++owned;
  }
  return owned;
}

int RunLearn(const LearnArgs& a) {
  // The dpkg database: the default one only when it is there; one the user named must load.
  auto loaded = debs::DpkgDb::LoadOptional({a.admindir, a.root}, a.admindir_given);
  if (!loaded.ok()) return ReportError(loaded.status());
  std::optional<debs::DpkgDb>& db = *loaded;
  auto data = MappedFile::Open(a.list);
  if (!data.ok()) return ReportError(data.status());
  uint64_t entries = 0;
  auto p = attest::LearnPolicy(data->data(), &entries);
  if (!p.ok()) return ReportError(p.status().WithPrefix(a.list));
  size_t owned = db ? AddDpkgOwners(*db, &*p) : 0;
  std::vector<std::string> lost;
  std::string json = a.format == "keylime" ? p->ToKeylimeJson(&lost) : p->ToNativeJson();
  json += "\n";
  if (a.out.empty()) {
    std::fwrite(json.data(), 1, json.size(), stdout);
  } else if (Status st = WriteFileBytes(a.out, AsBytes(json)); !st.ok()) {
    return ReportError(st);
  }
  std::fprintf(stderr, "lim: learned %llu entries: %zu paths", static_cast<unsigned long long>(entries), p->paths());
  if (db) std::fprintf(stderr, ", %zu owned by %zu packages", owned, p->packages().size());
  std::fprintf(stderr, "\n");
  return kExitOk;
}

// `lim policy diff A B`: what B allows that A did not, and what A allowed that B forbids
// (attest/policy_diff.h). Exit 0 identical in effect, 1 different, 2 bad input.
struct DiffArgs {
  std::string a, b;
  std::string format = "text";
};

int RunDiff(const DiffArgs& d) {
  attest::RuntimePolicy policies[2];
  const std::string* files[2] = {&d.a, &d.b};
  for (int i = 0; i < 2; ++i) {
    auto text = ReadFileTextBounded(*files[i], 256u << 20, "a runtime policy");
    if (!text.ok()) return ReportError(text.status());
    auto p = attest::RuntimePolicy::FromJson(*text);
    if (!p.ok()) return ReportError(p.status().WithPrefix(Escaped(*files[i])));
    policies[i] = std::move(p).value();
  }
  auto items = attest::DiffPolicies(policies[0], policies[1]);
  std::string out = d.format == "json" ? attest::DiffJson(items) + "\n" : attest::DiffText(items);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return items.empty() ? kExitOk : kExitCheckFailed;
}

// `lim policy learn-boot EVENTLOG`: the boot part of a runtime policy ("boot": S-CRTM,
// firmware, shim, grub, kernel, initrd, kernel command line, Secure Boot keys) from a
// known-good firmware event log, alone or added to an existing policy (--policy).
struct LearnBootArgs {
  std::string log;
  std::string base;
  std::string bank;
  bool no_secure_boot = false;
  std::string out;
};

int RunLearnBoot(const LearnBootArgs& a) {
  auto loaded = tcg::LoadEventLog(a.log);
  if (!loaded.ok()) return ReportError(loaded.status());
  uint16_t bank = 0;
  if (!a.bank.empty()) {
    auto algo = HashAlgoByName(a.bank);
    if (!algo.ok() || algo->tpm_alg == 0) return ReportError(Status::InvalidArgument("--bank " + a.bank + ": not a TPM bank name"));
    bank = algo->tpm_alg;
  }
  auto boot = attest::LearnBootPolicy(loaded->log, bank);
  if (!boot.ok()) return ReportError(boot.status().WithPrefix(a.log));
  if (a.no_secure_boot) boot->set_secure_boot(false);
  attest::RuntimePolicy p;
  if (!a.base.empty()) {
    auto text = ReadFileTextBounded(a.base, 256 << 20, "policy");
    if (!text.ok()) return ReportError(text.status());
    auto base = attest::RuntimePolicy::FromJson(*text);
    if (!base.ok()) return ReportError(base.status().WithPrefix(a.base));
    p = std::move(base).value();
  }
  std::fprintf(stderr, "lim: learned from %zu events: shim %zu, grub %zu, kernel %zu, initrd %zu digests; secure_boot %s\n",
               loaded->log.events.size(), boot->allowed("shim").size(), boot->allowed("grub").size(),
               boot->allowed("kernel").size(), boot->allowed("initrd").size(), boot->secure_boot() ? "required" : "not required");
  p.SetBoot(std::move(boot).value());
  std::string json = p.ToNativeJson() + "\n";
  if (a.out.empty()) {
    std::fwrite(json.data(), 1, json.size(), stdout);
  } else if (Status st = WriteFileBytes(a.out, AsBytes(json)); !st.ok()) {
    return ReportError(st);
  }
  return kExitOk;
}

void RegisterPolicy(CLI::App& app) {
  CLI::App* policy = app.add_subcommand("policy", "IMA policies: check, show (kernel read-back), explain decisions");
  policy->require_subcommand(1);

  static std::string check_file;
  CLI::App* check = policy->add_subcommand(
      "check", "Exit 0 if the reference kernel accepts every rule; else print FILE:LINE:COL: message per bad rule, exit 1");
  check->add_option("FILE", check_file, "policy file")->required();
  check->callback([] { ExitCode() = RunCheck(check_file); });

  static PolicySource show_source;
  CLI::App* show = policy->add_subcommand("show", "Print the policy as the kernel prints its policy file");
  AddSourceOptions(show, &show_source);
  show->callback([] { ExitCode() = RunShow(show_source); });

  static ExplainArgs ea;
  CLI::App* explain = policy->add_subcommand(
      "explain", "Decide an access the kernel's way: one line per action class (measure, appraise, audit, hash)");
  AddSourceOptions(explain, &ea.source);
  explain->add_option("--func", ea.func, "IMA hook: FILE_CHECK, BPRM_CHECK, MMAP_CHECK, … (aliases FILE_MMAP, PATH_CHECK; POST_SETATTR)")
      ->required();
  explain->add_option("--mask", ea.mask, "requested access, e.g. MAY_READ|MAY_WRITE (default: the hook's own)");
  explain->add_option("--path", ea.path, "file; when it exists, owner, group, fsmagic and fsname default from it");
  explain->add_option("--uid", ea.uid, "task real uid (default 0)");
  explain->add_option("--euid", ea.euid, "effective uid (default: uid)");
  explain->add_option("--suid", ea.suid, "saved uid (default: euid)");
  explain->add_option("--gid", ea.gid, "task real gid (default 0)");
  explain->add_option("--egid", ea.egid, "effective gid (default: gid)");
  explain->add_option("--sgid", ea.sgid, "saved gid (default: egid)");
  explain->add_flag("--cap-setuid", ea.cap_setuid, "task has CAP_SETUID (euid= then also matches suid and uid)");
  explain->add_flag("--cap-setgid", ea.cap_setgid, "task has CAP_SETGID (egid= then also matches sgid and gid)");
  explain->add_option("--fowner", ea.fowner, "inode owner");
  explain->add_option("--fgroup", ea.fgroup, "inode group");
  explain->add_option("--fsmagic", ea.fsmagic, "superblock magic (hex) or a filesystem name (tmpfs, proc, ext4, …)");
  explain->add_option("--fsuuid", ea.fsuuid, "superblock UUID");
  explain->add_option("--fsname", ea.fsname, "filesystem type name (tmpfs, ext4, …)");
  explain->add_option("--label", ea.labels,
                      "LSM label KEY=VALUE (obj_type=etc_t, subj_user=…, obj=u:r:t:s0, subj=…); without '=': "
                      "the keyring (KEY_CHECK) or data label (CRITICAL_DATA)");
  explain->add_option("--keyring", ea.keyring, "keyring name for KEY_CHECK, data label for CRITICAL_DATA");
  explain->add_option("--state", ea.state,
                      "limd's state directory (default /var/lib/lim): limd does not measure its own files there at "
                      "FILE_CHECK");
  explain->add_flag("-v,--verbose", ea.verbose, "also print inputs, pcr, template, flags and why each rule does not match");
  explain->callback([] { ExitCode() = RunExplain(ea); });

  static LearnArgs la;
  CLI::App* learn = policy->add_subcommand(
      "learn", "Write a runtime policy (verifier reference values) allowing every entry of a known-good binary list");
  learn->add_option("LIST", la.list, "binary measurement list")->required();
  learn->add_option("--format", la.format, "native (lim) or keylime (keylime runtime policy JSON)")
      ->check(CLI::IsMember({"native", "keylime"}));
  learn->add_option("-o,--out", la.out, "write here instead of standard output");
  static CLI::Option* learn_admindir = learn->add_option(
      "--admindir", la.admindir,
      "dpkg database giving learned paths their package and version (default /var/lib/dpkg when present; \"\": none)");
  learn->add_option("--root", la.root, "host root whose /bin, /lib, … links to /usr map names to dpkg's (default /)");
  learn->callback([] {
    la.admindir_given = learn_admindir->count() > 0;
    ExitCode() = RunLearn(la);
  });

  static DiffArgs da;
  CLI::App* diff = policy->add_subcommand(
      "diff", "What runtime policy B allows that A does not (+) and what it no longer allows (-); exit 0 identical "
              "in effect, 1 different, 2 bad input");
  diff->add_option("A", da.a, "the old policy (native or keylime JSON)")->required();
  diff->add_option("B", da.b, "the new policy (native or keylime JSON)")->required();
  diff->add_option("--format", da.format, "text (one change a line) or json")->check(CLI::IsMember({"text", "json"}));
  diff->callback([] { ExitCode() = RunDiff(da); });
  RegisterPolicyDebs(policy);

  static LearnBootArgs lb;
  CLI::App* learn_boot = policy->add_subcommand(
      "learn-boot", "Write the boot part of a runtime policy (shim, grub, kernel, initrd, Secure Boot) from a known-good "
                    "firmware event log");
  learn_boot->add_option("EVENTLOG", lb.log, "binary_bios_measurements file")->required();
  learn_boot->add_option("--policy", lb.base, "add to this runtime policy (native or keylime JSON); output is native");
  learn_boot->add_option("--bank", lb.bank, "digest bank of the references (default sha256, else the log's first)");
  learn_boot->add_flag("--no-secure-boot", lb.no_secure_boot, "do not require Secure Boot even when the log has it on");
  learn_boot->add_option("-o,--out", lb.out, "write here instead of standard output");
  learn_boot->callback([] { ExitCode() = RunLearnBoot(lb); });
}

}  // namespace

LIM_REGISTER_COMMAND(RegisterPolicy);

}  // namespace lim::cli
