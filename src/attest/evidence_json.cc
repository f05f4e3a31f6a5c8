#include "attest/evidence_json.h"

#include <nlohmann/json.hpp>

#include <array>
#include <initializer_list>
#include <set>

#include "crypto/hash_algo.h"
#include "tpm/pcr.h"

namespace lim::attest {

using nlohmann::json;

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The 6-bit value of each base64 character, -1 for every other byte: a table instead of
// range tests, because the list records of every round are decoded through it.
constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kDecode = MakeDecodeTable();

int DecodeChar(char c) { return kDecode[static_cast<unsigned char>(c)]; }

// Dumps with invalid UTF-8 replaced: strings from the host (boot_id, limd's detail) must
// never make serialisation throw.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A cursor over one JSON object that checks every key is known and typed.
class Fields {
 public:
  Fields(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  Status Object(std::initializer_list<const char*> known) const {
    if (!j_.is_object()) return Status::InvalidArgument(path_ + ": not a JSON object");
    for (const auto& [key, value] : j_.items()) {
      bool ok = false;
      for (const char* k : known) ok = ok || key == k;
      if (!ok) return Status::InvalidArgument(path_ + ": unknown field \"" + Printable(key) + "\"");
    }
    return Status::Ok();
  }
  bool Has(const char* key) const { return j_.contains(key); }
  std::string Path(const char* key) const { return path_ + "." + key; }

  Result<const json*> Get(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end()) return Status::InvalidArgument(Path(key) + ": missing");
    return &*it;
  }
  Result<std::string> String(const char* key, size_t max_len) const {
    LIM_ASSIGN_OR_RETURN(const json* v, Get(key));
    if (!v->is_string()) return Status::InvalidArgument(Path(key) + ": not a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_len) return Status::InvalidArgument(Path(key) + ": longer than " + std::to_string(max_len));
    return s;
  }
  Result<uint64_t> Uint(const char* key, uint64_t max) const {
    LIM_ASSIGN_OR_RETURN(const json* v, Get(key));
    if (!v->is_number_unsigned()) return Status::InvalidArgument(Path(key) + ": not a non-negative integer");
    uint64_t n = v->get<uint64_t>();
    if (n > max) return Status::InvalidArgument(Path(key) + ": " + std::to_string(n) + " > " + std::to_string(max));
    return n;
  }
  Result<bool> Bool(const char* key) const {
    LIM_ASSIGN_OR_RETURN(const json* v, Get(key));
    if (!v->is_boolean()) return Status::InvalidArgument(Path(key) + ": not true/false");
    return v->get<bool>();
  }
  Result<Bytes> Base64(const char* key, size_t min_len, size_t max_len) const {
    // A little slack past the bound so that a value slightly too long says how long it is.
    LIM_ASSIGN_OR_RETURN(std::string s, String(key, max_len / 3 * 4 + 4 + 1024));
    auto b = Base64Decode(s);
    if (!b.ok()) return b.status().WithPrefix(Path(key));
    if (b->size() < min_len || b->size() > max_len) {
      return Status::InvalidArgument(Path(key) + ": " + std::to_string(b->size()) + " bytes, must be " +
                                     std::to_string(min_len) + ".." + std::to_string(max_len));
    }
    return b;
  }

  static std::string Printable(const std::string& s) {
    std::string out;
    for (char c : s.substr(0, 64)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    return out;
  }

 private:
  const json& j_;
  std::string path_;
};

Result<json> ParseDocument(std::string_view text, const std::string& what) {
  // Depth is bounded by the schema; nlohmann parses iteratively only for arrays/objects of
  // bounded nesting, so reject pathological nesting before it recurses.
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > 8) return Status::InvalidArgument(what + ": nested deeper than 8 levels");
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument(what + ": not valid JSON");
  return j;
}

// Bank names: "sha256" etc.; only hash algorithms the TPM knows.
Result<uint16_t> Bank(const std::string& name, const std::string& path) {
  auto alg = tpm::ParseBankName(name);
  if (!alg.ok()) return Status::InvalidArgument(path + ": unknown bank \"" + Fields::Printable(name) + "\"");
  return *alg;
}

Result<int> PcrIndex(const json& v, const std::string& path) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() >= static_cast<uint64_t>(tpm::kMaxPcrs)) {
    return Status::InvalidArgument(path + ": PCR index must be 0.." + std::to_string(tpm::kMaxPcrs - 1));
  }
  return static_cast<int>(v.get<uint64_t>());
}

Result<int> PcrKey(const std::string& key, const std::string& path) {
  if (key.empty() || key.size() > 2 || key.find_first_not_of("0123456789") != std::string::npos ||
      (key.size() == 2 && key[0] == '0')) {
    return Status::InvalidArgument(path + ": PCR index \"" + Fields::Printable(key) + "\" is not 0..23");
  }
  int i = std::stoi(key);
  if (i >= tpm::kMaxPcrs) return Status::InvalidArgument(path + ": PCR index " + key + " is not 0..23");
  return i;
}

json PcrsToJson(const PcrValueMap& pcrs) {
  json out = json::object();
  for (const auto& [alg, values] : pcrs) {
    json bank = json::object();
    for (const auto& [i, v] : values) bank[std::to_string(i)] = Base64Encode(v);
    out[TpmBankName(alg)] = bank;
  }
  return out;
}

Result<PcrValueMap> PcrsFromJson(const json& j, const std::string& path) {
  if (!j.is_object()) return Status::InvalidArgument(path + ": not a JSON object");
  PcrValueMap out;
  for (const auto& [name, bank] : j.items()) {
    std::string bpath = path + "." + Fields::Printable(name);
    LIM_ASSIGN_OR_RETURN(uint16_t alg, Bank(name, bpath));
    if (out.count(alg)) return Status::InvalidArgument(bpath + ": bank given twice");
    if (!bank.is_object()) return Status::InvalidArgument(bpath + ": not a JSON object");
    auto& values = out[alg];
    size_t digest_size = 0;
    if (auto h = HashAlgoByTpmAlg(alg); h.ok()) digest_size = h->size;
    for (const auto& [key, v] : bank.items()) {
      std::string ipath = bpath + "." + Fields::Printable(key);
      LIM_ASSIGN_OR_RETURN(int i, PcrKey(key, ipath));
      if (!v.is_string()) return Status::InvalidArgument(ipath + ": not a string");
      auto b = Base64Decode(v.get_ref<const std::string&>());
      if (!b.ok()) return b.status().WithPrefix(ipath);
      if (digest_size && b->size() != digest_size) {
        return Status::InvalidArgument(ipath + ": " + std::to_string(b->size()) + " bytes, a " + TpmBankName(alg) +
                                       " PCR has " + std::to_string(digest_size));
      }
      values[i] = std::move(*b);
    }
  }
  return out;
}

}  // namespace

std::string Base64Encode(const Bytes& b) {
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= b.size(); i += 3) {
    uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8) | b[i + 2];
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (size_t rest = b.size() - i; rest) {
    uint32_t v = uint32_t{b[i]} << 16;
    if (rest == 2) v |= uint32_t{b[i + 1]} << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<Bytes> Base64Decode(std::string_view t) {
  if (t.size() % 4 != 0) return Status::InvalidArgument("bad base64: length " + std::to_string(t.size()) + " is not a multiple of 4");
  Bytes out(t.size() / 4 * 3);
  uint8_t* o = out.data();
  // Every group but the last has no padding: four table lookups, one test of their OR.
  const size_t body = t.empty() ? 0 : t.size() - 4;
  for (size_t i = 0; i < body; i += 4) {
    const int a = DecodeChar(t[i]), b = DecodeChar(t[i + 1]), c = DecodeChar(t[i + 2]), d = DecodeChar(t[i + 3]);
    if ((a | b | c | d) < 0) {
      size_t k = 0;
      while (DecodeChar(t[i + k]) >= 0) ++k;
      return Status::InvalidArgument("bad base64 at character " + std::to_string(i + k));
    }
    const uint32_t n = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(c) << 6) | uint32_t(d);
    *o++ = static_cast<uint8_t>(n >> 16);
    *o++ = static_cast<uint8_t>(n >> 8);
    *o++ = static_cast<uint8_t>(n);
  }
  if (t.empty()) return out;
  // The last group: "xx==" or "xxx=" may pad it.
  const size_t i = body;
  int v[4];
  int pad = 0;
  for (int k = 0; k < 4; ++k) {
    char c = t[i + k];
    if (c == '=' && k >= 2 && (k == 3 || t[i + 3] == '=')) {
      v[k] = 0;
      ++pad;
      continue;
    }
    if (pad) return Status::InvalidArgument("bad base64 at character " + std::to_string(i + k));
    v[k] = DecodeChar(c);
    if (v[k] < 0) return Status::InvalidArgument("bad base64 at character " + std::to_string(i + k));
  }
  const uint32_t n = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
  // Canonical form only: the bits under the padding must be zero.
  if ((pad == 1 && (n & 0xff)) || (pad == 2 && (n & 0xffff))) {
    return Status::InvalidArgument("bad base64: non-canonical padding at character " + std::to_string(i));
  }
  *o++ = static_cast<uint8_t>(n >> 16);
  if (pad < 2) *o++ = static_cast<uint8_t>(n >> 8);
  if (pad < 1) *o++ = static_cast<uint8_t>(n);
  out.resize(static_cast<size_t>(o - out.data()));
  return out;
}

// ---- EvidenceRequest ----

std::string EvidenceRequestToJson(const EvidenceRequest& r) {
  json pcrs = json::array();
  for (const auto& b : r.pcrs) pcrs.push_back({{"bank", TpmBankName(b.alg)}, {"pcrs", b.pcrs}});
  return Dump({{"nonce", Base64Encode(r.nonce)},
               {"pcrs", pcrs},
               {"list_from", r.list_from},
               {"want_event_log", r.want_event_log},
               {"max_list_bytes", r.max_list_bytes}});
}

Result<EvidenceRequest> EvidenceRequestFromJson(std::string_view text) {
  const std::string p = "evidence request";
  LIM_ASSIGN_OR_RETURN(json j, ParseDocument(text, p));
  Fields f(j, p);
  LIM_RETURN_IF_ERROR(f.Object({"nonce", "pcrs", "list_from", "want_event_log", "max_list_bytes"}));
  EvidenceRequest r;
  LIM_ASSIGN_OR_RETURN(r.nonce, f.Base64("nonce", kMinNonceBytes, kMaxNonceBytes));
  LIM_ASSIGN_OR_RETURN(const json* pcrs, f.Get("pcrs"));
  if (!pcrs->is_array() || pcrs->empty() || pcrs->size() > 16) {
    return Status::InvalidArgument(f.Path("pcrs") + ": must be an array of 1..16 banks");
  }
  std::set<uint16_t> seen;
  for (size_t i = 0; i < pcrs->size(); ++i) {
    std::string bp = f.Path("pcrs") + "[" + std::to_string(i) + "]";
    Fields b((*pcrs)[i], bp);
    LIM_RETURN_IF_ERROR(b.Object({"bank", "pcrs"}));
    LIM_ASSIGN_OR_RETURN(std::string name, b.String("bank", 32));
    PcrBankRequest bank;
    LIM_ASSIGN_OR_RETURN(bank.alg, Bank(name, b.Path("bank")));
    if (!seen.insert(bank.alg).second) return Status::InvalidArgument(bp + ": bank " + name + " given twice");
    LIM_ASSIGN_OR_RETURN(const json* list, b.Get("pcrs"));
    if (!list->is_array() || list->empty() || list->size() > static_cast<size_t>(tpm::kMaxPcrs)) {
      return Status::InvalidArgument(b.Path("pcrs") + ": must be an array of 1..24 PCR indices");
    }
    for (const auto& v : *list) {
      LIM_ASSIGN_OR_RETURN(int idx, PcrIndex(v, b.Path("pcrs")));
      if (!bank.pcrs.empty() && idx <= bank.pcrs.back()) {
        return Status::InvalidArgument(b.Path("pcrs") + ": indices must ascend without repeats");
      }
      bank.pcrs.push_back(idx);
    }
    r.pcrs.push_back(std::move(bank));
  }
  LIM_ASSIGN_OR_RETURN(r.list_from, f.Uint("list_from", UINT64_MAX >> 1));
  LIM_ASSIGN_OR_RETURN(r.want_event_log, f.Bool("want_event_log"));
  LIM_ASSIGN_OR_RETURN(r.max_list_bytes, f.Uint("max_list_bytes", kMaxListBytesPerRound));
  return r;
}

// ---- Evidence ----

std::string EvidenceToJson(const Evidence& e) {
  json j = {{"nonce", Base64Encode(e.nonce)},
            {"quote", Base64Encode(e.quote)},
            {"signature", Base64Encode(e.signature)},
            {"pcrs", PcrsToJson(e.pcrs)},
            {"list",
             {{"first_index", e.list.first_index},
              {"records", Base64Encode(e.list.records)},
              {"list_bank", e.list.list_bank},
              {"byte_order", e.list.byte_order},
              {"total_entries", e.list.total_entries},
              {"source", e.list.source}}},
            {"boot_id", e.boot_id},
            {"limd", {{"running", e.limd.running}, {"detail", e.limd.detail}}}};
  if (e.event_log) j["event_log"] = Base64Encode(*e.event_log);
  return Dump(j);
}

Result<Evidence> EvidenceFromJson(std::string_view text) {
  const std::string p = "evidence";
  LIM_ASSIGN_OR_RETURN(json j, ParseDocument(text, p));
  Fields f(j, p);
  LIM_RETURN_IF_ERROR(f.Object({"nonce", "quote", "signature", "pcrs", "list", "event_log", "boot_id", "limd"}));
  Evidence e;
  LIM_ASSIGN_OR_RETURN(e.nonce, f.Base64("nonce", kMinNonceBytes, kMaxNonceBytes));
  // TPMS_ATTEST and TPMT_SIGNATURE fit the TPM's 4 KiB response buffer.
  LIM_ASSIGN_OR_RETURN(e.quote, f.Base64("quote", 1, 4096));
  LIM_ASSIGN_OR_RETURN(e.signature, f.Base64("signature", 1, 4096));
  LIM_ASSIGN_OR_RETURN(const json* pcrs, f.Get("pcrs"));
  LIM_ASSIGN_OR_RETURN(e.pcrs, PcrsFromJson(*pcrs, f.Path("pcrs")));
  LIM_ASSIGN_OR_RETURN(const json* list, f.Get("list"));
  Fields l(*list, f.Path("list"));
  LIM_RETURN_IF_ERROR(l.Object({"first_index", "records", "list_bank", "byte_order", "total_entries", "source"}));
  LIM_ASSIGN_OR_RETURN(e.list.first_index, l.Uint("first_index", UINT64_MAX >> 1));
  LIM_ASSIGN_OR_RETURN(e.list.records, l.Base64("records", 0, kMaxListBytesPerRound));
  LIM_ASSIGN_OR_RETURN(e.list.list_bank, l.String("list_bank", 16));
  if (!HashAlgoByName(e.list.list_bank).ok()) {
    return Status::InvalidArgument(l.Path("list_bank") + ": unknown hash \"" + Fields::Printable(e.list.list_bank) + "\"");
  }
  LIM_ASSIGN_OR_RETURN(e.list.byte_order, l.String("byte_order", 8));
  if (e.list.byte_order != "little" && e.list.byte_order != "big") {
    return Status::InvalidArgument(l.Path("byte_order") + ": must be \"little\" or \"big\"");
  }
  LIM_ASSIGN_OR_RETURN(e.list.total_entries, l.Uint("total_entries", UINT64_MAX >> 1));
  LIM_ASSIGN_OR_RETURN(e.list.source, l.String("source", 16));
  if (e.list.source != "limd" && e.list.source != "kernel") {
    return Status::InvalidArgument(l.Path("source") + ": must be \"limd\" or \"kernel\"");
  }
  if (f.Has("event_log")) {
    LIM_ASSIGN_OR_RETURN(Bytes log, f.Base64("event_log", 0, 16u << 20));
    e.event_log = std::move(log);
  }
  LIM_ASSIGN_OR_RETURN(e.boot_id, f.String("boot_id", 64));
  LIM_ASSIGN_OR_RETURN(const json* limd, f.Get("limd"));
  Fields ld(*limd, f.Path("limd"));
  LIM_RETURN_IF_ERROR(ld.Object({"running", "detail"}));
  LIM_ASSIGN_OR_RETURN(e.limd.running, ld.Bool("running"));
  LIM_ASSIGN_OR_RETURN(e.limd.detail, ld.String("detail", 4096));
  return e;
}

// ---- Identity and credential activation ----

std::string IdentityToJson(const Identity& id) {
  json j = {{"agent_id", id.agent_id}, {"ek_public", Base64Encode(id.ek_public)}, {"ak_public", Base64Encode(id.ak_public)}};
  if (id.ek_certificate) j["ek_certificate"] = Base64Encode(*id.ek_certificate);
  return Dump(j);
}

Result<Identity> IdentityFromJson(std::string_view text) {
  const std::string p = "identity";
  LIM_ASSIGN_OR_RETURN(json j, ParseDocument(text, p));
  Fields f(j, p);
  LIM_RETURN_IF_ERROR(f.Object({"agent_id", "ek_public", "ek_certificate", "ak_public"}));
  Identity id;
  LIM_ASSIGN_OR_RETURN(id.agent_id, f.String("agent_id", 255));
  if (id.agent_id.empty()) return Status::InvalidArgument(f.Path("agent_id") + ": empty");
  LIM_ASSIGN_OR_RETURN(id.ek_public, f.Base64("ek_public", 1, 4096));
  if (f.Has("ek_certificate")) {
    LIM_ASSIGN_OR_RETURN(Bytes cert, f.Base64("ek_certificate", 1, 16384));
    id.ek_certificate = std::move(cert);
  }
  LIM_ASSIGN_OR_RETURN(id.ak_public, f.Base64("ak_public", 1, 4096));
  return id;
}

std::string CredentialChallengeToJson(const CredentialChallenge& c) {
  return Dump({{"id_object", Base64Encode(c.id_object)}, {"secret", Base64Encode(c.secret)}});
}

Result<CredentialChallenge> CredentialChallengeFromJson(std::string_view text) {
  const std::string p = "credential challenge";
  LIM_ASSIGN_OR_RETURN(json j, ParseDocument(text, p));
  Fields f(j, p);
  LIM_RETURN_IF_ERROR(f.Object({"id_object", "secret"}));
  CredentialChallenge c;
  LIM_ASSIGN_OR_RETURN(c.id_object, f.Base64("id_object", 1, 4096));
  LIM_ASSIGN_OR_RETURN(c.secret, f.Base64("secret", 1, 4096));
  return c;
}

std::string CredentialResponseToJson(const CredentialResponse& c) { return Dump({{"credential", Base64Encode(c.credential)}}); }

Result<CredentialResponse> CredentialResponseFromJson(std::string_view text) {
  const std::string p = "credential response";
  LIM_ASSIGN_OR_RETURN(json j, ParseDocument(text, p));
  Fields f(j, p);
  LIM_RETURN_IF_ERROR(f.Object({"credential"}));
  CredentialResponse c;
  LIM_ASSIGN_OR_RETURN(c.credential, f.Base64("credential", 1, 64));
  return c;
}

}  // namespace lim::attest
