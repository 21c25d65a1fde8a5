/* A C publisher process: opens the topic "md", the queue "orders" and the
 * channel "fills" made by the test, sends COUNT records of type 1 to the
 * queue, then COUNT to the topic, then COUNT to the channel, alternating
 * claim/commit and the copying send.
 *
 *   publisher BASE_DIR NAMESPACE COUNT
 */
#include "check.h"

enum { RECORD_LEN = 64, TYPE_C = 1 };
static const uint64_t SECOND = 1000000000ull;

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s BASE_DIR NAMESPACE COUNT\n", argv[0]);
        return 2;
    }
    uint64_t count = strtoull(argv[3], NULL, 10);
    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL;
    shmbus_queue *queue = NULL;
    shmbus_publisher *pub = NULL;
    shmbus_queue_producer *prod = NULL;
    shmbus_channel *channel = NULL;
    shmbus_producer *fills = NULL;
    CHECK(shmbus_bus_open_at(argv[1], argv[2], &bus));
    CHECK(shmbus_bus_open_topic(bus, "md", 10 * SECOND, &topic));
    CHECK(shmbus_bus_open_queue(bus, "orders", 10 * SECOND, &queue));
    CHECK(shmbus_topic_publisher(topic, &pub));
    CHECK(shmbus_queue_producer_new(queue, &prod));
    CHECK(shmbus_bus_open_spsc(bus, "fills", 10 * SECOND, &channel));
    CHECK(shmbus_channel_producer(channel, &fills));
    shmbus_wait wait = shmbus_wait_default();
    uint8_t buf[RECORD_LEN];
    shmbus_claim claim;

    for (uint64_t i = 0; i < count; i++) {
        if (i % 2 == 0) {
            CHECK(shmbus_queue_producer_claim_timeout(prod, RECORD_LEN, wait, 30 * SECOND, &claim));
            fill_record(claim.data, claim.capacity, TYPE_C, i);
            CHECK(shmbus_queue_producer_commit(prod, TYPE_C, NULL));
        } else {
            fill_record(buf, RECORD_LEN, TYPE_C, i);
            CHECK(shmbus_queue_producer_send_timeout(prod, TYPE_C, buf, RECORD_LEN, wait,
                                                     30 * SECOND, NULL));
        }
    }
    for (uint64_t i = 0; i < count; i++) {
        if (i % 2 == 0) {
            CHECK(shmbus_publisher_claim_blocking(pub, RECORD_LEN, wait, &claim));
            fill_record(claim.data, claim.capacity, TYPE_C, i);
            CHECK(shmbus_publisher_commit(pub, TYPE_C, NULL));
        } else {
            fill_record(buf, RECORD_LEN, TYPE_C, i);
            CHECK(shmbus_publisher_send_timeout(pub, TYPE_C, buf, RECORD_LEN, wait, 30 * SECOND,
                                                NULL));
        }
    }
    for (uint64_t i = 0; i < count; i++) {
        if (i % 2 == 0) {
            CHECK(shmbus_producer_claim_timeout(fills, RECORD_LEN, wait, 30 * SECOND, &claim));
            fill_record(claim.data, claim.capacity, TYPE_C, i);
            CHECK(shmbus_producer_commit(fills, TYPE_C, NULL));
        } else {
            fill_record(buf, RECORD_LEN, TYPE_C, i);
            CHECK(shmbus_producer_send_blocking(fills, TYPE_C, buf, RECORD_LEN, wait, NULL));
        }
    }
    shmbus_producer_free(fills);
    shmbus_channel_free(channel);
    shmbus_publisher_free(pub);
    shmbus_queue_producer_free(prod);
    shmbus_topic_free(topic);
    shmbus_queue_free(queue);
    shmbus_bus_free(bus);
    printf("published %llu\n", (unsigned long long)count);
    return 0;
}
