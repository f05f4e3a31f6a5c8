// CLI tests of lim sign / hash / appraise / evm / keys, including interop both ways with
// evmctl (ima-evm-utils) and `fsverity digest`, on real files with security.* xattrs. They
// need root and an xattr-capable $TMPDIR (ext4 here) and skip themselves otherwise; evmctl
// and fsverity are installed by scripts/deps.sh.
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "base/file.h"
#include "tests/testing.h"

namespace lim {
namespace {

using lim::testing::LimBinary;
using lim::testing::RunCommand;
using lim::testing::ShellQuote;

std::string Lim(const std::string& args) { return ShellQuote(LimBinary()) + " " + args; }

class AppraiseCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for security.* xattrs";
    if (RunCommand("command -v evmctl").exit_code != 0) GTEST_SKIP() << "evmctl missing (scripts/deps.sh installs it)";
    dir_ = lim::testing::MakeTempDir();
    Write("a", "first file\n");
    if (setxattr(P("a").c_str(), "security.ima", "\x04", 1, 0) != 0) GTEST_SKIP() << "no security xattrs on $TMPDIR";
    removexattr(P("a").c_str(), "security.ima");
    Write("b", "second file\n");
    std::filesystem::create_directories(P("keys"));
    std::filesystem::create_directories(P("other"));
    // RSA and ECDSA keys with self-signed certificates (SKID = hash, as openssl req makes it).
    Sh("openssl genrsa -out rsa.key 2048 && openssl req -new -x509 -key rsa.key -subj /CN=rsa -days 2 -out keys/rsa.pem");
    Sh("openssl ecparam -name prime256v1 -genkey -noout -out ec.key && "
       "openssl req -new -x509 -key ec.key -subj /CN=ec -days 2 -outform DER -out keys/ec.der");
    Sh("openssl ecparam -name secp384r1 -genkey -noout -out p384.key && "
       "openssl req -new -x509 -key p384.key -subj /CN=p384 -days 2 -out keys/p384.pem");
    Sh("openssl genrsa -out evil.key 2048 && openssl req -new -x509 -key evil.key -subj /CN=evil -days 2 -out other/evil.pem");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string P(const std::string& n) const { return dir_ + "/" + n; }
  void Write(const std::string& n, const std::string& text) { ASSERT_TRUE(WriteFileBytes(P(n), AsBytes(text)).ok()); }
  lim::testing::CommandResult Sh(const std::string& cmd) {
    auto r = RunCommand("cd " + ShellQuote(dir_) + " && " + cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out << r.err;
    return r;
  }
  lim::testing::CommandResult LimIn(const std::string& args) { return RunCommand("cd " + ShellQuote(dir_) + " && " + Lim(args)); }
  std::string Xattr(const std::string& n, const char* name) {
    char buf[4096];
    ssize_t r = getxattr(P(n).c_str(), name, buf, sizeof buf);
    return r < 0 ? "" : ToHex(ByteView(reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(r)));
  }
  std::string dir_;
};

TEST_F(AppraiseCliTest, EvmctlSignaturesPassLimAppraise) {
  for (const char* key : {"rsa.key", "ec.key", "p384.key"}) {
    for (const char* algo : {"sha256", "sha384", "sha1"}) {
      SCOPED_TRACE(std::string(key) + " " + algo);
      Sh(std::string("evmctl ima_sign -a ") + algo + " --key " + key + " a");
      auto r = LimIn("appraise --keys keys --imasig a");
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
      EXPECT_NE(r.out.find("a: pass"), std::string::npos) << r.out;
      EXPECT_NE(r.out.find(std::string("0x03 v2 ") + algo + " signature by key"), std::string::npos) << r.out;
    }
  }
}

TEST_F(AppraiseCliTest, LimSignaturesPassEvmctlVerify) {
  for (auto [key, cert] : {std::pair<const char*, const char*>{"rsa.key", "keys/rsa.pem"}, {"ec.key", "keys/ec.der"},
                           {"p384.key", "keys/p384.pem"}}) {
    for (const char* algo : {"sha256", "sha512"}) {
      SCOPED_TRACE(std::string(key) + " " + algo);
      auto s = LimIn(std::string("sign a --key ") + key + " --cert " + cert + " --hash " + algo);
      ASSERT_EQ(s.exit_code, 0) << s.err;
      // evmctl 1.4 reads verification certificates as DER only.
      Sh(std::string("openssl x509 -in ") + cert + " -inform " + (std::string(cert).ends_with(".der") ? "DER" : "PEM") +
         " -outform DER -out cert.der && evmctl ima_verify --key cert.der a");
      EXPECT_EQ(LimIn("appraise -q --keys keys --imasig a").exit_code, 0);
    }
  }
  // Without --cert the key id is derived from the key, as evmctl does: same xattr header.
  Sh("evmctl ima_sign -a sha256 --key rsa.key b");
  std::string evmctl_id = Xattr("b", "security.ima").substr(6, 8);
  ASSERT_EQ(LimIn("sign b --key rsa.key").exit_code, 0);
  EXPECT_EQ(Xattr("b", "security.ima").substr(6, 8), evmctl_id);
  // keys list shows the same id for the certificate.
  auto k = LimIn("keys list keys");
  EXPECT_EQ(k.exit_code, 0) << k.err;
  EXPECT_NE(k.out.find(evmctl_id + " rsa-2048 keys/rsa.pem CN=rsa"), std::string::npos) << k.out << evmctl_id;
  EXPECT_NE(k.out.find(" ec-prime256v1 keys/ec.der CN=ec"), std::string::npos) << k.out;
}

TEST_F(AppraiseCliTest, HashFixMatchesEvmctlImaHash) {
  for (const char* algo : {"sha256", "sha1", "sha512"}) {
    SCOPED_TRACE(algo);
    Sh(std::string("evmctl ima_hash -a ") + algo + " a");
    std::string by_evmctl = Xattr("a", "security.ima");
    ASSERT_FALSE(by_evmctl.empty());
    removexattr(P("a").c_str(), "security.ima");
    auto r = LimIn(std::string("hash --fix --hash ") + algo + " a");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Xattr("a", "security.ima"), by_evmctl);
    EXPECT_EQ(r.out, by_evmctl + "  a\n");
    EXPECT_EQ(LimIn("appraise -q --keys keys a").exit_code, 0);
  }
  // -r walks directories; each file gets its digest.
  std::filesystem::create_directories(P("tree/sub"));
  Write("tree/x", "x\n");
  Write("tree/sub/y", "y\n");
  // Links below the tree are not followed (refs/tree_walk.h, shared with `lim scan`).
  std::filesystem::create_directory_symlink(dir_, P("tree/sub/up"));
  std::filesystem::create_symlink(P("a"), P("tree/a-link"));
  auto tree = LimIn("hash --fix -r tree");
  ASSERT_EQ(tree.exit_code, 0) << tree.err;
  EXPECT_EQ(std::count(tree.out.begin(), tree.out.end(), '\n'), 2) << tree.out;
  EXPECT_EQ(LimIn("appraise -q --keys keys tree/x tree/sub/y").exit_code, 0);
  EXPECT_EQ(LimIn("hash tree").exit_code, 2);  // a directory without -r
  // --fix never replaces a signature.
  Sh("evmctl ima_sign -a sha256 --key rsa.key a");
  std::string sig = Xattr("a", "security.ima");
  EXPECT_EQ(LimIn("hash --fix a").exit_code, 0);
  EXPECT_EQ(Xattr("a", "security.ima"), sig);
}

TEST_F(AppraiseCliTest, PortableEvmSignaturesBothWays) {
  // evmctl → lim.
  Sh("evmctl ima_hash -a sha256 a && evmctl sign --portable -a sha256 --key rsa.key a");
  Sh("openssl x509 -in keys/rsa.pem -outform DER -out rsa.der");
  EXPECT_EQ(Xattr("a", "security.evm").substr(0, 2), "05");
  auto r = LimIn("evm verify --keys keys a");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("pass_immutable"), std::string::npos) << r.out;
  auto ap = LimIn("appraise --evm --keys keys a");
  EXPECT_EQ(ap.exit_code, 0) << ap.out << ap.err;
  // Copied to another inode, a portable signature still verifies.
  // (cp skips security.evm by /etc/xattr.conf: copy it by hand.)
  Sh("cp --preserve=xattr,mode,ownership a a2 && "
     "setfattr -n security.evm -v $(getfattr -e hex -n security.evm a | sed -n s/^security.evm=//p) a2");
  EXPECT_EQ(LimIn("evm verify --keys keys a2").exit_code, 0);
  // lim → evmctl.
  ASSERT_EQ(LimIn("sign b --key ec.key --evm --portable").exit_code, 0);
  Sh("evmctl verify --key keys/ec.der b");
  // Metadata changed offline: both refuse.
  Sh("chmod 600 b");
  EXPECT_NE(RunCommand("cd " + ShellQuote(dir_) + " && evmctl verify --key keys/ec.der b").exit_code, 0);
  auto bad = LimIn("appraise --evm --keys keys b");
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("cause=invalid-fail-immutable"), std::string::npos) << bad.out;
}

TEST_F(AppraiseCliTest, NonPortableEvmSignatureWithUuidBothWays) {
  const std::string uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
  Sh("evmctl ima_hash -a sha256 a && evmctl sign -a sha256 --uuid=" + uuid + " --key rsa.key a");
  EXPECT_EQ(Xattr("a", "security.evm").substr(0, 2), "03");
  EXPECT_EQ(LimIn("evm verify --keys keys --uuid " + uuid + " a").exit_code, 0);
  // The UUID is part of the message: another one fails.
  EXPECT_EQ(LimIn("evm verify --keys keys --uuid 00000000-0000-0000-0000-000000000000 a").exit_code, 1);
  // A failed non-portable (0x03) EVM signature is the kernel's INTEGRITY_FAIL: IMA's cause
  // is invalid-HMAC; only a portable one's failure is invalid-fail-immutable.
  auto wrong = LimIn("appraise --evm --keys keys --uuid 00000000-0000-0000-0000-000000000000 a");
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out;
  EXPECT_NE(wrong.out.find("cause=invalid-HMAC"), std::string::npos) << wrong.out;
  ASSERT_EQ(LimIn("sign b --key ec.key --evm --uuid " + uuid).exit_code, 0);
  Sh("evmctl verify --uuid=" + uuid + " --key keys/ec.der b");
}

TEST_F(AppraiseCliTest, EvmHmacWritesAndVerifies) {
  Write("hmac.key", std::string(32, 'k'));
  Sh("evmctl ima_hash -a sha256 a");
  auto h = LimIn("evm hmac --hmac-key hmac.key --no-uuid --write a");
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(Xattr("a", "security.evm").substr(0, 2), "02");
  EXPECT_EQ(LimIn("appraise --hmac-key hmac.key --no-uuid a").exit_code, 0);
  // Offline changes the HMAC catches: owner, an edited security.ima (still a valid digest
  // of the content), security.ima and security.evm copied from another file.
  for (const char* change : {"chown 1:1 a", "evmctl ima_hash -a sha512 a"}) {
    SCOPED_TRACE(change);
    Sh("evmctl ima_hash -a sha256 a && chown 0:0 a");
    ASSERT_EQ(LimIn("evm hmac --hmac-key hmac.key --no-uuid --write a").exit_code, 0);
    ASSERT_EQ(LimIn("appraise -q --hmac-key hmac.key --no-uuid a").exit_code, 0);
    Sh(change);
    auto bad = LimIn("appraise --hmac-key hmac.key --no-uuid a");
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.out.find("cause=invalid-HMAC"), std::string::npos) << bad.out;
  }
  // b gets a's content, then a's security.ima and security.evm: same content, other inode.
  Sh("evmctl ima_hash -a sha256 a && chown 0:0 a");
  ASSERT_EQ(LimIn("evm hmac --hmac-key hmac.key --no-uuid --write a").exit_code, 0);
  Sh("cp a b && for x in security.ima security.evm; do "
     "setfattr -n $x -v $(getfattr -e hex -n $x a | sed -n s/^$x=//p) b; done");
  auto copied = LimIn("appraise --hmac-key hmac.key --no-uuid b");
  EXPECT_EQ(copied.exit_code, 1) << copied.out;
  EXPECT_NE(copied.out.find("cause=invalid-HMAC"), std::string::npos) << copied.out;
  // Without EVM, the copied digest is accepted: it is only EVM that binds it to the inode.
  EXPECT_EQ(LimIn("appraise -q --keys keys b").exit_code, 0);
}

// evmctl 1.4's `hmac` reads its key from /etc/keys/evm-key-plain: it gets one inside a
// private mount namespace where /etc is an overlay whose upper layer is the test's own
// directory, so the real /etc is never written. Without a UUID both compute the same HMAC.
TEST_F(AppraiseCliTest, EvmctlHmacAgreesWithoutUuid) {
  if (RunCommand("command -v unshare && grep -qw overlay /proc/filesystems").exit_code != 0) GTEST_SKIP() << "no unshare/overlayfs";
  Write("hmac.key", "0123456789abcdef0123456789abcdef");
  std::filesystem::create_directories(P("upper"));
  std::filesystem::create_directories(P("work"));
  Sh("evmctl ima_hash -a sha256 a && timeout 20 unshare -m --propagation private sh -c '"
     "mount -t overlay overlay -o lowerdir=/etc,upperdir=upper,workdir=work /etc && mkdir -p /etc/keys && "
     "cp hmac.key /etc/keys/evm-key-plain && evmctl -a sha1 hmac --uuid= a'");
  std::string by_evmctl = Xattr("a", "security.evm");
  ASSERT_EQ(by_evmctl.substr(0, 2), "02");
  auto h = LimIn("evm hmac --hmac-key hmac.key --no-uuid a");
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(h.out, "hmac: " + by_evmctl.substr(2) + "  a\n");
  auto v = LimIn("evm verify --hmac-key hmac.key --no-uuid --keys keys a");
  EXPECT_EQ(v.exit_code, 0) << v.out;
  EXPECT_NE(v.out.find("a: pass"), std::string::npos) << v.out;
}

TEST_F(AppraiseCliTest, TamperMatrix) {
  struct Case {
    const char* name;
    std::string setup;
    std::string flags;
    const char* cause;
  } cases[] = {
      {"byte changed after signing", "evmctl ima_sign -a sha256 --key rsa.key t && printf x >> t", "--imasig", "invalid-signature"},
      {"untrusted key", "evmctl ima_sign -a sha256 --key evil.key t", "--imasig", "invalid-signature"},
      {"signature of another file",
       "evmctl ima_sign -a sha256 --key rsa.key b && "
       "setfattr -n security.ima -v $(getfattr -e hex -n security.ima b | sed -n s/^security.ima=//p) t",
       "--imasig", "invalid-signature"},
      {"xattr removed", "evmctl ima_sign -a sha256 --key rsa.key t && setfattr -x security.ima t", "--imasig",
       "IMA-signature-required"},
      {"no xattr, hash rule", "true", "", "missing-hash"},
      {"digest where imasig is needed", "evmctl ima_hash -a sha256 t", "--imasig", "IMA-signature-required"},
      {"digest of other content", "evmctl ima_hash -a sha256 t && printf y >> t", "", "invalid-hash"},
      {"hostile: truncated signature", "setfattr -n security.ima -v 0x030204000000 t", "", "unknown-ima-data"},
      {"hostile: v3 inside 0x03", "setfattr -n security.ima -v 0x0303040000000100010a t", "", "invalid-signature-version"},
      {"hostile: unknown type", "setfattr -n security.ima -v 0x7f00 t", "", "unknown-ima-data"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Write("t", "tamper target\n");
    removexattr(P("t").c_str(), "security.ima");
    Sh(c.setup);
    auto r = LimIn("appraise --keys keys " + c.flags + " t");
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find(std::string("t: fail cause=") + c.cause + "\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(std::string("audit: op=appraise_data cause=") + c.cause), std::string::npos) << r.out;
  }
  // The untrusted key is named.
  Write("t", "tamper target\n");
  Sh("evmctl ima_sign -a sha256 --key evil.key t");
  EXPECT_NE(LimIn("appraise --keys keys t").out.find("no trusted key has id"), std::string::npos);
}

TEST_F(AppraiseCliTest, PolicyRuleDecides) {
  Write("policy", "dont_appraise fsmagic=0x9fa0\nappraise func=BPRM_CHECK appraise_type=imasig\nappraise func=FILE_CHECK\n");
  Sh("evmctl ima_hash -a sha256 a");
  auto exec = LimIn("appraise --policy policy --func BPRM_CHECK --keys keys a");
  EXPECT_EQ(exec.exit_code, 1) << exec.out;
  EXPECT_NE(exec.out.find("rule 2: appraise func=BPRM_CHECK appraise_type=imasig"), std::string::npos) << exec.out;
  EXPECT_NE(exec.out.find("cause=IMA-signature-required"), std::string::npos) << exec.out;
  auto read = LimIn("appraise --policy policy --func FILE_CHECK --keys keys a");
  EXPECT_EQ(read.exit_code, 0) << read.out;
  EXPECT_NE(read.out.find("rule 3: appraise func=FILE_CHECK"), std::string::npos) << read.out;
  auto mmap = LimIn("appraise --policy policy --func MMAP_CHECK --keys keys b");
  EXPECT_EQ(mmap.exit_code, 0) << mmap.out;
  EXPECT_NE(mmap.out.find("b: not appraised (no appraise rule matches)"), std::string::npos) << mmap.out;
  // appraise_algos.
  Write("algos", "appraise func=FILE_CHECK appraise_algos=sha512\n");
  auto algos = LimIn("appraise --policy algos --keys keys a");
  EXPECT_NE(algos.out.find("cause=denied-hash-algorithm"), std::string::npos) << algos.out;
}

TEST_F(AppraiseCliTest, VeritySignatures) {
  if (RunCommand("command -v fsverity").exit_code != 0) GTEST_SKIP() << "fsverity (fsverity-utils) missing";
  // lim's user-space fs-verity digest equals fsverity-utils' on sizes around block edges.
  for (size_t size : {0ul, 1ul, 4095ul, 4096ul, 4097ul, 128ul * 4096, 128ul * 4096 + 1, 3000000ul}) {
    SCOPED_TRACE(size);
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131) >> 3);
    Write("v", data);
    for (const char* algo : {"sha256", "sha512"}) {
      auto want = Sh(std::string("fsverity digest --hash-alg=") + algo + " v");
      auto got = LimIn(std::string("hash --verity --hash ") + algo + " v");
      EXPECT_EQ(got.exit_code, 0) << got.err;
      EXPECT_EQ(got.out, want.out);
    }
  }
  Write("policy", "appraise func=FILE_CHECK digest_type=verity appraise_type=sigv3\n");
  ASSERT_EQ(LimIn("sign a --key ec.key --verity").exit_code, 0);
  EXPECT_EQ(Xattr("a", "security.ima").substr(0, 4), "0603");
  auto ok = LimIn("appraise --policy policy --keys keys a");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("fs-verity sha256 signature verifies"), std::string::npos) << ok.out;
  Sh("printf z >> a");
  EXPECT_NE(LimIn("appraise --policy policy --keys keys a").out.find("cause=invalid-verity-signature"), std::string::npos);
  // A v2 signature where the rule wants verity.
  Sh("evmctl ima_sign -a sha256 --key rsa.key b");
  EXPECT_NE(LimIn("appraise --policy policy --keys keys b").out.find("cause=verity-signature-required"), std::string::npos);
}

TEST_F(AppraiseCliTest, BadInputExitsTwo) {
  EXPECT_EQ(LimIn("appraise --keys nonexistent a").exit_code, 2);
  EXPECT_EQ(LimIn("appraise --keys keys missing-file").exit_code, 2);
  EXPECT_EQ(LimIn("sign a --key keys/rsa.pem").exit_code, 2);  // a certificate is not a private key
  EXPECT_EQ(LimIn("sign a --key rsa.key --cert keys/ec.der").exit_code, 2);  // not the key's certificate
  EXPECT_EQ(LimIn("sign . --key rsa.key").exit_code, 2);  // a directory without -r
  // Endless or huge inputs are refused within 1 s and 64 MiB of address space.
  for (const char* args : {"sign a --key /dev/zero", "appraise --hmac-key /dev/zero a", "hash /dev/zero",
                           "appraise --keys /dev/zero a", "evm hmac --hmac-key /dev/zero a"}) {
    SCOPED_TRACE(args);
    auto r = RunCommand("cd " + ShellQuote(dir_) + " && timeout -k 1 1 prlimit --as=" + std::to_string(64 << 20) + " " +
                        Lim(args));
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find("lim: "), std::string::npos) << r.err;
  }
  Write("keys/junk.pem", "not a certificate\n");
  auto k = LimIn("keys list keys");
  EXPECT_EQ(k.exit_code, 1);
  EXPECT_NE(k.err.find("junk.pem"), std::string::npos) << k.err;
}

}  // namespace
}  // namespace lim
