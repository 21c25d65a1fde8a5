/* Helpers of the C test programs: a failed check prints the call, the
 * status and the library's message, and exits with status 1. */
#ifndef SHMBUS_TEST_CHECK_H
#define SHMBUS_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmbus.h"

#define EXPECT_STATUS(call, want)                                                        \
    do {                                                                                 \
        enum shmbus_status got_ = (call);                                                \
        if (got_ != (want)) {                                                            \
            fprintf(stderr, "%s:%d: %s returned %s (want %s): %s\n", __FILE__, __LINE__, \
                    #call, shmbus_status_name(got_), shmbus_status_name(want),           \
                    shmbus_last_error_message());                                        \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#define CHECK(call) EXPECT_STATUS(call, SHMBUS_STATUS_OK)

#define ASSERT(cond)                                                                     \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* The test records: 8 bytes of index (little-endian), then a pattern of
 * the index, the byte position and the record type. */
static inline void fill_record(uint8_t *p, size_t len, uint16_t type, uint64_t i) {
    memcpy(p, &i, sizeof i);
    for (size_t k = sizeof i; k < len; k++) {
        p[k] = (uint8_t)(i * 31 + k + type);
    }
}

static inline int record_ok(const uint8_t *p, size_t len, uint16_t type, uint64_t *index) {
    uint64_t i;
    if (len < sizeof i) {
        return 0;
    }
    memcpy(&i, p, sizeof i);
    for (size_t k = sizeof i; k < len; k++) {
        if (p[k] != (uint8_t)(i * 31 + k + type)) {
            return 0;
        }
    }
    *index = i;
    return 1;
}

#endif
