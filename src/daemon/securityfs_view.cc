#define FUSE_USE_VERSION 35
#include "daemon/securityfs_view.h"

#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <unordered_map>

#include "base/file.h"
#include "base/hex.h"
#include "base/own_threads.h"
#include "daemon/evm_state.h"
#include "ima/list_reader.h"

namespace lim::daemon {

namespace {

constexpr const char* kAscii = "ascii_runtime_measurements";
constexpr const char* kBinary = "binary_runtime_measurements";
constexpr int kFuseThreads = 2;

Status OsError(const std::string& what, const std::string& path) {
  return Status::IoError(what + " " + path + ": " + std::strerror(errno));
}

int Errno(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorrupt:
    case StatusCode::kUnsupported: return EINVAL;
    case StatusCode::kNotFound: return ENOENT;
    case StatusCode::kUnavailable: return EBUSY;
    default: return EIO;
  }
}

}  // namespace

std::vector<HashAlgo> ViewBanks(const std::vector<uint16_t>& tpm_banks) {
  std::vector<HashAlgo> out{Sha1Algo()};
  for (uint16_t b : tpm_banks) {
    auto a = HashAlgoByTpmAlg(b);
    if (!a.ok() || !HashAlgoAvailable(*a)) continue;  // kernel: _tpm_alg_<id> (padded); not served yet
    bool seen = false;
    for (const auto& o : out) seen = seen || o == *a;
    if (!seen) out.push_back(*a);
  }
  return out;
}

Result<std::unique_ptr<ListRenderer>> ListRenderer::Create(ByteView sha1_list, const HashAlgo& bank,
                                                           ima::RenderFormat format) {
  std::unique_ptr<ListRenderer> r(new ListRenderer());
  if (sha1_list.empty()) return r;
  ima::ListOptions opts;
  opts.bank = Sha1Algo();
  opts.byte_order = kNativeOrder;
  LIM_ASSIGN_OR_RETURN(r->reader_, ima::ListReader::FromBytes(sha1_list, opts, "limd list"));
  LIM_ASSIGN_OR_RETURN(auto e, ima::EntryRenderer::Create(format, Sha1Algo(), bank, kNativeOrder));
  r->entry_.emplace(std::move(e));
  return r;
}

Result<bool> ListRenderer::Next(std::string* out) {
  if (!reader_) return false;
  ima::Entry e;
  LIM_ASSIGN_OR_RETURN(bool more, reader_->Next(&e));
  if (!more) return false;
  LIM_RETURN_IF_ERROR(entry_->Append(e, out));
  return true;
}

Result<std::string> RenderAsciiList(ByteView sha1_list, const HashAlgo& bank) {
  LIM_ASSIGN_OR_RETURN(auto r, ListRenderer::Create(sha1_list, bank, ima::RenderFormat::kAscii));
  std::string out;
  for (;;) {
    LIM_ASSIGN_OR_RETURN(bool more, r->Next(&out));
    if (!more) return out;
  }
}

Result<Bytes> RenderBinaryList(ByteView sha1_list, const HashAlgo& bank) {
  if (bank == Sha1Algo()) return Bytes(sha1_list.begin(), sha1_list.end());
  LIM_ASSIGN_OR_RETURN(auto r, ListRenderer::Create(sha1_list, bank, ima::RenderFormat::kBinary));
  std::string out;
  for (;;) {
    LIM_ASSIGN_OR_RETURN(bool more, r->Next(&out));
    if (!more) return Bytes(out.begin(), out.end());
  }
}

std::vector<std::pair<std::string, ViewNode>> BuildViewTree(const std::vector<HashAlgo>& banks, bool boot_log,
                                                           bool evm_xattrs) {
  using T = ViewNode::Type;
  using F = ViewNode::File;
  std::vector<std::pair<std::string, ViewNode>> t;
  auto dir = [&](std::string path, std::vector<std::string> children) {
    ViewNode n;
    n.type = T::kDir;
    n.mode = 0755;
    n.children = std::move(children);
    t.emplace_back(std::move(path), std::move(n));
  };
  auto link = [&](std::string path, std::string target) {
    ViewNode n;
    n.type = T::kLink;
    n.mode = 0777;
    n.target = std::move(target);
    t.emplace_back(std::move(path), std::move(n));
  };
  auto file = [&](std::string path, F kind, uint32_t mode, HashAlgo bank = {}) {
    ViewNode n;
    n.type = T::kFile;
    n.mode = mode;
    n.file = kind;
    n.bank = bank;
    t.emplace_back(std::move(path), std::move(n));
  };
  std::vector<std::string> root{"integrity", "ima", "evm"};
  if (boot_log) root.push_back("tpm0");
  dir("/", root);
  link("/ima", "integrity/ima");
  link("/evm", "integrity/evm/evm");
  dir("/integrity", {"ima", "evm"});
  if (evm_xattrs) {
    dir("/integrity/evm", {"evm", "evm_xattrs"});
    file("/integrity/evm/evm_xattrs", F::kEvmXattrs, 0660);
  } else {
    dir("/integrity/evm", {"evm"});
  }
  file("/integrity/evm/evm", F::kEvm, 0660);
  std::vector<std::string> ima{kAscii, kBinary};
  for (const auto& b : banks) {
    ima.push_back(std::string(kAscii) + "_" + b.kernel_name);
    ima.push_back(std::string(kBinary) + "_" + b.kernel_name);
  }
  ima.insert(ima.end(), {"runtime_measurements_count", "violations", "policy"});
  dir("/integrity/ima", ima);
  const std::string p = "/integrity/ima/";
  link(p + kAscii, std::string(kAscii) + "_sha1");
  link(p + kBinary, std::string(kBinary) + "_sha1");
  for (const auto& b : banks) {
    file(p + kAscii + "_" + b.kernel_name, F::kAscii, 0440, b);
    file(p + kBinary + "_" + b.kernel_name, F::kBinary, 0440, b);
  }
  file(p + "runtime_measurements_count", F::kCount, 0440);
  file(p + "violations", F::kViolations, 0440);
  file(p + "policy", F::kPolicy, 0600);
  if (boot_log) {
    dir("/tpm0", {"binary_bios_measurements"});
    file("/tpm0/binary_bios_measurements", F::kBootLog, 0440);
  }
  return t;
}

Status PrepareMountPoint(const std::string& dir, std::string* note) {
  struct statfs sfs;
  if (::statfs(dir.c_str(), &sfs) != 0) {
    if (errno == ENOTCONN) {
      // A FUSE mount whose server is gone (a crashed limd): detach it.
      if (::umount2(dir.c_str(), MNT_DETACH) != 0) return OsError("unmount stale view", dir);
      if (note) *note = "unmounted a stale view at " + dir;
    } else if (errno != ENOENT) {
      return OsError("statfs", dir);
    }
  } else if (static_cast<uint64_t>(sfs.f_type) == kFuseSuperMagic) {
    struct stat st, parent;
    if (::stat(dir.c_str(), &st) == 0 && ::stat((dir + "/..").c_str(), &parent) == 0 && st.st_dev != parent.st_dev) {
      return Status::Unavailable(dir + " is already a FUSE mount (another limd's view?)");
    }
  }
  // mkdir -p
  for (size_t at = 1; at <= dir.size(); ++at) {
    if (at != dir.size() && dir[at] != '/') continue;
    std::string part = dir.substr(0, at);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return OsError("mkdir", part);
  }
  return Status::Ok();
}

namespace {

// audit_log_untrustedstring: quoted, or upper-case hex (audit_log_n_hex) when a quote,
// space or control byte is in it.
std::string UntrustedString(std::string_view s) {
  for (unsigned char c : s) {
    if (c == '"' || c < 0x21 || c > 0x7e) {
      std::string h = ToHex(AsBytes(s));
      for (char& x : h) x = static_cast<char>(std::toupper(static_cast<unsigned char>(x)));
      return h;
    }
  }
  return "\"" + std::string(s) + "\"";
}

}  // namespace

int WriteEvmXattrs(EvmState* evm, std::atomic<bool>* locked, std::string_view data, std::string* audit) {
  audit->clear();
  if (locked->load()) return -EPERM;
  if (data.size() > 255) return -E2BIG;  // XATTR_NAME_MAX
  std::string_view name = data.substr(0, data.find('\0'));
  if (!name.empty() && name.back() == '\n') name.remove_suffix(1);
  int res = static_cast<int>(data.size());
  if (name == ".") {
    locked->store(true);
  } else {
    switch (evm->AddXattr(name)) {
      case ima::EvmXattrList::AddResult::kAdded:
      case ima::EvmXattrList::AddResult::kEnabled:
        break;
      case ima::EvmXattrList::AddResult::kExists:
        res = -EEXIST;
        break;
      case ima::EvmXattrList::AddResult::kNotSecurity:
        res = -EINVAL;
        break;
    }
  }
  *audit = "xattr=" + UntrustedString(name) + " res=" + std::to_string(res < 0 ? res : 0);
  return res;
}

// ---- FUSE side ----

struct SecurityfsView::Impl {
  MeasurementList* list = nullptr;
  LivePolicy* policy = nullptr;
  int list_fd = -1;
  Bytes boot_log;
  uint32_t evm_flags = 0;
  EvmState* evm = nullptr;
  std::function<void(const std::string&)> audit;
  std::atomic<bool> evm_xattrs_locked{false};
  std::unordered_map<std::string, ViewNode> tree;
  struct timespec started {};

  ~Impl() {
    if (list_fd >= 0) ::close(list_fd);
  }

};

namespace {

// One open file of the view.
struct Handle {
  ~Handle() {
    if (map) ::munmap(map, limit);
  }
  ViewNode::File file = ViewNode::File::kNone;
  std::string content;     // counters, policy, boot log: rendered at open
  uint64_t limit = 0;      // lists: the store's visible bytes at open, [0, limit)
  bool from_store = false;  // binary sha1: pread from the store
  // Other lists: the snapshot mapped, rendered while the reader reads. out holds the
  // rendering of [out_base, out_base + out.size()).
  void* map = nullptr;
  HashAlgo bank{};
  std::unique_ptr<ListRenderer> renderer;
  std::string out;
  uint64_t out_base = 0;
  bool done = false;
  std::mutex mu;           // requests on one open file arrive on any FUSE thread
  std::unique_ptr<PolicyWriter> writer;
  bool evm_xattrs_writer = false;

  ByteView snapshot() const { return {static_cast<const uint8_t*>(map), map ? limit : 0}; }
  Status Restart() {
    LIM_ASSIGN_OR_RETURN(renderer, ListRenderer::Create(
                                       snapshot(), bank,
                                       file == ViewNode::File::kAscii ? ima::RenderFormat::kAscii : ima::RenderFormat::kBinary));
    out.clear();
    out_base = 0;
    done = false;
    return Status::Ok();
  }
  // Serves [off, off + size) of the rendering.
  Result<size_t> ReadRendered(char* buf, size_t size, uint64_t off) {
    if (off < out_base) LIM_RETURN_IF_ERROR(Restart());  // a seek backwards renders again
    while (!done && out_base + out.size() < off + size) {
      LIM_ASSIGN_OR_RETURN(bool more, renderer->Next(&out));
      done = !more;
    }
    size_t drop = static_cast<size_t>(std::min<uint64_t>(off - out_base, out.size()));
    out.erase(0, drop);
    out_base += drop;
    if (off != out_base) return 0;  // past the end
    size_t n = std::min(size, out.size());
    std::memcpy(buf, out.data(), n);
    return n;
  }
};

SecurityfsView::Impl* Self() { return static_cast<SecurityfsView::Impl*>(fuse_get_context()->private_data); }
Handle* H(struct fuse_file_info* fi) { return reinterpret_cast<Handle*>(fi->fh); }

const ViewNode* Find(const char* path) {
  auto& tree = Self()->tree;
  auto it = tree.find(path);
  return it == tree.end() ? nullptr : &it->second;
}

void* OpInit(struct fuse_conn_info*, struct fuse_config* cfg) {
  cfg->direct_io = 1;  // sizes are unknown (securityfs): every read reaches limd
  cfg->kernel_cache = 0;
  cfg->entry_timeout = 60;
  cfg->attr_timeout = 1;
  return fuse_get_context()->private_data;
}

int OpGetattr(const char* path, struct stat* st, struct fuse_file_info*) {
  const ViewNode* n = Find(path);
  if (!n) return -ENOENT;
  std::memset(st, 0, sizeof *st);
  switch (n->type) {
    case ViewNode::Type::kDir:
      st->st_mode = S_IFDIR | n->mode;
      st->st_nlink = 2;
      break;
    case ViewNode::Type::kLink:
      st->st_mode = S_IFLNK | n->mode;
      st->st_nlink = 1;
      st->st_size = static_cast<off_t>(n->target.size());
      break;
    case ViewNode::Type::kFile:
      st->st_mode = S_IFREG | n->mode;
      // Locked: the kernel sets evm_xattrs to 0440.
      if (n->file == ViewNode::File::kEvmXattrs && Self()->evm_xattrs_locked.load()) st->st_mode = S_IFREG | 0440;
      st->st_nlink = 1;
      st->st_size = 0;  // as securityfs: the size is not known in advance
      break;
  }
  st->st_atim = st->st_mtim = st->st_ctim = Self()->started;
  return 0;
}

int OpReadlink(const char* path, char* buf, size_t size) {
  const ViewNode* n = Find(path);
  if (!n) return -ENOENT;
  if (n->type != ViewNode::Type::kLink) return -EINVAL;
  if (size == 0) return -EINVAL;
  size_t len = std::min(size - 1, n->target.size());
  std::memcpy(buf, n->target.data(), len);
  buf[len] = 0;
  return 0;
}

int OpReaddir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, struct fuse_file_info*,
              enum fuse_readdir_flags) {
  const ViewNode* n = Find(path);
  if (!n) return -ENOENT;
  if (n->type != ViewNode::Type::kDir) return -ENOTDIR;
  fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  for (const auto& c : n->children) fill(buf, c.c_str(), nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  return 0;
}

int OpOpen(const char* path, struct fuse_file_info* fi) {
  if (fuse_get_context()->uid != 0) return -EACCES;  // root only, whatever the mount options
  const ViewNode* n = Find(path);
  if (!n) return -ENOENT;
  if (n->type != ViewNode::Type::kFile) return -EISDIR;
  auto* self = Self();
  int acc = fi->flags & O_ACCMODE;
  auto h = std::make_unique<Handle>();
  h->file = n->file;
  using F = ViewNode::File;
  if (n->file == F::kPolicy) {
    if (acc != O_RDONLY) {
      auto w = self->policy->OpenWriter();
      if (!w.ok()) return -Errno(w.status());  // EBUSY: one writer at a time
      h->writer = std::move(w).value();
    } else {
      h->content = self->policy->Show();
    }
  } else if (n->file == F::kEvm) {
    // evm_write_key: EPERM once EVM is set up, which limd's is from its start.
    if (acc != O_RDONLY) return -EPERM;
    h->content = std::to_string(self->evm_flags & 0x7fffffffu);  // without EVM_SETUP_COMPLETE
  } else if (n->file == F::kEvmXattrs) {
    h->evm_xattrs_writer = acc != O_RDONLY;
    if (acc != O_WRONLY) h->content = self->evm->XattrsText();  // the list as at open
  } else {
    if (acc != O_RDONLY) return -EACCES;
    switch (n->file) {
      case F::kCount:
        h->content = std::to_string(self->list->entries()) + "\n";
        break;
      case F::kViolations:
        h->content = std::to_string(self->list->violations()) + "\n";
        break;
      case F::kBootLog:
        h->content.assign(self->boot_log.begin(), self->boot_log.end());
        break;
      case F::kBinary:
      case F::kAscii:
        h->limit = self->list->visible_bytes();  // whole records only, fixed for this open
        if (n->file == F::kBinary && n->bank == Sha1Algo()) {
          h->from_store = true;
          break;
        }
        if (h->limit > 0) {
          // The list only grows, and what was visible never changes: map the snapshot.
          h->map = ::mmap(nullptr, h->limit, PROT_READ, MAP_SHARED, self->list_fd, 0);
          if (h->map == MAP_FAILED) {
            h->map = nullptr;
            return -EIO;
          }
        }
        h->bank = n->bank;
        if (!h->Restart().ok()) return -EIO;
        break;
      default:
        return -EINVAL;
    }
  }
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fi->fh = reinterpret_cast<uint64_t>(h.release());
  return 0;
}

int OpRead(const char*, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  Handle* h = H(fi);
  if (!h || off < 0) return -EINVAL;
  uint64_t o = static_cast<uint64_t>(off);
  if (h->from_store) {
    if (o >= h->limit) return 0;
    size_t want = static_cast<size_t>(std::min<uint64_t>(size, h->limit - o));
    ssize_t n = ::pread(Self()->list_fd, buf, want, off);
    return n < 0 ? -errno : static_cast<int>(n);
  }
  if (h->writer) return -EBADF;
  if (h->renderer) {
    std::lock_guard<std::mutex> lk(h->mu);
    auto n = h->ReadRendered(buf, size, o);
    return n.ok() ? static_cast<int>(*n) : -EIO;
  }
  if (o >= h->content.size()) return 0;
  size_t n = std::min<size_t>(size, h->content.size() - o);
  std::memcpy(buf, h->content.data() + o, n);
  return static_cast<int>(n);
}

int OpWrite(const char*, const char* buf, size_t size, off_t, struct fuse_file_info* fi) {
  Handle* h = H(fi);
  if (h && h->evm_xattrs_writer) {
    auto* self = Self();
    std::string audit;
    int r = WriteEvmXattrs(self->evm, &self->evm_xattrs_locked, std::string_view(buf, size), &audit);
    if (!audit.empty() && self->audit) self->audit(audit);
    return r;
  }
  if (!h || !h->writer) return -EBADF;
  std::lock_guard<std::mutex> lk(h->mu);
  // One line (or one policy-file path) per write, as the kernel: a short count makes the
  // writer loop. A policy file is read bounded in time and size (never a FIFO or device).
  auto n = h->writer->Write(std::string_view(buf, size));
  if (!n.ok()) return -h->writer->error_number();
  return static_cast<int>(*n);
}

int OpFlush(const char*, struct fuse_file_info* fi) {
  Handle* h = H(fi);
  if (!h || !h->writer) return 0;
  std::lock_guard<std::mutex> lk(h->mu);
  // The batch is live when close() returns. A failed or empty batch is dropped and close()
  // returns 0, as the kernel's; only a load that could not be recorded fails it.
  Status s = h->writer->Flush();
  return s.ok() ? 0 : -EIO;
}

int OpRelease(const char*, struct fuse_file_info* fi) {
  delete H(fi);
  fi->fh = 0;
  return 0;
}

// O_TRUNC and truncate(2) of policy: accepted and ignored (the kernel's policy file has no
// content to cut); the lists cannot be truncated.
int OpTruncate(const char* path, off_t, struct fuse_file_info*) {
  const ViewNode* n = Find(path);
  if (!n) return -ENOENT;
  return n->file == ViewNode::File::kPolicy ? 0 : -EACCES;
}

void Serve(struct fuse_session* se, int stop_fd) {
  struct fuse_buf buf {};
  while (!fuse_session_exited(se)) {
    struct pollfd p[2] = {{fuse_session_fd(se), POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents) break;
    int res = fuse_session_receive_buf(se, &buf);
    if (res == -EINTR || res == -EAGAIN || res == -ENOENT) continue;
    if (res <= 0) break;  // 0: unmounted (ENODEV)
    fuse_session_process_buf(se, &buf);
  }
  std::free(buf.mem);
}

}  // namespace

Result<std::unique_ptr<SecurityfsView>> SecurityfsView::Start(const ViewOptions& options, MeasurementList* list,
                                                              LivePolicy* policy, std::string* note) {
  std::unique_ptr<SecurityfsView> v(new SecurityfsView());
  v->options_ = options;
  if (options.dir.empty()) return Status::InvalidArgument("--securityfs: empty directory");
  if (options.dir.front() != '/') {
    // Mounted and later unmounted by path: make it absolute.
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return OsError("getcwd", "");
    v->options_.dir = std::string(cwd) + "/" + options.dir;
  }
  while (v->options_.dir.size() > 1 && v->options_.dir.back() == '/') v->options_.dir.pop_back();
  const ViewOptions& opt = v->options_;
  LIM_RETURN_IF_ERROR(PrepareMountPoint(opt.dir, note));
  auto impl = std::make_unique<Impl>();
  impl->list = list;
  impl->policy = policy;
  ::clock_gettime(CLOCK_REALTIME, &impl->started);
  // Opened once, now: serving never opens a file.
  impl->list_fd = ::open(list->list_path().c_str(), O_RDONLY | O_CLOEXEC);
  if (impl->list_fd < 0) return OsError("open", list->list_path());
  if (opt.boot_log) impl->boot_log = *opt.boot_log;
  impl->evm_flags = opt.evm_flags;
  impl->evm = opt.evm;
  impl->audit = opt.audit;
  for (auto& [path, node] : BuildViewTree(ViewBanks(list->banks()), opt.boot_log.has_value(), opt.evm != nullptr)) {
    impl->tree.emplace(path, std::move(node));
  }
  v->impl_ = std::move(impl);

  static const struct fuse_operations ops = [] {
    struct fuse_operations o {};
    o.init = OpInit;
    o.getattr = OpGetattr;
    o.readlink = OpReadlink;
    o.readdir = OpReaddir;
    o.open = OpOpen;
    o.read = OpRead;
    o.write = OpWrite;
    o.flush = OpFlush;
    o.release = OpRelease;
    o.truncate = OpTruncate;
    return o;
  }();
  // No allow_other: only root (the mounting uid) gets in; default_permissions makes the
  // kernel check the modes, as on securityfs.
  const char* argv[] = {"limd", "-o", "default_permissions,fsname=lim,subtype=lim-securityfs"};
  struct fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  v->fuse_ = fuse_new(&args, &ops, sizeof ops, v->impl_.get());
  fuse_opt_free_args(&args);
  if (!v->fuse_) return Status::Unavailable("fuse_new failed (libfuse3)");
  if (fuse_mount(v->fuse_, opt.dir.c_str()) != 0) {
    return Status::Unavailable("cannot mount the securityfs view at " + opt.dir + " (needs root and /dev/fuse)");
  }
  v->mounted_ = true;
  struct fuse_session* se = fuse_get_session(v->fuse_);
  int fd = fuse_session_fd(se);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);  // threads poll; Stop() wakes them
  v->stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (v->stop_fd_ < 0) return OsError("eventfd", "");
  for (int i = 0; i < kFuseThreads; ++i) v->threads_.push_back(StartOwnThread([se, fd = v->stop_fd_] { Serve(se, fd); }));
  struct stat st;
  if (::stat(opt.dir.c_str(), &st) == 0) v->dev_ = st.st_dev;
  return v;
}

void SecurityfsView::Stop() {
  if (!fuse_) return;
  // Stop the threads first: unmounting closes /dev/fuse (fuse_kern_unmount), whose fd
  // number must not be polled afterwards. Closing it aborts the connection, so a request
  // that arrived in between fails (ENOTCONN) instead of waiting.
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (mounted_) fuse_unmount(fuse_);
  mounted_ = false;
  fuse_destroy(fuse_);
  fuse_ = nullptr;
  if (stop_fd_ >= 0) ::close(stop_fd_);
  stop_fd_ = -1;
}

SecurityfsView::~SecurityfsView() { Stop(); }

}  // namespace lim::daemon
