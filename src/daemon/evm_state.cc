#include "daemon/evm_state.h"

#include <sys/ioctl.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ima/evm.h"
#include "ima/ima_xattr.h"
#include "tpm/seal.h"

namespace lim::daemon {

namespace {

bool Passed(const ima::EvmVerdict& v) { return v.status == "pass" || v.status == "pass_immutable"; }

std::optional<uint8_t> TypeOf(const std::optional<Bytes>& evm) {
  if (!evm || evm->empty()) return std::nullopt;
  return (*evm)[0];
}

class EvmStateCheck final : public EvmCheck {
 public:
  explicit EvmStateCheck(EvmState* s) : s_(s) {}
  bool enabled() const override { return s_->enabled(); }
  ima::EvmVerdict Verify(int fd, const FileFacts& facts, const FileXattrs& xattrs) override {
    if (!xattrs.evm_status.ok()) return {"fail", xattrs.evm_status.message(), {}};
    return s_->Verify(fd, facts.dev, xattrs.ima, xattrs.evm);
  }
  void ImaXattrUpdated(int fd, const FileFacts& facts) override { s_->ImaXattrUpdated(fd, facts.dev); }

 private:
  EvmState* s_;
};

}  // namespace

std::unique_ptr<EvmCheck> EvmState::AsCheck() { return std::make_unique<EvmStateCheck>(this); }

Result<SecretBytes> LoadEvmKey(const std::string& key_file, const std::string& sealed_file, tpm::Tpm* tpm) {
  if (!key_file.empty() && !sealed_file.empty()) {
    return Status::InvalidArgument("--evm-key and --evm-key-sealed: give one EVM HMAC key");
  }
  if (!key_file.empty()) {
    auto k = ReadSecretFile(key_file, ima::kEvmMaxKeySize, "the EVM HMAC key");
    if (!k.ok()) return k.status().WithPrefix("--evm-key");
    return k;
  }
  if (sealed_file.empty()) return SecretBytes();
  auto sealed = tpm::ReadSealedFile(sealed_file);
  if (!sealed.ok()) return sealed.status().WithPrefix("--evm-key-sealed");
  if (!tpm) return Status::InvalidArgument("--evm-key-sealed needs the TPM the key was sealed to");
  auto k = tpm->Unseal(*sealed);
  if (!k.ok()) return Status(k.status().code(), "--evm-key-sealed " + sealed_file + ": " + k.status().message());
  return k;
}

EvmState::EvmState(SecretBytes hmac_key, const std::vector<PublicKey>* keys, bool fsuuid)
    : keys_(keys), fsuuid_(fsuuid) {
  SetHmacKey(std::move(hmac_key));
}

void EvmState::SetHmacKey(SecretBytes key) {
  hmac_key_ = std::move(key);
  init_flags_ = 0;
  if (!hmac_key_.empty()) init_flags_ |= kEvmInitHmac;
  if (keys_ && !keys_->empty()) init_flags_ |= kEvmInitX509;
  // limd's EVM is set up once, at start: the kernel's EVM_SETUP_COMPLETE (no later key).
  if (init_flags_) init_flags_ |= kEvmSetupComplete;
}

size_t EvmState::tracked() const {
  std::lock_guard<std::mutex> lk(mu_);
  return table_.size();
}

Result<ima::EvmInputs> EvmState::Inputs(int fd, const std::optional<Bytes>& ima) const {
  LIM_ASSIGN_OR_RETURN(ima::EvmInputs in, ima::ReadEvmInputs(fd, "file", Xattrs()));
  // security.ima as the appraisal read it, not a second read.
  std::erase_if(in.xattrs, [](const auto& x) { return x.first == ima::kImaXattrName; });
  if (ima) in.xattrs.emplace_back(ima::kImaXattrName, *ima);
  if (fsuuid_) in.fsuuid = SuperblockUuid(fd);
  return in;
}

ima::EvmVerdict EvmState::Check(const ima::EvmInputs& in, const std::optional<Bytes>& evm) const {
  ima::EvmConfig config;
  config.enabled = true;
  config.keys = keys_;
  config.fsuuid = in.fsuuid;
  if (TypeOf(evm) != ima::kEvmXattrHmac || hmac_key_.empty()) {
    // Signatures, absent or malformed values, or an HMAC with no key (unknown): the pure
    // check decides; the HMAC key never leaves locked memory for it.
    return ima::VerifyEvm(evm, in, config);
  }
  auto parsed = ima::ParseEvmXattr(*evm);
  if (!parsed.ok()) return {"fail", parsed.status().message(), {}};
  auto h = ima::EvmHmac(hmac_key_.view(), in);
  if (!h.ok()) {
    return {h.status().code() == StatusCode::kNotFound ? "no_xattrs" : "fail", h.status().message(), {}};
  }
  if (!SecretEquals(*h, parsed->hmac)) {
    return {"fail",
            std::string("HMAC over the protected xattrs, inode, generation, uid, gid, mode") +
                (in.fsuuid ? " and fs UUID" : "") + " does not match",
            {}};
  }
  return {"pass", "HMAC matches", {}};
}

Result<Bytes> EvmState::WriteHmac(int fd, const ima::EvmInputs& in) {
  LIM_ASSIGN_OR_RETURN(Bytes h, ima::EvmHmac(hmac_key_.view(), in));
  Bytes value = {ima::kEvmXattrHmac};
  value.insert(value.end(), h.begin(), h.end());
  if (fsetxattr(fd, ima::kEvmXattrName, value.data(), value.size(), 0) != 0) {
    counts_.write_errors++;
    return Status::IoError(std::string("writing security.evm: ") + std::strerror(errno));
  }
  return value;
}

void EvmState::Remember(const std::optional<std::string>& key, std::optional<Bytes> evm) {
  if (!key) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (table_.size() >= kMaxTracked && !table_.count(*key)) {
    counts_.forgotten += table_.size();
    table_.clear();
  }
  table_[*key] = Entry{false, std::move(evm)};
}

ima::EvmVerdict EvmState::Verify(int fd, uint64_t dev, const std::optional<Bytes>& ima, const std::optional<Bytes>& evm) {
  if (!enabled()) return {"unknown", "EVM is not initialised (no HMAC key, no EVM keys)", {}};
  // The key before the state is read: on a filesystem watched per inode it marks the
  // inode, so every change after the read below is queued (attrib_watch.h).
  std::optional<std::string> key = watch_ ? watch_->Key(fd, dev) : std::nullopt;
  // Every change made before this access is queued by now (attrib_watch.h "Order").
  if (watch_) (void)watch_->Drain();
  auto in = Inputs(fd, ima);
  if (!in.ok()) return {"fail", in.status().message(), {}};
  ima::EvmVerdict v = Check(*in, evm);
  const bool no_hmac = HmacUnsupported(dev);
  std::optional<Entry> seen;
  if (key) {
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = table_.find(*key); it != table_.end()) seen = it->second;
  }

  if (Passed(v) || v.status == "no_xattrs") {
    counts_.verified++;
    std::optional<Bytes> now = evm;
    // The kernel's evm_verify_hmac: a good 0x03 signature on a writable file is replaced
    // by an HMAC when the HMAC key is loaded (never a portable one).
    if (v.status == "pass" && TypeOf(evm) == ima::kXattrDigsig && has_hmac_key() && !no_hmac) {
      if (auto w = WriteHmac(fd, *in); w.ok()) {
        counts_.signatures_replaced++;
        now = std::move(*w);
        v.detail += "; replaced by an HMAC (the kernel's evm_update_evmxattr)";
      }
    }
    Remember(key, std::move(now));
    return v;
  }
  // A failure. Re-bless only a seen change of a file verified in this run, while
  // security.evm is still what limd verified or wrote, and never a portable signature.
  bool rebless = !no_hmac && seen && seen->changed && seen->evm == evm && has_hmac_key() &&
                 (v.status == "fail" || v.status == "no_label") && TypeOf(evm) != ima::kEvmXattrPortableDigsig;
  if (rebless) {
    auto w = WriteHmac(fd, *in);
    if (w.ok()) {
      counts_.rewritten++;
      Remember(key, std::move(*w));
      return {"pass", "HMAC re-computed after a change limd saw (chmod, chown or setxattr) to a file it had verified", {}};
    }
    v.detail += "; re-computing the HMAC failed: " + w.status().message();
  } else if (no_hmac && (v.status == "fail" || v.status == "no_label")) {
    v.detail += "; limd writes no HMAC on overlayfs (as the kernel: SB_I_EVM_HMAC_UNSUPPORTED): its layers change "
                "beneath it without an event on the overlay file";
  } else if (v.status == "fail" || v.status == "no_label") {
    if (!seen) {
      if (key) counts_.refused++;
      v.detail += key ? "; limd has not verified this file's earlier state in this run, so it does not re-compute security.evm"
                      : "; changes on this filesystem are not watched, so limd never re-computes security.evm here";
    } else if (!seen->changed) {
      v.detail += "; limd saw no change of this file since it verified it";
    } else if (seen->evm != evm) {
      v.detail += "; security.evm itself was rewritten since limd verified the file";
    }
  }
  counts_.failed++;
  if (key) {
    std::lock_guard<std::mutex> lk(mu_);
    table_.erase(*key);  // a failed state is no base to re-bless from
  }
  return v;
}

void EvmState::ImaXattrUpdated(int fd, uint64_t dev) {
  if (!has_hmac_key() || HmacUnsupported(dev)) return;
  std::optional<std::string> key = watch_ ? watch_->Key(fd, dev) : std::nullopt;
  if (watch_) (void)watch_->Drain();
  auto evm = ima::ReadXattr(fd, ima::kEvmXattrName, ima::kMaxImaXattrSize, "file");
  auto ima = ima::ReadXattr(fd, ima::kImaXattrName, ima::kMaxImaXattrSize, "file");
  if (!evm.ok() || !ima.ok()) return;
  auto in = Inputs(fd, *ima);
  if (!in.ok()) return;
  bool verified = false;
  if (key) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = table_.find(*key);
    verified = it != table_.end() && it->second.evm == *evm;
  }
  // A new file: nothing protected but the security.ima limd just wrote, no security.evm —
  // the kernel HMACs it at this write (evm_inode_post_setxattr).
  bool nothing_else = !*evm && std::all_of(in->xattrs.begin(), in->xattrs.end(),
                                           [](const auto& x) { return x.first == ima::kImaXattrName; });
  if (!verified && !nothing_else) return;
  if (TypeOf(*evm) == ima::kEvmXattrPortableDigsig) return;
  auto w = WriteHmac(fd, *in);
  if (!w.ok()) return;
  counts_.rewritten++;
  Remember(key, std::move(*w));
}

ima::EvmXattrList::AddResult EvmState::AddXattr(std::string_view name) {
  std::lock_guard<std::mutex> lk(mu_);
  return xattrs_.Add(name);
}

std::string EvmState::XattrsText() const {
  std::lock_guard<std::mutex> lk(mu_);
  return xattrs_.Text();
}

std::vector<std::string> EvmState::Xattrs() const {
  std::lock_guard<std::mutex> lk(mu_);
  return xattrs_.Enabled();
}

void EvmState::SetHmacUnsupported(uint64_t dev) {
  std::lock_guard<std::mutex> lk(mu_);
  no_hmac_devs_.insert(dev);
}

bool EvmState::HmacUnsupported(uint64_t dev) const {
  std::lock_guard<std::mutex> lk(mu_);
  return no_hmac_devs_.count(dev) != 0;
}

void EvmState::Changed(const std::string& key) {
  std::lock_guard<std::mutex> lk(mu_);
  if (auto it = table_.find(key); it != table_.end()) it->second.changed = true;
}

void EvmState::Overflowed() {
  std::lock_guard<std::mutex> lk(mu_);
  counts_.forgotten += table_.size();
  table_.clear();
}

}  // namespace lim::daemon
