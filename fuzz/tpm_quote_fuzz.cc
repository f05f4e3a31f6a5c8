// libFuzzer target: everything lim parses from a verifier's untrusted inputs on the TPM
// side — TPMS_ATTEST, TPMT_SIGNATURE, TPM2B/TPMT_PUBLIC, tpm2-tools PCR files, PCR-set JSON,
// tpm2-tools credential files — and a full quote check over whatever parsed. Any input
// must end in a value or a clean error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tpm/credential.h"
#include "tpm/key.h"
#include "tpm/pcr.h"
#include "tpm/quote.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lim;
  using namespace lim::tpm;
  ByteView in(data, size);
  auto attest = ParseAttest(in);
  auto sig = ParseSignature(in);
  auto pub = ParsePublic(in);
  auto pcrs = ReadPcrsFile(in);
  auto json = PcrValuesFromJson(AsChars(in));
  auto cred = FromTpm2ToolsCredentialFile(in);
  (void)sig;
  (void)json;
  (void)cred;
  if (pub.ok()) {
    auto key = PublicKey::FromTpmPublic(*pub);
    (void)PublicName(*pub);
    (void)CheckAkAttributes(*pub);
    if (key.ok()) {
      // Split the input: the first half as message, the rest as signature.
      ByteView msg = in.subspan(0, size / 2), s = in.subspan(size / 2);
      PcrSelection sel = attest.ok() ? attest->selection : PcrSelection{};
      PcrValues values = pcrs.ok() ? pcrs->values : PcrValues{};
      (void)CheckQuote(*key, msg, s, {}, sel, values);
    }
  }
  if (pcrs.ok()) {
    Bytes again = WritePcrsFile(pcrs->selection, pcrs->values);
    (void)ReadPcrsFile(again);
    for (const auto& b : pcrs->selection) (void)ComputePcrDigest(b.alg, pcrs->selection, pcrs->values);
  }
  if (attest.ok()) (void)SelectionToString(attest->selection);
  return 0;
}
