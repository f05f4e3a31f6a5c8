// lim_test_fusefs: a small read-only FUSE server for limd's root tests. Serves the regular
// files of one source directory (flat, no subdirectories) under a mount point, reading
// them through open()/pread() on the source at every FUSE_OPEN/FUSE_READ. Every file
// reports one fixed mtime and ctime whatever its content: a file system whose change
// detection cannot be trusted, as the kernel assumes of FUSE.
//
// With LIM_TEST_FUSEFS_REFUSE_UID=N in the environment, FUSE_OPEN from uid N fails with
// EACCES (a server with an access policy of its own). With LIM_TEST_FUSEFS_HANG=NAME,
// FUSE_READ of /NAME never answers (a server that hangs: single-threaded, it then answers
// nothing else either, until it is killed).
//
// With LIM_TEST_FUSEFS_XATTRS=1, xattrs (get, set, list, remove), chmod and chown pass
// through to the source file and inode numbers are the source's (use_ino): a FUSE file
// system EVM can protect (the EVM root tests).
//
//   lim_test_fusefs SRC MOUNTPOINT [FUSE options…]   (foreground, single-threaded)
#define FUSE_USE_VERSION 35

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::string g_src;
long g_refuse_uid = -1;
std::string g_hang;  // "/NAME": reads never answered
bool g_xattrs = false;
constexpr time_t kFixedTime = 1000000000;  // 2001-09-09: never changes

std::string Source(const char* path) { return g_src + path; }

int GetAttr(const char* path, struct stat* st, fuse_file_info*) {
  if (std::string(path) == "/") {
    memset(st, 0, sizeof *st);
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (::stat(Source(path).c_str(), st) != 0) return -errno;
  if (!S_ISREG(st->st_mode)) return -ENOENT;
  st->st_mtime = st->st_ctime = kFixedTime;
  st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = 0;
  return 0;
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*, fuse_readdir_flags) {
  if (std::string(path) != "/") return -ENOENT;
  fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  DIR* d = ::opendir(g_src.c_str());
  if (!d) return -errno;
  while (dirent* e = ::readdir(d)) {
    if (e->d_type == DT_REG) fill(buf, e->d_name, nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  }
  ::closedir(d);
  return 0;
}

int Open(const char* path, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  if (g_refuse_uid >= 0 && static_cast<long>(fuse_get_context()->uid) == g_refuse_uid) return -EACCES;
  int fd = ::open(Source(path).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  fi->fh = static_cast<uint64_t>(fd);
  return 0;
}

int Read(const char* path, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  while (!g_hang.empty() && g_hang == path) ::pause();
  ssize_t n = ::pread(static_cast<int>(fi->fh), buf, size, off);
  return n < 0 ? -errno : static_cast<int>(n);
}

int Release(const char*, fuse_file_info* fi) {
  ::close(static_cast<int>(fi->fh));
  return 0;
}

int GetXattr(const char* path, const char* name, char* value, size_t size) {
  ssize_t n = ::lgetxattr(Source(path).c_str(), name, value, size);
  return n < 0 ? -errno : static_cast<int>(n);
}

int SetXattr(const char* path, const char* name, const char* value, size_t size, int flags) {
  return ::lsetxattr(Source(path).c_str(), name, value, size, flags) != 0 ? -errno : 0;
}

int ListXattr(const char* path, char* list, size_t size) {
  ssize_t n = ::llistxattr(Source(path).c_str(), list, size);
  return n < 0 ? -errno : static_cast<int>(n);
}

int RemoveXattr(const char* path, const char* name) {
  return ::lremovexattr(Source(path).c_str(), name) != 0 ? -errno : 0;
}

int Chmod(const char* path, mode_t mode, fuse_file_info*) {
  return ::chmod(Source(path).c_str(), mode) != 0 ? -errno : 0;
}

int Chown(const char* path, uid_t uid, gid_t gid, fuse_file_info*) {
  return ::lchown(Source(path).c_str(), uid, gid) != 0 ? -errno : 0;
}

void* Init(fuse_conn_info*, fuse_config* cfg) {
  if (!g_xattrs) return nullptr;
  cfg->use_ino = 1;
  // Attributes straight from the server: a change made on the source shows at once.
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SRC MOUNTPOINT [FUSE options]\n", argv[0]);
    return 2;
  }
  g_src = argv[1];
  if (const char* r = std::getenv("LIM_TEST_FUSEFS_REFUSE_UID")) g_refuse_uid = std::atol(r);
  if (const char* h = std::getenv("LIM_TEST_FUSEFS_HANG")) g_hang = std::string("/") + h;
  if (const char* x = std::getenv("LIM_TEST_FUSEFS_XATTRS")) g_xattrs = std::string(x) == "1";
  fuse_operations ops{};
  ops.init = Init;
  if (g_xattrs) {
    ops.getxattr = GetXattr;
    ops.setxattr = SetXattr;
    ops.listxattr = ListXattr;
    ops.removexattr = RemoveXattr;
    ops.chmod = Chmod;
    ops.chown = Chown;
  }
  ops.getattr = GetAttr;
  ops.readdir = ReadDir;
  ops.open = Open;
  ops.read = Read;
  ops.release = Release;
  std::vector<char*> args = {argv[0], argv[2], const_cast<char*>("-f"), const_cast<char*>("-s")};
  for (int i = 3; i < argc; ++i) args.push_back(argv[i]);
  return fuse_main(static_cast<int>(args.size()), args.data(), &ops, nullptr);
}
