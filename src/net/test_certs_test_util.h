// Test helper (header only, used by net and agent tests and the transport benchmark):
// a throwaway PKI made with the openssl command in a fresh temp dir — a CA, a server
// certificate for 127.0.0.1/localhost, a client certificate, and a second CA with a client
// certificate of its own (which lim servers must refuse). All ECDSA P-256, valid two days.
// Test thread only.
#pragma once

#include <string>

#include "tests/testing.h"

namespace lim::net::testing {

struct TestPki {
  std::string dir;
  std::string ca, server_cert, server_key, client_cert, client_key;
  std::string other_ca, other_client_cert, other_client_key;
  std::string error;  // non-empty when openssl failed
};

inline TestPki MakeTestPki() {
  using lim::testing::Run;
  using lim::testing::ShellQuote;
  TestPki p;
  p.dir = lim::testing::MakeTempDir();
  const std::string d = ShellQuote(p.dir);
  std::string script =
      "set -e; cd " + d +
      "\n"
      "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1\" 2>/dev/null; }\n"
      "ca() { key $1.key; openssl req -x509 -new -key $1.key -subj /CN=$1 -days 2 -out $1.pem "
      "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }\n"
      "leaf() { key $2.key; openssl req -new -key $2.key -subj /CN=$3 -out $2.csr;"
      " printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > $2.ext;"
      " openssl x509 -req -in $2.csr -CA $1.pem -CAkey $1.key -CAcreateserial -days 2 -out $2.pem "
      "-extfile $2.ext 2>/dev/null; }\n"
      "ca ca; ca otherca; leaf ca server lim-server; leaf ca client agent-1; leaf otherca otherclient intruder\n";
  auto r = Run("sh -c " + ShellQuote(script));
  if (r.exit_code != 0) p.error = "openssl: " + r.err + r.out;
  p.ca = p.dir + "/ca.pem";
  p.server_cert = p.dir + "/server.pem";
  p.server_key = p.dir + "/server.key";
  p.client_cert = p.dir + "/client.pem";
  p.client_key = p.dir + "/client.key";
  p.other_ca = p.dir + "/otherca.pem";
  p.other_client_cert = p.dir + "/otherclient.pem";
  p.other_client_key = p.dir + "/otherclient.key";
  return p;
}

}  // namespace lim::net::testing
