#include "tpm/quote.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "tests/testing.h"

namespace lim::tpm {
namespace {

using lim::testing::Fixture;

Bytes Base64(const std::string& s) {
  Bytes out(s.size());
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  EXPECT_GE(n, 0);
  size_t pad = 0;
  for (auto it = s.rbegin(); it != s.rend() && *it == '='; ++it) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

struct GcpQuote {
  PublicKey ak;
  Bytes msg, sig;
  PcrValues values;
};

GcpQuote LoadGcp() {
  const std::string base = Fixture("go-attestation/derived/windows_gcp_shielded_vm.json.");
  auto pub = ReadFileBytes(base + "AK.Public.bin");
  EXPECT_TRUE(pub.ok());
  auto parsed = ParsePublic(*pub);
  EXPECT_TRUE(parsed.ok()) << parsed.status().message();
  auto key = PublicKey::FromTpmPublic(*parsed);
  EXPECT_TRUE(key.ok()) << key.status().message();
  auto text = ReadFileText(Fixture("go-attestation/attest/testdata/windows_gcp_shielded_vm.json"));
  EXPECT_TRUE(text.ok());
  auto j = nlohmann::json::parse(*text);
  PcrValues values;
  for (const auto& p : j["Log"]["PCRs"]) {
    EXPECT_EQ(p["DigestAlg"].get<int>(), 3);  // Go crypto.SHA1
    values[TPM2_ALG_SHA1][p["Index"].get<int>()] = Base64(p["Digest"].get<std::string>());
  }
  return {std::move(*key), *ReadFileBytes(base + "Quote.Quote.bin"), *ReadFileBytes(base + "Quote.Signature.bin"),
          std::move(values)};
}

PcrSelection Sha1All() {
  PcrBankSelection b{TPM2_ALG_SHA1, {}};
  for (int i = 0; i < 24; ++i) b.pcrs.insert(i);
  return {b};
}

TEST(QuoteTest, GoAttestationWindowsGcpQuoteVerifies) {
  GcpQuote g = LoadGcp();
  ASSERT_EQ(g.values[TPM2_ALG_SHA1].size(), 24u);
  auto sig = ParseSignature(g.sig);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->sig_alg, TPM2_ALG_RSASSA);
  EXPECT_EQ(sig->hash_alg, TPM2_ALG_SHA1);
  QuoteFailure f;
  auto q = CheckQuote(g.ak, g.msg, g.sig, {}, Sha1All(), g.values, &f);
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(f, QuoteFailure::kNone);
  // The upstream-stated pcrDigest (SOURCES.md).
  EXPECT_EQ(ToHex(q->pcr_digest), "a610f27bc687ce906243287d832706036e79f6e1");
  EXPECT_TRUE(q->extra_data.empty());
}

TEST(QuoteTest, GoAttestationQuoteRejectsEachTamperingByName) {
  GcpQuote g = LoadGcp();
  QuoteFailure f;
  Bytes nonce = {1, 2, 3};
  EXPECT_FALSE(CheckQuote(g.ak, g.msg, g.sig, nonce, Sha1All(), g.values, &f).ok());
  EXPECT_EQ(f, QuoteFailure::kNonce);

  PcrValues altered = g.values;
  altered[TPM2_ALG_SHA1][7][0] ^= 1;
  auto r = CheckQuote(g.ak, g.msg, g.sig, {}, Sha1All(), altered, &f);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(f, QuoteFailure::kPcrDigest);
  EXPECT_NE(r.status().message().find("pcr-digest"), std::string::npos);

  PcrSelection fewer = Sha1All();
  fewer[0].pcrs.erase(23);
  EXPECT_FALSE(CheckQuote(g.ak, g.msg, g.sig, {}, fewer, g.values, &f).ok());
  EXPECT_EQ(f, QuoteFailure::kPcrSelect);

  // A message cut short is no TPMS_ATTEST: malformed input (exit 2), not a bad signature.
  Bytes truncated(g.msg.begin(), g.msg.end() - 1);
  EXPECT_FALSE(CheckQuote(g.ak, truncated, g.sig, {}, Sha1All(), g.values, &f).ok());
  EXPECT_EQ(f, QuoteFailure::kMalformed);
  auto empty = CheckQuote(g.ak, {}, g.sig, {}, Sha1All(), g.values, &f);
  EXPECT_EQ(f, QuoteFailure::kMalformed);
  EXPECT_EQ(empty.status().code(), StatusCode::kCorrupt);

  Bytes flipped = g.msg;
  flipped[10] ^= 0x80;
  EXPECT_FALSE(CheckQuote(g.ak, flipped, g.sig, {}, Sha1All(), g.values, &f).ok());
  EXPECT_EQ(f, QuoteFailure::kSignature);

  Bytes bad_sig(g.sig.begin(), g.sig.begin() + 5);
  auto r2 = CheckQuote(g.ak, g.msg, bad_sig, {}, Sha1All(), g.values, &f);
  EXPECT_FALSE(r2.ok());
  EXPECT_EQ(f, QuoteFailure::kMalformed);
}

TEST(QuoteTest, ParseAttestRejectsTruncation) {
  GcpQuote g = LoadGcp();
  for (size_t n : {size_t{0}, size_t{4}, g.msg.size() / 2, g.msg.size() - 1}) {
    auto r = ParseAttest(ByteView(g.msg.data(), n));
    EXPECT_FALSE(r.ok()) << n;
  }
  Bytes longer = g.msg;
  longer.push_back(0);
  EXPECT_FALSE(ParseAttest(longer).ok());
}

// Found by tpm_quote_fuzz (UBSan): a selected PCR without a value was copied from an empty
// vector's null data(). It is written as a zero-size digest, which reading refuses.
TEST(QuoteTest, PcrsFileWithAMissingValueHasAnEmptyDigest) {
  PcrSelection sel = {{TPM2_ALG_SHA256, {0, 1}}};
  PcrValues v;
  v[TPM2_ALG_SHA256][0] = Bytes(32, 7);
  Bytes file = WritePcrsFile(sel, v);
  ASSERT_EQ(file.size(), 132u + 4 + 4 + 8 * 66);
  EXPECT_EQ(file[140 + 66], 0);  // the second digest's size (little-endian U16)
  EXPECT_EQ(file[140 + 67], 0);
  auto back = ReadPcrsFile(file);
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("sha256:1 has 0 bytes"), std::string::npos) << back.status().message();
}

TEST(QuoteTest, PcrsFileRoundTripAndTpm2ToolsLayout) {
  PcrSelection sel = {{TPM2_ALG_SHA256, {0, 1, 10}}, {TPM2_ALG_SHA1, {0}}};
  PcrValues v;
  for (int i : {0, 1, 10}) v[TPM2_ALG_SHA256][i] = Bytes(32, static_cast<uint8_t>(i));
  v[TPM2_ALG_SHA1][0] = Bytes(20, 0xaa);
  Bytes file = WritePcrsFile(sel, v);
  // Same size as tpm2_quote -o writes for 4 PCRs: 132 + 4 + 532.
  EXPECT_EQ(file.size(), 668u);
  EXPECT_EQ(file[0], 2);      // count, little-endian
  EXPECT_EQ(file[4], 0x0b);   // sha256 first
  EXPECT_EQ(file[6], 3);      // sizeofSelect
  EXPECT_EQ(file[7], 0x03);   // PCRs 0,1
  EXPECT_EQ(file[8], 0x04);   // PCR 10
  auto back = ReadPcrsFile(file);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->selection, sel);
  EXPECT_EQ(back->values, v);
  for (size_t n : {size_t{0}, size_t{100}, size_t{140}, file.size() - 1}) {
    EXPECT_FALSE(ReadPcrsFile(ByteView(file.data(), n)).ok()) << n;
  }
  // More than 8 digests spill into a second TPML_DIGEST.
  PcrSelection big = {{TPM2_ALG_SHA1, {}}};
  PcrValues bv;
  for (int i = 0; i < 24; ++i) {
    big[0].pcrs.insert(i);
    bv[TPM2_ALG_SHA1][i] = Bytes(20, static_cast<uint8_t>(i));
  }
  Bytes bigfile = WritePcrsFile(big, bv);
  EXPECT_EQ(bigfile.size(), 132u + 4 + 3 * 532);
  auto bigback = ReadPcrsFile(bigfile);
  ASSERT_TRUE(bigback.ok());
  EXPECT_EQ(bigback->values, bv);
}

TEST(QuoteTest, ComputePcrDigestNamesMissingValue) {
  PcrSelection sel = {{TPM2_ALG_SHA256, {0, 5}}};
  PcrValues v;
  v[TPM2_ALG_SHA256][0] = Bytes(32, 0);
  auto d = ComputePcrDigest(TPM2_ALG_SHA256, sel, v);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("sha256:5"), std::string::npos);
}

TEST(QuoteTest, AkAttributeCheck) {
  GcpQuote g = LoadGcp();
  ASSERT_TRUE(g.ak.tpm_public().has_value());
  EXPECT_TRUE(CheckAkAttributes(*g.ak.tpm_public()).ok());
  TPMT_PUBLIC p = *g.ak.tpm_public();
  p.objectAttributes &= ~TPMA_OBJECT_FIXEDTPM;
  p.objectAttributes |= TPMA_OBJECT_DECRYPT;
  Status st = CheckAkAttributes(p);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("fixedTPM"), std::string::npos);
  EXPECT_NE(st.message().find("decrypt"), std::string::npos);
  // A key made outside the TPM and imported: restricted and fixed, yet not sensitiveDataOrigin.
  TPMT_PUBLIC imported = *g.ak.tpm_public();
  imported.objectAttributes &= ~TPMA_OBJECT_SENSITIVEDATAORIGIN;
  Status si = CheckAkAttributes(imported);
  EXPECT_FALSE(si.ok());
  EXPECT_NE(si.message().find("sensitiveDataOrigin"), std::string::npos) << si.message();
}

}  // namespace
}  // namespace lim::tpm
