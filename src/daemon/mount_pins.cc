#include "daemon/mount_pins.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <sstream>
#include <vector>

#include "base/file.h"
#include "base/mountinfo.h"

namespace lim::daemon {

namespace {

// Reads an open /proc/<pid>/mountinfo again from its start: the namespace as it is now.
std::string Reread(int fd) {
  std::string out;
  if (::lseek(fd, 0, SEEK_SET) != 0) return out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (64u << 20)) break;  // a namespace with a million mounts: enough
  }
  return out;
}

// The mount id of the mount behind /proc/<pid>/fd/<fd> ("mnt_id:" of its fdinfo).
std::string MountIdOfFd(pid_t pid, int fd) {
  auto info = ReadFileText("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  if (!info.ok()) return "";
  size_t at = info->find("mnt_id:");
  if (at == std::string::npos) return "";
  std::istringstream in(info->substr(at + 7));
  std::string id;
  in >> id;
  return id;
}

bool MountIdListed(const std::string& mountinfo, const std::string& id) {
  for (const auto& m : ParseMountinfo(mountinfo)) {
    if (m.id == id) return true;
  }
  return false;
}

}  // namespace

std::optional<MountOfDev> FindMountOfDev(const std::string& mountinfo, uint64_t dev) {
  for (const auto& m : ParseMountinfo(mountinfo)) {
    if (static_cast<uint64_t>(m.dev) == dev) return MountOfDev{m.mount_point, m.fstype};
  }
  return std::nullopt;
}

std::string FsTypeOfFd(int fd) {
  struct statfs sf;
  if (::fstatfs(fd, &sf) != 0) return "";
  // include/uapi/linux/magic.h: the types an exec may come from and DefaultFsType knows.
  static const std::pair<uint64_t, const char*> kTypes[] = {
      {0x01021994, "tmpfs"}, {0xef53, "ext4"},     {0x58465342, "xfs"},    {0x9123683e, "btrfs"},
      {0xf2f52010, "f2fs"},  {0x4d44, "vfat"},     {0x2011bab0, "exfat"},  {0x7366746e, "ntfs3"},
      {0x73717368, "squashfs"}, {0xe0f5e1e2, "erofs"}, {0x9660, "iso9660"}, {0xca451a4e, "bcachefs"},
      {0x794c7630, "overlay"}, {0x65735546, "fuse"},
  };
  for (const auto& [magic, name] : kTypes) {
    if (static_cast<uint64_t>(sf.f_type) == magic) return name;
  }
  return "";
}

MountPins::~MountPins() {
  for (auto& [k, p] : ns_) Close(p);
  for (auto& [k, p] : detached_) Close(p);
}

void MountPins::Close(Pin& p) {
  if (p.root_fd >= 0) ::close(p.root_fd);
  if (p.mountinfo_fd >= 0) ::close(p.mountinfo_fd);
  p.root_fd = p.mountinfo_fd = -1;
}

void MountPins::Expire(uint64_t now_ns) {
  for (auto* m : {&ns_, &detached_}) {
    for (auto it = m->begin(); it != m->end();) {
      if (now_ns - it->second.at_ns > kept_ns_) {
        Close(it->second);
        it = m->erase(it);
      } else {
        ++it;
      }
    }
  }
}

void MountPins::MakeRoom() {
  while (size() >= max_ && size() > 0) {
    // The oldest of both kinds.
    auto oldest = [](std::map<uint64_t, Pin>& m) {
      auto best = m.end();
      for (auto it = m.begin(); it != m.end(); ++it) {
        if (best == m.end() || it->second.at_ns < best->second.at_ns) best = it;
      }
      return best;
    };
    auto a = oldest(ns_), b = oldest(detached_);
    auto& m = a == ns_.end() || (b != detached_.end() && b->second.at_ns < a->second.at_ns) ? detached_ : ns_;
    auto it = &m == &ns_ ? a : b;
    Close(it->second);
    m.erase(it);
  }
}

bool MountPins::PinNamespace(pid_t pid, uint64_t now_ns) {
  std::string proc = "/proc/" + std::to_string(pid);
  struct stat ns;
  if (::stat((proc + "/ns/mnt").c_str(), &ns) != 0) return false;
  Expire(now_ns);
  auto it = ns_.find(static_cast<uint64_t>(ns.st_ino));
  if (it != ns_.end()) {
    it->second.at_ns = now_ns;
    return true;
  }
  Pin p;
  p.pid = pid;
  p.at_ns = now_ns;
  p.root_fd = ::open((proc + "/root").c_str(), O_PATH | O_CLOEXEC);
  p.mountinfo_fd = ::open((proc + "/mountinfo").c_str(), O_RDONLY | O_CLOEXEC);
  // The namespace must be the one stat'ed: pid may have exec'd into another (setns) since.
  struct stat again;
  if (p.root_fd < 0 || p.mountinfo_fd < 0 || ::stat((proc + "/ns/mnt").c_str(), &again) != 0 ||
      again.st_ino != ns.st_ino) {
    Close(p);
    return false;
  }
  MakeRoom();
  ns_[static_cast<uint64_t>(ns.st_ino)] = p;
  return true;
}

std::optional<uint64_t> MountPins::PinDetached(pid_t pid, int fd, uint64_t now_ns) {
  if (fd < 0) return std::nullopt;
  std::string proc = "/proc/" + std::to_string(pid);
  Pin p;
  p.pid = pid;
  p.at_ns = now_ns;
  p.root_fd = ::open((proc + "/fd/" + std::to_string(fd)).c_str(), O_PATH | O_CLOEXEC);
  if (p.root_fd < 0) return std::nullopt;
  struct stat st;
  std::string id = MountIdOfFd(::getpid(), p.root_fd);
  auto mountinfo = ReadFileText(proc + "/mountinfo");
  if (::fstat(p.root_fd, &st) != 0 || id.empty() || !mountinfo.ok() || MountIdListed(*mountinfo, id)) {
    Close(p);  // attached (open_tree without OPEN_TREE_CLONE): discovery's
    return std::nullopt;
  }
  p.dev = static_cast<uint64_t>(st.st_dev);
  Expire(now_ns);
  MakeRoom();
  uint64_t key = std::strtoull(id.c_str(), nullptr, 10);
  if (auto it = detached_.find(key); it != detached_.end()) Close(it->second);
  detached_[key] = p;
  return p.dev;
}

void MountPins::Attached(pid_t pid) {
  for (auto it = detached_.begin(); it != detached_.end();) {
    if (it->second.pid == pid) {
      Close(it->second);
      it = detached_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<MountPins::Place> MountPins::Find(uint64_t dev, uint64_t now_ns) {
  Expire(now_ns);
  for (auto& [ino, p] : ns_) {
    std::string text = Reread(p.mountinfo_fd);
    auto m = FindMountOfDev(text, dev);
    if (!m) continue;
    return Place{p.root_fd, std::move(text), m->fstype, false};
  }
  for (auto& [id, p] : detached_) {
    if (p.dev != dev) continue;
    return Place{p.root_fd, "", FsTypeOfFd(p.root_fd), true};
  }
  return std::nullopt;
}

}  // namespace lim::daemon
