// qdrant-contract-server: the Qdrant contract server (qdrant_contract.h) as a program, for the
// README demo and manual tries: it stands in for Qdrant in a local RAG stack. Not a vector
// database: it keeps points in memory and implements the operations reprise and its tests use.
//
//   qdrant-contract-server [--port N] [--data-dir D] [--version 1.19.0] [--api-key K]
//                          [--reference-dir DIR]
//
// --port 0 (the default) picks a free port. Prints "listening on 127.0.0.1:PORT" once ready,
// runs until SIGINT or SIGTERM, then prints the OpenAPI violations it saw (exit 1 if any).
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "qdrant_contract.h"

#ifndef REPRISE_QDRANT_REFERENCE_DIR
#define REPRISE_QDRANT_REFERENCE_DIR "tests/contract/qdrant"
#endif

int main(int argc, char** argv) {
  reprise::testing::QdrantContract::Options o;
  o.reference_dir = REPRISE_QDRANT_REFERENCE_DIR;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "qdrant-contract-server: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--port") {
      o.port = std::atoi(value().c_str());
    } else if (a == "--data-dir") {
      o.data_dir = value();
    } else if (a == "--version") {
      o.version = value();
    } else if (a == "--api-key") {
      o.api_key = value();
    } else if (a == "--reference-dir") {
      o.reference_dir = value();
    } else if (a == "--help" || a == "-h") {
      std::cout << "usage: qdrant-contract-server [--port N] [--data-dir D] [--version V] "
                   "[--api-key K] [--reference-dir DIR]\n";
      return 0;
    } else {
      std::cerr << "qdrant-contract-server: unknown flag '" << a << "'\n";
      return 2;
    }
  }
  // Block the signals before any thread starts, then wait for one.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  reprise::testing::QdrantContract server(o);
  if (!server.running()) {
    std::cerr << "qdrant-contract-server: " << server.error() << "\n";
    return 1;
  }
  std::cout << "listening on 127.0.0.1:" << server.port() << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  auto violations = server.Violations();
  for (const auto& v : violations) std::cerr << "openapi violation: " << v << "\n";
  return violations.empty() ? 0 : 1;
}
