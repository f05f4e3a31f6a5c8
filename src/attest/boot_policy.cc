#include "attest/boot_policy.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "attest/runtime_policy.h"
#include "crypto/hash_algo.h"
#include "tcg/describe.h"
#include "tcg/efi.h"
#include "tcg/event_type.h"
#include "tcg/replay.h"

namespace lim::attest {
namespace {

using nlohmann::json;

const char kCmdlinePrefix[] = "kernel_cmdline: ";

// One event of the log that a component list applies to.
struct Classified {
  size_t event = 0;          // index in log.events
  std::string component;     // "shim", "pk", …
  std::string position;      // "2nd PCR 4 boot application", for the explanation
};

std::string Ordinal(size_t n) {
  static const char* kSuffix[] = {"th", "st", "nd", "rd"};
  size_t m = n % 100;
  const char* s = (m >= 11 && m <= 13) || n % 10 > 3 ? "th" : kSuffix[n % 10];
  return std::to_string(n) + s;
}

std::string DataText(ByteView data) {
  std::string s(reinterpret_cast<const char*>(data.data()), data.size());
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

bool Contains(std::string s, std::string_view what) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s.find(what) != std::string::npos;
}

// The variable a digest-checked EV_EFI_VARIABLE_DRIVER_CONFIG event in PCR 7 sets: its
// name when it is one of SecureBoot, PK, KEK, db, dbx in its own GUID namespace.
std::optional<tcg::UefiVariable> SecureBootVariable(const tcg::Event& e, tcg::DigestCheck check) {
  if (e.pcr != 7 || e.type != tcg::kEvEfiVariableDriverConfig || check != tcg::DigestCheck::kMatches) return {};
  auto v = tcg::ParseUefiVariable(e.data);
  if (!v) return {};
  bool global = tcg::IsGlobalVariableGuid(v->guid);
  bool secdb = tcg::IsImageSecurityDbGuid(v->guid);
  if ((global && (v->name == "SecureBoot" || v->name == "PK" || v->name == "KEK")) ||
      (secdb && (v->name == "db" || v->name == "dbx"))) {
    return v;
  }
  return {};
}

std::vector<Classified> Classify(const tcg::EventLog& log, std::vector<tcg::DigestCheck>* checks) {
  std::vector<Classified> out;
  checks->clear();
  size_t apps = 0;
  for (size_t i = 0; i < log.events.size(); ++i) {
    const tcg::Event& e = log.events[i];
    tcg::DigestCheck c = tcg::CheckEventDigests(e);
    checks->push_back(c);
    if (e.spec_id_header || e.type == tcg::kEvNoAction) continue;
    const bool code = c == tcg::DigestCheck::kNotCheckable;
    if (e.pcr == 0 && (e.type == tcg::kEvSCrtmContents || e.type == tcg::kEvSCrtmVersion)) {
      out.push_back({i, "scrtm", "S-CRTM event in PCR 0"});
    } else if (e.pcr == 0 && code) {
      out.push_back({i, "platform_firmware", "firmware code event in PCR 0"});
    } else if (e.pcr == 4 && code) {
      ++apps;
      const char* comp = apps == 1 ? "shim" : apps == 2 ? "grub" : "kernel";
      out.push_back({i, comp, Ordinal(apps) + " boot application in PCR 4"});
    } else if (e.pcr == 9 && code && e.type == tcg::kEvIpl && (Contains(DataText(e.data), "initrd") ||
                                                               Contains(DataText(e.data), "initramfs"))) {
      out.push_back({i, "initrd", "GRUB initrd file in PCR 9"});
    } else if (e.pcr == 8 && c == tcg::DigestCheck::kMatches && DataText(e.data).rfind(kCmdlinePrefix, 0) == 0) {
      out.push_back({i, "kernel_cmdline", "GRUB kernel command line in PCR 8"});
    } else if (auto v = SecureBootVariable(e, c)) {
      std::string name = v->name;
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      out.push_back({i, name == "secureboot" ? "secure_boot" : name, v->name + " variable in PCR 7"});
    }
  }
  return out;
}

std::string Short(std::string s, size_t max = 160) {
  if (s.size() > max) s = s.substr(0, max) + "…";
  return s;
}

Finding EventFinding(Reason r, const tcg::Event& e, const std::string& bank, ByteView digest) {
  Finding f;
  f.reason = r;
  f.entry = e.index;
  f.pcr = static_cast<int>(e.pcr);
  f.bank = bank;
  f.tmpl = tcg::EventTypeName(e.type);
  f.path = Short(tcg::DescribeEventData(e));
  if (!digest.empty()) f.digest = bank + ":" + ToHex(digest);
  return f;
}

// A finding about something the log lacks (no event to name).
Finding Missing(Reason r, std::optional<int> pcr, std::string reference, std::string detail) {
  Finding f;
  f.reason = r;
  f.pcr = pcr;
  f.reference = std::move(reference);
  f.detail = std::move(detail);
  return f;
}

std::string Reference(const std::string& component, const std::vector<Bytes>& allowed, const std::string& bank) {
  std::string out = "policy boot." + component + ":";
  for (size_t i = 0; i < allowed.size() && i < 3; ++i) out += " " + bank + ":" + ToHex(allowed[i]);
  if (allowed.size() > 3) out += " (+" + std::to_string(allowed.size() - 3) + " more)";
  if (allowed.empty()) out += " (none)";
  return out;
}

const std::vector<std::string> kDigestComponents = {"scrtm", "platform_firmware", "shim", "grub", "kernel",
                                                    "initrd", "pk", "kek", "db", "dbx"};

}  // namespace

const std::vector<std::string>& BootPolicy::ComponentNames() { return kDigestComponents; }

std::string PyRegexEscape(std::string_view text) {
  std::string out;
  // Python 3.7's set: the metacharacters, '-', '&', '~', '#' and whitespace.
  static const std::string_view kSpecial = "()[]{}?*+-|^$\\.&~# \t\n\r\v\f";
  for (char c : text) {
    if (kSpecial.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

void BootPolicy::Allow(const std::string& component, Bytes digest) {
  auto& v = allowed_[component];
  if (std::find(v.begin(), v.end(), digest) == v.end()) v.push_back(std::move(digest));
}

Status BootPolicy::AllowKernelCmdline(const std::string& re) {
  for (const auto& c : cmdlines_) {
    if (c.source() == re) return Status::Ok();
  }
  LIM_ASSIGN_OR_RETURN(PyRegex r, PyRegex::Compile(re, "boot.kernel_cmdline"));
  cmdlines_.push_back(std::move(r));
  return Status::Ok();
}

const std::vector<Bytes>& BootPolicy::allowed(const std::string& component) const {
  static const std::vector<Bytes> kNone;
  auto it = allowed_.find(component);
  return it == allowed_.end() ? kNone : it->second;
}

bool BootPolicy::empty() const {
  return !secure_boot_ && cmdlines_.empty() &&
         std::all_of(allowed_.begin(), allowed_.end(), [](const auto& kv) { return kv.second.empty(); });
}

Result<BootPolicy> BootPolicy::FromJsonText(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("boot: expected an object");
  BootPolicy p;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const std::string w = "boot." + k;
    if (k == "bank") {
      auto alg = it->is_string() ? HashAlgoByName(it->get<std::string>()) : Result<HashAlgo>(Status::InvalidArgument(""));
      if (!alg.ok() || alg->tpm_alg == 0) return Status::InvalidArgument(w + ": expected a TPM bank name (sha256)");
      p.bank_ = alg->tpm_alg;
    } else if (k == "secure_boot") {
      if (!it->is_boolean()) return Status::InvalidArgument(w + ": expected true or false");
      p.secure_boot_ = it->get<bool>();
    } else if (k == "kernel_cmdline") {
      if (!it->is_array()) return Status::InvalidArgument(w + ": expected a list of regular expressions");
      for (size_t i = 0; i < it->size(); ++i) {
        if (!(*it)[i].is_string()) return Status::InvalidArgument(w + "[" + std::to_string(i) + "]: expected a string");
        auto s = p.AllowKernelCmdline((*it)[i].get<std::string>());
        if (!s.ok()) return s.WithPrefix(w + "[" + std::to_string(i) + "]");
      }
    } else if (std::find(kDigestComponents.begin(), kDigestComponents.end(), k) != kDigestComponents.end()) {
      if (!it->is_array()) return Status::InvalidArgument(w + ": expected a list of digests");
      auto& dst = p.allowed_[k];
      for (size_t i = 0; i < it->size(); ++i) {
        std::string wi = w + "[" + std::to_string(i) + "]";
        if (!(*it)[i].is_string()) return Status::InvalidArgument(wi + ": expected a string");
        auto d = ParsePolicyDigest((*it)[i].get<std::string>());
        if (!d.ok()) return d.status().WithPrefix(wi);
        if (std::find(dst.begin(), dst.end(), *d) == dst.end()) dst.push_back(std::move(d).value());
      }
    } else {
      return Status::InvalidArgument("boot: unknown key \"" + k + "\"");
    }
  }
  auto algo = HashAlgoByTpmAlg(p.bank_);
  for (const auto& [k, v] : p.allowed_) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (algo.ok() && v[i].size() != algo->size) {
        return Status::InvalidArgument("boot." + k + "[" + std::to_string(i) + "]: not a " + TpmBankName(p.bank_) +
                                       " digest");
      }
    }
  }
  return p;
}

std::string BootPolicy::ToJsonText() const {
  json j = json::object();
  j["bank"] = TpmBankName(bank_);
  j["secure_boot"] = secure_boot_;
  for (const auto& k : kDigestComponents) {
    auto it = allowed_.find(k);
    if (it == allowed_.end()) continue;
    json a = json::array();
    for (const auto& d : it->second) a.push_back(ToHex(d));
    j[k] = a;
  }
  if (!cmdlines_.empty()) {
    json a = json::array();
    for (const auto& c : cmdlines_) a.push_back(c.source());
    j["kernel_cmdline"] = a;
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<Finding> BootPolicy::Check(const tcg::EventLog& log) const {
  std::vector<Finding> out;
  const std::string bank = TpmBankName(bank_);
  std::vector<tcg::DigestCheck> checks;
  std::vector<Classified> events = Classify(log, &checks);
  std::map<std::string, size_t> seen;
  // PCR 0 code is held against S-CRTM and firmware digests together: its type is not
  // measured, so a firmware blob relabelled as S-CRTM must not escape the check.
  std::vector<Bytes> firmware = allowed("scrtm");
  for (const auto& d : allowed("platform_firmware")) firmware.push_back(d);

  for (const auto& c : events) {
    const tcg::Event& e = log.events[c.event];
    ++seen[c.component];
    if (c.component == "secure_boot") continue;  // below
    if (c.component == "kernel_cmdline") {
      if (cmdlines_.empty()) continue;
      std::string line = DataText(e.data).substr(sizeof kCmdlinePrefix - 1);
      if (std::any_of(cmdlines_.begin(), cmdlines_.end(), [&](const PyRegex& r) { return r.FullMatch(line); })) continue;
      Finding f = EventFinding(Reason::kBootComponent, e, bank, e.DigestFor(bank_));
      f.path = Short(line);
      std::string ref = "policy boot.kernel_cmdline:";
      for (size_t i = 0; i < cmdlines_.size() && i < 2; ++i) ref += " \"" + Short(cmdlines_[i].source(), 80) + "\"";
      f.reference = ref;
      f.detail = "kernel command line not allowed (" + c.position + ")";
      out.push_back(std::move(f));
      continue;
    }
    const bool pcr0 = c.component == "scrtm" || c.component == "platform_firmware";
    const std::vector<Bytes>& list = pcr0 ? firmware : allowed(c.component);
    if (pcr0 ? (allowed_.count("scrtm") == 0 && allowed_.count("platform_firmware") == 0)
             : allowed_.count(c.component) == 0) {
      continue;  // the policy says nothing about this component
    }
    ByteView d = e.DigestFor(bank_);
    if (d.empty()) {
      Finding f = EventFinding(Reason::kBootComponent, e, bank, d);
      f.reference = Reference(c.component, allowed(c.component), bank);
      f.detail = "the event has no " + bank + " digest (" + c.position + ")";
      out.push_back(std::move(f));
      continue;
    }
    if (std::any_of(list.begin(), list.end(), [&](const Bytes& a) { return a.size() == d.size() && std::equal(a.begin(), a.end(), d.begin()); })) {
      continue;
    }
    Finding f = EventFinding(Reason::kBootComponent, e, bank, d);
    f.reference = Reference(c.component, allowed(c.component), bank);
    f.detail = c.component + " digest not allowed (" + c.position + ")";
    out.push_back(std::move(f));
  }

  // A component the policy lists must be in the log.
  static const std::map<std::string, std::string> kWhere = {
      {"scrtm", "no S-CRTM event in PCR 0"},
      {"platform_firmware", "no firmware code event in PCR 0"},
      {"shim", "no boot application in PCR 4"},
      {"grub", "no 2nd boot application in PCR 4"},
      {"kernel", "no 3rd boot application in PCR 4"},
      {"initrd", "no GRUB initrd measurement in PCR 9"},
      {"pk", "no PK variable event in PCR 7"},
      {"kek", "no KEK variable event in PCR 7"},
      {"db", "no db variable event in PCR 7"},
      {"dbx", "no dbx variable event in PCR 7"},
  };
  for (const auto& [k, v] : allowed_) {
    if (seen[k] > 0) continue;
    out.push_back(Missing(Reason::kBootComponent, std::nullopt, Reference(k, v, bank),
                          kWhere.count(k) ? kWhere.at(k) : "component " + k + " not in the log"));
  }
  if (!cmdlines_.empty() && seen["kernel_cmdline"] == 0) {
    out.push_back(Missing(Reason::kBootComponent, 8, "policy boot.kernel_cmdline", "no GRUB kernel command line in PCR 8"));
  }

  if (secure_boot_) {
    bool on = false;
    for (const auto& c : events) {
      if (c.component != "secure_boot") continue;
      const tcg::Event& e = log.events[c.event];
      auto v = tcg::ParseUefiVariable(e.data);
      if (v && v->data.size() == 1 && v->data[0] == 1) {
        on = true;
        continue;
      }
      Finding f = EventFinding(Reason::kSecureBoot, e, bank, e.DigestFor(bank_));
      f.reference = "policy boot.secure_boot: true (SecureBoot=1)";
      f.detail = "Secure Boot is off";
      out.push_back(std::move(f));
      on = false;
      break;
    }
    if (!on && (out.empty() || out.back().reason != Reason::kSecureBoot)) {
      out.push_back(Missing(Reason::kSecureBoot, 7, "policy boot.secure_boot: true (SecureBoot=1)",
                            "no digest-checked SecureBoot variable event in PCR 7"));
    }
    for (const char* key : {"pk", "kek", "db", "dbx"}) {
      bool present = false;
      for (const auto& c : events) {
        if (c.component != key) continue;
        auto v = tcg::ParseUefiVariable(log.events[c.event].data);
        if (v && !v->data.empty()) present = true;
      }
      if (present) continue;
      std::string name = std::string(key) == "pk" ? "PK" : std::string(key) == "kek" ? "KEK" : key;
      out.push_back(Missing(Reason::kSecureBoot, 7, "policy boot.secure_boot: true",
                            "Secure Boot variable " + name + " is missing or empty"));
    }
  }
  return out;
}

Result<BootPolicy> LearnBootPolicy(const tcg::EventLog& log, uint16_t bank) {
  BootPolicy p;
  if (bank == 0) {
    bank = 0x000B;
    auto banks = log.Banks();
    if (!banks.empty() && std::none_of(banks.begin(), banks.end(), [](const auto& b) { return b.alg == 0x000B; })) {
      bank = banks.front().alg;
    }
  }
  p.set_bank(bank);
  std::vector<tcg::DigestCheck> checks;
  bool any = false, sb_on = false;
  for (const auto& c : Classify(log, &checks)) {
    const tcg::Event& e = log.events[c.event];
    if (c.component == "secure_boot") {
      auto v = tcg::ParseUefiVariable(e.data);
      sb_on = v && v->data.size() == 1 && v->data[0] == 1;
      continue;
    }
    if (c.component == "kernel_cmdline") {
      LIM_RETURN_IF_ERROR(p.AllowKernelCmdline(PyRegexEscape(DataText(e.data).substr(sizeof kCmdlinePrefix - 1))));
      continue;
    }
    ByteView d = e.DigestFor(bank);
    if (d.empty()) continue;
    any = true;
    p.Allow(c.component, Bytes(d.begin(), d.end()));
  }
  if (!any) return Status::InvalidArgument("the event log has no boot component with a " + TpmBankName(bank) + " digest");
  if (sb_on) {
    bool keys = true;
    for (const char* k : {"pk", "kek", "db", "dbx"}) keys = keys && !p.allowed(k).empty();
    p.set_secure_boot(keys);
  }
  return p;
}

}  // namespace lim::attest
