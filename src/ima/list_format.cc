#include "ima/list_format.h"

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/escape.h"
#include "ima/digest_field.h"

namespace lim::ima {

namespace {

std::string_view UntilNul(ByteView b) {
  std::string_view s = AsChars(b);
  size_t nul = s.find('\0');
  return nul == std::string_view::npos ? s : s.substr(0, nul);
}

bool ReadUint(const Entry& e, ByteView b, uint64_t* v) {
  switch (b.size()) {
    case 1: *v = b[0]; return true;
    case 2: {
      uint16_t x;
      std::memcpy(&x, b.data(), 2);
      *v = e.order == kNativeOrder ? x : ByteSwap(x);
      return true;
    }
    case 4: *v = LoadU32(b.data(), e.order); return true;
    case 8: {
      uint64_t x;
      std::memcpy(&x, b.data(), 8);
      *v = e.order == kNativeOrder ? x : ByteSwap(x);
      return true;
    }
    default: return false;
  }
}

}  // namespace

void AppendFieldAscii(const Entry& e, size_t i, std::string* out) {
  ByteView b = e.fields[i];
  if (b.empty()) return;
  switch (GetFieldInfo(e.tmpl->fields()[i]).format) {
    case FieldFormat::kDigestWithAlgo:
    case FieldFormat::kDigestWithTypeAndAlgo: {
      // kernel: print the prefix up to its NUL ("sha256:"), then hex after ':' and NUL.
      std::string_view prefix = UntilNul(b);
      size_t colon = prefix.rfind(':');
      if (colon == std::string_view::npos) {
        AppendHex(b, out);
        return;
      }
      out->append(prefix);
      size_t skip = colon + 2;
      if (skip < b.size()) AppendHex(b.subspan(skip), out);
      return;
    }
    case FieldFormat::kDigest:
    case FieldFormat::kHex:
      AppendHex(b, out);
      return;
    case FieldFormat::kString:
      out->append(UntilNul(b));
      return;
    case FieldFormat::kUint: {
      uint64_t v;
      if (ReadUint(e, b, &v)) out->append(std::to_string(v));
      return;
    }
  }
}

void AppendAsciiLine(const Entry& e, ByteView digest, std::string* out) {
  char pcr[16];
  int n = std::snprintf(pcr, sizeof pcr, "%2u ", e.pcr);
  out->append(pcr, static_cast<size_t>(n));
  AppendHex(digest, out);
  out->push_back(' ');
  out->append(e.template_name);
  for (size_t i = 0; i < e.num_fields; ++i) {
    out->push_back(' ');
    AppendFieldAscii(e, i, out);
  }
  out->push_back('\n');
}

std::string EntryJson(const Entry& e, ByteView digest) {
  nlohmann::ordered_json j;
  j["index"] = e.index;
  j["pcr"] = e.pcr;
  // Names are bytes, not text: escaped (base/escape.h) so that every one is valid UTF-8 and
  // two different names never render alike ("\\" and "\xNN" undo it), where the JSON
  // library's replacement of bad UTF-8 with U+FFFD would lose bytes.
  j["template"] = Escaped(e.template_name);
  j["template_digest"] = ToHex(digest);
  nlohmann::ordered_json fields = nlohmann::ordered_json::object();
  for (size_t i = 0; i < e.num_fields; ++i) {
    FieldId id = e.tmpl->fields()[i];
    const FieldInfo& info = GetFieldInfo(id);
    ByteView b = e.fields[i];
    nlohmann::ordered_json v;
    switch (info.format) {
      case FieldFormat::kDigestWithAlgo:
      case FieldFormat::kDigestWithTypeAndAlgo: {
        if (b.empty()) {
          v = "";
          break;
        }
        auto df = ParseDigestField(b, id == FieldId::kDNgV2);
        if (!df.ok()) {
          v = ToHex(b);
          break;
        }
        if (id == FieldId::kDNgV2) v["type"] = std::string(df->type);
        v["algo"] = std::string(df->algo_name);
        v["digest"] = ToHex(df->digest);
        break;
      }
      case FieldFormat::kString:
        v = Escaped(UntilNul(b));
        break;
      case FieldFormat::kUint: {
        uint64_t x;
        if (ReadUint(e, b, &x)) v = x;
        else v = ToHex(b);
        break;
      }
      case FieldFormat::kDigest:
      case FieldFormat::kHex:
        v = ToHex(b);
        break;
    }
    fields[info.name] = std::move(v);
  }
  j["fields"] = std::move(fields);
  if (e.violation) j["violation"] = true;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string TableEventData(const Entry& e) { return "[IMA:" + Escaped(e.name()) + "]"; }

}  // namespace lim::ima
