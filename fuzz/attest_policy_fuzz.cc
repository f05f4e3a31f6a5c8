// libFuzzer target: the verifier's text inputs — runtime policies (keylime and native JSON,
// with their regex excludes and base64 keys) and the stored agent state — and the export
// of whatever imported, which must import again. Any input must end in a value or a clean
// error, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "attest/round.h"
#include "attest/runtime_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lim;
  using namespace lim::attest;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto p = RuntimePolicy::FromJson(text);
  if (p.ok()) {
    std::string keylime = p->ToKeylimeJson();
    std::string native = p->ToNativeJson();
    auto k2 = RuntimePolicy::FromKeylimeJson(keylime);
    auto n2 = RuntimePolicy::FromNativeJson(native);
    // What exported must import again, and the native form is a fixed point.
    if (!k2.ok() || !n2.ok() || n2->ToNativeJson() != native) std::abort();
    (void)p->Excluded(text);
  }
  auto state = AgentStateFromJson(text);
  if (state.ok()) {
    std::string j = AgentStateToJson(*state);
    auto again = AgentStateFromJson(j);
    if (!again.ok() || AgentStateToJson(*again) != j) std::abort();
    (void)NextRequest(*state, {0x000b});
  }
  (void)ParsePolicyDigest(text);
  return 0;
}
