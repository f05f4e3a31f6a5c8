#include "daemon/key_watch.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/file.h"
#include "crypto/digest.h"
#include "daemon/list_rows_test_util.h"
#include "daemon/measurer_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

TEST(KeyWatch, SpecialKeyringsAreNamedAsTheKernelNamesThem) {
  EXPECT_EQ(SpecialKeyringName(-1, 0), "_tid");
  EXPECT_EQ(SpecialKeyringName(-2, 0), "_pid");
  EXPECT_EQ(SpecialKeyringName(-4, 1000), "_uid.1000");
  EXPECT_EQ(SpecialKeyringName(-5, 0), "_uid_ses.0");
  EXPECT_FALSE(SpecialKeyringName(-3, 0).has_value());  // a session keyring's name varies
  EXPECT_FALSE(SpecialKeyringName(-6, 0).has_value());
}

TEST(KeyWatch, X509DescriptionIsTheOneTheKernelGives) {
  EXPECT_FALSE(KernelX509Description(AsBytes(std::string("not DER"))).ok());
  for (const char* tool : {"openssl", "keyctl"}) {
    if (lim::testing::RunCommand(std::string("command -v ") + tool).exit_code != 0) GTEST_SKIP() << "no " << tool;
  }
  std::string dir = lim::testing::MakeTempDir();
  std::string cert = dir + "/c.der";
  struct Case {
    const char* subj;
    const char* ext;
  } cases[] = {
      {"/O=Lim Tests/CN=lim key test", ""},     // O and CN: "O: CN"
      {"/O=Lim/CN=Lim signing key", ""},        // CN starts with O: CN
      {"/O=Example Corp/CN=Example C key", ""},  // 7 leading characters shared: CN
      {"/CN=only cn", ""},
      {"/O=only o", ""},
      {"/CN=no skid", "-addext subjectKeyIdentifier=none"},  // the serial number instead
  };
  for (const Case& c : cases) {
    auto r = lim::testing::RunCommand("openssl req -x509 -newkey rsa:1024 -nodes -keyout " + dir +
                                      "/k.pem -outform DER -out " + cert + " -subj '" + c.subj + "' " + c.ext +
                                      " -days 1 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    // The kernel's own description of the key, in a throw-away session keyring.
    auto k = lim::testing::RunCommand("keyctl session - sh -c 'keyctl rdescribe $(keyctl padd asymmetric \"\" @s < " +
                                      cert + ")' 2>/dev/null");
    if (k.exit_code != 0) GTEST_SKIP() << "the kernel does not take asymmetric keys here";
    std::string kernel = k.out;
    while (!kernel.empty() && kernel.back() == '\n') kernel.pop_back();
    for (int i = 0; i < 4; ++i) kernel.erase(0, kernel.find(';') + 1);
    auto der = ReadFileBytes(cert);
    ASSERT_TRUE(der.ok());
    auto d = KernelX509Description(*der);
    ASSERT_TRUE(d.ok()) << d.status().message();
    EXPECT_EQ(*d, kernel) << c.subj;
  }
}

// The two tracepoint steps driven by hand, with this thread as the add_key caller.
class KeyWatchSteps : public testing::MeasurerFixture {
 protected:
  void SetUp() override {
    for (const char* tool : {"openssl"}) {
      if (lim::testing::RunCommand(std::string("command -v ") + tool).exit_code != 0) GTEST_SKIP() << "no " << tool;
    }
    ASSERT_NO_FATAL_FAILURE(OpenParts("measure func=KEY_CHECK keyrings=key_import_test\n", {}, RealEnv()));
    measurer_ = std::make_unique<Measurer>(MeasurerConfig{}, matcher_.get(), list_.get(), RealEnv());
    watch_ = std::make_unique<KeyWatch>(measurer_.get(), list_.get(), nullptr);
    for (const char* name : {"a", "b"}) {
      std::string cert = dir_ + "/" + name + ".der";
      auto r = lim::testing::RunCommand("openssl req -x509 -newkey rsa:1024 -nodes -keyout " + dir_ +
                                        "/k.pem -outform DER -out " + cert + " -subj '/CN=key " + name +
                                        "' -days 1 2>&1");
      ASSERT_EQ(r.exit_code, 0) << r.out;
      certs_.push_back(*ReadFileBytes(cert));
    }
    // A keyring of this process (KEY_SPEC_PROCESS_KEYRING): no session keyring needed.
    ring_ = ::syscall(SYS_add_key, "keyring", "key_import_test", nullptr, 0, -2);
    if (ring_ < 0) GTEST_SKIP() << "add_key keyring: " << strerror(errno);
  }
  // add_key of certs_[index] as the kernel sees it, while the watcher read `seen`.
  // ring: the ring id passed (0: ring_); description: the caller's ("" or none: derived).
  long AddKey(size_t index, const Bytes& seen, long ring = 0, const char* description = "") {
    if (ring == 0) ring = ring_;
    pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
    const char* type = "asymmetric";
    watch_->OnEnter(tid, reinterpret_cast<uint64_t>(type), reinterpret_cast<uint64_t>(seen.data()), seen.size(),
                    static_cast<int32_t>(ring), 1, reinterpret_cast<uint64_t>(description));
    long serial = ::syscall(SYS_add_key, "asymmetric", description, certs_[index].data(), certs_[index].size(), ring);
    watch_->OnExit(tid, serial, 2);
    return serial;
  }
  std::vector<testing::ListRow> Rows() { return testing::ReadListRows(dir_ + "/binary_runtime_measurements"); }

  std::unique_ptr<KeyWatch> watch_;
  std::vector<Bytes> certs_;
  long ring_ = -1;
};

TEST_F(KeyWatchSteps, TheCertificateTheKernelParsedIsRecorded) {
  long serial = AddKey(0, certs_[0]);
  if (serial < 0) GTEST_SKIP() << "add_key asymmetric: " << strerror(errno);
  auto rows = Rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().name, "key_import_test");
  EXPECT_EQ(rows.back().tmpl, "ima-buf");
  EXPECT_EQ(rows.back().digest, *Digest(Sha256Algo(), certs_[0]));
  EXPECT_EQ(rows.back().extra, certs_[0]);
  EXPECT_EQ(watch_->measured(), 1u);
}

TEST_F(KeyWatchSteps, BytesThatAreNotTheParsedCertificateLeaveAGap) {
  // The caller changed its buffer after the kernel copied it: limd read certificate b while
  // the kernel created a key from a.
  long serial = AddKey(0, certs_[1]);
  if (serial < 0) GTEST_SKIP() << "add_key asymmetric: " << strerror(errno);
  auto rows = Rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().name, "lim-key-unmeasured");
  EXPECT_TRUE(rows.back().violation);
  std::string buf(rows.back().extra.begin(), rows.back().extra.end());
  EXPECT_NE(buf.find("keyring=key_import_test;description=key a: "), std::string::npos) << buf;
  EXPECT_NE(buf.find(";reason=payload_mismatch;"), std::string::npos) << buf;
  EXPECT_EQ(watch_->measured(), 0u);
  EXPECT_EQ(watch_->gaps(), 1u);
}

TEST_F(KeyWatchSteps, ACallersOwnDescriptionIsCheckedThroughTheKeyIdentifierProcKeysShows) {
  long serial = AddKey(0, certs_[0], 0, "lim test key");
  if (serial < 0) GTEST_SKIP() << "add_key asymmetric: " << strerror(errno);
  auto rows = Rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().name, "key_import_test");
  EXPECT_EQ(rows.back().extra, certs_[0]);
  // Another certificate read than the one the kernel took under that name: a gap.
  AddKey(1, certs_[0], 0, "lim other key");
  rows = Rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().name, "lim-key-unmeasured");
  std::string buf(rows.back().extra.begin(), rows.back().extra.end());
  EXPECT_NE(buf.find("description=lim other key;"), std::string::npos) << buf;
  EXPECT_NE(buf.find(";reason=payload_mismatch;"), std::string::npos) << buf;
  EXPECT_EQ(watch_->measured(), 1u);
}

TEST_F(KeyWatchSteps, ACallersOwnDescriptionWithBytesThatAreNoCertificateIsAMismatch) {
  // The caller's buffer reused before limd read it (seen under load): the bytes read parse
  // as no certificate at all, while the kernel made a key of the certificate it copied.
  // That is the race lost (payload_mismatch), not a certificate without a key identifier.
  Bytes reused(certs_[0].size(), 0x5a);
  long serial = AddKey(0, reused, 0, "lim reused buffer");
  if (serial < 0) GTEST_SKIP() << "add_key asymmetric: " << strerror(errno);
  auto rows = Rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().name, "lim-key-unmeasured");
  std::string buf(rows.back().extra.begin(), rows.back().extra.end());
  EXPECT_NE(buf.find(";reason=payload_mismatch;"), std::string::npos) << buf;
  EXPECT_EQ(watch_->measured(), 0u);
}

TEST_F(KeyWatchSteps, AddingTheSameDescriptionAgainReplacesTheKeyAndIsMeasuredAgain) {
  // The asymmetric type has no update: add_key of an existing description creates a new
  // key (a new serial) that replaces the old one, a create the kernel measures.
  long first = AddKey(0, certs_[0], 0, "lim replaced key");
  if (first < 0) GTEST_SKIP() << "add_key asymmetric: " << strerror(errno);
  long second = AddKey(1, certs_[1], 0, "lim replaced key");
  ASSERT_GT(second, 0);
  EXPECT_NE(first, second);
  auto rows = Rows();
  ASSERT_GE(rows.size(), 2u);
  EXPECT_EQ(rows[rows.size() - 2].extra, certs_[0]);
  EXPECT_EQ(rows.back().extra, certs_[1]);
  EXPECT_EQ(watch_->measured(), 2u);
  // keyctl update: refused for asymmetric keys (no .update, so no write permission).
  EXPECT_LT(::syscall(SYS_keyctl, 2 /* KEYCTL_UPDATE */, second, certs_[0].data(), certs_[0].size()), 0);
}

TEST_F(KeyWatchSteps, TheSessionKeyringIsNamedByItsDescription) {
  // A session keyring of this thread's own, named as the rule's keyrings= says (@s: the
  // kernel measures under the ring's description, which varies per session).
  long session = ::syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "key_import_test");
  if (session < 0) GTEST_SKIP() << "join session keyring: " << strerror(errno);
  long serial = AddKey(0, certs_[0], -3 /* KEY_SPEC_SESSION_KEYRING */);
  if (serial < 0) GTEST_SKIP() << "add_key asymmetric to @s: " << strerror(errno);
  auto holder = ResolveHoldingKeyring(serial);
  ASSERT_TRUE(holder.ok()) << holder.status().message();
  EXPECT_EQ(*holder, "key_import_test");
  auto rows = Rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().name, "key_import_test");
  EXPECT_EQ(rows.back().extra, certs_[0]);
  EXPECT_EQ(watch_->gaps(), 0u);
}

TEST_F(KeyWatchSteps, ASessionKeyReplacedBeforeLimdLooksIsNamedByItsSuccessor) {
  long session = ::syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "key_import_test");
  if (session < 0) GTEST_SKIP() << "join session keyring: " << strerror(errno);
  pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  const char* type = "asymmetric";
  watch_->OnEnter(tid, reinterpret_cast<uint64_t>(type), reinterpret_cast<uint64_t>(certs_[0].data()),
                  certs_[0].size(), -3, 1, 0);
  long first = ::syscall(SYS_add_key, "asymmetric", nullptr, certs_[0].data(), certs_[0].size(), -3);
  if (first < 0) GTEST_SKIP() << "add_key asymmetric to @s: " << strerror(errno);
  // The next add of the same certificate replaces the key before limd handles the first exit.
  long second = ::syscall(SYS_add_key, "asymmetric", nullptr, certs_[0].data(), certs_[0].size(), -3);
  ASSERT_GT(second, 0);
  ASSERT_NE(first, second);
  EXPECT_FALSE(ResolveHoldingKeyring(first).ok());  // no ring links it any more
  watch_->OnExit(tid, first, 2);
  auto rows = Rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().name, "key_import_test");
  EXPECT_EQ(rows.back().extra, certs_[0]);
  EXPECT_EQ(watch_->gaps(), 0u);
}

}  // namespace
}  // namespace lim::daemon
