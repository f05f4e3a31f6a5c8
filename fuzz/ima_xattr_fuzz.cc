// libFuzzer target for security.ima / security.evm values: the xattr parsers lim appraise
// uses (ParseImaXattr, ParseEvmXattr) and EVM verification of the value as security.evm
// (HMAC and signature paths), the signature header parser, the
// ima-sig / ima-sigv2 records limd builds from a file's security.ima (ima::FileRecord),
// those records read back from a list, and the signature check run on them with a real
// key (P-256, generated once; its key id is in the input's reach through comparisons).
// Any value a file can carry must end in a verdict or a clean error, never a crash.
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "crypto/public_key.h"
#include "ima/appraise.h"
#include "ima/evm.h"
#include "ima/ima_signature.h"
#include "ima/ima_xattr.h"
#include "ima/list_reader.h"
#include "ima/list_writer.h"
#include "ima/signature_check.h"

namespace {

std::vector<lim::PublicKey> Keys() {
  std::vector<lim::PublicKey> keys;
  EVP_PKEY* k = EVP_EC_gen("P-256");
  if (!k) return keys;
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(k, &der);
  if (n > 0) {
    auto key = lim::PublicKey::FromDer(lim::ByteView(der, static_cast<size_t>(n)), "fuzz");
    if (key.ok()) keys.push_back(std::move(key).value());
  }
  OPENSSL_free(der);
  EVP_PKEY_free(k);
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lim;
  static const std::vector<PublicKey> keys = Keys();
  static const ima::EntrySignatureChecker checker(keys);
  ByteView value(data, size);
  // security.ima: a parsed digest is exactly its algorithm's size, inside the value.
  auto ix = ima::ParseImaXattr(value);
  if (ix.ok() && !ix->is_signature() &&
      (ix->digest.size() != ix->algo.size || ix->digest.data() + ix->digest.size() > data + size)) {
    std::abort();
  }
  // security.evm: an HMAC is 20 bytes; the value checked as security.evm over itself as
  // security.ima, through the HMAC and the signature paths.
  auto ex = ima::ParseEvmXattr(value);
  if (ex.ok() && ex->type == ima::kEvmXattrHmac && ex->hmac.size() != 20) std::abort();
  if (size > 0) {
    ima::EvmInputs in;
    in.xattrs.emplace_back("security.ima", Bytes(value.begin(), value.end()));
    in.mode = 0100644;
    ima::EvmConfig cfg;
    cfg.enabled = true;
    cfg.hmac_key = Bytes(32, 0x42);
    cfg.keys = &keys;
    cfg.fsuuid = ima::FsUuid{};
    ima::EvmVerdict v = ima::VerifyEvm(Bytes(value.begin(), value.end()), in, cfg);
    if (v.status.empty()) std::abort();
  }
  auto sig = ima::ParseSignatureV2(value);
  if (sig.ok()) {
    // The parsed signature is a view into the value, and exactly its tail.
    if (sig->signature.empty() || sig->signature.data() + sig->signature.size() != data + size) std::abort();
  }
  // limd reads at most 1024 bytes of security.ima (daemon/env.cc).
  ByteView xattr = value.subspan(0, std::min<size_t>(size, 1024));
  // The file digest: the value's last bytes when there are enough (so a signature can be
  // made to name the same algorithm), else zeros.
  for (const HashAlgo& algo : {Sha256Algo(), Sha1Algo()}) {
    Bytes digest(algo.size, 0);
    for (size_t i = 0; i < digest.size() && i < size; ++i) digest[i] = data[size - 1 - i];
    for (const char* t : {"ima-sig", "ima-sigv2", "ima-ng"}) {
      auto rec = ima::FileRecord(t, algo, digest, "/fuzz/file", xattr, 10);
      if (!rec.ok()) continue;
      Bytes list;
      ima::ListWriter w(Sha1Algo(), kNativeOrder);
      if (!w.Append(*rec, &list).ok()) continue;
      ima::ListOptions lo;
      lo.bank = Sha1Algo();
      lo.byte_order = kNativeOrder;
      auto reader = ima::ListReader::FromBytes(list, lo, "fuzz");
      if (!reader.ok()) std::abort();  // limd's own record must read back
      ima::Entry e;
      auto more = (*reader)->Next(&e);
      if (!more.ok() || !*more) std::abort();
      (void)checker.Check(e);
    }
  }
  return 0;
}
