// Test helper: an in-memory Env. "fds" name FakeFile objects; content, change tuple and
// security.ima are set by the test. Test thread only (plus the measurer it drives).
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "daemon/env.h"

namespace lim::daemon::testing {

struct FakeFile {
  Bytes data;
  FileFacts facts;
  std::optional<Bytes> xattr;
};

class FakeEnv final : public Env {
 public:
  // Returns a new fd for a new file (a new inode).
  int NewFile(std::string_view content, uint64_t fsmagic = 0xef53) {
    auto f = std::make_shared<FakeFile>();
    f->data.assign(content.begin(), content.end());
    f->facts.dev = 42;
    f->facts.ino = next_ino_++;
    f->facts.size = f->data.size();
    f->facts.mtime_ns = f->facts.ctime_ns = 1000;
    f->facts.fsmagic = fsmagic;
    f->facts.mode = 0100644;
    int fd = next_fd_++;
    fds_[fd] = f;
    return fd;
  }
  // Another fd (open file) on the same inode.
  int Dup(int fd) {
    int n = next_fd_++;
    fds_[n] = fds_.at(fd);
    return n;
  }
  // Rewrites the content as a write(2) would: new mtime/ctime and size.
  void Write(int fd, std::string_view content) {
    auto& f = *fds_.at(fd);
    f.data.assign(content.begin(), content.end());
    f.facts.size = f.data.size();
    f.facts.mtime_ns += 1000;
    f.facts.ctime_ns += 1000;
  }
  // Rewrites the bytes without touching the tuple (a write the tuple cannot see).
  void WriteSilently(int fd, std::string_view content) {
    auto& f = *fds_.at(fd);
    f.data.assign(content.begin(), content.end());
  }
  FakeFile& file(int fd) { return *fds_.at(fd); }

  Result<FileFacts> Facts(int fd) override {
    auto it = fds_.find(fd);
    if (it == fds_.end()) return Status::IoError("bad fd");
    return it->second->facts;
  }
  Result<size_t> Pread(int fd, uint8_t* buf, size_t n, uint64_t offset) override {
    auto it = fds_.find(fd);
    if (it == fds_.end()) return Status::IoError("bad fd");
    const Bytes& d = it->second->data;
    if (offset >= d.size()) return size_t{0};
    size_t k = std::min<size_t>(n, d.size() - offset);
    std::copy(d.begin() + static_cast<long>(offset), d.begin() + static_cast<long>(offset + k), buf);
    preads++;
    return k;
  }
  Result<std::optional<Bytes>> ImaXattr(int fd) override { return fds_.at(fd)->xattr; }
  Result<std::string> BootId() override { return boot_id; }
  double UptimeSeconds() override { return 12.5; }
  int64_t NowUnixSeconds() override { return now++; }

  std::string boot_id = "11111111-2222-3333-4444-555555555555";
  int64_t now = 1700000000;
  int preads = 0;

 private:
  std::map<int, std::shared_ptr<FakeFile>> fds_;
  int next_fd_ = 100;
  uint64_t next_ino_ = 1000;
};

}  // namespace lim::daemon::testing
