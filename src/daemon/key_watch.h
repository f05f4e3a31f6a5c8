// KeyWatch: the kernel's KEY_CHECK in user space. When an asymmetric key (an X.509
// certificate: `evmctl import cert.der RING`, `keyctl padd asymmetric …`) is added to a
// keyring, the kernel's IMA appends, before add_key(2) returns, an ima-buf entry: d-ng =
// ima_hash of the payload, n-ng = the keyring's description (its name), buf = the payload
// (the certificate's DER) — if a `measure func=KEY_CHECK [keyrings=a|b] [uid=…]` rule
// matches (ima_asymmetric_keys.c; only the asymmetric key type; also when add_key updates an
// existing key). No fanotify event exists for keys; KeyWatch follows add_key through the
// syscalls:sys_enter_add_key and sys_exit_add_key tracepoints (TraceEvents: perf_event_open,
// no BPF) and appends the same entry.
//
// Trust: the tracepoint gives the payload's user address, not the bytes, and the caller can
// change its memory once the kernel has copied it. So the payload read from
// /proc/<tid>/mem at sys_enter is only believed if, at sys_exit, the key the kernel created
// (the serial add_key returned) is of type asymmetric and its kernel-made description
// (x509_key_preparse: the subject's CN/O as x509_fabricate_name picks them, ": ", hex of
// the subject key identifier, else of the serial number) equals the one computed from the
// bytes read. Otherwise (unreadable memory, a different certificate, a process gone, a key
// limd may not view) the entry is a gap, `lim-key-unmeasured` (ima-buf, zero digest, PCR
// extended with 0xFF), buf `serial=N;keyring=NAME;description=DESC;pid=N;reason=…;`.
// What this cannot catch: a caller racing its own buffer with a second certificate that
// has the same subject and key identifier but another public key (the kernel keeps no
// readable copy of an asymmetric key's payload or public key for a non-possessor).
//
// Keyring names: a positive ring id is described (KEYCTL_DESCRIBE); the special ids are the
// kernel's names where fixed: @t "_tid", @p "_pid", @u "_uid.<uid>", @us "_uid_ses.<uid>";
// @s (a session keyring's name varies), @g and a ring limd may not describe: the keyring
// that holds the new key is looked for in /proc/keys (ResolveHoldingKeyring); one found:
// its description, else a gap with reason keyring_unresolved.
//
// Late: the entry follows add_key's return (the trace consumer wakes per record); the
// delay from sys_exit to the append is kept (DelayPercentile) and shown in status.json.
//
// A description given by the caller (`keyctl padd asymmetric NAME …`) replaces the
// derived one, so the check above cannot apply: then the key's description must equal the
// caller's (read at sys_enter) and its /proc/keys line (asymmetric_key_describe: "DESC:
// X509.<algo> <last 4 bytes of the subject key identifier>") must show the identifier
// of the bytes read — 32 bits of it, weaker; a certificate without a subject key
// identifier leaves only the gap (reason payload_unverifiable).
//
// Updates: the kernel measures in key_create_or_update only. The asymmetric type has no
// update operation, so `keyctl update` of such a key fails (EACCES: no write permission
// without .update) and add_key with an existing description creates a new key that
// replaces the old one in the ring — a create, seen as any other (a new serial).
//
// Threading: Attach() before the consumer starts; OnRecord() on the trace consumer's
// registered thread; counters and DelayPercentile() from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/latency_samples.h"
#include "daemon/measurement_list.h"
#include "daemon/measurer.h"
#include "daemon/trace_events.h"

namespace lim::daemon {

// The description the kernel gives an X.509 asymmetric key (x509_key_preparse), from the
// certificate's DER; error when OpenSSL cannot parse it.
Result<std::string> KernelX509Description(ByteView der);

// The name of the keyring a special ring id (KEY_SPEC_*) means for a task of real uid
// `uid`; nullopt when it is not fixed (@s, @g, unknown ids).
std::optional<std::string> SpecialKeyringName(int32_t ringid, uint32_t uid);

// The description of the one keyring limd can view and read that links key `serial`
// (a key add_key has just created is linked into its target ring only). When none does
// and asymmetric_description is given (the key was replaced by a later add_key of the same
// description before limd looked), the one ring that links an asymmetric key of that
// description. Error when none or several do.
Result<std::string> ResolveHoldingKeyring(int64_t serial, const std::string& asymmetric_description = "");

// From an asymmetric key's /proc/keys line: the text after its description (": X509.rsa
// 091d7c8c []"); error when limd cannot view the key.
Result<std::string> ProcKeysDescribeTail(int64_t serial, const std::string& description);

class KeyWatch {
 public:
  KeyWatch(Measurer* measurer, MeasurementList* list, std::function<void(const std::string&)> log)
      : measurer_(measurer), list_(list), log_(std::move(log)) {}
  KeyWatch(const KeyWatch&) = delete;
  KeyWatch& operator=(const KeyWatch&) = delete;

  // Opens the two tracepoints on a consumer not started yet; its callback passes every
  // record to OnRecord().
  Status Attach(TraceEvents* trace);
  // Handles an add_key record; false for a record of another event.
  bool OnRecord(const TraceRecord& r);

  uint64_t measured() const { return measured_.load(); }
  uint64_t gaps() const { return gaps_.load(); }
  // Delay from add_key's return (sys_exit) to the entry's append, µs, over the last 4096.
  uint64_t DelayPercentile(double p) const { return delays_.Percentile(p); }

  // The steps, public for tests: sys_enter (read what the task passed) and sys_exit.
  // desc_addr: add_key's description argument (0: none, the kernel derives it).
  void OnEnter(pid_t tid, uint64_t type_addr, uint64_t payload_addr, uint64_t plen, int32_t ringid, uint64_t time_ns,
               uint64_t desc_addr = 0);
  void OnExit(pid_t tid, int64_t ret, uint64_t time_ns);

 private:
  struct Pending {
    uint64_t enter_ns = 0;
    int32_t ringid = 0;
    uint32_t uid = 0;
    std::string comm;
    Bytes payload;
    std::string error;  // why the payload could not be read
    bool has_description = false;  // the caller named the key (add_key's description)
    std::string description;       // …as read from its memory
  };
  // The name of the keyring p's add_key linked key ret into; *reason set when it could
  // not be named (then "ringid:N").
  std::string KeyringOf(const Pending& p, int64_t ret, std::string* reason);
  // Why the payload read at the enter cannot stand for key ret (its /proc/keys
  // description: description): the gap reason, or empty when it is the key's.
  std::string UnverifiedPayload(const Pending& p, int64_t ret, const std::string& description);
  // The ima-buf entry of key ret on keyring (rule_pcr: the matching rule's pcr=, -1: none).
  void AppendKey(const Pending& p, int64_t ret, const std::string& keyring, int rule_pcr, uint64_t time_ns);
  void Gap(uint64_t serial, const std::string& keyring, const std::string& description, pid_t tid,
           const std::string& reason);

  Measurer* measurer_;
  MeasurementList* list_;
  std::function<void(const std::string&)> log_;
  int enter_event_ = -1, exit_event_ = -1;
  std::map<pid_t, Pending> pending_;  // consumer thread only
  std::atomic<uint64_t> measured_{0}, gaps_{0};
  LatencySamples delays_;  // µs from sys_exit to the append
};

}  // namespace lim::daemon
