// `lim evm key seal|unseal`: the EVM HMAC key sealed in the TPM under a PCR policy the admin
// chooses (tpm/seal.h), for limd --evm-key-sealed. Seal reads the key from a private file
// (root's, mode 0600) into locked memory; unseal checks that this TPM gives the key back
// now and prints its fingerprint — the key itself is never printed or written.
#include <cstdio>
#include <string>

#include "base/escape.h"
#include "base/file.h"
#include "cli/cmd_evm_key.h"
#include "cli/command.h"
#include "crypto/secret_bytes.h"
#include "ima/evm.h"
#include "tpm/seal.h"
#include "tpm/tpm.h"

namespace lim::cli {

namespace {

struct SealArgs {
  std::string in, pcrs = "sha256:0,7", out, tcti;
};
struct UnsealArgs {
  std::string sealed, tcti;
};

Result<std::unique_ptr<tpm::Tpm>> OpenForSealing(const std::string& tcti) {
  LIM_ASSIGN_OR_RETURN(std::unique_ptr<tpm::Tpm> t, tpm::OpenTpm(tcti.empty() ? tpm::DefaultTcti() : tcti));
  if (t->kind() != tpm::TpmKind::kDevice) {
    // The design's rule: say it where it shows. A key sealed to an emulator is protected
    // only by the emulator's state files, which root reads.
    std::fprintf(stderr, "lim: warning: %s — sealing to it proves nothing against root, who can read or reset its state\n",
                 Escaped(t->Describe()).c_str());
  }
  return t;
}

Status Seal(const SealArgs& a) {
  LIM_ASSIGN_OR_RETURN(tpm::PcrSelection sel, tpm::ParsePcrSelection(a.pcrs));
  LIM_ASSIGN_OR_RETURN(SecretBytes key, ReadSecretFile(a.in, ima::kEvmMaxKeySize, "the EVM HMAC key"));
  LIM_ASSIGN_OR_RETURN(std::unique_ptr<tpm::Tpm> t, OpenForSealing(a.tcti));
  LIM_ASSIGN_OR_RETURN(tpm::SealedObject sealed, t->Seal(key.view(), sel));
  LIM_RETURN_IF_ERROR(WriteFileBytes(a.out, AsBytes(tpm::EncodeSealedObject(sealed)), 0600));
  std::printf("sealed: %zu-byte key %s under PolicyPCR %s into %s\n", key.size(), SecretFingerprint(key.view()).c_str(),
              tpm::SelectionToString(sel).c_str(), Escaped(a.out).c_str());
  return Status::Ok();
}

Status Unseal(const UnsealArgs& a) {
  LIM_ASSIGN_OR_RETURN(tpm::SealedObject sealed, tpm::ReadSealedFile(a.sealed));
  LIM_ASSIGN_OR_RETURN(std::unique_ptr<tpm::Tpm> t, OpenForSealing(a.tcti));
  auto key = t->Unseal(sealed);
  if (!key.ok()) return key.status().WithPrefix(a.sealed);
  std::printf("unsealed: %zu-byte key %s (PolicyPCR %s) from %s\n", key->size(), SecretFingerprint(key->view()).c_str(),
              tpm::SelectionToString(sealed.pcrs).c_str(), Escaped(a.sealed).c_str());
  return Status::Ok();
}

}  // namespace

void RegisterEvmKey(CLI::App* evm) {
  CLI::App* key = evm->add_subcommand("key", "The EVM HMAC key sealed in the TPM under a PCR policy (limd --evm-key-sealed)");
  key->require_subcommand(1);
  static SealArgs sa;
  CLI::App* seal = key->add_subcommand("seal", "Seal a key file (root's, mode 0600, 1-128 bytes) to this TPM's PCRs");
  seal->add_option("--in", sa.in, "the key file")->required();
  seal->add_option("--pcrs", sa.pcrs, "policy PCRs, BANK:LIST[+BANK:LIST]")->capture_default_str();
  seal->add_option("-o,--out", sa.out, "the sealed key file to write (no secret in clear)")->required();
  seal->add_option("--tpm,--tcti", sa.tcti, "TCTI (default $LIM_TCTI, then device:/dev/tpmrm0)");
  seal->callback([] {
    Status st = Seal(sa);
    if (!st.ok()) ExitCode() = ReportError(st);
  });
  static UnsealArgs ua;
  CLI::App* unseal = key->add_subcommand("unseal", "Check that the TPM unseals the key now; prints its fingerprint, never the key");
  unseal->add_option("SEALED", ua.sealed, "sealed key file")->required();
  unseal->add_option("--tpm,--tcti", ua.tcti, "TCTI (default $LIM_TCTI, then device:/dev/tpmrm0)");
  unseal->callback([] {
    Status st = Unseal(ua);
    if (!st.ok()) ExitCode() = ReportError(st);
  });
}

}  // namespace lim::cli
