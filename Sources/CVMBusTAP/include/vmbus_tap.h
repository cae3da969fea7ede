#ifndef VMBUS_TAP_H
#define VMBUS_TAP_H
#include <stdint.h>

/* TAP devices and interface settings: ioctl is variadic and the TUN and SIOCSIF* constants and structures
   are not imported by Swift's Glibc module. Each returns 0 (or a descriptor) on success, -1 and errno on
   failure. */

/* The size of the virtio-net header every TAP opened here carries before each frame
   (struct virtio_net_hdr_mrg_rxbuf: the version 1 layout with num_buffers). */
int vmbus_tap_vnet_header_size(void);

/* Opens /dev/net/tun as the TAP interface `name` (created if it does not exist) with IFF_TAP | IFF_NO_PI |
   IFF_VNET_HDR, close-on-exec and non-blocking, and sets the vnet header size. The kernel's name for the
   interface (at most 15 bytes and a NUL) goes into `actual` (16 bytes). */
int vmbus_tap_open(const char *name, char *actual);

/* TUNSETOFFLOAD: what the kernel may hand us unfinished (TUN_F_* bits; 0: every frame complete). */
int vmbus_tap_set_offload(int fd, unsigned int flags);
unsigned int vmbus_tap_offload_csum(void);
unsigned int vmbus_tap_offload_tso4(void);
unsigned int vmbus_tap_offload_tso6(void);
unsigned int vmbus_tap_offload_tso_ecn(void);

/* The largest GSO frame the kernel hands the interface (IFLA_GSO_MAX_SIZE through rtnetlink, Linux 5.19+
   for a TAP), so that what it hands over fits what the NIC behind it takes in one send. */
int vmbus_tap_set_gso_max_size(const char *name, unsigned int size);

/* TUNSETCARRIER (Linux 5.0+): the interface's carrier follows the NIC's link; -1 and ENOTTY before. */
int vmbus_tap_set_carrier(int fd, int on);

/* SIOCSIFHWADDR (an Ethernet address), SIOCSIFMTU and IFF_UP of an interface, by name. */
int vmbus_tap_set_mac(const char *name, const uint8_t mac[6]);
int vmbus_tap_set_mtu(const char *name, int mtu);
int vmbus_tap_set_up(const char *name);
int vmbus_tap_get_mtu(const char *name, int *mtu);

#endif
