# libbpf, built from a pinned source tarball as a static PIC library and linked
# whole into the addon, so that the .node needs no libbpf at run time. (Debian's
# libbpf.a is not built with -fPIC and cannot go into a shared object.)
#
# The tarball is libbpf_1.1.2.orig.tar.gz from Debian's source package libbpf
# 1.1.2-0+deb12u1, which is upstream's v1.1.2 (that version carries no
# patches); its SHA-256 is the one in that package's signed .dsc. Where it comes
# from, first that applies:
#   1. cmake-js compile --CDSC_LIBBPF_TARBALL=/path/to/it
#   2. SYNCOOKIE_AGENT_LIBBPF_TARBALL=/path/to/it in the environment (also for
#      `npm install`): offline builds, machines without apt
#   3. build/deps/libbpf_1.1.2.orig.tar.gz, fetched at configure time when it is
#      not there by scripts/fetch-libbpf-source.sh (apt, by package name)
# The SHA-256 is checked whichever it is.
#
# Provides the imported target libbpf::static (libbpf.a, its headers, and the
# system libelf and zlib it needs, which stay dynamic) and SC_LIBBPF_INCLUDE
# (bpf/*.h for the BPF program and the binding; linux/bpf.h etc. as libbpf was
# compiled with them).
include(ExternalProject)

set(SC_LIBBPF_VERSION "1.1.2")
set(SC_LIBBPF_SHA256 "b50ab60637fb713db78aa98e6ca911ddf13c0799d498a1f6ec03ebffc7dca588")
set(SC_LIBBPF_ORIG "libbpf_${SC_LIBBPF_VERSION}.orig.tar.gz")
set(SC_LIBBPF_TARBALL "" CACHE FILEPATH
  "${SC_LIBBPF_ORIG} to build libbpf from; empty: $SYNCOOKIE_AGENT_LIBBPF_TARBALL, else fetched with apt into build/deps")

if(SC_LIBBPF_TARBALL)
  set(SC_LIBBPF_SRC "${SC_LIBBPF_TARBALL}")
  set(SC_LIBBPF_FROM "SC_LIBBPF_TARBALL")
elseif(NOT "$ENV{SYNCOOKIE_AGENT_LIBBPF_TARBALL}" STREQUAL "")
  set(SC_LIBBPF_SRC "$ENV{SYNCOOKIE_AGENT_LIBBPF_TARBALL}")
  set(SC_LIBBPF_FROM "SYNCOOKIE_AGENT_LIBBPF_TARBALL")
else()
  set(SC_LIBBPF_SRC "${CMAKE_BINARY_DIR}/deps/${SC_LIBBPF_ORIG}")
  set(SC_LIBBPF_FROM "scripts/fetch-libbpf-source.sh")
  set(SC_LIBBPF_HAVE "")
  if(EXISTS "${SC_LIBBPF_SRC}")
    file(SHA256 "${SC_LIBBPF_SRC}" SC_LIBBPF_HAVE)
  endif()
  if(NOT SC_LIBBPF_HAVE STREQUAL SC_LIBBPF_SHA256)
    message(STATUS "Fetching ${SC_LIBBPF_ORIG} with apt (scripts/fetch-libbpf-source.sh)")
    execute_process(
      COMMAND sh "${CMAKE_SOURCE_DIR}/scripts/fetch-libbpf-source.sh" "${CMAKE_BINARY_DIR}/deps"
      RESULT_VARIABLE SC_LIBBPF_FETCH)
    if(NOT SC_LIBBPF_FETCH EQUAL 0)
      message(FATAL_ERROR "Could not fetch ${SC_LIBBPF_ORIG} with apt (above). Set "
        "SYNCOOKIE_AGENT_LIBBPF_TARBALL to a copy of it (SHA-256 ${SC_LIBBPF_SHA256}).")
    endif()
  endif()
endif()
get_filename_component(SC_LIBBPF_SRC "${SC_LIBBPF_SRC}" ABSOLUTE)
if(NOT EXISTS "${SC_LIBBPF_SRC}" OR IS_DIRECTORY "${SC_LIBBPF_SRC}")
  message(FATAL_ERROR "${SC_LIBBPF_FROM}: no file ${SC_LIBBPF_SRC}")
endif()
file(SHA256 "${SC_LIBBPF_SRC}" SC_LIBBPF_HAVE)
if(NOT SC_LIBBPF_HAVE STREQUAL SC_LIBBPF_SHA256)
  message(FATAL_ERROR "${SC_LIBBPF_SRC} has SHA-256 ${SC_LIBBPF_HAVE}, not ${SC_LIBBPF_SHA256} (${SC_LIBBPF_ORIG})")
endif()
message(STATUS "libbpf ${SC_LIBBPF_VERSION} from ${SC_LIBBPF_SRC}")

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
  URL "${SC_LIBBPF_SRC}"
  URL_HASH "SHA256=${SC_LIBBPF_SHA256}"
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
