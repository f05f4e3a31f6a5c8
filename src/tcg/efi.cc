#include "tcg/efi.h"

#include <cstdio>
#include <cstring>

#include "base/bytes.h"

namespace lim::tcg {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void AppendHexByte(uint8_t b, std::string* out) {
  out->push_back(kHexDigits[b >> 4]);
  out->push_back(kHexDigits[b & 15]);
}

uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t U32(const uint8_t* p) { return LoadU32(p, ByteOrder::kLittle); }
uint64_t U64(const uint8_t* p) { return U32(p) | (static_cast<uint64_t>(U32(p + 4)) << 32); }

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string Fmt(const char* fmt, unsigned long long a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, a);
  return buf;
}

const uint8_t kGlobalVariable[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                     0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
const uint8_t kImageSecurityDb[16] = {0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45,
                                      0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f};

bool GuidEquals(ByteView g, const uint8_t* want) { return g.size() == 16 && std::memcmp(g.data(), want, 16) == 0; }

// One device-path node to text; false when the node is not understood (caller falls back to
// the generic form).
bool NodeToText(uint8_t type, uint8_t sub, ByteView d, std::string* out) {
  auto need = [&](size_t n) { return d.size() >= n; };
  switch (type) {
    case 0x01:  // hardware
      if (sub == 0x01 && need(2)) {
        *out += "Pci(" + Fmt("0x%llx", d[1]) + "," + Fmt("0x%llx", d[0]) + ")";
        return true;
      }
      if (sub == 0x04 && need(16)) {
        *out += "VenHw(" + GuidToString(d.first(16));
        if (d.size() > 16) {
          out->push_back(',');
          AppendHex(d.subspan(16), out);
        }
        *out += ")";
        return true;
      }
      if (sub == 0x05 && need(4)) {
        *out += "Ctrl(" + Fmt("0x%llx", U32(d.data())) + ")";
        return true;
      }
      if (sub == 0x03 && need(20)) {
        *out += "MemoryMapped(" + Fmt("0x%llx", U32(d.data())) + "," + Fmt("0x%llx", U64(d.data() + 4)) + "," +
                Fmt("0x%llx", U64(d.data() + 12)) + ")";
        return true;
      }
      return false;
    case 0x02:  // ACPI
      if (sub == 0x01 && need(8)) {
        uint32_t hid = U32(d.data()), uid = U32(d.data() + 4);
        if (hid == 0x0a0341d0) {
          *out += "PciRoot(" + Fmt("0x%llx", uid) + ")";
        } else if (hid == 0x0a0841d0) {
          *out += "PcieRoot(" + Fmt("0x%llx", uid) + ")";
        } else if ((hid & 0xffff) == 0x41d0) {
          *out += "Acpi(PNP" + Fmt("%04llx", hid >> 16) + "," + Fmt("0x%llx", uid) + ")";
        } else {
          *out += "Acpi(" + Fmt("0x%08llx", hid) + "," + Fmt("0x%llx", uid) + ")";
        }
        return true;
      }
      return false;
    case 0x03:  // messaging
      switch (sub) {
        case 0x01:
          if (!need(4)) return false;
          *out += "Ata(" + std::to_string(d[0]) + "," + std::to_string(d[1]) + "," + std::to_string(U16(d.data() + 2)) + ")";
          return true;
        case 0x02:
          if (!need(4)) return false;
          *out += "SCSI(" + std::to_string(U16(d.data())) + "," + std::to_string(U16(d.data() + 2)) + ")";
          return true;
        case 0x05:
          if (!need(2)) return false;
          *out += "USB(" + std::to_string(d[0]) + "," + std::to_string(d[1]) + ")";
          return true;
        case 0x0b: {
          if (!need(33)) return false;
          uint8_t if_type = d[32];
          size_t n = (if_type == 0 || if_type == 1) ? 6 : 32;
          *out += "MAC(";
          AppendHex(d.first(n), out);
          *out += "," + std::to_string(if_type) + ")";
          return true;
        }
        case 0x0c: {
          if (!need(12)) return false;
          char buf[96];
          std::snprintf(buf, sizeof buf, "IPv4(%u.%u.%u.%u,%u.%u.%u.%u)", d[4], d[5], d[6], d[7], d[0], d[1], d[2],
                        d[3]);
          *out += buf;
          return true;
        }
        case 0x0a:
          if (!need(16)) return false;
          *out += "VenMsg(" + GuidToString(d.first(16));
          if (d.size() > 16) {
            out->push_back(',');
            AppendHex(d.subspan(16), out);
          }
          *out += ")";
          return true;
        case 0x12:
          if (!need(6)) return false;
          *out += "Sata(" + std::to_string(U16(d.data())) + "," + std::to_string(U16(d.data() + 2)) + "," +
                  std::to_string(U16(d.data() + 4)) + ")";
          return true;
        case 0x17: {
          if (!need(12)) return false;
          *out += "NVMe(" + Fmt("0x%llx", U32(d.data())) + ",";
          for (int i = 0; i < 8; ++i) {
            if (i) out->push_back('-');
            AppendHexByte(d[4 + i], out);
          }
          *out += ")";
          return true;
        }
        case 0x18:
          *out += "Uri(" + std::string(AsChars(d)) + ")";
          return true;
        default:
          return false;
      }
    case 0x04:  // media
      switch (sub) {
        case 0x01: {
          if (!need(38)) return false;
          uint32_t part = U32(d.data());
          uint64_t start = U64(d.data() + 4), size = U64(d.data() + 12);
          ByteView sig = d.subspan(20, 16);
          uint8_t fmt = d[36], sig_type = d[37];
          *out += "HD(" + std::to_string(part) + ",";
          if (fmt == 0x02 && sig_type == 0x02) {
            *out += "GPT," + GuidToString(sig);
          } else if (sig_type == 0x01) {
            *out += "MBR," + Fmt("0x%08llx", U32(sig.data()));
          } else {
            *out += Fmt("%llu", fmt) + ",0";
          }
          *out += "," + Fmt("0x%llx", start) + "," + Fmt("0x%llx", size) + ")";
          return true;
        }
        case 0x02:
          if (!need(20)) return false;
          *out += "CDROM(" + Fmt("0x%llx", U32(d.data())) + "," + Fmt("0x%llx", U64(d.data() + 4)) + "," +
                  Fmt("0x%llx", U64(d.data() + 12)) + ")";
          return true;
        case 0x03:
          if (!need(16)) return false;
          *out += "VenMedia(" + GuidToString(d.first(16)) + ")";
          return true;
        case 0x04:
          *out += "File(" + Utf16ToUtf8(d) + ")";
          return true;
        case 0x06:
          if (!need(16)) return false;
          *out += "FvFile(" + GuidToString(d.first(16)) + ")";
          return true;
        case 0x07:
          if (!need(16)) return false;
          *out += "FvVol(" + GuidToString(d.first(16)) + ")";
          return true;
        case 0x08:
          if (!need(20)) return false;  // reserved u32, start u64, end u64
          *out += "Offset(" + Fmt("0x%llx", U64(d.data() + 4)) + "," + Fmt("0x%llx", U64(d.data() + 12)) + ")";
          return true;
        default:
          return false;
      }
    case 0x05:  // BIOS boot specification
      if (sub == 0x01 && need(4)) {
        uint16_t dev = U16(d.data());
        static const char* kNames[] = {nullptr, "Floppy", "HD", "CDROM", "PCMCIA", "USB", "Network"};
        *out += "BBS(";
        if (dev >= 1 && dev <= 6) *out += kNames[dev];
        else *out += Fmt("0x%llx", dev);
        std::string desc(AsChars(d.subspan(4)));
        if (auto nul = desc.find('\0'); nul != std::string::npos) desc.resize(nul);
        *out += "," + desc + "," + Fmt("0x%llx", U16(d.data() + 2)) + ")";
        return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace

void AppendGuid(ByteView g, std::string* out) {
  if (g.size() < 16) {
    AppendHex(g, out);
    return;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-", U32(g.data()), U16(g.data() + 4), U16(g.data() + 6));
  *out += buf;
  AppendHexByte(g[8], out);
  AppendHexByte(g[9], out);
  out->push_back('-');
  for (int i = 10; i < 16; ++i) AppendHexByte(g[i], out);
}

std::string GuidToString(ByteView g) {
  std::string s;
  AppendGuid(g, &s);
  return s;
}

std::string Utf16ToUtf8(ByteView u, bool stop_at_nul) {
  std::string out;
  out.reserve(u.size() / 2);
  for (size_t i = 0; i + 1 < u.size(); i += 2) {
    uint32_t c = U16(u.data() + i);
    if (c == 0 && stop_at_nul) break;
    if (c >= 0xD800 && c < 0xDC00 && i + 3 < u.size()) {
      uint32_t lo = U16(u.data() + i + 2);
      if (lo >= 0xDC00 && lo < 0xE000) {
        AppendUtf8(0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00), &out);
        i += 2;
        continue;
      }
    }
    if (c >= 0xD800 && c < 0xE000) c = 0xFFFD;
    AppendUtf8(c, &out);
  }
  return out;
}

bool LooksUtf16(ByteView d) {
  if (d.size() < 4) return false;
  size_t pairs = d.size() / 2, ascii = 0;
  for (size_t i = 0; i + 1 < d.size(); i += 2) {
    if (d[i + 1] == 0 && (d[i] == 0 || (d[i] >= 0x20 && d[i] < 0x7f) || d[i] == '\n' || d[i] == '\t')) ++ascii;
  }
  return ascii * 10 >= pairs * 9;
}

std::optional<UefiVariable> ParseUefiVariable(ByteView e) {
  if (e.size() < 32) return std::nullopt;
  UefiVariable v;
  v.guid = e.first(16);
  v.name_length = U64(e.data() + 16);
  v.data_length = U64(e.data() + 24);
  if (v.name_length > (e.size() - 32) / 2) return std::nullopt;
  size_t name_bytes = static_cast<size_t>(v.name_length) * 2;
  v.name = Utf16ToUtf8(e.subspan(32, name_bytes), /*stop_at_nul=*/false);
  ByteView rest = e.subspan(32 + name_bytes);
  if (v.data_length > rest.size()) {
    v.data_truncated = true;
    v.data = rest;
  } else {
    v.data = rest.first(static_cast<size_t>(v.data_length));
  }
  return v;
}

std::optional<ImageLoadEvent> ParseImageLoadEvent(ByteView e) {
  if (e.size() < 32) return std::nullopt;
  ImageLoadEvent im;
  im.location = U64(e.data());
  im.length = U64(e.data() + 8);
  im.link_time_address = U64(e.data() + 16);
  im.device_path_length = U64(e.data() + 24);
  ByteView rest = e.subspan(32);
  im.device_path = im.device_path_length < rest.size() ? rest.first(static_cast<size_t>(im.device_path_length)) : rest;
  return im;
}

std::optional<FirmwareBlob> ParseFirmwareBlob(ByteView e) {
  if (e.size() < 16) return std::nullopt;
  return FirmwareBlob{U64(e.data()), U64(e.data() + 8)};
}

std::optional<LoadOption> ParseLoadOption(ByteView d) {
  if (d.size() < 6) return std::nullopt;
  LoadOption o;
  o.attributes = U32(d.data());
  o.file_path_list_length = U16(d.data() + 4);
  size_t i = 6;
  while (i + 1 < d.size() && U16(d.data() + i) != 0) i += 2;
  if (i + 1 >= d.size()) return std::nullopt;
  o.description = Utf16ToUtf8(d.subspan(6, i - 6));
  i += 2;
  o.file_path_offset = i;
  ByteView rest = d.subspan(i);
  o.file_path_list = o.file_path_list_length <= rest.size() ? rest.first(o.file_path_list_length) : rest;
  return o;
}

std::vector<SignatureList> ParseSignatureLists(ByteView d, bool* complete) {
  std::vector<SignatureList> out;
  *complete = true;
  size_t pos = 0;
  while (pos < d.size()) {
    if (d.size() - pos < 28) {
      *complete = false;
      break;
    }
    SignatureList l;
    l.type = d.subspan(pos, 16);
    l.list_size = U32(d.data() + pos + 16);
    l.header_size = U32(d.data() + pos + 20);
    l.signature_size = U32(d.data() + pos + 24);
    if (l.signature_size < 16 || l.list_size < 28 + static_cast<uint64_t>(l.header_size) ||
        l.list_size > d.size() - pos || (l.list_size - 28 - l.header_size) % l.signature_size != 0) {
      *complete = false;
      break;
    }
    size_t sig_pos = pos + 28 + l.header_size;
    size_t count = (l.list_size - 28 - l.header_size) / l.signature_size;
    for (size_t i = 0; i < count; ++i) {
      ByteView s = d.subspan(sig_pos + i * l.signature_size, l.signature_size);
      l.signatures.push_back({s.first(16), s.subspan(16)});
    }
    out.push_back(std::move(l));
    pos += out.back().list_size;
  }
  return out;
}

std::string DevicePathToText(ByteView p) {
  std::string out;
  size_t pos = 0;
  bool first = true;
  while (pos + 4 <= p.size()) {
    uint8_t type = p[pos], sub = p[pos + 1];
    uint16_t len = U16(p.data() + pos + 2);
    if (len < 4 || len > p.size() - pos) break;
    if (type == 0x7f) {
      if (sub == 0xff) break;
      out += ",";  // end of one instance, another follows
      first = true;
      pos += len;
      continue;
    }
    ByteView d = p.subspan(pos + 4, len - 4u);
    if (!first) out.push_back('/');
    if (!NodeToText(type, sub, d, &out)) {
      out += "Path(" + std::to_string(type) + "," + std::to_string(sub) + ",";
      AppendHex(d, &out);
      out += ")";
    }
    first = false;
    pos += len;
  }
  return out;
}

bool IsGlobalVariableGuid(ByteView g) { return GuidEquals(g, kGlobalVariable); }
bool IsImageSecurityDbGuid(ByteView g) { return GuidEquals(g, kImageSecurityDb); }

std::string SignatureTypeName(ByteView g) {
  std::string s = GuidToString(g);
  if (s == "a5c059a1-94e4-4aa7-87b5-ab155c2bf072") return "EFI_CERT_X509_GUID";
  if (s == "c1c41626-504c-4092-aca9-41f936934328") return "EFI_CERT_SHA256_GUID";
  if (s == "3c5766e8-269c-4e34-aa14-ed776e85b3b6") return "EFI_CERT_RSA2048_GUID";
  if (s == "826ca512-cf10-4ac9-b187-be01496631bd") return "EFI_CERT_SHA1_GUID";
  if (s == "4aafd29d-68df-49ee-8aa9-347d375665a7") return "EFI_CERT_TYPE_PKCS7_GUID";
  return "";
}

}  // namespace lim::tcg
