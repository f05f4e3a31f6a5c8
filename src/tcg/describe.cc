#include "tcg/describe.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "crypto/hash_algo.h"
#include "tcg/efi.h"
#include "tcg/event_type.h"

namespace lim::tcg {

namespace {

constexpr char kStartupLocality[] = "StartupLocality";

bool Printable(ByteView d) {
  if (d.empty()) return false;
  for (uint8_t c : d) {
    if (c == 0 || c == '\n' || c == '\r' || c == '\t') continue;
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// Text with control characters escaped, trailing NULs dropped.
std::string Clean(std::string_view s) {
  while (!s.empty() && s.back() == '\0') s.remove_suffix(1);
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::string TextOrHex(ByteView d) {
  if (LooksUtf16(d)) return Clean(Utf16ToUtf8(d));
  if (Printable(d)) return Clean(AsChars(d));
  return ToHex(d);
}

std::string CleanSpecId(ByteView d) {
  std::string sig(AsChars(d.first(std::min<size_t>(15, d.size()))));
  return Clean(sig);
}

std::string Hex0x(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string DescribeVariable(const Event& e) {
  auto v = ParseUefiVariable(e.data);
  if (!v) return ToHex(e.data);
  std::string s = v->name;
  std::string guid = GuidToString(v->guid);
  const std::string& n = v->name;
  if (n == "SecureBoot" || n == "MokListTrusted" || n == "SetupMode" || n == "AuditMode" || n == "DeployedMode" ||
      n == "MokSBState") {
    return s + "=" + (v->data.empty() ? "(empty)" : std::to_string(v->data[0]));
  }
  if (n == "PK" || n == "KEK" || n == "db" || n == "dbx" || n == "MokList" || n == "MokListX" || n == "dbt" ||
      n == "dbr") {
    bool complete = true;
    auto lists = ParseSignatureLists(v->data, &complete);
    if (!lists.empty() || v->data.empty()) {
      size_t certs = 0, hashes = 0, other = 0;
      for (const auto& l : lists) {
        std::string t = SignatureTypeName(l.type);
        if (t == "EFI_CERT_X509_GUID") certs += l.signatures.size();
        else if (t == "EFI_CERT_SHA256_GUID" || t == "EFI_CERT_SHA1_GUID") hashes += l.signatures.size();
        else other += l.signatures.size();
      }
      s += " (" + std::to_string(certs) + " certificates, " + std::to_string(hashes) + " hashes";
      if (other) s += ", " + std::to_string(other) + " other";
      if (!complete) s += ", malformed tail";
      return s + ")";
    }
  }
  if (e.type == kEvEfiVariableAuthority && v->data.size() > 16 && (n == "db" || n == "Shim" || n == "MokList")) {
    return s + " owner " + GuidToString(v->data.first(16)) + " " + std::to_string(v->data.size() - 16) + " bytes";
  }
  if (n == "BootOrder" && v->data.size() % 2 == 0) {
    s += "=";
    char buf[16];
    for (size_t i = 0; i + 1 < v->data.size(); i += 2) {
      std::snprintf(buf, sizeof buf, "%sBoot%04X", i ? "," : "", v->data[i] | (v->data[i + 1] << 8));
      s += buf;
    }
    return s;
  }
  if (n.size() == 8 && n.compare(0, 4, "Boot") == 0) {
    if (auto lo = ParseLoadOption(v->data)) {
      return s + " \"" + Clean(lo->description) + "\" " + DevicePathToText(lo->file_path_list);
    }
  }
  if (n == "SbatLevel" && Printable(v->data)) return s + "=" + Clean(AsChars(v->data));
  if (v->data.empty()) return s + " (" + guid + ", empty)";
  return s + " (" + guid + ") " + ToHex(v->data);
}

}  // namespace

std::string DescribeEventData(const Event& e) {
  const ByteView d = e.data;
  if (e.spec_id_header) return std::string(CleanSpecId(d));
  switch (e.type) {
    case kEvNoAction:
      if (d.size() > sizeof kStartupLocality && std::memcmp(d.data(), kStartupLocality, sizeof kStartupLocality) == 0) {
        return "StartupLocality=" + std::to_string(d[sizeof kStartupLocality]);
      }
      if (d.size() >= 16 && Printable(d.first(15))) return Clean(AsChars(d.first(16))) + " " + ToHex(d.subspan(16));
      return ToHex(d);
    case kEvSCrtmVersion:
      return TextOrHex(d);
    case kEvPostCode:
    case kEvSCrtmContents:
    case kEvEfiPlatformFirmwareBlob:
      if (d.size() == 16) {
        auto b = ParseFirmwareBlob(d);
        return "base " + Hex0x(b->base) + " length " + Hex0x(b->length);
      }
      return TextOrHex(d);
    case kEvSeparator:
      if (d.size() == 4) {
        uint32_t v = LoadU32(d.data(), ByteOrder::kLittle);
        if (v == 0) return "00000000";
        if (v == 0xffffffff) return "ffffffff (firmware error)";
        return ToHex(d) + " (error)";
      }
      return ToHex(d);
    case kEvAction:
    case kEvEfiAction:
    case kEvEfiHcrtmEvent:
    case kEvCompactHash:
    case kEvIpl:
    case kEvGrubAction:
    case kEvGrubKernelOpt:
    case kEvGrubKernel:
    case kEvGrubInitrd:
    case kEvGrubModule:
      return TextOrHex(d);
    case kEvEfiVariableDriverConfig:
    case kEvEfiVariableBoot:
    case kEvEfiVariableBoot2:
    case kEvEfiVariableAuthority:
      return DescribeVariable(e);
    case kEvEfiBootServicesApplication:
    case kEvEfiBootServicesDriver:
    case kEvEfiRuntimeServicesDriver:
      if (auto im = ParseImageLoadEvent(d)) {
        std::string p = DevicePathToText(im->device_path);
        return p.empty() ? "image at " + Hex0x(im->location) + " length " + std::to_string(im->length) : p;
      }
      return ToHex(d);
    case kEvEfiGptEvent:
      if (d.size() >= 100) {
        uint64_t n = LoadU32(d.data() + 92, ByteOrder::kLittle) |
                     (static_cast<uint64_t>(LoadU32(d.data() + 96, ByteOrder::kLittle)) << 32);
        return "disk " + GuidToString(d.subspan(56, 16)) + ", " + std::to_string(n) + " partitions";
      }
      return ToHex(d);
    case kEvEfiPlatformFirmwareBlob2:
      // UEFI_PLATFORM_FIRMWARE_BLOB2: u8 description size, description, base, length.
      if (!d.empty() && d.size() >= 1u + d[0] + 16u) {
        ByteView desc = d.subspan(1, d[0]);
        auto b = ParseFirmwareBlob(d.subspan(1u + d[0]));
        return Clean(AsChars(desc)) + " base " + Hex0x(b->base) + " length " + Hex0x(b->length);
      }
      return ToHex(d);
    case kEvEfiHandoffTables2:
      // UEFI_HANDOFF_TABLE_POINTERS2: u8 description size, description, table count, tables.
      if (!d.empty() && d.size() >= 1u + d[0] + 8u) {
        ByteView desc = d.subspan(1, d[0]);
        uint64_t n = LoadU32(d.data() + 1 + d[0], ByteOrder::kLittle);
        return Clean(AsChars(desc)) + ", " + std::to_string(n) + " tables";
      }
      return ToHex(d);
    case kEvEfiHandoffTables:
      if (d.size() >= 8) {
        uint64_t n = LoadU32(d.data(), ByteOrder::kLittle);
        std::string s = std::to_string(n) + " tables";
        for (uint64_t i = 0; i < n && 8 + (i + 1) * 24 <= d.size(); ++i) s += " " + GuidToString(d.subspan(8 + i * 24, 16));
        return s;
      }
      return ToHex(d);
    default:
      return TextOrHex(d);
  }
}

std::string TaggedEventText(const Event& e) {
  std::string detail = DescribeEventData(e);
  std::string tag;
  if (IsGrubLegacyType(e.type)) {
    tag = EventTypeName(e.type);  // "GRUB:KERNEL"
  } else if (e.type == kEvIpl && (e.pcr == 8 || e.pcr == 9)) {
    // GRUB 2 measures its commands and command lines into PCR 8 and files into PCR 9.
    static const std::pair<const char*, const char*> kPrefixes[] = {
        {"grub_cmd: ", "GRUB:CMD"}, {"kernel_cmdline: ", "GRUB:KERNEL_CMDLINE"}, {"grub_kernel_cmdline ", "GRUB:KERNEL_CMDLINE"},
        {"module_cmdline: ", "GRUB:MODULE_CMDLINE"}};
    tag = e.pcr == 9 ? "GRUB:FILE" : "GRUB:IPL";
    for (const auto& [prefix, name] : kPrefixes) {
      if (detail.compare(0, std::strlen(prefix), prefix) == 0) {
        tag = name;
        detail = detail.substr(std::strlen(prefix));
        break;
      }
    }
    if (LooksUtf16(e.data)) tag = e.pcr == 8 ? "SD-BOOT:CMDLINE" : tag;
  } else if (e.type == kEvIpl && e.pcr == 12) {
    tag = "SD-BOOT:CMDLINE";
  } else if (e.type == kEvIpl && e.pcr == 14) {
    tag = "SHIM:" + std::string("EV_IPL");
  } else {
    tag = "BIOS:" + EventTypeName(e.type);
  }
  if (detail.empty()) return "[" + tag + "]";
  return "[" + tag + " " + detail + "]";
}

std::vector<TableRow> EventLogTableRows(const EventLog& log, uint16_t bank_alg, size_t first_index) {
  std::vector<TableRow> rows;
  rows.reserve(log.events.size());
  for (const auto& e : log.events) {
    TableRow r;
    r.index = first_index + e.index;
    r.pcr = e.pcr;
    r.type = e.type;
    ByteView d = e.DigestFor(bank_alg);
    if (e.spec_id_header && d.empty()) d = e.digests.front().digest;
    r.digest_hex = ToHex(d);
    r.text = TaggedEventText(e);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string TableHeader() { return "  Idx PCR Type       Digest EventData"; }

std::string FormatTableRow(const TableRow& row) {
  char head[64];
  std::snprintf(head, sizeof head, "%5zu %3u 0x%08x ", row.index, row.pcr, row.type);
  std::string s = head;
  s += row.digest_hex.empty() ? "-" : row.digest_hex;
  s += ' ';
  s += row.text;
  return s;
}

std::string EventToJson(const Event& e, DigestCheck check) {
  nlohmann::ordered_json j;
  j["index"] = e.index;
  j["offset"] = e.offset;
  j["pcr"] = e.pcr;
  j["type"] = e.type;
  j["type_name"] = EventTypeName(e.type);
  nlohmann::ordered_json digests = nlohmann::ordered_json::object();
  for (const auto& d : e.digests) digests[TpmBankName(d.alg)] = ToHex(d.digest);
  j["digests"] = std::move(digests);
  j["data"] = ToHex(e.data);
  j["text"] = TaggedEventText(e);
  j["digest_check"] = check == DigestCheck::kMatches ? "match" : check == DigestCheck::kMismatch ? "mismatch" : "none";
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lim::tcg
