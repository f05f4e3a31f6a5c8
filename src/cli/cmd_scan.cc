// `lim scan PATH…`: reference values from trees (issue 16) — a manifest of every file (path,
// kind, size, mode, digest, script interpreter, link target) and the runtime policy allowing
// each regular file's digest for its path, in lim's native JSON (with the manifest) or
// keylime's. The walk, hashing and JSON live in src/refs; this file reads the arguments,
// shows progress on a terminal and sets the exit code: 0 every file hashed, 1 some could not
// be (each named on stderr), 2 bad usage or a PATH that does not exist.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <initializer_list>
#include <memory>
#include <optional>
#include <mutex>
#include <string_view>
#include <thread>

#include "base/escape.h"
#include "base/file.h"
#include "cli/command.h"
#include "crypto/hash_algo.h"
#include "debs/dpkg_db.h"
#include "refs/manifest_json.h"
#include "refs/scan.h"

namespace lim::cli {

namespace {

struct ScanArgs {
  std::vector<std::string> paths;
  std::vector<std::string> excludes;
  bool xdev = false, quiet = false;
  std::string hash = "sha256", out, format = "lim", root;
  int jobs = 0, max_depth = 256;
  std::string admindir;        // --admindir: must load ("" = no owner column)
  bool admindir_given = false;  // not given: the image's dpkg database when it has one
};

// The owner column from the dpkg database (src/debs): the package that installed each path,
// through merged /usr and diversions. Paths are looked up as the image names them (without
// --root's prefix).
class DpkgOwners : public refs::OwnerLookup {
 public:
  DpkgOwners(debs::DpkgDb db, std::string prefix) : db_(std::move(db)), prefix_(std::move(prefix)) {}
  std::optional<refs::FileOwner> Owner(std::string_view path) const override {
    if (!prefix_.empty()) {
      if (path.compare(0, prefix_.size(), prefix_) != 0) return std::nullopt;
      path.remove_prefix(prefix_.size());
      if (path.empty()) path = "/";
    }
    auto o = db_.OwnerOf(path);
    if (!o || !o->package) return std::nullopt;
    return refs::FileOwner{o->package->name, o->package->version};
  }

 private:
  debs::DpkgDb db_;
  std::string prefix_;
};

// --admindir given: it must load (a flag that cannot be honoured is an error); not given: the
// image's /var/lib/dpkg when it has one, else no owner column.
debs::DpkgDb::Options OwnerDbOptions(const ScanArgs& a, const std::string& prefix) {
  return {a.admindir_given ? a.admindir : prefix + "/var/lib/dpkg", prefix.empty() ? "/" : prefix};
}

Result<std::unique_ptr<DpkgOwners>> LoadOwners(const ScanArgs& a, const std::string& prefix) {
  auto db = debs::DpkgDb::LoadOptional(OwnerDbOptions(a, prefix), a.admindir_given);
  if (!db.ok()) return db.status();
  if (!*db) return std::unique_ptr<DpkgOwners>();
  return std::make_unique<DpkgOwners>(std::move(**db), prefix);
}

// The owner column while its database is still loading: the scan looks owners up only after
// the hashing, so the dpkg database (0.13 s for Debian's) loads on a thread of its own beside
// the walk instead of before it. The first lookup waits for the load; a load that failed
// looks up nothing and is reported by error() (the scan's output is then not written).
class LoadingOwners : public refs::OwnerLookup {
 public:
  LoadingOwners(const ScanArgs& a, const std::string& prefix)
      : loaded_(std::async(std::launch::async, [&a, prefix]() -> Result<std::unique_ptr<DpkgOwners>> {
                  try {  // rethrown by get() on a hashing thread, it would end the process
                    return LoadOwners(a, prefix);
                  } catch (const std::exception& e) {
                    return Status::Internal(std::string("loading the dpkg database: ") + e.what());
                  }
                }).share()) {}
  std::optional<refs::FileOwner> Owner(std::string_view path) const override {
    const auto& r = loaded_.get();
    if (!r.ok() || !*r) return std::nullopt;
    return (*r)->Owner(path);
  }
  Status error() const { return loaded_.get().status(); }

 private:
  std::shared_future<Result<std::unique_ptr<DpkgOwners>>> loaded_;
};

std::string Rate(double bytes, double seconds) {
  if (seconds <= 0) return "-";
  double r = bytes / seconds;
  char b[32];
  if (r >= 1024.0 * 1024 * 1024) std::snprintf(b, sizeof b, "%.2f GiB/s", r / (1024.0 * 1024 * 1024));
  else std::snprintf(b, sizeof b, "%.1f MiB/s", r / (1024.0 * 1024));
  return b;
}

std::string Amount(uint64_t bytes) {
  char b[32];
  double v = static_cast<double>(bytes);
  if (bytes >= (1ull << 30)) std::snprintf(b, sizeof b, "%.2f GiB", v / (1ull << 30));
  else if (bytes >= (1ull << 20)) std::snprintf(b, sizeof b, "%.1f MiB", v / (1ull << 20));
  else if (bytes >= 1024) std::snprintf(b, sizeof b, "%.1f KiB", v / 1024);
  else std::snprintf(b, sizeof b, "%llu bytes", static_cast<unsigned long long>(bytes));
  return b;
}

// The progress line on a terminal: files, bytes, rate, and once the walk has counted
// everything, the time left. Redrawn a few times a second from its own thread; error lines
// from the scan go through Print so that they are not written into the middle of it.
class Progress {
 public:
  Progress(refs::ScanProgress* p, bool shown) : p_(p), shown_(shown), start_(Clock::now()) {
    if (shown_) thread_ = std::thread([this] { Loop(); });
  }
  ~Progress() { Stop(); }

  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopped_) return;
      stopped_ = true;
      if (shown_) std::fputs("\r\033[K", stderr);
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void Print(const std::string& line) {
    std::lock_guard<std::mutex> l(mu_);
    if (shown_ && !stopped_) std::fputs("\r\033[K", stderr);
    std::fprintf(stderr, "%s\n", line.c_str());
    if (shown_ && !stopped_) Draw();
  }

  double Seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;

  void Loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stopped_) {
      Draw();
      cv_.wait_for(l, std::chrono::milliseconds(250));
    }
  }

  // Called with mu_ held.
  void Draw() {
    double t = Seconds();
    uint64_t files = p_->files_hashed.load(std::memory_order_relaxed);
    uint64_t found = p_->files_found.load(std::memory_order_relaxed);
    uint64_t bytes = p_->bytes_hashed.load(std::memory_order_relaxed);
    uint64_t total = p_->bytes_found.load(std::memory_order_relaxed);
    std::string eta = "walking";
    if (p_->walk_done.load() && bytes > 0 && t > 0) {
      double left = static_cast<double>(total > bytes ? total - bytes : 0) / (static_cast<double>(bytes) / t);
      char b[32];
      std::snprintf(b, sizeof b, "ETA %d:%02d", static_cast<int>(left) / 60, static_cast<int>(left) % 60);
      eta = b;
    }
    std::fprintf(stderr, "\r\033[Klim scan: %llu/%llu files, %s/%s, %s, %s", static_cast<unsigned long long>(files),
                 static_cast<unsigned long long>(found), Amount(bytes).c_str(), Amount(total).c_str(),
                 Rate(static_cast<double>(bytes), t).c_str(), eta.c_str());
    std::fflush(stderr);
  }

  refs::ScanProgress* p_;
  bool shown_;
  Clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread thread_;
};

// -o: a regular file (or a new one) is replaced atomically (WriteFilePieces); a device or a
// pipe (/dev/null, /dev/stdout, a fifo) is written into, never replaced; "" or "-" is stdout.
// The document comes in pieces, written in turn (joining 25 MB in memory first cost a copy
// and the page faults of a new buffer).
Status WriteOutput(const std::string& path, std::initializer_list<std::string_view> pieces) {
  std::vector<ByteView> views;
  for (std::string_view p : pieces) views.push_back(AsBytes(p));
  int fd = -1;
  struct stat st;
  if (path.empty() || path == "-") {
    fd = dup(STDOUT_FILENO);
  } else if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    fd = open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
  } else {
    return WriteFilePieces(path, views);
  }
  const std::string name = path.empty() ? "-" : path;
  if (fd < 0) return Status::IoError(name + ": open: " + std::strerror(errno));
  Status written = WriteAllPieces(fd, views, name);
  close(fd);
  return written;
}

// The absolute path without links, "." or "..": what the kernel would name the file.
Result<std::string> Canonical(const std::string& path) {
  char* r = realpath(path.c_str(), nullptr);
  if (!r) return Status::NotFound(path + ": " + std::strerror(errno));
  std::string out(r);
  std::free(r);
  return out;
}

int RunScan(const ScanArgs& a) {
  auto algo = HashAlgoByName(a.hash);
  if (!algo.ok()) return ReportError(algo.status());
  if (!HashAlgoAvailable(*algo) || algo->kernel_id < 0) {
    return ReportError(Status::InvalidArgument("--hash " + a.hash + ": not usable here"));
  }
  if (a.jobs < 0) return ReportError(Status::InvalidArgument("--jobs: expected 0 (one per CPU) or more"));
  if (a.max_depth < 0) return ReportError(Status::InvalidArgument("--max-depth: expected 0 or more"));
  // Paths as the kernel names files: absolute, links resolved (only in the PATHs given:
  // below them nothing is followed).
  std::vector<std::string> roots;
  for (const auto& p : a.paths) {
    auto r = Canonical(p);
    if (!r.ok()) return ReportError(r.status());
    roots.push_back(*r);
  }
  std::string prefix;
  if (!a.root.empty()) {
    auto r = Canonical(a.root);
    if (!r.ok()) return ReportError(r.status().WithPrefix("--root"));
    prefix = *r == "/" ? "" : *r;
    for (size_t i = 0; i < roots.size(); ++i) {
      if (roots[i] != *r && roots[i].compare(0, prefix.size() + 1, prefix + "/") != 0) {
        return ReportError(Status::InvalidArgument(a.paths[i] + ": not under --root " + a.root));
      }
    }
  }
  std::unique_ptr<LoadingOwners> owners;
  const debs::DpkgDb::Options db_options = OwnerDbOptions(a, prefix);
  if (debs::DpkgDb::WouldLoad(db_options, a.admindir_given)) {
    // An --admindir given without a status file fails now, not after the walk; one that is
    // there but does not parse is found by the load, after the walk.
    if (::access((db_options.admindir + "/status").c_str(), F_OK) != 0) {
      auto none = LoadOwners(a, prefix);
      if (!none.ok()) return ReportError(none.status());
    }
    owners = std::make_unique<LoadingOwners>(a, prefix);
  }
  refs::ScanOptions o;
  o.owners = owners.get();
  o.walk.excludes = a.excludes;
  o.walk.xdev = a.xdev;
  o.walk.max_depth = a.max_depth;
  o.algo = *algo;
  o.jobs = a.jobs;
  refs::ScanProgress counters;
  Progress progress(&counters, !a.quiet && isatty(STDERR_FILENO));
  auto m = refs::Scan(
      roots, o,
      [&](const std::string& path, const std::string& message) { progress.Print("lim: " + Escaped(path + ": " + message)); },
      &counters);
  progress.Stop();
  if (owners) {
    if (Status st = owners->error(); !st.ok()) return ReportError(st);
  }
  if (!m.ok()) return ReportError(m.status());
  double seconds = progress.Seconds();
  if (!prefix.empty()) {
    for (auto& e : m->entries) {
      e.path = e.path.size() == prefix.size() ? "/" : e.path.substr(prefix.size());
      if (!e.hardlink_of.empty()) e.hardlink_of = e.hardlink_of.substr(prefix.size());
    }
  }

  // The manifest's JSON is made on a second thread while this one builds the policy and its
  // JSON: the two take about as long, and the hashing threads are done.
  std::future<std::string> files_json;
  if (a.format != "keylime") {
    files_json = std::async(std::launch::async, [&m] { return refs::NativeManifestJsonFiles(*m); });
  }
  std::vector<std::string> not_utf8;
  attest::RuntimePolicy policy = refs::PolicyOfManifest(*m, &not_utf8);
  for (const auto& p : not_utf8) {
    std::fprintf(stderr, "lim: %s: name is not UTF-8: no JSON policy can hold it (listed in the manifest only)\n",
                 Escaped(p).c_str());
  }
  std::string head, files_part;
  if (a.format == "keylime") {
    std::vector<std::string> lost;
    head = policy.ToKeylimeJson(&lost);
  } else {
    head = refs::NativeManifestJsonHead(policy);
    files_part = files_json.get();
  }
  if (Status st = WriteOutput(a.out, {head, files_part, "\n"}); !st.ok()) return ReportError(st);

  uint64_t files = 0, digests = 0, links = 0, other = 0;
  for (const auto& e : m->entries) {
    if (e.kind == refs::FileKind::kSymlink) ++links;
    else if (e.kind == refs::FileKind::kOther) ++other;
    else ++files;
    if (!e.digest.empty()) ++digests;
  }
  const uint64_t problems = m->errors + not_utf8.size();
  if (!a.quiet) {
    std::fprintf(stderr,
                 "lim: scanned %llu files (%s) in %.2f s, %s: %llu digests (%s), %zu policy paths, %llu links, %llu "
                 "other, %llu excluded, %zu mounts not crossed, %llu problems\n",
                 static_cast<unsigned long long>(files), Amount(m->bytes_hashed).c_str(), seconds,
                 Rate(static_cast<double>(m->bytes_hashed), seconds).c_str(), static_cast<unsigned long long>(digests),
                 algo->kernel_name, policy.paths(), static_cast<unsigned long long>(links),
                 static_cast<unsigned long long>(other), static_cast<unsigned long long>(m->excluded),
                 m->mounts_skipped.size(), static_cast<unsigned long long>(problems));
  }
  return problems == 0 ? kExitOk : kExitCheckFailed;
}

void RegisterScan(CLI::App& app) {
  static ScanArgs a;
  CLI::App* cmd = app.add_subcommand(
      "scan",
      "Reference values from trees: a manifest (path, kind, size, mode, digest, interpreter) and a runtime policy "
      "allowing each file's digest (exit 1 if a file could not be hashed)");
  cmd->add_option("PATH", a.paths, "directories or files (links below them are recorded, never followed)")->required();
  cmd->add_option("--exclude", a.excludes,
                  "fnmatch glob, repeatable: with a '/' matched against the whole path, else against the name; an "
                  "excluded directory is not entered")
      ->allow_extra_args(false);  // one glob per --exclude: the PATHs after it stay PATHs
  cmd->add_flag("--xdev", a.xdev, "do not enter other filesystems (as find -xdev)");
  cmd->add_option("--hash,-a", a.hash, "file digest algorithm (default sha256; any IMA hash OpenSSL computes)");
  cmd->add_option("-o,--out", a.out, "write here instead of standard output (a regular file is replaced atomically)");
  cmd->add_option("--format", a.format, "lim (native policy with the manifest under \"files\") or keylime")
      ->check(CLI::IsMember({"lim", "native", "keylime"}));
  cmd->add_option("--root", a.root,
                  "record paths relative to this directory (an image mounted elsewhere): --root /mnt/img "
                  "/mnt/img/usr lists /usr/…");
  cmd->add_option("--admindir", a.admindir,
                  "dpkg database for the owner column (default: the image's /var/lib/dpkg when it has one; \"\" "
                  "for none)");
  cmd->add_option("-j,--jobs", a.jobs, "hashing threads (default: one per CPU)");
  cmd->add_option("--max-depth", a.max_depth, "directory levels entered below a PATH (default 256)");
  cmd->add_flag("-q,--quiet", a.quiet, "no progress and no summary line (problems are still named)");
  cmd->callback([cmd] {
    a.admindir_given = cmd->get_option("--admindir")->count() > 0;
    ExitCode() = RunScan(a);
  });
}

}  // namespace

LIM_REGISTER_COMMAND(RegisterScan);

}  // namespace lim::cli
