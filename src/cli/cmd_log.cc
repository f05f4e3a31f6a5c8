// `lim log` and `lim replay`: render a binary measurement list (kernel ASCII, JSON Lines,
// integrated table) and replay it into PCR values.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "base/escape.h"
#include "cli/command.h"
#include "cli/list_args.h"
#include "ima/entry_renderer.h"
#include "ima/list_format.h"
#include "ima/replay.h"
#include "tcg/describe.h"
#include "tcg/event_log.h"

namespace lim::cli {

namespace {

struct LogArgs {
  ListArgs list;
  std::string format = "ascii";
  std::string bank;
  bool follow = false;
  uint64_t from = 0;
  std::string out_order = "native";  // --format binary
  std::string boot_log;               // --boot-log: the integrated table
  size_t index_base = 0;              // table Idx of the first IMA entry
};

// Writes through a large stdio buffer; a closed pipe (| head) ends quietly.
class Output {
 public:
  Output() { std::setvbuf(stdout, nullptr, _IOFBF, 1 << 20); }
  void Write(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }
  ~Output() { std::fflush(stdout); }
};

// Renders the entries of reader from a.from on. With stop_at_truncation a record cut short
// by the end of the file ends the batch (it is being written) instead of failing.
Status RenderEntries(ima::ListReader& reader, const LogArgs& a, ima::EntryRenderer& renderer, std::string* buf,
                     Output* out, bool stop_at_truncation, bool* truncated) {
  std::string bin;  // --format binary: written at the end of a batch, and never after an error
  ima::Entry e;
  *truncated = false;
  for (;;) {
    auto more = reader.Next(&e);
    if (!more.ok()) {
      if (stop_at_truncation && reader.last_error_was_truncation()) {
        *truncated = true;
        break;
      }
      out->Write(*buf);
      buf->clear();
      return more.status();
    }
    if (!*more) break;
    if (e.index < a.from) continue;
    if (a.format == "binary") {
      Status st = renderer.Append(e, &bin);
      if (!st.ok()) return st.WithPrefix("entry " + std::to_string(e.index));
      if (bin.size() > (1 << 20)) {
        out->Write(bin);
        bin.clear();
      }
      continue;
    }
    if (a.format == "table") {
      // IMA rows in the integrated table: TCG type 0, numbered after the boot log's events.
      *buf += tcg::FormatTableRow({a.index_base + e.index, e.pcr, 0, ToHex(renderer.BankDigest(e)), ima::TableEventData(e)});
      buf->push_back('\n');
    } else {
      LIM_RETURN_IF_ERROR(renderer.Append(e, buf));
    }
    if (buf->size() > (1 << 20)) {
      out->Write(*buf);
      buf->clear();
    }
  }
  out->Write(*buf);
  buf->clear();
  out->Write(bin);
  return Status::Ok();
}

int RunLog(LogArgs a) {
  auto opts = a.list.Options();
  if (!opts.ok()) return ReportError(opts.status());
  std::string path = a.list.ResolvedPath();
  Output out;
  std::string buf;
  if (!a.boot_log.empty()) {
    // The integrated integrity log: firmware and boot loader events first, then IMA, with
    // one running index.
    if (a.format != "table") return ReportError(Status::InvalidArgument("--boot-log needs --format table"));
    auto log = tcg::LoadEventLog(a.boot_log);
    if (!log.ok()) return ReportError(log.status());
    auto bank = HashAlgoByName(a.bank.empty() ? "sha1" : a.bank);
    if (!bank.ok()) return ReportError(Status::InvalidArgument("--bank: " + bank.status().message()));
    auto rows = tcg::EventLogTableRows(log->log, bank->tpm_alg, 0);
    buf = tcg::TableHeader() + "\n";
    for (const auto& r : rows) buf += tcg::FormatTableRow(r) + "\n";
    a.index_base = rows.size();
    for (const auto& p : log->log.problems) {
      if (p.flagged) std::fprintf(stderr, "lim: %s: %s\n", Escaped(a.boot_log).c_str(), Escaped(p.ToString()).c_str());
    }
    if (a.list.path.empty() && ::access(path.c_str(), R_OK) != 0) {
      out.Write(buf);
      std::fprintf(stderr, "lim: no IMA measurement list (%s); showing the boot log only\n", Escaped(path).c_str());
      return kExitOk;
    }
  }
  auto reader = ima::ListReader::Open(path, *opts);
  if (!reader.ok()) return ReportError(reader.status());
  // The table shows SHA1 template digests unless --bank says otherwise; ascii/json show the
  // list's own bank unless --bank names another (like the kernel's per-bank files); binary
  // re-encodes every record for --bank (default: the list's) in --out-byte-order.
  std::string want = a.bank;
  if (want.empty() && a.format == "table") want = "sha1";
  HashAlgo bank = (*reader)->bank();
  if (!want.empty()) {
    auto algo = HashAlgoByName(want);
    if (!algo.ok()) return ReportError(Status::InvalidArgument("--bank: " + algo.status().message()));
    bank = *algo;
  }
  ima::RenderFormat format = a.format == "binary" ? ima::RenderFormat::kBinary
                             : a.format == "json" ? ima::RenderFormat::kJson
                                                  : ima::RenderFormat::kAscii;  // the table uses only the digest
  ByteOrder order = a.out_order == "le" ? ByteOrder::kLittle : a.out_order == "be" ? ByteOrder::kBig : kNativeOrder;
  auto renderer = ima::EntryRenderer::Create(format, (*reader)->bank(), bank, order);
  if (!renderer.ok()) return ReportError(renderer.status());
  if (a.format == "table" && a.boot_log.empty()) buf = tcg::TableHeader() + "\n";
  bool truncated = false;
  Status s = RenderEntries(**reader, a, *renderer, &buf, &out, a.follow, &truncated);
  if (!s.ok()) return ReportError(s);
  if (!a.follow) return kExitOk;
  // --follow: poll for appended records; a record being written is waited for.
  uint64_t offset = (*reader)->next_offset(), index = (*reader)->entries_read();
  for (;;) {
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Status seek = (*reader)->SeekTo(offset, index);
    if (!seek.ok()) return ReportError(seek);
    s = RenderEntries(**reader, a, *renderer, &buf, &out, true, &truncated);
    if (!s.ok()) return ReportError(s);
    offset = (*reader)->next_offset();
    index = (*reader)->entries_read();
  }
}

struct ReplayArgs {
  ListArgs list;
  std::vector<std::string> banks;
  bool padded = false;
};

int RunReplay(const ReplayArgs& a) {
  auto opts = a.list.Options();
  if (!opts.ok()) return ReportError(opts.status());
  auto reader = ima::ListReader::Open(a.list.ResolvedPath(), *opts);
  if (!reader.ok()) return ReportError(reader.status());
  std::vector<std::string> banks = a.banks;
  if (banks.empty()) banks.push_back((*reader)->bank().kernel_name);
  struct Bank {
    ima::BankDigester dig;
    ima::PcrReplayer rep;
  };
  std::vector<Bank> replay;
  for (const auto& b : banks) {
    auto algo = HashAlgoByName(b);
    if (!algo.ok()) return ReportError(Status::InvalidArgument("--bank: " + algo.status().message()));
    auto d = ima::BankDigester::Create(*algo, (*reader)->bank(),
                                       a.padded ? ima::ReplayMode::kPaddedSha1 : ima::ReplayMode::kPerBank);
    auto r = ima::PcrReplayer::Create(*algo);
    if (!d.ok()) return ReportError(d.status());
    if (!r.ok()) return ReportError(r.status());
    replay.push_back({std::move(d).value(), std::move(r).value()});
  }
  ima::Entry e;
  uint8_t digest[64];
  for (;;) {
    auto more = (*reader)->Next(&e);
    if (!more.ok()) return ReportError(more.status());
    if (!*more) break;
    for (auto& b : replay) {
      b.dig.Compute(e, digest);
      b.rep.Extend(e.pcr, digest);
    }
  }
  PcrSet set;
  for (auto& b : replay) b.rep.ExportTo(&set);
  std::printf("%s\n", set.ToJson().c_str());
  return kExitOk;
}

void Register(CLI::App& app) {
  auto la = std::make_shared<LogArgs>();
  auto* log = app.add_subcommand("log", "show a binary measurement list (kernel ASCII, JSON Lines, table)");
  la->list.AddTo(log, false);
  log->add_option("--format", la->format,
                  "ascii (byte-identical to the kernel's), json, table, binary (re-encoded for --bank and --out-byte-order)")
      ->check(CLI::IsMember({"ascii", "json", "table", "binary"}));
  log->add_option("--out-byte-order", la->out_order, "binary output: native, le (ima_canonical_fmt) or be")
      ->check(CLI::IsMember({"native", "le", "be"}));
  log->add_option("--bank", la->bank, "bank of the template digests shown (default: the list's; table: sha1)");
  log->add_option("--boot-log", la->boot_log, "TCG event log shown before the IMA entries (integrated table)");
  log->add_flag("--follow", la->follow, "keep showing entries as they are appended");
  log->add_option("--from", la->from, "start at entry N (0-based)");
  log->callback([la] { ExitCode() = RunLog(*la); });

  auto ra = std::make_shared<ReplayArgs>();
  auto* rep = app.add_subcommand("replay", "replay a measurement list into PCR values (JSON PCR set)");
  ra->list.AddTo(rep, true);
  rep->add_option("--bank", ra->banks, "bank to replay (repeatable; default: the list's bank)");
  rep->add_flag("--padded", ra->padded, "pre-5.8 kernels: extend the SHA1 template digest zero-padded");
  rep->callback([ra] { ExitCode() = RunReplay(*ra); });
}

}  // namespace

LIM_REGISTER_COMMAND(Register);

}  // namespace lim::cli
