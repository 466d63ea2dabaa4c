#include "object.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "fd.h"
#include "testrun.h"
#include "worker.h"

namespace sc {

void ObjectDeleter::operator()(bpf_object* obj) const { bpf_object__close(obj); }

namespace {

class OpenObjectWorker : public PromiseWorker {
 public:
  OpenObjectWorker(Napi::Env env, std::string path)
      : PromiseWorker(env, "syncookie:openObject"), path_(std::move(path)) {}

 private:
  void Execute() override {
    LogCapture capture;
    bpf_object* obj = bpf_object__open_file(path_.c_str(), nullptr);
    int err = libbpf_get_error(obj);
    if (err != 0) return FailWithLog(-err, "bpf_object__open_file", capture.text());
    obj_.reset(obj);
    err = bpf_object__load(obj);
    if (err != 0) {
      obj_.reset();
      return FailWithLog(-err, "bpf_object__load", capture.text());
    }
  }

  Napi::Value Result(Napi::Env env) override { return BpfObject::New(env, obj_); }

  std::string path_;
  ObjectPtr obj_;  // closed with the worker unless a BpfObject took it
};


}  // namespace

Napi::Function BpfObject::Define(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceMethod<&BpfObject::ProgNames>("progNames"),
                         InstanceMethod<&BpfObject::ProgFd>("progFd"),
                         InstanceMethod<&BpfObject::TestRun>("testRun"),
                         InstanceMethod<&BpfObject::Close>("close"),
                     });
}

Napi::Object BpfObject::New(Napi::Env env, ObjectPtr& obj) {
  return Data(env).bpfObject.New({Napi::External<ObjectPtr>::New(env, &obj)});
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "BpfObject cannot be constructed: use openObject()");
  obj_ = std::move(*info[0].As<Napi::External<ObjectPtr>>().Data());
}

bpf_object* BpfObject::Live(Napi::Env env) const {
  if (!obj_) throw ClosedError(env, "BpfObject");
  return obj_.get();
}

bpf_program* BpfObject::ProgArg(const Napi::CallbackInfo& info, size_t i) const {
  std::string name = ArgString(info, i, "program name");
  bpf_program* prog = bpf_object__find_program_by_name(Live(info.Env()), name.c_str());
  if (prog == nullptr) throw ErrnoError(info.Env(), ENOENT, "bpf_object__find_program_by_name");
  return prog;
}

Napi::Value BpfObject::ProgNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = Live(env);
  Napi::Array names = Napi::Array::New(env);
  uint32_t i = 0;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) names.Set(i++, bpf_program__name(prog));
  return names;
}

Napi::Value BpfObject::ProgFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), bpf_program__fd(ProgArg(info, 0)));
}

Napi::Value BpfObject::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* prog = ProgArg(info, 0);
  Napi::Buffer<uint8_t> data = ArgBytes(info, 1, "data");
  uint32_t repeat = ArgU32(info, 2, "repeat");
  uint32_t dataSizeOut = ArgU32(info, 3, "dataSizeOut");
  int fd = fcntl(bpf_program__fd(prog), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "fcntl(F_DUPFD_CLOEXEC)");
  UniqueFd progFd(fd);
  // Copied: the JS buffer may change while the worker runs.
  std::vector<uint8_t> in(data.Data(), data.Data() + data.Length());
  return StartTestRun(env, std::move(progFd), std::move(in), repeat, dataSizeOut);
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  obj_.reset();
  return info.Env().Undefined();
}

Napi::Value OpenObject(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  return (new OpenObjectWorker(info.Env(), std::move(path)))->Start();
}

}  // namespace sc
