// Module init and the functions that need no loaded object.
#include <bpf/libbpf.h>
#include <net/if.h>
#include <time.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "addon.h"
#include "args.h"
#include "errors.h"
#include "link.h"
#include "object.h"
#include "program.h"
#include "routes.h"
#include "shared.h"
#include "tcquery.h"

namespace sc {
namespace {

#define SC_STAT_TS_NAME(name, ts) #ts,
constexpr const char* kStatNames[] = {SC_STATS(SC_STAT_TS_NAME)};
#undef SC_STAT_TS_NAME
static_assert(std::size(kStatNames) == SC_STAT_COUNT, "one name per sc_stat");

// sizeof/offsetof of the structs in bpf/syncookie.h, for lib/layout.ts.
Napi::Value Layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto number = [&](size_t n) { return Napi::Number::New(env, static_cast<double>(n)); };

  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("sc_secret", number(sizeof(struct sc_secret)));
  sizes.Set("sc_config", number(sizeof(struct sc_config)));
  sizes.Set("sc_ports", number(sizeof(struct sc_ports)));
  sizes.Set("sc_stats", number(sizeof(struct sc_stats)));
  sizes.Set("sc_route_key", number(sizeof(struct sc_route_key)));
  sizes.Set("sc_route", number(sizeof(struct sc_route)));

  Napi::Object offsets = Napi::Object::New(env);
  offsets.Set("config_generation", number(offsetof(struct sc_config, generation)));
  offsets.Set("config_flags", number(offsetof(struct sc_config, flags)));
  offsets.Set("config_rmem_max", number(offsetof(struct sc_config, rmem_max)));
  offsets.Set("config_now_ms_override", number(offsetof(struct sc_config, now_ms_override)));
  offsets.Set("secret_k0", number(offsetof(struct sc_secret, k0)));
  offsets.Set("secret_k1", number(offsetof(struct sc_secret, k1)));

  Napi::Array statNames = Napi::Array::New(env, std::size(kStatNames));
  for (uint32_t i = 0; i < std::size(kStatNames); i++) statNames.Set(i, kStatNames[i]);

  Napi::Object constants = Napi::Object::New(env);
  constants.Set("SC_SECRET_SLOTS", number(SC_SECRET_SLOTS));
  constants.Set("SC_PORT_WORDS", number(SC_PORT_WORDS));
  constants.Set("SC_STAT_COUNT", number(SC_STAT_COUNT));
  constants.Set("SC_CFG_HAVE_PREV", number(SC_CFG_HAVE_PREV));
  constants.Set("SC_CFG_LOCAL_ONLY", number(SC_CFG_LOCAL_ONLY));
  constants.Set("SC_CFG_LOCAL_NETS", number(SC_CFG_LOCAL_NETS));
  constants.Set("SC_ROUTE_ENTRIES", number(SC_ROUTE_ENTRIES));
  constants.Set("SC_RTN_LOCAL", number(SC_RTN_LOCAL));

  Napi::Object layout = Napi::Object::New(env);
  layout.Set("sizes", sizes);
  layout.Set("offsets", offsets);
  layout.Set("statNames", statNames);
  layout.Set("constants", constants);
  return layout;
}

Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus < 0) throw ErrnoError(info.Env(), -cpus, "libbpf_num_possible_cpus");
  return Napi::Number::New(info.Env(), cpus);
}

Napi::Value ClockTaiNs(const Napi::CallbackInfo& info) {
  struct timespec ts;
  if (clock_gettime(CLOCK_TAI, &ts) != 0) throw ErrnoError(info.Env(), errno, "clock_gettime");
  uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
  return Napi::BigInt::New(info.Env(), ns);
}

Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "name");
  unsigned int index = if_nametoindex(name.c_str());
  if (index == 0) throw ErrnoError(info.Env(), errno, "if_nametoindex");
  return Napi::Number::New(info.Env(), index);
}

Napi::Value IfIndexToName(const Napi::CallbackInfo& info) {
  unsigned int index = ArgU32(info, 0, "ifindex");
  char name[IF_NAMESIZE];
  // glibc reports an unknown index as ENXIO (the ioctl's); say ENODEV as netlink does.
  if (if_indextoname(index, name) == nullptr)
    throw ErrnoError(info.Env(), errno == ENXIO ? ENODEV : errno, "if_indextoname");
  return Napi::String::New(info.Env(), name);
}

}  // namespace
}  // namespace sc

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace sc;
  InstallLibbpfPrint();

  auto* data = new AddonData();
  env.SetInstanceData(data);
  Napi::Function program = Program::Define(env);
  Napi::Function link = Link::Define(env);
  Napi::Function tcFilter = TcFilter::Define(env);
  data->program = Napi::Persistent(program);
  data->link = Napi::Persistent(link);
  data->tcFilter = Napi::Persistent(tcFilter);
  Napi::Function bpfObject = BpfObject::Define(env);
  data->bpfObject = Napi::Persistent(bpfObject);
  Napi::Function routeEvents = DefineRouteEvents(env);
  data->routeEvents = Napi::Persistent(routeEvents);

  exports.Set("layout", Napi::Function::New<Layout>(env, "layout"));
  exports.Set("possibleCpus", Napi::Function::New<PossibleCpus>(env, "possibleCpus"));
  exports.Set("clockTaiNs", Napi::Function::New<ClockTaiNs>(env, "clockTaiNs"));
  exports.Set("ifNameToIndex", Napi::Function::New<IfNameToIndex>(env, "ifNameToIndex"));
  exports.Set("ifIndexToName", Napi::Function::New<IfIndexToName>(env, "ifIndexToName"));
  exports.Set("queryTcx", Napi::Function::New<QueryTcx>(env, "queryTcx"));
  exports.Set("tcFilters", Napi::Function::New<TcFilters>(env, "tcFilters"));
  exports.Set("tcDetach", Napi::Function::New<TcDetach>(env, "tcDetach"));
  exports.Set("tcQdiscDelete", Napi::Function::New<TcQdiscDelete>(env, "tcQdiscDelete"));
  exports.Set("routeDump", Napi::Function::New<RouteDump>(env, "routeDump"));
  exports.Set("routeEvents", Napi::Function::New<RouteEvents>(env, "routeEvents"));
  exports.Set("linkEvents", Napi::Function::New<LinkEvents>(env, "linkEvents"));
  exports.Set("open", Napi::Function::New<Open>(env, "open"));
  exports.Set("openObject", Napi::Function::New<OpenObject>(env, "openObject"));
  exports.Set("Program", program);
  exports.Set("Link", link);
  exports.Set("TcFilter", tcFilter);
  exports.Set("BpfObject", bpfObject);
  exports.Set("RouteEvents", routeEvents);
  return exports;
}

NODE_API_MODULE(syncookie, Init)
