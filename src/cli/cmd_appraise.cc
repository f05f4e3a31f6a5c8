// `lim sign`, `lim hash`, `lim appraise`, `lim evm sign|verify|hmac`, `lim keys list`:
// security.ima / security.evm from the command line, without limd (issue 13, first part).
// Formats and decisions live in src/ima (ima_xattr, evm, appraise) and src/crypto
// (private_key, key_ring, fsverity); this file reads arguments, walks files and prints.
// Semantics follow evmctl where it has the command (ima_sign, ima_hash, ima_verify, sign,
// verify, hmac).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include "base/escape.h"
#include "base/file.h"
#include "cli/cmd_evm_key.h"
#include "cli/command.h"
#include "crypto/digest.h"
#include "crypto/fsverity.h"
#include "crypto/key_ring.h"
#include "crypto/private_key.h"
#include "debs/file_hint.h"
#include "ima/appraise.h"
#include "ima/evm.h"
#include "ima/ima_xattr.h"
#include "ima/policy.h"
#include "ima/policy_builtin.h"
#include "ima/policy_match.h"
#include "refs/tree_walk.h"

namespace lim::cli {

namespace {

// An open file, closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Result<std::unique_ptr<Fd>> OpenFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Status::NotFound(path + ": open: " + std::strerror(errno));
  auto f = std::make_unique<Fd>(fd);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Status::InvalidArgument(path + ": not a regular file");
  return f;
}

// The files named; with recursive, the regular files under directories (refs/tree_walk.h:
// links are not followed, as `lim scan`).
Result<std::vector<std::string>> ExpandFiles(const std::vector<std::string>& args, bool recursive) {
  if (recursive) return refs::RegularFilesUnder(args);
  for (const auto& a : args) {
    std::error_code ec;
    if (std::filesystem::is_directory(a, ec)) return Status::InvalidArgument(a + ": is a directory (use -r)");
  }
  return args;
}

Status SetXattr(int fd, const char* name, ByteView value, const std::string& what) {
  if (fsetxattr(fd, name, value.data(), value.size(), 0) != 0) {
    return Status::IoError(what + ": setxattr " + name + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string KeyIdHex(uint32_t id) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", id);
  return b;
}

// ---- fs UUID and protected names for EVM ----

// What goes into an EVM HMAC or signature beside the file: the filesystem UUID and the
// names a kernel (or limd --evm-xattr) protects beyond the defaults.
struct UuidArgs {
  std::string uuid;  // "" = detect
  bool no_uuid = false;
  std::vector<std::string> evm_xattrs;  // added names, as written to evm_xattrs, in order
};

void AddUuidOptions(CLI::App* cmd, UuidArgs* u) {
  cmd->add_option("--uuid", u->uuid, "filesystem UUID hashed into HMACs and non-portable signatures (default: read from the filesystem)");
  cmd->add_flag("--no-uuid", u->no_uuid, "hash no UUID (a kernel without CONFIG_EVM_ATTR_FSUUID; evmctl --uuid=)");
  cmd->add_option("--evm-xattr", u->evm_xattrs,
                  "a security.* xattr EVM protects beside the defaults, as the kernel's evm_xattrs and limd --evm-xattr "
                  "(repeatable; hashed after security.capability, in the order given)");
}

// The protected names in hashing order for u's --evm-xattr (empty: the defaults), by the
// kernel's rules for evm_xattrs (ima::EvmXattrList).
Result<std::vector<std::string>> EvmNames(const UuidArgs& u) {
  if (u.evm_xattrs.empty()) return std::vector<std::string>();
  ima::EvmXattrList list;
  for (const auto& n : u.evm_xattrs) {
    switch (list.Add(n)) {  // as limd refuses its --evm-xattr
      case ima::EvmXattrList::AddResult::kNotSecurity:
        return Status::InvalidArgument("--evm-xattr " + n + ": not a security.* xattr (the kernel's evm_xattrs takes no other)");
      case ima::EvmXattrList::AddResult::kExists:
        return Status::InvalidArgument("--evm-xattr " + n + ": protected already");
      default:
        break;
    }
  }
  return list.Enabled();
}

Result<std::optional<ima::FsUuid>> UuidFor(const UuidArgs& u, int fd, const std::string& what) {
  if (u.no_uuid) return std::optional<ima::FsUuid>();
  if (!u.uuid.empty()) {
    LIM_ASSIGN_OR_RETURN(ima::FsUuid id, ima::ParseFsUuid(u.uuid));
    return std::optional<ima::FsUuid>(id);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::IoError(what + ": fstat: " + std::strerror(errno));
  auto id = ima::FilesystemUuid(st.st_dev);
  if (!id.ok()) return Status(id.status().code(), what + ": " + id.status().message());
  return std::optional<ima::FsUuid>(*id);
}

// The trusted keys: a missing default directory is an empty key ring (no key trusted, said
// on stderr); a directory given by hand must exist.
Result<KeyRing> LoadKeys(const std::string& path) {
  auto ring = KeyRing::Load(path);
  if (!ring.ok() && ring.status().code() == StatusCode::kNotFound && path == kDefaultKeyDir) {
    std::fprintf(stderr, "lim: note: %s does not exist: no key is trusted\n", kDefaultKeyDir);
    return KeyRing();
  }
  if (ring.ok()) {
    for (const auto& p : ring->problems()) std::fprintf(stderr, "lim: warning: %s\n", Escaped(p).c_str());
  }
  return ring;
}

// The EVM configuration with the file's filesystem UUID. Only HMACs and 0x03 signatures
// hash it, so a failure to find it is recorded, and fails only those.
ima::EvmConfig WithUuid(const ima::EvmConfig& evm, const UuidArgs& uuid, int fd, const std::string& file) {
  ima::EvmConfig e = evm;
  auto u = UuidFor(uuid, fd, file);
  if (u.ok()) e.fsuuid = *u;
  else e.fsuuid_error = u.status().message() + "; give --uuid or --no-uuid";
  return e;
}

// Opens each file and runs check on it: exit 0 when every check passes, 1 when one does
// not, 2 (and stop) on a file that cannot be opened or read.
int ForEachFile(const std::vector<std::string>& files, const std::function<Result<bool>(const std::string&, int)>& check) {
  int rc = kExitOk;
  for (const auto& file : files) {
    auto f = OpenFile(file);
    if (!f.ok()) return ReportError(f.status());
    auto ok = check(file, (*f)->get());
    if (!ok.ok()) return ReportError(ok.status());
    if (!*ok) rc = kExitCheckFailed;
  }
  return rc;
}

Result<Bytes> LoadHmacKey(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(Bytes key, ReadFileBounded(path, ima::kEvmMaxKeySize, "an EVM HMAC key"));
  if (key.empty()) return Status::InvalidArgument(path + ": empty EVM HMAC key");
  return key;
}

// ---- sign ----

struct SignArgs {
  std::vector<std::string> files;
  std::string key, cert, hash = "sha256";
  bool portable = false, evm = false, recursive = false, verity = false;
  UuidArgs uuid;
};

Status EvmSignOne(int fd, const std::string& file, const PrivateKey& key, const HashAlgo& algo, bool portable,
                  const UuidArgs& uuid) {
  LIM_ASSIGN_OR_RETURN(std::vector<std::string> names, EvmNames(uuid));
  LIM_ASSIGN_OR_RETURN(ima::EvmInputs in, ima::ReadEvmInputs(fd, file, names));
  if (!portable) {
    LIM_ASSIGN_OR_RETURN(in.fsuuid, UuidFor(uuid, fd, file));
  }
  auto d = ima::EvmDigest(algo, in, portable);
  if (!d.ok()) return Status(d.status().code(), file + ": " + d.status().message());
  LIM_ASSIGN_OR_RETURN(Bytes sig, key.SignDigest(algo, *d));
  uint8_t type = portable ? ima::kEvmXattrPortableDigsig : ima::kXattrDigsig;
  LIM_ASSIGN_OR_RETURN(Bytes value, ima::MakeSignatureV2(type, 2, algo, key.key_id(), sig));
  LIM_RETURN_IF_ERROR(SetXattr(fd, ima::kEvmXattrName, value, file));
  std::printf("%s: security.evm %s %s signature by key %s\n", Escaped(file).c_str(), portable ? "0x05 portable" : "0x03",
              algo.kernel_name, KeyIdHex(key.key_id()).c_str());
  return Status::Ok();
}

int RunSign(const SignArgs& a, bool ima, bool evm) {
  auto algo = HashAlgoByName(a.hash);
  if (!algo.ok()) return ReportError(algo.status());
  if (!HashAlgoAvailable(*algo) || algo->kernel_id < 0) return ReportError(Status::InvalidArgument("--hash " + a.hash + ": not usable here"));
  auto key = PrivateKey::Load(a.key, a.cert);
  if (!key.ok()) return ReportError(key.status());
  auto files = ExpandFiles(a.files, a.recursive);
  if (!files.ok()) return ReportError(files.status());
  for (const auto& file : *files) {
    auto f = OpenFile(file);
    if (!f.ok()) return ReportError(f.status());
    int fd = (*f)->get();
    if (ima) {
      Result<Bytes> digest = a.verity ? FsVerityDigest(*algo, fd, file) : DigestFd(*algo, fd, file);
      if (!digest.ok()) return ReportError(digest.status());
      Bytes to_sign = *digest;
      if (a.verity) {
        auto h = ima::VeritySignedDigest(*algo, *digest);
        if (!h.ok()) return ReportError(h.status());
        to_sign = *h;
      }
      auto sig = key->SignDigest(*algo, to_sign);
      if (!sig.ok()) return ReportError(sig.status());
      auto value = a.verity ? ima::MakeSignatureV2(ima::kXattrVeritySig, 3, *algo, key->key_id(), *sig)
                            : ima::MakeSignatureV2(ima::kXattrDigsig, 2, *algo, key->key_id(), *sig);
      if (!value.ok()) return ReportError(value.status());
      Status s = SetXattr(fd, ima::kImaXattrName, *value, file);
      if (!s.ok()) return ReportError(s);
      std::printf("%s: security.ima %s %s signature by key %s\n", Escaped(file).c_str(), a.verity ? "0x06 v3 fs-verity" : "0x03 v2",
                  algo->kernel_name, KeyIdHex(key->key_id()).c_str());
    }
    if (evm) {
      Status s = EvmSignOne(fd, file, *key, *algo, a.portable, a.uuid);
      if (!s.ok()) return ReportError(s);
    }
  }
  return kExitOk;
}

// ---- hash ----

struct HashArgs {
  std::vector<std::string> files;
  std::string hash = "sha256";
  bool fix = false, recursive = false, verity = false;
};

int RunHash(const HashArgs& a) {
  auto algo = HashAlgoByName(a.hash);
  if (!algo.ok()) return ReportError(algo.status());
  if (!HashAlgoAvailable(*algo) || algo->kernel_id < 0) return ReportError(Status::InvalidArgument("--hash " + a.hash + ": not usable here"));
  auto files = ExpandFiles(a.files, a.recursive);
  if (!files.ok()) return ReportError(files.status());
  for (const auto& file : *files) {
    auto f = OpenFile(file);
    if (!f.ok()) return ReportError(f.status());
    if (a.verity) {
      // `fsverity digest` output: what sigv3 signatures cover.
      auto v = FsVerityDigest(*algo, (*f)->get(), file);
      if (!v.ok()) return ReportError(v.status());
      std::printf("%s:%s %s\n", algo->kernel_name, ToHex(*v).c_str(), Escaped(file).c_str());
      continue;
    }
    auto d = DigestFd(*algo, (*f)->get(), file);
    if (!d.ok()) return ReportError(d.status());
    Bytes value = ima::MakeImaDigestXattr(*algo, *d);
    if (a.fix) {
      // As the kernel's fix mode: never over a signature.
      auto old = ima::ReadXattr((*f)->get(), ima::kImaXattrName, ima::kMaxImaXattrSize, file);
      if (old.ok() && *old && !old->value().empty() &&
          (old->value()[0] == ima::kXattrDigsig || old->value()[0] == ima::kXattrVeritySig)) {
        std::fprintf(stderr, "lim: %s: security.ima holds a signature; not replaced\n", Escaped(file).c_str());
      } else {
        Status s = SetXattr((*f)->get(), ima::kImaXattrName, value, file);
        if (!s.ok()) return ReportError(s);
      }
    }
    std::printf("%s  %s\n", ToHex(value).c_str(), Escaped(file).c_str());
  }
  return kExitOk;
}

// ---- appraise ----

struct AppraiseArgs {
  std::vector<std::string> files;
  std::string policy, builtin, func = "FILE_CHECK", keys = kDefaultKeyDir, evm_keys, hmac_key;
  bool imasig = false, evm = false, quiet = false;
  UuidArgs uuid;
  std::string admindir = "/var/lib/dpkg";  // remediation hints from the package database ("" = none)
};

struct Decision {
  bool appraise = true;
  std::string rule;  // shown
  ima::AppraiseRequirements req;
};

Result<Decision> Decide(const ima::PolicyMatcher* m, ima::ImaHook func, int fd, const std::string& file) {
  Decision d;
  if (!m) {
    d.rule = "no policy given: appraised";
    return d;
  }
  struct stat st;
  struct statfs sfs;
  if (fstat(fd, &st) != 0 || fstatfs(fd, &sfs) != 0) return Status::IoError(file + ": stat: " + std::strerror(errno));
  ima::PolicyAccess acc;
  acc.func = func;
  acc.mask = ima::DefaultMask(func);
  acc.uid = acc.suid = getuid();
  acc.euid = geteuid();
  acc.gid = acc.sgid = getgid();
  acc.egid = getegid();
  acc.fowner = st.st_uid;
  acc.fgroup = st.st_gid;
  acc.fsmagic = static_cast<uint64_t>(sfs.f_type);
  auto mount = ima::MountOfDevice(st.st_dev);
  std::string fsname = mount.ok() ? mount->type : "";
  acc.fsname = fsname;
  if (auto u = ima::FilesystemUuid(st.st_dev); u.ok()) acc.fsuuid = *u;
  ima::PolicyDecision pd = m->Decide(acc, ima::action::kAppraise);
  const ima::ClassDecision& c = pd.of(ima::ActionClass::kAppraise);
  d.appraise = c.yes;
  if (c.rule < 0) {
    d.rule = "no appraise rule matches";
  } else {
    std::string text = ima::ShowRule(m->rule(static_cast<size_t>(c.rule)));
    while (!text.empty() && text.back() == ' ') text.pop_back();
    d.rule = "rule " + std::to_string(c.rule + 1) + ": " + text;
  }
  d.req.signature_required = pd.action & ima::rule_flag::kDigsigRequired;
  d.req.verity_required = pd.action & ima::rule_flag::kVerityRequired;
  d.req.allowed_algos = pd.allowed_algos;
  return d;
}

// Under a failure: the package that owns the file and what to do (debs/file_hint.h). The
// database is loaded once, at the first failure; a host without one gets no hints.
void PrintPackageHints(const std::string& admindir, const std::string& file, int fd) {
  static std::optional<Result<debs::DpkgDb>> db;
  if (admindir.empty()) return;
  if (!db) db = debs::DpkgDb::Load({admindir, "/"});
  if (!db->ok()) return;
  std::error_code ec;
  std::string abs = std::filesystem::weakly_canonical(std::filesystem::absolute(file, ec), ec).string();
  for (const auto& line : debs::FileHints(**db, abs.empty() ? file : abs, fd)) {
    std::printf("  %s\n", line.c_str());  // escaped by FileHints
  }
}

int RunAppraise(const AppraiseArgs& a) {
  std::optional<ima::Policy> policy;
  if (!a.policy.empty() && !a.builtin.empty()) return ReportError(Status::InvalidArgument("give either --policy or --builtin"));
  if (!a.policy.empty() || !a.builtin.empty()) {
    auto p = a.policy.empty() ? ima::BuiltinPolicy(a.builtin) : ima::LoadPolicyFile(a.policy);
    if (!p.ok()) return ReportError(p.status());
    policy = std::move(p).value();
  }
  std::unique_ptr<ima::PolicyMatcher> matcher;
  if (policy) matcher = std::make_unique<ima::PolicyMatcher>(*policy);
  auto func = ima::ImaHookByName(a.func);
  if (!func.ok()) return ReportError(func.status());
  auto keys = LoadKeys(a.keys);
  if (!keys.ok()) return ReportError(keys.status());
  KeyRing evm_keys;
  if (!a.evm_keys.empty()) {
    auto k = LoadKeys(a.evm_keys);
    if (!k.ok()) return ReportError(k.status());
    evm_keys = std::move(k).value();
  }
  ima::EvmConfig evm;
  evm.enabled = a.evm || !a.hmac_key.empty() || !a.evm_keys.empty();
  auto names = EvmNames(a.uuid);
  if (!names.ok()) return ReportError(names.status());
  evm.names = std::move(names).value();
  evm.keys = a.evm_keys.empty() ? &keys->keys() : &evm_keys.keys();
  if (!a.hmac_key.empty()) {
    auto k = LoadHmacKey(a.hmac_key);
    if (!k.ok()) return ReportError(k.status());
    evm.hmac_key = std::move(k).value();
  }
  return ForEachFile(a.files, [&](const std::string& file, int fd) -> Result<bool> {
    LIM_ASSIGN_OR_RETURN(Decision d, Decide(matcher.get(), *func, fd, file));
    if (a.imasig) d.req.signature_required = true;
    std::string name = Escaped(file);
    if (!d.appraise) {
      std::printf("%s: not appraised (%s)\n", name.c_str(), Escaped(d.rule).c_str());
      return true;
    }
    ima::EvmConfig e = evm.enabled ? WithUuid(evm, a.uuid, fd, file) : evm;
    ima::Appraisal r = ima::AppraiseFile(fd, file, d.req, keys->keys(), e);
    if (r.pass) {
      std::printf("%s: pass\n", name.c_str());
    } else {
      std::printf("%s: fail cause=%s\n", name.c_str(), r.cause.c_str());
    }
    if (a.quiet) return r.pass;
    std::printf("  rule: %s%s\n", Escaped(d.rule).c_str(), d.req.signature_required ? " (signature required)" : "");
    if (!r.form.empty()) std::printf("  security.ima: %s\n", r.form.c_str());
    if (!r.evm_status.empty()) std::printf("  evm: %s\n", r.evm_status.c_str());
    if (!r.key.empty()) std::printf("  key: %s\n", Escaped(r.key).c_str());
    std::printf("  %s: %s\n", r.pass ? "check" : r.xattr.c_str(), Escaped(r.detail).c_str());
    if (!r.pass) {
      // The kernel's audit line (integrity_audit_msg), for logs that grep for it.
      std::printf("  audit: op=appraise_data cause=%s comm=\"lim\" name=\"%s\" res=0\n", r.cause.c_str(), name.c_str());
      PrintPackageHints(a.admindir, file, fd);
    }
    return r.pass;
  });
}

// ---- evm verify / hmac ----

struct EvmArgs {
  std::vector<std::string> files;
  std::string keys = kDefaultKeyDir, hmac_key;
  bool write = false;
  UuidArgs uuid;
};

int RunEvmVerify(const EvmArgs& a) {
  auto keys = LoadKeys(a.keys);
  if (!keys.ok()) return ReportError(keys.status());
  ima::EvmConfig evm;
  evm.enabled = true;
  evm.keys = &keys->keys();
  if (!a.hmac_key.empty()) {
    auto k = LoadHmacKey(a.hmac_key);
    if (!k.ok()) return ReportError(k.status());
    evm.hmac_key = std::move(k).value();
  }
  auto names = EvmNames(a.uuid);
  if (!names.ok()) return ReportError(names.status());
  return ForEachFile(a.files, [&](const std::string& file, int fd) -> Result<bool> {
    LIM_ASSIGN_OR_RETURN(ima::EvmInputs in, ima::ReadEvmInputs(fd, file, *names));
    LIM_ASSIGN_OR_RETURN(std::optional<Bytes> x, ima::ReadXattr(fd, ima::kEvmXattrName, ima::kMaxImaXattrSize, file));
    ima::EvmConfig e = WithUuid(evm, a.uuid, fd, file);
    in.fsuuid = e.fsuuid;
    ima::EvmVerdict v = ima::VerifyEvm(x, in, e);
    std::printf("%s: %s%s%s: %s\n", Escaped(file).c_str(), v.status.c_str(), v.key.empty() ? "" : " key ",
                Escaped(v.key).c_str(), Escaped(v.detail).c_str());
    return v.status == "pass" || v.status == "pass_immutable";
  });
}

int RunEvmHmac(const EvmArgs& a) {
  if (a.hmac_key.empty()) return ReportError(Status::InvalidArgument("--hmac-key is required"));
  auto key = LoadHmacKey(a.hmac_key);
  if (!key.ok()) return ReportError(key.status());
  auto names = EvmNames(a.uuid);
  if (!names.ok()) return ReportError(names.status());
  for (const auto& file : a.files) {
    auto f = OpenFile(file);
    if (!f.ok()) return ReportError(f.status());
    int fd = (*f)->get();
    auto in = ima::ReadEvmInputs(fd, file, *names);
    if (!in.ok()) return ReportError(in.status());
    auto u = UuidFor(a.uuid, fd, file);
    if (!u.ok()) return ReportError(u.status());
    in->fsuuid = *u;
    auto h = ima::EvmHmac(*key, *in);
    if (!h.ok()) return ReportError(Status(h.status().code(), file + ": " + h.status().message()));
    if (a.write) {
      Bytes value = {ima::kEvmXattrHmac};
      value.insert(value.end(), h->begin(), h->end());
      Status s = SetXattr(fd, ima::kEvmXattrName, value, file);
      if (!s.ok()) return ReportError(s);
    }
    std::printf("hmac: %s  %s\n", ToHex(*h).c_str(), Escaped(file).c_str());
  }
  return kExitOk;
}

// ---- keys list ----

int RunKeysList(const std::string& dir) {
  auto ring = KeyRing::Load(dir);
  if (!ring.ok()) return ReportError(ring.status());
  for (const auto& k : ring->keys()) {
    std::printf("%s %s %s %s\n", KeyIdHex(k.key_id()).c_str(), k.description().c_str(), Escaped(k.origin()).c_str(),
                Escaped(k.subject().empty() ? "-" : k.subject()).c_str());
  }
  for (const auto& p : ring->problems()) std::fprintf(stderr, "lim: %s\n", Escaped(p).c_str());
  return ring->problems().empty() ? kExitOk : kExitCheckFailed;
}

void AddSignOptions(CLI::App* cmd, SignArgs* a, bool ima_command) {
  cmd->add_option("FILE", a->files, "files (directories with -r)")->required();
  cmd->add_option("--key,-k", a->key, "private key (PEM or DER; LIM_KEY_PASSWORD decrypts)")->required();
  cmd->add_option("--cert", a->cert, "certificate of the key: its SKID names the signature (default: from the key, as evmctl)");
  cmd->add_option("--hash,-a", a->hash, "hash algorithm (default sha256)");
  cmd->add_flag("-r,--recursive", a->recursive, "sign the regular files under directories");
  cmd->add_flag("--portable", a->portable, "EVM: portable signature (0x05; no inode, generation or UUID)");
  AddUuidOptions(cmd, &a->uuid);
  if (ima_command) {
    cmd->add_flag("--evm", a->evm, "also write security.evm (after security.ima, which it covers)");
    cmd->add_flag("--verity", a->verity, "sign the fs-verity digest (type 0x06, sigv3; digest_type=verity rules)");
  }
}

void RegisterAppraise(CLI::App& app) {
  static SignArgs sa;
  CLI::App* sign = app.add_subcommand("sign", "Write a security.ima signature (evmctl ima_sign); with --evm also security.evm");
  AddSignOptions(sign, &sa, true);
  sign->callback([] { ExitCode() = RunSign(sa, true, sa.evm); });

  static HashArgs ha;
  CLI::App* hash = app.add_subcommand("hash", "Print the security.ima digest value (evmctl ima_hash); --fix writes it");
  hash->add_option("FILE", ha.files, "files (directories with -r)")->required();
  hash->add_option("--hash,-a", ha.hash, "hash algorithm (default sha256)");
  hash->add_flag("--fix", ha.fix, "write security.ima (never over a signature), as the kernel's ima_appraise=fix");
  hash->add_flag("-r,--recursive", ha.recursive, "hash the regular files under directories");
  hash->add_flag("--verity", ha.verity, "print the fs-verity digest instead, as `fsverity digest` (sha256, sha512)");
  hash->callback([] { ExitCode() = RunHash(ha); });

  static AppraiseArgs aa;
  CLI::App* appraise = app.add_subcommand(
      "appraise", "Decide as the kernel's appraisal would, and say why: rule, xattr, key, failed check (exit 1 on failure)");
  appraise->add_option("FILE", aa.files, "files")->required();
  appraise->add_option("--policy", aa.policy, "IMA policy file: its first matching appraise rule decides");
  appraise->add_option("--builtin", aa.builtin, "built-in policy instead (appraise_tcb, secure_boot, …)");
  appraise->add_option("--func", aa.func, "hook the access comes through (default FILE_CHECK; BPRM_CHECK, MMAP_CHECK, …)");
  appraise->add_option("--keys", aa.keys, "trusted certificates: a directory or one file (default /etc/lim/keys)");
  appraise->add_flag("--imasig", aa.imasig, "require a signature (appraise_type=imasig) whatever the rule says");
  appraise->add_flag("--evm", aa.evm, "check security.evm first (EVM initialised with the keys)");
  appraise->add_option("--evm-keys", aa.evm_keys, "EVM signature certificates (default: --keys); implies --evm");
  appraise->add_option("--hmac-key", aa.hmac_key, "EVM HMAC key file (raw bytes, at most 128); implies --evm");
  appraise->add_flag("-q,--quiet", aa.quiet, "only the pass/fail line per file");
  appraise->add_option("--admindir", aa.admindir,
                       "dpkg database for remediation hints under failures (default /var/lib/dpkg; \"\" for none)");
  AddUuidOptions(appraise, &aa.uuid);
  appraise->callback([] { ExitCode() = RunAppraise(aa); });

  CLI::App* evm = app.add_subcommand("evm", "security.evm: sign, verify, hmac (evmctl sign, verify, hmac)");
  evm->require_subcommand(1);
  static SignArgs es;
  CLI::App* esign = evm->add_subcommand("sign", "Write an EVM signature (0x03, or 0x05 with --portable)");
  AddSignOptions(esign, &es, false);
  esign->callback([] { ExitCode() = RunSign(es, false, true); });
  static EvmArgs ev;
  CLI::App* everify = evm->add_subcommand("verify", "Check security.evm (signature or, with --hmac-key, HMAC)");
  everify->add_option("FILE", ev.files, "files")->required();
  everify->add_option("--keys", ev.keys, "trusted certificates: a directory or one file (default /etc/lim/keys)");
  everify->add_option("--hmac-key", ev.hmac_key, "EVM HMAC key file");
  AddUuidOptions(everify, &ev.uuid);
  everify->callback([] { ExitCode() = RunEvmVerify(ev); });
  static EvmArgs eh;
  CLI::App* ehmac = evm->add_subcommand("hmac", "Print the EVM HMAC the kernel would compute; --write stores it (0x02)");
  ehmac->add_option("FILE", eh.files, "files")->required();
  ehmac->add_option("--hmac-key", eh.hmac_key, "EVM HMAC key file (raw bytes, at most 128)")->required();
  ehmac->add_flag("--write", eh.write, "write security.evm");
  AddUuidOptions(ehmac, &eh.uuid);
  ehmac->callback([] { ExitCode() = RunEvmHmac(eh); });
  RegisterEvmKey(evm);

  static std::string keydir = kDefaultKeyDir;
  CLI::App* keys = app.add_subcommand("keys", "Trusted IMA/EVM keys");
  keys->require_subcommand(1);
  CLI::App* list = keys->add_subcommand("list", "One line per key: key id, type, file, subject (exit 1 if a file holds no key)");
  list->add_option("DIR", keydir, "directory or certificate file (default /etc/lim/keys)");
  list->callback([] { ExitCode() = RunKeysList(keydir); });
}

}  // namespace

LIM_REGISTER_COMMAND(RegisterAppraise);

}  // namespace lim::cli
