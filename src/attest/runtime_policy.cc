#include "attest/runtime_policy.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <openssl/evp.h>
#include <pcre2.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "attest/remediation.h"
#include "attest/py_regex.h"
#include "base/escape.h"
#include "crypto/hash_algo.h"
#include "ima/digest_field.h"
#include "ima/list_reader.h"
#include "ima/signature_check.h"

namespace lim::attest {

using nlohmann::json;

// Compiled excludes: one PCRE2 pattern "(?:e1)|(?:e2)|…" as keylime joins them, matched
// anchored at the start (Python's re.match). The match context bounds backtracking so a
// hostile pattern or path costs a bounded time, never a hang.
class ExcludeSet {
 public:
  static Result<std::shared_ptr<const ExcludeSet>> Compile(const std::vector<std::string>& sources) {
    auto set = std::shared_ptr<ExcludeSet>(new ExcludeSet);
    if (sources.empty()) return std::shared_ptr<const ExcludeSet>(set);
    std::string joined;
    for (size_t i = 0; i < sources.size(); ++i) {
      std::string translated = PyRegex::Translate(sources[i]);
      LIM_RETURN_IF_ERROR(Check(translated, i, sources[i]));
      if (i) joined += '|';
      joined += "(?:" + translated + ")";
    }
    int err = 0;
    PCRE2_SIZE off = 0;
    set->code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(joined.data()), joined.size(), 0, &err, &off, nullptr);
    if (!set->code_) return Status::InvalidArgument("excludes: the patterns do not combine: " + ErrorText(err));
    pcre2_jit_compile(set->code_, PCRE2_JIT_COMPLETE);  // best effort: the interpreter also works
    set->mctx_ = pcre2_match_context_create(nullptr);
    pcre2_set_match_limit(set->mctx_, 1000000);
    pcre2_set_depth_limit(set->mctx_, 10000);
    return std::shared_ptr<const ExcludeSet>(set);
  }
  ~ExcludeSet() {
    if (code_) pcre2_code_free(code_);
    if (mctx_) pcre2_match_context_free(mctx_);
  }
  ExcludeSet(const ExcludeSet&) = delete;
  ExcludeSet& operator=(const ExcludeSet&) = delete;

  // A pattern that errors at match time (match limit) counts as not matching: the entry is
  // then judged, never waved through.
  bool Matches(std::string_view path) const {
    if (!code_) return false;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(path.data()), path.size(), 0, PCRE2_ANCHORED, md, mctx_);
    pcre2_match_data_free(md);
    return rc >= 0;
  }

 private:
  ExcludeSet() = default;
  static std::string ErrorText(int err) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    return reinterpret_cast<const char*>(buf);
  }
  static Status Check(const std::string& translated, size_t i, const std::string& source) {
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), 0, &err, &off,
                                  nullptr);
    if (!c) {
      return Status::InvalidArgument("excludes[" + std::to_string(i) + "] \"" + source + "\": " + ErrorText(err) +
                                     " at offset " + std::to_string(off));
    }
    pcre2_code_free(c);
    return Status::Ok();
  }
  pcre2_code* code_ = nullptr;
  pcre2_match_context* mctx_ = nullptr;
};

namespace {

std::string Key(ByteView b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

std::string Base64(ByteView b) {
  std::string out(4 * ((b.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), b.data(), static_cast<int>(b.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<Bytes> Unbase64(std::string_view s) {
  std::string clean;
  for (char c : s) {
    if (c != '\n' && c != '\r' && c != ' ') clean += c;
  }
  if (clean.size() % 4 != 0) return Status::InvalidArgument("base64 length is not a multiple of 4");
  Bytes out(clean.size() / 4 * 3 + 1);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) return Status::InvalidArgument("not base64");
  size_t pad = 0;
  for (auto it = clean.rbegin(); it != clean.rend() && *it == '=' && pad < 2; ++it) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string HexList(const std::vector<std::string>& v, size_t max = 4) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) {
    if (i) out += ' ';
    out += ToHex(AsBytes(v[i]));
  }
  if (v.size() > max) out += " (+" + std::to_string(v.size() - max) + " more)";
  return out;
}

void AddUnique(std::vector<std::string>* v, std::string d) {
  if (std::find(v->begin(), v->end(), d) == v->end()) v->push_back(std::move(d));
}

// Typed access into untrusted JSON: every error names the key path.
Result<const json*> Member(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::NotFound(where + key + ": missing");
  return &*it;
}

Status ExpectType(const json& j, json::value_t t, const std::string& where, const char* what) {
  bool ok = j.type() == t || (t == json::value_t::number_integer && j.is_number_unsigned());
  if (!ok) return Status::InvalidArgument(where + ": expected " + what);
  return Status::Ok();
}

Result<std::vector<std::string>> StringList(const json& j, const std::string& where) {
  if (!j.is_array()) return Status::InvalidArgument(where + ": expected a list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string()) return Status::InvalidArgument(where + "[" + std::to_string(i) + "]: expected a string");
    out.push_back(j[i].get_ref<const std::string&>());
  }
  return out;
}

using DigestMap = std::map<std::string, std::vector<std::string>>;

Result<DigestMap> DigestListMap(const json& j, const std::string& where) {
  if (!j.is_object()) return Status::InvalidArgument(where + ": expected an object of digest lists");
  DigestMap out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string w = where + "." + it.key();
    LIM_ASSIGN_OR_RETURN(auto list, StringList(it.value(), w));
    auto& dst = out[it.key()];
    for (size_t i = 0; i < list.size(); ++i) {
      auto d = ParsePolicyDigest(list[i]);
      if (!d.ok()) return d.status().WithPrefix(w + "[" + std::to_string(i) + "]");
      AddUnique(&dst, Key(*d));
    }
  }
  return out;
}

json DigestListJson(const std::vector<std::string>& v) {
  json a = json::array();
  for (const auto& d : v) a.push_back(ToHex(AsBytes(d)));
  return a;
}

template <typename Map>
json DigestMapJson(const Map& m) {
  json o = json::object();
  for (const auto& [k, v] : m) o[k] = DigestListJson(v);
  return o;
}

// ---- streamed JSON ----
//
// The exporters write what nlohmann's dump(1, ' ', false, replace) of the whole document
// wrote before — same bytes — but the members that grow with the policy ("paths",
// "digests", "owners") are written straight into the output instead of through a document:
// a scan of /usr/share spent 13 % of its CPU building and dumping a tree of 58,000 paths.
// The small members still go through nlohmann. Layout (nlohmann's): one member or element
// per line, one space of indent per level, ": " after a key, "{}" and "[]" when empty, keys
// in byte order (nlohmann's objects are std::maps).

// A JSON string as nlohmann writes it (ensure_ascii off, bytes that are not UTF-8 replaced
// by U+FFFD). Plain strings (base/escape.h) — every digest, nearly every path — are
// copied; anything else is handed to nlohmann, so the rare cases are its bytes by
// construction.
void AppendJsonString(std::string_view s, std::string* out) {
  if (PlainForJson(s)) {
    out->push_back('"');
    out->append(s);
    out->push_back('"');
  } else {
    out->append(json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

void AppendNewline(int level, std::string* out) {
  out->push_back('\n');
  out->append(static_cast<size_t>(level), ' ');
}

// An object at indent level `level` whose members the caller adds in key order.
class JsonObjectWriter {
 public:
  JsonObjectWriter(int level, std::string* out) : level_(level), out_(out) {}
  // Starts the next member; its value follows at level() + 1.
  void Key(std::string_view key) {
    out_->push_back(first_ ? '{' : ',');
    first_ = false;
    AppendNewline(level_ + 1, out_);
    AppendJsonString(key, out_);
    out_->append(": ");
  }
  void End() {
    if (first_) {
      out_->append("{}");
    } else {
      AppendNewline(level_, out_);
      out_->push_back('}');
    }
  }
  int level() const { return level_; }

 private:
  int level_;
  std::string* out_;
  bool first_ = true;
};

// [hex, …] of raw digests, at indent level `level`.
void AppendDigestList(const std::vector<std::string>& digests, int level, std::string* out) {
  if (digests.empty()) {
    out->append("[]");
    return;
  }
  out->push_back('[');
  for (size_t i = 0; i < digests.size(); ++i) {
    if (i) out->push_back(',');
    AppendNewline(level + 1, out);
    out->push_back('"');
    AppendHex(AsBytes(digests[i]), out);
    out->push_back('"');
  }
  AppendNewline(level, out);
  out->push_back(']');
}

// {key: [hex, …], …} of a key-sorted sequence of (key, digests) pairs.
template <typename Range>
void AppendDigestMap(const Range& sorted, int level, std::string* out) {
  JsonObjectWriter o(level, out);
  for (const auto* kv : sorted) {
    o.Key(kv->first);
    AppendDigestList(kv->second, level + 1, out);
  }
  o.End();
}

// The entries of an unordered path map in byte order, and a guess of their JSON size.
std::vector<const std::pair<const std::string, std::vector<std::string>>*> SortedPaths(
    const std::unordered_map<std::string, std::vector<std::string>>& m, size_t* bytes) {
  std::vector<const std::pair<const std::string, std::vector<std::string>>*> v;
  v.reserve(m.size());
  for (const auto& kv : m) {
    v.push_back(&kv);
    *bytes += kv.first.size() + 10;
    for (const auto& d : kv.second) *bytes += 2 * d.size() + 8;
  }
  std::sort(v.begin(), v.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  return v;
}

using MemberWriter = std::function<void(int level, std::string* out)>;

// The top-level object: doc's members (dumped by nlohmann, indented one level deeper) and the
// streamed ones, merged in key order.
std::string DumpTopLevel(const json& doc, const std::map<std::string, MemberWriter>& streamed, size_t reserve) {
  std::string out;
  out.reserve(reserve + 4096);
  JsonObjectWriter o(0, &out);
  auto di = doc.begin();
  auto si = streamed.begin();
  while (di != doc.end() || si != streamed.end()) {
    if (si == streamed.end() || (di != doc.end() && di.key() < si->first)) {
      o.Key(di.key());
      // JSON text has no raw newline inside a string: every '\n' starts a line to indent.
      for (char c : di.value().dump(1, ' ', false, json::error_handler_t::replace)) {
        out.push_back(c);
        if (c == '\n') out.push_back(' ');
      }
      ++di;
    } else {
      o.Key(si->first);
      si->second(o.level() + 1, &out);
      ++si;
    }
  }
  o.End();
  return out;
}

// The file digest of a file entry: d-ngv2, d-ng or the legacy 'd'. Returns false when none.
bool FileDigest(const ima::Entry& e, ByteView* digest, std::string* shown) {
  for (auto id : {ima::FieldId::kDNgV2, ima::FieldId::kDNg, ima::FieldId::kDModsig}) {
    if (!e.HasField(id)) continue;
    auto df = ima::ParseDigestField(e.FieldById(id), id == ima::FieldId::kDNgV2);
    if (!df.ok()) return false;
    *digest = df->digest;
    *shown = std::string(df->algo_name) + ":" + ToHex(df->digest);
    return true;
  }
  if (e.HasField(ima::FieldId::kD)) {
    *digest = e.FieldById(ima::FieldId::kD);
    *shown = "sha1:" + ToHex(*digest);
    return true;
  }
  return false;
}

Finding EntryFinding(Reason r, const ima::Entry& e, std::string_view path, std::string digest) {
  Finding f;
  f.reason = r;
  f.entry = e.index;
  f.pcr = static_cast<int>(e.pcr);
  f.tmpl = std::string(e.template_name);
  f.path = std::string(path);
  f.digest = std::move(digest);
  return f;
}

bool IsCertificate(ByteView buf) { return buf.size() > 4 && buf[0] == 0x30; }

// A JSON list of base64 DER SubjectPublicKeyInfo, each trusted for ima-sig entries.
Status TrustSpkiList(const json& j, const std::string& where, RuntimePolicy* p) {
  LIM_ASSIGN_OR_RETURN(auto list, StringList(j, where));
  for (size_t i = 0; i < list.size(); ++i) {
    std::string w = where + "[" + std::to_string(i) + "]";
    auto der = Unbase64(list[i]);
    if (!der.ok()) return der.status().WithPrefix(w);
    LIM_ASSIGN_OR_RETURN(PublicKey key, PublicKey::FromSpkiDer(*der, w));
    p->TrustKey(std::move(key));
  }
  return Status::Ok();
}

// "packages" and "owners" of the native form (attest/runtime_policy.h: package provenance).
// An owner must name a listed package and one of its versions.
Status ReadProvenance(const json& j, RuntimePolicy* p) {
  if (j.contains("packages")) {
    const json& pk = j["packages"];
    if (!pk.is_object()) return Status::InvalidArgument("packages: expected an object");
    for (auto it = pk.begin(); it != pk.end(); ++it) {
      std::string w = "packages." + it.key();
      if (!it.value().is_object()) return Status::InvalidArgument(w + ": expected an object");
      PackageInfo info;
      LIM_ASSIGN_OR_RETURN(const json* versions, Member(it.value(), "versions", w + "."));
      LIM_ASSIGN_OR_RETURN(info.versions, StringList(*versions, w + ".versions"));
      for (const char* key : {"installed", "source"}) {
        if (!it.value().contains(key)) continue;
        if (!it.value()[key].is_string()) return Status::InvalidArgument(w + "." + key + ": expected a string");
        (std::string_view(key) == "installed" ? info.installed : info.source) = it.value()[key].get<std::string>();
      }
      p->SetPackage(it.key(), std::move(info));
    }
  }
  if (j.contains("owners")) {
    const json& ow = j["owners"];
    if (!ow.is_object()) return Status::InvalidArgument("owners: expected an object");
    for (auto it = ow.begin(); it != ow.end(); ++it) {
      std::string w = "owners." + it.key();
      if (!it.value().is_object()) return Status::InvalidArgument(w + ": expected an object");
      LIM_ASSIGN_OR_RETURN(const json* package, Member(it.value(), "package", w + "."));
      if (!package->is_string()) return Status::InvalidArgument(w + ".package: expected a string");
      const std::string& name = package->get_ref<const std::string&>();
      auto pi = p->packages().find(name);
      if (pi == p->packages().end()) return Status::InvalidArgument(w + ".package: \"" + name + "\" is not in packages");
      LIM_ASSIGN_OR_RETURN(const json* versions, Member(it.value(), "versions", w + "."));
      LIM_ASSIGN_OR_RETURN(auto by_version, DigestListMap(*versions, w + ".versions"));
      for (auto& [version, digests] : by_version) {
        const auto& known = pi->second.versions;
        if (std::find(known.begin(), known.end(), version) == known.end()) {
          return Status::InvalidArgument(w + ".versions." + version + ": not a version of " + name + " in packages");
        }
        for (auto& d : digests) p->AllowPackageFile(it.key(), name, version, Bytes(d.begin(), d.end()));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Bytes> ParsePolicyDigest(std::string_view text) {
  size_t colon = text.rfind(':');
  std::string_view hex = colon == std::string_view::npos ? text : text.substr(colon + 1);
  if (colon != std::string_view::npos && !HashAlgoByName(text.substr(0, colon)).ok()) {
    return Status::InvalidArgument("unknown hash algorithm \"" + std::string(text.substr(0, colon)) + "\"");
  }
  auto b = FromHex(hex);
  if (!b.ok() || b->empty()) return Status::InvalidArgument("\"" + std::string(text) + "\" is not a hex digest");
  if (b->size() < 16 || b->size() > 64) {
    return Status::InvalidArgument("\"" + std::string(text) + "\": a digest of " + std::to_string(b->size()) +
                                   " bytes");
  }
  return b;
}

RuntimePolicy::RuntimePolicy() = default;
RuntimePolicy::~RuntimePolicy() = default;
RuntimePolicy::RuntimePolicy(RuntimePolicy&&) noexcept = default;
RuntimePolicy& RuntimePolicy::operator=(RuntimePolicy&&) noexcept = default;
RuntimePolicy::RuntimePolicy(const RuntimePolicy&) = default;
RuntimePolicy& RuntimePolicy::operator=(const RuntimePolicy&) = default;

Status RuntimePolicy::Rebuild() {
  LIM_ASSIGN_OR_RETURN(excludes_, ExcludeSet::Compile(exclude_sources_));
  return Status::Ok();
}

void RuntimePolicy::AllowPath(const std::string& path, Bytes digest) { AddUnique(&digests_[path], Key(digest)); }
void RuntimePolicy::AllowAnywhere(Bytes digest) { anywhere_.insert(Key(digest)); }
Status RuntimePolicy::AddExclude(const std::string& python_regex) {
  exclude_sources_.push_back(python_regex);
  Status st = Rebuild();
  if (!st.ok()) {
    exclude_sources_.pop_back();
    LIM_RETURN_IF_ERROR(Rebuild());
  }
  return st;
}
void RuntimePolicy::TrustKey(PublicKey key) {
  key_spki_.push_back(key.SpkiDer());
  keys_.push_back(std::move(key));
}
void RuntimePolicy::AllowKeyring(const std::string& keyring, Bytes digest) {
  AddUnique(&keyrings_[keyring], Key(digest));
}
void RuntimePolicy::IgnoreKeyring(const std::string& keyring) { ignored_keyrings_.insert(keyring); }
void RuntimePolicy::AllowImaBuf(const std::string& name, Bytes digest) { AddUnique(&ima_buf_[name], Key(digest)); }
void RuntimePolicy::AllowBootPcr(uint16_t bank, int pcr, Bytes value) {
  auto& v = boot_pcrs_[bank][pcr];
  if (std::find(v.begin(), v.end(), value) == v.end()) v.push_back(std::move(value));
}

std::vector<std::string> RuntimePolicy::PathNames() const {
  std::vector<std::string> names;
  names.reserve(digests_.size());
  for (const auto& [path, digests] : digests_) names.push_back(path);
  std::sort(names.begin(), names.end());
  return names;
}

void RuntimePolicy::SetPackage(const std::string& name, PackageInfo info) { packages_[name] = std::move(info); }

void RuntimePolicy::AllowPackageFile(const std::string& path, const std::string& package, const std::string& version,
                                     Bytes digest) {
  std::string d = Key(digest);
  AddUnique(&digests_[path], d);
  PathOwner& o = owners_[path];
  if (o.package != package) {
    o.package = package;
    o.versions.clear();
  }
  AddUnique(&o.versions[version], std::move(d));
}

void RuntimePolicy::DropPackageVersion(const std::string& package, const std::string& version) {
  auto pi = packages_.find(package);
  if (pi != packages_.end()) {
    auto& v = pi->second.versions;
    v.erase(std::remove(v.begin(), v.end(), version), v.end());
  }
  for (auto it = owners_.begin(); it != owners_.end();) {
    PathOwner& o = it->second;
    auto vi = o.package == package ? o.versions.find(version) : o.versions.end();
    if (vi == o.versions.end()) {
      ++it;
      continue;
    }
    std::vector<std::string> dropped = std::move(vi->second);
    o.versions.erase(vi);
    auto& allowed = digests_[it->first];
    for (const auto& d : dropped) {
      bool kept = std::any_of(o.versions.begin(), o.versions.end(), [&](const auto& kv) {
        return std::find(kv.second.begin(), kv.second.end(), d) != kv.second.end();
      });
      if (!kept) allowed.erase(std::remove(allowed.begin(), allowed.end(), d), allowed.end());
    }
    if (allowed.empty()) digests_.erase(it->first);
    it = o.versions.empty() ? owners_.erase(it) : std::next(it);
  }
}

const std::vector<std::string>* RuntimePolicy::PathDigests(const std::string& path) const {
  auto it = digests_.find(path);
  return it == digests_.end() ? nullptr : &it->second;
}

std::optional<Finding> RuntimePolicy::CheckVersion(const ima::Entry& e, std::string_view path,
                                                   const std::string& digest, const std::string& shown) const {
  auto oi = owners_.find(std::string(path));
  if (oi == owners_.end()) return std::nullopt;
  const PathOwner& o = oi->second;
  auto pi = packages_.find(o.package);
  if (pi == packages_.end() || pi->second.versions.empty()) return std::nullopt;
  const std::string& newest = pi->second.versions.front();
  auto has = [&](const std::string& version) {
    auto vi = o.versions.find(version);
    return vi != o.versions.end() && std::find(vi->second.begin(), vi->second.end(), digest) != vi->second.end();
  };
  if (has(newest)) return std::nullopt;
  for (const auto& version : pi->second.versions) {
    if (!has(version)) continue;
    Finding f = EntryFinding(Reason::kOldVersion, e, path, shown);
    f.reference = "policy: " + o.package + " " + version + ", newest " + newest;
    f.detail = HintOldVersion(path, o.package, version, newest);
    return f;
  }
  return std::nullopt;  // allowed for the path, but not as one of the package's versions
}

bool RuntimePolicy::Excluded(std::string_view path) const { return excludes_ && excludes_->Matches(path); }

void RuntimePolicy::SetBoot(BootPolicy boot) { boot_ = std::make_shared<const BootPolicy>(std::move(boot)); }

Status RuntimePolicy::SetDmPolicyFrom(std::string_view text, bool keylime) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, false);
  const nlohmann::ordered_json* dm = nullptr;
  if (keylime && j.is_object() && j.contains("ima") && j["ima"].is_object() && j["ima"].contains("dm_policy")) {
    dm = &j["ima"]["dm_policy"];
  } else if (!keylime && j.is_object() && j.contains("dm_policy")) {
    dm = &j["dm_policy"];
  }
  if (!dm || dm->is_null()) return Status::Ok();
  dm_policy_ = dm->dump();
  auto parsed = DmPolicy::FromJsonText(dm_policy_);
  if (!parsed.ok()) return keylime ? parsed.status().WithPrefix("ima") : parsed.status();
  dm_ = std::make_shared<const DmPolicy>(std::move(parsed).value());
  return Status::Ok();
}

std::optional<Finding> RuntimePolicy::Check(const ima::Entry& e, const LearnedKeys& learned, LearnedKeys* learn,
                                            DmState* dm) const {
  std::string_view name = e.name();
  ByteView digest;
  std::string shown;
  if (e.violation) {
    if (Excluded(name)) return std::nullopt;
    Finding f = EntryFinding(Reason::kViolation, e, name, "");
    f.detail = "measurement violation (file opened for write while measured, or measured while open for write)";
    return f;
  }
  if (!FileDigest(e, &digest, &shown)) {
    Finding f = EntryFinding(Reason::kListMalformed, e, name, "");
    f.detail = "entry has no parsable file digest";
    return f;
  }
  if (e.HasField(ima::FieldId::kBuf)) return CheckBuf(e, name, Key(digest), learned, learn, dm);
  if (name == "boot_aggregate" && !digests_.count("boot_aggregate")) return std::nullopt;  // held against the quote
  return CheckFile(e, name, Key(digest), learned);
}

std::optional<Finding> RuntimePolicy::CheckFile(const ima::Entry& e, std::string_view path, const std::string& digest,
                                                const LearnedKeys& learned) const {
  if (Excluded(path)) return std::nullopt;
  std::string shown;
  {
    ByteView d;
    FileDigest(e, &d, &shown);
  }
  ByteView sig = e.FieldById(ima::FieldId::kSig);
  if (!sig.empty() && (!keys_.empty() || !learned.keys.empty())) {
    std::vector<PublicKey> all = keys_;
    all.insert(all.end(), learned.keys.begin(), learned.keys.end());
    ima::SignatureVerdict v = ima::EntrySignatureChecker(std::move(all)).Check(e);
    switch (v.kind) {
      case ima::SignatureVerdict::kGood:
        return std::nullopt;
      case ima::SignatureVerdict::kUnknownKey: {
        Finding f = EntryFinding(Reason::kUntrustedKey, e, path, shown);
        f.reference = "trusted keys: " + std::to_string(keys_.size()) + " in policy, " +
                      std::to_string(learned.keys.size()) + " learned from keyrings";
        f.detail = "signed by key id " + v.detail;
        return f;
      }
      case ima::SignatureVerdict::kBad: {
        Finding f = EntryFinding(Reason::kBadSignature, e, path, shown);
        f.detail = v.detail;
        return f;
      }
      case ima::SignatureVerdict::kNoSignature:
        break;  // an EVM portable signature in 'sig': judged by digest
    }
  }
  auto it = digests_.find(std::string(path));
  if (it != digests_.end()) {
    if (std::find(it->second.begin(), it->second.end(), digest) != it->second.end()) {
      return CheckVersion(e, path, digest, shown);
    }
    if (anywhere_.count(digest)) return std::nullopt;
    Finding f = EntryFinding(Reason::kDigestNotAllowed, e, path, shown);
    f.reference = "policy: " + HexList(it->second);
    if (auto oi = owners_.find(it->first); oi != owners_.end()) {
      auto pi = packages_.find(oi->second.package);
      if (pi != packages_.end()) {
        f.detail = HintNoVersion(path, oi->second.package, pi->second.installed,
                                 pi->second.versions.empty() ? "" : pi->second.versions.front());
      }
    }
    return f;
  }
  if (anywhere_.count(digest)) return std::nullopt;
  Finding f = EntryFinding(Reason::kUnknownFile, e, path, shown);
  f.reference = "policy: path not listed, digest not allowed anywhere";
  if (!owners_.empty()) f.detail = HintUnowned(path, "any package in the policy");
  return f;
}

std::optional<Finding> RuntimePolicy::CheckBuf(const ima::Entry& e, std::string_view name, const std::string& digest,
                                               const LearnedKeys& learned, LearnedKeys* learn, DmState* dm) const {
  (void)learned;
  std::string shown;
  {
    ByteView d;
    FileDigest(e, &d, &shown);
  }
  ByteView buf = e.FieldById(ima::FieldId::kBuf);
  std::string key(name);
  if (IsCertificate(buf)) {
    auto cert = PublicKey::FromDer(buf, "keyring " + key);
    if (cert.ok()) {
      if (ignored_keyrings_.count("*") || ignored_keyrings_.count(key)) return std::nullopt;
      if (Excluded(name)) return std::nullopt;
      auto it = keyrings_.find(key);
      if (it == keyrings_.end() || std::find(it->second.begin(), it->second.end(), digest) == it->second.end()) {
        Finding f = EntryFinding(Reason::kKeyringNotAllowed, e, name, shown);
        f.reference = it == keyrings_.end() ? "policy: keyring not listed" : "policy: " + HexList(it->second);
        f.detail = "key " + cert->subject();
        return f;
      }
      if (learn) {
        learn->certificates.emplace_back(buf.begin(), buf.end());
        learn->keys.push_back(std::move(cert).value());
      }
      return std::nullopt;
    }
  }
  // keylime: a device-mapper event goes to the dm validator when the policy has one.
  if (dm_ && dm && DmPolicy::IsDmEvent(name)) return dm_->Check(e, dm);
  if (Excluded(name)) return std::nullopt;
  auto it = ima_buf_.find(key);
  if (it != ima_buf_.end() && std::find(it->second.begin(), it->second.end(), digest) != it->second.end()) {
    return std::nullopt;
  }
  Finding f = EntryFinding(Reason::kImaBufNotAllowed, e, name, shown);
  f.reference = it == ima_buf_.end() ? "policy: ima-buf name not listed" : "policy: " + HexList(it->second);
  return f;
}

std::vector<Finding> RuntimePolicy::CheckBootPcrs(const std::map<uint16_t, std::map<int, Bytes>>& quoted) const {
  std::vector<Finding> out;
  for (const auto& [bank, pcrs] : boot_pcrs_) {
    auto qb = quoted.find(bank);
    for (const auto& [pcr, allowed] : pcrs) {
      const Bytes* v = nullptr;
      if (qb != quoted.end()) {
        auto qv = qb->second.find(pcr);
        if (qv != qb->second.end()) v = &qv->second;
      }
      if (v && std::find(allowed.begin(), allowed.end(), *v) != allowed.end()) continue;
      Finding f;
      f.reason = Reason::kMeasuredBoot;
      f.pcr = pcr;
      f.bank = TpmBankName(bank);
      f.digest = v ? ToHex(*v) : "";
      std::vector<std::string> keys;
      for (const auto& a : allowed) keys.push_back(Key(a));
      f.reference = "policy: " + HexList(keys);
      f.detail = v ? "PCR value not allowed" : "PCR not quoted";
      out.push_back(std::move(f));
    }
  }
  return out;
}

// ---- keylime JSON ----

Result<RuntimePolicy> RuntimePolicy::FromKeylimeJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("keylime runtime policy: not JSON");
  if (!j.is_object()) return Status::InvalidArgument("keylime runtime policy: expected an object");
  static const char* kKeys[] = {"meta", "release", "digests", "excludes", "keyrings", "ima", "ima-buf", "verification-keys"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find_if(std::begin(kKeys), std::end(kKeys), [&](const char* k) { return it.key() == k; }) ==
        std::end(kKeys)) {
      return Status::InvalidArgument("keylime runtime policy: unknown key \"" + it.key() + "\"");
    }
  }
  RuntimePolicy p;
  LIM_ASSIGN_OR_RETURN(const json* meta, Member(j, "meta", ""));
  if (!meta->is_object()) return Status::InvalidArgument("meta: expected an object");
  LIM_ASSIGN_OR_RETURN(const json* version, Member(*meta, "version", "meta."));
  LIM_RETURN_IF_ERROR(ExpectType(*version, json::value_t::number_integer, "meta.version", "an integer"));
  p.meta_.version = version->get<int>();
  if (p.meta_.version != 1) {
    return Status::Unsupported("meta.version " + std::to_string(p.meta_.version) + " (lim reads version 1)");
  }
  if (meta->contains("generator")) {
    LIM_RETURN_IF_ERROR(ExpectType((*meta)["generator"], json::value_t::number_integer, "meta.generator", "an integer"));
    p.meta_.generator = (*meta)["generator"].get<int>();
  }
  if (meta->contains("timestamp")) {
    if (!(*meta)["timestamp"].is_string()) return Status::InvalidArgument("meta.timestamp: expected a string");
    p.meta_.timestamp = (*meta)["timestamp"].get<std::string>();
  }
  if (j.contains("release")) {
    LIM_RETURN_IF_ERROR(ExpectType(j["release"], json::value_t::number_integer, "release", "an integer"));
    p.meta_.release = j["release"].get<int>();
  }
  if (j.contains("digests")) {
    LIM_ASSIGN_OR_RETURN(auto d, DigestListMap(j["digests"], "digests"));
    for (auto& [k, v] : d) p.digests_[k] = std::move(v);
  }
  if (j.contains("excludes")) {
    LIM_ASSIGN_OR_RETURN(p.exclude_sources_, StringList(j["excludes"], "excludes"));
  }
  if (j.contains("keyrings")) {
    LIM_ASSIGN_OR_RETURN(p.keyrings_, DigestListMap(j["keyrings"], "keyrings"));
  }
  if (j.contains("ima-buf")) {
    LIM_ASSIGN_OR_RETURN(p.ima_buf_, DigestListMap(j["ima-buf"], "ima-buf"));
  }
  if (j.contains("ima")) {
    const json& ima = j["ima"];
    if (!ima.is_object()) return Status::InvalidArgument("ima: expected an object");
    for (auto it = ima.begin(); it != ima.end(); ++it) {
      if (it.key() != "ignored_keyrings" && it.key() != "log_hash_alg" && it.key() != "dm_policy") {
        return Status::InvalidArgument("ima: unknown key \"" + it.key() + "\"");
      }
    }
    if (ima.contains("ignored_keyrings")) {
      LIM_ASSIGN_OR_RETURN(auto ign, StringList(ima["ignored_keyrings"], "ima.ignored_keyrings"));
      p.ignored_keyrings_.insert(ign.begin(), ign.end());
    }
    if (ima.contains("log_hash_alg")) {
      if (!ima["log_hash_alg"].is_string()) return Status::InvalidArgument("ima.log_hash_alg: expected a string");
      p.log_hash_alg_ = ima["log_hash_alg"].get<std::string>();
      if (!HashAlgoByName(p.log_hash_alg_).ok()) {
        return Status::InvalidArgument("ima.log_hash_alg: unknown algorithm \"" + p.log_hash_alg_ + "\"");
      }
    }
    if (ima.contains("dm_policy")) LIM_RETURN_IF_ERROR(p.SetDmPolicyFrom(text, true));
  }
  if (j.contains("verification-keys")) {
    if (!j["verification-keys"].is_string()) return Status::InvalidArgument("verification-keys: expected a string");
    const std::string& vk = j["verification-keys"].get_ref<const std::string&>();
    if (!vk.empty()) {
      // keylime's ImaKeyring.to_string(): {"meta":{"version":1},"pubkeys":[base64 DER SPKI,…]}.
      json k = json::parse(vk, nullptr, false);
      if (k.is_discarded() || !k.is_object() || !k.contains("pubkeys")) {
        return Status::InvalidArgument("verification-keys: expected keylime's keyring JSON with \"pubkeys\"");
      }
      LIM_RETURN_IF_ERROR(TrustSpkiList(k["pubkeys"], "verification-keys.pubkeys", &p));
    }
  }
  LIM_RETURN_IF_ERROR(p.Rebuild());
  return p;
}

std::string RuntimePolicy::ToKeylimeJson(std::vector<std::string>* lost) const {
  json j;
  json meta = {{"version", meta_.version}};
  if (meta_.generator) meta["generator"] = *meta_.generator;
  if (meta_.timestamp) meta["timestamp"] = *meta_.timestamp;
  j["meta"] = meta;
  j["release"] = meta_.release;
  j["excludes"] = exclude_sources_;
  j["keyrings"] = DigestMapJson(keyrings_);
  json dm = json::parse(dm_policy_, nullptr, false);
  j["ima"] = {{"ignored_keyrings", std::vector<std::string>(ignored_keyrings_.begin(), ignored_keyrings_.end())},
              {"log_hash_alg", log_hash_alg_},
              {"dm_policy", dm.is_discarded() ? json(nullptr) : dm}};
  j["ima-buf"] = DigestMapJson(ima_buf_);
  if (keys_.empty()) {
    j["verification-keys"] = "";
  } else {
    json pub = json::array();
    for (const auto& der : key_spki_) pub.push_back(Base64(der));
    j["verification-keys"] = json({{"meta", {{"version", 1}}}, {"pubkeys", pub}}).dump();
  }
  if (lost) {
    lost->clear();
    if (!anywhere_.empty()) {
      lost->push_back(std::to_string(anywhere_.size()) + " digests allowed anywhere (keylime has no such list)");
    }
    if (!boot_pcrs_.empty()) lost->push_back("measured-boot PCR values (keylime keeps them in an mb_refstate)");
    if (!owners_.empty()) {
      lost->push_back("package provenance of " + std::to_string(owners_.size()) +
                      " paths (every version's digests are in \"digests\"; keylime cannot tell old from unknown)");
    }
    if (boot_) lost->push_back("measured-boot components \"boot\" (keylime keeps them in an mb_refstate)");
  }
  // Paths that are not UTF-8 (a list may carry any bytes) cannot be JSON strings: U+FFFD.
  size_t bytes = 0;
  auto sorted = SortedPaths(digests_, &bytes);
  return DumpTopLevel(j, {{"digests", [&](int level, std::string* out) { AppendDigestMap(sorted, level, out); }}},
                      bytes);
}

// ---- native JSON ----

Result<RuntimePolicy> RuntimePolicy::FromNativeJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("lim runtime policy: not JSON");
  if (!j.is_object()) return Status::InvalidArgument("lim runtime policy: expected an object");
  static const char* kKeys[] = {"lim_runtime_policy", "release", "paths", "anywhere", "excludes", "keys",
                                "keyrings", "ignored_keyrings", "ima_buf", "log_hash_alg", "dm_policy", "boot_pcrs", "boot",
                                "generator", "timestamp", "packages", "owners",
                                // `lim scan`'s manifest (kind, size, mode, owner per path): for people
                                // and tools, not for verdicts, so it is accepted and not kept.
                                "files"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find_if(std::begin(kKeys), std::end(kKeys), [&](const char* k) { return it.key() == k; }) ==
        std::end(kKeys)) {
      return Status::InvalidArgument("lim runtime policy: unknown key \"" + it.key() + "\"");
    }
  }
  LIM_ASSIGN_OR_RETURN(const json* version, Member(j, "lim_runtime_policy", ""));
  LIM_RETURN_IF_ERROR(ExpectType(*version, json::value_t::number_integer, "lim_runtime_policy", "an integer"));
  if (version->get<int>() != 1) return Status::Unsupported("lim_runtime_policy " + version->dump() + " (lim reads 1)");
  RuntimePolicy p;
  if (j.contains("release")) {
    LIM_RETURN_IF_ERROR(ExpectType(j["release"], json::value_t::number_integer, "release", "an integer"));
    p.meta_.release = j["release"].get<int>();
  }
  if (j.contains("generator")) {
    LIM_RETURN_IF_ERROR(ExpectType(j["generator"], json::value_t::number_integer, "generator", "an integer"));
    p.meta_.generator = j["generator"].get<int>();
  }
  if (j.contains("timestamp")) {
    if (!j["timestamp"].is_string()) return Status::InvalidArgument("timestamp: expected a string");
    p.meta_.timestamp = j["timestamp"].get<std::string>();
  }
  if (j.contains("paths")) {
    LIM_ASSIGN_OR_RETURN(auto d, DigestListMap(j["paths"], "paths"));
    for (auto& [k, v] : d) p.digests_[k] = std::move(v);
  }
  if (j.contains("anywhere")) {
    LIM_ASSIGN_OR_RETURN(auto any, StringList(j["anywhere"], "anywhere"));
    for (size_t i = 0; i < any.size(); ++i) {
      auto d = ParsePolicyDigest(any[i]);
      if (!d.ok()) return d.status().WithPrefix("anywhere[" + std::to_string(i) + "]");
      p.anywhere_.insert(Key(*d));
    }
  }
  if (j.contains("excludes")) {
    LIM_ASSIGN_OR_RETURN(p.exclude_sources_, StringList(j["excludes"], "excludes"));
  }
  if (j.contains("keys")) {
    LIM_RETURN_IF_ERROR(TrustSpkiList(j["keys"], "keys", &p));
  }
  if (j.contains("keyrings")) {
    LIM_ASSIGN_OR_RETURN(p.keyrings_, DigestListMap(j["keyrings"], "keyrings"));
  }
  if (j.contains("ignored_keyrings")) {
    LIM_ASSIGN_OR_RETURN(auto ign, StringList(j["ignored_keyrings"], "ignored_keyrings"));
    p.ignored_keyrings_.insert(ign.begin(), ign.end());
  }
  if (j.contains("ima_buf")) {
    LIM_ASSIGN_OR_RETURN(p.ima_buf_, DigestListMap(j["ima_buf"], "ima_buf"));
  }
  if (j.contains("log_hash_alg")) {
    if (!j["log_hash_alg"].is_string() || !HashAlgoByName(j["log_hash_alg"].get<std::string>()).ok()) {
      return Status::InvalidArgument("log_hash_alg: expected a hash algorithm name");
    }
    p.log_hash_alg_ = j["log_hash_alg"].get<std::string>();
  }
  if (j.contains("dm_policy")) LIM_RETURN_IF_ERROR(p.SetDmPolicyFrom(text, false));
  if (j.contains("boot") && !j["boot"].is_null()) {
    auto boot = BootPolicy::FromJsonText(j["boot"].dump());
    if (!boot.ok()) return boot.status();
    p.SetBoot(std::move(boot).value());
  }
  if (j.contains("boot_pcrs")) {
    const json& b = j["boot_pcrs"];
    if (!b.is_object()) return Status::InvalidArgument("boot_pcrs: expected {bank: {pcr: [values]}}");
    for (auto bi = b.begin(); bi != b.end(); ++bi) {
      auto alg = HashAlgoByName(bi.key());
      if (!alg.ok() || alg->tpm_alg == 0) return Status::InvalidArgument("boot_pcrs." + bi.key() + ": unknown bank");
      if (!bi.value().is_object()) return Status::InvalidArgument("boot_pcrs." + bi.key() + ": expected an object");
      for (auto pi = bi.value().begin(); pi != bi.value().end(); ++pi) {
        std::string w = "boot_pcrs." + bi.key() + "." + pi.key();
        int pcr = -1;
        if (pi.key().size() <= 2 && !pi.key().empty() &&
            std::all_of(pi.key().begin(), pi.key().end(), [](char c) { return c >= '0' && c <= '9'; })) {
          pcr = std::stoi(pi.key());
        }
        if (pcr < 0 || pcr > 7) return Status::InvalidArgument(w + ": measured-boot PCRs are 0–7");
        LIM_ASSIGN_OR_RETURN(auto values, StringList(pi.value(), w));
        for (size_t i = 0; i < values.size(); ++i) {
          auto v = FromHex(values[i]);
          if (!v.ok() || v->size() != alg->size) {
            return Status::InvalidArgument(w + "[" + std::to_string(i) + "]: not a " + alg->tpm_name + " value");
          }
          p.AllowBootPcr(alg->tpm_alg, pcr, std::move(v).value());
        }
      }
    }
  }
  LIM_RETURN_IF_ERROR(ReadProvenance(j, &p));
  LIM_RETURN_IF_ERROR(p.Rebuild());
  return p;
}

std::string RuntimePolicy::ToNativeJson() const {
  json j;
  j["lim_runtime_policy"] = 1;
  j["release"] = meta_.release;
  if (meta_.generator) j["generator"] = *meta_.generator;
  if (meta_.timestamp) j["timestamp"] = *meta_.timestamp;
  std::vector<std::string> any(anywhere_.begin(), anywhere_.end());
  std::sort(any.begin(), any.end());
  j["anywhere"] = DigestListJson(any);
  j["excludes"] = exclude_sources_;
  json keys = json::array();
  for (const auto& der : key_spki_) keys.push_back(Base64(der));
  j["keys"] = keys;
  j["keyrings"] = DigestMapJson(keyrings_);
  j["ignored_keyrings"] = std::vector<std::string>(ignored_keyrings_.begin(), ignored_keyrings_.end());
  j["ima_buf"] = DigestMapJson(ima_buf_);
  j["log_hash_alg"] = log_hash_alg_;
  json dm = json::parse(dm_policy_, nullptr, false);
  j["dm_policy"] = dm.is_discarded() ? json(nullptr) : dm;
  json boot = json::object();
  for (const auto& [bank, pcrs] : boot_pcrs_) {
    json b = json::object();
    for (const auto& [pcr, values] : pcrs) {
      json a = json::array();
      for (const auto& v : values) a.push_back(ToHex(v));
      b[std::to_string(pcr)] = a;
    }
    boot[TpmBankName(bank)] = b;
  }
  j["boot_pcrs"] = boot;
  size_t bytes = 0;
  auto sorted = SortedPaths(digests_, &bytes);
  std::map<std::string, MemberWriter> streamed;
  streamed["paths"] = [&](int level, std::string* out) { AppendDigestMap(sorted, level, out); };
  if (!packages_.empty() || !owners_.empty()) {
    json pk = json::object();
    for (const auto& [name, info] : packages_) {
      pk[name] = {{"versions", info.versions}, {"installed", info.installed}, {"source", info.source}};
    }
    j["packages"] = pk;
    // {path: {"package": name, "versions": {version: [hex, …]}}}
    streamed["owners"] = [&](int level, std::string* out) {
      JsonObjectWriter ow(level, out);
      std::vector<const std::pair<const std::string, std::vector<std::string>>*> versions;
      for (const auto& [path, o] : owners_) {
        ow.Key(path);
        JsonObjectWriter entry(level + 1, out);
        entry.Key("package");
        AppendJsonString(o.package, out);
        entry.Key("versions");
        versions.clear();
        for (const auto& kv : o.versions) versions.push_back(&kv);
        AppendDigestMap(versions, level + 2, out);
        entry.End();
      }
      ow.End();
    };
    bytes += owners_.size() * 80 + bytes;
  }
  if (boot_) j["boot"] = json::parse(boot_->ToJsonText());
  // Paths that are not UTF-8 (a list may carry any bytes) cannot be JSON strings: U+FFFD.
  return DumpTopLevel(j, streamed, bytes);
}

Result<RuntimePolicy> RuntimePolicy::FromJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("lim_runtime_policy")) return FromNativeJson(text);
  return FromKeylimeJson(text);
}

Result<RuntimePolicy> LearnPolicy(ByteView list, uint64_t* entries) {
  LIM_ASSIGN_OR_RETURN(auto reader, ima::ListReader::FromBytes(list));
  RuntimePolicy p;
  p.set_log_hash_alg(reader->bank().kernel_name);
  ima::Entry e;
  for (;;) {
    LIM_ASSIGN_OR_RETURN(bool more, reader->Next(&e));
    if (!more) break;
    if (e.violation) continue;
    ByteView d;
    std::string shown;
    if (!FileDigest(e, &d, &shown)) continue;
    std::string name(e.name());
    if (e.HasField(ima::FieldId::kBuf)) {
      ByteView buf = e.FieldById(ima::FieldId::kBuf);
      if (IsCertificate(buf) && PublicKey::FromDer(buf).ok()) {
        p.AllowKeyring(name, Bytes(d.begin(), d.end()));
      } else {
        p.AllowImaBuf(name, Bytes(d.begin(), d.end()));
      }
      continue;
    }
    if (name == "boot_aggregate") continue;  // held against the quoted PCRs, differs per boot
    p.AllowPath(name, Bytes(d.begin(), d.end()));
  }
  if (entries) *entries = reader->entries_read();
  return p;
}

}  // namespace lim::attest
