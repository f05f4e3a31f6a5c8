// ProcessExe: measuring a running process's executable through /proc/<pid>/exe, for the
// execs fanotify never shows limd — a memfd (memfd_create, then fexecve/execveat with
// AT_EMPTY_PATH, as runc, systemd's sd-executor copies and fileless loaders do). A memfd
// lives on the kernel's internal shm mount, which is in no mount namespace and can carry no
// fanotify mark, so its exec raises no event. The kernel's IMA measures it at BPRM_CHECK
// (tcb's tmpfs rule is FILE_CHECK only) under the name ima_d_path() gives: d_absolute_path()
// fails on an internal mount, so the dentry name, "memfd:NAME" (/proc shows the same file
// as "/memfd:NAME (deleted)").
//
// Interface for the callers (the start scan now; the sched_process_exec tracepoint consumer
// as soon as it exists — it calls MeasureProcessExe(pid) for every exec whose binary it
// cannot otherwise see, from its own registered thread):
//
//   ExeOutcome o = MeasureProcessExe(measurer, list, pid, ExeOptions{"exec", filename, true});
//
// - opens /proc/<pid>/exe once (O_RDONLY): the magic link resolves to the very file the
//   process runs, never a lookup of its name, so a rename or a new file under that name
//   cannot be measured in its place; fstat() on that fd says what it is;
// - a memfd (the superblock of memfd_create's own probe file, MemfdDevice()): the
//   BPRM_CHECK step through Measurer::Process() on that fd, as the policy says (the entry in
//   the policy's template, cached per inode like any file, duplicates suppressed); the
//   digest is of the content now — a memfd written after the exec is hashed as it is now
//   (the running text is a private mapping of the same pages);
// - any other file: kOther, nothing appended (fanotify saw its exec on a marked filesystem,
//   or its filesystem is not one limd marks: the caller's business — item 1 of issue 17);
// - /proc/<pid>/exe unreadable (the process exited, or is a kernel thread): kGone, and with
//   options.gap_if_gone a gap entry `lim-exe-unmeasured` (ima-buf, zero digest, PCR
//   extended with 0xFF like the kernel's violations) whose buffer names what is known:
//   `pid=N;exe=<the link, or the caller's name>;why=<options.why>;error=<errno text>;`.
//
// Threading: any thread that is registered as limd's (base/own_threads.h) and is not the
// fanotify reader: opening /proc/<pid>/exe of a file on a marked filesystem raises an event
// that only the reader can answer. The start scan runs before the marks exist.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "daemon/measurement_list.h"
#include "daemon/measurer.h"

namespace lim::daemon {

// st_dev of the superblock memfd_create() files live on (probed once with a memfd of
// limd's own); 0 when the kernel has no memfd_create.
uint64_t MemfdDevice();

// The name the kernel's IMA records for a file /proc shows as `link` on the memfd
// superblock: "/memfd:foo (deleted)" -> "memfd:foo".
std::string MemfdImaName(const std::string& link);

struct ExeOptions {
  std::string why = "running";  // for the gap entry and logs: "start scan", "exec", …
  std::string name_hint;        // the caller's name for the exec (tracepoint filename), for a gap
  bool gap_if_gone = false;     // kGone appends a lim-exe-unmeasured gap entry
};

struct ExeOutcome {
  enum class Kind { kMemfd, kOther, kGone } kind = Kind::kGone;
  std::string link;   // /proc/<pid>/exe as /proc shows it (empty when unreadable)
  std::string name;   // the entry's name (kMemfd)
  uint64_t dev = 0, ino = 0;
  Verdict verdict;    // kMemfd: what Measurer::Process() did
  bool gap = false;   // a lim-exe-unmeasured entry was appended
  std::string error;  // kGone: why /proc/<pid>/exe could not be opened; or the append error
};

ExeOutcome MeasureProcessExe(Measurer* measurer, MeasurementList* list, pid_t pid, const ExeOptions& options);

}  // namespace lim::daemon
