#include "ima/entry_renderer.h"

#include <algorithm>

#include "ima/list_format.h"

namespace lim::ima {

Result<EntryRenderer> EntryRenderer::Create(RenderFormat format, const HashAlgo& list_bank, const HashAlgo& bank,
                                            ByteOrder binary_order) {
  if (bank.size > sizeof(EntryRenderer::digest_)) {
    return Status::Unsupported(std::string("bank ") + bank.kernel_name + ": digest larger than 64 bytes");
  }
  EntryRenderer r(format, bank, binary_order);
  if (format == RenderFormat::kBinary) {
    r.writer_.emplace(bank, binary_order);  // the writer computes the bank's digest itself
  } else if (!(bank == list_bank)) {
    LIM_ASSIGN_OR_RETURN(auto d, BankDigester::Create(bank, list_bank, ReplayMode::kPerBank));
    r.digester_.emplace(std::move(d));
  }
  return r;
}

ByteView EntryRenderer::BankDigest(const Entry& e) {
  if (!digester_) return e.digest;
  // A violation shows zeros in every bank's file (its extend value is 0xFF).
  if (e.violation) std::fill(digest_, digest_ + bank_.size, 0);
  else digester_->Compute(e, digest_);
  return ByteView(digest_, bank_.size);
}

Status EntryRenderer::Append(const Entry& e, std::string* out) {
  switch (format_) {
    case RenderFormat::kBinary:
      scratch_.clear();
      LIM_RETURN_IF_ERROR(writer_->Append(RecordFromEntry(e, order_), &scratch_));
      out->append(scratch_.begin(), scratch_.end());
      return Status::Ok();
    case RenderFormat::kAscii:
      AppendAsciiLine(e, BankDigest(e), out);
      return Status::Ok();
    case RenderFormat::kJson:
      *out += EntryJson(e, BankDigest(e));
      out->push_back('\n');
      return Status::Ok();
  }
  return Status::Internal("unknown render format");
}

}  // namespace lim::ima
