// TCG event types: the numeric codes of the PC Client Platform Firmware Profile (TCG 1.2
// PC Client types, EFI types 0x80000001…) and the GRUB-legacy / OpenPTS private types
// 0x1005–0x1405, with their names. Immutable static data: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lim::tcg {

// TCG PC Client types.
constexpr uint32_t kEvPrebootCert = 0x00000000;
constexpr uint32_t kEvPostCode = 0x00000001;
constexpr uint32_t kEvUnused = 0x00000002;
constexpr uint32_t kEvNoAction = 0x00000003;
constexpr uint32_t kEvSeparator = 0x00000004;
constexpr uint32_t kEvAction = 0x00000005;
constexpr uint32_t kEvEventTag = 0x00000006;
constexpr uint32_t kEvSCrtmContents = 0x00000007;
constexpr uint32_t kEvSCrtmVersion = 0x00000008;
constexpr uint32_t kEvCpuMicrocode = 0x00000009;
constexpr uint32_t kEvPlatformConfigFlags = 0x0000000A;
constexpr uint32_t kEvTableOfDevices = 0x0000000B;
constexpr uint32_t kEvCompactHash = 0x0000000C;
constexpr uint32_t kEvIpl = 0x0000000D;
constexpr uint32_t kEvIplPartitionData = 0x0000000E;
constexpr uint32_t kEvNonhostCode = 0x0000000F;
constexpr uint32_t kEvNonhostConfig = 0x00000010;
constexpr uint32_t kEvNonhostInfo = 0x00000011;
constexpr uint32_t kEvOmitBootDeviceEvents = 0x00000012;
// EFI types.
constexpr uint32_t kEvEfiEventBase = 0x80000000;
constexpr uint32_t kEvEfiVariableDriverConfig = 0x80000001;
constexpr uint32_t kEvEfiVariableBoot = 0x80000002;
constexpr uint32_t kEvEfiBootServicesApplication = 0x80000003;
constexpr uint32_t kEvEfiBootServicesDriver = 0x80000004;
constexpr uint32_t kEvEfiRuntimeServicesDriver = 0x80000005;
constexpr uint32_t kEvEfiGptEvent = 0x80000006;
constexpr uint32_t kEvEfiAction = 0x80000007;
constexpr uint32_t kEvEfiPlatformFirmwareBlob = 0x80000008;
constexpr uint32_t kEvEfiHandoffTables = 0x80000009;
constexpr uint32_t kEvEfiPlatformFirmwareBlob2 = 0x8000000A;
constexpr uint32_t kEvEfiHandoffTables2 = 0x8000000B;
constexpr uint32_t kEvEfiVariableBoot2 = 0x8000000C;
constexpr uint32_t kEvEfiGptEvent2 = 0x8000000D;
constexpr uint32_t kEvEfiHcrtmEvent = 0x80000010;
constexpr uint32_t kEvEfiVariableAuthority = 0x800000E0;
constexpr uint32_t kEvEfiSpdmFirmwareBlob = 0x800000E1;
constexpr uint32_t kEvEfiSpdmFirmwareConfig = 0x800000E2;
constexpr uint32_t kEvEfiSpdmDevicePolicy = 0x800000E3;
constexpr uint32_t kEvEfiSpdmDeviceAuthority = 0x800000E4;
// GRUB-legacy (TrustedGRUB) / OpenPTS private types, as OpenPTS's iml2text names them.
constexpr uint32_t kEvGrubAction = 0x1005;
constexpr uint32_t kEvGrubKernelOpt = 0x1105;
constexpr uint32_t kEvGrubKernel = 0x1205;
constexpr uint32_t kEvGrubInitrd = 0x1305;
constexpr uint32_t kEvGrubModule = 0x1405;

// lim's name for a type: "EV_SEPARATOR", "EV_EFI_ACTION", "GRUB:KERNEL"; unknown types are
// "EV_UNKNOWN_0x%08x" style — never empty.
std::string EventTypeName(uint32_t type);
// The name tpm2_eventlog (tpm2-tools 5.4) prints: unknown types are "Unknown event type".
std::string_view Tpm2ToolsEventTypeName(uint32_t type);
// True for the GRUB-legacy private types 0x1005–0x1405.
bool IsGrubLegacyType(uint32_t type);

}  // namespace lim::tcg
