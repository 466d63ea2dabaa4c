#include "link.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "tcquery.h"
#include "worker.h"

namespace sc {
namespace {

// BPF_TCX_INGRESS (Linux 6.6). libbpf 1.1's headers predate it.
constexpr int kTcxIngress = 46;

bpf_tc_hook IngressHook(int ifindex) {
  bpf_tc_hook hook = {};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  return hook;
}

class AttachTcxWorker : public PromiseWorker {
 public:
  AttachTcxWorker(Napi::Env env, UniqueFd progFd, int ifindex)
      : PromiseWorker(env, "syncookie:attachTcx"), progFd_(std::move(progFd)), ifindex_(ifindex) {}

 private:
  void Execute() override {
    int fd = bpf_link_create(progFd_.get(), ifindex_, static_cast<bpf_attach_type>(kTcxIngress),
                             nullptr);
    if (fd < 0) return Fail(-fd, "bpf_link_create");
    link_.reset(fd);
  }

  Napi::Value Result(Napi::Env env) override { return Link::New(env, link_); }

  UniqueFd progFd_;
  int ifindex_;
  UniqueFd link_;
};

class AttachTcWorker : public PromiseWorker {
 public:
  AttachTcWorker(Napi::Env env, UniqueFd progFd, int ifindex, uint32_t priority, uint32_t handle)
      : PromiseWorker(env, "syncookie:attachTc"),
        progFd_(std::move(progFd)),
        ifindex_(ifindex),
        priority_(priority),
        handle_(handle) {}

 private:
  void Execute() override {
    // libbpf reports the kernel's netlink extack text through its printer.
    LogCapture capture;
    bpf_tc_hook hook = IngressHook(ifindex_);
    int err = bpf_tc_hook_create(&hook);
    if (err != 0 && err != -EEXIST)
      return Fail(-err, "bpf_tc_hook_create", capture);
    capture.Clear();  // the extack of an EEXIST is no news

    TcAttachment attachment;
    attachment.ifindex = ifindex_;
    attachment.hookCreated = err == 0;
    attachment.hookOwned = attachment.hookCreated;

    LIBBPF_OPTS(bpf_tc_opts, opts);
    opts.prog_fd = progFd_.get();
    opts.priority = priority_;
    opts.handle = handle_;
    err = bpf_tc_attach(&hook, &opts);
    if (err != 0) {
      // Returning destroys `attachment`, which deletes the qdisc if we created it.
      return Fail(-err, "bpf_tc_attach", capture);
    }
    attachment.filterAttached = true;
    attachment.priority = opts.priority;  // the kernel's choice when 0 was asked
    attachment.handle = opts.handle;
    attachment_ = std::move(attachment);
  }

  Napi::Value Result(Napi::Env env) override { return TcFilter::New(env, attachment_); }

  UniqueFd progFd_;
  int ifindex_;
  uint32_t priority_;
  uint32_t handle_;
  TcAttachment attachment_;
};

}  // namespace

int TcDetachFilter(int ifindex, uint32_t priority, uint32_t handle) {
  bpf_tc_hook hook = IngressHook(ifindex);
  LIBBPF_OPTS(bpf_tc_opts, opts);
  opts.priority = priority;
  opts.handle = handle;
  return bpf_tc_detach(&hook, &opts);
}

int TcDestroyClsact(int ifindex) {
  // INGRESS alone would only flush the ingress filters; both points delete the qdisc.
  bpf_tc_hook hook = IngressHook(ifindex);
  hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  return bpf_tc_hook_destroy(&hook);
}

// ---- Link

Napi::Function Link::Define(Napi::Env env) {
  return DefineClass(env, "Link",
                     {
                         InstanceAccessor<&Link::Fd>("fd"),
                         InstanceMethod<&Link::Detach>("detach"),
                     });
}

Napi::Object Link::New(Napi::Env env, UniqueFd& fd) {
  return Data(env).link.New({Napi::External<UniqueFd>::New(env, &fd)});
}

Link::Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "Link cannot be constructed: use Program.attachTcx()");
  fd_ = std::move(*info[0].As<Napi::External<UniqueFd>>().Data());
}

Napi::Value Link::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_.get());
}

Napi::Value Link::Detach(const Napi::CallbackInfo& info) {
  fd_.reset();
  return info.Env().Undefined();
}

// ---- TcAttachment

TcAttachment::TcAttachment(TcAttachment&& other) noexcept { *this = std::move(other); }

TcAttachment& TcAttachment::operator=(TcAttachment&& other) noexcept {
  if (this != &other) {
    const char* op;
    Detach(&op);
    ifindex = other.ifindex;
    priority = other.priority;
    handle = other.handle;
    hookCreated = other.hookCreated;
    qdiscKept = other.qdiscKept;
    filterAttached = std::exchange(other.filterAttached, false);
    hookOwned = std::exchange(other.hookOwned, false);
  }
  return *this;
}

TcAttachment::~TcAttachment() {
  LogCapture quiet;  // nobody to report to
  const char* op;
  Detach(&op);
}

int TcAttachment::Detach(const char** op) {
  if (filterAttached) {
    int err = TcDetachFilter(ifindex, priority, handle);
    // ENODEV: the device went away and took its qdiscs and filters with it.
    // ENOENT: somebody deleted the filter or its qdisc. Gone either way.
    if (err == -ENODEV) hookOwned = false;
    if (err != 0 && err != -ENODEV && err != -ENOENT) {
      *op = "bpf_tc_detach";
      return err;
    }
    filterAttached = false;
  }
  if (hookOwned) {
    // The qdisc we created goes only if nobody put a filter on it since:
    // deleting it would delete theirs. (Between this dump and the delete
    // another tool could still add one; tc offers no conditional delete.)
    std::vector<TcFilterInfo> others;
    int err = DumpTcFilters(ifindex, kClsactIngress, &others);
    if (err == 0) err = DumpTcFilters(ifindex, kClsactEgress, &others);
    if (err == -ENODEV) {
      hookOwned = false;
      return 0;
    }
    if (err != 0) {
      *op = "RTM_GETTFILTER";
      return err;
    }
    if (!others.empty()) {
      hookOwned = false;
      qdiscKept = true;
      return 0;
    }
    err = TcDestroyClsact(ifindex);
    if (err != 0 && err != -ENODEV && err != -ENOENT) {
      *op = "bpf_tc_hook_destroy";
      return err;
    }
    hookOwned = false;
  }
  return 0;
}

// ---- TcFilter

Napi::Function TcFilter::Define(Napi::Env env) {
  return DefineClass(env, "TcFilter",
                     {
                         InstanceAccessor<&TcFilter::Ifindex>("ifindex"),
                         InstanceAccessor<&TcFilter::Priority>("priority"),
                         InstanceAccessor<&TcFilter::Handle>("handle"),
                         InstanceAccessor<&TcFilter::HookCreated>("hookCreated"),
                         InstanceAccessor<&TcFilter::QdiscKept>("qdiscKept"),
                         InstanceMethod<&TcFilter::AdoptQdisc>("adoptQdisc"),
                         InstanceMethod<&TcFilter::Detach>("detach"),
                     });
}

Napi::Object TcFilter::New(Napi::Env env, TcAttachment& attachment) {
  return Data(env).tcFilter.New({Napi::External<TcAttachment>::New(env, &attachment)});
}

TcFilter::TcFilter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TcFilter>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "TcFilter cannot be constructed: use Program.attachTc()");
  attachment_ = std::move(*info[0].As<Napi::External<TcAttachment>>().Data());
}

Napi::Value TcFilter::Ifindex(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), attachment_.ifindex);
}

Napi::Value TcFilter::Priority(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), attachment_.priority);
}

Napi::Value TcFilter::Handle(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), attachment_.handle);
}

Napi::Value TcFilter::HookCreated(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), attachment_.hookCreated);
}

Napi::Value TcFilter::QdiscKept(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), attachment_.qdiscKept);
}

Napi::Value TcFilter::AdoptQdisc(const Napi::CallbackInfo& info) {
  if (attachment_.filterAttached) attachment_.hookOwned = true;
  return info.Env().Undefined();
}

Napi::Value TcFilter::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LogCapture capture;
  const char* op = "";
  int err = attachment_.Detach(&op);
  if (err != 0) throw capture.Error(env, -err, op);
  return env.Undefined();
}

// ---- entry points

Napi::Promise AttachTcx(Napi::Env env, UniqueFd progFd, int ifindex) {
  return (new AttachTcxWorker(env, std::move(progFd), ifindex))->Start();
}

Napi::Promise AttachTc(Napi::Env env, UniqueFd progFd, int ifindex, uint32_t priority,
                       uint32_t handle) {
  return (new AttachTcWorker(env, std::move(progFd), ifindex, priority, handle))->Start();
}

Napi::Value QueryTcx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = static_cast<int>(ArgU32(info, 0, "ifindex"));
  __u32 count = 0;
  // No id buffer: the kernel only reports how many programs are attached.
  int err = bpf_prog_query(ifindex, static_cast<bpf_attach_type>(kTcxIngress), 0, nullptr,
                           nullptr, &count);
  if (err != 0) throw ErrnoError(env, -err, "bpf_prog_query");
  return Napi::Number::New(env, count);
}

}  // namespace sc
