// DmPolicy: keylime's ima.dm_policy — rules for the device-mapper measurements the kernel
// makes as ima-buf entries (dm_table_load, dm_device_resume, dm_device_remove,
// dm_table_clear, dm_device_rename, dm_target_update; the kernel's dm-ima format:
// "dm_version=4.46.0;name=…,uuid=…,major=…;target_index=0,…;"), evaluated with keylime's
// semantics (keylime/ima/ima_dm.py):
//   {"match_on": "name"|"uuid", "rules": {RULE: {"required", "device_resume_required",
//    "allow_clear", "device_remove": {"allow_removal"}, "device_rename": {"valid_name",
//    "valid_uuid"}, "table_load": {"allow_multiple_loads", "name", "uuid", "major", "minor",
//    "minor_count", "num_targets", "targets": [{attribute: reference}]}}}}
// A reference value is null (anything), a boolean (y/yes/true/1 … as Python's strtobool), an
// integer (compared as a number) or a string (a Python regular expression, re.fullmatch).
// A table load picks the first rule (in the policy's order) whose table_load[match_on]
// matches the device; a resume must name the loaded table's hash; a second load, a clear, a
// remove or a rename is allowed only as the rule says. `required` rules must have a device
// loaded under them (checked at the end of each round's verified entries; a device still
// waiting for its resume counts, since a quote may fall between the two).
//
// The devices seen (DmState) belong to the agent's state across rounds of one boot. A
// missing key of a rule takes the strict reading: false for allow_*, true for
// device_resume_required, null (anything) for attributes. Immutable once parsed; Check is
// const and thread-safe with a DmState per agent.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attest/py_regex.h"
#include "attest/verdict.h"
#include "base/status.h"
#include "ima/entry.h"

namespace lim::attest {

struct DmDevice {
  std::string rule;
  bool active = false;
  bool valid = false;
  std::string table_hash;  // "sha256:hex" of the loaded table (the load entry's digest)
  bool allow_multiple_loads = false;
};

struct DmState {
  std::map<std::string, DmDevice> devices;  // by match_on key (name or uuid)
  std::string ToJson() const;
  static Result<DmState> FromJson(std::string_view json);
};

class DmPolicy {
 public:
  // The dm_policy JSON value (object); keys keep their order (rule order decides).
  static Result<DmPolicy> FromJsonText(std::string_view json);
  static bool IsDmEvent(std::string_view name);

  // One ima-buf entry named dm_*; updates *state. nullopt when it passes.
  std::optional<Finding> Check(const ima::Entry& e, DmState* state) const;
  // Required rules no device is loaded under.
  std::vector<Finding> CheckRequired(const DmState& state) const;

 private:
  struct Ref {  // one reference value
    enum Kind { kAny, kBool, kInt, kRegex } kind = kAny;
    bool b = false;
    long long i = 0;
    std::optional<PyRegex> re;
    std::string text;  // as written, for the explanation
    bool Matches(const std::optional<std::string>& attr) const;
  };
  struct Rule {
    std::string name;
    bool required = false, resume_required = true, allow_clear = false, allow_removal = false;
    bool allow_multiple_loads = false;
    Ref valid_name, valid_uuid;
    std::map<std::string, Ref> table;  // name, uuid, major, minor, minor_count, num_targets
    std::optional<Ref> num_targets_ref;
    std::vector<std::vector<std::pair<std::string, Ref>>> targets;
  };
  static Result<Ref> ParseRef(const void* json_value, const std::string& where);

  std::string match_on_ = "name";
  std::vector<Rule> rules_;
};

}  // namespace lim::attest
