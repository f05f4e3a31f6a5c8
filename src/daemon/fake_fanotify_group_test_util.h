// Test helpers: FakeFanotifyGroup and FakeReaderCloses, the FanotifyGroup / ReaderCloses
// seams (fanotify_group.h) without a kernel group, so FanotifyDaemon's event state machine
// runs without root. Events are pushed by the test (their fds are real open files: the
// daemon fstats and closes them); answers, marks and ignore marks are recorded with the
// path of the fd they named. poll_fd() is an eventfd, readable while events are queued.
// Thread-safe (the daemon answers from its workers).
#pragma once

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/file.h"
#include "daemon/fanotify_group.h"

namespace lim::daemon::testing {

inline std::string PathOfFd(int fd) { return ReadLink("/proc/self/fd/" + std::to_string(fd)); }

class FakeFanotifyGroup final : public FanotifyGroup {
 public:
  struct Answer {
    std::string path;  // of the event's fd
    uint32_t response;
  };
  struct Mark {
    std::string path;
    uint64_t mask;
  };

  explicit FakeFanotifyGroup(bool accept_marks = true)
      : efd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), accept_marks_(accept_marks) {}
  ~FakeFanotifyGroup() override { ::close(efd_); }

  // Queues an event; its fd (if any) belongs to the daemon once read.
  void Push(int fd, uint64_t mask, pid_t pid) {
    std::lock_guard<std::mutex> lk(mu_);
    events_.push_back(FanotifyEvent{fd, mask, pid});
    uint64_t one = 1;
    (void)!::write(efd_, &one, sizeof one);
  }
  // Waits (up to 5 s) until n answers arrived; returns them all.
  std::vector<Answer> WaitAnswers(size_t n) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_for(lk, std::chrono::seconds(5), [&] { return answers_.size() >= n; });
    return answers_;
  }
  std::vector<Answer> answers() { return Locked(answers_); }
  std::vector<Mark> marks() { return Locked(marks_); }
  std::vector<std::string> ignores_added() { return Locked(ignores_added_); }
  std::vector<std::string> ignores_removed() { return Locked(ignores_removed_); }
  int filesystem_flushes() { return Locked(filesystem_flushes_); }
  int inode_flushes() { return Locked(inode_flushes_); }

  int poll_fd() const override { return efd_; }
  Status Read(std::vector<FanotifyEvent>* events) override {
    std::lock_guard<std::mutex> lk(mu_);
    uint64_t v;
    (void)!::read(efd_, &v, sizeof v);
    events->insert(events->end(), events_.begin(), events_.end());
    events_.clear();
    return Status::Ok();
  }
  bool Respond(int fd, uint32_t response) override { return Record(&answers_, Answer{PathOfFd(fd), response}); }
  Status MarkFilesystem(const std::string& path, uint64_t mask) override {
    if (!accept_marks_) return Status::Unavailable("Operation not supported");
    Record(&marks_, Mark{path, mask});
    std::lock_guard<std::mutex> lk(mu_);
    // The kernel's line for the superblock's mark: its s_dev, st_dev's unless told otherwise.
    struct stat st;
    uint64_t sdev = next_sdev_ ? next_sdev_ : (::stat(path.c_str(), &st) == 0 ? st.st_dev : 0);
    next_sdev_ = 0;
    fdinfo_ += SuperblockMarkLine(sdev) + "mflags:0x0 mask:0x" + std::to_string(mask) + " ignored_mask:0x0\n";
    return Status::Ok();
  }
  // The superblock of the next MarkFilesystem has kernel device sdev (a btrfs subvolume's
  // st_dev differs from its superblock's s_dev).
  void NextMarkSdev(uint64_t sdev) {
    std::lock_guard<std::mutex> lk(mu_);
    next_sdev_ = sdev;
  }
  // The superblock of device sdev is gone, and its mark with it (fdinfo no longer lists it).
  void DropMarkSdev(uint64_t sdev) {
    std::lock_guard<std::mutex> lk(mu_);
    std::string line = SuperblockMarkLine(sdev), kept;
    for (size_t at = 0, end; at < fdinfo_.size(); at = end + 1) {
      end = fdinfo_.find('\n', at);
      if (end == std::string::npos) end = fdinfo_.size();
      if (fdinfo_.compare(at, line.size(), line) != 0) kept += fdinfo_.substr(at, end - at) + "\n";
    }
    fdinfo_ = kept;
  }
  Status FlushFilesystemMarks() override {
    std::lock_guard<std::mutex> lk(mu_);
    filesystem_flushes_++;
    return Status::Ok();
  }
  bool AddInodeIgnore(int fd, uint64_t) override { return Record(&ignores_added_, PathOfFd(fd)); }
  bool RemoveInodeIgnore(int fd, uint64_t) override { return Record(&ignores_removed_, PathOfFd(fd)); }
  void FlushInodeMarks() override {
    std::lock_guard<std::mutex> lk(mu_);
    inode_flushes_++;
    cv_.notify_all();
  }
  Result<std::string> FdInfo() override { return Locked(fdinfo_); }

 private:
  template <typename T>
  bool Record(std::vector<T>* v, T item) {
    std::lock_guard<std::mutex> lk(mu_);
    v->push_back(std::move(item));
    cv_.notify_all();
    return true;
  }
  template <typename T>
  T Locked(const T& v) {
    std::lock_guard<std::mutex> lk(mu_);
    return v;
  }

  int efd_;
  bool accept_marks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<FanotifyEvent> events_;
  std::vector<Answer> answers_;
  std::vector<Mark> marks_;
  std::string fdinfo_;     // the group's marks as the kernel's fdinfo lists them
  uint64_t next_sdev_ = 0;
  std::vector<std::string> ignores_added_, ignores_removed_;
  int filesystem_flushes_ = 0, inode_flushes_ = 0;
};

// Readers' closes the test queues; Drain hands them over (the reader thread's calls).
class FakeReaderCloses final : public ReaderCloses {
 public:
  void PushClose(const InodeKey& key, pid_t tid) {
    std::lock_guard<std::mutex> lk(mu_);
    queued_.emplace_back(key, tid);
  }
  int drains() {
    std::lock_guard<std::mutex> lk(mu_);
    return drains_;
  }
  size_t learned() {
    std::lock_guard<std::mutex> lk(mu_);
    return learned_;
  }

  bool Mark(const std::string&, uint64_t) override { return true; }
  void Forget(uint64_t) override {}
  void Learn(int, const InodeKey&, int64_t) override {
    std::lock_guard<std::mutex> lk(mu_);
    learned_++;
  }
  void Learn(const InodeKey&, const std::string&, int64_t) override {}
  void Prune(size_t, const std::function<bool(const InodeKey&)>&) override {}
  Result<size_t> Drain(const std::function<void(const InodeKey&, pid_t)>& on_close) override {
    std::vector<std::pair<InodeKey, pid_t>> q;
    {
      std::lock_guard<std::mutex> lk(mu_);
      q.swap(queued_);
      if (!q.empty()) drains_++;
    }
    for (const auto& [key, tid] : q) on_close(key, tid);
    return q.size();
  }
  void FlushMarks() override {}

 private:
  std::mutex mu_;
  std::vector<std::pair<InodeKey, pid_t>> queued_;
  int drains_ = 0;
  size_t learned_ = 0;
};

}  // namespace lim::daemon::testing
