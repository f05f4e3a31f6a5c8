#include "attest/policy_diff.h"

#include <algorithm>
#include <functional>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "base/escape.h"
#include "base/hex.h"

namespace lim::attest {
namespace {

using json = nlohmann::json;
using NoteFn = std::function<std::string(const std::string& value, bool added)>;

// Adds an item per value in exactly one of a and b: in b only → allows, in a only → forbids.
void SetDiff(const std::set<std::string>& a, const std::set<std::string>& b, const std::string& section,
             const std::string& key, const std::string& what, std::vector<DiffItem>* out, const NoteFn& note = {}) {
  for (const auto& v : b) {
    if (!a.count(v)) out->push_back({section, key, "allows", what, v, note ? note(v, true) : ""});
  }
  for (const auto& v : a) {
    if (!b.count(v)) out->push_back({section, key, "forbids", what, v, note ? note(v, false) : ""});
  }
}

std::set<std::string> Strings(const json& j) {
  std::set<std::string> s;
  if (!j.is_array()) return s;
  for (const auto& v : j) s.insert(v.is_string() ? v.get<std::string>() : v.dump());
  return s;
}

std::set<std::string> Keys(const json& a, const json& b) {
  std::set<std::string> s;
  for (const json* o : {&a, &b}) {
    if (!o->is_object()) continue;
    for (auto it = o->begin(); it != o->end(); ++it) s.insert(it.key());
  }
  return s;
}

const json& Get(const json& o, const std::string& key) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

// A map of name → list of digests (keyrings, ima_buf).
void MapDiff(const json& a, const json& b, const std::string& section, std::vector<DiffItem>* out) {
  for (const auto& k : Keys(a, b)) SetDiff(Strings(Get(a, k)), Strings(Get(b, k)), section, k, "digest", out);
}

std::string Shown(const json& v) { return v.is_null() ? "(none)" : v.dump(-1, ' ', false, json::error_handler_t::replace); }

void ChangeIfDiffers(const json& a, const json& b, const std::string& section, const std::string& key,
                     std::vector<DiffItem>* out) {
  if (a != b) out->push_back({section, key, "changes", "value", Shown(a) + " -> " + Shown(b), ""});
}

// "coreutils 9.1-1" for a digest of path under the policy's owners; "" when it has none.
std::string OwnerNote(const RuntimePolicy& p, const std::string& path, const std::string& digest) {
  auto it = p.owners().find(path);
  if (it == p.owners().end()) return "";
  std::string versions;
  for (const auto& [version, digests] : it->second.versions) {
    if (std::find(digests.begin(), digests.end(), digest) == digests.end()) continue;
    versions += (versions.empty() ? "" : ",") + version;
  }
  return versions.empty() ? "" : it->second.package + " " + versions;
}

void PathsDiff(const RuntimePolicy& a, const RuntimePolicy& b, std::vector<DiffItem>* out) {
  std::vector<std::string> an = a.PathNames(), bn = b.PathNames(), all;
  std::set_union(an.begin(), an.end(), bn.begin(), bn.end(), std::back_inserter(all));
  for (const auto& path : all) {
    const std::vector<std::string>* ad = a.PathDigests(path);
    const std::vector<std::string>* bd = b.PathDigests(path);
    // Hex digests, so that notes and output need no raw bytes; owners hold raw digests.
    std::map<std::string, std::string> raw;
    auto hexes = [&](const std::vector<std::string>* d) {
      std::set<std::string> s;
      if (!d) return s;
      for (const auto& r : *d) {
        std::string h = ToHex(AsBytes(r));
        raw[h] = r;
        s.insert(h);
      }
      return s;
    };
    std::set<std::string> as = hexes(ad), bs = hexes(bd);
    // A path new in B (or gone from A) is reported as such, one item per digest.
    const char* what = !ad ? "path" : !bd ? "path" : "digest";
    SetDiff(as, bs, "path", path, what, out, [&](const std::string& h, bool added) {
      return OwnerNote(added ? b : a, path, raw[h]);
    });
  }
}

void PackagesDiff(const RuntimePolicy& a, const RuntimePolicy& b, std::vector<DiffItem>* out) {
  std::set<std::string> names;
  for (const auto* p : {&a, &b}) {
    for (const auto& [name, info] : p->packages()) names.insert(name);
  }
  auto versions = [](const RuntimePolicy& p, const std::string& name) {
    auto it = p.packages().find(name);
    return it == p.packages().end() ? std::set<std::string>()
                                    : std::set<std::string>(it->second.versions.begin(), it->second.versions.end());
  };
  for (const auto& name : names) SetDiff(versions(a, name), versions(b, name), "package", name, "version", out);
}

// "boot": the firmware-log boot components (boot_policy.h). Lists of allowed values are
// compared as sets; any other setting that differs is a change.
void BootDiff(const json& a, const json& b, std::vector<DiffItem>* out) {
  if (a.is_null() != b.is_null()) {
    // Adding boot expectations makes the verifier check boot: narrower; dropping them, wider.
    out->push_back({"boot", "", a.is_null() ? "forbids" : "allows", "policy", a.is_null() ? "added" : "removed", ""});
    return;
  }
  for (const auto& k : Keys(a, b)) {
    const json &x = Get(a, k), &y = Get(b, k);
    bool lists = (x.is_array() || x.is_null()) && (y.is_array() || y.is_null());
    if (lists) {
      SetDiff(Strings(x), Strings(y), "boot", k, "value", out);
    } else {
      ChangeIfDiffers(x, y, "boot", k, out);
    }
  }
}

void AppendItemText(const DiffItem& i, std::string* out) {
  *out += i.effect == "allows" ? "+ " : i.effect == "forbids" ? "- " : "~ ";
  *out += i.section;
  if (!i.key.empty()) *out += " " + Escaped(i.key);
  *out += " " + i.what;
  if (!i.value.empty()) *out += " " + Escaped(i.value);
  if (!i.note.empty()) *out += " (" + Escaped(i.note) + ")";
  *out += "\n";
}

}  // namespace

bool DiffItem::operator<(const DiffItem& o) const {
  return std::tie(section, key, what, value, effect, note) < std::tie(o.section, o.key, o.what, o.value, o.effect, o.note);
}

std::vector<DiffItem> DiffPolicies(const RuntimePolicy& a, const RuntimePolicy& b) {
  // Everything but paths is compared in the native form, which normalises both input forms
  // (paths may hold non-UTF-8 bytes the JSON form would replace: those come from PathNames).
  json ja = json::parse(a.ToNativeJson()), jb = json::parse(b.ToNativeJson());
  std::vector<DiffItem> out;
  PathsDiff(a, b, &out);
  SetDiff(Strings(ja["anywhere"]), Strings(jb["anywhere"]), "anywhere", "", "digest", &out);
  SetDiff(Strings(ja["excludes"]), Strings(jb["excludes"]), "exclude", "", "regex", &out,
          [](const std::string&, bool added) {
            return added ? "widens: matching paths pass unchecked" : "narrows: matching paths are checked again";
          });
  SetDiff(Strings(ja["keys"]), Strings(jb["keys"]), "key", "", "spki", &out);
  MapDiff(ja["keyrings"], jb["keyrings"], "keyring", &out);
  SetDiff(Strings(ja["ignored_keyrings"]), Strings(jb["ignored_keyrings"]), "ignored_keyring", "", "name", &out);
  MapDiff(ja["ima_buf"], jb["ima_buf"], "ima_buf", &out);
  for (const auto& bank : Keys(ja["boot_pcrs"], jb["boot_pcrs"])) {
    const json &x = Get(ja["boot_pcrs"], bank), &y = Get(jb["boot_pcrs"], bank);
    for (const auto& pcr : Keys(x, y)) {
      SetDiff(Strings(Get(x, pcr)), Strings(Get(y, pcr)), "boot_pcr", bank + ":" + pcr, "value", &out);
    }
  }
  BootDiff(Get(ja, "boot"), Get(jb, "boot"), &out);
  ChangeIfDiffers(ja["log_hash_alg"], jb["log_hash_alg"], "log_hash_alg", "", &out);
  ChangeIfDiffers(ja["dm_policy"], jb["dm_policy"], "dm_policy", "", &out);
  PackagesDiff(a, b, &out);
  std::sort(out.begin(), out.end());
  return out;
}

std::string DiffText(const std::vector<DiffItem>& items) {
  std::string out;
  for (const auto& i : items) AppendItemText(i, &out);
  return out;
}

std::string DiffJson(const std::vector<DiffItem>& items) {
  json changes = json::array();
  for (const auto& i : items) {
    changes.push_back({{"section", i.section},
                       {"key", Escaped(i.key)},
                       {"effect", i.effect},
                       {"what", i.what},
                       {"value", Escaped(i.value)},
                       {"note", Escaped(i.note)}});
  }
  json j = {{"identical", items.empty()}, {"changes", changes}};
  return j.dump(1, ' ', false, json::error_handler_t::replace);
}

}  // namespace lim::attest
