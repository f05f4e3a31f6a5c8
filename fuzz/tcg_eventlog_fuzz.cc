// libFuzzer target for the boot event log code: parse (both formats), replay with digest
// checks (both modes), and render every output form (YAML v1/v2, text and raw device
// paths, table rows, JSON). Any crash, sanitizer report or hang is a bug: lim must survive
// every byte string a firmware (or an attacker) can put in binary_bios_measurements.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tcg/boot_aggregate.h"
#include "tcg/describe.h"
#include "tcg/event_log.h"
#include "tcg/replay.h"
#include "tcg/yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lim::ByteView input(data, size);
  auto log = lim::tcg::ParseEventLog(input);
  if (!log.ok()) return 0;
  lim::tcg::ReplayResult replay = lim::tcg::Replay(*log);
  lim::tcg::ReplayResult compat = lim::tcg::Replay(*log, {.check_digests = false, .tpm2_tools_5_4_compat = true});
  std::string out;
  for (int version : {1, 2}) {
    for (bool raw : {false, true}) {
      out.clear();
      lim::tcg::AppendYaml(*log, replay, {.version = version, .raw_device_paths = raw}, &out);
    }
  }
  for (const auto& row : lim::tcg::EventLogTableRows(*log, 0x000B)) out += lim::tcg::FormatTableRow(row);
  for (const auto& e : log->events) out += lim::tcg::EventToJson(e, replay.checks[e.index]);
  (void)lim::tcg::BootAggregate(replay.pcrs, lim::Sha256Algo());
  (void)replay.pcrs.ToJson();
  return 0;
}
