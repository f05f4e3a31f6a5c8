// OpenForWriteProbe: asks the kernel whether anyone holds an inode open for write, through
// the fd of a fanotify event — how limd tells an io_uring write-open from a read-open.
//
// Why: limd learns an opener's flags from its syscall (/proc/<tid>/syscall). An open that
// io_uring runs (IORING_OP_OPENAT: the submitter inside io_uring_enter, or an io-wq worker
// thread) or a thread limd cannot read shows no open flags, and fanotify reports none (the
// event's fd is limd's own O_RDONLY open). But the opener's write access is already counted
// when its permission event is queued: do_dentry_open takes FMODE_WRITER (i_writecount)
// before fsnotify_open_perm. A read lease (F_SETLEASE F_RDLCK) is refused with EAGAIN
// exactly while i_writecount > 0 (fs/locks.c, check_conflicting_open), and limd's own fd
// is read-only, so it does not count. Checked on 6.18 for io_uring opens inline and on
// io-wq workers, O_RDONLY/O_WRONLY/O_RDWR/O_TRUNC (docs/appraisal.md).
//
// What it cannot say: *whose* write access it is. The caller combines it with its own
// count of writers (limd counts every write-open whose flags it knows).
//
// Side effect: between the two fcntl()s (microseconds) another process's write-open of the
// file breaks the lease — a blocking one waits for the release, an O_NONBLOCK one fails with
// EWOULDBLOCK; the break is signalled with SIGURG (ignored by default), never SIGIO.
//
// Threading: a free function; any thread (limd: the fanotify reader thread).
#pragma once

namespace lim::daemon {

enum class OpenForWrite {
  kNo,       // the lease was granted: no open file of the inode has write access
  kYes,      // refused with EAGAIN: some open file of the inode has write access
  kUnknown,  // leases are not supported here (EINVAL, ENOLCK, …): nothing known
};

// fd: a read-only fd of the inode (a fanotify event's). Leaves no lease behind.
OpenForWrite ProbeOpenForWrite(int fd);

}  // namespace lim::daemon
