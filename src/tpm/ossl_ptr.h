// OsslPtr<T, FreeFn>: a unique_ptr that frees an OpenSSL object with its own free function,
// e.g. OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>. Internal to src/tpm; no thread rules.
#pragma once

#include <memory>

namespace lim::tpm {

template <auto FreeFn>
struct OsslFree {
  template <typename T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};

template <typename T, auto FreeFn>
using OsslPtr = std::unique_ptr<T, OsslFree<FreeFn>>;

}  // namespace lim::tpm
