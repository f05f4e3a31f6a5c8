// TraceEvents: a consumer of kernel tracepoints — perf_event_open(2) with
// PERF_TYPE_TRACEPOINT (config = the event's id from tracefs), one ring buffer per CPU
// (every further event of that CPU redirected into it with PERF_EVENT_IOC_SET_OUTPUT),
// PERF_SAMPLE_TID | PERF_SAMPLE_TIME (CLOCK_MONOTONIC) | PERF_SAMPLE_RAW, woken per record.
// Raw records are decoded with the field offsets of the event's `format` file; a record
// too short for a field reads as absent, never past its end. Records may also come from BPF
// programs through BPF-output events in a tracepoint's layout (AddBpfOutput; ExecTraceBpf
// says why limd's exec records do). limd uses it where fanotify
// has no event: mounts in other namespaces (discovery wakes at once instead of a timer) and
// execs from filesystems limd had not marked yet (docs/limd.md "New superblocks and late
// execs"). Needs root and tracefs (mounted at /sys/kernel/tracing when it is not).
//
// Threading: Add() before Start(); the callback runs on the consumer's own thread
// (registered as limd's: its file accesses are answered at once); Stop() or the destructor
// from the thread that called Start().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"

struct perf_event_attr;

namespace lim::daemon {

// One field of a tracepoint's raw record.
struct TraceField {
  size_t offset = 0;
  size_t size = 0;
  bool data_loc = false;  // __data_loc: a u32 (length << 16 | offset) pointing at the bytes
  bool operator==(const TraceField&) const = default;
};

// A parsed tracefs `format` file: the event id and its fields by name.
struct TraceFormat {
  uint32_t id = 0;
  std::map<std::string, TraceField> fields;
  std::string event;  // "group/name" when read by TraceEvents::ReadFormat (for errors)
};
Result<TraceFormat> ParseTraceFormat(std::string_view text);

// One record as the callback sees it; valid only during the call.
struct TraceRecord {
  int event = -1;       // the index Add() returned
  uint32_t pid = 0;     // thread group of the task that hit the tracepoint
  uint32_t tid = 0;
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC
  std::string_view raw;
  const TraceFormat* format = nullptr;
  // An integer field (1, 2, 4 or 8 bytes, sign-extended when signed is asked); nullopt when
  // the event has no such field or the record is too short.
  std::optional<int64_t> Int(const std::string& field) const;
  // A __data_loc string field without its trailing NUL; nullopt as above.
  std::optional<std::string> Str(const std::string& field) const;
};

// A PERF_RECORD_MMAP2 side-band record: an executable file mapping made by pid (the exec's
// own mappings of the binary and its interpreter among them), with the file's identity as
// the kernel had it at the mmap — dev/ino survive the process, /proc/<pid>/exe does not.
// filename: d_path in the mapping task's root. Valid only during the call.
struct MmapRecord {
  uint32_t pid = 0, tid = 0;
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC (sample_id_all)
  uint64_t dev = 0;      // makedev(maj, min)
  uint64_t ino = 0, ino_generation = 0;
  uint32_t prot = 0;
  std::string_view filename;
};
// A PERF_RECORD_MMAP2 body with its trailing sample_id (TID, TIME), or nullopt when it is
// too short or its filename is not NUL-terminated inside it.
std::optional<MmapRecord> ParseMmap2(const uint8_t* rec, size_t len);

// The online CPUs (/sys/devices/system/cpu/online, "0-3,5" → {0,1,2,3,5}; {0} if unreadable).
std::vector<int> OnlineCpus();

// The tracefs directory (mounting tracefs at /sys/kernel/tracing when nothing is there).
Result<std::string> TracefsDir();

class TraceEvents {
 public:
  using Callback = std::function<void(const TraceRecord&)>;
  // lost(n): records the kernel dropped because the ring was full (consumers rescan).
  TraceEvents(std::string tracefs, Callback cb, std::function<void(uint64_t)> lost);
  ~TraceEvents();
  TraceEvents(const TraceEvents&) = delete;
  TraceEvents& operator=(const TraceEvents&) = delete;

  // Opens "group/name" (e.g. "sched/sched_process_exec") on every online CPU; filter: an
  // ftrace filter expression ("" for none). Returns the event's index for TraceRecord::event.
  // exec_mmaps: that event's per-CPU fds also report executable file mappings
  // (PERF_RECORD_MMAP2, to OnMmap()'s callback); give it to one event only. They wake no one
  // by themselves: they are read with the samples that follow them.
  // Rings are 16 pages per CPU (64 KiB), 128 (512 KiB) once an event asks for exec_mmaps:
  // every executable mapping on the host then passes through them. The size is fixed by
  // the first Add() of each CPU.
  // wake: a record of this event wakes the consumer (kEach), or is read with the next pass
  // another event's record starts (kWithOthers: it costs no wake-up of its own; for records
  // that only matter beside a later, waking one — an execve's start beside its completion).
  enum class Wake { kEach, kWithOthers };
  Result<int> Add(const std::string& event, const std::string& filter = "", bool exec_mmaps = false,
                  Wake wake = Wake::kEach);
  // Like Add(), but no perf tracepoint is opened: the records come from BPF programs
  // (bpf_perf_event_output) through one PERF_COUNT_SW_BPF_OUTPUT event per online CPU,
  // returned as {cpu, fd} for the programs' BPF_MAP_TYPE_PERF_EVENT_ARRAY (the fds stay
  // TraceEvents'), written in the tracepoint's own raw layout, common_type included, and
  // decoded with format (the tracepoint's, from ReadFormat(), with any fields the
  // programs add after its own) like its perf records. A second set for the same format
  // (say, with another wake) returns the same index.
  Result<int> AddBpfOutput(TraceFormat format, bool exec_mmaps, Wake wake, std::vector<std::pair<int, int>>* cpu_fds);
  // The parsed tracefs format of "group/name"; opens nothing.
  Result<TraceFormat> ReadFormat(const std::string& event) const;
  // Before Start(): the callback for exec_mmaps records; after_drain runs after each pass
  // over every ring (records of one pass may come from several CPUs out of order).
  void OnMmap(std::function<void(const MmapRecord&)> cb) { mmap_cb_ = std::move(cb); }
  void AfterDrain(std::function<void()> cb) { after_drain_ = std::move(cb); }
  // Before Start(): the longest a record that woke nobody waits to be read (the poll
  // timeout; default 1 s), 10 ms to 1 s.
  void PassEvery(int ms) { pass_ms_ = ms < 10 ? 10 : ms > 1000 ? 1000 : ms; }
  // Starts the consumer thread (at nice `nice` when not 0: a short-lived process must still
  // be there when its exec's record is read). Error when no event was added.
  Status Start(int nice = 0);
  void Stop();

  uint64_t records() const { return records_.load(); }
  // Passes over the rings so far (each one a wake-up of the consumer, or its poll timeout).
  uint64_t passes() const { return passes_.load(); }
  uint64_t lost() const { return lost_count_.load(); }
  uint64_t short_records() const { return short_.load(); }

 private:
  struct Ring {
    int fd = -1;  // the CPU's first event: owns the mmap
    void* base = nullptr;
    size_t size = 0;  // mmap length (1 + 2^n pages)
  };
  // One event per online CPU from attr (type and config set), its records into that CPU's
  // ring; the fds in cpus_ order.
  Result<std::vector<int>> OpenPerCpu(const std::string& what, perf_event_attr attr, const std::string& filter,
                                      bool exec_mmaps, Wake wake);
  int Register(TraceFormat fmt);
  void Loop(int nice);
  void Drain(Ring& r);
  void Dispatch(const uint8_t* rec, size_t len);

  std::string tracefs_;
  Callback cb_;
  std::function<void(const MmapRecord&)> mmap_cb_;
  std::function<void()> after_drain_;
  std::function<void(uint64_t)> lost_cb_;
  std::vector<TraceFormat> formats_;
  std::map<uint32_t, int> by_id_;  // event id → index
  std::vector<int> cpus_;
  std::vector<Ring> rings_;       // one per CPU, by position in cpus_
  std::vector<int> fds_;          // every fd (rings' and redirected ones)
  int stop_fd_ = -1;              // eventfd
  int pass_ms_ = 1000;            // poll timeout
  std::atomic<uint64_t> records_{0}, lost_count_{0}, short_{0}, passes_{0};
  std::thread thread_;
};

}  // namespace lim::daemon
