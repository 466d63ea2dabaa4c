// The routes of the caller's network namespace, read from rtnetlink: a dump
// (RTM_GETROUTE, every table) and a subscription to route changes. Only the
// route types asked for come through; lib/routes.ts decides what they mean.
// Link changes come the same way, for lib/agent.ts's interface events.
#pragma once

#include <napi.h>

namespace sc {

// routeDump(types: number[]): Promise<Route[]>, off the main thread: the IPv4
// then the IPv6 routes of every table whose rtm_type is in `types`.
//
// Route = { add: true, family: 4 | 6, dst: Buffer (4 or 16 bytes), dstLen,
//           srcLen, tos, type, table, ifindex, priority }
Napi::Value RouteDump(const Napi::CallbackInfo& info);

// routeEvents(types: number[], onEvents): a RouteEvents object. From now on,
// every RTM_NEWROUTE / RTM_DELROUTE of those types is passed to
// onEvents(routes: Route[], errno: 0) as it arrives (add: false for a
// deletion), in the kernel's order. onEvents([], ENOBUFS) says events were
// lost (the socket's buffer overran): a new dump is needed. The socket does
// not keep the event loop alive; close() stops it.
Napi::Value RouteEvents(const Napi::CallbackInfo& info);

// linkEvents(onEvents): the same for links (RTMGRP_LINK): onEvents(links, 0)
// with links = [{ add, ifindex, name, moved }], add false for RTM_DELLINK
// (deleted, or moved to another namespace: then moved is true), true for RTM_NEWLINK (new or changed:
// renamed, up, down); onEvents([], ENOBUFS) when events were lost.
Napi::Value LinkEvents(const Napi::CallbackInfo& info);

Napi::Function DefineRouteEvents(Napi::Env env);

}  // namespace sc
