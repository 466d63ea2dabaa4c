// The loaded BPF object: a Program owns one syncookie_bpf skeleton (the
// program syncookie_ingress and the maps config, secrets, ports, stats).
#pragma once

#include <napi.h>

#include <memory>

struct syncookie_bpf;
struct bpf_map;

namespace sc {

struct SkeletonDeleter {
  void operator()(syncookie_bpf* skel) const;
};
using SkeletonPtr = std::unique_ptr<syncookie_bpf, SkeletonDeleter>;

class Program : public Napi::ObjectWrap<Program> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Wraps skel in a new Program; skel is moved from only if that succeeds.
  static Napi::Object New(Napi::Env env, SkeletonPtr& skel);

  // Reached only through New(): JS gets Programs from open().
  explicit Program(const Napi::CallbackInfo& info);

 private:
  Napi::Value ProgFd(const Napi::CallbackInfo& info);
  Napi::Value MapFd(const Napi::CallbackInfo& info);
  Napi::Value MapUpdate(const Napi::CallbackInfo& info);
  Napi::Value MapLookup(const Napi::CallbackInfo& info);
  Napi::Value MapDelete(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value AttachTcx(const Napi::CallbackInfo& info);
  Napi::Value AttachTc(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  syncookie_bpf* Live(Napi::Env env) const;
  bpf_map* MapArg(const Napi::CallbackInfo& info, size_t i) const;
  // A dup() of the program fd, for work that may outlive close().
  int DupProgFd(Napi::Env env) const;

  SkeletonPtr skel_;
};

// open(): Promise<Program>, syncookie_bpf__open + __load off the main thread.
Napi::Value Open(const Napi::CallbackInfo& info);

}  // namespace sc
