#include "tcquery.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "args.h"
#include "errors.h"
#include "fd.h"
#include "link.h"
#include "netlink.h"

namespace sc {
namespace {

// Walks the rtattrs in [attr, attr + len) and calls fn(type, data, size).
template <typename Fn>
void ForEachAttr(const void* attr, int len, Fn fn) {
  for (auto* a = static_cast<const rtattr*>(attr); RTA_OK(a, len); a = RTA_NEXT(a, len))
    fn(a->rta_type & NLA_TYPE_MASK, RTA_DATA(a), RTA_PAYLOAD(a));
}

void ParseFilter(const nlmsghdr* nh, std::vector<TcFilterInfo>* out) {
  auto* tcm = static_cast<const tcmsg*>(NLMSG_DATA(nh));
  // The dump lists each priority's classifier once with handle 0 (the chain
  // head, no options) before its filters: that entry is not a filter.
  if (tcm->tcm_handle == 0) return;
  TcFilterInfo f;
  f.priority = TC_H_MAJ(tcm->tcm_info) >> 16;
  f.protocol = TC_H_MIN(tcm->tcm_info);
  f.handle = tcm->tcm_handle;
  const void* options = nullptr;
  int optionsLen = 0;
  ForEachAttr(reinterpret_cast<const char*>(tcm) + NLMSG_ALIGN(sizeof(*tcm)),
              static_cast<int>(nh->nlmsg_len) - NLMSG_LENGTH(sizeof(*tcm)),
              [&](int type, const void* data, size_t size) {
                if (type == TCA_KIND) f.kind.assign(static_cast<const char*>(data), strnlen(static_cast<const char*>(data), size));
                if (type == TCA_OPTIONS) options = data, optionsLen = static_cast<int>(size);
              });
  if (f.kind == "bpf" && options) {
    ForEachAttr(options, optionsLen, [&](int type, const void* data, size_t size) {
      if (type == TCA_BPF_ID && size >= sizeof(uint32_t)) memcpy(&f.progId, data, sizeof(uint32_t));
    });
  }
  out->push_back(std::move(f));
}

}  // namespace

int DumpTcFilters(int ifindex, uint32_t parent, std::vector<TcFilterInfo>* out) {
  char name[IF_NAMESIZE];
  // The kernel answers a dump for an unknown device with nothing at all.
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) return -ENODEV;

  struct {
    nlmsghdr nh;
    tcmsg tcm;
  } req = {};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.tcm));
  req.nh.nlmsg_type = RTM_GETTFILTER;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.tcm.tcm_family = AF_UNSPEC;
  req.tcm.tcm_ifindex = ifindex;
  req.tcm.tcm_parent = parent;
  return NetlinkDump(&req.nh, [&](const nlmsghdr* nh) {
    if (nh->nlmsg_type == RTM_NEWTFILTER) ParseFilter(nh, out);
  });
}

Napi::Value TcFilters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  std::string side = ArgString(info, 1, "side");
  if (side != "ingress" && side != "egress")
    throw Napi::TypeError::New(env, "side must be 'ingress' or 'egress'");
  std::vector<TcFilterInfo> filters;
  int err = DumpTcFilters(ifindex, side == "ingress" ? kClsactIngress : kClsactEgress, &filters);
  if (err != 0) throw ErrnoError(env, -err, "RTM_GETTFILTER");

  Napi::Array result = Napi::Array::New(env, filters.size());
  for (size_t i = 0; i < filters.size(); i++) {
    const TcFilterInfo& f = filters[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("priority", Napi::Number::New(env, f.priority));
    o.Set("handle", Napi::Number::New(env, f.handle));
    o.Set("protocol", Napi::Number::New(env, f.protocol));
    o.Set("kind", Napi::String::New(env, f.kind));
    o.Set("progId", Napi::Number::New(env, f.progId));
    std::string progName;
    if (f.progId != 0) {
      UniqueFd prog(bpf_prog_get_fd_by_id(f.progId));
      bpf_prog_info pinfo = {};
      __u32 size = sizeof(pinfo);
      if (prog && bpf_obj_get_info_by_fd(prog.get(), &pinfo, &size) == 0)
        progName.assign(pinfo.name, strnlen(pinfo.name, sizeof(pinfo.name)));
    }
    o.Set("progName", Napi::String::New(env, progName));
    result[i] = o;
  }
  return result;
}

Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  uint32_t priority = ArgU32(info, 1, "priority");
  uint32_t handle = ArgU32(info, 2, "handle");
  LogCapture capture;
  int err = TcDetachFilter(ifindex, priority, handle);
  if (err != 0) throw capture.Error(env, -err, "bpf_tc_detach");
  return env.Undefined();
}

Napi::Value TcQdiscDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  LogCapture capture;
  int err = TcDestroyClsact(ifindex);
  if (err != 0) throw capture.Error(env, -err, "bpf_tc_hook_destroy");
  return env.Undefined();
}

}  // namespace sc
