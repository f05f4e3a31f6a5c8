// Reading a PcrSet from a TPM for the commands that take `--tpm TCTI` instead of PCR files
// (verify, boot-aggregate). CLI code; single-threaded.
#pragma once

#include <string>

#include "crypto/pcr_set.h"

namespace lim::cli {

// PCRs 0-23 of every allocated bank of the TPM behind tcti ("" = $LIM_TCTI, then
// /dev/tpmrm0). Errors say how to start the embedded swtpm.
Result<PcrSet> ReadTpmPcrs(const std::string& tcti);

}  // namespace lim::cli
