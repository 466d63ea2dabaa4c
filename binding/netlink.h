// One rtnetlink dump: a request on a socket of its own, then every message
// of the answer until NLMSG_DONE. For the dumps libbpf 1.1 has no call for
// (tc filters, routes).
#pragma once

#include <linux/netlink.h>

#include <functional>

namespace sc {

// Sends `request` (an nlmsghdr with NLM_F_REQUEST | NLM_F_DUMP and its
// payload) and calls onMessage for each message of the answer that is not
// NLMSG_DONE or NLMSG_ERROR. Returns 0, or a negative errno (the kernel's
// NLMSG_ERROR, or a socket call's).
int NetlinkDump(nlmsghdr* request, const std::function<void(const nlmsghdr*)>& onMessage);

}  // namespace sc
