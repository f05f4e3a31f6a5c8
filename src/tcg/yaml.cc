#include "tcg/yaml.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "base/bytes.h"
#include "base/escape.h"
#include "crypto/hash_algo.h"
#include "tcg/efi.h"
#include "tcg/event_type.h"

namespace lim::tcg {

namespace {

constexpr char kStartupLocality[] = "StartupLocality";

void Num(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}
void Hex0x(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  out->append("0x");
  out->append(buf, r.ptr);
}

// tpm2_alg_util_algtostr names for hash algorithms.
std::string AlgName(uint16_t alg) {
  switch (alg) {
    case 0x0004: return "sha1";
    case 0x000B: return "sha256";
    case 0x000C: return "sha384";
    case 0x000D: return "sha512";
    case 0x0012: return "sm3_256";
    case 0x0027: return "sha3_256";
    case 0x0028: return "sha3_384";
    case 0x0029: return "sha3_512";
    default: return TpmBankName(alg);
  }
}

// printf("%.*s"): the bytes up to the first NUL.
std::string_view CString(ByteView d) {
  const void* nul = std::memchr(d.data(), 0, d.size());
  size_t n = nul ? static_cast<size_t>(static_cast<const uint8_t*>(nul) - d.data()) : d.size();
  return AsChars(d.first(n));
}

void HexValue(std::string_view indent_key, ByteView d, std::string* out) {
  out->append(indent_key);
  out->append("\"");
  AppendHex(d, out);
  out->append("\"\n");
}

void EscapeByte(uint8_t c, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->append("\\x");
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 15]);
}

// The escaped, quoted lines tpm2_eventlog prints for EV_IPL strings (split at '\n').
void SplitString(std::string_view indent, ByteView d, std::string* out) {
  size_t i = 0;
  do {
    const void* nl = std::memchr(d.data() + i, '\n', d.size() - i);
    size_t end = nl ? static_cast<size_t>(static_cast<const uint8_t*>(nl) - d.data()) : d.size();
    out->append(indent);
    out->push_back('"');
    for (size_t j = i; j < end; ++j) {
      uint8_t c = d[j];
      switch (c) {
        case 0: out->append("\\0"); break;
        case '\a': out->append("\\a"); break;
        case '\b': out->append("\\b"); break;
        case '\t': out->append("\\t"); break;
        case '\v': out->append("\\v"); break;
        case '\f': out->append("\\f"); break;
        case '\r': out->append("\\r"); break;
        case 0x1b: out->append("\\e"); break;
        case '\\': out->append("\\\\"); break;
        case '"': out->append("\\\""); break;
        case '\'': out->append("\\'"); break;
        default:
          if (c < 0x20 || c == 0x7f) {
            EscapeByte(c, out);
          } else if (c < 0x80) {
            out->push_back(static_cast<char>(c));
          } else if (size_t n = Utf8SequenceLength(d.subspan(j, end - j)); n > 0) {
            out->append(AsChars(d.subspan(j, n)));  // valid UTF-8 passes through
            j += n - 1;
          } else {
            // tpm2-tools 5.4 copies such bytes raw, which makes the document invalid YAML
            // (and UTF-8); lim escapes them.
            EscapeByte(c, out);
          }
      }
    }
    out->append("\"\n");
    i = nl ? end + 1 : d.size();
  } while (i < d.size());
}

void DevicePath(std::string_view key, ByteView raw_all, ByteView path, const YamlOptions& o, std::string* out) {
  out->append(key);
  out->push_back('\'');
  if (o.raw_device_paths) {
    AppendHex(raw_all, out);
  } else {
    std::string text = DevicePathToText(path);
    // Single-quoted YAML: a quote is doubled.
    for (char c : text) {
      if (c == '\'') out->push_back('\'');
      out->push_back(c);
    }
  }
  out->append("'\n");
}

bool IsBootNumber(const std::string& n) {
  if (n.size() != 8 || n.compare(0, 4, "Boot") != 0) return false;
  for (size_t i = 4; i < 8; ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(n[i]))) return false;
  }
  return true;
}

void EnabledFlag(const UefiVariable& v, std::string* out) {
  out->append("    VariableData:\n      Enabled: ");
  out->append(v.data_length == 0 || (!v.data.empty() && v.data[0] == 0) ? "'No'\n" : "'Yes'\n");
}

void UefiVar(const Event& e, const YamlOptions& o, std::string* out) {
  auto v = ParseUefiVariable(e.data);
  if (!v) {  // tpm2_eventlog gives up on the whole log here; lim shows the bytes
    HexValue("  Event: ", e.data, out);
    return;
  }
  out->append("  Event:\n    VariableName: ");
  AppendGuid(v->guid, out);
  out->append("\n    UnicodeNameLength: ");
  Num(v->name_length, out);
  out->append("\n    VariableDataLength: ");
  Num(v->data_length, out);
  out->append("\n    UnicodeName: ");
  out->append(v->name);
  out->push_back('\n');
  const std::string& n = v->name;
  if (o.version == 2) {
    if (e.type == kEvEfiVariableDriverConfig) {
      if (n == "PK" || n == "KEK" || n == "db" || n == "dbx") {
        out->append("    VariableData:\n");
        bool complete = true;
        // tpm2_eventlog walks to the end of the event, not of VariableDataLength.
        size_t start = 32 + static_cast<size_t>(v->name_length) * 2;
        for (const auto& l : ParseSignatureLists(e.data.subspan(start), &complete)) {
          out->append("    - SignatureType: ");
          AppendGuid(l.type, out);
          out->append("\n      SignatureListSize: ");
          Num(l.list_size, out);
          out->append("\n      SignatureHeaderSize: ");
          Num(l.header_size, out);
          out->append("\n      SignatureSize: ");
          Num(l.signature_size, out);
          out->append("\n      Keys:\n");
          for (const auto& s : l.signatures) {
            out->append("      - SignatureOwner: ");
            AppendGuid(s.owner, out);
            out->append("\n        SignatureData: ");
            AppendHex(s.data, out);
            out->push_back('\n');
          }
        }
        return;
      }
      if (n == "SecureBoot" && v->data_length <= 1) {
        EnabledFlag(*v, out);
        return;
      }
    } else if (e.type == kEvEfiVariableAuthority) {
      if (n == "MokListTrusted" && v->data_length <= 1) {
        EnabledFlag(*v, out);
        return;
      }
      if ((n == "db" || n == "Shim") && v->data.size() >= 16 && !v->data_truncated) {
        out->append("    VariableData:\n    - SignatureOwner: ");
        AppendGuid(v->data.first(16), out);
        out->append("\n      SignatureData: ");
        AppendHex(v->data.subspan(16), out);
        out->push_back('\n');
        return;
      }
      if (n == "SbatLevel") {
        out->append("    VariableData:\n      String: |-\n");
        SplitString("        ", v->data, out);
        return;
      }
    } else if (e.type == kEvEfiVariableBoot || e.type == kEvEfiVariableBoot2) {
      if (n == "BootOrder" && v->data.size() % 2 == 0 && !v->data_truncated) {
        out->append("    VariableData:\n");
        char buf[16];
        for (size_t i = 0; i + 1 < v->data.size(); i += 2) {
          std::snprintf(buf, sizeof buf, "    - Boot%04x\n", v->data[i] | (v->data[i + 1] << 8));
          out->append(buf);
        }
        return;
      }
      if (IsBootNumber(n)) {
        if (auto lo = ParseLoadOption(v->data)) {
          out->append("    VariableData:\n      Enabled: ");
          out->append((lo->attributes & 1) ? "'Yes'\n" : "'No'\n");
          out->append("      FilePathListLength: ");
          Num(lo->file_path_list_length, out);
          out->append("\n      Description: \"");
          out->append(lo->description);
          out->append("\"\n");
          ByteView all = v->data.subspan(lo->file_path_offset);
          // The raw form covers the rest of VariableData (tpm2_eventlog's arithmetic).
          DevicePath("      DevicePath: ", all, lo->file_path_list, o, out);
          return;
        }
      }
    }
  }
  if (v->data_length != 0) HexValue("    VariableData: ", v->data, out);
}

void EventBody(const Event& e, const YamlOptions& o, std::string* out) {
  const ByteView d = e.data;
  switch (e.type) {
    case kEvEfiVariableDriverConfig:
    case kEvEfiVariableBoot:
    case kEvEfiVariableBoot2:
    case kEvEfiVariableAuthority:
      UefiVar(e, o, out);
      return;
    case kEvPostCode:
      if (d.size() == 16) break;  // a UEFI_PLATFORM_FIRMWARE_BLOB, below
      out->append("  Event: |-\n    ");
      out->append(CString(d));
      out->push_back('\n');
      return;
    case kEvEfiAction:
      out->append("  Event: |-\n    ");
      out->append(CString(d));
      out->push_back('\n');
      return;
    case kEvIpl:
      out->append("  Event:\n    String: |-\n");
      SplitString("      ", d, out);
      return;
    case kEvEfiBootServicesApplication:
    case kEvEfiBootServicesDriver:
    case kEvEfiRuntimeServicesDriver:
      if (auto im = ParseImageLoadEvent(d)) {
        out->append("  Event:\n    ImageLocationInMemory: ");
        Hex0x(im->location, out);
        out->append("\n    ImageLengthInMemory: ");
        Num(im->length, out);
        out->append("\n    ImageLinkTimeAddress: ");
        Hex0x(im->link_time_address, out);
        out->append("\n    LengthOfDevicePath: ");
        Num(im->device_path_length, out);
        out->push_back('\n');
        DevicePath("    DevicePath: ", d.subspan(32), im->device_path, o, out);
        return;
      }
      break;
    case kEvEfiGptEvent:
      if (o.version == 2 && d.size() >= 100) {
        const uint8_t* h = d.data();
        auto u32 = [&](size_t off) { return LoadU32(h + off, ByteOrder::kLittle); };
        auto u64 = [&](size_t off) { return u32(off) | (static_cast<uint64_t>(u32(off + 4)) << 32); };
        out->append("  Event:\n    Header:\n      Signature: \"");
        out->append(CString(d.first(8)));
        out->append("\"\n      Revision: ");
        Hex0x(u32(8), out);
        out->append("\n      HeaderSize: ");
        Num(u32(12), out);
        out->append("\n      HeaderCRC32: ");
        Hex0x(u32(16), out);
        out->append("\n      MyLBA: ");
        Hex0x(u64(24), out);
        out->append("\n      AlternateLBA: ");
        Hex0x(u64(32), out);
        out->append("\n      FirstUsableLBA: ");
        Hex0x(u64(40), out);
        out->append("\n      LastUsableLBA: ");
        Hex0x(u64(48), out);
        out->append("\n      DiskGUID: ");
        AppendGuid(d.subspan(56, 16), out);
        out->append("\n      PartitionEntryLBA: ");
        Hex0x(u64(72), out);
        out->append("\n      NumberOfPartitionEntry: ");
        Num(u32(80), out);
        out->append("\n      SizeOfPartitionEntry: ");
        Num(u32(84), out);
        out->append("\n      PartitionEntryArrayCRC32: ");
        Hex0x(u32(88), out);
        uint64_t n = u64(92);
        out->append("\n    NumberOfPartitions: ");
        Num(n, out);
        out->append("\n    Partitions:\n");
        size_t pos = 100;
        for (uint64_t i = 0; i < n && d.size() - pos >= 128; ++i, pos += 128) {
          const uint8_t* p = d.data() + pos;
          out->append("    - PartitionTypeGUID: ");
          AppendGuid(ByteView(p, 16), out);
          out->append("\n      UniquePartitionGUID: ");
          AppendGuid(ByteView(p + 16, 16), out);
          out->append("\n      StartingLBA: ");
          Hex0x(LoadU32(p + 32, ByteOrder::kLittle) | (static_cast<uint64_t>(LoadU32(p + 36, ByteOrder::kLittle)) << 32), out);
          out->append("\n      EndingLBA: ");
          Hex0x(LoadU32(p + 40, ByteOrder::kLittle) | (static_cast<uint64_t>(LoadU32(p + 44, ByteOrder::kLittle)) << 32), out);
          out->append("\n      Attributes: ");
          Hex0x(LoadU32(p + 48, ByteOrder::kLittle) | (static_cast<uint64_t>(LoadU32(p + 52, ByteOrder::kLittle)) << 32), out);
          out->append("\n      PartitionName: \"");
          out->append(Utf16ToUtf8(ByteView(p + 56, 72)));
          out->append("\"\n");
        }
        return;
      }
      break;
    case kEvNoAction:
      if (o.version == 2 && d.size() > sizeof kStartupLocality &&
          std::memcmp(d.data(), kStartupLocality, sizeof kStartupLocality) == 0) {
        out->append("  Event:\n    StartupLocality: ");
        Num(d[sizeof kStartupLocality], out);
        out->push_back('\n');
        return;
      }
      break;
    default:
      break;
  }
  if (e.type == kEvPostCode || e.type == kEvSCrtmContents || e.type == kEvEfiPlatformFirmwareBlob) {
    if (auto b = ParseFirmwareBlob(d)) {
      out->append("  Event:\n    BlobBase: ");
      Hex0x(b->base, out);
      out->append("\n    BlobLength: ");
      Hex0x(b->length, out);
      out->push_back('\n');
      return;
    }
  }
  HexValue("  Event: ", d, out);
}

void SpecId(const Event& e, const SpecIdEvent& s, std::string* out) {
  out->append("- EventNum: 0\n  PCRIndex: ");
  Num(e.pcr, out);
  out->append("\n  EventType: ");
  out->append(Tpm2ToolsEventTypeName(e.type));
  out->append("\n  Digest: \"");
  AppendHex(e.digests.front().digest, out);
  out->append("\"\n  EventSize: ");
  Num(s.event_size, out);
  out->append("\n  SpecID:\n  - Signature: ");
  out->append(s.signature);
  out->append("\n    platformClass: ");
  Num(s.platform_class, out);
  out->append("\n    specVersionMinor: ");
  Num(s.spec_version_minor, out);
  out->append("\n    specVersionMajor: ");
  Num(s.spec_version_major, out);
  out->append("\n    specErrata: ");
  Num(s.spec_errata, out);
  out->append("\n    uintnSize: ");
  Num(s.uintn_size, out);
  out->append("\n    numberOfAlgorithms: ");
  Num(s.number_of_algorithms, out);
  out->append("\n    Algorithms:\n");
  for (size_t i = 0; i < s.algorithms.size(); ++i) {
    out->append("    - Algorithm[");
    Num(i, out);
    out->append("]:\n      algorithmId: ");
    out->append(AlgName(s.algorithms[i].alg));
    out->append("\n      digestSize: ");
    Num(s.algorithms[i].digest_size, out);
    out->push_back('\n');
  }
  out->append("    vendorInfoSize: ");
  Num(s.vendor_info_size, out);
  out->push_back('\n');
  if (s.vendor_info_size) HexValue("    vendorInfo: ", s.vendor_info, out);
}

}  // namespace

void AppendYamlHeader(const YamlOptions& o, std::string* out) {
  out->append("---\nversion: ");
  Num(static_cast<uint64_t>(o.version), out);
  out->append("\nevents:\n");
}

void AppendYamlEvent(const Event& e, const YamlOptions& o, std::string* out) {
  out->append("- EventNum: ");
  Num(e.index, out);
  out->append("\n  PCRIndex: ");
  Num(e.pcr, out);
  out->append("\n  EventType: ");
  out->append(Tpm2ToolsEventTypeName(e.type));
  out->append("\n  DigestCount: ");
  Num(e.digests.size(), out);
  out->append("\n  Digests:\n");
  for (const auto& d : e.digests) {
    out->append("  - AlgorithmId: ");
    out->append(AlgName(d.alg));
    out->append("\n    Digest: \"");
    AppendHex(d.digest, out);
    out->append("\"\n");
  }
  out->append("  EventSize: ");
  Num(e.data.size(), out);
  out->push_back('\n');
  if (!e.data.empty()) EventBody(e, o, out);
}

void AppendYamlPcrs(const EventLog& log, const ReplayResult& replay, std::string* out) {
  out->append("pcrs:\n");
  // tpm2_eventlog lists a PCR once any event (EV_NO_ACTION included, in a crypto-agile log)
  // carried a digest for it, in the order sha1, sha256, sha384, sha512, sm3_256.
  static const uint16_t kOrder[] = {0x0004, 0x000B, 0x000C, 0x000D, 0x0012};
  std::vector<uint16_t> order(std::begin(kOrder), std::end(kOrder));
  for (const auto& b : replay.pcrs.banks()) {
    if (std::find(order.begin(), order.end(), b.tpm_alg) == order.end()) order.push_back(b.tpm_alg);
  }
  for (uint16_t alg : order) {
    const PcrBank* bank = replay.pcrs.FindAlg(alg);
    if (!bank) continue;
    uint32_t used = 0;
    for (const auto& e : log.events) {
      if (e.spec_id_header || e.pcr >= kNumPcrs) continue;
      if (log.format == LogFormat::kTcg12 && e.type == kEvNoAction) continue;
      if (!e.DigestFor(alg).empty()) used |= 1u << e.pcr;
    }
    if (!used) continue;
    out->append("  ");
    out->append(AlgName(alg));
    out->append(":\n");
    for (int i = 0; i < kNumPcrs; ++i) {
      if (!(used & (1u << i))) continue;
      out->append("    ");
      Num(static_cast<uint64_t>(i), out);
      out->append(i < 10 ? "  : 0x" : " : 0x");
      AppendHex(bank->pcrs[i], out);
      out->push_back('\n');
    }
  }
}

void AppendYamlEventOf(const EventLog& log, const Event& e, const YamlOptions& o, std::string* out) {
  if (e.spec_id_header && log.spec_id) SpecId(e, *log.spec_id, out);
  else AppendYamlEvent(e, o, out);
}

void AppendYaml(const EventLog& log, const ReplayResult& replay, const YamlOptions& o, std::string* out) {
  AppendYamlHeader(o, out);
  for (const auto& e : log.events) AppendYamlEventOf(log, e, o, out);
  AppendYamlPcrs(log, replay, out);
}

}  // namespace lim::tcg
