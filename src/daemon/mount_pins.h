// MountPins: where a superblock can still be reached after every process that could reach
// it has exited. An unprivileged user's `unshare -Urm sh -c 'mount -t tmpfs x /mnt && cp
// prog /mnt/e && /mnt/e'` whose prog exits at once takes its namespace — and the tmpfs with
// the binary — with it, before limd has looked at /proc/<pid>/exe. So at every mount
// syscall's exit (the tracepoint's thread) the caller's namespace is pinned: an O_PATH fd
// of /proc/<pid>/root and an open /proc/<pid>/mountinfo (the open file holds the
// namespace, so its mounts stay, and re-reading it lists them). fsmount(2) and
// open_tree(OPEN_TREE_CLONE) return a mount that is in no namespace (detached): its fd in
// the caller is pinned too (an O_PATH reopen of /proc/<pid>/fd/<ret>). Find(dev) then says
// where the superblock's files can be opened by name. Pins live a few seconds (kept_ns);
// a pinned detached mount is dropped at its caller's next move_mount (attached: its
// namespace pin covers it, and an fd on it would make the user's umount fail with EBUSY).
// Bounded: at most `max` pins, the oldest dropped first.
//
// Threading: all calls from one thread (limd: the tracepoint consumer's).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace lim::daemon {

// The mountinfo line fields limd needs for superblock dev: nullopt when no line has it.
struct MountOfDev {
  std::string mount_point, fstype;
};
std::optional<MountOfDev> FindMountOfDev(const std::string& mountinfo, uint64_t dev);

// The filesystem type of an open file by its statfs magic ("" when not one limd knows).
std::string FsTypeOfFd(int fd);

class MountPins {
 public:
  MountPins(size_t max, uint64_t kept_ns) : max_(max), kept_ns_(kept_ns) {}
  ~MountPins();
  MountPins(const MountPins&) = delete;
  MountPins& operator=(const MountPins&) = delete;

  // pid's mount namespace, at now_ns (CLOCK_MONOTONIC); a namespace pinned already is
  // refreshed. False when pid is gone.
  bool PinNamespace(pid_t pid, uint64_t now_ns);
  // The mount behind fd `fd` of pid (fsmount/open_tree's return), when it is detached (its
  // mount id in no line of pid's mountinfo). Returns its superblock's dev, or nullopt.
  std::optional<uint64_t> PinDetached(pid_t pid, int fd, uint64_t now_ns);
  // pid attached a mount (move_mount): its detached pins go.
  void Attached(pid_t pid);

  struct Place {
    int root_fd = -1;       // the namespace's root, or the detached mount's (owned by the pins)
    std::string mountinfo;  // the namespace's mountinfo now ("" for a detached mount)
    std::string fstype;
    bool detached = false;
  };
  // Where superblock dev is reachable: a pinned namespace with a mount of it, or a pinned
  // detached mount of it. Drops pins older than kept_ns first.
  std::optional<Place> Find(uint64_t dev, uint64_t now_ns);
  size_t size() const { return ns_.size() + detached_.size(); }

 private:
  struct Pin {
    int root_fd = -1, mountinfo_fd = -1;
    uint64_t at_ns = 0;
    pid_t pid = 0;
    uint64_t dev = 0;  // detached: its superblock
  };
  void Expire(uint64_t now_ns);
  void MakeRoom();
  static void Close(Pin& p);

  size_t max_;
  uint64_t kept_ns_;
  std::map<uint64_t, Pin> ns_;        // namespace inode → pin
  std::map<uint64_t, Pin> detached_;  // mount id → pin
};

}  // namespace lim::daemon
