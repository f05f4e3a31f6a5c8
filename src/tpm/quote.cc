#include "tpm/quote.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include <cstring>

#include "base/bytes.h"
#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "tpm/ossl_ptr.h"

namespace lim::tpm {

static_assert(sizeof(TPML_PCR_SELECTION) == 132, "tpm2-tools PCR file layout");
static_assert(sizeof(TPML_DIGEST) == 532, "tpm2-tools PCR file layout");

const char* QuoteFailureName(QuoteFailure f) {
  switch (f) {
    case QuoteFailure::kNone: return "ok";
    case QuoteFailure::kMalformed: return "malformed";
    case QuoteFailure::kSignature: return "signature";
    case QuoteFailure::kMagic: return "magic";
    case QuoteFailure::kType: return "type";
    case QuoteFailure::kNonce: return "nonce";
    case QuoteFailure::kPcrSelect: return "pcr-select";
    case QuoteFailure::kPcrDigest: return "pcr-digest";
  }
  return "?";
}

Result<TPML_PCR_SELECTION> ToTssSelection(const PcrSelection& sel) {
  TPML_PCR_SELECTION out{};
  if (sel.size() > TPM2_NUM_PCR_BANKS) return Status::InvalidArgument("more than 16 PCR banks selected");
  for (const auto& b : sel) {
    TPMS_PCR_SELECTION& s = out.pcrSelections[out.count++];
    s.hash = b.alg;
    s.sizeofSelect = 3;
    for (int i : b.pcrs) {
      if (i < 0 || i >= 32) return Status::InvalidArgument("PCR index " + std::to_string(i) + " out of range");
      if (i >= 24) s.sizeofSelect = 4;
      s.pcrSelect[i / 8] = static_cast<uint8_t>(s.pcrSelect[i / 8] | (1u << (i % 8)));
    }
  }
  return out;
}

PcrSelection FromTssSelection(const TPML_PCR_SELECTION& sel) {
  PcrSelection out;
  for (uint32_t k = 0; k < sel.count && k < TPM2_NUM_PCR_BANKS; ++k) {
    const auto& s = sel.pcrSelections[k];
    PcrBankSelection b{s.hash, {}};
    for (int i = 0; i < 8 * std::min<int>(s.sizeofSelect, TPM2_PCR_SELECT_MAX); ++i) {
      if (s.pcrSelect[i / 8] & (1u << (i % 8))) b.pcrs.insert(i);
    }
    out.push_back(std::move(b));
  }
  return out;
}

Result<QuoteInfo> ParseAttest(ByteView msg) {
  TPMS_ATTEST a{};
  size_t off = 0;
  ByteView body = msg;
  // TPM2B_ATTEST: a u16 size equal to the rest, and then the magic.
  if (msg.size() >= 6 && static_cast<size_t>((msg[0] << 8) | msg[1]) == msg.size() - 2 &&
      LoadU32(msg.data() + 2, ByteOrder::kBig) == TPM2_GENERATED_VALUE) {
    body = msg.subspan(2);
  }
  TSS2_RC rc = Tss2_MU_TPMS_ATTEST_Unmarshal(body.data(), body.size(), &off, &a);
  if (rc != TSS2_RC_SUCCESS) {
    return Status::Corrupt("TPMS_ATTEST does not parse (" + std::to_string(body.size()) +
                           " bytes; truncated or not an attestation)");
  }
  if (off != body.size()) {
    return Status::Corrupt("TPMS_ATTEST followed by " + std::to_string(body.size() - off) +
                           " unexpected bytes at offset " + std::to_string(off));
  }
  QuoteInfo q;
  q.magic = a.magic;
  q.type = a.type;
  q.qualified_signer.assign(a.qualifiedSigner.name, a.qualifiedSigner.name + a.qualifiedSigner.size);
  q.extra_data.assign(a.extraData.buffer, a.extraData.buffer + a.extraData.size);
  q.clock = {a.clockInfo.clock, a.clockInfo.resetCount, a.clockInfo.restartCount, a.clockInfo.safe == TPM2_YES};
  q.firmware_version = a.firmwareVersion;
  if (a.type == TPM2_ST_ATTEST_QUOTE) {
    q.selection = FromTssSelection(a.attested.quote.pcrSelect);
    q.pcr_digest.assign(a.attested.quote.pcrDigest.buffer,
                        a.attested.quote.pcrDigest.buffer + a.attested.quote.pcrDigest.size);
  }
  return q;
}

namespace {

Result<TPMT_SIGNATURE> UnmarshalSignature(ByteView sig) {
  TPMT_SIGNATURE s{};
  size_t off = 0;
  if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig.data(), sig.size(), &off, &s) != TSS2_RC_SUCCESS) {
    return Status::Corrupt("TPMT_SIGNATURE does not parse (" + std::to_string(sig.size()) + " bytes)");
  }
  if (off != sig.size()) {
    return Status::Corrupt("TPMT_SIGNATURE followed by " + std::to_string(sig.size() - off) +
                           " unexpected bytes at offset " + std::to_string(off));
  }
  return s;
}

}  // namespace

Result<SignatureInfo> ParseSignature(ByteView sig) {
  LIM_ASSIGN_OR_RETURN(TPMT_SIGNATURE s, UnmarshalSignature(sig));
  SignatureInfo info{s.sigAlg, 0};
  switch (s.sigAlg) {
    case TPM2_ALG_RSASSA: info.hash_alg = s.signature.rsassa.hash; break;
    case TPM2_ALG_RSAPSS: info.hash_alg = s.signature.rsapss.hash; break;
    case TPM2_ALG_ECDSA: info.hash_alg = s.signature.ecdsa.hash; break;
    default:
      return Status::Unsupported("signature algorithm 0x" + ToHex(Bytes{static_cast<uint8_t>(s.sigAlg >> 8), static_cast<uint8_t>(s.sigAlg)}) +
                                 " (lim checks RSASSA, RSAPSS and ECDSA)");
  }
  return info;
}

Status VerifySignature(const PublicKey& key, ByteView msg, ByteView sig) {
  LIM_ASSIGN_OR_RETURN(TPMT_SIGNATURE s, UnmarshalSignature(sig));
  LIM_ASSIGN_OR_RETURN(SignatureInfo info, ParseSignature(sig));
  LIM_ASSIGN_OR_RETURN(HashAlgo algo, HashAlgoByTpmAlg(info.hash_alg));
  LIM_ASSIGN_OR_RETURN(const EVP_MD* md, FetchMd(algo));
  Bytes der;
  ByteView raw;
  bool rsa = s.sigAlg != TPM2_ALG_ECDSA;
  if (rsa != key.is_rsa()) {
    return Status::Mismatch(std::string("signature is ") + (rsa ? "RSA" : "ECDSA") + " but the AK is " +
                            (key.is_rsa() ? "RSA" : "ECC"));
  }
  if (rsa) {
    const TPM2B_PUBLIC_KEY_RSA& r = s.sigAlg == TPM2_ALG_RSASSA ? s.signature.rsassa.sig : s.signature.rsapss.sig;
    raw = ByteView(r.buffer, r.size);
  } else {
    ECDSA_SIG* es = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(s.signature.ecdsa.signatureR.buffer, s.signature.ecdsa.signatureR.size, nullptr);
    BIGNUM* sv = BN_bin2bn(s.signature.ecdsa.signatureS.buffer, s.signature.ecdsa.signatureS.size, nullptr);
    ECDSA_SIG_set0(es, r, sv);
    unsigned char* p = nullptr;
    int n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    if (n <= 0) return Status::Internal("cannot DER-encode the ECDSA signature");
    der.assign(p, p + n);
    OPENSSL_free(p);
    raw = der;
  }
  OsslPtr<EVP_MD_CTX, EVP_MD_CTX_free> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key.pkey()) <= 0) {
    return Status::Internal("OpenSSL cannot verify with this key");
  }
  if (s.sigAlg == TPM2_ALG_RSAPSS) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO);
  } else if (s.sigAlg == TPM2_ALG_RSASSA) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
  }
  if (EVP_DigestVerify(ctx.get(), raw.data(), raw.size(), msg.data(), msg.size()) != 1) {
    return Status::Mismatch("signature does not verify with the AK");
  }
  return Status::Ok();
}

Result<Bytes> ComputePcrDigest(uint16_t hash_alg, const PcrSelection& sel, const PcrValues& values) {
  LIM_ASSIGN_OR_RETURN(HashAlgo algo, HashAlgoByTpmAlg(hash_alg));
  LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(algo));
  for (const auto& b : sel) {
    auto bank = values.find(b.alg);
    for (int i : b.pcrs) {
      if (bank == values.end() || !bank->second.count(i)) {
        return Status::NotFound("no value for PCR " + TpmBankName(b.alg) + ":" + std::to_string(i));
      }
      h.Update(bank->second.at(i));
    }
  }
  return h.Final();
}

Result<QuoteInfo> CheckQuote(const PublicKey& ak, ByteView msg, ByteView sig, ByteView nonce,
                             const PcrSelection& selection, const PcrValues& values, QuoteFailure* failure) {
  QuoteFailure dummy;
  QuoteFailure& f = failure ? *failure : dummy;
  f = QuoteFailure::kNone;
  auto fail = [&](QuoteFailure which, const std::string& detail) -> Status {
    f = which;
    std::string m = std::string(QuoteFailureName(which)) + ": " + detail;
    return which == QuoteFailure::kMalformed ? Status::Corrupt(m) : Status::Mismatch(m);
  };
  auto sig_info = ParseSignature(sig);
  if (!sig_info.ok()) return fail(QuoteFailure::kMalformed, sig_info.status().message());
  // A message that is no TPMS_ATTEST (empty, cut short) is malformed input, not a signature
  // that fails: parse it (bounds-checked, nothing is trusted yet) before verifying.
  auto q = ParseAttest(msg);
  if (!q.ok()) return fail(QuoteFailure::kMalformed, "quote message: " + q.status().message());
  Status st = VerifySignature(ak, msg, sig);
  if (!st.ok()) {
    return fail(st.code() == StatusCode::kMismatch ? QuoteFailure::kSignature : QuoteFailure::kMalformed,
                st.message());
  }
  if (q->magic != TPM2_GENERATED_VALUE) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "magic 0x%08x is not TPM_GENERATED_VALUE", q->magic);
    return fail(QuoteFailure::kMagic, buf);
  }
  if (q->type != TPM2_ST_ATTEST_QUOTE) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "type 0x%04x is not TPM_ST_ATTEST_QUOTE", q->type);
    return fail(QuoteFailure::kType, buf);
  }
  if (!std::equal(q->extra_data.begin(), q->extra_data.end(), nonce.begin(), nonce.end())) {
    return fail(QuoteFailure::kNonce, "quote has nonce '" + ToHex(q->extra_data) + "', expected '" + ToHex(nonce) + "'");
  }
  if (q->selection != selection) {
    return fail(QuoteFailure::kPcrSelect, "quote covers " + SelectionToString(q->selection) +
                                              ", the supplied PCRs are " + SelectionToString(selection));
  }
  auto digest = ComputePcrDigest(sig_info->hash_alg, selection, values);
  if (!digest.ok()) return fail(QuoteFailure::kPcrDigest, digest.status().message());
  if (*digest != q->pcr_digest) {
    return fail(QuoteFailure::kPcrDigest, "quote's pcrDigest " + ToHex(q->pcr_digest) +
                                              " != digest of the supplied PCR values " + ToHex(*digest));
  }
  return q;
}

Bytes WritePcrsFile(const PcrSelection& selection, const PcrValues& values) {
  Bytes out;
  ByteWriter w(&out);
  w.U32(static_cast<uint32_t>(selection.size()), ByteOrder::kLittle);
  for (size_t k = 0; k < TPM2_NUM_PCR_BANKS; ++k) {
    uint8_t select[4] = {0, 0, 0, 0};
    uint16_t alg = 0;
    uint8_t size = 0;
    if (k < selection.size()) {
      alg = selection[k].alg;
      size = 3;
      for (int i : selection[k].pcrs) {
        if (i >= 24) size = 4;
        select[i / 8] = static_cast<uint8_t>(select[i / 8] | (1u << (i % 8)));
      }
    }
    w.U16(alg, ByteOrder::kLittle);
    w.U8(size);
    w.Append(ByteView(select, 4));
    w.U8(0);  // struct padding
  }
  std::vector<ByteView> digests;
  for (const auto& b : selection) {
    auto bank = values.find(b.alg);
    for (int i : b.pcrs) {
      if (bank != values.end() && bank->second.count(i)) digests.push_back(bank->second.at(i));
      else digests.push_back({});
    }
  }
  uint32_t lists = static_cast<uint32_t>((digests.size() + 7) / 8);
  w.U32(lists, ByteOrder::kLittle);
  for (uint32_t l = 0; l < lists; ++l) {
    size_t first = l * 8, n = std::min<size_t>(8, digests.size() - first);
    w.U32(static_cast<uint32_t>(n), ByteOrder::kLittle);
    for (size_t k = 0; k < 8; ++k) {
      uint8_t buf[64] = {};
      uint16_t size = 0;
      if (k < n) {
        ByteView d = digests[first + k];
        size = static_cast<uint16_t>(std::min<size_t>(64, d.size()));
        if (size) std::memcpy(buf, d.data(), size);  // an absent value is empty (data() may be null)
      }
      w.U16(size, ByteOrder::kLittle);
      w.Append(ByteView(buf, 64));
    }
  }
  return out;
}

Result<PcrsFile> ReadPcrsFile(ByteView data) {
  ByteReader r(data);
  uint32_t count = 0;
  if (!r.ReadU32(&count, ByteOrder::kLittle)) return Status::Corrupt("PCR file: empty");
  if (count > TPM2_NUM_PCR_BANKS) {
    return Status::Corrupt("PCR file: selection count " + std::to_string(count) + " > 16 at offset 0");
  }
  PcrsFile out;
  for (uint32_t k = 0; k < TPM2_NUM_PCR_BANKS; ++k) {
    uint16_t alg = 0;
    uint8_t size = 0;
    ByteView select;
    if (!r.ReadU16(&alg, ByteOrder::kLittle) || !r.ReadU8(&size) || !r.ReadView(4, &select) || !r.Skip(1)) {
      return Status::Corrupt("PCR file: truncated PCR selection at offset " + std::to_string(r.offset()));
    }
    if (k >= count) continue;
    if (size > 4) return Status::Corrupt("PCR file: sizeofSelect " + std::to_string(size) + " > 4 in bank " + std::to_string(k));
    PcrBankSelection b{alg, {}};
    for (int i = 0; i < 8 * size; ++i) {
      if (select[static_cast<size_t>(i / 8)] & (1u << (i % 8))) b.pcrs.insert(i);
    }
    out.selection.push_back(std::move(b));
  }
  uint32_t lists = 0;
  if (!r.ReadU32(&lists, ByteOrder::kLittle)) return Status::Corrupt("PCR file: no digest count at offset 132");
  std::vector<Bytes> digests;
  for (uint32_t l = 0; l < lists; ++l) {
    uint32_t n = 0;
    size_t at = r.offset();
    if (!r.ReadU32(&n, ByteOrder::kLittle)) return Status::Corrupt("PCR file: truncated digest list at offset " + std::to_string(at));
    if (n > 8) return Status::Corrupt("PCR file: digest list count " + std::to_string(n) + " > 8 at offset " + std::to_string(at));
    for (uint32_t k = 0; k < 8; ++k) {
      uint16_t size = 0;
      ByteView buf;
      if (!r.ReadU16(&size, ByteOrder::kLittle) || !r.ReadView(64, &buf)) {
        return Status::Corrupt("PCR file: truncated digest at offset " + std::to_string(r.offset()));
      }
      if (k < n) {
        if (size > 64) return Status::Corrupt("PCR file: digest size " + std::to_string(size) + " > 64");
        digests.emplace_back(buf.begin(), buf.begin() + size);
      }
    }
  }
  if (!r.empty()) return Status::Corrupt("PCR file: " + std::to_string(r.remaining()) + " trailing bytes at offset " + std::to_string(r.offset()));
  size_t next = 0;
  for (const auto& b : out.selection) {
    auto algo = HashAlgoByTpmAlg(b.alg);
    for (int i : b.pcrs) {
      if (next >= digests.size()) {
        return Status::Corrupt("PCR file: selection names " + SelectionToString(out.selection) + " but only " +
                               std::to_string(digests.size()) + " digests follow");
      }
      if (algo.ok() && digests[next].size() != algo->size) {
        return Status::Corrupt("PCR file: " + TpmBankName(b.alg) + ":" + std::to_string(i) + " has " +
                               std::to_string(digests[next].size()) + " bytes");
      }
      out.values[b.alg][i] = std::move(digests[next++]);
    }
  }
  if (next != digests.size()) {
    return Status::Corrupt("PCR file: " + std::to_string(digests.size() - next) + " digests beyond the selection");
  }
  return out;
}

}  // namespace lim::tpm
