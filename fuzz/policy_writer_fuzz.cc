// libFuzzer target for the securityfs view's policy file write path (daemon::PolicyWriter):
// the input is cut into write() calls at each 0xFF byte, and each call is repeated on the
// unconsumed rest the way a writer loops on short writes. Checks the kernel's semantics:
// every count is in (0, size]; a batch commits at the flush iff no write failed and some
// rule was accepted; then the rules in force are exactly those of the consumed lines parsed
// as one policy. Writes starting with '/' (policy-file paths) are turned into rule text:
// this target never opens files (path loads are unit-tested in securityfs_view_test.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/live_policy.h"
#include "ima/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lim;
  auto builtin = ima::ParsePolicy("measure func=BPRM_CHECK\n", "builtin:fuzz");
  if (!builtin.ok()) std::abort();
  daemon::PolicyRecorder rec;
  std::string recorded;
  rec.record_text = [&](std::string_view b) {
    recorded += b;
    return Status::Ok();
  };
  daemon::LivePolicy live(*builtin, false, rec);
  std::string before = live.Show();
  auto w = live.OpenWriter();
  if (!w.ok()) std::abort();

  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string lines;  // the consumed rule lines, each ending in '\n'
  bool failed = false;
  while (!in.empty() || size == 0) {
    size_t cut = in.find('\xff');
    std::string chunk(in.substr(0, cut));
    in.remove_prefix(cut == std::string_view::npos ? in.size() : cut + 1);
    std::string_view rest(chunk);
    while (!rest.empty()) {
      // A write that starts with '/' names a policy file: that loader is unit-tested; here it
      // would open paths the fuzzer makes up, on a thread per write. Every write is rule text
      // — also the later ones of a chunk, which begin where the previous write stopped.
      if (rest[0] == '/') chunk[static_cast<size_t>(rest.data() - chunk.data())] = '#';
      auto n = (*w)->Write(rest);
      if (!n.ok()) {
        if ((*w)->error_number() <= 0) std::abort();
        failed = true;
        break;  // a writer gives up on this write()
      }
      if (*n == 0 || *n > rest.size()) std::abort();
      std::string_view line = rest.substr(0, std::min(*n, daemon::kPolicyWriteMax));
      line = line.substr(0, line.find('\0'));
      line = line.substr(0, line.find('\n'));
      lines.append(line);
      lines += '\n';
      rest.remove_prefix(*n);
    }
    if (size == 0) break;
  }
  if (!(*w)->Flush().ok()) std::abort();  // the recorder never fails: nothing else may
  auto expected = ima::ParsePolicy(lines, "policy");
  if (failed || !expected.ok()) {
    // Nothing committed: a failed batch, or no rule (the only way the lines fail to parse
    // once every write succeeded).
    if (live.loads() != 0 || live.Show() != before || !recorded.empty()) std::abort();
    if (!failed && expected.status().message().find("no rules") == std::string::npos) std::abort();
    return 0;
  }
  if (live.loads() != 1) std::abort();
  if (live.Show() != ima::ShowPolicy(*expected)) std::abort();
  if (recorded != lines) std::abort();
  return 0;
}
