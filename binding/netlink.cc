#include "netlink.h"

#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "fd.h"

namespace sc {

int NetlinkDump(nlmsghdr* request, const std::function<void(const nlmsghdr*)>& onMessage) {
  UniqueFd sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock) return -errno;
  request->nlmsg_seq = 1;
  if (send(sock.get(), request, request->nlmsg_len, 0) < 0) return -errno;

  std::vector<char> buf(1 << 16);  // more than one batch of a dump can be (32 KiB)
  for (;;) {
    ssize_t n = recv(sock.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    int len = static_cast<int>(n);
    for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_seq != request->nlmsg_seq) continue;
      if (nh->nlmsg_type == NLMSG_DONE) return 0;
      if (nh->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(nh));
        if (e->error != 0) return e->error;
        continue;
      }
      onMessage(nh);
    }
  }
}

}  // namespace sc
