// lim_test_uring: opens a file through io_uring (IORING_OP_OPENAT) for the root tests of
// limd's io_uring opens (limd_uring_root_test.cc). Raw syscalls and <linux/io_uring.h>,
// no liburing: the opener limd sees is io_uring's, not an open/openat syscall.
//
//   lim_test_uring PATH r|w|rw|wt [inline|async] [TEXT]
//
// r = O_RDONLY, w = O_WRONLY, rw = O_RDWR, wt = O_WRONLY|O_TRUNC. async sets IOSQE_ASYNC
// (the open runs on an io-wq worker thread); inline (the default) lets the submitting
// thread try it inside io_uring_enter. With TEXT the file's new content is written (at
// offset 0) through the opened fd; with r the file is read to its end. Prints `opened`
// and then `wrote N` / `read N`, or `open failed: ERRNO-NAME` and exits 1 (2 for bad use).
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

int Setup(unsigned entries, io_uring_params* p) { return static_cast<int>(::syscall(__NR_io_uring_setup, entries, p)); }

int Enter(int fd, unsigned submit, unsigned min_complete, unsigned flags) {
  return static_cast<int>(::syscall(__NR_io_uring_enter, fd, submit, min_complete, flags, nullptr, 0));
}

template <typename T>
T* At(void* base, unsigned off) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + off);
}

int Usage() {
  std::fprintf(stderr, "usage: lim_test_uring PATH r|w|rw|wt [inline|async] [TEXT]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  std::string mode = argv[2];
  int flags = mode == "r" ? O_RDONLY : mode == "w" ? O_WRONLY : mode == "rw" ? O_RDWR : mode == "wt" ? O_WRONLY | O_TRUNC : -1;
  if (flags < 0) return Usage();
  bool async = argc > 3 && std::string(argv[3]) == "async";
  const char* text = argc > 4 ? argv[4] : nullptr;

  io_uring_params p;
  std::memset(&p, 0, sizeof p);
  int ring = Setup(4, &p);
  if (ring < 0) {
    std::printf("io_uring_setup failed: %s\n", strerror(errno));
    return 3;
  }
  size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP) sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
  void* sq = ::mmap(nullptr, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
  void* cq = (p.features & IORING_FEAT_SINGLE_MMAP)
                 ? sq
                 : ::mmap(nullptr, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
  void* sqes = ::mmap(nullptr, p.sq_entries * sizeof(io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                      ring, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) {
    std::printf("mmap of the rings failed: %s\n", strerror(errno));
    return 3;
  }

  // One SQE: openat(AT_FDCWD, PATH, flags).
  unsigned tail = *At<unsigned>(sq, p.sq_off.tail);
  unsigned mask = *At<unsigned>(sq, p.sq_off.ring_mask);
  unsigned idx = tail & mask;
  io_uring_sqe* sqe = static_cast<io_uring_sqe*>(sqes) + idx;
  std::memset(sqe, 0, sizeof *sqe);
  sqe->opcode = IORING_OP_OPENAT;
  sqe->fd = AT_FDCWD;
  sqe->addr = reinterpret_cast<uint64_t>(argv[1]);
  sqe->open_flags = static_cast<uint32_t>(flags | O_CLOEXEC);
  sqe->flags = async ? IOSQE_ASYNC : 0;
  At<unsigned>(sq, p.sq_off.array)[idx] = idx;
  reinterpret_cast<std::atomic<unsigned>*>(At<unsigned>(sq, p.sq_off.tail))->store(tail + 1, std::memory_order_release);
  if (Enter(ring, 1, 1, IORING_ENTER_GETEVENTS) < 0) {
    std::printf("io_uring_enter failed: %s\n", strerror(errno));
    return 3;
  }
  unsigned head = reinterpret_cast<std::atomic<unsigned>*>(At<unsigned>(cq, p.cq_off.head))->load(std::memory_order_acquire);
  io_uring_cqe* cqe = At<io_uring_cqe>(cq, p.cq_off.cqes) + (head & *At<unsigned>(cq, p.cq_off.ring_mask));
  int res = cqe->res;
  reinterpret_cast<std::atomic<unsigned>*>(At<unsigned>(cq, p.cq_off.head))->store(head + 1, std::memory_order_release);
  if (res < 0) {
    std::printf("open failed: %s\n", strerrorname_np(-res) ? strerrorname_np(-res) : strerror(-res));
    return 1;
  }
  std::printf("opened\n");
  int fd = res;
  if (text) {
    ssize_t n = ::pwrite(fd, text, std::strlen(text), 0);
    if (n < 0 || ::ftruncate(fd, n) != 0) {
      std::printf("write failed: %s\n", strerror(errno));
      return 1;
    }
    std::printf("wrote %zd\n", n);
  } else if ((flags & O_ACCMODE) != O_WRONLY) {
    char buf[4096];
    ssize_t n, total = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) total += n;
    std::printf("read %zd\n", total);
  }
  ::close(fd);
  return 0;
}
