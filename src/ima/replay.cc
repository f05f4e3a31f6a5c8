#include "ima/replay.h"

#include <cstring>

#include "ima/digest_field.h"

namespace lim::ima {

const char* ReplayModeName(ReplayMode m) { return m == ReplayMode::kPerBank ? "per-bank" : "sha1-padded"; }

Result<HashAlgo> BankAlgo(const std::string& bank_name) {
  auto a = HashAlgoByName(bank_name);
  if (!a.ok()) return Status::Unsupported("unknown PCR bank '" + bank_name + "'");
  return *a;
}

Result<BankDigester> BankDigester::Create(const HashAlgo& bank, const HashAlgo& list_bank, ReplayMode mode) {
  // Banks OpenSSL cannot compute get the padded SHA1 digest, as the kernel does for banks
  // its crypto layer does not map.
  if (mode == ReplayMode::kPerBank && !FetchMd(bank).ok()) mode = ReplayMode::kPaddedSha1;
  std::optional<Hasher> h;
  if (mode == ReplayMode::kPerBank) {
    if (!(bank == list_bank)) {
      LIM_ASSIGN_OR_RETURN(Hasher x, Hasher::Create(bank));
      h.emplace(std::move(x));
    }
  } else {
    if (bank.size < 20) return Status::Unsupported(std::string("bank ") + bank.tpm_name + " is shorter than SHA1");
    if (!(list_bank == Sha1Algo())) {
      LIM_ASSIGN_OR_RETURN(Hasher x, Hasher::Create(Sha1Algo()));
      h.emplace(std::move(x));
    }
  }
  return BankDigester(bank, mode, std::move(h));
}

void BankDigester::Compute(const Entry& e, uint8_t* out) {
  if (e.violation) {
    // kernel: ima_init_digests — 0xFF of the bank size; unmapped banks 20×0xFF then zeros.
    if (mode_ == ReplayMode::kPerBank) {
      std::memset(out, 0xff, bank_.size);
    } else {
      std::memset(out, 0, bank_.size);
      std::memset(out, 0xff, 20);
    }
    return;
  }
  if (mode_ == ReplayMode::kPerBank) {
    if (!hasher_) {
      std::memcpy(out, e.digest.data(), bank_.size);
      return;
    }
    hasher_->Update(TemplateDigestInput(e, &scratch_));
    hasher_->Final(out);
    return;
  }
  std::memset(out, 0, bank_.size);
  if (!hasher_) {
    std::memcpy(out, e.digest.data(), 20);
    return;
  }
  hasher_->Update(TemplateDigestInput(e, &scratch_));
  hasher_->Final(out);  // 20 bytes of SHA1, rest stays zero
}

Result<PcrReplayer> PcrReplayer::Create(const HashAlgo& bank) {
  LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(bank));
  return PcrReplayer(bank, std::move(h));
}

void PcrReplayer::Extend(uint32_t pcr, const uint8_t* digest) {
  uint8_t* v = values_.data() + pcr * bank_.size;
  hasher_.Update({v, bank_.size});
  hasher_.Update({digest, bank_.size});
  hasher_.Final(v);
  touched_ |= uint64_t{1} << pcr;
}

void PcrReplayer::ExportTo(PcrSet* set) const {
  std::string name = bank_.tpm_alg ? TpmBankName(bank_.tpm_alg) : bank_.tpm_name;
  for (uint32_t p = 0; p < kPcrs; ++p) {
    if (touched_ & (uint64_t{1} << p)) {
      ByteView v = ValueView(p);
      set->Set(name, p, Bytes(v.begin(), v.end()));
    }
  }
}

Result<TemplateDigestChecker> TemplateDigestChecker::Create(const HashAlgo& list_bank) {
  LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(list_bank));
  return TemplateDigestChecker(std::move(h));
}

bool TemplateDigestChecker::Check(const Entry& e, Bytes* computed) {
  if (e.violation) return true;
  hasher_.Update(TemplateDigestInput(e, &scratch_));
  hasher_.Final(buf_);
  if (std::memcmp(buf_, e.digest.data(), e.digest.size()) == 0) return true;
  if (computed) computed->assign(buf_, buf_ + e.digest.size());
  return false;
}

}  // namespace lim::ima
