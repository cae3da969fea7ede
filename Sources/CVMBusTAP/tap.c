#define _GNU_SOURCE
#include "vmbus_tap.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int vmbus_tap_vnet_header_size(void) { return (int)sizeof(struct virtio_net_hdr_mrg_rxbuf); }

int vmbus_tap_open(const char *name, char *actual) {
    if (strlen(name) >= IFNAMSIZ) { errno = ENAMETOOLONG; return -1; }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    int size = vmbus_tap_vnet_header_size();
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    actual[IFNAMSIZ - 1] = 0;
    return fd;
}

int vmbus_tap_set_offload(int fd, unsigned int flags) { return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags); }
unsigned int vmbus_tap_offload_csum(void) { return TUN_F_CSUM; }
unsigned int vmbus_tap_offload_tso4(void) { return TUN_F_TSO4; }
unsigned int vmbus_tap_offload_tso6(void) { return TUN_F_TSO6; }
unsigned int vmbus_tap_offload_tso_ecn(void) { return TUN_F_TSO_ECN; }

/* RTM_NEWLINK with IFLA_GSO_MAX_SIZE on the interface's index, then the kernel's acknowledgement. */
static int ifreq_call(const char *name, unsigned long request, struct ifreq *ifr);

int vmbus_tap_set_gso_max_size(const char *name, unsigned int size) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ifreq_call(name, SIOCGIFINDEX, &ifr) < 0) return -1;
    int index = ifr.ifr_ifindex;
    struct {
        struct nlmsghdr header;
        struct ifinfomsg info;
        struct rtattr attribute;
        unsigned int value;
    } request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_len = sizeof request;
    request.header.nlmsg_type = RTM_NEWLINK;
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    request.header.nlmsg_seq = 1;
    request.info.ifi_family = AF_UNSPEC;
    request.info.ifi_index = index;
    request.attribute.rta_type = IFLA_GSO_MAX_SIZE;
    request.attribute.rta_len = RTA_LENGTH(sizeof(unsigned int));
    request.value = size;
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0) return -1;
    int result = -1;
    if (send(s, &request, sizeof request, 0) == (ssize_t)sizeof request) {
        char answer[512];
        ssize_t n = recv(s, answer, sizeof answer, 0);
        struct nlmsghdr *h = (struct nlmsghdr *)answer;
        if (n >= (ssize_t)(sizeof *h + sizeof(struct nlmsgerr)) && h->nlmsg_type == NLMSG_ERROR) {
            int error = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
            if (error == 0) result = 0; else errno = -error;
        } else {
            errno = EPROTO;
        }
    }
    int e = errno;
    close(s);
    errno = e;
    return result;
}

int vmbus_tap_set_carrier(int fd, int on) {
#ifdef TUNSETCARRIER
    return ioctl(fd, TUNSETCARRIER, &on);
#else
    (void)fd; (void)on;
    errno = ENOTTY;
    return -1;
#endif
}

/* Interface ioctls go through any socket; a datagram socket of the caller's namespace. */
static int ifreq_call(const char *name, unsigned long request, struct ifreq *ifr) {
    if (strlen(name) >= IFNAMSIZ) { errno = ENAMETOOLONG; return -1; }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
    int r = ioctl(s, request, ifr);
    int e = errno;
    close(s);
    errno = e;
    return r;
}

int vmbus_tap_set_mac(const char *name, const uint8_t mac[6]) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
    return ifreq_call(name, SIOCSIFHWADDR, &ifr);
}

int vmbus_tap_set_mtu(const char *name, int mtu) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_mtu = mtu;
    return ifreq_call(name, SIOCSIFMTU, &ifr);
}

int vmbus_tap_get_mtu(const char *name, int *mtu) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ifreq_call(name, SIOCGIFMTU, &ifr) < 0) return -1;
    *mtu = ifr.ifr_mtu;
    return 0;
}

int vmbus_tap_set_up(const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ifreq_call(name, SIOCGIFFLAGS, &ifr) < 0) return -1;
    ifr.ifr_flags |= IFF_UP;
    return ifreq_call(name, SIOCSIFFLAGS, &ifr);
}
