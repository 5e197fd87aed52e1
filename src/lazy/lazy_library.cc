#include "lazy/lazy_library.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace reprise::lazy {

namespace {

// Sonames come from the libraries the build found (CMakeLists.txt reads them with objdump).
constexpr const char* kSonames[kLibraryCount] = {REPRISE_SONAME_CURL, REPRISE_SONAME_PQ,
                                                 REPRISE_SONAME_ARCHIVE, REPRISE_SONAME_HIREDIS,
                                                 REPRISE_SONAME_LDNS};

[[noreturn]] void Die(const char* what, const char* detail) {
  std::fprintf(stderr,
               "reprise: error: %s: %s\nHINT: install the library's package "
               "(scripts/setup.sh lists them)\n",
               what, detail ? detail : "unknown error");
  std::_Exit(127);
}

}  // namespace

void* Symbol(Library library, const char* name) {
  // Process-wide by nature, like the dynamic linker's own tables: one handle per library,
  // never closed.
  static std::once_flag once[kLibraryCount];
  static void* handles[kLibraryCount];
  std::call_once(once[library], [library] {
    handles[library] = ::dlopen(kSonames[library], RTLD_NOW | RTLD_LOCAL);
    if (!handles[library]) Die(kSonames[library], ::dlerror());
  });
  void* symbol = ::dlsym(handles[library], name);
  if (!symbol) Die(name, ::dlerror());
  return symbol;
}

}  // namespace reprise::lazy
