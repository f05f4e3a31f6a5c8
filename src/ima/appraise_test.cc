// Tests of the security.ima / security.evm formats (ima_xattr, evm) and of AppraiseFile on
// real files with real xattrs (root on an xattr-capable $TMPDIR; skipped otherwise).
#include "ima/appraise.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/private_key.h"
#include "ima/evm.h"
#include "ima/ima_xattr.h"
#include "tests/testing.h"

namespace lim::ima {
namespace {

Bytes B(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<uint8_t>(x));
  return b;
}

TEST(ImaXattrTest, DigestForms) {
  Bytes sha256(32, 0xab);
  Bytes v = MakeImaDigestXattr(Sha256Algo(), sha256);
  ASSERT_EQ(v.size(), 34u);
  EXPECT_EQ(v[0], 0x04);
  EXPECT_EQ(v[1], 4);  // HASH_ALGO_SHA256
  auto x = ParseImaXattr(v);
  ASSERT_TRUE(x.ok()) << x.status().message();
  EXPECT_EQ(std::string(x->algo.kernel_name), "sha256");
  EXPECT_EQ(Bytes(x->digest.begin(), x->digest.end()), sha256);
  // SHA1 is written in the legacy form, 21 bytes.
  Bytes sha1(20, 0x11);
  Bytes l = MakeImaDigestXattr(Sha1Algo(), sha1);
  ASSERT_EQ(l.size(), 21u);
  EXPECT_EQ(l[0], 0x01);
  auto lx = ParseImaXattr(l);
  ASSERT_TRUE(lx.ok());
  EXPECT_EQ(std::string(lx->algo.kernel_name), "sha1");
  // 21 bytes ending in four zeros: an MD5 in a 20-byte slot (ima_get_hash_algo).
  Bytes md5slot = B({1});
  md5slot.resize(17, 0x5a);
  md5slot.resize(21, 0);
  auto m = ParseImaXattr(md5slot);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(std::string(m->algo.kernel_name), "md5");
  // Longer than the digest: accepted, the prefix is the digest (the kernel compares it).
  Bytes longer = v;
  longer.push_back(0xff);
  auto lo = ParseImaXattr(longer);
  ASSERT_TRUE(lo.ok());
  EXPECT_EQ(lo->digest.size(), 32u);
}

TEST(ImaXattrTest, HostileValuesGetNamedErrors) {
  struct Case {
    Bytes value;
    const char* says;
  } cases[] = {
      {{}, "empty value"},
      {B({0x04}), "without its algorithm byte"},
      {B({0x04, 4, 1, 2, 3}), "sha256 needs 32"},
      {B({0x04, 200}), "hash algorithm 200"},
      {B({0x01, 1, 2, 3}), "legacy digest (0x01) of 3 bytes"},
      {B({0x03, 2, 4, 0, 0, 0, 1, 0, 5, 1, 2}), "size field says 5"},
      {B({0x03, 2, 4}), "shorter than its 9-byte header"},
      {B({0x03, 3, 4, 0, 0, 0, 1, 0, 1, 9}), "invalid-signature-version"},
      {B({0x06, 2, 4, 0, 0, 0, 1, 0, 1, 9}), "must be 3"},
      {B({0x03, 2, 99, 0, 0, 0, 1, 0, 1, 9}), "99"},
      {B({0x02, 1, 2}), "belongs in security.evm"},
      {B({0x05, 2, 4, 0, 0, 0, 1, 0, 1, 9}), "belongs in security.evm"},
      {B({0x07, 1}), "unknown type 0x07"},
      {Bytes(5000, 0x04), "more than any digest"},
  };
  for (const auto& c : cases) {
    auto x = ParseImaXattr(c.value);
    ASSERT_FALSE(x.ok()) << ToHex(c.value);
    EXPECT_NE(x.status().message().find(c.says), std::string::npos) << ToHex(c.value) << ": " << x.status().message();
    EXPECT_EQ(x.status().message().rfind("security.ima: ", 0), 0u) << x.status().message();
  }
}

TEST(ImaXattrTest, SignatureHeaderRoundTrip) {
  auto v = MakeSignatureV2(kXattrDigsig, 2, Sha256Algo(), 0x1a2b3c4d, B({7, 8, 9}));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(ToHex(*v), "030204" "1a2b3c4d" "0003" "070809");
  auto x = ParseImaXattr(*v);
  ASSERT_TRUE(x.ok()) << x.status().message();
  EXPECT_TRUE(x->is_signature());
  EXPECT_EQ(x->sig.key_id, 0x1a2b3c4du);
  EXPECT_EQ(DescribeImaXattr(*x), "0x03 v2 sha256 signature by key 1a2b3c4d");
}

TEST(EvmTest, HostileEvmValues) {
  EXPECT_FALSE(ParseEvmXattr(B({0x02, 1, 2, 3})).ok());
  Bytes hmac = B({0x02});
  hmac.resize(21, 0x33);
  EXPECT_TRUE(ParseEvmXattr(hmac).ok());
  hmac.push_back(0);
  auto x = ParseEvmXattr(hmac);
  ASSERT_FALSE(x.ok());
  EXPECT_NE(x.status().message().find("must be 20"), std::string::npos);
  EXPECT_FALSE(ParseEvmXattr(B({0x04, 4})).ok());
  EXPECT_FALSE(ParseEvmXattr({}).ok());
}

// The kernel's formula written out by hand (evm_crypto.c): values of the present protected
// xattrs in the kernel's order, then struct h_misc (64-bit), then the 16 UUID bytes; HMAC-SHA1
// keyed with the key in a zeroed 128-byte buffer.
TEST(EvmTest, HmacMatchesTheKernelFormula) {
  EvmInputs in;
  // Given out of order: the message must follow the kernel's order, not this one.
  in.xattrs = {{"security.capability", B({0xc1, 0xc2})}, {"security.ima", B({0x04, 4, 0xaa})},
               {"security.selinux", B({'s', 'y', 's', 0})}, {"security.SMACK64EXEC", B({0xee})}};
  in.ino = 0x1122334455667788ull;
  in.generation = 0xdeadbeef;
  in.uid = 1000;
  in.gid = 100;
  in.mode = 0100755;
  in.fsuuid = ParseFsUuid("01234567-89ab-cdef-0011-223344556677").value();
  Bytes m = B({'s', 'y', 's', 0, 0x04, 4, 0xaa, 0xc1, 0xc2});  // selinux, ima, capability
  uint8_t misc[24] = {};
  std::memcpy(misc, &in.ino, 8);
  std::memcpy(misc + 8, &in.generation, 4);
  std::memcpy(misc + 12, &in.uid, 4);
  std::memcpy(misc + 16, &in.gid, 4);
  std::memcpy(misc + 20, &in.mode, 2);
  m.insert(m.end(), misc, misc + 24);
  m.insert(m.end(), in.fsuuid->begin(), in.fsuuid->end());
  EXPECT_EQ(*EvmMessage(in, false), m);
  Bytes key = B({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32});
  uint8_t padded[128] = {};
  std::memcpy(padded, key.data(), key.size());
  uint8_t want[20];
  unsigned int len = 0;
  HMAC(EVP_sha1(), padded, 128, m.data(), m.size(), want, &len);
  auto h = EvmHmac(key, in);
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(ToHex(*h), ToHex(ByteView(want, 20)));
  // The same vector from Python's hmac module (struct.pack('<QIIIH2x', …)), so that a
  // change to the formula on both sides is noticed too.
  EXPECT_EQ(ToHex(*h), "c6b34a6f5dcac182e1ef86e7b167d5f8bc61895d");
  // Without a UUID the message loses its 16 last bytes; the HMAC changes.
  EvmInputs no_uuid = in;
  no_uuid.fsuuid.reset();
  EXPECT_EQ(EvmMessage(no_uuid, false)->size(), m.size() - 16);
  EXPECT_NE(*EvmHmac(key, no_uuid), *h);
  // Portable: SMACK64EXEC is included, ino and generation are zero, no UUID.
  Bytes pm = *EvmMessage(in, true);
  Bytes want_p = B({'s', 'y', 's', 0, 0xee, 0x04, 4, 0xaa, 0xc1, 0xc2});
  std::memset(misc, 0, 12);
  want_p.insert(want_p.end(), misc, misc + 24);
  EXPECT_EQ(pm, want_p);
  // Errors: no protected xattr; portable without security.ima; oversized key.
  EvmInputs bare;
  EXPECT_EQ(EvmMessage(bare, false).status().code(), StatusCode::kNotFound);
  EvmInputs noima = in;
  noima.xattrs.erase(noima.xattrs.begin() + 1);
  EXPECT_FALSE(EvmMessage(noima, true).ok());
  EXPECT_TRUE(EvmMessage(noima, false).ok());
  EXPECT_FALSE(EvmHmac(Bytes(129, 1), in).ok());
}

// The kernel's evm_xattrs (evm_write_xattrs): defaults in their order, a name added at run
// time appended after them (list_add_tail), a default that was off enabled in its place.
TEST(EvmTest, XattrListAddsAsTheKernelsEvmXattrs) {
  EvmXattrList list;
  EXPECT_EQ(list.Text(), "security.selinux\nsecurity.SMACK64\nsecurity.apparmor\nsecurity.ima\nsecurity.capability\n");
  EXPECT_EQ(list.Add("security.ima"), EvmXattrList::AddResult::kExists);
  EXPECT_EQ(list.Add("user.foo"), EvmXattrList::AddResult::kNotSecurity);
  EXPECT_EQ(list.Add("securityfoo"), EvmXattrList::AddResult::kNotSecurity);
  EXPECT_EQ(list.Add("security.lim"), EvmXattrList::AddResult::kAdded);
  EXPECT_EQ(list.Add("security.lim"), EvmXattrList::AddResult::kExists);
  EXPECT_EQ(list.Add("security.SMACK64EXEC"), EvmXattrList::AddResult::kEnabled);
  EXPECT_EQ(list.Enabled(), (std::vector<std::string>{"security.selinux", "security.SMACK64", "security.SMACK64EXEC",
                                                      "security.apparmor", "security.ima", "security.capability",
                                                      "security.lim"}));
}

// A name added at run time is part of the HMAC input after capability; a default enabled
// at run time (SMACK64EXEC) in its default place; an xattr not in the list is not hashed.
TEST(EvmTest, HmacInputWithAnAddedXattr) {
  EvmInputs in;
  in.xattrs = {{"security.lim", B({0x11})}, {"security.capability", B({0xc1})}, {"security.ima", B({0x04, 4, 0xaa})},
               {"security.SMACK64EXEC", B({0xee})}, {"security.other", B({0x99})}, {"security.selinux", B({'s', 0})}};
  in.ino = 7;
  in.mode = 0100644;
  uint8_t misc[24] = {};
  std::memcpy(misc, &in.ino, 8);
  std::memcpy(misc + 20, &in.mode, 2);
  auto with_misc = [&](Bytes m) {
    m.insert(m.end(), misc, misc + 24);
    return m;
  };
  // Defaults only: selinux, ima, capability.
  EXPECT_EQ(*EvmMessage(in, false), with_misc(B({'s', 0, 0x04, 4, 0xaa, 0xc1})));
  Bytes key = B({1, 2, 3, 4});
  Bytes before = *EvmHmac(key, in);
  EvmXattrList list;
  ASSERT_EQ(list.Add("security.lim"), EvmXattrList::AddResult::kAdded);
  in.names = list.Enabled();
  EXPECT_EQ(*EvmMessage(in, false), with_misc(B({'s', 0, 0x04, 4, 0xaa, 0xc1, 0x11})));
  EXPECT_NE(*EvmHmac(key, in), before);  // an HMAC made before the addition now fails
  ASSERT_EQ(list.Add("security.SMACK64EXEC"), EvmXattrList::AddResult::kEnabled);
  in.names = list.Enabled();
  EXPECT_EQ(*EvmMessage(in, false), with_misc(B({'s', 0, 0xee, 0x04, 4, 0xaa, 0xc1, 0x11})));
  // Portable: every default name, then the added one.
  Bytes portable = with_misc(B({'s', 0, 0xee, 0x04, 4, 0xaa, 0xc1, 0x11}));
  std::memset(portable.data() + portable.size() - 24, 0, 8);  // ino zero
  EXPECT_EQ(*EvmMessage(in, true), portable);
  // The HMAC is the kernel's formula over that message.
  Bytes m = *EvmMessage(in, false);
  uint8_t padded[128] = {1, 2, 3, 4};
  uint8_t want[20];
  unsigned int len = 0;
  HMAC(EVP_sha1(), padded, 128, m.data(), m.size(), want, &len);
  EXPECT_EQ(ToHex(*EvmHmac(key, in)), ToHex(ByteView(want, 20)));
  // Only an added xattr present: the file has protected xattrs (no no_xattrs).
  EvmInputs only;
  only.xattrs = {{"security.lim", B({0x11})}};
  EXPECT_EQ(EvmMessage(only, false).status().code(), StatusCode::kNotFound);
  only.names = list.Enabled();
  EXPECT_TRUE(EvmMessage(only, false).ok());
}

TEST(EvmTest, UuidParsing) {
  auto u = ParseFsUuid("01234567-89AB-cdef-0011-223344556677");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(FormatFsUuid(*u), "01234567-89ab-cdef-0011-223344556677");
  EXPECT_FALSE(ParseFsUuid("0123456789abcdef0011223344556677").ok());
  EXPECT_FALSE(ParseFsUuid("01234567-89ab-cdef-0011-2233445566zz").ok());
}

// ---- AppraiseFile on real files (root: security.* xattrs) ----

class AppraiseFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for security.* xattrs";
    dir_ = lim::testing::MakeTempDir();
    file_ = dir_ + "/f";
    ASSERT_TRUE(WriteFileBytes(file_, AsBytes("hello appraisal\n")).ok());
    if (setxattr(file_.c_str(), "security.ima", "\x04", 1, 0) != 0) GTEST_SKIP() << "no security xattrs on $TMPDIR";
    removexattr(file_.c_str(), "security.ima");
    // An EC key and its self-signed certificate, made here.
    EVP_PKEY* k = EVP_EC_gen("P-256");
    ASSERT_NE(k, nullptr);
    FILE* kf = fopen((dir_ + "/key.pem").c_str(), "w");
    PEM_write_PrivateKey(kf, k, nullptr, nullptr, 0, nullptr, nullptr);
    fclose(kf);
    X509* c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    X509_gmtime_adj(X509_getm_notBefore(c), 0);
    X509_gmtime_adj(X509_getm_notAfter(c), 3600);
    X509_set_pubkey(c, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("appraise test"), -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(c));
    X509_sign(c, k, EVP_sha256());
    FILE* cf = fopen((dir_ + "/cert.pem").c_str(), "w");
    PEM_write_X509(cf, c);
    fclose(cf);
    X509_free(c);
    EVP_PKEY_free(k);
    keys_ = PublicKey::LoadFile(dir_ + "/cert.pem").value();
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  Appraisal Run(const AppraiseRequirements& req = {}, const EvmConfig& evm = {}) {
    int fd = open(file_.c_str(), O_RDONLY);
    Appraisal a = AppraiseFile(fd, file_, req, keys_, evm);
    close(fd);
    return a;
  }
  void SetIma(ByteView v) { ASSERT_EQ(setxattr(file_.c_str(), "security.ima", v.data(), v.size(), 0), 0); }
  Bytes Sign(const HashAlgo& algo) {
    auto key = PrivateKey::Load(dir_ + "/key.pem", dir_ + "/cert.pem");
    EXPECT_TRUE(key.ok());
    Bytes d = *Digest(algo, *ReadFileBounded(file_, 1 << 20));
    return *MakeSignatureV2(kXattrDigsig, 2, algo, key->key_id(), *key->SignDigest(algo, d));
  }
  std::string dir_, file_;
  std::vector<PublicKey> keys_;
};

TEST_F(AppraiseFileTest, DigestAndSignatureCauses) {
  Appraisal none = Run();
  EXPECT_FALSE(none.pass);
  EXPECT_EQ(none.cause, "missing-hash");
  EXPECT_EQ(Run({.signature_required = true}).cause, "IMA-signature-required");

  Bytes d = *Digest(Sha256Algo(), *ReadFileBounded(file_, 1 << 20));
  SetIma(MakeImaDigestXattr(Sha256Algo(), d));
  Appraisal ok = Run();
  EXPECT_TRUE(ok.pass) << ok.cause << " " << ok.detail;
  EXPECT_EQ(ok.form, "0x04 sha256 digest");
  EXPECT_EQ(Run({.signature_required = true}).cause, "IMA-signature-required");
  EXPECT_EQ(Run({.allowed_algos = 1u << 2}).cause, "denied-hash-algorithm");  // sha1 only

  d[0] ^= 1;
  SetIma(MakeImaDigestXattr(Sha256Algo(), d));
  EXPECT_EQ(Run().cause, "invalid-hash");

  SetIma(Sign(Sha256Algo()));
  Appraisal sig = Run({.signature_required = true});
  EXPECT_TRUE(sig.pass) << sig.cause << " " << sig.detail;
  EXPECT_NE(sig.key.find("cert.pem"), std::string::npos) << sig.key;
  EXPECT_EQ(Run({.signature_required = true, .verity_required = true}).cause, "verity-signature-required");
  // No trusted key: invalid-signature, naming the key id.
  {
    int fd = open(file_.c_str(), O_RDONLY);
    Appraisal u = AppraiseFile(fd, file_, {}, {}, {});
    close(fd);
    EXPECT_EQ(u.cause, "invalid-signature");
    EXPECT_NE(u.detail.find("no trusted key has id"), std::string::npos) << u.detail;
  }
  // The content changes after signing.
  ASSERT_TRUE(WriteFileBytes(file_ + ".tmp", AsBytes("hello appraisal!\n")).ok());
  Bytes sig_value = *ReadXattr(open(file_.c_str(), O_RDONLY), "security.ima", 4096, file_).value();
  std::filesystem::rename(file_ + ".tmp", file_);
  SetIma(sig_value);
  EXPECT_EQ(Run().cause, "invalid-signature");
  // Hostile values end in a cause, not a crash.
  SetIma(B({0x03, 3, 4, 0, 0, 0, 1, 0, 1, 9}));
  EXPECT_EQ(Run().cause, "invalid-signature-version");
  SetIma(B({0x09}));
  EXPECT_EQ(Run().cause, "unknown-ima-data");
}

TEST_F(AppraiseFileTest, EvmHmacAndPortableSignature) {
  Bytes d = *Digest(Sha256Algo(), *ReadFileBounded(file_, 1 << 20));
  SetIma(MakeImaDigestXattr(Sha256Algo(), d));
  Bytes key(32, 0x42);
  EvmConfig evm;
  evm.enabled = true;
  evm.hmac_key = key;
  evm.fsuuid = ParseFsUuid("01234567-89ab-cdef-0011-223344556677").value();
  EXPECT_EQ(Run({}, evm).cause, "missing-HMAC");
  int fd = open(file_.c_str(), O_RDONLY);
  EvmInputs in = ReadEvmInputs(fd, file_).value();
  close(fd);
  in.fsuuid = evm.fsuuid;
  Bytes v = {kEvmXattrHmac};
  Bytes h = *EvmHmac(key, in);
  v.insert(v.end(), h.begin(), h.end());
  ASSERT_EQ(setxattr(file_.c_str(), "security.evm", v.data(), v.size(), 0), 0);
  Appraisal ok = Run({}, evm);
  EXPECT_TRUE(ok.pass) << ok.cause << " " << ok.detail;
  EXPECT_EQ(ok.evm_status, "pass");
  // Metadata changed offline: the HMAC no longer matches.
  ASSERT_EQ(chmod(file_.c_str(), 0600), 0);
  Appraisal bad = Run({}, evm);
  EXPECT_EQ(bad.cause, "invalid-HMAC");
  EXPECT_EQ(bad.xattr, "security.evm");
  // Another UUID (the disk moved) also breaks it.
  ASSERT_EQ(chmod(file_.c_str(), static_cast<mode_t>(in.mode & 07777)), 0);
  EXPECT_TRUE(Run({}, evm).pass);
  evm.fsuuid->at(0) ^= 1;
  EXPECT_EQ(Run({}, evm).cause, "invalid-HMAC");
}

}  // namespace
}  // namespace lim::ima
