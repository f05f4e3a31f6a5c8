// libFuzzer target: one verification round over hostile evidence. The harness signs each
// quote with its own AK, so the fuzzer gets past the signature into everything the verifier
// parses after it: the quote's counters, PCR values, the measurement-list tail (any bank and
// byte order, with the kept pending records of the state), the firmware event log, the
// stored state, and the policy checks of each entry. A second round runs on the state the
// first one returned. Any input must end in findings, never a crash or a hang.
#include <fuzzer/FuzzedDataProvider.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "attest/round.h"
#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "ima/synthetic_list.h"
#include "tpm/key.h"

namespace {

using namespace lim;
using namespace lim::attest;

struct Ak {
  EVP_PKEY* key = nullptr;
  std::unique_ptr<tpm::PublicKey> pub;
};

const Ak& TheAk() {
  static Ak ak = [] {
    Ak a;
    a.key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, a.key);
    char* pem = nullptr;
    long n = BIO_get_mem_data(bio, &pem);
    auto k = tpm::PublicKey::FromPem(std::string_view(pem, static_cast<size_t>(n)));
    a.pub = std::make_unique<tpm::PublicKey>(std::move(k).value());
    BIO_free(bio);
    return a;
  }();
  return ak;
}

const RuntimePolicy& ThePolicy() {
  static RuntimePolicy p = [] {
    RuntimePolicy r;
    r.AllowPath("/usr/bin/a", Bytes(32, 1));
    r.AllowAnywhere(Bytes(20, 2));
    (void)r.AddExclude("/tmp/.*");
    r.AllowImaBuf("kernel_cmdline", Bytes(32, 3));
    r.AllowKeyring(".ima", Bytes(32, 4));
    return r;
  }();
  return p;
}

// A quote over sha256 PCRs 0–10 with these values, signed by the harness's AK.
bool MakeQuote(FuzzedDataProvider& in, ByteView nonce, const std::map<int, Bytes>& values, Evidence* ev) {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  a.extraData.size = static_cast<UINT16>(nonce.size());
  std::copy(nonce.begin(), nonce.end(), a.extraData.buffer);
  a.clockInfo.clock = in.ConsumeIntegral<uint64_t>();
  a.clockInfo.resetCount = in.ConsumeIntegralInRange<uint32_t>(0, 3);
  a.clockInfo.restartCount = in.ConsumeIntegralInRange<uint32_t>(0, 3);
  a.clockInfo.safe = 1;
  a.attested.quote.pcrSelect.count = 1;
  auto& s = a.attested.quote.pcrSelect.pcrSelections[0];
  s.hash = TPM2_ALG_SHA256;
  s.sizeofSelect = 3;
  s.pcrSelect[0] = 0xff;
  s.pcrSelect[1] = 0x07;
  auto h = Hasher::Create(Sha256Algo());
  for (const auto& [i, v] : values) h->Update(v);
  Bytes digest = h->Final();
  a.attested.quote.pcrDigest.size = 32;
  std::copy(digest.begin(), digest.end(), a.attested.quote.pcrDigest.buffer);
  uint8_t buf[sizeof(TPMS_ATTEST)];
  size_t off = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(&a, buf, sizeof buf, &off) != 0) return false;
  ev->quote.assign(buf, buf + off);
  // ECDSA over SHA-256 of the message, as r and s.
  auto mh = Hasher::Create(Sha256Algo());
  mh->Update(ev->quote);
  Bytes md = mh->Final();
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(TheAk().key, nullptr);
  size_t siglen = 128;
  unsigned char der[128];
  bool ok = ctx && EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_sign(ctx, der, &siglen, md.data(), md.size()) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return false;
  const unsigned char* p = der;
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(siglen));
  if (!sig) return false;
  TPMT_SIGNATURE ts{};
  ts.sigAlg = TPM2_ALG_ECDSA;
  ts.signature.ecdsa.hash = TPM2_ALG_SHA256;
  ts.signature.ecdsa.signatureR.size =
      static_cast<UINT16>(BN_bn2binpad(ECDSA_SIG_get0_r(sig), ts.signature.ecdsa.signatureR.buffer, 32));
  ts.signature.ecdsa.signatureS.size =
      static_cast<UINT16>(BN_bn2binpad(ECDSA_SIG_get0_s(sig), ts.signature.ecdsa.signatureS.buffer, 32));
  ECDSA_SIG_free(sig);
  off = 0;
  if (Tss2_MU_TPMT_SIGNATURE_Marshal(&ts, buf, sizeof buf, &off) != 0) return false;
  ev->signature.assign(buf, buf + off);
  for (const auto& [i, v] : values) ev->pcrs[TPM2_ALG_SHA256][i] = v;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  AgentState state;
  if (in.ConsumeBool()) {
    auto s = AgentStateFromJson(in.ConsumeRandomLengthString(4096));
    if (s.ok()) state = std::move(s).value();
  }
  Bytes nonce = in.ConsumeBytes<uint8_t>(20);
  std::map<int, Bytes> values;
  for (int i = 0; i <= 10; ++i) {
    Bytes v = in.ConsumeBytes<uint8_t>(in.ConsumeBool() ? 32 : 0);
    v.resize(32);
    values[i] = v;
  }
  Evidence ev;
  ev.nonce = nonce;
  ev.list.list_bank = in.PickValueInArray({"sha1", "sha256", "sha512", "md5", "nope"});
  ev.list.byte_order = in.ConsumeBool() ? "little" : "big";
  if (in.ConsumeBool()) {
    // A valid list (boot_aggregate, ima-ng, ima-sig, ima-buf, violations) with a few bytes
    // changed where the fuzzer says: the decoder, replay and policy see entries, not noise.
    static const ima::SyntheticList kSynthetic = [] {
      ima::SyntheticListSpec spec;
      spec.entries = 24;
      spec.violation_every = 7;
      spec.buf_every = 5;
      spec.sig_every = 3;
      spec.pcr_banks = {"sha256"};
      return *ima::MakeSyntheticList(spec);
    }();
    const Bytes& kList = kSynthetic.list;
    // The quote covers the whole list (or, as the fuzzer likes, something else).
    if (in.ConsumeBool()) values[10] = *kSynthetic.pcrs.Get("sha256", 10);
    ev.list.list_bank = "sha1";
    ev.list.byte_order = "little";
    ev.list.records = kList;
    size_t flips = in.ConsumeIntegralInRange<size_t>(0, 4);
    for (size_t i = 0; i < flips; ++i) {
      size_t at = in.ConsumeIntegralInRange<size_t>(0, kList.size() - 1);
      ev.list.records[at] ^= in.ConsumeIntegral<uint8_t>();
    }
    if (in.ConsumeBool()) ev.list.records.resize(in.ConsumeIntegralInRange<size_t>(0, kList.size()));
  } else {
    ev.list.records = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 1 << 16));
  }
  // An all-zero PCR 10 matches before the first entry and nothing would be read.
  if (values[10] == Bytes(32, 0) && !ev.list.records.empty()) values[10][31] = 1;
  if (!MakeQuote(in, nonce, values, &ev)) return 0;
  // Mostly from entry 0: a state that never started asks for nothing else.
  ev.list.first_index = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 4) : 0;
  ev.list.total_entries = in.ConsumeIntegralInRange<uint64_t>(0, 64);
  ev.boot_id = in.ConsumeRandomLengthString(40);
  ev.limd.running = in.ConsumeBool();
  if (in.ConsumeBool()) ev.event_log = in.ConsumeRemainingBytes<uint8_t>();

  RoundResult r = Verify(*TheAk().pub, state, ev, ThePolicy(), nonce);
  for (const auto& f : r.findings) (void)FormatFinding("fuzz", f);
  // A second round on the state this one left, with the same tail as new records.
  ev.list.first_index = r.next.list_from;
  RoundResult r2 = Verify(*TheAk().pub, r.state, ev, ThePolicy(), nonce);
  (void)AgentStateToJson(r2.state);
  return 0;
}
