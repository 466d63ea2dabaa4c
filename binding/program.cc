#include "program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "fd.h"
#include "link.h"
#include "testrun.h"
#include "syncookie.skel.h"
#include "worker.h"

namespace sc {

void SkeletonDeleter::operator()(syncookie_bpf* skel) const { syncookie_bpf__destroy(skel); }

namespace {

class OpenWorker : public PromiseWorker {
 public:
  explicit OpenWorker(Napi::Env env) : PromiseWorker(env, "syncookie:open") {}

 private:
  void Execute() override {
    LogCapture capture;
    syncookie_bpf* skel = syncookie_bpf__open();
    if (skel == nullptr) return FailWithLog(errno, "bpf_object__open", capture.text());
    skel_.reset(skel);
    int err = syncookie_bpf__load(skel);
    if (err != 0) {
      skel_.reset();
      return FailWithLog(-err, "bpf_object__load", capture.text());
    }
  }

  Napi::Value Result(Napi::Env env) override { return Program::New(env, skel_); }

  SkeletonPtr skel_;  // destroyed with the worker unless a Program took it
};


}  // namespace

Napi::Function Program::Define(Napi::Env env) {
  return DefineClass(env, "Program",
                     {
                         InstanceMethod<&Program::ProgFd>("progFd"),
                         InstanceMethod<&Program::MapFd>("mapFd"),
                         InstanceMethod<&Program::MapUpdate>("mapUpdate"),
                         InstanceMethod<&Program::MapLookup>("mapLookup"),
                         InstanceMethod<&Program::MapDelete>("mapDelete"),
                         InstanceMethod<&Program::TestRun>("testRun"),
                         InstanceMethod<&Program::AttachTcx>("attachTcx"),
                         InstanceMethod<&Program::AttachTc>("attachTc"),
                         InstanceMethod<&Program::Close>("close"),
                     });
}

Napi::Object Program::New(Napi::Env env, SkeletonPtr& skel) {
  return Data(env).program.New({Napi::External<SkeletonPtr>::New(env, &skel)});
}

Program::Program(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Program>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "Program cannot be constructed: use open()");
  skel_ = std::move(*info[0].As<Napi::External<SkeletonPtr>>().Data());
}

syncookie_bpf* Program::Live(Napi::Env env) const {
  if (!skel_) throw ClosedError(env, "Program");
  return skel_.get();
}

bpf_map* Program::MapArg(const Napi::CallbackInfo& info, size_t i) const {
  std::string name = ArgString(info, i, "map name");
  syncookie_bpf* skel = Live(info.Env());
  if (name == "config") return skel->maps.config;
  if (name == "secrets") return skel->maps.secrets;
  if (name == "ports") return skel->maps.ports;
  if (name == "stats") return skel->maps.stats;
  if (name == "routes") return skel->maps.routes;
  if (name == "hosts") return skel->maps.hosts;
  throw Napi::TypeError::New(info.Env(),
                             "unknown map '" + name + "' (config, secrets, ports, stats, routes or hosts)");
}

int Program::DupProgFd(Napi::Env env) const {
  int fd = fcntl(bpf_program__fd(Live(env)->progs.syncookie_ingress), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "fcntl(F_DUPFD_CLOEXEC)");
  return fd;
}

Napi::Value Program::ProgFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), bpf_program__fd(Live(info.Env())->progs.syncookie_ingress));
}

Napi::Value Program::MapFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), bpf_map__fd(MapArg(info, 0)));
}

Napi::Value Program::MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = MapArg(info, 0);
  Napi::Buffer<uint8_t> key = ArgBytes(info, 1, "key");
  Napi::Buffer<uint8_t> value = ArgBytes(info, 2, "value");
  uint32_t flags = Arg(info, 3).IsUndefined() ? 0 : ArgU32(info, 3, "flags");
  // bpf_map__update_elem checks both sizes against the map (-EINVAL, logged).
  LogCapture capture;
  int err = bpf_map__update_elem(map, key.Data(), key.Length(), value.Data(), value.Length(), flags);
  if (err != 0) throw capture.Error(env, -err, "bpf_map_update_elem");
  return env.Undefined();
}

Napi::Value Program::MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = MapArg(info, 0);
  Napi::Buffer<uint8_t> key = ArgBytes(info, 1, "key");
  LogCapture capture;
  int err = bpf_map__delete_elem(map, key.Data(), key.Length(), 0);
  if (err != 0) throw capture.Error(env, -err, "bpf_map_delete_elem");
  return env.Undefined();
}

Napi::Value Program::MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = MapArg(info, 0);
  Napi::Buffer<uint8_t> key = ArgBytes(info, 1, "key");
  size_t size = bpf_map__value_size(map);
  switch (bpf_map__type(map)) {
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: {
      int cpus = libbpf_num_possible_cpus();
      if (cpus < 0) throw ErrnoError(env, -cpus, "libbpf_num_possible_cpus");
      size = static_cast<size_t>(cpus) * ((size + 7) / 8 * 8);
      break;
    }
    default:
      break;
  }
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, size);
  std::memset(value.Data(), 0, size);
  LogCapture capture;
  int err = bpf_map__lookup_elem(map, key.Data(), key.Length(), value.Data(), size, 0);
  if (err != 0) throw capture.Error(env, -err, "bpf_map_lookup_elem");
  return value;
}

Napi::Value Program::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live(env);
  Napi::Buffer<uint8_t> data = ArgBytes(info, 0, "data");
  uint32_t repeat = ArgU32(info, 1, "repeat");
  uint32_t dataSizeOut = ArgU32(info, 2, "dataSizeOut");
  // Copied: the JS buffer may change while the worker runs.
  std::vector<uint8_t> in(data.Data(), data.Data() + data.Length());
  return StartTestRun(env, UniqueFd(DupProgFd(env)), std::move(in), repeat, dataSizeOut);
}

Napi::Value Program::AttachTcx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live(env);
  int ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  return sc::AttachTcx(env, UniqueFd(DupProgFd(env)), ifindex);
}

Napi::Value Program::AttachTc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live(env);
  int ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  uint32_t priority = ArgU32(info, 1, "priority");
  uint32_t handle = ArgU32(info, 2, "handle");
  return sc::AttachTc(env, UniqueFd(DupProgFd(env)), ifindex, priority, handle);
}

Napi::Value Program::Close(const Napi::CallbackInfo& info) {
  skel_.reset();
  return info.Env().Undefined();
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  return (new OpenWorker(info.Env()))->Start();
}

}  // namespace sc
