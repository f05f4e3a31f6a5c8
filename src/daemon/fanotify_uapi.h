// fanotify_uapi: the fanotify constants and records of Linux 6.14+ that Debian 12's
// <linux/fanotify.h> lacks (pre-content events, their range record, mount-namespace marks
// and mount events). Values are those of the kernel's include/uapi/linux/fanotify.h; each
// is defined only when the system header does not have it. Header only, no state.
#pragma once

#include <linux/types.h>
#include <sys/fanotify.h>

#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000  // pre-content access (read, write, mmap), 6.14+
#endif
#ifndef FAN_MNT_ATTACH
#define FAN_MNT_ATTACH 0x01000000  // a mount was attached to a watched namespace, 6.15+
#endif
#ifndef FAN_MNT_DETACH
#define FAN_MNT_DETACH 0x02000000
#endif
#ifndef FAN_REPORT_MNT
#define FAN_REPORT_MNT 0x00004000  // fanotify_init: report mount events
#endif
#ifndef FAN_REPORT_FD_ERROR
#define FAN_REPORT_FD_ERROR 0x00002000  // fanotify_init: event->fd may carry an open error, 6.13+
#endif
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400
#endif
#ifndef FAN_MARK_MNTNS
#define FAN_MARK_MNTNS 0x00000110  // mark object: a mount namespace (fd of /proc/<pid>/ns/mnt)
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6
#endif
#ifndef FAN_EVENT_INFO_TYPE_MNT
#define FAN_EVENT_INFO_TYPE_MNT 7
#endif

namespace lim::daemon::uapi {

// FAN_EVENT_INFO_TYPE_RANGE: the file range of a pre-content event.
struct fanotify_event_info_range {
  struct fanotify_event_info_header hdr;
  __u32 pad;
  __u64 offset;
  __u64 count;
};

// FAN_EVENT_INFO_TYPE_MNT: the unique mount id (statx STATX_MNT_ID_UNIQUE) of a mount event.
struct fanotify_event_info_mnt {
  struct fanotify_event_info_header hdr;
  __u64 mnt_id;
};

}  // namespace lim::daemon::uapi
