#include "routes.h"

#include <linux/netlink.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <bitset>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "fd.h"
#include "netlink.h"
#include "worker.h"

namespace sc {
namespace {

using TypeSet = std::bitset<256>;

struct RouteInfo {
  bool add = true;
  uint8_t family = 0;  // AF_INET, AF_INET6
  uint8_t dstLen = 0;
  uint8_t srcLen = 0;
  uint8_t tos = 0;
  uint8_t type = 0;  // RTN_*
  uint32_t table = 0;
  uint32_t ifindex = 0;
  uint32_t priority = 0;
  uint8_t dst[16] = {};
};

TypeSet ArgTypes(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = Arg(info, i);
  if (!v.IsArray()) throw Napi::TypeError::New(info.Env(), "types must be an array of route types");
  Napi::Array a = v.As<Napi::Array>();
  TypeSet types;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value t = a.Get(k);
    if (!t.IsNumber()) throw Napi::TypeError::New(info.Env(), "types must be an array of route types");
    types.set(t.As<Napi::Number>().Uint32Value() & 0xff);
  }
  return types;
}

// One RTM_NEWROUTE / RTM_DELROUTE, if its type is wanted.
void ParseRoute(const nlmsghdr* nh, const TypeSet& types, std::vector<RouteInfo>* out) {
  if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return;
  auto* rtm = static_cast<const rtmsg*>(NLMSG_DATA(nh));
  if (!types.test(rtm->rtm_type)) return;
  if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) return;
  if (rtm->rtm_flags & RTM_F_CLONED) return;  // a cache entry, not a route
  RouteInfo r;
  r.add = nh->nlmsg_type == RTM_NEWROUTE;
  r.family = rtm->rtm_family;
  r.dstLen = rtm->rtm_dst_len;
  r.srcLen = rtm->rtm_src_len;
  r.tos = rtm->rtm_tos;
  r.type = rtm->rtm_type;
  r.table = rtm->rtm_table;  // RTA_TABLE below has the full 32 bits
  size_t addrLen = r.family == AF_INET ? 4 : 16;
  int len = static_cast<int>(nh->nlmsg_len) - NLMSG_LENGTH(sizeof(*rtm));
  for (auto* a = RTM_RTA(rtm); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    size_t size = RTA_PAYLOAD(a);
    const void* data = RTA_DATA(a);
    switch (a->rta_type) {
      case RTA_DST:
        if (size == addrLen) memcpy(r.dst, data, addrLen);
        break;
      case RTA_TABLE:
        if (size >= 4) memcpy(&r.table, data, 4);
        break;
      case RTA_OIF:
        if (size >= 4) memcpy(&r.ifindex, data, 4);
        break;
      case RTA_PRIORITY:
        if (size >= 4) memcpy(&r.priority, data, 4);
        break;
    }
  }
  out->push_back(r);
}

// The routes of `family` in every table; 0 or a negative errno.
int DumpFamily(uint8_t family, const TypeSet& types, std::vector<RouteInfo>* out) {
  struct {
    nlmsghdr nh;
    rtmsg rtm;
  } req = {};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.rtm));
  req.nh.nlmsg_type = RTM_GETROUTE;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.rtm.rtm_family = family;
  return NetlinkDump(&req.nh, [&](const nlmsghdr* nh) {
    if (nh->nlmsg_type == RTM_NEWROUTE) ParseRoute(nh, types, out);
  });
}

Napi::Object RouteObject(Napi::Env env, const RouteInfo& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("add", Napi::Boolean::New(env, r.add));
  o.Set("family", Napi::Number::New(env, r.family == AF_INET ? 4 : 6));
  o.Set("dst", Napi::Buffer<uint8_t>::Copy(env, r.dst, r.family == AF_INET ? 4 : 16));
  o.Set("dstLen", Napi::Number::New(env, r.dstLen));
  o.Set("srcLen", Napi::Number::New(env, r.srcLen));
  o.Set("tos", Napi::Number::New(env, r.tos));
  o.Set("type", Napi::Number::New(env, r.type));
  o.Set("table", Napi::Number::New(env, r.table));
  o.Set("ifindex", Napi::Number::New(env, r.ifindex));
  o.Set("priority", Napi::Number::New(env, r.priority));
  return o;
}

Napi::Array RouteArray(Napi::Env env, const std::vector<RouteInfo>& routes) {
  Napi::Array a = Napi::Array::New(env, routes.size());
  for (size_t i = 0; i < routes.size(); i++) a[i] = RouteObject(env, routes[i]);
  return a;
}

struct LinkInfo {
  bool add = true;  // RTM_NEWLINK (new, or changed: renamed, up/down) or RTM_DELLINK
  uint32_t ifindex = 0;
  std::string name;
  bool moved = false;  // RTM_DELLINK with IFLA_NEW_NETNSID: moved to another namespace
};

void ParseLink(const nlmsghdr* nh, std::vector<LinkInfo>* out) {
  if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return;
  auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(nh));
  LinkInfo l;
  l.add = nh->nlmsg_type == RTM_NEWLINK;
  l.ifindex = static_cast<uint32_t>(ifi->ifi_index);
  int len = static_cast<int>(nh->nlmsg_len) - NLMSG_LENGTH(sizeof(*ifi));
  for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_IFNAME)
      l.name.assign(static_cast<const char*>(RTA_DATA(a)), strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
    if (a->rta_type == IFLA_NEW_NETNSID) l.moved = true;
  }
  out->push_back(std::move(l));
}

Napi::Array LinkArray(Napi::Env env, const std::vector<LinkInfo>& links) {
  Napi::Array a = Napi::Array::New(env, links.size());
  for (size_t i = 0; i < links.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("add", Napi::Boolean::New(env, links[i].add));
    o.Set("ifindex", Napi::Number::New(env, links[i].ifindex));
    o.Set("name", Napi::String::New(env, links[i].name));
    o.Set("moved", Napi::Boolean::New(env, links[i].moved));
    a[i] = o;
  }
  return a;
}

class RouteDumpWorker : public PromiseWorker {
 public:
  RouteDumpWorker(Napi::Env env, TypeSet types)
      : PromiseWorker(env, "syncookie:routeDump"), types_(types) {}

 private:
  void Execute() override {
    for (uint8_t family : {AF_INET, AF_INET6}) {
      int err = DumpFamily(family, types_, &routes_);
      // EAFNOSUPPORT: a kernel without IPv6 has no IPv6 routes
      if (err == -EAFNOSUPPORT && family == AF_INET6) break;
      if (err != 0) return Fail(-err, "RTM_GETROUTE");
    }
  }

  Napi::Value Result(Napi::Env env) override { return RouteArray(env, routes_); }

  TypeSet types_;
  std::vector<RouteInfo> routes_;
};

// A subscription to route (RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE) or link
// (RTMGRP_LINK) changes. A thread of its own blocks in poll() on the socket and an
// eventfd that close() signals; what it reads reaches JS through a
// thread-safe function, which is unref'd: it does not keep the process alive.
class RouteEventsWrap : public Napi::ObjectWrap<RouteEventsWrap> {
 public:
  explicit RouteEventsWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RouteEventsWrap>(info) {
    Napi::Env env = info.Env();
    // made only by routeEvents() and linkEvents() below
    bool links = ArgString(info, 0, "kind") == "links";
    TypeSet types = links ? TypeSet() : ArgTypes(info, 1);
    Napi::Value cb = Arg(info, 2);
    if (!cb.IsFunction()) throw Napi::TypeError::New(env, "onEvents must be a function");

    UniqueFd sock(socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!sock) throw ErrnoError(env, errno, "socket(NETLINK_ROUTE)");
    // Room for a burst (an interface going down takes its routes with it);
    // beyond it the kernel reports ENOBUFS and the caller dumps again.
    int size = 1 << 20;
    if (setsockopt(sock.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
      setsockopt(sock.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    sockaddr_nl addr = {};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = links ? RTMGRP_LINK : RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    if (bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw ErrnoError(env, errno, links ? "bind(RTMGRP_LINK)" : "bind(RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE)");
    UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) throw ErrnoError(env, errno, "eventfd");

    tsfn_ = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), links ? "syncookie:linkEvents" : "syncookie:routeEvents", 0, 1);
    tsfn_.Unref(env);
    reader_ = std::make_shared<Reader>();
    reader_->sock = std::move(sock);
    reader_->wake = std::move(wake);
    reader_->types = types;
    reader_->links = links;
    thread_ = std::thread(Run, reader_, tsfn_);
    napi_add_env_cleanup_hook(env, Stop, this);
  }

  ~RouteEventsWrap() override { Shutdown(true); }

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RouteEvents", {InstanceMethod<&RouteEventsWrap::Close>("close")});
  }

 private:
  struct Reader {
    UniqueFd sock;
    UniqueFd wake;
    TypeSet types;
    bool links = false;
  };
  // One delivery: what was read, then the errno if reading failed (ENOBUFS).
  struct Batch {
    bool links = false;
    std::vector<RouteInfo> routes;
    std::vector<LinkInfo> linkInfo;
    int err = 0;
  };

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown(true);
    return info.Env().Undefined();
  }

  // The environment is going away (a worker thread ends) before GC got here.
  static void Stop(void* self) { static_cast<RouteEventsWrap*>(self)->Shutdown(false); }

  void Shutdown(bool removeHook) {
    if (!thread_.joinable()) return;
    uint64_t one = 1;
    if (write(reader_->wake.get(), &one, sizeof(one)) < 0) {
      // an eventfd write fails only on overflow: it is signalled already
    }
    thread_.join();
    tsfn_.Release();
    reader_.reset();
    if (removeHook) napi_remove_env_cleanup_hook(Env(), Stop, this);
  }

  static void Run(std::shared_ptr<Reader> r, Napi::ThreadSafeFunction tsfn) {
    std::vector<char> buf(1 << 16);
    for (;;) {
      pollfd fds[2] = {{r->sock.get(), POLLIN, 0}, {r->wake.get(), POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      auto* batch = new Batch;
      batch->links = r->links;
      for (;;) {
        ssize_t n = recv(r->sock.get(), buf.data(), buf.size(), 0);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK) batch->err = errno;
          break;
        }
        int len = static_cast<int>(n);
        for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
          if (!r->links && (nh->nlmsg_type == RTM_NEWROUTE || nh->nlmsg_type == RTM_DELROUTE))
            ParseRoute(nh, r->types, &batch->routes);
          if (r->links && (nh->nlmsg_type == RTM_NEWLINK || nh->nlmsg_type == RTM_DELLINK))
            ParseLink(nh, &batch->linkInfo);
        }
      }
      if (batch->routes.empty() && batch->linkInfo.empty() && batch->err == 0) {
        delete batch;
        continue;
      }
      if (tsfn.NonBlockingCall(batch, Deliver) != napi_ok) {
        delete batch;  // closing: nobody listens any more
        return;
      }
    }
  }

  // On the main thread.
  static void Deliver(Napi::Env env, Napi::Function cb, Batch* batch) {
    std::unique_ptr<Batch> owned(batch);
    if (env == nullptr) return;  // the function is being torn down
    Napi::Array items = owned->links ? LinkArray(env, owned->linkInfo) : RouteArray(env, owned->routes);
    cb.Call({items, Napi::Number::New(env, owned->err)});
  }

  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<Reader> reader_;
  std::thread thread_;
};

}  // namespace

Napi::Value RouteDump(const Napi::CallbackInfo& info) {
  TypeSet types = ArgTypes(info, 0);
  return (new RouteDumpWorker(info.Env(), types))->Start();
}

Napi::Value RouteEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Data(env).routeEvents.New({Napi::String::New(env, "routes"), Arg(info, 0), Arg(info, 1)});
}

Napi::Value LinkEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Data(env).routeEvents.New({Napi::String::New(env, "links"), env.Undefined(), Arg(info, 0)});
}

Napi::Function DefineRouteEvents(Napi::Env env) { return RouteEventsWrap::Define(env); }

}  // namespace sc
