#include "daemon/appraiser.h"

#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "base/file.h"
#include "crypto/key_ring.h"
#include "crypto/fsverity.h"
#include "ima/evm.h"
#include "ima/ima_signature.h"
#include "ima/ima_xattr.h"

namespace lim::daemon {

namespace {

constexpr std::string_view kModeNames[] = {"off", "log", "enforce", "fix"};

// A denylist is a list of digests, not a data set: 16 MiB is about 200,000 sha256 lines.
constexpr size_t kMaxDenylistBytes = 16u << 20;

class SignatureEvmCheck : public EvmCheck {
 public:
  explicit SignatureEvmCheck(const std::vector<PublicKey>* keys) : keys_(keys) {}
  bool enabled() const override { return keys_ && !keys_->empty(); }
  ima::EvmVerdict Verify(int fd, const FileFacts& facts, const FileXattrs& xattrs) override {
    if (!xattrs.evm_status.ok()) return {"fail", xattrs.evm_status.message(), {}};
    auto in = ima::ReadEvmInputs(fd, "security.evm");
    if (!in.ok()) return {"fail", in.status().message(), {}};
    // The values the appraisal decided on, not a second read of security.ima.
    for (auto& [name, value] : in->xattrs) {
      if (name == ima::kImaXattrName && xattrs.ima) value = *xattrs.ima;
    }
    in->fsuuid = facts.fsuuid;
    ima::EvmConfig config;
    config.enabled = true;
    config.keys = keys_;
    config.fsuuid = facts.fsuuid;
    return ima::VerifyEvm(xattrs.evm, *in, config);
  }

 private:
  const std::vector<PublicKey>* keys_;
};

std::string Quoted(const std::string& s) {
  // The kernel's audit_log_untrustedstring: quoted when plain, hex otherwise.
  for (unsigned char c : s) {
    if (c == '"' || c < 0x21 || c > 0x7e) {
      std::string hex = ToHex(ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
      for (char& h : hex) h = static_cast<char>(std::toupper(static_cast<unsigned char>(h)));
      return hex;
    }
  }
  return "\"" + s + "\"";
}

}  // namespace

Result<AppraiseMode> ParseAppraiseMode(std::string_view name) {
  for (size_t i = 0; i < std::size(kModeNames); ++i) {
    if (name == kModeNames[i]) return static_cast<AppraiseMode>(i);
  }
  return Status::InvalidArgument("unknown appraise mode '" + std::string(name) + "' (off, log, enforce, fix)");
}

std::string_view AppraiseModeName(AppraiseMode mode) { return kModeNames[static_cast<size_t>(mode)]; }

FileXattrs ReadFileXattrs(int fd, const std::string& what) {
  FileXattrs x;
  auto ima = ima::ReadXattr(fd, ima::kImaXattrName, ima::kMaxImaXattrSize, what);
  if (ima.ok()) {
    x.ima = std::move(*ima);
  } else {
    x.ima_status = ima.status();
  }
  auto evm = ima::ReadXattr(fd, ima::kEvmXattrName, ima::kMaxImaXattrSize, what);
  if (evm.ok()) {
    x.evm = std::move(*evm);
  } else {
    x.evm_status = evm.status();
  }
  return x;
}

std::unique_ptr<EvmCheck> MakeSignatureEvmCheck(const std::vector<PublicKey>* keys) {
  return std::make_unique<SignatureEvmCheck>(keys);
}

Result<DigestDenylist> DigestDenylist::Load(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(std::string text, ReadFileTextBounded(path, kMaxDenylistBytes, "--denylist"));
  return Parse(text, path);
}

Result<DigestDenylist> DigestDenylist::Parse(std::string_view text, const std::string& source) {
  DigestDenylist d;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    auto where = source + ":" + std::to_string(line_no) + ": ";
    std::optional<HashAlgo> algo;
    std::string_view hex = line;
    if (size_t colon = line.find(':'); colon != std::string_view::npos) {
      auto a = HashAlgoByName(line.substr(0, colon));
      if (!a.ok()) return Status::InvalidArgument(where + "unknown hash algorithm '" + std::string(line.substr(0, colon)) + "'");
      algo = *a;
      hex = line.substr(colon + 1);
    }
    auto bytes = FromHex(hex);
    if (!bytes.ok() || bytes->empty()) return Status::InvalidArgument(where + "not a hex digest");
    if (!algo) {
      if (bytes->size() == Sha256Algo().size) {
        algo = Sha256Algo();
      } else {
        for (const HashAlgo& a : AllHashAlgos()) {
          if (a.size != bytes->size() || !HashAlgoAvailable(a)) continue;
          if (algo) return Status::InvalidArgument(where + "a " + std::to_string(bytes->size()) + "-byte digest needs ALGO: in front");
          algo = a;
        }
      }
      if (!algo) return Status::InvalidArgument(where + "no hash algorithm has " + std::to_string(bytes->size()) + "-byte digests");
    }
    if (bytes->size() != algo->size) {
      return Status::InvalidArgument(where + std::string(algo->kernel_name) + " digests are " + std::to_string(algo->size) + " bytes, not " +
                                     std::to_string(bytes->size()));
    }
    if (!HashAlgoAvailable(*algo)) return Status::InvalidArgument(where + std::string(algo->kernel_name) + " is not available");
    d.entries_.emplace_back(algo->kernel_id, std::move(*bytes));
    if (std::find(d.algos_.begin(), d.algos_.end(), *algo) == d.algos_.end()) d.algos_.push_back(*algo);
  }
  std::sort(d.entries_.begin(), d.entries_.end());
  return d;
}

bool DigestDenylist::Contains(const HashAlgo& algo, ByteView digest) const {
  std::pair<int, Bytes> key{algo.kernel_id, Bytes(digest.begin(), digest.end())};
  return std::binary_search(entries_.begin(), entries_.end(), key);
}

Appraiser::Appraiser(const AppraiserConfig& config, std::vector<PublicKey> ima_keys, DigestDenylist denylist,
                     std::unique_ptr<EvmCheck> evm)
    : config_(config), ima_keys_(std::move(ima_keys)), denylist_(std::move(denylist)), evm_(std::move(evm)) {}

AppraiseOutcome Appraiser::Appraise(int fd, const FileFacts& facts, const std::string& path,
                                    const ima::AppraiseRequirements& req, const FileXattrs& xattrs, bool created,
                                    const DigestSource& digest) const {
  AppraiseOutcome o;
  o.ima_xattr = xattrs.ima;
  if (xattrs.ima && !xattrs.ima->empty()) {
    uint8_t type = (*xattrs.ima)[0];
    o.signature = type == ima::kXattrDigsig || type == ima::kXattrVeritySig;
  }
  // lim's denylist first, as the kernel checks its blacklist before appraising
  // (ima_check_blacklist): a listed digest fails whatever security.ima says.
  for (const HashAlgo& algo : denylist_.algos()) {
    auto d = digest(algo);
    if (!d.ok()) {
      o.cause = "collect-data";
      o.detail = d.status().message();
      return o;
    }
    if (denylist_.Contains(algo, *d)) {
      o.cause = "denylisted-hash";
      o.detail = std::string("file ") + algo.kernel_name + " " + ToHex(*d) + " is on the denylist";
      return o;
    }
  }
  std::function<ima::EvmVerdict()> evm;
  if (evm_ && evm_->enabled()) evm = [&] { return evm_->Verify(fd, facts, xattrs); };
  ima::ContentDigest content = [&](const HashAlgo& algo, bool verity) -> Result<Bytes> {
    if (!verity) return digest(algo);
    if (lseek(fd, 0, SEEK_SET) != 0) return Status::IoError(path + ": lseek: " + std::strerror(errno));
    return FsVerityDigest(algo, fd, path);
  };
  ima::Appraisal a = ima::AppraiseValues(xattrs.ima, xattrs.ima_status, evm, req, ima_keys_, content);
  o.pass = a.pass;
  o.cause = a.cause;
  o.detail = a.detail;
  o.form = a.form;
  o.key = a.key;
  if (o.pass) return o;
  // IMA_NEW_FILE: a file its opener created has no security.ima yet; it passes unless the
  // rule needs a signature and it already holds data (ima_appraise_measurement).
  if (xattrs.ima_status.ok() && !xattrs.ima && created) {
    o.new_file = true;
    if (!req.signature_required || facts.size == 0) {
      o.pass = true;
      o.cause.clear();
      o.detail = "new file (created by its opener, no security.ima yet)";
      return o;
    }
  }
  // Fix mode: a digest over anything but a v2 signature (ima_appraise_measurement).
  bool digsig = xattrs.ima && !xattrs.ima->empty() && (*xattrs.ima)[0] == ima::kXattrDigsig;
  if (config_.mode == AppraiseMode::kFix && !digsig && xattrs.ima_status.ok()) {
    HashAlgo algo = config_.fix_hash;
    if (xattrs.ima) {
      if (auto id = ima::XattrHashAlgoId(*xattrs.ima)) {
        auto al = HashAlgoByKernelId(*id);
        if (al.ok() && HashAlgoAvailable(*al)) algo = *al;
      }
    }
    auto d = digest(algo);
    if (d.ok()) {
      Bytes value = ima::MakeImaDigestXattr(algo, *d);
      if (fsetxattr(fd, ima::kImaXattrName, value.data(), value.size(), 0) == 0) {
        o.fixed = true;
        o.pass = true;
        o.ima_xattr = value;
        o.signature = false;
        o.detail = "fix mode wrote security.ima (" + o.cause + ": " + o.detail + ")";
        if (evm_) evm_->ImaXattrUpdated(fd, facts);
      } else {
        o.detail += std::string("; fix mode could not write security.ima: ") + std::strerror(errno);
      }
    }
  }
  return o;
}

Result<bool> Appraiser::UpdateXattr(int fd, const FileFacts& facts, const std::string& path,
                                    const DigestSource& digest) const {
  auto current = ima::ReadXattr(fd, ima::kImaXattrName, ima::kMaxImaXattrSize, path);
  HashAlgo algo = config_.fix_hash;
  if (current.ok() && *current && !(*current)->empty()) {
    uint8_t type = (**current)[0];
    // Never over a signature (ima_update_xattr: IMA_DIGSIG).
    if (type == ima::kXattrDigsig || type == ima::kXattrVeritySig) return false;
    if (auto id = ima::XattrHashAlgoId(**current)) {
      auto al = HashAlgoByKernelId(*id);
      if (al.ok() && HashAlgoAvailable(*al)) algo = *al;
    }
  }
  LIM_ASSIGN_OR_RETURN(Bytes d, digest(algo));
  Bytes value = ima::MakeImaDigestXattr(algo, d);
  if (current.ok() && *current && **current == value) return false;
  if (fsetxattr(fd, ima::kImaXattrName, value.data(), value.size(), 0) != 0) {
    return Status::IoError(path + ": setxattr security.ima: " + std::strerror(errno));
  }
  if (evm_) evm_->ImaXattrUpdated(fd, facts);
  return true;
}

Result<std::unique_ptr<Appraiser>> LoadAppraiser(AppraiserSettings s, std::vector<std::string>* notes) {
  LIM_ASSIGN_OR_RETURN(AppraiseMode mode, ParseAppraiseMode(s.mode));
  if (mode == AppraiseMode::kOff) return std::unique_ptr<Appraiser>();
  std::vector<PublicKey> keys;
  auto ring = KeyRing::LoadDir(s.keys_dir);
  if (ring.ok()) {
    keys = ring->keys();
    for (const auto& p : ring->problems()) notes->push_back("--keys: " + p);
    notes->push_back("appraisal " + std::string(AppraiseModeName(mode)) + ": " + std::to_string(keys.size()) +
                     " trusted key(s) from " + s.keys_dir);
  } else if (s.keys_explicit) {
    return Status::InvalidArgument("--keys " + s.keys_dir + ": " + ring.status().message());
  } else {
    notes->push_back("appraisal " + std::string(AppraiseModeName(mode)) + ": no trusted keys (" +
                     ring.status().message() + "): every signature fails");
  }
  DigestDenylist deny;
  if (!s.denylist.empty()) {
    auto d = DigestDenylist::Load(s.denylist);
    if (!d.ok()) return Status::InvalidArgument("--denylist " + s.denylist + ": " + d.status().message());
    deny = std::move(*d);
    notes->push_back("denylist " + s.denylist + ": " + std::to_string(deny.size()) + " digest(s)");
  }
  AppraiserConfig c;
  c.mode = mode;
  c.fix_hash = s.fix_hash;
  return std::make_unique<Appraiser>(c, std::move(keys), std::move(deny), std::move(s.evm));
}

std::string AppraiseAuditLine(pid_t pid, uint32_t uid, const std::string& comm, const std::string& path, uint64_t ino,
                              const AppraiseOutcome& o, std::string_view op) {
  return "pid=" + std::to_string(pid) + " uid=" + std::to_string(uid) + " op=" + std::string(op) + " cause=" + o.cause +
         " comm=" + Quoted(comm) + " name=" + Quoted(path) + " ino=" + std::to_string(ino) + " res=0 errno=0";
}

}  // namespace lim::daemon
