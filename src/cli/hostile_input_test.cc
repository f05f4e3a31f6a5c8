// Hostile and careless input to the lim CLI (issue 18): endless or huge files as any input,
// damaged quotes and lists, names with control bytes. Every command here must answer within
// 1 s under a 64 MiB address-space limit with exit 2 and a message that names the input and
// the limit — checked by running the exact command under `timeout 1` and `prlimit --as`
// (an overrun shows as exit 124, an allocation failure as exit 134).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "base/file.h"
#include "crypto/hash_algo.h"
#include "ima/list_writer.h"
#include "tests/testing.h"

namespace lim {
namespace {

using lim::testing::Fixture;
using lim::testing::RunCommand;
using lim::testing::ShellQuote;

// `lim ARGS` under a 1 s deadline and a 64 MiB address-space limit.
lim::testing::CommandResult Bounded(const std::string& args) {
  return RunCommand("timeout -k 1 1 prlimit --as=" + std::to_string(64 << 20) + " " + lim::testing::LimCommand(args));
}

void ExpectRefused(const std::string& args, const std::string& message) {
  SCOPED_TRACE("lim " + args);
  auto r = Bounded(args);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("bad_alloc"), std::string::npos) << r.err;
}

struct Inputs {
  std::string dir;
  std::string sparse;  // a 4 GiB sparse file
  std::string pcrs;    // a small valid PCR-set JSON
  std::string empty;
};

Inputs MakeInputs() {
  Inputs in;
  in.dir = lim::testing::MakeTempDir();
  in.sparse = in.dir + "/sparse";
  in.pcrs = in.dir + "/pcrs.json";
  in.empty = in.dir + "/empty";
  EXPECT_EQ(RunCommand("truncate -s 4G " + ShellQuote(in.sparse)).exit_code, 0);
  EXPECT_TRUE(WriteFileBytes(in.pcrs, AsBytes(R"({"sha1":{"10":")" + std::string(40, '0') + "\"}}")).ok());
  EXPECT_TRUE(WriteFileBytes(in.empty, {}).ok());
  return in;
}

TEST(HostileInputTest, EndlessAndHugeFilesAreRefusedAtOnce) {
  Inputs in = MakeInputs();
  const std::string list = Fixture("ibmtss/utils/sha1.log");
  for (const std::string& big : {std::string("/dev/zero"), in.sparse}) {
    ExpectRefused("eventlog " + big, big + ": larger than 16777216 bytes (16 MiB), the limit for an event log");
    ExpectRefused("policy check " + big, big + ": larger than 4194304 bytes (4 MiB), the limit for a policy file");
    ExpectRefused("verify " + list + " --pcrs " + big, big + ": larger than 1048576 bytes (1 MiB), the limit for a PCR file");
    ExpectRefused("verify " + list + " --pcrs " + in.pcrs + " --key " + big,
                  big + ": larger than 4194304 bytes (4 MiB), the limit for a certificate file");
    ExpectRefused("boot-aggregate --pcrs " + big, "the limit for a PCR file");
    ExpectRefused("boot-aggregate --boot-log " + big, "the limit for an event log");
    ExpectRefused("log --format table --boot-log " + big + " " + list, "the limit for an event log");
    ExpectRefused("policy explain " + big + " --func FILE_CHECK --mask MAY_READ --path /x", "the limit for a policy file");
  }
  ExpectRefused("policy check /dev/urandom", "/dev/urandom: larger than 4194304 bytes (4 MiB), the limit for a policy file");
  // A list is streamed: garbage stops at its first record.
  ExpectRefused("log /dev/zero", "/dev/zero: entry 0 at byte offset");
  ExpectRefused("log /dev/urandom", "/dev/urandom: entry 0 at byte offset");
  ExpectRefused("verify /dev/zero --pcrs " + in.pcrs, "/dev/zero: entry 0 at byte offset");
  ExpectRefused("replay /dev/zero", "/dev/zero: entry 0 at byte offset");
}

TEST(HostileInputTest, CheckquoteRefusesEndlessAndHugeInputs) {
  Inputs in = MakeInputs();
  const std::string base = Fixture("go-attestation/derived/windows_gcp_shielded_vm.json.");
  const std::string ak = base + "AK.Public.bin", msg = base + "Quote.Quote.bin", sig = base + "Quote.Signature.bin";
  auto cmd = [&](const std::string& a, const std::string& m, const std::string& s, const std::string& p) {
    return "tpm checkquote --ak " + a + " --msg " + m + " --sig " + s + " --pcrs " + p + " --nonce ''";
  };
  for (const std::string& big : {std::string("/dev/zero"), in.sparse}) {
    ExpectRefused(cmd(big, msg, sig, in.pcrs), big + ": larger than 65536 bytes (64 KiB), the limit for a public key file");
    ExpectRefused(cmd(ak, big, sig, in.pcrs), big + ": larger than 65536 bytes (64 KiB), the limit for a quote (--msg)");
    ExpectRefused(cmd(ak, msg, big, in.pcrs), big + ": larger than 65536 bytes (64 KiB), the limit for a quote signature (--sig)");
    ExpectRefused(cmd(ak, msg, sig, big), big + ": larger than 1048576 bytes (1 MiB), the limit for a PCR file (--pcrs)");
    ExpectRefused("tpm ak check --ak " + big, "the limit for a TPM public area");
    ExpectRefused("tpm makecredential --ek " + big + " --name " + in.empty + " --secret 00 --out " + in.dir + "/c",
                  "the limit for a TPM public area");
  }
}

TEST(HostileInputTest, CheckquoteNamesMalformedInput) {
  Inputs in = MakeInputs();
  const std::string base = Fixture("go-attestation/derived/windows_gcp_shielded_vm.json.");
  const std::string files = " --ak " + base + "AK.Public.bin --sig " + base + "Quote.Signature.bin --pcrs " + in.pcrs;
  // An empty quote message is no TPMS_ATTEST: malformed input, not a failed signature.
  auto empty = Bounded("tpm checkquote --msg " + in.empty + files + " --nonce ''");
  EXPECT_EQ(empty.exit_code, 2) << empty.err;
  EXPECT_NE(empty.err.find("malformed"), std::string::npos) << empty.err;
  EXPECT_EQ(empty.err.find("signature does not verify"), std::string::npos) << empty.err;
  // A nonce that is not hex names the flag.
  auto nonce = Bounded("tpm checkquote --msg " + base + "Quote.Quote.bin" + files + " --nonce zz");
  EXPECT_EQ(nonce.exit_code, 2) << nonce.err;
  EXPECT_NE(nonce.err.find("--nonce"), std::string::npos) << nonce.err;
}

// Damage in the first record is reported as what it is, not as an unknown digest size.
TEST(HostileInputTest, DamagedFirstRecordNamesTheDamage) {
  Bytes list = *ReadFileBytes(Fixture("ibmtss/utils/sha1.log"));
  std::string dir = lim::testing::MakeTempDir();
  Bytes bad = list;
  bad[24] = 0;  // entry 0's template name length (after the PCR and a 20-byte digest)
  ASSERT_TRUE(WriteFileBytes(dir + "/namelen", bad).ok());
  auto r = Bounded("log " + dir + "/namelen");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(dir + "/namelen: entry 0 at byte offset 24: template name length 0 is not in 1..255"),
            std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("cannot tell"), std::string::npos) << r.err;
  // Template data length of entry 0 (after "ima-sig") too large for the list.
  bad = list;
  bad[28 + 7 + 3] = 0x7f;
  ASSERT_TRUE(WriteFileBytes(dir + "/datalen", bad).ok());
  auto d = Bounded("verify " + dir + "/datalen --pcrs sha1," + Fixture("ima-evm-utils/tests/sample-tpm-2.0-pcrs-8-9"));
  EXPECT_EQ(d.exit_code, 2);
  EXPECT_NE(d.err.find("entry 0 at byte offset 35: template data length"), std::string::npos) << d.err;
}

// Names from the input are escaped in messages: one line, nothing cut.
TEST(HostileInputTest, MessagesEscapeNames) {
  std::string dir = lim::testing::MakeTempDir();
  std::string odd = dir + "/a\nb";
  auto r = Bounded("log " + ShellQuote(odd));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lim: " + dir + "/a\\x0ab: open: No such file or directory\n");
  // A NUL inside a template name ("ima\0sig") is shown, not where the message stops.
  Bytes list = *ReadFileBytes(Fixture("ibmtss/utils/sha1.log"));
  ASSERT_EQ(list[28 + 3], '-');
  list[28 + 3] = 0;
  ASSERT_TRUE(WriteFileBytes(dir + "/nul", list).ok());
  auto n = Bounded("log " + dir + "/nul");
  EXPECT_EQ(n.exit_code, 2);
  EXPECT_NE(n.err.find("unknown template 'ima\\x00sig'"), std::string::npos) << n.err;
  EXPECT_EQ(std::count(n.err.begin(), n.err.end(), '\n'), 1) << n.err;
}

// A list whose names hold a newline, bytes that are not UTF-8 and a backslash.
std::string OddNamesList(const std::string& dir) {
  ima::ListWriter w(Sha1Algo());
  Bytes list;
  Bytes digest(32, 0xab);
  for (std::string name : {std::string("/tmp/a\nb"), std::string("/tmp/\xff"), std::string("/tmp/\xfe"),
                           std::string("/tmp/\\xff"), std::string("/tmp/caf\xc3\xa9")}) {
    EXPECT_TRUE(w.Append(ima::ImaNgRecord(Sha256Algo(), digest, name), &list).ok());
  }
  EXPECT_TRUE(WriteFileBytes(dir + "/odd", list).ok());
  return dir + "/odd";
}

TEST(HostileInputTest, TableRowsStayOneLineEach) {
  std::string dir = lim::testing::MakeTempDir();
  auto t = Bounded("log --format table " + OddNamesList(dir));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), 6) << t.out;  // header and 5 rows
  EXPECT_NE(t.out.find("[IMA:/tmp/a\\x0ab]\n"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("[IMA:/tmp/\\xff]\n"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("[IMA:/tmp/\\\\xff]\n"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("[IMA:/tmp/caf\xc3\xa9]\n"), std::string::npos) << t.out;  // UTF-8 as is
}

TEST(HostileInputTest, JsonNamesAreLossless) {
  std::string dir = lim::testing::MakeTempDir();
  auto j = Bounded("log --format json " + OddNamesList(dir));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  std::vector<std::string> names;
  std::istringstream in(j.out);
  for (std::string line; std::getline(in, line);) {
    auto doc = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << line;  // valid JSON (and UTF-8) however odd the name
    names.push_back(doc["fields"]["n-ng"].get<std::string>());
  }
  ASSERT_EQ(names.size(), 5u);
  EXPECT_EQ(names[0], "/tmp/a\\x0ab");
  EXPECT_EQ(names[1], "/tmp/\\xff");
  EXPECT_EQ(names[2], "/tmp/\\xfe");
  EXPECT_EQ(names[3], "/tmp/\\\\xff");
  EXPECT_EQ(names[4], "/tmp/caf\xc3\xa9");
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), 5u);  // all different
}

}  // namespace
}  // namespace lim
