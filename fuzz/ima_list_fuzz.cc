// libFuzzer target: the binary measurement-list decoder and everything that renders or
// checks a decoded entry. Any input must end in entries or a clean error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ima/list_format.h"
#include "ima/list_reader.h"
#include "ima/replay.h"
#include "ima/signature_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lim;
  using namespace lim::ima;
  ByteView input(data, size);
  // Detected layout, then each fixed bank in both byte orders.
  std::vector<ListOptions> variants(1);
  for (int id : {2, 4}) {
    for (ByteOrder o : {ByteOrder::kLittle, ByteOrder::kBig}) {
      ListOptions lo;
      lo.bank = *HashAlgoByKernelId(id);
      lo.byte_order = o;
      variants.push_back(lo);
    }
  }
  EntrySignatureChecker sigs({});
  for (const auto& lo : variants) {
    auto reader = ListReader::FromBytes(input, lo, "fuzz");
    if (!reader.ok()) continue;
    auto checker = TemplateDigestChecker::Create((*reader)->bank());
    auto sha256 = BankDigester::Create(Sha256Algo(), (*reader)->bank(), ReplayMode::kPerBank);
    auto padded = BankDigester::Create(Sha256Algo(), (*reader)->bank(), ReplayMode::kPaddedSha1);
    Entry e;
    std::string out;
    uint8_t d[64];
    for (int n = 0; n < 10000; ++n) {
      auto more = (*reader)->Next(&e);
      if (!more.ok() || !*more) break;
      out.clear();
      AppendAsciiLine(e, e.digest, &out);
      out += EntryJson(e, e.digest);
      out += TableEventData(e);
      Bytes computed;
      checker->Check(e, &computed);
      sha256->Compute(e, d);
      padded->Compute(e, d);
      sigs.Check(e);
    }
  }
  return 0;
}
