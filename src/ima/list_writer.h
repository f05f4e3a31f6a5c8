// Building list entries and writing binary lists: EntryBuilder assembles the template data
// of any template from field values and computes its digest in any bank; ListWriter appends
// records in native or canonical (little-endian) order for a chosen list bank. Used by
// limd's store, by tests and by the benchmark generator. Single-threaded objects.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/hash_algo.h"
#include "ima/entry.h"
#include "ima/template.h"

namespace lim::ima {

// One record's content, independent of the bank it is written for.
struct Record {
  uint32_t pcr = 10;
  std::string template_name;  // built-in name or custom format string
  std::vector<Bytes> fields;  // payloads in template order
  bool violation = false;     // all-zero template digest in every bank
};

// Field payload helpers (kernel-ima.md §3.2): strings get '_' for ' ' and a NUL.
Bytes StringField(std::string_view s);
Bytes U32Field(uint32_t v, ByteOrder order);
Bytes U16Field(uint16_t v, ByteOrder order);

// Common records.
Record ImaNgRecord(const HashAlgo& file_algo, ByteView file_digest, std::string_view path, uint32_t pcr = 10);
Record ImaSigRecord(const HashAlgo& file_algo, ByteView file_digest, std::string_view path, ByteView sig,
                    uint32_t pcr = 10);
// A file measurement as the kernel records it in one of the d-ng based templates limd
// writes (FileRecordTemplate): d-ng (d-ngv2 with type "ima" for the v2 templates), n-ng and,
// for ima-sig/ima-sigv2, the 'sig' field: the whole security.ima when it is a signature
// (kXattrDigsig or kXattrVeritySig), else empty. Unsupported for any other template.
Result<Record> FileRecord(const std::string& template_name, const HashAlgo& file_algo, ByteView file_digest,
                          std::string_view path, ByteView ima_xattr, uint32_t pcr);
// True for the templates FileRecord builds: ima-ng, ima-sig, ima-ngv2, ima-sigv2.
bool FileRecordTemplate(const std::string& template_name);
// ima-buf: d-ng = H_algo(buf), n-ng = name, buf.
Result<Record> ImaBufRecord(const HashAlgo& algo, std::string_view name, ByteView buf, uint32_t pcr = 10);
// A violation entry of the default template: zero file digest of the algorithm's size.
Record ViolationRecord(const HashAlgo& algo, std::string_view path, const std::string& template_name = "ima-ng");

// The bytes the template digest covers for this record (§4.1), in the given order.
Result<Bytes> TemplateDigestInputOf(const Record& r, ByteOrder order);
// The template digest of r in bank (zeros for a violation).
Result<Bytes> TemplateDigestOf(const Record& r, const HashAlgo& bank, ByteOrder order);

// The record an entry decodes to, with integer payloads (iuid, igid, imode, xattrlengths)
// re-encoded in out_order. Writing it with a ListWriter re-creates the entry in any bank and
// byte order.
Record RecordFromEntry(const Entry& e, ByteOrder out_order);

class ListWriter {
 public:
  ListWriter(const HashAlgo& list_bank, ByteOrder order = kNativeOrder) : bank_(list_bank), order_(order) {}
  // Appends the record to *out.
  Status Append(const Record& r, Bytes* out);

 private:
  HashAlgo bank_;
  ByteOrder order_;
};

}  // namespace lim::ima
