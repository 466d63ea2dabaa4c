// Per-environment state: the constructors of the classes the binding makes.
#pragma once

#include <napi.h>

namespace sc {

struct AddonData {
  Napi::FunctionReference program;
  Napi::FunctionReference link;
  Napi::FunctionReference tcFilter;
  Napi::FunctionReference bpfObject;
  Napi::FunctionReference routeEvents;
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace sc
