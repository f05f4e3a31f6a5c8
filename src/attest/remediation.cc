#include "attest/remediation.h"

#include "base/escape.h"

namespace lim::attest {
namespace {

std::string Quoted(std::string_view path) { return "`" + Escaped(path) + "`"; }

std::string Reinstall(std::string_view package) {
  return "reinstall: `apt-get install --reinstall " + Escaped(package) + "`";
}

}  // namespace

std::string HintNoVersion(std::string_view path, std::string_view package, std::string_view installed,
                          std::string_view newest) {
  std::string which = installed.empty() ? "newest in policy " + Escaped(newest) : "installed " + Escaped(installed);
  return Quoted(path) + " has a digest of no version of " + Escaped(package) + " (" + which + "); " +
         Reinstall(package);
}

std::string HintModified(std::string_view path, std::string_view package, std::string_view version) {
  return Quoted(path) + " differs from " + Escaped(package) + " " + Escaped(version) +
         " as dpkg installed it (md5sums); " + Reinstall(package);
}

std::string HintIntactNeedsXattr(std::string_view path, std::string_view package, std::string_view version) {
  return Quoted(path) + " is " + Escaped(package) + " " + Escaped(version) +
         " as dpkg installed it (md5sums); it lacks a valid security.ima: `lim sign` or `lim hash --fix` it";
}

std::string HintUnowned(std::string_view path, std::string_view scope) {
  return Quoted(path) + " is not owned by " + std::string(scope);
}

std::string HintGenerated(std::string_view path, std::string_view reason) {
  return Quoted(path) + " is generated on the host, not shipped by a package (" + std::string(reason) + ")";
}

std::string HintOldVersion(std::string_view path, std::string_view package, std::string_view version,
                           std::string_view newest) {
  return Quoted(path) + " is from " + Escaped(package) + " " + Escaped(version) + ", older than " +
         Escaped(newest) + " (allowed by the policy window): restart what still runs it";
}

}  // namespace lim::attest
