#include "daemon/mount_watch.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>

namespace lim::daemon {
namespace {

TEST(MountWatch, DefaultSetIsDiskFilesystemsTmpfsOverlayAndFuse) {
  for (const char* t : {"ext4", "xfs", "btrfs", "tmpfs", "vfat", "squashfs", "overlay", "fuse", "fuseblk", "fuse.sshfs"}) {
    EXPECT_TRUE(DefaultFsType(t)) << t;
  }
  for (const char* t : {"proc", "sysfs", "devtmpfs", "fusectl", "cgroup2", "nfs4"}) {
    EXPECT_FALSE(DefaultFsType(t)) << t;
  }
}

TEST(MountWatch, WithWatchOnlyTheRootsAndBelow) {
  std::vector<std::string> watch = {"/mnt/a", "/srv"};
  EXPECT_TRUE(MountQualifies("ext4", "/mnt/a", watch));
  EXPECT_TRUE(MountQualifies("tmpfs", "/mnt/a/b/c", watch));
  EXPECT_TRUE(MountQualifies("nfs4", "/srv/x", watch));  // any non-refused type below a root
  EXPECT_FALSE(MountQualifies("ext4", "/mnt/ab", watch));  // a sibling with a common prefix
  EXPECT_FALSE(MountQualifies("ext4", "/mnt", watch));
  EXPECT_FALSE(MountQualifies("ext4", "/", watch));
  EXPECT_FALSE(MountQualifies("proc", "/srv/proc", watch));
  EXPECT_FALSE(MountQualifies("fusectl", "/srv/fs/fuse/connections", watch));
  // overlay and FUSE below a root qualify (limd's own view is refused by its device).
  EXPECT_TRUE(MountQualifies("overlay", "/srv/merged", watch));
  EXPECT_TRUE(MountQualifies("fuse.lim", "/srv/view", watch));
  EXPECT_TRUE(MountQualifies("ext4", "/", {}));  // default set: by type (the root fs is refused elsewhere)
  EXPECT_FALSE(MountQualifies("proc", "/proc", {}));
}

TEST(MountWatch, QualifyingMountFindsTheSuperblocksMountInMountinfo) {
  // Lines as /proc/<pid>/mountinfo has them; the tmpfs below the watched root holds 0:77.
  const std::string mountinfo =
      "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
      "60 22 0:41 / /srv/w rw,relatime shared:2 - tmpfs w rw\n"
      "61 60 0:77 / /srv/w/u\\040x rw,relatime - tmpfs x rw,uid=65534\n"
      "62 22 0:78 / /elsewhere rw - tmpfs y rw\n"
      "63 22 0:79 / /srv/w/p rw - proc proc rw\n";
  MountWatchOptions o;
  o.watch = {"/srv/w"};
  MountWatch w(o, nullptr, nullptr);
  auto m = w.QualifyingMount(mountinfo, 42, makedev(0, 77));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->mount_point, "/srv/w/u x");  // octal escapes undone
  EXPECT_EQ(m->fstype, "tmpfs");
  EXPECT_EQ(m->path, "/proc/42/root/srv/w/u x");
  EXPECT_FALSE(w.QualifyingMount(mountinfo, 42, makedev(0, 78)).has_value());  // not below the root
  EXPECT_FALSE(w.QualifyingMount(mountinfo, 42, makedev(0, 79)).has_value());  // a refused type
  EXPECT_FALSE(w.QualifyingMount(mountinfo, 42, makedev(0, 99)).has_value());  // in no mount
  EXPECT_FALSE(w.QualifyingMount("garbage\n\n7 8\n", 42, makedev(0, 77)).has_value());
  MountWatch by_type(MountWatchOptions{}, nullptr, nullptr);  // no --watch: the default set
  EXPECT_TRUE(by_type.QualifyingMount(mountinfo, 42, makedev(0, 78)).has_value());
  EXPECT_FALSE(by_type.QualifyingMount(mountinfo, 42, makedev(0, 79)).has_value());
}

TEST(MountWatch, FsTypeAtIsTheDeepestMountAbovePath) {
  const std::string mountinfo =
      "22 1 253:0 / / rw - ext4 /dev/root rw\n"
      "60 22 0:41 / /srv rw - tmpfs w rw\n"
      "61 60 0:77 / /srv/fuse rw - fuse.sshfs x rw\n"
      "62 22 0:78 / /srvx rw - xfs y rw\n";
  EXPECT_EQ(FsTypeAt(mountinfo, "/srv/fuse/bin/prog"), "fuse.sshfs");
  EXPECT_EQ(FsTypeAt(mountinfo, "/srv/fuse"), "fuse.sshfs");
  EXPECT_EQ(FsTypeAt(mountinfo, "/srv/fusex/prog"), "tmpfs");  // a sibling with a common prefix
  EXPECT_EQ(FsTypeAt(mountinfo, "/srvx/a"), "xfs");
  EXPECT_EQ(FsTypeAt(mountinfo, "/usr/bin/true"), "ext4");
  EXPECT_EQ(FsTypeAt("", "/usr/bin/true"), "");
}

}  // namespace
}  // namespace lim::daemon
