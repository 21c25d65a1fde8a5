/* The C side of the C API bench (ffi/benches/c_api.rs): pinned to CPU, it
 * opens the topic "c_topic" and the channel "c_channel" made by the bench,
 * then for each line on stdin runs one round of COUNT records of 64 bytes,
 * all on this thread, and prints the round's nanoseconds per record:
 * "topic" and "channel" claim, write the index, commit, read and release;
 * "topic_copy" and "channel_copy" write the index into a buffer, send it
 * and receive it into another.
 *
 *   bench_loop BASE_DIR NAMESPACE COUNT CPU
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmbus.h"

enum { RECORD_LEN = 64 };

#define NOINLINE __attribute__((noinline))

static void check(enum shmbus_status s, const char *what) {
    if (s != SHMBUS_STATUS_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, shmbus_status_name(s), shmbus_last_error_message());
        exit(1);
    }
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* One round of each kind, each a function of its own so that callgrind
 * can count it (--toggle-collect='*_round*'); each returns the sum of the
 * first byte of every record read back. */
NOINLINE static uint64_t topic_round(shmbus_publisher *pub, shmbus_subscriber *sub,
                                     uint64_t count) {
    uint64_t sum = 0;
    shmbus_claim c;
    shmbus_record r;
    for (uint64_t i = 0; i < count; i++) {
        check(shmbus_publisher_try_claim(pub, RECORD_LEN, &c), "claim");
        memcpy(c.data, &i, sizeof i);
        check(shmbus_publisher_commit(pub, 1, NULL), "commit");
        check(shmbus_subscriber_try_read(sub, &r), "read");
        sum += r.data[0];
        check(shmbus_subscriber_release(sub), "release");
    }
    return sum;
}

NOINLINE static uint64_t channel_round(shmbus_producer *prod, shmbus_consumer *cons,
                                       uint64_t count) {
    uint64_t sum = 0;
    shmbus_claim c;
    shmbus_record r;
    for (uint64_t i = 0; i < count; i++) {
        check(shmbus_producer_try_claim(prod, RECORD_LEN, &c), "claim");
        memcpy(c.data, &i, sizeof i);
        check(shmbus_producer_commit(prod, 1, NULL), "commit");
        check(shmbus_consumer_try_read(cons, &r), "read");
        sum += r.data[0];
        check(shmbus_consumer_release(cons), "release");
    }
    return sum;
}

NOINLINE static uint64_t topic_copy_round(shmbus_publisher *pub, shmbus_subscriber *sub,
                                          uint64_t count) {
    uint64_t sum = 0;
    uint8_t out[RECORD_LEN] = {0}, in[RECORD_LEN];
    shmbus_received got;
    for (uint64_t i = 0; i < count; i++) {
        memcpy(out, &i, sizeof i);
        check(shmbus_publisher_try_send(pub, 1, out, RECORD_LEN, NULL), "send");
        check(shmbus_subscriber_try_recv(sub, in, sizeof in, &got), "recv");
        sum += in[0];
    }
    return sum;
}

NOINLINE static uint64_t channel_copy_round(shmbus_producer *prod, shmbus_consumer *cons,
                                            uint64_t count) {
    uint64_t sum = 0;
    uint8_t out[RECORD_LEN] = {0}, in[RECORD_LEN];
    shmbus_received got;
    for (uint64_t i = 0; i < count; i++) {
        memcpy(out, &i, sizeof i);
        check(shmbus_producer_try_send(prod, 1, out, RECORD_LEN, NULL), "send");
        check(shmbus_consumer_try_recv(cons, in, sizeof in, &got), "recv");
        sum += in[0];
    }
    return sum;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s BASE_DIR NAMESPACE COUNT CPU\n", argv[0]);
        return 2;
    }
    uint64_t count = strtoull(argv[3], NULL, 10);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(atoi(argv[4]), &set);
    sched_setaffinity(0, sizeof set, &set); /* best effort, as core_affinity */

    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL;
    shmbus_channel *channel = NULL;
    shmbus_publisher *pub = NULL;
    shmbus_subscriber *sub = NULL;
    shmbus_producer *prod = NULL;
    shmbus_consumer *cons = NULL;
    check(shmbus_bus_open_at(argv[1], argv[2], &bus), "open bus");
    check(shmbus_bus_open_topic(bus, "c_topic", 0, &topic), "open topic");
    check(shmbus_bus_open_spsc(bus, "c_channel", 0, &channel), "open channel");
    check(shmbus_topic_subscriber(topic, SHMBUS_START_AT_TAIL, &sub), "subscriber");
    check(shmbus_topic_publisher(topic, &pub), "publisher");
    check(shmbus_channel_producer(channel, &prod), "producer");
    check(shmbus_channel_consumer(channel, &cons), "consumer");

    char line[32];
    while (fgets(line, sizeof line, stdin) != NULL) {
        uint64_t sum = 0, expected = 0;
        uint64_t start = now_ns();
        if (strcmp(line, "topic\n") == 0) {
            sum = topic_round(pub, sub, count);
        } else if (strcmp(line, "channel\n") == 0) {
            sum = channel_round(prod, cons, count);
        } else if (strcmp(line, "topic_copy\n") == 0) {
            sum = topic_copy_round(pub, sub, count);
        } else if (strcmp(line, "channel_copy\n") == 0) {
            sum = channel_copy_round(prod, cons, count);
        } else {
            fprintf(stderr, "unknown round %s", line);
            return 2;
        }
        uint64_t elapsed = now_ns() - start;
        for (uint64_t i = 0; i < count; i++) {
            expected += i & 0xff;
        }
        if (sum != expected) {
            fprintf(stderr, "read back the wrong records\n");
            return 1;
        }
        printf("%.3f\n", (double)elapsed / (double)count);
        fflush(stdout);
    }
    shmbus_publisher_free(pub);
    shmbus_subscriber_free(sub);
    shmbus_producer_free(prod);
    shmbus_consumer_free(cons);
    shmbus_topic_free(topic);
    shmbus_channel_free(channel);
    shmbus_bus_free(bus);
    return 0;
}
