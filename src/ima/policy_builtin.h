// Built-in IMA policies: the rule lists the kernel installs at boot for `ima_policy=`
// (tcb, appraise_tcb, secure_boot, critical_data, fail_securely), the legacy `ima_tcb` and
// `ima_appraise_tcb` parameters, in the kernel's order (ima_init_policy), for the reference
// configuration: CONFIG_IMA_WRITE_POLICY=y, no CONFIG_IMA_APPRAISE_SIGNED_INIT, no
// CONFIG_IMA_APPRAISE_REQUIRE_*_SIGS, and no architecture (secure-boot) rules, which depend
// on the firmware state of a real boot. Pure functions; thread-safe.
#pragma once

#include <string_view>
#include <vector>

#include "base/status.h"
#include "ima/policy.h"

namespace lim::ima {

// NAME is one name or several joined by '|', ',' or spaces, as on the kernel command line
// ("tcb|appraise_tcb"). Unknown names are an error (the kernel only logs them).
Result<Policy> BuiltinPolicy(std::string_view name);

// The names BuiltinPolicy() accepts alone.
const std::vector<std::string_view>& BuiltinPolicyNames();

}  // namespace lim::ima
