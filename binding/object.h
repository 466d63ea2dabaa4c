// Any BPF object file, opened and loaded with libbpf (bpf_object__open_file +
// bpf_object__load): for the benchmarks' anchor programs (bench/anchors.bpf.c)
// and other tools that load something besides the embedded skeleton.
#pragma once

#include <napi.h>

#include <memory>

struct bpf_object;
struct bpf_program;

namespace sc {

struct ObjectDeleter {
  void operator()(bpf_object* obj) const;
};
using ObjectPtr = std::unique_ptr<bpf_object, ObjectDeleter>;

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Wraps obj in a new BpfObject; obj is moved from only if that succeeds.
  static Napi::Object New(Napi::Env env, ObjectPtr& obj);

  // Reached only through New(): JS gets BpfObjects from openObject().
  explicit BpfObject(const Napi::CallbackInfo& info);

 private:
  Napi::Value ProgNames(const Napi::CallbackInfo& info);
  Napi::Value ProgFd(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  bpf_object* Live(Napi::Env env) const;
  bpf_program* ProgArg(const Napi::CallbackInfo& info, size_t i) const;

  ObjectPtr obj_;
};

// openObject(path): Promise<BpfObject>, bpf_object__open_file + __load off
// the main thread; a failure rejects with the libbpf/verifier log.
Napi::Value OpenObject(const Napi::CallbackInfo& info);

}  // namespace sc
