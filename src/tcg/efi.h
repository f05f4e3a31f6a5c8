// Decoders for the UEFI structures that TCG events carry: GUIDs, UTF-16 strings,
// UEFI_VARIABLE_DATA, UEFI_IMAGE_LOAD_EVENT, UEFI_PLATFORM_FIRMWARE_BLOB, EFI_LOAD_OPTION,
// EFI_SIGNATURE_LIST and device paths rendered as text (the UEFI spec's / efivar's text
// form: "PciRoot(0x0)/Pci(0x1,0x0)/HD(1,GPT,<guid>,0x800,0x100000)/File(\EFI\…)").
// All functions are pure and bounds-checked: short or inconsistent input yields nullopt
// (or a best-effort text), never a read out of bounds. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/hex.h"

namespace lim::tcg {

// "8be4df61-93ca-11d2-aa0d-00e098032b8c" from the 16-byte mixed-endian EFI_GUID.
std::string GuidToString(ByteView guid16);
void AppendGuid(ByteView guid16, std::string* out);

// UTF-16LE to UTF-8; stops at the first NUL when stop_at_nul. Unpaired surrogates become
// U+FFFD. A trailing odd byte is ignored.
std::string Utf16ToUtf8(ByteView utf16, bool stop_at_nul = true);
// True when data looks like UTF-16LE text (every second byte zero, mostly printable).
bool LooksUtf16(ByteView data);

struct UefiVariable {
  ByteView guid;
  uint64_t name_length = 0;  // in UTF-16 characters
  uint64_t data_length = 0;
  std::string name;          // UTF-8
  ByteView data;             // clipped to what the event holds
  bool data_truncated = false;  // VariableDataLength runs past the event
};
std::optional<UefiVariable> ParseUefiVariable(ByteView event_data);

struct ImageLoadEvent {
  uint64_t location = 0;
  uint64_t length = 0;
  uint64_t link_time_address = 0;
  uint64_t device_path_length = 0;
  ByteView device_path;  // the bytes after the fixed header (clipped)
};
std::optional<ImageLoadEvent> ParseImageLoadEvent(ByteView event_data);

struct FirmwareBlob {
  uint64_t base = 0;
  uint64_t length = 0;
};
std::optional<FirmwareBlob> ParseFirmwareBlob(ByteView event_data);

struct LoadOption {
  uint32_t attributes = 0;
  uint16_t file_path_list_length = 0;
  std::string description;
  size_t file_path_offset = 0;  // offset of FilePathList in the variable data
  ByteView file_path_list;
};
std::optional<LoadOption> ParseLoadOption(ByteView variable_data);

struct SignatureData {
  ByteView owner;
  ByteView data;
};
struct SignatureList {
  ByteView type;
  uint32_t list_size = 0;
  uint32_t header_size = 0;
  uint32_t signature_size = 0;
  std::vector<SignatureData> signatures;
};
// Parses EFI_SIGNATURE_LIST records until the data ends or one is malformed; *complete is
// false when parsing stopped early.
std::vector<SignatureList> ParseSignatureLists(ByteView data, bool* complete);

// The text form of a device path. Unknown node types are rendered as
// "Path(type,subtype,hexdata)" as the UEFI spec prescribes; a malformed path stops with
// what was rendered so far (empty when the first node is already malformed).
std::string DevicePathToText(ByteView path);

// Well-known variable GUIDs.
bool IsGlobalVariableGuid(ByteView guid);      // 8be4df61-93ca-11d2-aa0d-00e098032b8c
bool IsImageSecurityDbGuid(ByteView guid);     // d719b2cb-3d3a-4596-a3bc-dad00e67656f
std::string SignatureTypeName(ByteView guid);  // "EFI_CERT_X509_GUID", … or ""

}  // namespace lim::tcg
