#include "attest/py_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace lim::attest {

struct PyRegex::Code {
  pcre2_code* code = nullptr;
  pcre2_match_context* mctx = nullptr;
  ~Code() {
    if (code) pcre2_code_free(code);
    if (mctx) pcre2_match_context_free(mctx);
  }
};

std::string PyRegex::Translate(const std::string& re) {
  std::string out;
  out.reserve(re.size());
  for (size_t i = 0; i < re.size(); ++i) {
    if (re[i] == '\\' && i + 1 < re.size()) {
      out += '\\';
      out += re[i + 1] == 'Z' ? 'z' : re[i + 1];
      ++i;
    } else {
      out += re[i];
    }
  }
  return out;
}

Result<PyRegex> PyRegex::Compile(const std::string& source, const std::string& where) {
  std::string translated = Translate(source);
  int err = 0;
  PCRE2_SIZE off = 0;
  auto code = std::make_shared<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), 0, &err, &off, nullptr);
  if (!code->code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    return Status::InvalidArgument(where + " \"" + source + "\": " + reinterpret_cast<const char*>(buf) +
                                   " at offset " + std::to_string(off));
  }
  pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter also works
  code->mctx = pcre2_match_context_create(nullptr);
  pcre2_set_match_limit(code->mctx, 1000000);
  pcre2_set_depth_limit(code->mctx, 10000);
  PyRegex r;
  r.source_ = source;
  r.code_ = std::move(code);
  return r;
}

bool PyRegex::Run(std::string_view subject, bool full) const {
  if (!code_) return false;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  uint32_t opts = PCRE2_ANCHORED | (full ? PCRE2_ENDANCHORED : 0u);
  int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, opts, md,
                       code_->mctx);
  pcre2_match_data_free(md);
  return rc >= 0;
}

bool PyRegex::FullMatch(std::string_view subject) const { return Run(subject, true); }
bool PyRegex::Match(std::string_view subject) const { return Run(subject, false); }

}  // namespace lim::attest
