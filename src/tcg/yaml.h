// tpm2_eventlog-compatible YAML for a parsed event log: the same keys, nesting and value
// formats as tpm2-tools 5.4 (`--eventlog-version` 1 or 2), so scripts written against
// tpm2_eventlog read lim's output. Differences, all additive: device paths are rendered as
// text (as tpm2-tools built with efivar does) unless raw_device_paths; hex event data is
// never cut at 1024 bytes; events tpm2_eventlog refuses (short structures, PCR index out of
// range, H-CRTM) are still printed, undecoded parts as hex; banks it does not know are listed
// after its five; inside quoted strings '"', control bytes and non-UTF-8 bytes are escaped
// (5.4 copies them raw, which is not valid YAML); TCG 1.2 events get "- EventNum" list items
// (5.4 prints none). Appends to a string; single-threaded per call.
#pragma once

#include <string>

#include "tcg/event_log.h"
#include "tcg/replay.h"

namespace lim::tcg {

struct YamlOptions {
  int version = 2;                // tpm2_eventlog --eventlog-version
  bool raw_device_paths = false;  // hex like tpm2-tools without efivar
};

// Appends one event (TCG_PCR_EVENT2 or TCG 1.2 record; not the Spec ID header).
void AppendYamlEvent(const Event& e, const YamlOptions& options, std::string* out);
// Appends any event of log, the Spec ID header included (for streaming large logs).
void AppendYamlEventOf(const EventLog& log, const Event& e, const YamlOptions& options, std::string* out);
// The whole document: "---", version, events, pcrs (from replay).
void AppendYaml(const EventLog& log, const ReplayResult& replay, const YamlOptions& options, std::string* out);
void AppendYamlHeader(const YamlOptions& options, std::string* out);
void AppendYamlPcrs(const EventLog& log, const ReplayResult& replay, std::string* out);

}  // namespace lim::tcg
