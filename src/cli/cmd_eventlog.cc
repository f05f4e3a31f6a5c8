// `lim eventlog LOG [--format table|json|yaml] [--replay] [--bank ALG] [--boot-aggregate]`:
// parse a TCG 1.2 or crypto-agile boot event log, show it, replay it, check it.
// Exit 0 clean, 1 parsed with flagged problems, 2 nothing usable (cli.md).
#include <cstdio>
#include <string>

#include "base/escape.h"
#include "cli/command.h"
#include "crypto/hash_algo.h"
#include "ima/boot_aggregate.h"
#include "tcg/describe.h"
#include "tcg/event_log.h"
#include "tcg/replay.h"
#include "tcg/yaml.h"

namespace lim::cli {
namespace {

struct EventlogArgs {
  std::string path;
  std::string format = "table";
  bool replay = false;
  std::string bank = "sha1";
  int eventlog_version = 2;
  bool raw_device_paths = false;
  bool boot_aggregate = false;
  bool quiet = false;
  bool bank_given = false;
};

void Write(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

int RunEventlog(const EventlogArgs& a) {
  auto loaded = tcg::LoadEventLog(a.path);
  if (!loaded.ok()) return ReportError(loaded.status());
  const tcg::EventLog& log = loaded->log;
  auto bank = HashAlgoByName(a.bank);
  uint16_t bank_alg = bank.ok() && bank->tpm_alg ? bank->tpm_alg : 0;
  if (!bank_alg) {
    return ReportError(Status::InvalidArgument("--bank " + a.bank + ": not a TPM hash algorithm"));
  }

  tcg::ReplayResult replay = tcg::Replay(log);

  // A log without a SHA1 bank (sha256-only firmware) shows its first bank unless --bank
  // asked for one explicitly.
  if (!a.bank_given) {
    bool has = false;
    for (const auto& b : log.Banks()) has |= b.alg == bank_alg;
    if (!has && !log.Banks().empty()) {
      bank_alg = log.Banks().front().alg;
      if (!a.quiet && a.format == "table" && !a.replay && !a.boot_aggregate) {
        std::fprintf(stderr, "lim: %s: note: the log has no sha1 bank; Digest column shows %s\n", Escaped(a.path).c_str(),
                     TpmBankName(bank_alg).c_str());
      }
    }
  }

  if (a.boot_aggregate) {
    // Like `evmctl ima_boot_aggregate`: one line per sha1/sha256 bank the log replays.
    PcrSet pcrs = replay.pcrs.ToPcrSet();
    for (const HashAlgo* algo : {&Sha1Algo(), &Sha256Algo()}) {
      if (!replay.pcrs.FindAlg(algo->tpm_alg)) continue;
      auto agg = ima::BootAggregate(pcrs, *algo);
      if (agg.ok()) Write(std::string(algo->kernel_name) + ":" + ToHex(*agg) + "\n");
    }
  } else if (a.replay) {
    Write(replay.pcrs.ToJson() + "\n");
  } else if (a.format == "yaml") {
    tcg::YamlOptions o;
    o.version = a.eventlog_version;
    o.raw_device_paths = a.raw_device_paths;
    // Streamed in ~1 MiB pieces: a 15,000-event log makes tens of MB of YAML.
    std::string out;
    out.reserve(1 << 21);
    tcg::AppendYamlHeader(o, &out);
    for (const auto& e : log.events) {
      tcg::AppendYamlEventOf(log, e, o, &out);
      if (out.size() >= (1 << 20)) {
        Write(out);
        out.clear();
      }
    }
    tcg::AppendYamlPcrs(log, replay, &out);
    Write(out);
  } else if (a.format == "json") {
    std::string out;
    for (const auto& e : log.events) {
      out += tcg::EventToJson(e, replay.checks[e.index]);
      out += '\n';
    }
    Write(out);
  } else {
    std::string out = tcg::TableHeader() + "\n";
    for (const auto& row : tcg::EventLogTableRows(log, bank_alg)) {
      out += tcg::FormatTableRow(row);
      out += '\n';
    }
    Write(out);
  }
  std::fflush(stdout);

  bool flagged = log.HasFlaggedProblems();
  const std::vector<tcg::Problem>* lists[] = {&log.problems, &replay.problems};
  for (const auto* list : lists) {
    for (const auto& p : *list) {
      if (p.flagged) flagged = true;
      if (a.quiet && !p.flagged) continue;
      std::fprintf(stderr, "lim: %s: %s%s\n", Escaped(a.path).c_str(), p.flagged ? "" : "note: ", Escaped(p.ToString()).c_str());
    }
  }
  if (!a.quiet) {
    // What the PCRs vouch for: each event's digest, but never its type, and the data only
    // where the spec makes the digest a hash of it (the rest is shown as logged).
    size_t matched = 0, uncheckable = 0;
    for (auto c : replay.checks) {
      if (c == tcg::DigestCheck::kMatches) ++matched;
      else if (c == tcg::DigestCheck::kNotCheckable) ++uncheckable;
    }
    std::fprintf(stderr,
                 "lim: %s: note: %zu events; data of %zu checked against their digests, %zu shown as logged "
                 "(not verifiable from the log); event types are covered by no digest\n",
                 Escaped(a.path).c_str(), log.events.size(), matched, uncheckable);
  }
  return flagged ? kExitCheckFailed : kExitOk;
}

void Register(CLI::App& app) {
  auto args = std::make_shared<EventlogArgs>();
  auto* cmd = app.add_subcommand("eventlog", "Parse, show, replay and check a TCG boot event log (TCG 1.2 or crypto-agile)");
  cmd->add_option("LOG", args->path, "binary_bios_measurements file ('-' for stdin)")->required();
  cmd->add_option("--format", args->format, "table, json (JSON Lines) or yaml (tpm2_eventlog keys)")
      ->check(CLI::IsMember({"table", "json", "yaml"}));
  cmd->add_flag("--replay", args->replay, "print the replayed PCR set (JSON) instead of the events");
  cmd->add_option("--bank", args->bank, "bank of the table's Digest column (default sha1, else the log's first bank)")
      ->each([args](const std::string&) { args->bank_given = true; });
  cmd->add_option("--eventlog-version", args->eventlog_version, "YAML flavour as tpm2_eventlog --eventlog-version (1 or 2)")
      ->check(CLI::Range(1, 2));
  cmd->add_flag("--raw-device-paths", args->raw_device_paths, "YAML: device paths as hex, like tpm2-tools without efivar");
  cmd->add_flag("--boot-aggregate", args->boot_aggregate, "print the boot_aggregate of the replayed sha1/sha256 banks");
  cmd->add_flag("--quiet", args->quiet, "do not print notes (flagged problems are still printed)");
  cmd->callback([args] { ExitCode() = RunEventlog(*args); });
}

LIM_REGISTER_COMMAND(Register);

}  // namespace
}  // namespace lim::cli
