#include "tpm/seal.h"

#include <tss2/tss2_mu.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "crypto/hash_algo.h"

namespace lim::tpm {

namespace {

constexpr const char kFormat[] = "lim-sealed-v1";

// The two TPM structures must unmarshal whole; anything else is not a sealed object.
Status CheckPublic(ByteView b, const std::string& what) {
  TPM2B_PUBLIC pub{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(b.data(), b.size(), &off, &pub) != TSS2_RC_SUCCESS || off != b.size()) {
    return Status::Corrupt(what + ": \"public\" is not a TPM2B_PUBLIC");
  }
  if (pub.publicArea.type != TPM2_ALG_KEYEDHASH) return Status::Corrupt(what + ": \"public\" is not a sealed data object");
  return Status::Ok();
}

Status CheckPrivate(ByteView b, const std::string& what) {
  TPM2B_PRIVATE priv{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(b.data(), b.size(), &off, &priv) != TSS2_RC_SUCCESS || off != b.size()) {
    return Status::Corrupt(what + ": \"private\" is not a TPM2B_PRIVATE");
  }
  return Status::Ok();
}

}  // namespace

Result<PcrSelection> ParsePcrSelection(std::string_view text) {
  if (text.empty()) return Status::InvalidArgument("empty PCR selection (expected e.g. sha256:0,7)");
  PcrSelection sel;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t plus = text.find('+', pos);
    if (plus == std::string_view::npos) plus = text.size();
    std::string_view item = text.substr(pos, plus - pos);
    size_t colon = item.find(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("PCR selection '" + std::string(text) + "': '" + std::string(item) +
                                     "' names no bank (expected BANK:LIST, e.g. sha256:0,7)");
    }
    LIM_ASSIGN_OR_RETURN(uint16_t alg, ParseBankName(item.substr(0, colon)));
    LIM_ASSIGN_OR_RETURN(std::set<int> pcrs, ParsePcrList(item.substr(colon + 1)));
    for (const auto& b : sel) {
      if (b.alg == alg) return Status::InvalidArgument("PCR selection '" + std::string(text) + "' names bank " + TpmBankName(alg) + " twice");
    }
    sel.push_back({alg, std::move(pcrs)});
    pos = plus + 1;
  }
  return sel;
}

std::string EncodeSealedObject(const SealedObject& s) {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["pcrs"] = SelectionToString(s.pcrs);
  j["pcr_values"] = nlohmann::json::parse(PcrValuesToJson(s.values_at_seal));
  j["primary"] = "owner hierarchy, ECC NIST P-256 storage key (tpm2_createprimary -C o -g sha256 -G ecc256:aes128cfb)";
  j["public"] = ToHex(s.public_area);
  j["private"] = ToHex(s.private_area);
  return j.dump(2) + "\n";
}

Result<SealedObject> DecodeSealedObject(std::string_view text, const std::string& what) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corrupt(what + ": not a sealed key file (not JSON)");
  auto str = [&](const char* k) -> Result<std::string> {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return Status::Corrupt(what + ": no \"" + std::string(k) + "\" string");
    return it->get<std::string>();
  };
  LIM_ASSIGN_OR_RETURN(std::string format, str("format"));
  if (format != kFormat) return Status::Corrupt(what + ": format '" + format + "', expected " + kFormat);
  SealedObject s;
  LIM_ASSIGN_OR_RETURN(std::string pcrs, str("pcrs"));
  auto sel = ParsePcrSelection(pcrs);
  if (!sel.ok()) return sel.status().WithPrefix(what);
  s.pcrs = *sel;
  auto values = j.find("pcr_values");
  if (values != j.end()) {
    auto v = PcrValuesFromJson(values->dump());
    if (!v.ok()) return v.status().WithPrefix(what + ": pcr_values");
    s.values_at_seal = *v;
  }
  LIM_ASSIGN_OR_RETURN(std::string pub_hex, str("public"));
  LIM_ASSIGN_OR_RETURN(std::string priv_hex, str("private"));
  auto pub = FromHex(pub_hex);
  auto priv = FromHex(priv_hex);
  if (!pub.ok()) return pub.status().WithPrefix(what + ": public");
  if (!priv.ok()) return priv.status().WithPrefix(what + ": private");
  LIM_RETURN_IF_ERROR(CheckPublic(*pub, what));
  LIM_RETURN_IF_ERROR(CheckPrivate(*priv, what));
  s.public_area = std::move(*pub);
  s.private_area = std::move(*priv);
  return s;
}

Result<SealedObject> ReadSealedFile(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(std::string text, ReadFileTextBounded(path, kMaxSealedFileSize, "a sealed key file"));
  return DecodeSealedObject(text, path);
}

std::string DescribePcrChanges(const SealedObject& s, const PcrValues& now) {
  std::string out;
  for (const auto& b : s.pcrs) {
    for (int i : b.pcrs) {
      auto sealed_bank = s.values_at_seal.find(b.alg);
      auto now_bank = now.find(b.alg);
      if (sealed_bank == s.values_at_seal.end() || now_bank == now.end()) continue;
      auto a = sealed_bank->second.find(i);
      auto n = now_bank->second.find(i);
      if (a == sealed_bank->second.end() || n == now_bank->second.end() || a->second == n->second) continue;
      if (!out.empty()) out += ", ";
      out += TpmBankName(b.alg) + ":" + std::to_string(i) + " (sealed " + ToHex(a->second).substr(0, 8) + "…, now " +
             ToHex(n->second).substr(0, 8) + "…)";
    }
  }
  return out;
}

}  // namespace lim::tpm
