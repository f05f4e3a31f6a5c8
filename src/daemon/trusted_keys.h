// The keys limd trusts, recorded in the measurement list as the kernel records a key loaded
// into its .ima or .evm keyring (KEY_CHECK, ima_asymmetric_keys.c): an ima-buf entry,
// n-ng = the keyring's name, buf = the certificate's DER, d-ng = its digest. The key
// directory is writable by root, so a verifier must see which keys an appraisal trusted.
// lim records them whatever the policy says (the kernel only under a `measure
// func=KEY_CHECK` rule; limd's keys are loaded by limd, not by add_key); a KEY_CHECK rule
// that matches the keyring chooses the PCR. The list's duplicate table keeps a key to one
// entry per chain. Called once at start, before the marks; no threads of its own.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/public_key.h"
#include "daemon/measurement_list.h"
#include "daemon/measurer.h"

namespace lim::daemon {

inline constexpr const char kImaKeyring[] = ".ima";
inline constexpr const char kEvmKeyring[] = ".evm";

// Appends one entry per key with a certificate (bare public keys have no DER to record:
// logged). Returns the number of entries appended (duplicates are not).
Result<size_t> RecordTrustedKeys(const Measurer& measurer, MeasurementList* list, const std::vector<PublicKey>& keys,
                                 const std::string& keyring, const std::function<void(const std::string&)>& log);

}  // namespace lim::daemon
