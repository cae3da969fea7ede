/*
 * swift-vmbus ring baselines (ours; no Linux code is committed): the two-process workload of
 * `vmbus-bench xproc-64B` (one 4 MiB ring in a memfd, a parent writing COUNT packets of PAYLOAD bytes, a
 * child reading every one into a private buffer, both busy polling, pinned to CPUs 0 and 1) through:
 *
 *   linux  Linux 6.12's tools/hv/vmbus_bufring.c (rte_vmbus_chan_send / rte_vmbus_chan_recv_raw), which
 *          build.sh extracts from Debian's linux-source-6.12 at benchmark time (built with -DHAVE_VMBUS_BUFRING).
 *          PAYLOAD must be a multiple of 8: that file rounds its pad length down.
 *   spsc   a plain single-producer/single-consumer ring with the same framing (16-byte descriptor, payload
 *          padded to 8, 8-byte trailer, write/read index at offsets 0/4 of a 4 KiB control page): cached peer
 *          index, one release store per packet, no validation. The limit a VMBus ring can approach.
 *
 * Usage: ring-baselines linux|spsc PAYLOAD COUNT [--no-pin]
 * Prints "packets_per_second <rate>" and exits 0, or exits 1 if the reader saw wrong bytes, 3 if the mode was
 * not built in. Timing, as in vmbus-bench: from when the reader is running (pinned, polling) until the parent
 * sees it finish.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_VMBUS_BUFRING
#include "vmbus_bufring.h"
#endif

#define CONTROL 4096u
#define DATA (4u << 20)
#define MAX_PAYLOAD 65536u

/* After the ring: a flag the reader sets when it has read everything, and the check sum it computed. */
struct done { volatile uint32_t finished; volatile uint32_t ready; volatile uint64_t check; };

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu) {
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof set, &set);
}

static inline void relax(unsigned *spins) {
	if (++*spins < 64) { __builtin_ia32_pause(); return; }
	*spins = 0;
	sched_yield();
}

/* ---- spsc ---- */

static inline uint32_t load_acquire(uint8_t *p) { return __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE); }
static inline void store_release(uint8_t *p, uint32_t v) { __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE); }

static void spsc_write(uint8_t *ring, const uint8_t *payload, uint32_t len, uint64_t count) {
	uint8_t *data = ring + CONTROL;
	uint32_t w = 0, r = 0;
	uint32_t padded = 16 + ((len + 7) & ~7u), total = padded + 8;
	unsigned spins = 0;
	for (uint64_t i = 0; i < count;) {
		uint32_t free = w >= r ? DATA - (w - r) : r - w;
		if (free <= total) {
			r = load_acquire(ring + 4);
			relax(&spins);
			continue;
		}
		uint64_t d0 = 6u | (2ull << 16) | ((uint64_t)(padded / 8) << 32);
		uint8_t packet[16 + MAX_PAYLOAD + 8 + 8];
		uint8_t *p = w + total <= DATA ? data + w : packet;
		memcpy(p, &d0, 8);
		memcpy(p + 8, &i, 8);
		memset(p + padded - 8, 0, 8);
		memcpy(p + 16, payload, len);
		uint64_t trailer = (uint64_t)w << 32;
		memcpy(p + padded, &trailer, 8);
		if (p == packet) { /* wraps: copy in two pieces */
			uint32_t first = DATA - w;
			memcpy(data + w, packet, first);
			memcpy(data, packet + first, total - first);
		}
		w = (w + total) % DATA;
		store_release(ring, w);
		i++;
		spins = 0;
	}
}

static uint64_t spsc_read(uint8_t *ring, uint64_t count) {
	uint8_t *data = ring + CONTROL;
	uint32_t w = 0, r = 0;
	static uint8_t buf[16 + MAX_PAYLOAD + 8];
	uint64_t check = 0;
	unsigned spins = 0;
	for (uint64_t i = 0; i < count;) {
		if (w == r) {
			w = load_acquire(ring);
			if (w == r) relax(&spins);
			continue;
		}
		uint64_t d0;
		memcpy(&d0, data + r, 8);
		uint32_t len = (uint32_t)(d0 >> 32 & 0xffff) * 8;
		uint32_t first = DATA - r < len ? DATA - r : len;
		memcpy(buf, data + r, first);
		if (first < len) memcpy(buf + first, data, len - first);
		uint64_t id;
		memcpy(&id, buf + 8, 8);
		check += id + (len - 16);
		r = (r + len + 8) % DATA;
		store_release(ring + 4, r);
		i++;
		spins = 0;
	}
	return check;
}

/* ---- Linux's vmbus_bufring.c ---- */

#ifdef HAVE_VMBUS_BUFRING
static void linux_write(uint8_t *ring, uint8_t *payload, uint32_t len, uint64_t count) {
	struct vmbus_br br;
	vmbus_br_setup(&br, ring, CONTROL + DATA);
	unsigned spins = 0;
	for (uint64_t i = 0; i < count;) {
		/* The transaction id field is Linux's own (VMBUS_RQST_ERROR): the sequence goes in the payload. */
		memcpy(payload, &i, 8);
		int r = rte_vmbus_chan_send(&br, VMBUS_CHANPKT_TYPE_INBAND, payload, len, 0);
		if (r == 0) { i++; spins = 0; continue; }
		if (r != -EAGAIN) { fprintf(stderr, "rte_vmbus_chan_send: %d\n", r); exit(1); }
		relax(&spins);
	}
}

static uint64_t linux_read(uint8_t *ring, uint64_t count) {
	struct vmbus_br br;
	vmbus_br_setup(&br, ring, CONTROL + DATA);
	static uint8_t buf[16 + MAX_PAYLOAD + 8];
	uint64_t check = 0;
	unsigned spins = 0;
	for (uint64_t i = 0; i < count;) {
		uint32_t len = sizeof buf;
		int r = rte_vmbus_chan_recv_raw(&br, buf, &len);
		if (r == -EAGAIN) { relax(&spins); continue; }
		if (r < 0) { fprintf(stderr, "rte_vmbus_chan_recv_raw: %d\n", r); exit(1); }
		uint64_t id;
		memcpy(&id, buf + 16, 8);
		check += id + (len - 16);
		i++;
		spins = 0;
	}
	return check;
}
#endif

int main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: %s linux|spsc PAYLOAD COUNT [--no-pin]\n", argv[0]);
		return 2;
	}
	int linux_ring = strcmp(argv[1], "linux") == 0;
	if (!linux_ring && strcmp(argv[1], "spsc") != 0) return 2;
#ifndef HAVE_VMBUS_BUFRING
	if (linux_ring) { fprintf(stderr, "built without Linux's vmbus_bufring.c (linux-source-6.12 missing)\n"); return 3; }
#endif
	uint32_t len = (uint32_t)strtoul(argv[2], NULL, 0);
	uint64_t count = strtoull(argv[3], NULL, 0);
	int pinned = !(argc > 4 && strcmp(argv[4], "--no-pin") == 0);
	if (len < 8 || len > MAX_PAYLOAD || (linux_ring && len % 8)) { fprintf(stderr, "bad payload size\n"); return 2; }

	size_t size = CONTROL + DATA + 4096;
	uint8_t *ring = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ring == MAP_FAILED) { perror("mmap"); return 2; }
	memset(ring, 0, size); /* first-touch faults stay out of the measured window */
	struct done *done = (struct done *)(ring + CONTROL + DATA);
	static uint8_t payload[MAX_PAYLOAD];
	for (uint32_t i = 0; i < len; i++) payload[i] = (uint8_t)i;

	pid_t child = fork();
	if (child < 0) { perror("fork"); return 2; }
	if (child == 0) {
		if (pinned) pin(1);
		__atomic_store_n(&done->ready, 1, __ATOMIC_RELEASE);
		uint64_t check = 0;
#ifdef HAVE_VMBUS_BUFRING
		if (linux_ring) check = linux_read(ring, count);
#endif
		if (!linux_ring) check = spsc_read(ring, count);
		done->check = check;
		__atomic_store_n(&done->finished, 1, __ATOMIC_RELEASE);
		_exit(0);
	}
	if (pinned) pin(0);
	unsigned spins = 0;
	while (!__atomic_load_n(&done->ready, __ATOMIC_ACQUIRE)) relax(&spins);
	uint64_t start = now_ns();
#ifdef HAVE_VMBUS_BUFRING
	if (linux_ring) linux_write(ring, payload, len, count);
#endif
	if (!linux_ring) spsc_write(ring, payload, len, count);
	while (!__atomic_load_n(&done->finished, __ATOMIC_ACQUIRE)) relax(&spins);
	uint64_t end = now_ns();
	waitpid(child, NULL, 0);
	/* Both check sums: the sequence numbers 0..count-1 plus the bytes after the descriptor. */
	uint64_t padded = (len + 7) & ~7u;
	uint64_t expected = count * (count - 1) / 2 + count * padded;
	if (done->check != expected) {
		fprintf(stderr, "reader saw wrong packets (check %llu, expected %llu)\n",
			(unsigned long long)done->check, (unsigned long long)expected);
		return 1;
	}
	printf("packets_per_second %.0f\n", (double)count * 1e9 / (double)(end - start));
	return 0;
}
