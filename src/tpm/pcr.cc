#include "tpm/pcr.h"

#include <charconv>

#include "crypto/hash_algo.h"

namespace lim::tpm {

namespace {

Result<int> ParseIndex(std::string_view s, std::string_view whole) {
  int v = -1;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0 || v >= kMaxPcrs) {
    return Status::InvalidArgument("bad PCR index '" + std::string(s) + "' in '" + std::string(whole) +
                                   "' (expected 0-" + std::to_string(kMaxPcrs - 1) + ")");
  }
  return v;
}

}  // namespace

Result<std::set<int>> ParsePcrList(std::string_view text) {
  std::set<int> out;
  size_t pos = 0;
  if (text.empty()) return Status::InvalidArgument("empty PCR list");
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(pos, comma - pos);
    size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      LIM_ASSIGN_OR_RETURN(int v, ParseIndex(item, text));
      out.insert(v);
    } else {
      LIM_ASSIGN_OR_RETURN(int a, ParseIndex(item.substr(0, dash), text));
      LIM_ASSIGN_OR_RETURN(int b, ParseIndex(item.substr(dash + 1), text));
      if (b < a) return Status::InvalidArgument("bad PCR range '" + std::string(item) + "'");
      for (int i = a; i <= b; ++i) out.insert(i);
    }
    pos = comma + 1;
  }
  return out;
}

Result<uint16_t> ParseBankName(std::string_view name) {
  if (name.starts_with("tpm_alg_0x") || name.starts_with("0x")) {
    std::string_view hex = name.substr(name.find("0x") + 2);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
    if (ec != std::errc() || p != hex.data() + hex.size() || v == 0 || v > 0xffff) {
      return Status::InvalidArgument("bad bank '" + std::string(name) + "'");
    }
    return static_cast<uint16_t>(v);
  }
  auto algo = HashAlgoByName(name);
  if (!algo.ok() || algo->tpm_alg == 0) {
    return Status::InvalidArgument("unknown PCR bank '" + std::string(name) +
                                   "' (expected sha1, sha256, sha384, sha512, sm3_256, ...)");
  }
  return algo->tpm_alg;
}

PcrSet ToPcrSet(const PcrValues& values) {
  PcrSet set;
  for (const auto& [alg, pcrs] : values) {
    for (const auto& [idx, v] : pcrs) set.Set(TpmBankName(alg), static_cast<uint32_t>(idx), v);
  }
  return set;
}

std::string PcrValuesToJson(const PcrValues& values) { return ToPcrSet(values).ToJson(); }

Result<PcrValues> PcrValuesFromJson(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || text[first] != '{') return Status::Corrupt("PCR set is not a JSON object");
  LIM_ASSIGN_OR_RETURN(PcrSet set, PcrSet::Parse(text, "", "PCR set"));
  PcrValues out;
  for (const auto& [bank, pcrs] : set.banks()) {
    LIM_ASSIGN_OR_RETURN(uint16_t alg, ParseBankName(bank));
    for (const auto& [idx, v] : pcrs) {
      const std::string i = std::to_string(idx);
      LIM_ASSIGN_OR_RETURN(int checked, ParseIndex(i, i));
      out[alg][checked] = v;
    }
  }
  return out;
}

PcrSelection SelectionOf(const PcrValues& values) {
  PcrSelection sel;
  for (const auto& [alg, pcrs] : values) {
    PcrBankSelection b{alg, {}};
    for (const auto& [i, v] : pcrs) b.pcrs.insert(i);
    sel.push_back(std::move(b));
  }
  return sel;
}

std::string SelectionToString(const PcrSelection& sel) {
  std::string out;
  for (const auto& b : sel) {
    if (!out.empty()) out += '+';
    out += TpmBankName(b.alg) + ":";
    bool first = true;
    for (int i : b.pcrs) {
      if (!first) out += ',';
      out += std::to_string(i);
      first = false;
    }
  }
  return out;
}

}  // namespace lim::tpm
