#include "tcg/event_type.h"

#include <cstdio>

namespace lim::tcg {

namespace {

// Names of the types tpm2-tools 5.4 knows; nullptr where it prints "Unknown event type".
const char* KnownName(uint32_t type, bool tpm2_tools_only) {
  switch (type) {
    case kEvPrebootCert: return "EV_PREBOOT_CERT";
    case kEvPostCode: return "EV_POST_CODE";
    case kEvUnused: return "EV_UNUSED";
    case kEvNoAction: return "EV_NO_ACTION";
    case kEvSeparator: return "EV_SEPARATOR";
    case kEvAction: return "EV_ACTION";
    case kEvEventTag: return "EV_EVENT_TAG";
    case kEvSCrtmContents: return "EV_S_CRTM_CONTENTS";
    case kEvSCrtmVersion: return "EV_S_CRTM_VERSION";
    case kEvCpuMicrocode: return "EV_CPU_MICROCODE";
    case kEvPlatformConfigFlags: return "EV_PLATFORM_CONFIG_FLAGS";
    case kEvTableOfDevices: return "EV_TABLE_OF_DEVICES";
    case kEvCompactHash: return "EV_COMPACT_HASH";
    case kEvIpl: return "EV_IPL";
    case kEvIplPartitionData: return "EV_IPL_PARTITION_DATA";
    case kEvNonhostCode: return "EV_NONHOST_CODE";
    case kEvNonhostConfig: return "EV_NONHOST_CONFIG";
    case kEvNonhostInfo: return "EV_NONHOST_INFO";
    case kEvOmitBootDeviceEvents: return "EV_OMIT_BOOT_DEVICE_EVENTS";
    case kEvEfiVariableDriverConfig: return "EV_EFI_VARIABLE_DRIVER_CONFIG";
    case kEvEfiVariableBoot: return "EV_EFI_VARIABLE_BOOT";
    case kEvEfiBootServicesApplication: return "EV_EFI_BOOT_SERVICES_APPLICATION";
    case kEvEfiBootServicesDriver: return "EV_EFI_BOOT_SERVICES_DRIVER";
    case kEvEfiRuntimeServicesDriver: return "EV_EFI_RUNTIME_SERVICES_DRIVER";
    case kEvEfiGptEvent: return "EV_EFI_GPT_EVENT";
    case kEvEfiAction: return "EV_EFI_ACTION";
    case kEvEfiPlatformFirmwareBlob: return "EV_EFI_PLATFORM_FIRMWARE_BLOB";
    case kEvEfiHandoffTables: return "EV_EFI_HANDOFF_TABLES";
    case kEvEfiVariableAuthority: return "EV_EFI_VARIABLE_AUTHORITY";
    default: break;
  }
  if (tpm2_tools_only) return nullptr;
  switch (type) {
    case kEvEfiEventBase: return "EV_EFI_EVENT_BASE";
    case kEvEfiPlatformFirmwareBlob2: return "EV_EFI_PLATFORM_FIRMWARE_BLOB2";
    case kEvEfiHandoffTables2: return "EV_EFI_HANDOFF_TABLES2";
    case kEvEfiVariableBoot2: return "EV_EFI_VARIABLE_BOOT2";
    case kEvEfiGptEvent2: return "EV_EFI_GPT_EVENT2";
    case kEvEfiHcrtmEvent: return "EV_EFI_HCRTM_EVENT";
    case kEvEfiSpdmFirmwareBlob: return "EV_EFI_SPDM_FIRMWARE_BLOB";
    case kEvEfiSpdmFirmwareConfig: return "EV_EFI_SPDM_FIRMWARE_CONFIG";
    case kEvEfiSpdmDevicePolicy: return "EV_EFI_SPDM_DEVICE_POLICY";
    case kEvEfiSpdmDeviceAuthority: return "EV_EFI_SPDM_DEVICE_AUTHORITY";
    case kEvGrubAction: return "GRUB:ACTION";
    case kEvGrubKernelOpt: return "GRUB:KERNEL_OPT";
    case kEvGrubKernel: return "GRUB:KERNEL";
    case kEvGrubInitrd: return "GRUB:INITRD";
    case kEvGrubModule: return "GRUB:MODULE";
    default: return nullptr;
  }
}

}  // namespace

std::string EventTypeName(uint32_t type) {
  if (const char* n = KnownName(type, false)) return n;
  char buf[32];
  std::snprintf(buf, sizeof buf, "EV_UNKNOWN_0x%08x", type);
  return buf;
}

std::string_view Tpm2ToolsEventTypeName(uint32_t type) {
  const char* n = KnownName(type, true);
  return n ? std::string_view(n) : std::string_view("Unknown event type");
}

bool IsGrubLegacyType(uint32_t type) {
  return type == kEvGrubAction || type == kEvGrubKernelOpt || type == kEvGrubKernel ||
         type == kEvGrubInitrd || type == kEvGrubModule;
}

}  // namespace lim::tcg
