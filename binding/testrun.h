#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

#include "fd.h"

namespace sc {

// One BPF_PROG_TEST_RUN (bpf_prog_test_run_opts) off the main thread, on its
// own dup() of the program fd so that closing the program meanwhile is
// harmless. Resolves { retval, data, durationNs }. Used by Program.testRun and
// BpfObject.testRun.
Napi::Value StartTestRun(Napi::Env env, UniqueFd progFd, std::vector<uint8_t> in, uint32_t repeat,
                         uint32_t dataSizeOut);

}  // namespace sc
