// What is on a clsact hook: the filters of one side, read with a netlink
// dump (RTM_GETTFILTER), which libbpf 1.1 has no call for. bpf_tc_query()
// answers only for a known priority and handle.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sc {

// The clsact parents (TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS / EGRESS)).
constexpr uint32_t kClsactIngress = 0xFFFFFFF2u;
constexpr uint32_t kClsactEgress = 0xFFFFFFF3u;

struct TcFilterInfo {
  uint32_t priority = 0;
  uint32_t handle = 0;
  uint32_t protocol = 0;  // ETH_P_*, network byte order as the kernel keeps it
  std::string kind;       // "bpf", "u32", "flower", ...
  uint32_t progId = 0;    // cls_bpf only: TCA_BPF_ID
};

// Appends the filters at `parent` of `ifindex` to *out; 0 or a negative
// errno. No such qdisc is no filters (the kernel's dump is empty then); an
// unknown ifindex is -ENODEV.
int DumpTcFilters(int ifindex, uint32_t parent, std::vector<TcFilterInfo>* out);

// tcFilters(ifindex, 'ingress' | 'egress'):
//   [{ priority, handle, protocol, kind, progId, progName }], progName '' when
//   the program cannot be looked up by id.
Napi::Value TcFilters(const Napi::CallbackInfo& info);

// tcDetach(ifindex, priority, handle): bpf_tc_detach at clsact ingress.
Napi::Value TcDetach(const Napi::CallbackInfo& info);

// tcQdiscDelete(ifindex): bpf_tc_hook_destroy of the clsact qdisc, with
// every filter on it.
Napi::Value TcQdiscDelete(const Napi::CallbackInfo& info);

}  // namespace sc
