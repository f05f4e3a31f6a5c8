#include "attest/dm_policy.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "ima/digest_field.h"

namespace lim::attest {
namespace {

using ojson = nlohmann::ordered_json;

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Splits at unescaped sep; a backslash keeps the next character literally (dm-ima escapes
// its separators in names with one).
std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out.back() += s[i];
      out.back() += s[++i];
    } else if (s[i] == sep) {
      out.emplace_back();
    } else {
      out.back() += s[i];
    }
  }
  return out;
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  return out;
}

// One dm-ima event: its ';'-sections of ','-separated key=value pairs, sorted into the
// device metadata, the targets and everything else.
struct DmEvent {
  Pairs metadata;              // name, uuid, major, minor, minor_count, num_targets
  std::vector<Pairs> targets;  // each from target_index on
  Pairs other;

  static std::optional<std::string> Get(const Pairs& p, std::string_view key) {
    for (const auto& [k, v] : p) {
      if (k == key) return v;
    }
    return std::nullopt;
  }
};

Result<DmEvent> ParseEvent(std::string_view text) {
  DmEvent ev;
  bool have_meta = false;
  for (const std::string& section : Split(text, ';')) {
    if (section.empty()) continue;
    Pairs pairs;
    for (const std::string& item : Split(section, ',')) {
      if (item.empty()) continue;
      auto parts = Split(item, '=');
      if (parts.size() < 2) return Status::InvalidArgument("dm event: \"" + item + "\" is not key=value");
      std::string key = Unescape(parts[0]);
      std::string value;
      // device_active_metadata=name=x: the pair inside the prefix.
      if ((key == "device_active_metadata" || key == "device_inactive_metadata") && parts.size() >= 3) {
        std::string prefix = key;
        key = Unescape(parts[1]);
        for (size_t i = 2; i < parts.size(); ++i) value += (i > 2 ? "=" : "") + Unescape(parts[i]);
        pairs.emplace_back("@" + prefix, "");
      } else {
        for (size_t i = 1; i < parts.size(); ++i) value += (i > 1 ? "=" : "") + Unescape(parts[i]);
      }
      pairs.emplace_back(std::move(key), std::move(value));
    }
    if (pairs.empty()) continue;
    if (pairs.front().first == "target_index") {
      ev.targets.push_back(std::move(pairs));
    } else if (pairs.front().first == "@device_inactive_metadata") {
      continue;  // the inactive table of a remove: not validated (as keylime)
    } else if (!have_meta && (pairs.front().first == "name" || pairs.front().first == "@device_active_metadata")) {
      if (pairs.front().first[0] == '@') pairs.erase(pairs.begin());
      ev.metadata = std::move(pairs);
      have_meta = true;
    } else {
      for (auto& p : pairs) ev.other.push_back(std::move(p));
    }
  }
  if (!have_meta) return Status::InvalidArgument("dm event has no device metadata (name=…,uuid=…)");
  return ev;
}

std::optional<bool> StrToBool(std::string v) {
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (v == "y" || v == "yes" || v == "t" || v == "true" || v == "on" || v == "1") return true;
  if (v == "n" || v == "no" || v == "f" || v == "false" || v == "off" || v == "0") return false;
  return std::nullopt;
}

std::optional<long long> ToInt(const std::string& v) {
  std::string t = v;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  size_t b = 0;
  while (b < t.size() && std::isspace(static_cast<unsigned char>(t[b]))) ++b;
  t = t.substr(b);
  if (t.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(t.c_str(), &end, 10);
  if (errno || *end) return std::nullopt;
  return n;
}

Finding DmFinding(const ima::Entry& e, std::string detail) {
  Finding f;
  f.reason = Reason::kDmPolicy;
  f.entry = e.index;
  f.pcr = static_cast<int>(e.pcr);
  f.tmpl = std::string(e.template_name);
  f.path = std::string(e.name());
  f.detail = std::move(detail);
  return f;
}

const char* kValidNames[] = {"dm_table_load", "dm_device_resume", "dm_device_remove",
                             "dm_table_clear", "dm_device_rename", "dm_target_update"};

Result<bool> Bool(const ojson& obj, const char* key, bool missing, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return missing;
  if (!it->is_boolean()) return Status::InvalidArgument(where + "." + key + ": expected true or false");
  return it->get<bool>();
}

}  // namespace

bool DmPolicy::IsDmEvent(std::string_view name) {
  return std::any_of(std::begin(kValidNames), std::end(kValidNames), [&](const char* n) { return name == n; });
}

bool DmPolicy::Ref::Matches(const std::optional<std::string>& attr) const {
  if (kind == kAny) return true;
  if (!attr) return false;
  switch (kind) {
    case kBool: {
      auto v = StrToBool(*attr);
      return v && *v == b;
    }
    case kInt: {
      auto v = ToInt(*attr);
      return v && *v == i;
    }
    case kRegex: return re->FullMatch(*attr);
    default: return true;
  }
}

Result<DmPolicy::Ref> DmPolicy::ParseRef(const void* value, const std::string& where) {
  const ojson& v = *static_cast<const ojson*>(value);
  Ref r;
  r.text = v.dump();
  if (v.is_null()) {
    r.kind = Ref::kAny;
  } else if (v.is_boolean()) {
    r.kind = Ref::kBool;
    r.b = v.get<bool>();
  } else if (v.is_number_integer() || v.is_number_unsigned()) {
    r.kind = Ref::kInt;
    r.i = v.get<long long>();
  } else if (v.is_string()) {
    r.kind = Ref::kRegex;
    LIM_ASSIGN_OR_RETURN(PyRegex re, PyRegex::Compile(v.get<std::string>(), where));
    r.re = std::move(re);
  } else {
    return Status::InvalidArgument(where + ": expected null, a boolean, an integer or a regular expression");
  }
  return r;
}

Result<DmPolicy> DmPolicy::FromJsonText(std::string_view text) {
  ojson j = ojson::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("dm_policy: expected an object");
  DmPolicy p;
  if (auto m = j.find("match_on"); m != j.end()) {
    if (!m->is_string() || (m->get<std::string>() != "name" && m->get<std::string>() != "uuid")) {
      return Status::InvalidArgument("dm_policy.match_on: expected \"name\" or \"uuid\"");
    }
    p.match_on_ = m->get<std::string>();
  }
  auto rules = j.find("rules");
  if (rules == j.end() || !rules->is_object()) return Status::InvalidArgument("dm_policy.rules: expected an object");
  for (auto it = rules->begin(); it != rules->end(); ++it) {
    const std::string w = "dm_policy.rules." + it.key();
    if (!it->is_object()) return Status::InvalidArgument(w + ": expected an object");
    Rule r;
    r.name = it.key();
    const ojson& o = *it;
    LIM_ASSIGN_OR_RETURN(r.required, Bool(o, "required", false, w));
    LIM_ASSIGN_OR_RETURN(r.resume_required, Bool(o, "device_resume_required", true, w));
    LIM_ASSIGN_OR_RETURN(r.allow_clear, Bool(o, "allow_clear", false, w));
    if (auto rm = o.find("device_remove"); rm != o.end() && !rm->is_null()) {
      if (!rm->is_object()) return Status::InvalidArgument(w + ".device_remove: expected an object");
      LIM_ASSIGN_OR_RETURN(r.allow_removal, Bool(*rm, "allow_removal", false, w + ".device_remove"));
    }
    if (auto rn = o.find("device_rename"); rn != o.end() && !rn->is_null()) {
      if (!rn->is_object()) return Status::InvalidArgument(w + ".device_rename: expected an object");
      for (const char* k : {"valid_name", "valid_uuid"}) {
        ojson v = rn->contains(k) ? (*rn)[k] : ojson(false);  // absent: no rename allowed
        LIM_ASSIGN_OR_RETURN(Ref ref, ParseRef(&v, w + ".device_rename." + k));
        (std::string(k) == "valid_name" ? r.valid_name : r.valid_uuid) = std::move(ref);
      }
    } else {
      r.valid_name.kind = r.valid_uuid.kind = Ref::kBool;  // never matches a name: no renames
    }
    auto tl = o.find("table_load");
    if (tl == o.end() || !tl->is_object()) return Status::InvalidArgument(w + ".table_load: expected an object");
    LIM_ASSIGN_OR_RETURN(r.allow_multiple_loads, Bool(*tl, "allow_multiple_loads", false, w + ".table_load"));
    for (auto f = tl->begin(); f != tl->end(); ++f) {
      const std::string fw = w + ".table_load." + f.key();
      if (f.key() == "allow_multiple_loads") continue;
      if (f.key() == "targets") {
        if (!f->is_array()) return Status::InvalidArgument(fw + ": expected a list");
        for (size_t t = 0; t < f->size(); ++t) {
          if (!(*f)[t].is_object()) return Status::InvalidArgument(fw + "[" + std::to_string(t) + "]: expected an object");
          std::vector<std::pair<std::string, Ref>> target;
          for (auto a = (*f)[t].begin(); a != (*f)[t].end(); ++a) {
            LIM_ASSIGN_OR_RETURN(Ref ref, ParseRef(&a.value(), fw + "[" + std::to_string(t) + "]." + a.key()));
            target.emplace_back(a.key(), std::move(ref));
          }
          r.targets.push_back(std::move(target));
        }
        continue;
      }
      if (f.key() != "name" && f.key() != "uuid" && f.key() != "major" && f.key() != "minor" &&
          f.key() != "minor_count" && f.key() != "num_targets") {
        return Status::InvalidArgument(fw + ": unknown key");
      }
      LIM_ASSIGN_OR_RETURN(Ref ref, ParseRef(&f.value(), fw));
      r.table[f.key()] = std::move(ref);
    }
    if (!r.table.count(p.match_on_) || r.table[p.match_on_].kind != Ref::kRegex) {
      return Status::InvalidArgument(w + ".table_load." + p.match_on_ + ": expected a regular expression (match_on)");
    }
    p.rules_.push_back(std::move(r));
  }
  return p;
}

std::optional<Finding> DmPolicy::Check(const ima::Entry& e, DmState* state) const {
  const std::string event(e.name());
  ByteView buf = e.FieldById(ima::FieldId::kBuf);
  std::string text(reinterpret_cast<const char*>(buf.data()), buf.size());
  // The entry's digest must be the hash of the buffer (keylime: invalid_data).
  std::string digest_text;
  if (e.HasField(ima::FieldId::kDNg)) {
    auto df = ima::ParseDigestField(e.FieldById(ima::FieldId::kDNg), false);
    auto algo = df.ok() ? HashAlgoByName(df->algo_name) : Result<HashAlgo>(Status::InvalidArgument(""));
    if (!df.ok() || !algo.ok() || !HashAlgoAvailable(*algo)) {
      return DmFinding(e, "the entry's digest field does not parse");
    }
    digest_text = std::string(df->algo_name) + ":" + ToHex(df->digest);
    auto want = Digest(*algo, buf);
    if (!want.ok() || !std::equal(want->begin(), want->end(), df->digest.begin(), df->digest.end())) {
      Finding f = DmFinding(e, "the entry's digest is not the hash of its buffer");
      f.digest = digest_text;
      return f;
    }
  }
  auto parsed = ParseEvent(text);
  if (!parsed.ok()) {
    Finding f = DmFinding(e, parsed.status().message());
    f.digest = digest_text;
    return f;
  }
  const DmEvent& ev = *parsed;
  const std::string device = DmEvent::Get(ev.metadata, match_on_).value_or("");
  auto fail = [&](std::string detail, std::string reference = {}) {
    Finding f = DmFinding(e, "device " + device + ": " + detail);
    f.digest = digest_text;
    f.reference = std::move(reference);
    return f;
  };
  auto rule_of = [&](const std::string& name) -> const Rule* {
    for (const auto& r : rules_) {
      if (r.name == name) return &r;
    }
    return nullptr;
  };
  auto check_target = [&](const Pairs& target, const std::vector<std::pair<std::string, Ref>>& want,
                          const Rule& rule) -> std::optional<Finding> {
    for (const auto& [key, ref] : want) {
      auto got = DmEvent::Get(target, key);
      if (ref.Matches(got)) continue;
      return fail("target " + DmEvent::Get(target, "target_index").value_or("?") + " " + key + "=" +
                      got.value_or("(absent)"),
                  "dm_policy rule " + rule.name + ": " + key + " " + ref.text);
    }
    return std::nullopt;
  };
  auto it = state->devices.find(device);

  if (event == "dm_table_load") {
    if (it != state->devices.end() && !it->second.allow_multiple_loads) {
      return fail("a second table load", "dm_policy rule " + it->second.rule + ": allow_multiple_loads false");
    }
    const Rule* rule = nullptr;
    for (const auto& r : rules_) {
      if (r.table.at(match_on_).Matches(device)) {
        rule = &r;
        break;
      }
    }
    if (!rule) return fail("no rule's table_load." + match_on_ + " matches", "dm_policy: " + std::to_string(rules_.size()) + " rules");
    for (const char* k : {"name", "uuid", "major", "minor", "minor_count", "num_targets"}) {
      auto ref = rule->table.find(k);
      if (ref == rule->table.end()) continue;
      auto got = DmEvent::Get(ev.metadata, k);
      if (!ref->second.Matches(got)) {
        return fail(std::string(k) + "=" + got.value_or("(absent)"),
                    "dm_policy rule " + rule->name + ": " + k + " " + ref->second.text);
      }
    }
    auto declared = ToInt(DmEvent::Get(ev.metadata, "num_targets").value_or(""));
    if (!declared || *declared != static_cast<long long>(ev.targets.size()) || rule->targets.size() != ev.targets.size()) {
      return fail("num_targets " + DmEvent::Get(ev.metadata, "num_targets").value_or("(absent)") + ", " +
                      std::to_string(ev.targets.size()) + " targets measured",
                  "dm_policy rule " + rule->name + ": " + std::to_string(rule->targets.size()) + " targets");
    }
    for (size_t t = 0; t < ev.targets.size(); ++t) {
      if (auto f = check_target(ev.targets[t], rule->targets[t], *rule)) return f;
    }
    DmDevice d;
    d.rule = rule->name;
    d.valid = !rule->resume_required;
    d.table_hash = digest_text;
    d.allow_multiple_loads = rule->allow_multiple_loads;
    state->devices[device] = std::move(d);
    return std::nullopt;
  }
  if (it == state->devices.end()) return fail(event.substr(3) + " before a table load");
  DmDevice& dev = it->second;
  const Rule* rule = rule_of(dev.rule);
  if (!rule) return fail("its rule " + dev.rule + " is not in the policy");
  if (event == "dm_device_resume") {
    if (dev.active) {
      dev.valid = false;
      return fail("resumed twice (already active)");
    }
    std::string hash = DmEvent::Get(ev.other, "active_table_hash").value_or("");
    if (hash != dev.table_hash) {
      dev.valid = false;
      return fail("active_table_hash=" + (hash.empty() ? "(absent)" : hash), "the loaded table: " + dev.table_hash);
    }
    dev.active = true;
    dev.valid = true;
    return std::nullopt;
  }
  if (event == "dm_device_remove") {
    if (!rule->allow_removal) {
      dev.valid = false;
      return fail("removed", "dm_policy rule " + rule->name + ": device_remove.allow_removal false");
    }
    state->devices.erase(it);
    return std::nullopt;
  }
  if (event == "dm_table_clear") {
    if (!rule->allow_clear) {
      dev.valid = false;
      return fail("table cleared", "dm_policy rule " + rule->name + ": allow_clear false");
    }
    return std::nullopt;
  }
  if (event == "dm_device_rename") {
    auto new_name = DmEvent::Get(ev.other, "new_name");
    auto new_uuid = DmEvent::Get(ev.other, "new_uuid");
    std::string old_name = DmEvent::Get(ev.metadata, "name").value_or("");
    std::string old_uuid = DmEvent::Get(ev.metadata, "uuid").value_or("");
    std::string rekey;
    if (new_name && *new_name != old_name) {
      if (!rule->valid_name.Matches(new_name)) {
        dev.valid = false;
        return fail("renamed to " + *new_name, "dm_policy rule " + rule->name + ": device_rename.valid_name " + rule->valid_name.text);
      }
      if (match_on_ == "name") rekey = *new_name;
    }
    if (new_uuid && *new_uuid != old_uuid) {
      if (!rule->valid_uuid.Matches(new_uuid)) {
        dev.valid = false;
        return fail("new uuid " + *new_uuid, "dm_policy rule " + rule->name + ": device_rename.valid_uuid " + rule->valid_uuid.text);
      }
      if (match_on_ == "uuid") rekey = *new_uuid;
    }
    if (!rekey.empty()) {
      DmDevice moved = std::move(dev);
      state->devices.erase(it);
      state->devices[rekey] = std::move(moved);
    }
    return std::nullopt;
  }
  if (event == "dm_target_update") {
    if (ev.targets.size() != 1) return fail("target update with " + std::to_string(ev.targets.size()) + " targets");
    auto idx = ToInt(DmEvent::Get(ev.targets[0], "target_index").value_or(""));
    if (!idx || *idx < 0 || static_cast<size_t>(*idx) >= rule->targets.size()) {
      return fail("target update of target " + DmEvent::Get(ev.targets[0], "target_index").value_or("?"),
                  "dm_policy rule " + rule->name + ": " + std::to_string(rule->targets.size()) + " targets");
    }
    return check_target(ev.targets[0], rule->targets[static_cast<size_t>(*idx)], *rule);
  }
  return fail("unknown device-mapper event");
}

std::vector<Finding> DmPolicy::CheckRequired(const DmState& state) const {
  std::vector<Finding> out;
  for (const auto& r : rules_) {
    if (!r.required) continue;
    // A device loaded under the rule uses it, resumed or not yet: a round may be quoted
    // between a table load and its resume. A device that broke the rule already failed at
    // the entry that broke it.
    bool used = std::any_of(state.devices.begin(), state.devices.end(),
                            [&](const auto& kv) { return kv.second.rule == r.name; });
    if (used) continue;
    Finding f;
    f.reason = Reason::kDmPolicy;
    f.reference = "dm_policy rule " + r.name + ": required";
    f.detail = "no device is loaded under the required rule " + r.name;
    out.push_back(std::move(f));
  }
  return out;
}

std::string DmState::ToJson() const {
  ojson j = ojson::object();
  for (const auto& [k, d] : devices) {
    j[k] = {{"rule", d.rule}, {"active", d.active}, {"valid", d.valid}, {"table_hash", d.table_hash},
            {"allow_multiple_loads", d.allow_multiple_loads}};
  }
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

Result<DmState> DmState::FromJson(std::string_view text) {
  ojson j = ojson::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corrupt("dm state: not an object");
  DmState s;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const ojson& d = *it;
    if (!d.is_object() || !d.contains("rule") || !d["rule"].is_string() || !d.contains("active") ||
        !d["active"].is_boolean() || !d.contains("valid") || !d["valid"].is_boolean() || !d.contains("table_hash") ||
        !d["table_hash"].is_string() || !d.contains("allow_multiple_loads") || !d["allow_multiple_loads"].is_boolean()) {
      return Status::Corrupt("dm state: device " + it.key());
    }
    DmDevice dev;
    dev.rule = d["rule"].get<std::string>();
    dev.active = d["active"].get<bool>();
    dev.valid = d["valid"].get<bool>();
    dev.table_hash = d["table_hash"].get<std::string>();
    dev.allow_multiple_loads = d["allow_multiple_loads"].get<bool>();
    s.devices[it.key()] = std::move(dev);
  }
  return s;
}

}  // namespace lim::attest
