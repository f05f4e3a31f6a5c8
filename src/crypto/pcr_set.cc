#include "crypto/pcr_set.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cctype>
#include <sstream>
#include <vector>

#include "base/file.h"

namespace lim {

namespace {

int BankRank(const std::string& n) {
  static const char* kOrder[] = {"sha1", "sha256", "sha384", "sha512", "sm3_256", "sha3_256", "sha3_384", "sha3_512"};
  for (int i = 0; i < 8; ++i) {
    if (n == kOrder[i]) return i;
  }
  return 100;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool LooksBinary(std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\n' && c != '\r' && c != '\t') return true;
    if (u >= 0x7f) return true;
  }
  return false;
}

Status CheckSize(const std::string& bank, const Bytes& v, const std::string& where) {
  auto a = HashAlgoByName(bank);
  if (a.ok() && v.size() != a->size) {
    return Status::InvalidArgument(where + ": " + bank + " value has " + std::to_string(v.size()) +
                                   " bytes, expected " + std::to_string(a->size));
  }
  return Status::Ok();
}

// Sets a value read from a file. One PCR given twice with different values (two "PCR-10"
// lines, "sha1" and "SHA1" objects) is an error: which one counts cannot be guessed.
Status SetOnce(PcrSet* set, const std::string& bank, uint32_t pcr, Bytes v, const std::string& where) {
  const Bytes* have = set->Get(bank, pcr);
  if (have && *have != v) {
    return Status::InvalidArgument(where + ": " + bank + " PCR " + std::to_string(pcr) + " given twice, as " +
                                   ToHex(*have) + " and as " + ToHex(v));
  }
  set->Set(bank, pcr, std::move(v));
  return Status::Ok();
}

Result<PcrSet> ParseJson(std::string_view text, const std::string& origin) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument(origin + ": not a PCR-set JSON object");
  PcrSet set;
  for (auto& [bank_in, pcrs] : j.items()) {
    LIM_ASSIGN_OR_RETURN(std::string bank, CanonicalBankName(bank_in));
    if (!pcrs.is_object()) return Status::InvalidArgument(origin + ": bank " + bank_in + " is not an object");
    for (auto& [idx, val] : pcrs.items()) {
      char* end = nullptr;
      unsigned long n = std::strtoul(idx.c_str(), &end, 10);
      if (idx.empty() || *end != '\0' || n > 63) {
        return Status::InvalidArgument(origin + ": bad PCR index '" + idx + "' in bank " + bank_in);
      }
      if (!val.is_string()) return Status::InvalidArgument(origin + ": " + bank_in + "/" + idx + " is not a hex string");
      auto v = FromHex(val.get<std::string>());
      if (!v.ok()) return v.status().WithPrefix(origin + ": " + bank_in + "/" + idx);
      LIM_RETURN_IF_ERROR(CheckSize(bank, *v, origin + ": " + bank_in + "/" + idx));
      LIM_RETURN_IF_ERROR(SetOnce(&set, bank, static_cast<uint32_t>(n), std::move(v).value(), origin));
    }
  }
  return set;
}

// evmctl: "PCR-NN" then one separator char, then hex with optional spaces between bytes.
Result<PcrSet> ParseEvmctl(std::string_view text, const std::string& bank, const std::string& origin) {
  PcrSet set;
  std::istringstream in{std::string(text)};
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.rfind("PCR-", 0) != 0 || line.size() < 7) continue;
    if (!std::isdigit(static_cast<unsigned char>(line[4])) || !std::isdigit(static_cast<unsigned char>(line[5]))) continue;
    uint32_t pcr = static_cast<uint32_t>((line[4] - '0') * 10 + (line[5] - '0'));
    // The same bound as the other forms (a set must survive ToJson and back).
    if (pcr > 63) return Status::InvalidArgument(origin + ":" + std::to_string(lineno) + ": bad PCR index " + line.substr(4, 2));
    std::string hex;
    for (char c : line.substr(7)) {
      if (!std::isspace(static_cast<unsigned char>(c))) hex += c;
    }
    auto v = FromHex(hex);
    if (!v.ok()) return v.status().WithPrefix(origin + ":" + std::to_string(lineno));
    LIM_RETURN_IF_ERROR(CheckSize(bank, *v, origin + ":" + std::to_string(lineno)));
    LIM_RETURN_IF_ERROR(SetOnce(&set, bank, pcr, std::move(v).value(), origin + ":" + std::to_string(lineno)));
  }
  return set;
}

// tpm2_pcrread output ("sha256:" then indented "10: 0x7FAC…" lines), and the IBM TSS
// tsspcrread dump ("pcrread: …" then "0: 92c1…" lines, bank from ALG or sha1).
Result<PcrSet> ParsePcrreadText(std::string_view text, const std::string& default_bank, const std::string& origin) {
  PcrSet set;
  std::istringstream in{std::string(text)};
  std::string line, bank = default_bank.empty() ? "sha1" : default_bank;
  LIM_ASSIGN_OR_RETURN(bank, CanonicalBankName(bank));
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    std::string where = origin + ":" + std::to_string(lineno);
    auto colon = t.find(':');
    if (colon == std::string::npos) return Status::InvalidArgument(where + ": expected 'key: value'");
    std::string key = Trim(t.substr(0, colon)), val = Trim(t.substr(colon + 1));
    bool numeric = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (!numeric) {
      if (val.empty()) {
        auto b = CanonicalBankName(key);
        if (!b.ok()) return b.status().WithPrefix(where);
        bank = *b;
      }
      continue;  // other "key: value" lines are metadata (tsspcrread's "pcrread: …")
    }
    unsigned long n = std::strtoul(key.c_str(), nullptr, 10);
    if (n > 63) return Status::InvalidArgument(where + ": bad PCR index '" + key + "'");
    auto v = FromHex(val);
    if (!v.ok()) return v.status().WithPrefix(where);
    LIM_RETURN_IF_ERROR(CheckSize(bank, *v, where));
    LIM_RETURN_IF_ERROR(SetOnce(&set, bank, static_cast<uint32_t>(n), std::move(v).value(), where));
  }
  if (set.empty()) return Status::InvalidArgument(origin + ": no PCR values found");
  return set;
}

}  // namespace

Result<std::string> CanonicalBankName(std::string_view name) {
  LIM_ASSIGN_OR_RETURN(HashAlgo a, HashAlgoByName(name));
  if (a.tpm_alg == 0) {
    // Kernel-only algorithms can still be a bank name in a software replay.
    return std::string(a.tpm_name);
  }
  return TpmBankName(a.tpm_alg);
}

bool BankNameLess(const std::string& a, const std::string& b) {
  int ra = BankRank(a), rb = BankRank(b);
  return ra != rb ? ra < rb : a < b;
}

const Bytes* PcrSet::Get(const std::string& bank, uint32_t pcr) const {
  auto b = banks_.find(bank);
  if (b == banks_.end()) return nullptr;
  auto p = b->second.find(pcr);
  return p == b->second.end() ? nullptr : &p->second;
}

void PcrSet::Merge(const PcrSet& other) {
  for (const auto& [bank, pcrs] : other.banks_) {
    for (const auto& [idx, v] : pcrs) banks_[bank][idx] = v;
  }
}

std::string PcrSet::ToJson() const {
  std::vector<std::string> names;
  for (const auto& [n, _] : banks_) names.push_back(n);
  std::sort(names.begin(), names.end(), BankNameLess);
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    out += (i ? ",\"" : "\"") + names[i] + "\":{";
    bool first = true;
    for (const auto& [idx, v] : banks_.at(names[i])) {
      out += (first ? "\"" : ",\"") + std::to_string(idx) + "\":\"" + ToHex(v) + "\"";
      first = false;
    }
    out += "}";
  }
  return out + "}";
}

std::string PcrSet::ToEvmctlText(const std::string& bank) const {
  auto algo = HashAlgoByName(bank);
  size_t size = algo.ok() ? algo->size : 20;
  std::string text;
  for (uint32_t i = 0; i < 24; ++i) {
    const Bytes* v = Get(bank, i);
    char head[16];
    std::snprintf(head, sizeof head, "PCR-%02u: ", i);
    text += head + (v ? ToHex(*v) : std::string(size * 2, '0')) + "\n";
  }
  return text;
}

Result<PcrSet> PcrSet::Parse(std::string_view data, const std::string& default_bank, const std::string& origin) {
  if (LooksBinary(data)) {
    if (default_bank.empty()) return Status::InvalidArgument(origin + ": binary PCR file needs a bank (ALG,FILE)");
    LIM_ASSIGN_OR_RETURN(HashAlgo a, HashAlgoByName(default_bank));
    if (data.empty() || data.size() % a.size != 0 || data.size() / a.size > 24) {
      return Status::InvalidArgument(origin + ": binary PCR file of " + std::to_string(data.size()) +
                                     " bytes is not a whole number of " + default_bank + " values");
    }
    PcrSet set;
    LIM_ASSIGN_OR_RETURN(std::string bank, CanonicalBankName(default_bank));
    for (size_t i = 0; i * a.size < data.size(); ++i) {
      ByteView v = AsBytes(data.substr(i * a.size, a.size));
      set.Set(bank, static_cast<uint32_t>(i), Bytes(v.begin(), v.end()));
    }
    return set;
  }
  std::string t = Trim(data);
  if (!t.empty() && t[0] == '{') return ParseJson(t, origin);
  if (t.rfind("PCR-", 0) == 0 || t.find("\nPCR-") != std::string::npos) {
    std::string bank = default_bank.empty() ? "sha1" : default_bank;
    LIM_ASSIGN_OR_RETURN(bank, CanonicalBankName(bank));
    return ParseEvmctl(t, bank, origin);
  }
  if (!t.empty()) return ParsePcrreadText(t, default_bank, origin);
  return Status::InvalidArgument(origin + ": empty PCR file");
}

Result<PcrSet> PcrSet::Load(const std::string& arg) {
  std::string bank, path = arg;
  auto comma = arg.find(',');
  if (comma != std::string::npos) {
    bank = arg.substr(0, comma);
    path = arg.substr(comma + 1);
    if (!HashAlgoByName(bank).ok()) {  // a comma inside a file name, not ALG,FILE
      bank.clear();
      path = arg;
    }
  }
  LIM_ASSIGN_OR_RETURN(std::string text, ReadFileTextBounded(path, kMaxPcrFileSize, "a PCR file"));
  return Parse(text, bank, path);
}

}  // namespace lim
