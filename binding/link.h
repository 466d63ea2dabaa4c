// Attachments of the program to an interface's ingress.
//
// Neither kind refers to its Program: the kernel holds the BPF program for as
// long as a tcx link or a clsact filter uses it, so closing the Program (or
// losing it to GC) leaves a Link or TcFilter attached and working. The
// attaching workers use their own dup() of the program fd for the same reason.
#pragma once

#include <napi.h>

#include <cstdint>

#include "fd.h"

namespace sc {

// A tcx link (BPF_TCX_INGRESS). The attachment lives exactly as long as the
// link fd: detach() or GC closes it, and so does the end of the process.
class Link : public Napi::ObjectWrap<Link> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object New(Napi::Env env, UniqueFd& fd);
  explicit Link(const Napi::CallbackInfo& info);

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);

  UniqueFd fd_;
};

// One clsact ingress filter, as libbpf's bpf_tc_attach made it, and whether
// the clsact qdisc was created for it. The kernel would keep such a filter
// after its loader is gone; owning it here means detach() removes it, or as a
// safety net the finalizer, which Node also runs when the process exits
// normally. Only a crash or kill -9 leaves the filter (and our qdisc) behind.
struct TcAttachment {
  int ifindex = 0;
  uint32_t priority = 0;
  uint32_t handle = 0;
  bool hookCreated = false;  // we created the clsact qdisc
  bool filterAttached = false;
  bool hookOwned = false;  // hookCreated and the qdisc not yet deleted
  bool qdiscKept = false;  // detached, but the qdisc we created holds others' filters

  TcAttachment() = default;
  TcAttachment(TcAttachment&& other) noexcept;
  TcAttachment& operator=(TcAttachment&& other) noexcept;
  TcAttachment(const TcAttachment&) = delete;
  TcAttachment& operator=(const TcAttachment&) = delete;
  ~TcAttachment();

  // Detaches the filter, then deletes the qdisc if we created it and no
  // other filter is on it (ingress or egress). A filter or qdisc that is
  // already gone (device deleted: ENODEV; deleted by someone: ENOENT) counts
  // as removed. Returns 0 or a negative errno with *op naming its call; what
  // is gone stays gone, so a later call retries only what is left.
  int Detach(const char** op);
};

class TcFilter : public Napi::ObjectWrap<TcFilter> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object New(Napi::Env env, TcAttachment& attachment);
  explicit TcFilter(const Napi::CallbackInfo& info);

 private:
  Napi::Value Ifindex(const Napi::CallbackInfo& info);
  Napi::Value Priority(const Napi::CallbackInfo& info);
  Napi::Value Handle(const Napi::CallbackInfo& info);
  Napi::Value HookCreated(const Napi::CallbackInfo& info);
  Napi::Value QdiscKept(const Napi::CallbackInfo& info);
  // From now on detach() deletes the clsact qdisc as if attachTc had created
  // it (when no other filter is on it): for a qdisc whose creator is gone.
  Napi::Value AdoptQdisc(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);

  TcAttachment attachment_;
};

// bpf_tc_detach of the clsact ingress filter at priority/handle; 0 or -errno.
int TcDetachFilter(int ifindex, uint32_t priority, uint32_t handle);
// bpf_tc_hook_destroy of the clsact qdisc (both points), with every filter on it; 0 or -errno.
int TcDestroyClsact(int ifindex);

// Promise<Link>: bpf_link_create(progFd, ifindex, BPF_TCX_INGRESS).
Napi::Promise AttachTcx(Napi::Env env, UniqueFd progFd, int ifindex);
// Promise<TcFilter>: bpf_tc_hook_create (EEXIST: already there) + bpf_tc_attach.
Napi::Promise AttachTc(Napi::Env env, UniqueFd progFd, int ifindex, uint32_t priority,
                       uint32_t handle);
// queryTcx(ifindex): number of programs attached at BPF_TCX_INGRESS.
Napi::Value QueryTcx(const Napi::CallbackInfo& info);

}  // namespace sc
