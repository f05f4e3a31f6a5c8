// Human-readable event text and the rows of the integrated integrity table
// (`Idx PCR Type Digest EventData`, cli.md): firmware events tagged "[BIOS:EV_…]", boot
// loader events "[GRUB:…]" / "[SD-BOOT:…]", unknown data as hex (never dropped). Also the
// JSON Lines form of events. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tcg/event_log.h"
#include "tcg/replay.h"

namespace lim::tcg {

// One-line decode of the event data, without tag: "Calling EFI Application from Boot
// Option", "SecureBoot=1", "PciRoot(0x0)/…/File(\EFI\…)", "StartupLocality=3", or hex.
std::string DescribeEventData(const Event& e);
// The tagged EventData column: "[BIOS:EV_S_CRTM_VERSION 1.0]", "[GRUB:CMD linux /vmlinuz…]".
std::string TaggedEventText(const Event& e);

struct TableRow {
  size_t index = 0;
  uint32_t pcr = 0;
  uint32_t type = 0;
  std::string digest_hex;  // of the requested bank; empty when the event has none
  std::string text;        // tagged event data
};

// Rows for every event of a parsed log, numbered from first_index (the integrated view
// numbers firmware, boot loader and IMA rows with one running index).
std::vector<TableRow> EventLogTableRows(const EventLog& log, uint16_t bank_alg = 0x0004, size_t first_index = 0);
std::string TableHeader();
std::string FormatTableRow(const TableRow& row);

// One JSON object (one line, no newline) per event.
std::string EventToJson(const Event& e, DigestCheck check);

}  // namespace lim::tcg
