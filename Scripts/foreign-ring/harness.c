/*
 * swift-vmbus foreign-ring harness (ours; no Linux code is committed).
 *
 * Drives the userspace VMBus ring shipped with Linux 6.12 (tools/hv/vmbus_bufring.c, BSD-3-Clause), which
 * build.sh extracts from Debian's linux-source-6.12 at test time, against rings in a memfd region that the
 * Swift test (Tests/VMBusRingTests/ForeignRingInteropTests.swift) maps too. The region is reached through
 * /proc/<pid>/fd/<n> of the test process.
 *
 * Modes:
 *   stream <path> <size> <txOff> <txLen> <rxOff> <rxLen> <count> <seed>
 *       Linux writes `count` packets into the ring at txOff (the Swift IncomingRing reads them) while Linux
 *       reads and verifies `count` packets from the ring at rxOff (the Swift OutgoingRing writes them).
 *   fill <path> <size> <off> <len> <seed>
 *       Linux writes packets into the ring at off until it refuses one (EAGAIN); prints how many it wrote.
 *
 * The packet streams are deterministic functions of (seed, packet number); the Swift test implements the
 * same functions (ForeignRingStream in the test target). Keep both in step.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmbus_bufring.h"

#define PATTERN_WORDS 1280 /* 10240 bytes: starts < 8192, lengths <= 2048 */
#define PATTERN_START_RANGE 8192
#define MAX_PACKET (16 + 24 + 2048 + 8)
#define TIMEOUT_NS (120ull * 1000000000ull)

static uint8_t pattern[PATTERN_WORDS * 8];

static uint64_t mix64(uint64_t z) {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* The k-th random number of packet i of the stream `seed`. */
static uint64_t rnd(uint64_t seed, uint64_t i, uint64_t k) {
	return mix64(seed * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull + k);
}

static void make_pattern(uint64_t seed) {
	for (uint64_t w = 0; w < PATTERN_WORDS; w++) {
		uint64_t v = mix64(seed + w);
		for (int b = 0; b < 8; b++) pattern[w * 8 + b] = (uint8_t)(v >> (8 * b));
	}
}

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void backoff(unsigned *spins) {
	if (++*spins < 64) return;
	*spins = 0;
	sched_yield();
}

/* Stream "linux to swift": payload length a multiple of 8 (vmbus_bufring.c rounds its padding down). */
struct l2s_packet { uint16_t type; uint16_t flags; uint32_t length; uint32_t start; };

static struct l2s_packet l2s(uint64_t seed, uint64_t i) {
	struct l2s_packet p;
	uint64_t r1 = rnd(seed, i, 1);
	p.length = (uint32_t)(8 * (rnd(seed, i, 0) % 257)); /* 0 ... 2048 */
	p.type = (r1 & 1) ? 6 : 11;
	p.flags = (uint16_t)((r1 >> 1) & 1);
	p.start = (uint32_t)(rnd(seed, i, 2) % PATTERN_START_RANGE);
	return p;
}

/* Stream "swift to linux": any payload length, sometimes a GPA-direct style header. */
struct s2l_packet {
	uint16_t type; uint16_t flags; uint32_t header; uint32_t length;
	uint32_t header_start; uint32_t start; uint64_t xactid;
};

static struct s2l_packet s2l(uint64_t seed, uint64_t i) {
	struct s2l_packet p;
	uint64_t r1 = rnd(seed, i, 1);
	p.header = (rnd(seed, i, 3) % 4 == 0) ? (uint32_t)(8 * (1 + rnd(seed, i, 4) % 3)) : 0;
	p.length = (uint32_t)(rnd(seed, i, 0) % 2049); /* 0 ... 2048 */
	p.type = p.header ? 9 : ((r1 & 1) ? 6 : 11);
	p.flags = (uint16_t)((r1 >> 1) & 1);
	p.start = (uint32_t)(rnd(seed, i, 2) % PATTERN_START_RANGE);
	p.header_start = (uint32_t)(rnd(seed, i, 5) % PATTERN_START_RANGE);
	p.xactid = rnd(seed, i, 6);
	return p;
}

struct job {
	struct vmbus_br br;
	uint64_t count, seed;
	const char *error;
	char message[256];
};

static void *writer(void *arg) {
	struct job *j = arg;
	uint64_t deadline = now_ns() + TIMEOUT_NS;
	unsigned spins = 0;
	for (uint64_t i = 0; i < j->count;) {
		struct l2s_packet p = l2s(j->seed, i);
		int r = rte_vmbus_chan_send(&j->br, p.type, pattern + p.start, p.length, p.flags);
		if (r == 0) { i++; spins = 0; continue; }
		if (r != -EAGAIN) {
			snprintf(j->message, sizeof j->message, "rte_vmbus_chan_send(%llu) = %d", (unsigned long long)i, r);
			j->error = j->message;
			return NULL;
		}
		if (now_ns() > deadline) {
			snprintf(j->message, sizeof j->message, "timeout writing packet %llu", (unsigned long long)i);
			j->error = j->message;
			return NULL;
		}
		backoff(&spins);
	}
	return NULL;
}

static void *reader(void *arg) {
	struct job *j = arg;
	static uint8_t buf[MAX_PACKET];
	uint64_t deadline = now_ns() + TIMEOUT_NS;
	unsigned spins = 0;
	for (uint64_t i = 0; i < j->count;) {
		uint32_t len = sizeof buf;
		int r = rte_vmbus_chan_recv_raw(&j->br, buf, &len);
		if (r == -EAGAIN) {
			if (now_ns() > deadline) {
				snprintf(j->message, sizeof j->message, "timeout reading packet %llu", (unsigned long long)i);
				j->error = j->message;
				return NULL;
			}
			backoff(&spins);
			continue;
		}
		spins = 0;
		struct s2l_packet p = s2l(j->seed, i);
		uint32_t unpadded = 16 + p.header + p.length;
		uint32_t padded = (unpadded + 7) & ~7u;
		struct vmbus_chanpkt_hdr h;
		memcpy(&h, buf, sizeof h);
		const char *what = NULL;
		if (r < 0) what = "rte_vmbus_chan_recv_raw failed";
		else if ((uint32_t)r != padded + 8) what = "returned length";
		else if (h.type != p.type) what = "type";
		else if (h.flags != p.flags) what = "flags";
		else if (h.hlen != (16 + p.header) / 8) what = "offset8 (hlen)";
		else if (h.tlen != padded / 8) what = "len8 (tlen)";
		else if (h.xactid != p.xactid) what = "transaction id";
		else if (memcmp(buf + 16, pattern + p.header_start, p.header) != 0) what = "header bytes";
		else if (memcmp(buf + 16 + p.header, pattern + p.start, p.length) != 0) what = "payload bytes";
		else {
			for (uint32_t k = unpadded; k < padded; k++)
				if (buf[k] != 0) what = "padding not zero";
		}
		if (what) {
			snprintf(j->message, sizeof j->message,
				 "packet %llu: bad %s (ret %d, type %u, hlen %u, tlen %u, flags %u)",
				 (unsigned long long)i, what, r, h.type, h.hlen, h.tlen, h.flags);
			j->error = j->message;
			return NULL;
		}
		i++;
	}
	return NULL;
}

static uint8_t *map_region(const char *path, size_t size) {
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) { perror(path); return NULL; }
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) { perror("mmap"); return NULL; }
	return p;
}

static uint64_t arg(const char *s) { return strtoull(s, NULL, 0); }

static int setup(struct vmbus_br *br, uint8_t *region, size_t size, uint64_t off, uint64_t len) {
	if (off % 4096 || len < 8192 || len % 4096 || off > size || size - off < len) {
		fprintf(stderr, "ring [%llu, +%llu) does not fit the region of %zu bytes\n",
			(unsigned long long)off, (unsigned long long)len, size);
		return -1;
	}
	vmbus_br_setup(br, region + off, (unsigned int)len);
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 10 && strcmp(argv[1], "stream") == 0) {
		size_t size = arg(argv[3]);
		uint8_t *region = map_region(argv[2], size);
		if (!region) return 2;
		struct job tx = { .count = arg(argv[8]), .seed = arg(argv[9]) };
		struct job rx = { .count = arg(argv[8]), .seed = arg(argv[9]) };
		if (setup(&tx.br, region, size, arg(argv[4]), arg(argv[5])) != 0) return 2;
		if (setup(&rx.br, region, size, arg(argv[6]), arg(argv[7])) != 0) return 2;
		make_pattern(tx.seed);
		pthread_t t1, t2;
		pthread_create(&t1, NULL, writer, &tx);
		pthread_create(&t2, NULL, reader, &rx);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		if (tx.error) fprintf(stderr, "linux writer: %s\n", tx.error);
		if (rx.error) fprintf(stderr, "linux reader: %s\n", rx.error);
		if (tx.error || rx.error) return 1;
		printf("ok wrote %llu read %llu\n", (unsigned long long)tx.count, (unsigned long long)rx.count);
		return 0;
	}
	if (argc == 7 && strcmp(argv[1], "fill") == 0) {
		size_t size = arg(argv[3]);
		uint8_t *region = map_region(argv[2], size);
		if (!region) return 2;
		struct vmbus_br br;
		uint64_t seed = arg(argv[6]);
		if (setup(&br, region, size, arg(argv[4]), arg(argv[5])) != 0) return 2;
		make_pattern(seed);
		uint64_t i = 0;
		for (;; i++) {
			struct l2s_packet p = l2s(seed, i);
			int r = rte_vmbus_chan_send(&br, p.type, pattern + p.start, p.length, p.flags);
			if (r == -EAGAIN) break;
			if (r != 0) { fprintf(stderr, "rte_vmbus_chan_send(%llu) = %d\n", (unsigned long long)i, r); return 1; }
		}
		printf("%llu\n", (unsigned long long)i);
		return 0;
	}
	fprintf(stderr, "usage: %s stream <path> <size> <txOff> <txLen> <rxOff> <rxLen> <count> <seed>\n"
			"       %s fill <path> <size> <off> <len> <seed>\n", argv[0], argv[0]);
	return 2;
}
