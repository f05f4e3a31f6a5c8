// OwnThreads: the thread ids of this process that registered themselves, so limd's
// fanotify reader can tell its own accesses (answered at once, never measured: design.md
// invariant 4) from everyone else's with a few loads instead of a /proc lookup per event.
// A thread is in the set for exactly its life: OwnThreadScope registers on entry and
// removes the tid before the thread ends, so a tid the kernel hands to another process
// later is never taken for ours. StartOwnThread() starts a std::thread that does this.
//
// Every thread limd creates must be started this way (or hold an OwnThreadScope): an
// unregistered thread's accesses are measured like anyone's — never a wrong verdict, but
// a thread the answer path depends on would then wait on itself.
//
// Threading: Register, Unregister and Contains are lock-free and safe from any thread.
#pragma once

#include <sys/types.h>

#include <thread>
#include <utility>

namespace lim {

class OwnThreads {
 public:
  // Adds the calling thread; false when the set is full (Complete() turns false).
  static bool Register();
  static void Unregister();
  static bool Contains(pid_t tid);
  // False once a thread could not register: callers must then ask the kernel.
  static bool Complete();
};

class OwnThreadScope {
 public:
  OwnThreadScope() : registered_(OwnThreads::Register()) {}
  ~OwnThreadScope() {
    if (registered_) OwnThreads::Unregister();
  }
  OwnThreadScope(const OwnThreadScope&) = delete;
  OwnThreadScope& operator=(const OwnThreadScope&) = delete;

 private:
  bool registered_;
};

template <class F>
std::thread StartOwnThread(F&& f) {
  return std::thread([fn = std::forward<F>(f)]() mutable {
    OwnThreadScope scope;
    fn();
  });
}

}  // namespace lim
