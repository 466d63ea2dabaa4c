# libbpf, built from a pinned source tarball as a static PIC library and linked
# whole into the addon, so that the .node needs no libbpf at run time. (Debian's
# libbpf.a is not built with -fPIC and cannot go into a shared object.)
#
# The tarball is Debian's libbpf_1.1.2.orig.tar.gz, which is upstream's v1.1.2
# (Debian's 1.1.2-0+deb12u1 carries no patches); its SHA-256 is the one in that
# package's signed .dsc. Offline: SYNCOOKIE_AGENT_LIBBPF_TARBALL=/path/to/it in
# the environment (also for `npm install`), or cmake-js compile --CDSC_LIBBPF_URL=...
#
# Provides the imported target libbpf::static (libbpf.a, its headers, and the
# system libelf and zlib it needs, which stay dynamic) and SC_LIBBPF_INCLUDE
# (bpf/*.h for the BPF program and the binding; linux/bpf.h etc. as libbpf was
# compiled with them).
include(ExternalProject)

set(SC_LIBBPF_VERSION "1.1.2")
set(SC_LIBBPF_SHA256 "b50ab60637fb713db78aa98e6ca911ddf13c0799d498a1f6ec03ebffc7dca588")
if(DEFINED ENV{SYNCOOKIE_AGENT_LIBBPF_TARBALL})
  set(SC_LIBBPF_DEFAULT_URL "$ENV{SYNCOOKIE_AGENT_LIBBPF_TARBALL}")
else()
  set(SC_LIBBPF_DEFAULT_URL
    # Debian's archive, then the same file by its SHA-1 in Debian's permanent snapshot archive.
    "${SC_DEBIAN_MIRROR}/pool/main/libb/libbpf/libbpf_${SC_LIBBPF_VERSION}.orig.tar.gz"
endif()
set(SC_LIBBPF_URL "${SC_LIBBPF_DEFAULT_URL}"
  CACHE STRING "URLs (or a local path) of libbpf_${SC_LIBBPF_VERSION}.orig.tar.gz; the SHA-256 is checked either way")

find_library(SC_LIBELF NAMES elf DOC "libelf (elfutils), linked dynamically" REQUIRED)
find_library(SC_LIBZ NAMES z DOC "zlib, linked dynamically" REQUIRED)
find_program(SC_MAKE NAMES make gmake DOC "GNU make for libbpf's src/Makefile" REQUIRED)

set(SC_LIBBPF_DIR "${CMAKE_BINARY_DIR}/deps/libbpf")
set(SC_LIBBPF_INCLUDE "${SC_LIBBPF_DIR}/include")
set(SC_LIBBPF_LIB "${SC_LIBBPF_DIR}/lib/libbpf.a")
cmake_host_system_information(RESULT SC_JOBS QUERY NUMBER_OF_LOGICAL_CORES)

# libbpf's own defaults minus -Werror (a newer compiler's new warning must not
# break a user's fallback build), plus -fPIC. NO_PKG_CONFIG: plain -lelf -lz.
set(SC_LIBBPF_MAKE "${SC_MAKE}" -C src BUILD_STATIC_ONLY=1 NO_PKG_CONFIG=1
    "CC=${CMAKE_C_COMPILER}" "CFLAGS=-g -O2 -fPIC -Wall -std=gnu89"
    "OBJDIR=${SC_LIBBPF_DIR}/obj")

ExternalProject_Add(libbpf
  URL ${SC_LIBBPF_URL}
  URL_HASH "SHA256=${SC_LIBBPF_SHA256}"
  DOWNLOAD_NAME "libbpf_${SC_LIBBPF_VERSION}.orig.tar.gz"
  DOWNLOAD_DIR "${CMAKE_BINARY_DIR}/deps"
  DOWNLOAD_NO_PROGRESS ON
  DOWNLOAD_EXTRACT_TIMESTAMP OFF
  PREFIX "${SC_LIBBPF_DIR}/ep"
  SOURCE_DIR "${SC_LIBBPF_DIR}/source"
  BUILD_IN_SOURCE ON
  CONFIGURE_COMMAND ""
  BUILD_COMMAND ${SC_LIBBPF_MAKE} "-j${SC_JOBS}" "${SC_LIBBPF_DIR}/obj/libbpf.a"
  INSTALL_COMMAND ${SC_LIBBPF_MAKE} "DESTDIR=${SC_LIBBPF_DIR}" PREFIX= LIBDIR=/lib
                  INCLUDEDIR=/include UAPIDIR=/include install install_uapi_headers
  BUILD_BYPRODUCTS "${SC_LIBBPF_LIB}")

# The include directory must exist when the imported target is defined.
file(MAKE_DIRECTORY "${SC_LIBBPF_INCLUDE}")
add_library(libbpf::static STATIC IMPORTED GLOBAL)
set_target_properties(libbpf::static PROPERTIES
  IMPORTED_LOCATION "${SC_LIBBPF_LIB}"
  INTERFACE_INCLUDE_DIRECTORIES "${SC_LIBBPF_INCLUDE}"
  INTERFACE_LINK_LIBRARIES "${SC_LIBELF};${SC_LIBZ}")
add_dependencies(libbpf::static libbpf)
