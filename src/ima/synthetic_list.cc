#include "ima/synthetic_list.h"

#include <random>

#include "crypto/digest.h"
#include "ima/list_writer.h"

namespace lim::ima {

Result<SyntheticList> MakeSyntheticList(const SyntheticListSpec& spec) {
  LIM_ASSIGN_OR_RETURN(HashAlgo list_bank, HashAlgoByName(spec.list_bank));
  std::vector<HashAlgo> banks;
  std::vector<Bytes> pcr10;
  for (const auto& b : spec.pcr_banks) {
    LIM_ASSIGN_OR_RETURN(HashAlgo a, HashAlgoByName(b));
    banks.push_back(a);
    pcr10.emplace_back(a.size, 0);
  }
  std::vector<Hasher> hashers;
  for (const auto& a : banks) {
    LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(a));
    hashers.push_back(std::move(h));
  }
  std::mt19937 rng(spec.seed);
  const HashAlgo& file_algo = Sha256Algo();
  ListWriter writer(list_bank);
  SyntheticList out;
  out.list.reserve(spec.entries * 120);
  static const char* kDirs[] = {"/usr/bin/", "/usr/lib/x86_64-linux-gnu/", "/etc/", "/usr/sbin/", "/opt/app/lib/"};
  for (uint64_t i = 0; i < spec.entries; ++i) {
    Record r;
    Bytes digest(file_algo.size);
    for (auto& b : digest) b = static_cast<uint8_t>(rng());
    std::string path = kDirs[rng() % 5];
    size_t len = 4 + rng() % (spec.max_path > 8 ? spec.max_path - 8 : 1);
    for (size_t k = 0; k < len; ++k) path.push_back(static_cast<char>('a' + rng() % 26));
    if (i == 0) {
      r = ImaNgRecord(file_algo, digest, "boot_aggregate");
    } else if (spec.violation_every && i % spec.violation_every == 0) {
      r = ViolationRecord(file_algo, path);
    } else if (spec.buf_every && i % spec.buf_every == 0) {
      std::string buf = "kernel_version=6.18." + std::to_string(i);
      LIM_ASSIGN_OR_RETURN(r, ImaBufRecord(file_algo, "kernel_version", AsBytes(buf)));
    } else if (spec.sig_every && i % spec.sig_every == 0) {
      r = ImaSigRecord(file_algo, digest, path, {});
    } else {
      r = ImaNgRecord(file_algo, digest, path);
    }
    LIM_RETURN_IF_ERROR(writer.Append(r, &out.list));
    LIM_ASSIGN_OR_RETURN(Bytes input, TemplateDigestInputOf(r, kNativeOrder));
    for (size_t b = 0; b < banks.size(); ++b) {
      Bytes d(banks[b].size, 0xff);
      if (!r.violation) {
        hashers[b].Update(input);
        d = hashers[b].Final();
      }
      hashers[b].Update(pcr10[b]);
      hashers[b].Update(d);
      pcr10[b] = hashers[b].Final();
    }
  }
  for (size_t b = 0; b < banks.size(); ++b) {
    out.pcrs.Set(banks[b].tpm_alg ? TpmBankName(banks[b].tpm_alg) : banks[b].tpm_name, 10, pcr10[b]);
  }
  return out;
}

}  // namespace lim::ima
