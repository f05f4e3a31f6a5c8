// Tests of the ESAPI backend against a private swtpm, cross-checked with tpm2-tools.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "tests/testing.h"
#include "tpm/credential.h"
#include "tpm/key.h"
#include "tpm/swtpm_test_util.h"
#include "tpm/tpm.h"

namespace lim::tpm {
namespace {

using lim::testing::MakeTempDir;
using lim::testing::ShellQuote;
using testing::ParseTpm2PcrRead;
using testing::SwtpmTctiForTests;
using testing::Tpm2Tools;

std::unique_ptr<Tpm> Open() { return testing::OpenTestTpm(); }

TEST(EsysTpmTest, BanksAndPcrsAgreeWithTpm2PcrRead) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  EXPECT_EQ(tpm->kind(), TpmKind::kSwtpm);
  EXPECT_NE(tpm->Describe().find("not a hardware root of trust"), std::string::npos);
  auto banks = tpm->AllocatedBanks();
  ASSERT_TRUE(banks.ok()) << banks.status().message();
  EXPECT_EQ(*banks, (std::vector<uint16_t>{TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512}));

  ASSERT_TRUE(ExtendWithData(*tpm, 10, AsBytes("lim test")).ok());
  ASSERT_TRUE(ExtendWithData(*tpm, 16, AsBytes("another")).ok());
  auto sel = FullSelection(*tpm, {});
  ASSERT_TRUE(sel.ok());
  auto values = tpm->ReadPcrs(*sel);
  ASSERT_TRUE(values.ok()) << values.status().message();
  EXPECT_EQ(values->size(), 4u);
  for (const auto& [alg, pcrs] : *values) EXPECT_EQ(pcrs.size(), 24u) << alg;

  auto r = Tpm2Tools("tpm2_pcrread sha1:all+sha256:all+sha384:all+sha512:all");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ParseTpm2PcrRead(r.out), *values);

  // PCR 10 = H(0 || H("lim test")) in every bank.
  for (uint16_t alg : *banks) {
    auto algo = HashAlgoByTpmAlg(alg);
    Bytes start(algo->size, 0);
    Bytes d = *Digest(*algo, AsBytes("lim test"));
    start.insert(start.end(), d.begin(), d.end());
    EXPECT_EQ((*values)[alg][10], *Digest(*algo, start)) << TpmBankName(alg);
  }
}

TEST(EsysTpmTest, ExtendNeedsEveryBankAndRightSizes) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  std::map<uint16_t, Bytes> only_sha256 = {{TPM2_ALG_SHA256, Bytes(32, 1)}};
  Status st = tpm->Extend(10, only_sha256);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("sha1"), std::string::npos);
  std::map<uint16_t, Bytes> bad = {{TPM2_ALG_SHA1, Bytes(20, 1)}, {TPM2_ALG_SHA256, Bytes(20, 1)},
                                   {TPM2_ALG_SHA384, Bytes(48, 1)}, {TPM2_ALG_SHA512, Bytes(64, 1)}};
  EXPECT_FALSE(tpm->Extend(10, bad).ok());
  EXPECT_FALSE(tpm->Extend(24, bad).ok());
}

TEST(EsysTpmTest, ClockInfo) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  auto c = tpm->ReadClock();
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto r = Tpm2Tools("tpm2_readclock");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("reset_count: " + std::to_string(c->reset_count)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("restart_count: " + std::to_string(c->restart_count)), std::string::npos) << r.out;
}

TEST(EsysTpmTest, EkTemplatesMatchTpm2CreateEk) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  std::string dir = MakeTempDir();
  for (EkType t : {EkType::kEcc, EkType::kRsa}) {
    auto ek = tpm->ReadEkPublic(t);
    ASSERT_TRUE(ek.ok()) << ek.status().message();
    std::string file = dir + "/ek." + EkTypeName(t);
    auto r = Tpm2Tools("tpm2_createek -G " + std::string(EkTypeName(t)) + " -c " + file + ".ctx -u " + file +
                       " >/dev/null && tpm2_flushcontext -t");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto theirs = ReadFileBytes(file);
    ASSERT_TRUE(theirs.ok());
    EXPECT_EQ(ToHex(MarshalPublic2B(*ek)), ToHex(*theirs)) << EkTypeName(t);
  }
}

struct AkAndQuote {
  AkKey ak;
  Quote quote;
};

TEST(EsysTpmTest, QuotePassesTpm2CheckQuoteAndLim) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  auto ak = tpm->CreateAk(EkType::kEcc, AkAlg::kEccP256);
  ASSERT_TRUE(ak.ok()) << ak.status().message();
  EXPECT_TRUE(CheckAkAttributes(ak->pub).ok());
  std::string dir = MakeTempDir();
  ASSERT_TRUE(SaveAk(*ak, dir).ok());
  struct stat priv {};
  ASSERT_EQ(::stat((dir + "/ak.priv").c_str(), &priv), 0);
  EXPECT_EQ(priv.st_mode & 0777, 0600u);  // the AK's wrapped private part is root's alone
  auto loaded = LoadAk(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();

  // A second Tpm instance (another run) reuses the saved AK.
  auto tpm2 = Open();
  ASSERT_TRUE(tpm2);
  Bytes nonce = {0xde, 0xad, 0xbe, 0xef};
  PcrSelection sel = {{TPM2_ALG_SHA256, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}, {TPM2_ALG_SHA1, {10}}};
  auto q = tpm2->MakeQuote(*loaded, sel, nonce);
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_TRUE(WriteFileBytes(dir + "/quote.msg", q->msg).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/quote.sig", q->sig).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/quote.pcrs", WritePcrsFile(q->selection, q->values)).ok());

  auto r = lim::testing::Run("tpm2_checkquote -u " + dir + "/ak.pub.pem -m " + dir + "/quote.msg -s " + dir +
                             "/quote.sig -f " + dir + "/quote.pcrs -q deadbeef -g sha256");
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  auto r2 = lim::testing::Run("tpm2_checkquote -u " + dir + "/ak.pub.pem -m " + dir + "/quote.msg -s " + dir +
                              "/quote.sig -f " + dir + "/quote.pcrs -q deadbeee -g sha256");
  EXPECT_NE(r2.exit_code, 0);

  auto key = PublicKey::FromFile(dir + "/ak.pub");
  ASSERT_TRUE(key.ok());
  auto info = CheckQuote(*key, q->msg, q->sig, nonce, q->selection, q->values);
  ASSERT_TRUE(info.ok()) << info.status().message();
  auto clock = tpm2->ReadClock();
  ASSERT_TRUE(clock.ok());
  EXPECT_EQ(info->clock.reset_count, clock->reset_count);
  EXPECT_EQ(info->qualified_signer.size(), 34u);

  // Every transient object and session was flushed.
  auto h = Tpm2Tools("tpm2_getcap handles-transient; tpm2_getcap handles-loaded-session");
  EXPECT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(h.out, "") << h.out;

  // Rejections, each by name.
  QuoteFailure f;
  Bytes wrong_nonce = {0xde, 0xad, 0xbe, 0xee};
  EXPECT_FALSE(CheckQuote(*key, q->msg, q->sig, wrong_nonce, q->selection, q->values, &f).ok());
  EXPECT_EQ(f, QuoteFailure::kNonce);
  PcrValues altered = q->values;
  altered[TPM2_ALG_SHA256][10][31] ^= 1;
  EXPECT_FALSE(CheckQuote(*key, q->msg, q->sig, nonce, q->selection, altered, &f).ok());
  EXPECT_EQ(f, QuoteFailure::kPcrDigest);
  auto other = tpm->CreateAk(EkType::kEcc, AkAlg::kEccP256);
  ASSERT_TRUE(other.ok());
  auto other_key = PublicKey::FromTpmPublic(other->pub);
  EXPECT_FALSE(CheckQuote(*other_key, q->msg, q->sig, nonce, q->selection, q->values, &f).ok());
  EXPECT_EQ(f, QuoteFailure::kSignature);
  Bytes truncated(q->msg.begin(), q->msg.end() - 3);
  EXPECT_FALSE(CheckQuote(*key, truncated, q->sig, nonce, q->selection, q->values, &f).ok());
  EXPECT_EQ(f, QuoteFailure::kMalformed);  // no TPMS_ATTEST: malformed, not a bad signature
}

TEST(EsysTpmTest, RsaAkUnderRsaEkQuotes) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  auto ak = tpm->CreateAk(EkType::kRsa, AkAlg::kRsa2048);
  ASSERT_TRUE(ak.ok()) << ak.status().message();
  PcrSelection sel = {{TPM2_ALG_SHA256, {0, 10}}};
  Bytes nonce = {1, 2, 3};
  auto q = tpm->MakeQuote(*ak, sel, nonce);
  ASSERT_TRUE(q.ok()) << q.status().message();
  auto key = PublicKey::FromTpmPublic(ak->pub);
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(key->is_rsa());
  auto info = CheckQuote(*key, q->msg, q->sig, nonce, sel, q->values);
  EXPECT_TRUE(info.ok()) << info.status().message();
}

TEST(EsysTpmTest, Tpm2QuoteQuotesPassLimCheck) {
  std::string dir = MakeTempDir();
  auto r = Tpm2Tools(
      "cd " + ShellQuote(dir) +
      " && tpm2_createek -c ek.ctx -G ecc -u ek.pub >/dev/null && tpm2_flushcontext -t"
      " && tpm2_createak -C ek.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pub.pem -f pem -n ak.name >/dev/null"
      " && tpm2_flushcontext -t && tpm2_flushcontext -s"
      " && tpm2_quote -c ak.ctx -l sha256:0,1,10+sha1:0,10 -q 0badc0de -m quote.msg -s quote.sig -o quote.pcrs -g sha256 >/dev/null"
      " ; rc=$?; tpm2_flushcontext -t; tpm2_flushcontext -s; exit $rc");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto key = PublicKey::FromFile(dir + "/ak.pub.pem");
  ASSERT_TRUE(key.ok()) << key.status().message();
  auto pcrs = ReadPcrsFile(*ReadFileBytes(dir + "/quote.pcrs"));
  ASSERT_TRUE(pcrs.ok()) << pcrs.status().message();
  PcrSelection expect = {{TPM2_ALG_SHA256, {0, 1, 10}}, {TPM2_ALG_SHA1, {0, 10}}};
  EXPECT_EQ(pcrs->selection, expect);
  Bytes msg = *ReadFileBytes(dir + "/quote.msg"), sig = *ReadFileBytes(dir + "/quote.sig");
  Bytes nonce = {0x0b, 0xad, 0xc0, 0xde};
  auto info = CheckQuote(*key, msg, sig, nonce, pcrs->selection, pcrs->values);
  EXPECT_TRUE(info.ok()) << info.status().message();
  // The same values agree with a fresh read through lim.
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  auto now = tpm->ReadPcrs(expect);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, pcrs->values);
}

TEST(EsysTpmTest, CredentialActivationEccAndRsa) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  for (EkType t : {EkType::kEcc, EkType::kRsa}) {
    auto ak = tpm->CreateAk(t, AkAlg::kEccP256);
    ASSERT_TRUE(ak.ok()) << ak.status().message();
    auto ek = tpm->ReadEkPublic(t);
    ASSERT_TRUE(ek.ok());
    auto name = PublicName(ak->pub);
    ASSERT_TRUE(name.ok());
    Bytes secret = {'s', 'e', 'c', 'r', 'e', 't', '-', '4', '2'};
    auto made = MakeCredential(*ek, *name, secret);
    ASSERT_TRUE(made.ok()) << made.status().message();
    auto got = tpm->ActivateCredential(*ak, made->id_object, made->secret);
    ASSERT_TRUE(got.ok()) << EkTypeName(t) << ": " << got.status().message();
    EXPECT_EQ(*got, secret);

    // Made for another AK name: the TPM's integrity check fails, with a clear message.
    Bytes wrong_name = *name;
    wrong_name.back() ^= 1;
    auto made2 = MakeCredential(*ek, wrong_name, secret);
    ASSERT_TRUE(made2.ok());
    auto bad = tpm->ActivateCredential(*ak, made2->id_object, made2->secret);
    EXPECT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("TPM2_ActivateCredential"), std::string::npos) << bad.status().message();
  }
  auto h = Tpm2Tools("tpm2_getcap handles-transient; tpm2_getcap handles-loaded-session");
  EXPECT_EQ(h.out, "");
}

TEST(EsysTpmTest, CredentialFileActivatesWithTpm2Tools) {
  // lim's MakeCredential, tpm2-tools' ActivateCredential: independent check of the crypto.
  std::string dir = MakeTempDir();
  auto r = Tpm2Tools("cd " + ShellQuote(dir) +
                     " && tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null && tpm2_flushcontext -t"
                     " && tpm2_createak -C ek.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pub -n ak.name >/dev/null"
                     " && tpm2_flushcontext -t && tpm2_flushcontext -s");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ek = ParsePublic(*ReadFileBytes(dir + "/ek.pub"));
  ASSERT_TRUE(ek.ok());
  Bytes name = *ReadFileBytes(dir + "/ak.name");
  Bytes secret = {1, 2, 3, 4, 5, 6, 7, 8};
  auto made = MakeCredential(*ek, name, secret);
  ASSERT_TRUE(made.ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/cred.in", ToTpm2ToolsCredentialFile(*made)).ok());
  auto a = Tpm2Tools("cd " + ShellQuote(dir) +
                     " && tpm2_startauthsession --policy-session -S session.ctx"
                     " && tpm2_policysecret -S session.ctx -c e >/dev/null"
                     " && tpm2_activatecredential -c ak.ctx -C ek.ctx -i cred.in -o cred.out -P session:session.ctx"
                     " ; rc=$?; tpm2_flushcontext -t; tpm2_flushcontext -s; exit $rc");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(*ReadFileBytes(dir + "/cred.out"), secret);
  auto back = FromTpm2ToolsCredentialFile(*ReadFileBytes(dir + "/cred.in"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->id_object, made->id_object);
}

TEST(EsysTpmTest, ReleasesSwtpmAfterIdleSoOthersGetIn) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  ASSERT_TRUE(tpm->ReadClock().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // swtpm serves one client: this only answers if lim let go.
  auto r = Tpm2Tools("tpm2_pcrread sha256:0");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(tpm->ReadClock().ok());  // and lim reconnects
}

TEST(EsysTpmTest, BusySwtpmTimesOutInsteadOfHanging) {
  const SwtpmConfig& c = testing::Swtpm().Get();
  // Another client holds swtpm's single connection.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = SwtpmSocketPath(c);
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  OpenOptions opt;
  opt.call_timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto tpm = OpenTpm(SwtpmTcti(c), opt);
  Status st = tpm.ok() ? tpm.value()->ReadClock().status() : tpm.status();
  auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.message();
  EXPECT_LT(took, std::chrono::seconds(3));
  if (tpm.ok()) {
    EXPECT_EQ(tpm.value()->stalls(), 1u);
  }
  // Once the other client is gone, lim works again.
  if (tpm.ok()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(tpm.value()->ReadClock().ok());
  }
}

TEST(EsysTpmTest, MissingDeviceSaysHowToStartSwtpm) {
  auto t = OpenTpm("device:/dev/lim-no-such-tpm");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(t.status().message().find("lim tpm swtpm start"), std::string::npos) << t.status().message();
  EXPECT_FALSE(OpenTpm("software").ok());  // never a silent fallback
}

TEST(SoftwareTpmTest, LabelledPcrsQuotesAndRefusedEnrolment) {
  auto tpm = OpenSoftwareTpm();
  EXPECT_EQ(tpm->kind(), TpmKind::kSoftware);
  EXPECT_STREQ(TpmKindName(tpm->kind()), "software");
  ASSERT_TRUE(ExtendWithData(*tpm, 10, AsBytes("x")).ok());
  PcrSelection sel = {{TPM2_ALG_SHA256, {10}}, {TPM2_ALG_SHA1, {10}}};
  auto v = tpm->ReadPcrs(sel);
  ASSERT_TRUE(v.ok());
  Bytes start(32, 0);
  Bytes d = *Digest(Sha256Algo(), AsBytes("x"));
  start.insert(start.end(), d.begin(), d.end());
  EXPECT_EQ((*v)[TPM2_ALG_SHA256][10], *Digest(Sha256Algo(), start));
  auto ak = tpm->CreateAk(EkType::kEcc, AkAlg::kEccP256);
  ASSERT_TRUE(ak.ok());
  std::string dir = MakeTempDir();
  ASSERT_TRUE(SaveAk(*ak, dir).ok());
  auto loaded = LoadAk(dir);
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->software);
  Bytes nonce = {9, 9};
  auto q = tpm->MakeQuote(*loaded, sel, nonce);
  ASSERT_TRUE(q.ok()) << q.status().message();
  auto key = PublicKey::FromFile(dir + "/ak.pub.pem");
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(CheckQuote(*key, q->msg, q->sig, nonce, sel, q->values).ok());
  Status enrol = CheckAkAttributes(loaded->pub);
  EXPECT_FALSE(enrol.ok());
  EXPECT_NE(enrol.message().find("fixedTPM"), std::string::npos);
  EXPECT_FALSE(tpm->ReadEkPublic(EkType::kEcc).ok());
}

}  // namespace
}  // namespace lim::tpm

namespace lim::tpm {
namespace {

TEST(EsysTpmErrorsTest, OutOfObjectMemoryIsAClearMessage) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  std::string dir = MakeTempDir();
  // Another client leaves transient objects behind until swtpm's slots are full.
  auto fill = Tpm2Tools("cd " + ShellQuote(dir) +
                        " && for i in 1 2 3 4; do tpm2_createprimary -C o -G ecc -c p$i.ctx >/dev/null 2>&1 || true; done");
  ASSERT_EQ(fill.exit_code, 0) << fill.err;
  auto ak = tpm->CreateAk(EkType::kEcc, AkAlg::kEccP256);
  auto clean = Tpm2Tools("tpm2_flushcontext -t");
  ASSERT_FALSE(ak.ok());
  EXPECT_NE(ak.status().message().find("TPM2_CreatePrimary"), std::string::npos) << ak.status().message();
  EXPECT_NE(ak.status().message().find("object memory"), std::string::npos) << ak.status().message();
  EXPECT_NE(ak.status().message().find("tpm2_flushcontext -t"), std::string::npos) << ak.status().message();
  EXPECT_EQ(clean.exit_code, 0);
  EXPECT_TRUE(tpm->CreateAk(EkType::kEcc, AkAlg::kEccP256).ok());  // works again once flushed
}

// Counts TPM2_CreatePrimary commands (tag 0x8001/0x8002, size, cc 0x00000131) in a capture
// written by tpm2-tss's pcap TCTI.
int CountCreatePrimary(const std::string& pcap) {
  auto data = ReadFileBytes(pcap);
  if (!data.ok()) return -1;
  int n = 0;
  const Bytes& b = *data;
  for (size_t i = 0; i + 10 <= b.size(); ++i) {
    if (b[i] == 0x80 && (b[i + 1] == 0x01 || b[i + 1] == 0x02) && b[i + 2] == 0 && b[i + 3] == 0 && b[i + 6] == 0 &&
        b[i + 7] == 0 && b[i + 8] == 0x01 && b[i + 9] == 0x31) {
      ++n;
    }
  }
  return n;
}

TEST(EsysTpmErrorsTest, UsesAPersistentEkAndLeavesItInPlace) {
  std::string dir = MakeTempDir();
  // Through tpm2-tss's pcap TCTI, which records every command lim sends.
  ::setenv("TCTI_PCAP_FILE", (dir + "/before.pcap").c_str(), 1);
  auto t1 = OpenTpm("pcap:" + SwtpmTctiForTests());
  ASSERT_TRUE(t1.ok()) << t1.status().message();
  auto before = (*t1)->ReadEkPublic(EkType::kEcc);
  ASSERT_TRUE(before.ok());
  t1->reset();
  EXPECT_EQ(CountCreatePrimary(dir + "/before.pcap"), 1);

  auto persist = Tpm2Tools("tpm2_createek -G ecc -c 0x81010002 -u /dev/null >/dev/null");
  ASSERT_EQ(persist.exit_code, 0) << persist.err;
  ::setenv("TCTI_PCAP_FILE", (dir + "/after.pcap").c_str(), 1);
  auto t2 = OpenTpm("pcap:" + SwtpmTctiForTests());
  ASSERT_TRUE(t2.ok());
  auto ak = (*t2)->CreateAk(EkType::kEcc, AkAlg::kEccP256);
  auto ek = (*t2)->ReadEkPublic(EkType::kEcc);
  Bytes nonce = {1};
  PcrSelection sel = {{TPM2_ALG_SHA256, {0}}};
  Result<Quote> q = ak.ok() ? (*t2)->MakeQuote(*ak, sel, nonce) : Result<Quote>(ak.status());
  t2->reset();
  ::unsetenv("TCTI_PCAP_FILE");
  auto persistent = Tpm2Tools("tpm2_getcap handles-persistent");
  auto transient = Tpm2Tools("tpm2_getcap handles-transient");
  auto evict = Tpm2Tools("tpm2_evictcontrol -C o -c 0x81010002");
  EXPECT_EQ(evict.exit_code, 0) << evict.err;
  ASSERT_TRUE(ak.ok()) << ak.status().message();
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_TRUE(ek.ok());
  EXPECT_EQ(CountCreatePrimary(dir + "/after.pcap"), 0);     // the persistent EK was used
  EXPECT_EQ(MarshalPublic2B(*ek), MarshalPublic2B(*before));  // and it is the same key
  EXPECT_NE(persistent.out.find("- 0x81010002\n"), std::string::npos) << persistent.out;  // still persisted
  EXPECT_EQ(transient.out, "");                                                          // nothing left loaded
  auto key = PublicKey::FromTpmPublic(ak->pub);
  EXPECT_TRUE(CheckQuote(*key, q->msg, q->sig, nonce, sel, q->values).ok());
}

TEST(EsysTpmErrorsTest, IgnoresANonStandardKeyAtTheEkHandle) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  auto standard = tpm->ReadEkPublic(EkType::kEcc);
  ASSERT_TRUE(standard.ok());
  std::string dir = MakeTempDir();
  auto other = Tpm2Tools("cd " + ShellQuote(dir) +
                         " && tpm2_createprimary -C e -G ecc -c k.ctx >/dev/null && tpm2_evictcontrol -C o -c k.ctx 0x81010002 >/dev/null"
                         " && tpm2_flushcontext -t");
  ASSERT_EQ(other.exit_code, 0) << other.err;
  auto ek = tpm->ReadEkPublic(EkType::kEcc);
  auto evict = Tpm2Tools("tpm2_evictcontrol -C o -c 0x81010002");
  EXPECT_EQ(evict.exit_code, 0) << evict.err;
  ASSERT_TRUE(ek.ok()) << ek.status().message();
  EXPECT_EQ(MarshalPublic2B(*ek), MarshalPublic2B(*standard));
}

TEST(EsysTpmErrorsTest, WrongEndorsementAuthIsAClearMessage) {
  auto tpm = Open();
  ASSERT_TRUE(tpm);
  auto set = Tpm2Tools("tpm2_changeauth -c e limsecret");
  ASSERT_EQ(set.exit_code, 0) << set.err;
  auto ak = tpm->CreateAk(EkType::kEcc, AkAlg::kEccP256);
  auto reset = Tpm2Tools("tpm2_changeauth -c e -p limsecret");
  ASSERT_EQ(reset.exit_code, 0) << reset.err;
  ASSERT_FALSE(ak.ok());
  EXPECT_NE(ak.status().message().find("wrong authorization value"), std::string::npos) << ak.status().message();
  auto h = Tpm2Tools("tpm2_getcap handles-transient; tpm2_getcap handles-loaded-session");
  EXPECT_EQ(h.out, "");  // nothing left loaded after the failure
}

}  // namespace
}  // namespace lim::tpm
