// libFuzzer target for the IMA policy parser, read-back and matcher: any input must parse or
// fail cleanly; an accepted policy's read-back, parsed again, must read back the same; and
// matching an access built from the input must not misbehave.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ima/policy.h"
#include "ima/policy_match.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  lim::ima::PolicyParseOutput out = lim::ima::CheckPolicy(text, "fuzz");
  for (const auto& e : out.errors) {
    if (e.line < 1 || e.column < 1 || e.message.empty()) std::abort();
  }
  if (!out.errors.empty()) return 0;

  std::string shown = lim::ima::ShowPolicy(out.policy);
  lim::Result<lim::ima::Policy> again = lim::ima::ParsePolicy(shown, "readback");
  // Some kernel read-backs do not parse again (sigv3 before digest_type, ids above INT_MAX
  // shown negative); those that do must be a fixed point.
  if (again.ok() && lim::ima::ShowPolicy(*again) != shown) std::abort();

  lim::ima::PolicyMatcher matcher(out.policy);
  lim::ima::PolicyAccess access;
  uint8_t seed = size ? data[size - 1] : 0;
  access.func = static_cast<lim::ima::ImaHook>(1 + seed % (lim::ima::kImaHookCount - 1));
  access.mask = seed & 0xf;
  access.uid = seed & 0x10 ? 0 : 1000;
  access.euid = 0;
  access.cap_setuid = seed & 0x20;
  access.fsmagic = seed & 0x40 ? 0x9fa0 : 0xef53;
  access.fsname = "tmpfs";
  access.lsm[lim::ima::kObjType] = "tmp_t";
  access.func_data = ".ima";
  access.has_func_data = seed & 0x80;
  lim::ima::PolicyDecision d = matcher.Decide(access, lim::ima::action::kDoMask);
  // The decision per class is the first rule of that class whose conditions hold (checked
  // by the separate, uncompiled evaluation in Mismatch()).
  for (int c = 0; c < lim::ima::kActionClassCount; ++c) {
    int expect = -1;
    for (size_t i = 0; i < matcher.size() && expect < 0; ++i) {
      int cls = static_cast<int>(lim::ima::ClassOfAction(matcher.rule(i).action));
      if (cls == c && matcher.Mismatch(i, access).empty()) expect = static_cast<int>(i);
    }
    if (d.classes[static_cast<size_t>(c)].rule != expect) std::abort();
  }
  return 0;
}
