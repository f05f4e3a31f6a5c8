// The parse half of policy.h (the kernel's ima_parse_rule and ima_validate_rule, one method per
// keyword) and the names; a rule is shown by policy_show.cc.
#include "ima/policy.h"

#include <cstdio>
#include <limits>
#include <optional>

#include "base/file.h"
#include "crypto/hash_algo.h"
#include "ima/template.h"

namespace lim::ima {

namespace {

constexpr std::array<std::string_view, kImaHookCount> kHookNames = {
    "NONE",          "FILE_CHECK",         "MMAP_CHECK",            "MMAP_CHECK_REQPROT",
    "BPRM_CHECK",    "CREDS_CHECK",        "POST_SETATTR",          "MODULE_CHECK",
    "FIRMWARE_CHECK", "KEXEC_KERNEL_CHECK", "KEXEC_INITRAMFS_CHECK", "POLICY_CHECK",
    "KEXEC_CMDLINE", "KEY_CHECK",          "CRITICAL_DATA",         "SETXATTR_CHECK",
};

// crypto_has_alg() on the reference kernel: RIPEMD-128/256/320 and Tiger were removed from
// the kernel's crypto API in 5.11, so appraise_algos= refuses them.
bool KernelCryptoHas(int id) { return !(id >= 8 && id <= 10) && !(id >= 14 && id <= 16); }

// policy_tokens[] in the kernel's order; match_token() takes the first that fits.
enum class Opt {
  kMeasure, kDontMeasure, kAppraise, kDontAppraise, kAudit, kHash, kDontHash,
  kObjUser, kObjRole, kObjType, kSubjUser, kSubjRole, kSubjType,
  kFunc, kMask, kFsmagic, kFsname, kFsuuid,
  kUidEq, kEuidEq, kGidEq, kEgidEq, kFownerEq, kFgroupEq,
  kUidGt, kEuidGt, kGidGt, kEgidGt, kFownerGt, kFgroupGt,
  kUidLt, kEuidLt, kGidLt, kEgidLt, kFownerLt, kFgroupLt,
  kDigestType, kAppraiseType, kAppraiseFlag, kAppraiseAlgos, kPermitDirectio, kPcr,
  kTemplate, kKeyrings, kLabel, kErr,
};

struct Pattern {
  Opt opt;
  std::string_view text;  // keyword, or "keyword=" / "keyword>" / "keyword<" for %s
  bool has_arg;
};

constexpr Pattern kPatterns[] = {
    {Opt::kMeasure, "measure", false},        {Opt::kDontMeasure, "dont_measure", false},
    {Opt::kAppraise, "appraise", false},      {Opt::kDontAppraise, "dont_appraise", false},
    {Opt::kAudit, "audit", false},            {Opt::kHash, "hash", false},
    {Opt::kDontHash, "dont_hash", false},     {Opt::kObjUser, "obj_user=", true},
    {Opt::kObjRole, "obj_role=", true},       {Opt::kObjType, "obj_type=", true},
    {Opt::kSubjUser, "subj_user=", true},     {Opt::kSubjRole, "subj_role=", true},
    {Opt::kSubjType, "subj_type=", true},     {Opt::kFunc, "func=", true},
    {Opt::kMask, "mask=", true},              {Opt::kFsmagic, "fsmagic=", true},
    {Opt::kFsname, "fsname=", true},          {Opt::kFsuuid, "fsuuid=", true},
    {Opt::kUidEq, "uid=", true},              {Opt::kEuidEq, "euid=", true},
    {Opt::kGidEq, "gid=", true},              {Opt::kEgidEq, "egid=", true},
    {Opt::kFownerEq, "fowner=", true},        {Opt::kFgroupEq, "fgroup=", true},
    {Opt::kUidGt, "uid>", true},              {Opt::kEuidGt, "euid>", true},
    {Opt::kGidGt, "gid>", true},              {Opt::kEgidGt, "egid>", true},
    {Opt::kFownerGt, "fowner>", true},        {Opt::kFgroupGt, "fgroup>", true},
    {Opt::kUidLt, "uid<", true},              {Opt::kEuidLt, "euid<", true},
    {Opt::kGidLt, "gid<", true},              {Opt::kEgidLt, "egid<", true},
    {Opt::kFownerLt, "fowner<", true},        {Opt::kFgroupLt, "fgroup<", true},
    {Opt::kDigestType, "digest_type=", true}, {Opt::kAppraiseType, "appraise_type=", true},
    {Opt::kAppraiseFlag, "appraise_flag=", true},
    {Opt::kAppraiseAlgos, "appraise_algos=", true},
    {Opt::kPermitDirectio, "permit_directio", false},
    {Opt::kPcr, "pcr=", true},                {Opt::kTemplate, "template=", true},
    {Opt::kKeyrings, "keyrings=", true},      {Opt::kLabel, "label=", true},
};

// Printable rendering of a token for messages (control bytes as \xNN, '\r' as \r).
std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

enum class NumError { kOk, kInvalid, kRange };

int DigitValue(char c, int base) {
  int d = -1;
  if (c >= '0' && c <= '9') d = c - '0';
  else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
  else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
  return d < base ? d : -1;
}

// _kstrtoull(): digits (hex may start with 0x), nothing after them.
NumError ParseUnsignedDigits(std::string_view s, int base, uint64_t* out) {
  if (base == 16 && s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  uint64_t v = 0;
  bool overflow = false;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    int d = DigitValue(s[i], base);
    if (d < 0) break;
    if (v > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
      overflow = true;
    }
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  if (overflow) return NumError::kRange;
  if (i == 0 || i != s.size()) return NumError::kInvalid;
  *out = v;
  return NumError::kOk;
}

// kstrtoul(): an optional '+', then _kstrtoull().
NumError KstrToUl(std::string_view s, int base, uint64_t* out) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  return ParseUnsignedDigits(s, base, out);
}

// kstrtoint(s, 10): optional '-' or '+', range of int.
NumError KstrToInt(std::string_view s, int64_t* out) {
  uint64_t mag = 0;
  bool neg = !s.empty() && s[0] == '-';
  NumError e = neg ? ParseUnsignedDigits(s.substr(1), 10, &mag) : KstrToUl(s, 10, &mag);
  if (e != NumError::kOk) return e;
  if (neg) {
    if (mag > static_cast<uint64_t>(std::numeric_limits<int>::max()) + 1) return NumError::kRange;
    *out = -static_cast<int64_t>(mag);
  } else {
    if (mag > static_cast<uint64_t>(std::numeric_limits<int>::max())) return NumError::kRange;
    *out = static_cast<int64_t>(mag);
  }
  return NumError::kOk;
}

// uuid_parse(): the first 36 characters must be a UUID; the kernel ignores anything after.
bool ParseUuid(std::string_view s, std::array<uint8_t, 16>* out) {
  if (s.size() < 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (DigitValue(s[i], 16) < 0) {
      return false;
    }
  }
  size_t pos = 0;
  for (int b = 0; b < 16; ++b) {
    if (s[pos] == '-') ++pos;
    (*out)[b] = static_cast<uint8_t>(DigitValue(s[pos], 16) * 16 + DigitValue(s[pos + 1], 16));
    pos += 2;
  }
  return true;
}

bool UuidIsNull(const std::array<uint8_t, 16>& u) {
  for (uint8_t b : u) {
    if (b) return false;
  }
  return true;
}

// ima_alloc_rule_opt_list(): '|'-separated, no empty item.
bool ParseOptList(std::string_view s, std::vector<std::string>* out) {
  out->clear();
  size_t start = 0;
  while (true) {
    size_t bar = s.find('|', start);
    std::string_view item = s.substr(start, bar == std::string_view::npos ? std::string_view::npos : bar - start);
    if (item.empty()) return false;
    out->emplace_back(item);
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  return true;
}

// The operator of an id keyword pattern ("uid=", "euid>", "fowner<").
CmpOp OpOf(std::string_view pattern) {
  char c = pattern.back();
  return c == '>' ? CmpOp::kGt : c == '<' ? CmpOp::kLt : CmpOp::kEq;
}

int FlagBit(uint32_t flag) {
  int bit = 0;
  while (flag > 1) {
    flag >>= 1;
    ++bit;
  }
  return bit;
}

// Builds one rule from its tokens, remembering where each flag came from so that a rule the
// kernel refuses can be blamed on the right token.
class RuleParser {
 public:
  struct Token {
    std::string_view text;
    int col;
  };

  RuleParser(int line, std::vector<PolicyDiagnostic>* warnings) : warnings_(warnings) {
    rule_.line = line;
    flag_col_.fill(0);
    lsm_col_.fill(0);
  }

  // Returns false (with error_ set) when the kernel would reject the rule.
  bool Parse(const std::vector<Token>& tokens) {
    for (const Token& t : tokens) {
      if (!ParseToken(t)) {
        if (t.text.find('\r') != std::string_view::npos && error_.message.find("CRLF") == std::string::npos) {
          error_.message += " (CRLF line ending? the kernel does not strip '\\r')";
        }
        return false;
      }
    }
    if (first_col_ == 0 && !tokens.empty()) first_col_ = tokens.front().col;
    return Validate();
  }

  PolicyRule& rule() { return rule_; }
  const PolicyDiagnostic& error() const { return error_; }

 private:
  bool Fail(int col, std::string message) {
    error_ = {rule_.line, col, std::move(message)};
    return false;
  }
  void Warn(int col, std::string message) { warnings_->push_back({rule_.line, col, std::move(message)}); }
  void SetFlag(uint32_t flag, const Token& t, std::string_view keyword) {
    rule_.flags |= flag;
    int bit = FlagBit(flag);
    flag_col_[bit] = t.col;
    flag_word_[bit] = std::string(keyword);
  }
  int ColOf(uint32_t flag) const { return flag_col_[FlagBit(flag)]; }
  const std::string& WordOf(uint32_t flag) const { return flag_word_[FlagBit(flag)]; }

  bool SetAction(uint32_t act, const Token& t) {
    if (rule_.action != 0) {
      return Fail(t.col, "second action '" + std::string(t.text) + "' (the rule already has '" +
                             std::string(ActionName(rule_.action)) + "')");
    }
    rule_.action = act;
    action_col_ = t.col;
    return true;
  }

  bool ParseId(const Token& t, std::string_view keyword, std::string_view value, uint32_t* out) {
    uint64_t v = 0;
    NumError e = KstrToUl(value, 10, &v);
    if (e == NumError::kInvalid) {
      return Fail(t.col, std::string(keyword) + " needs a decimal id, got '" + Printable(value) + "'");
    }
    if (e == NumError::kRange || v > 0xffffffffULL) {
      return Fail(t.col, std::string(keyword) + " value " + Printable(value) + " is out of range");
    }
    if (v == 0xffffffffULL) return Fail(t.col, std::string(keyword) + " value 4294967295 is the invalid id (-1)");
    *out = static_cast<uint32_t>(v);
    return true;
  }

  // uid=/euid= (and gid=/egid=) fill one slot of the kernel's rule: only one of them.
  bool ParseSharedId(const Token& t, const Pattern& m, std::string_view keyword, std::string_view value, bool* set,
                     std::string* word, uint32_t* id, CmpOp* op, uint32_t flag, uint32_t effective_flag,
                     const char* pair) {
    if (*set) {
      return Fail(t.col, std::string(keyword) + ": the rule already has " + *word + " (" + pair + " share one slot)");
    }
    if (!ParseId(t, keyword, value, id)) return false;
    *op = OpOf(m.text);
    *set = true;
    *word = std::string(m.text);
    SetFlag(keyword[0] == 'e' ? effective_flag : flag, t, m.text);
    return true;
  }

  bool ParseLsm(const Token& t, int field, std::string_view value) {
    if (!rule_.lsm[field].empty()) {
      return Fail(t.col, "duplicate " + std::string(LsmFieldName(field)) + "= (already given at column " +
                             std::to_string(lsm_col_[field]) + ")");
    }
    rule_.lsm[field] = std::string(value);
    lsm_col_[field] = t.col;
    if ((field == kObjType || field == kSubjType) && value.find(':') != std::string_view::npos) {
      Warn(t.col, std::string(LsmFieldName(field)) + "=" + Printable(value) +
                      " looks like a full security context; the LSM compares the type only");
    }
    return true;
  }

  bool ParseToken(const Token& t) {
    if (first_col_ == 0) first_col_ = t.col;
    const Pattern* match = nullptr;
    for (const Pattern& p : kPatterns) {
      if (p.has_arg ? (t.text.size() > p.text.size() && t.text.substr(0, p.text.size()) == p.text)
                    : t.text == p.text) {
        match = &p;
        break;
      }
    }
    if (!match) {
      for (const Pattern& p : kPatterns) {
        if (p.has_arg && (t.text == p.text || t.text == p.text.substr(0, p.text.size() - 1))) {
          return Fail(t.col, std::string(p.text) + " needs a value");
        }
      }
      return Fail(t.col, "unknown keyword '" + Printable(t.text) + "'");
    }
    std::string_view value = match->has_arg ? t.text.substr(match->text.size()) : std::string_view();
    std::string_view keyword = match->has_arg ? match->text.substr(0, match->text.size() - 1) : match->text;
    switch (match->opt) {
      case Opt::kMeasure: return SetAction(action::kMeasure, t);
      case Opt::kDontMeasure: return SetAction(action::kDontMeasure, t);
      case Opt::kAppraise: return SetAction(action::kAppraise, t);
      case Opt::kDontAppraise: return SetAction(action::kDontAppraise, t);
      case Opt::kAudit: return SetAction(action::kAudit, t);
      case Opt::kHash: return SetAction(action::kHash, t);
      case Opt::kDontHash: return SetAction(action::kDontHash, t);
      case Opt::kObjUser: return ParseLsm(t, kObjUser, value);
      case Opt::kObjRole: return ParseLsm(t, kObjRole, value);
      case Opt::kObjType: return ParseLsm(t, kObjType, value);
      case Opt::kSubjUser: return ParseLsm(t, kSubjUser, value);
      case Opt::kSubjRole: return ParseLsm(t, kSubjRole, value);
      case Opt::kSubjType: return ParseLsm(t, kSubjType, value);
      case Opt::kFunc: return ParseFunc(t, value);
      case Opt::kMask: return ParseMask(t, value);
      case Opt::kFsmagic: return ParseFsmagic(t, value);
      case Opt::kFsname: return ParseFsname(t, value);
      case Opt::kKeyrings: return ParseKeyrings(t, value);
      case Opt::kLabel: return ParseLabel(t, value);
      case Opt::kFsuuid: return ParseFsuuid(t, value);
      case Opt::kUidEq: case Opt::kEuidEq: case Opt::kUidGt: case Opt::kEuidGt:
      case Opt::kUidLt: case Opt::kEuidLt:
        return ParseSharedId(t, *match, keyword, value, &uid_set_, &uid_word_, &rule_.uid, &rule_.uid_op,
                             rule_flag::kUid, rule_flag::kEuid, "uid and euid");
      case Opt::kGidEq: case Opt::kEgidEq: case Opt::kGidGt: case Opt::kEgidGt:
      case Opt::kGidLt: case Opt::kEgidLt:
        return ParseSharedId(t, *match, keyword, value, &gid_set_, &gid_word_, &rule_.gid, &rule_.gid_op,
                             rule_flag::kGid, rule_flag::kEgid, "gid and egid");
      case Opt::kFownerEq: case Opt::kFownerGt: case Opt::kFownerLt:
        return ParseFileId(t, *match, keyword, value, rule_flag::kFowner, &rule_.fowner, &rule_.fowner_op);
      case Opt::kFgroupEq: case Opt::kFgroupGt: case Opt::kFgroupLt:
        return ParseFileId(t, *match, keyword, value, rule_flag::kFgroup, &rule_.fgroup, &rule_.fgroup_op);
      case Opt::kDigestType: return ParseDigestType(t, value);
      case Opt::kAppraiseType: return ParseAppraiseType(t, value);
      case Opt::kAppraiseFlag:
        Warn(t.col, "appraise_flag= is accepted and ignored by current kernels (appraise_type= implies the blacklist check)");
        return true;
      case Opt::kAppraiseAlgos: return ParseAppraiseAlgos(t, value);
      case Opt::kPermitDirectio:
        SetFlag(rule_flag::kPermitDirectio, t, "permit_directio");
        return true;
      case Opt::kPcr: return ParsePcr(t, value);
      case Opt::kTemplate: return ParseTemplate(t, value);
      case Opt::kErr:
        break;
    }
    return Fail(t.col, "internal: unhandled keyword");
  }

  // One method per keyword with a value of its own (the cases of the kernel's ima_parse_rule).
  bool ParseFunc(const Token& t, std::string_view value) {
    if (rule_.func != ImaHook::kNone) return Fail(t.col, "duplicate func=");
    Result<ImaHook> hook = ImaHookByName(value);
    if (!hook.ok()) return Fail(t.col, "unknown func '" + Printable(value) + "'");
    rule_.func = *hook;
    SetFlag(rule_flag::kFunc, t, "func=");
    return true;
  }

  bool ParseMask(const Token& t, std::string_view value) {
    if (rule_.mask != 0) return Fail(t.col, "duplicate mask=");
    bool inmask = value[0] == '^';
    std::string_view m = inmask ? value.substr(1) : value;
    uint32_t bits = 0;
    for (const auto& n : may::kNames) {
      if (m == n.name) bits = n.bit;
    }
    if (bits == 0) return Fail(t.col, "unknown mask '" + Printable(value) + "' (MAY_EXEC, MAY_WRITE, MAY_READ, MAY_APPEND, optionally with '^')");
    rule_.mask = bits;
    SetFlag(inmask ? rule_flag::kInmask : rule_flag::kMask, t, "mask=");
    return true;
  }

  bool ParseFsmagic(const Token& t, std::string_view value) {
    // The kernel detects a repeated fsmagic= only when the first one was non-zero.
    if (rule_.fsmagic != 0) return Fail(t.col, "duplicate fsmagic=");
    uint64_t v = 0;
    NumError e = KstrToUl(value, 16, &v);
    if (e == NumError::kInvalid) return Fail(t.col, "fsmagic= needs a hexadecimal number, got '" + Printable(value) + "'");
    if (e == NumError::kRange) return Fail(t.col, "fsmagic=" + Printable(value) + " is out of range");
    rule_.fsmagic = v;
    SetFlag(rule_flag::kFsmagic, t, "fsmagic=");
    return true;
  }

  bool ParseFsname(const Token& t, std::string_view value) {
    // No duplicate check in the kernel: the last fsname= wins.
    if (rule_.flags & rule_flag::kFsname) {
      Warn(t.col, "fsname= given twice; the kernel keeps the last one");
    }
    rule_.fsname = std::string(value);
    SetFlag(rule_flag::kFsname, t, "fsname=");
    return true;
  }

  bool ParseKeyrings(const Token& t, std::string_view value) {
    if (rule_.flags & rule_flag::kKeyrings) return Fail(t.col, "duplicate keyrings=");
    if (!ParseOptList(value, &rule_.keyrings)) return Fail(t.col, "keyrings= has an empty item");
    SetFlag(rule_flag::kKeyrings, t, "keyrings=");
    return true;
  }

  bool ParseLabel(const Token& t, std::string_view value) {
    if (rule_.flags & rule_flag::kLabel) return Fail(t.col, "duplicate label=");
    if (!ParseOptList(value, &rule_.labels)) return Fail(t.col, "label= has an empty item");
    SetFlag(rule_flag::kLabel, t, "label=");
    return true;
  }

  bool ParseFsuuid(const Token& t, std::string_view value) {
    if (!UuidIsNull(rule_.fsuuid)) return Fail(t.col, "duplicate fsuuid=");
    if (!ParseUuid(value, &rule_.fsuuid)) {
      return Fail(t.col, "fsuuid= needs a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got '" + Printable(value) + "'");
    }
    SetFlag(rule_flag::kFsuuid, t, "fsuuid=");
    return true;
  }

  // fowner= / fgroup= (and their > and < forms): one id each.
  bool ParseFileId(const Token& t, const Pattern& match, std::string_view keyword, std::string_view value, uint32_t flag,
                   uint32_t* id, CmpOp* op) {
    if (rule_.flags & flag) return Fail(t.col, "duplicate " + std::string(keyword));
    if (!ParseId(t, keyword, value, id)) return false;
    *op = OpOf(match.text);
    SetFlag(flag, t, match.text);
    return true;
  }

  bool ParseDigestType(const Token& t, std::string_view value) {
    if (rule_.flags & rule_flag::kDigsigRequired) {
      return Fail(t.col, "digest_type= must come before appraise_type= (the kernel refuses it after)");
    }
    if (value != "verity") return Fail(t.col, "unknown digest_type '" + Printable(value) + "' (only 'verity')");
    SetFlag(rule_flag::kVerityRequired, t, "digest_type=");
    return true;
  }

  bool ParseAppraiseType(const Token& t, std::string_view value) {
    bool verity = rule_.flags & rule_flag::kVerityRequired;
    uint32_t add = 0;
    if (value == "imasig") {
      if (verity) return Fail(t.col, "appraise_type=imasig cannot follow digest_type=verity (use appraise_type=sigv3)");
      add = rule_flag::kDigsigRequired | rule_flag::kCheckBlacklist;
    } else if (value == "sigv3") {
      if (!verity) return Fail(t.col, "appraise_type=sigv3 needs digest_type=verity before it");
      add = rule_flag::kDigsigRequired | rule_flag::kCheckBlacklist;
    } else if (value == "imasig|modsig") {
      if (verity) return Fail(t.col, "appraise_type=imasig|modsig cannot follow digest_type=verity");
      add = rule_flag::kDigsigRequired | rule_flag::kModsigAllowed | rule_flag::kCheckBlacklist;
    } else {
      return Fail(t.col, "unknown appraise_type '" + Printable(value) + "' (imasig, imasig|modsig, sigv3)");
    }
    for (uint32_t f : {rule_flag::kDigsigRequired, rule_flag::kModsigAllowed, rule_flag::kCheckBlacklist}) {
      if (add & f) SetFlag(f, t, "appraise_type=" + std::string(value));
    }
    return true;
  }

  bool ParseAppraiseAlgos(const Token& t, std::string_view value) {
    if (rule_.allowed_algos != 0) return Fail(t.col, "duplicate appraise_algos=");
    uint32_t set = 0;
    size_t start = 0;
    while (true) {
      size_t comma = value.find(',', start);
      std::string_view name = value.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      const HashAlgo* algo = HashAlgoByKernelName(name);
      int id = algo ? algo->kernel_id : -1;
      if (id < 0) return Fail(t.col, "appraise_algos=: unknown hash algorithm '" + Printable(name) + "'");
      if (!KernelCryptoHas(id)) {
        return Fail(t.col, "appraise_algos=: hash algorithm '" + std::string(name) + "' is not available in the kernel");
      }
      set |= 1u << id;
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    rule_.allowed_algos = set;
    SetFlag(rule_flag::kValidateAlgos, t, "appraise_algos=");
    return true;
  }

  bool ParsePcr(const Token& t, std::string_view value) {
    int64_t v = 0;
    if (KstrToInt(value, &v) != NumError::kOk || v < 0 || v > 63) {
      return Fail(t.col, "pcr= needs a PCR index 0..63, got '" + Printable(value) + "'");
    }
    if (rule_.flags & rule_flag::kPcr) Warn(t.col, "pcr= given twice; the kernel keeps the last one");
    rule_.pcr = static_cast<int>(v);
    SetFlag(rule_flag::kPcr, t, "pcr=");
    return true;
  }

  bool ParseTemplate(const Token& t, std::string_view value) {
    if (rule_.action != action::kMeasure) {
      return Fail(t.col, "template= is only allowed after the measure action");
    }
    // A built-in template's name or its format string (ima/template.h); the policy
    // file shows the name.
    const BuiltinTemplate* found = nullptr;
    for (const BuiltinTemplate& d : BuiltinTemplates()) {
      if (value == d.name || value == d.format) {
        found = &d;
        break;
      }
    }
    if (!found) return Fail(t.col, "unknown template '" + Printable(value) + "'");
    if (!rule_.template_name.empty()) return Fail(t.col, "duplicate template=");
    rule_.template_name = std::string(found->name);
    template_col_ = t.col;
    return true;
  }

  // The first offending flag (by column) among `bad`.
  uint32_t Culprit(uint32_t bad) const {
    uint32_t best = 0;
    int best_col = std::numeric_limits<int>::max();
    for (int bit = 0; bit < 32; ++bit) {
      uint32_t f = 1u << bit;
      if ((bad & f) && flag_col_[bit] > 0 && flag_col_[bit] < best_col) {
        best = f;
        best_col = flag_col_[bit];
      }
    }
    return best;
  }

  int FirstLsmCol() const {
    int best = 0;
    for (int i = 0; i < kLsmFieldCount; ++i) {
      if (!rule_.lsm[i].empty() && (best == 0 || lsm_col_[i] < best)) best = lsm_col_[i];
    }
    return best;
  }

  // ima_validate_rule(), with a message naming the reason.
  bool Validate() {
    const uint32_t flags = rule_.flags;
    const std::string func_name = "func=" + std::string(ImaHookName(rule_.func));
    if (rule_.action == 0) {
      return Fail(first_col_, "rule has no action (measure, dont_measure, appraise, dont_appraise, audit, hash, dont_hash)");
    }
    if (rule_.action != action::kMeasure && (flags & rule_flag::kPcr)) {
      return Fail(ColOf(rule_flag::kPcr), "pcr= is only allowed with measure");
    }
    constexpr uint32_t kAppraiseOnly = rule_flag::kDigsigRequired | rule_flag::kModsigAllowed |
                                       rule_flag::kCheckBlacklist | rule_flag::kValidateAlgos;
    if (rule_.action != action::kAppraise && (flags & kAppraiseOnly)) {
      uint32_t f = Culprit(flags & kAppraiseOnly);
      std::string word = WordOf(f);
      if (word.find('=') != std::string::npos) word = word.substr(0, word.find('=') + 1);
      return Fail(ColOf(f), word + " is only allowed with appraise");
    }
    using namespace rule_flag;
    constexpr uint32_t kBase = kFunc | kMask | kFsmagic | kUid | kFowner | kFsuuid | kInmask | kEuid |
                               kPcr | kFsname | kGid | kEgid | kFgroup | kDigsigRequired | kPermitDirectio |
                               kCheckBlacklist | kValidateAlgos;
    uint32_t allowed = 0;
    bool measure_only = false;
    bool no_lsm = false;
    switch (rule_.func) {
      case ImaHook::kNone: case ImaHook::kFileCheck: case ImaHook::kMmapCheck:
      case ImaHook::kMmapCheckReqprot: case ImaHook::kBprmCheck: case ImaHook::kCredsCheck:
      case ImaHook::kPostSetattr: case ImaHook::kFirmwareCheck: case ImaHook::kPolicyCheck:
        allowed = kBase | kVerityRequired;
        break;
      case ImaHook::kModuleCheck: case ImaHook::kKexecKernelCheck: case ImaHook::kKexecInitramfsCheck:
        allowed = kBase | kModsigAllowed;
        break;
      case ImaHook::kKexecCmdline:
        measure_only = true;
        allowed = kFunc | kFsmagic | kUid | kFowner | kFsuuid | kEuid | kPcr | kFsname | kGid | kEgid | kFgroup;
        break;
      case ImaHook::kKeyCheck:
        measure_only = no_lsm = true;
        allowed = kFunc | kUid | kGid | kPcr | kKeyrings;
        break;
      case ImaHook::kCriticalData:
        measure_only = no_lsm = true;
        allowed = kFunc | kUid | kGid | kPcr | kLabel;
        break;
      case ImaHook::kSetxattrCheck:
        if (rule_.action != action::kAppraise) return Fail(action_col_, func_name + " only allows appraise");
        if (!(flags & kValidateAlgos)) return Fail(ColOf(kFunc), func_name + " needs appraise_algos=");
        allowed = kFunc | kValidateAlgos;
        break;
    }
    if (measure_only && (rule_.action & ~(action::kMeasure | action::kDontMeasure))) {
      return Fail(action_col_, func_name + " only allows measure and dont_measure");
    }
    if (uint32_t bad = flags & ~allowed) {
      uint32_t f = Culprit(bad);
      std::string word = WordOf(f);
      std::string reason;
      if (f == kKeyrings) reason = "keyrings= is only allowed with func=KEY_CHECK";
      else if (f == kLabel) reason = "label= is only allowed with func=CRITICAL_DATA";
      else if (f == kModsigAllowed) reason = word + " is only allowed with func=MODULE_CHECK, KEXEC_KERNEL_CHECK or KEXEC_INITRAMFS_CHECK";
      else if (rule_.func == ImaHook::kNone) reason = word + " needs a func= condition";
      else reason = word + " is not allowed with " + func_name;
      return Fail(ColOf(f), reason);
    }
    if (no_lsm && rule_.HasLsm()) {
      return Fail(FirstLsmCol(), "LSM conditions are not allowed with " + func_name);
    }
    if ((flags & kCheckBlacklist) && !(flags & kDigsigRequired)) {
      return Fail(ColOf(kCheckBlacklist), "the blacklist check needs a signature requirement");
    }
    if (rule_.action == action::kAppraise && (flags & kVerityRequired) && !(flags & kDigsigRequired)) {
      return Fail(ColOf(kVerityRequired), "appraise with digest_type=verity needs appraise_type=sigv3");
    }
    // Accepted. The kernel's notices for templates that cannot show what the rule asks for.
    if (rule_.action == action::kMeasure && (flags & kVerityRequired)) {
      std::string tmpl = rule_.template_name.empty() ? std::string("ima-ng") : rule_.template_name;
      if (tmpl != "ima-ngv2" && tmpl != "ima-sigv2") {
        Warn(ColOf(kVerityRequired), "verity rules should include d-ngv2 (template=ima-ngv2 or ima-sigv2); " +
                                         tmpl + " does not");
      }
    }
    return true;
  }

  PolicyRule rule_;
  PolicyDiagnostic error_;
  std::vector<PolicyDiagnostic>* warnings_;
  std::array<int, 32> flag_col_{};
  std::array<std::string, 32> flag_word_;
  std::array<int, kLsmFieldCount> lsm_col_{};
  int first_col_ = 0;
  int action_col_ = 0;
  int template_col_ = 0;
  bool uid_set_ = false;
  bool gid_set_ = false;
  std::string uid_word_;
  std::string gid_word_;
};

// The kernel limits one write() to PAGE_SIZE - 1 bytes and parses one line per write.
constexpr size_t kMaxKernelLine = 4095;

void ParseLine(std::string_view line, int line_no, PolicyParseOutput* out) {
  size_t nul = line.find('\0');
  if (nul != std::string_view::npos) {
    out->errors.push_back({line_no, static_cast<int>(nul) + 1, "NUL byte in policy text"});
    return;
  }
  size_t p = line.find_first_not_of(" \t");
  if (p == std::string_view::npos || line[p] == '#') return;
  if (line.size() >= kMaxKernelLine) {
    out->warnings.push_back({line_no, 1, "line is " + std::to_string(line.size()) +
                                             " bytes; the kernel reads at most 4095 bytes per write and would split it"});
  }
  std::vector<RuleParser::Token> tokens;
  size_t i = p;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    size_t end = line.find_first_of(" \t", i);
    if (end == std::string_view::npos) end = line.size();
    std::string_view tok = line.substr(i, end - i);
    if (tok[0] == '#') break;  // a suffixed comment ends the rule
    tokens.push_back({tok, static_cast<int>(i) + 1});
    i = end;
  }
  RuleParser parser(line_no, &out->warnings);
  if (parser.Parse(tokens)) {
    out->policy.rules.push_back(std::move(parser.rule()));
  } else {
    out->errors.push_back(parser.error());
  }
}

}  // namespace

std::string_view ImaHookName(ImaHook hook) {
  auto i = static_cast<size_t>(hook);
  return i < kHookNames.size() ? kHookNames[i] : "UNKNOWN";
}

Result<ImaHook> ImaHookByName(std::string_view name, bool allow_internal) {
  if (name == "PATH_CHECK") return ImaHook::kFileCheck;
  if (name == "FILE_MMAP") return ImaHook::kMmapCheck;
  for (size_t i = 1; i < kHookNames.size(); ++i) {
    if (kHookNames[i] == name) {
      auto hook = static_cast<ImaHook>(i);
      if (hook == ImaHook::kPostSetattr && !allow_internal) break;
      return hook;
    }
  }
  return Status::InvalidArgument("unknown IMA hook '" + std::string(name) + "'");
}

std::string_view ActionName(uint32_t act) {
  switch (act) {
    case action::kMeasure: return "measure";
    case action::kDontMeasure: return "dont_measure";
    case action::kAppraise: return "appraise";
    case action::kDontAppraise: return "dont_appraise";
    case action::kAudit: return "audit";
    case action::kHash: return "hash";
    case action::kDontHash: return "dont_hash";
    default: return "";
  }
}

std::string_view LsmFieldName(int field) {
  static constexpr std::array<std::string_view, kLsmFieldCount> kNames = {
      "obj_user", "obj_role", "obj_type", "subj_user", "subj_role", "subj_type"};
  return field >= 0 && field < kLsmFieldCount ? kNames[field] : "";
}

namespace may {
std::string MaskText(uint32_t mask, std::string_view none) {
  std::string s;
  for (const auto& n : kNames) {
    if (!(mask & n.bit)) continue;
    if (!s.empty()) s += '|';
    s += n.name;
  }
  return s.empty() ? std::string(none) : s;
}
}  // namespace may

bool PolicyRule::HasLsm() const {
  for (const auto& l : lsm) {
    if (!l.empty()) return true;
  }
  return false;
}

PolicyParseOutput CheckPolicy(std::string_view text, std::string_view source) {
  PolicyParseOutput out;
  out.policy.source = std::string(source);
  out.policy.text = std::string(text);
  int line_no = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    ++line_no;
    if (!(nl == std::string_view::npos && line.empty())) ParseLine(line, line_no, &out);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  if (out.errors.empty() && out.policy.rules.empty()) {
    // ima_check_policy(): closing the policy file with no rule written fails the update.
    out.errors.push_back({1, 1, "policy has no rules (the kernel refuses an empty policy)"});
  }
  return out;
}

std::string FormatDiagnostic(std::string_view source, const PolicyDiagnostic& d) {
  return std::string(source) + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message;
}

Result<Policy> ParsePolicy(std::string_view text, std::string_view source) {
  PolicyParseOutput out = CheckPolicy(text, source);
  if (!out.errors.empty()) return Status::Corrupt(FormatDiagnostic(source, out.errors.front()));
  return std::move(out.policy);
}

Result<Policy> LoadPolicyFile(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(std::string text, ReadFileTextBounded(path, kMaxPolicyFileSize, "a policy file"));
  return ParsePolicy(text, path);
}

}  // namespace lim::ima
