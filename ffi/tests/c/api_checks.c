/* The C API in one process: every ring kind's verbs in their try, blocking
 * and timeout forms, durable subscribers, the misuse the library detects
 * (a second claim or read, a commit or release with nothing held, NULL
 * arguments, unknown enum values), and Protocol V2 built in a claimed slot
 * and parsed back. Run by ffi/tests/c_programs.rs, plainly and under
 * AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 *   api_checks BASE_DIR NAMESPACE
 */
#include <pthread.h>
#include <stddef.h>

#include "check.h"

/* The wire layout of the payload structs, as the Rust side pins it. */
_Static_assert(sizeof(shmbus_v2_trade) == 40, "trade size");
_Static_assert(offsetof(shmbus_v2_trade, venue_id) == 32, "trade venue_id");
_Static_assert(offsetof(shmbus_v2_trade, side) == 36, "trade side");
_Static_assert(sizeof(shmbus_v2_quote) == 52, "quote size");
_Static_assert(offsetof(shmbus_v2_quote, venue_id) == 48, "quote venue_id");
_Static_assert(sizeof(shmbus_v2_order_level) == 24, "level size");
_Static_assert(sizeof(shmbus_v2_order_levels) == 1208, "levels size");
_Static_assert(sizeof(shmbus_v2_order_book) == 2456, "book size");
_Static_assert(offsetof(shmbus_v2_order_book, bids) == 40, "book bids");
_Static_assert(offsetof(shmbus_v2_order_book, asks) == 1248, "book asks");
_Static_assert(sizeof(shmbus_v2_gas_price) == 32, "gas size");
_Static_assert(offsetof(shmbus_v2_gas_price, venue) == 28, "gas venue");
_Static_assert(sizeof(shmbus_v2_arbitrage_signal) == 170, "signal size");
_Static_assert(offsetof(shmbus_v2_arbitrage_signal, spread_bps) == 114, "signal spread");
_Static_assert(offsetof(shmbus_v2_arbitrage_signal, timestamp_ns) == 162, "signal ts");

static const uint64_t MS = 1000000;

static void topic_checks(shmbus_bus *bus, const char *base, const char *ns) {
    shmbus_topic_config cfg = shmbus_topic_config_default();
    cfg.slots = 16;
    cfg.max_payload = 128;
    cfg.policy = 7;
    shmbus_topic *topic = NULL;
    EXPECT_STATUS(shmbus_bus_topic(bus, "md", &cfg, &topic), SHMBUS_STATUS_INVALID_ARGUMENT);
    cfg.policy = SHMBUS_POLICY_BACKPRESSURE;
    EXPECT_STATUS(shmbus_bus_topic(bus, "md", &cfg, NULL), SHMBUS_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(shmbus_bus_topic(NULL, "md", &cfg, &topic), SHMBUS_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(shmbus_bus_open_topic(bus, "nowhere", 0, &topic), SHMBUS_STATUS_NOT_FOUND);
    CHECK(shmbus_bus_topic(bus, "md", &cfg, &topic));

    shmbus_subscriber *live = NULL, *audit = NULL;
    shmbus_publisher *pub = NULL;
    EXPECT_STATUS(shmbus_topic_subscriber(topic, 9, &live), SHMBUS_STATUS_INVALID_ARGUMENT);
    CHECK(shmbus_topic_subscriber(topic, SHMBUS_START_AT_TAIL, &live));
    CHECK(shmbus_topic_durable_subscriber(topic, "audit", SHMBUS_START_AT_TAIL, &audit));
    EXPECT_STATUS(shmbus_topic_durable_subscriber(topic, "audit", SHMBUS_START_AT_TAIL, &audit),
                  SHMBUS_STATUS_OPEN_FAILED);
    CHECK(shmbus_topic_publisher(topic, &pub));

    shmbus_record rec;
    shmbus_claim claim;
    shmbus_received got;
    uint64_t seq = 99, index = 0;
    uint8_t buf[128];

    /* Nothing yet; misuse. */
    EXPECT_STATUS(shmbus_subscriber_try_read(live, &rec), SHMBUS_STATUS_EMPTY);
    EXPECT_STATUS(shmbus_subscriber_read_timeout(live, shmbus_wait_blocking(), MS, &rec),
                  SHMBUS_STATUS_TIMED_OUT);
    EXPECT_STATUS(shmbus_subscriber_release(live), SHMBUS_STATUS_NOT_HELD);
    EXPECT_STATUS(shmbus_publisher_commit(pub, 1, NULL), SHMBUS_STATUS_NOT_HELD);
    EXPECT_STATUS(shmbus_publisher_abort(pub), SHMBUS_STATUS_NOT_HELD);
    EXPECT_STATUS(shmbus_publisher_try_claim(pub, 4096, &claim), SHMBUS_STATUS_TOO_LARGE);
    EXPECT_STATUS(shmbus_publisher_claim_blocking(pub, 8, shmbus_wait_blocking(), &claim),
                  SHMBUS_STATUS_CANNOT_SLEEP);
    shmbus_wait bad = shmbus_wait_default();
    bad.kind = 42;
    EXPECT_STATUS(shmbus_publisher_claim_blocking(pub, 8, bad, &claim),
                  SHMBUS_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(shmbus_publisher_try_claim(pub, 8, NULL), SHMBUS_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(shmbus_subscriber_try_read(NULL, &rec), SHMBUS_STATUS_NULL_ARGUMENT);

    /* Record 0 claimed and committed, record 1 sent, one aborted between. */
    CHECK(shmbus_publisher_try_claim(pub, 64, &claim));
    ASSERT(claim.capacity == 64 && claim.data != NULL && claim.sequence == 0);
    EXPECT_STATUS(shmbus_publisher_try_claim(pub, 64, &claim), SHMBUS_STATUS_BUSY);
    fill_record(claim.data, claim.capacity, 7, 0);
    CHECK(shmbus_publisher_commit(pub, 7, &seq));
    ASSERT(seq == 0);
    CHECK(shmbus_publisher_claim_timeout(pub, 64, shmbus_wait_yield(), MS, &claim));
    CHECK(shmbus_publisher_abort(pub));
    fill_record(buf, 64, 7, 1);
    CHECK(shmbus_publisher_send_blocking(pub, 7, buf, 64, shmbus_wait_busy_spin(), &seq));
    ASSERT(seq == 2);

    CHECK(shmbus_subscriber_read_blocking(live, shmbus_wait_blocking(), &rec));
    ASSERT(rec.len == 64 && rec.record_type == 7 && rec.sequence == 0);
    ASSERT(record_ok(rec.data, rec.len, 7, &index) && index == 0);
    EXPECT_STATUS(shmbus_subscriber_try_read(live, &rec), SHMBUS_STATUS_BUSY);
    EXPECT_STATUS(shmbus_subscriber_try_recv(live, buf, sizeof buf, &got), SHMBUS_STATUS_BUSY);
    CHECK(shmbus_subscriber_release(live));
    /* The aborted claim is skipped; the copy forms. */
    EXPECT_STATUS(shmbus_subscriber_try_recv(live, buf, 8, &got), SHMBUS_STATUS_BUFFER_TOO_SMALL);
    ASSERT(got.len == 64);
    CHECK(shmbus_subscriber_recv_timeout(live, buf, sizeof buf, shmbus_wait_default(), MS, &got));
    ASSERT(got.len == 64 && got.record_type == 7);
    ASSERT(record_ok(buf, got.len, 7, &index) && index == 1);
    uint64_t missed = 1;
    CHECK(shmbus_subscriber_missed(live, &missed));
    ASSERT(missed == 0);
    /* A record passed over unread is counted missed. */
    EXPECT_STATUS(shmbus_subscriber_skip(live, &seq), SHMBUS_STATUS_EMPTY);
    CHECK(shmbus_publisher_try_send(pub, 7, buf, 64, NULL));
    CHECK(shmbus_subscriber_skip(live, &seq));
    ASSERT(seq == 3);
    CHECK(shmbus_subscriber_missed(live, &missed));
    ASSERT(missed == 1);

    /* The durable subscriber has read nothing: the log fills up to it. */
    uint64_t sent = 3;
    enum shmbus_status s;
    while ((s = shmbus_publisher_try_send(pub, 7, buf, 64, NULL)) == SHMBUS_STATUS_OK) {
        sent++;
        CHECK(shmbus_subscriber_try_recv(live, buf, sizeof buf, &got));
    }
    EXPECT_STATUS(s, SHMBUS_STATUS_FULL);
    EXPECT_STATUS(shmbus_publisher_send_timeout(pub, 7, buf, 64, shmbus_wait_default(), MS, NULL),
                  SHMBUS_STATUS_TIMED_OUT);
    /* Detached, it keeps its place and still holds the publisher back;
     * attached again, it resumes at record 0. */
    shmbus_subscriber_free(audit);
    /* FULL keeps no message: the time-out's stays. */
    char timed_out[256];
    snprintf(timed_out, sizeof timed_out, "%s", shmbus_last_error_message());
    EXPECT_STATUS(shmbus_publisher_try_send(pub, 7, buf, 64, NULL), SHMBUS_STATUS_FULL);
    ASSERT(strcmp(shmbus_last_error_message(), timed_out) == 0);
    ASSERT(strstr(timed_out, "timed out") != NULL);
    CHECK(shmbus_topic_durable_subscriber(topic, "audit", SHMBUS_START_AT_TAIL, &audit));
    CHECK(shmbus_subscriber_try_read(audit, &rec));
    ASSERT(rec.sequence == 0 && record_ok(rec.data, rec.len, 7, &index) && index == 0);
    CHECK(shmbus_subscriber_release(audit));
    CHECK(shmbus_subscriber_try_read(audit, &rec)); /* freed while held: released */
    shmbus_subscriber_free(audit);
    CHECK(shmbus_topic_drop_durable(topic, "audit"));
    CHECK(shmbus_publisher_try_send(pub, 7, buf, 64, NULL));

    /* Protocol V2 built in a claimed slot, read and parsed in place. */
    shmbus_v2_builder *b = NULL;
    CHECK(shmbus_v2_builder_new(&b));
    CHECK(shmbus_subscriber_try_recv(live, buf, sizeof buf, &got)); /* catch up */
    CHECK(shmbus_publisher_try_claim(pub, SHMBUS_V2_TRADE_MESSAGE_LEN, &claim));
    shmbus_v2_trade trade;
    memset(&trade, 0, sizeof trade);
    trade.asset_id = 0x4254430000000000ull;
    trade.price = 6512345678900;
    trade.volume = 12500000;
    trade.execution_timestamp_ns = 1700000000122456789ull;
    trade.venue_id = 100;
    trade.asset_type = 51;
    trade.side = 1;
    CHECK(shmbus_v2_builder_begin(b, claim.data, claim.capacity,
                                  SHMBUS_V2_RELAY_DOMAIN_MARKET_DATA, 1));
    CHECK(shmbus_v2_builder_sequence(b, 5));
    CHECK(shmbus_v2_builder_timestamp_ns(b, 1700000000123456789ull));
    CHECK(shmbus_v2_builder_trade(b, &trade));
    size_t len = 0;
    CHECK(shmbus_v2_builder_finish(b, SHMBUS_V2_CHECKSUM_ZERO, &len));
    ASSERT(len == SHMBUS_V2_TRADE_MESSAGE_LEN);
    CHECK(shmbus_publisher_commit(pub, SHMBUS_V2_RELAY_DOMAIN_MARKET_DATA, NULL));
    EXPECT_STATUS(shmbus_v2_builder_trade(b, &trade), SHMBUS_STATUS_NOT_HELD);

    CHECK(shmbus_subscriber_try_read(live, &rec));
    shmbus_v2_message msg;
    EXPECT_STATUS(shmbus_v2_parse(rec.data, rec.len, SHMBUS_V2_VERIFY_STRICT,
                                  SHMBUS_V2_SIZE_POLICY_REGISTRY, &msg),
                  SHMBUS_STATUS_PARSE_FAILED);
    CHECK(shmbus_v2_parse(rec.data, rec.len, SHMBUS_V2_VERIFY_ZERO_MEANS_UNCHECKED,
                          SHMBUS_V2_SIZE_POLICY_REGISTRY, &msg));
    ASSERT(msg.sequence == 5 && msg.relay_domain == 1 && msg.source == 1 && msg.payload_size == 42);
    shmbus_v2_tlv_iter it;
    shmbus_v2_tlv tlv;
    CHECK(shmbus_v2_message_tlvs(&msg, &it));
    CHECK(shmbus_v2_tlv_next(&it, &tlv));
    ASSERT(tlv.tlv_type == SHMBUS_V2_TLV_TYPE_TRADE && tlv.payload_len == 40 && tlv.offset == 32);
    shmbus_v2_trade back;
    shmbus_v2_quote wrong;
    EXPECT_STATUS(shmbus_v2_tlv_quote(&tlv, &wrong), SHMBUS_STATUS_WRONG_TYPE);
    CHECK(shmbus_v2_tlv_trade(&tlv, &back));
    ASSERT(memcmp(&back, &trade, sizeof trade) == 0);
    /* In place: the packed struct has alignment 1. */
    const shmbus_v2_trade *in_place = (const shmbus_v2_trade *)tlv.payload;
    ASSERT(in_place->price == 6512345678900 && in_place->side == 1);
    EXPECT_STATUS(shmbus_v2_tlv_next(&it, &tlv), SHMBUS_STATUS_EMPTY);
    CHECK(shmbus_subscriber_release(live));

    /* A builder error is reported by finish; a message too short to parse. */
    uint8_t small[40];
    CHECK(shmbus_v2_builder_begin(b, small, sizeof small, 4, 60));
    CHECK(shmbus_v2_builder_trade(b, &trade));
    EXPECT_STATUS(shmbus_v2_builder_finish(b, SHMBUS_V2_CHECKSUM_COMPUTE, &len),
                  SHMBUS_STATUS_BUILD_FAILED);
    EXPECT_STATUS(shmbus_v2_parse(small, 10, SHMBUS_V2_VERIFY_OFF, SHMBUS_V2_SIZE_POLICY_REGISTRY,
                                  &msg),
                  SHMBUS_STATUS_PARSE_FAILED);
    ASSERT(shmbus_v2_tlv_len(40) == 42 && shmbus_v2_tlv_len(256) == 261 &&
           shmbus_v2_tlv_len(70000) == 0);
    shmbus_v2_builder_free(b);

    /* Handles are independent: a subscriber outlives the bus and the topic
     * handles it came from. */
    shmbus_bus *bus2 = NULL;
    shmbus_topic *topic2 = NULL;
    shmbus_subscriber *late = NULL;
    CHECK(shmbus_bus_open_at(base, ns, &bus2));
    CHECK(shmbus_bus_open_topic(bus2, "md", 0, &topic2));
    CHECK(shmbus_topic_subscriber(topic2, SHMBUS_START_AT_TAIL, &late));
    shmbus_topic_free(topic2);
    shmbus_bus_free(bus2);
    fill_record(buf, 64, 7, 77);
    CHECK(shmbus_publisher_try_send(pub, 7, buf, 64, NULL));
    CHECK(shmbus_subscriber_try_read(late, &rec));
    ASSERT(record_ok(rec.data, rec.len, 7, &index) && index == 77);
    shmbus_subscriber_free(late); /* freed holding the record: released */
    CHECK(shmbus_subscriber_try_recv(live, buf, sizeof buf, &got));

    /* A claim held when its publisher is freed is aborted. */
    CHECK(shmbus_publisher_try_claim(pub, 8, &claim));
    shmbus_publisher_free(pub);
    shmbus_subscriber_free(live);
    CHECK(shmbus_topic_remove(topic));
    shmbus_topic_free(topic);
    printf("topic checks ok (%llu records)\n", (unsigned long long)sent);
}

static void channel_checks(shmbus_bus *bus) {
    shmbus_spsc_config cfg = shmbus_spsc_config_with_capacity(4096);
    shmbus_channel *ch = NULL;
    shmbus_producer *prod = NULL;
    shmbus_consumer *cons = NULL, *second = NULL;
    CHECK(shmbus_bus_spsc(bus, "fills", &cfg, &ch));
    CHECK(shmbus_channel_producer(ch, &prod));
    CHECK(shmbus_channel_consumer(ch, &cons));
    EXPECT_STATUS(shmbus_channel_consumer(ch, &second), SHMBUS_STATUS_OPEN_FAILED);

    shmbus_record rec;
    shmbus_claim claim;
    shmbus_received got;
    uint8_t buf[64];
    uint64_t index = 0;
    /* No wake-ups on this channel: a consumer cannot sleep. */
    EXPECT_STATUS(shmbus_consumer_read_blocking(cons, shmbus_wait_blocking(), &rec),
                  SHMBUS_STATUS_CANNOT_SLEEP);
    /* EMPTY keeps no message: the one of the failure before stays. */
    char kept[256];
    snprintf(kept, sizeof kept, "%s", shmbus_last_error_message());
    EXPECT_STATUS(shmbus_consumer_try_read(cons, &rec), SHMBUS_STATUS_EMPTY);
    ASSERT(strcmp(shmbus_last_error_message(), kept) == 0);
    ASSERT(strlen(kept) > 0);
    CHECK(shmbus_producer_try_claim(prod, 48, &claim));
    EXPECT_STATUS(shmbus_producer_try_claim(prod, 48, &claim), SHMBUS_STATUS_BUSY);
    fill_record(claim.data, claim.capacity, 3, 0);
    CHECK(shmbus_producer_commit(prod, 3, NULL));
    fill_record(buf, 48, 3, 1);
    CHECK(shmbus_producer_try_send(prod, 3, buf, 48, NULL));
    CHECK(shmbus_producer_claim_blocking(prod, 16, shmbus_wait_default(), &claim));
    CHECK(shmbus_producer_abort(prod));
    CHECK(shmbus_producer_send_timeout(prod, 3, buf, 48, shmbus_wait_default(), MS, NULL));

    CHECK(shmbus_consumer_read_timeout(cons, shmbus_wait_default(), MS, &rec));
    ASSERT(rec.len == 48 && rec.record_type == 3 && record_ok(rec.data, rec.len, 3, &index) &&
           index == 0);
    EXPECT_STATUS(shmbus_consumer_try_read(cons, &rec), SHMBUS_STATUS_BUSY);
    CHECK(shmbus_consumer_release(cons));
    CHECK(shmbus_consumer_recv_blocking(cons, buf, sizeof buf, shmbus_wait_default(), &got));
    ASSERT(got.len == 48 && record_ok(buf, got.len, 3, &index) && index == 1);
    CHECK(shmbus_consumer_try_recv(cons, buf, sizeof buf, &got));
    EXPECT_STATUS(shmbus_consumer_recv_timeout(cons, buf, sizeof buf, shmbus_wait_yield(), MS, &got),
                  SHMBUS_STATUS_TIMED_OUT);
    shmbus_producer_free(prod);
    shmbus_consumer_free(cons);
    CHECK(shmbus_channel_remove(ch));
    shmbus_channel_free(ch);
    printf("channel checks ok\n");
}

/* Takes one record on another thread: an endpoint moves between threads
 * (one at a time), and the record it holds moves with it. */
static void *take_elsewhere(void *consumer) {
    shmbus_record r;
    enum shmbus_status s =
        shmbus_queue_consumer_take_timeout(consumer, shmbus_wait_blocking(), 1000 * MS, &r);
    return s == SHMBUS_STATUS_OK && r.len == 32 ? consumer : NULL;
}

static void queue_checks(shmbus_bus *bus) {
    shmbus_queue_config cfg = shmbus_queue_config_default();
    cfg.slots = 8;
    shmbus_queue *q = NULL;
    shmbus_queue_producer *prod = NULL;
    shmbus_queue_consumer *a = NULL, *b = NULL;
    CHECK(shmbus_bus_queue(bus, "orders", &cfg, &q));
    CHECK(shmbus_queue_producer_new(q, &prod));
    CHECK(shmbus_queue_consumer_new(q, &a));
    CHECK(shmbus_queue_consumer_new(q, &b));

    shmbus_record ra, rb;
    shmbus_claim claim;
    shmbus_received got;
    uint8_t buf[64];
    uint64_t ia = 0, ib = 0, seq = 0;
    EXPECT_STATUS(shmbus_queue_consumer_try_take(a, &ra), SHMBUS_STATUS_EMPTY);
    EXPECT_STATUS(shmbus_queue_consumer_take_timeout(a, shmbus_wait_blocking(), MS, &ra),
                  SHMBUS_STATUS_TIMED_OUT);
    EXPECT_STATUS(shmbus_queue_consumer_ack(a), SHMBUS_STATUS_NOT_HELD);
    for (uint64_t i = 0; i < 3; i++) {
        CHECK(shmbus_queue_producer_claim_timeout(prod, 32, shmbus_wait_default(), MS, &claim));
        fill_record(claim.data, claim.capacity, 5, i);
        CHECK(shmbus_queue_producer_commit(prod, 5, &seq));
        ASSERT(seq == i);
    }
    fill_record(buf, 32, 5, 3);
    CHECK(shmbus_queue_producer_send_blocking(prod, 5, buf, 32, shmbus_wait_default(), &seq));
    ASSERT(seq == 3);

    /* Each record to one consumer; one given back comes again, flagged. */
    CHECK(shmbus_queue_consumer_try_take(a, &ra));
    CHECK(shmbus_queue_consumer_take_blocking(b, shmbus_wait_blocking(), &rb));
    EXPECT_STATUS(shmbus_queue_consumer_try_take(a, &ra), SHMBUS_STATUS_BUSY);
    ASSERT(record_ok(ra.data, ra.len, 5, &ia) && record_ok(rb.data, rb.len, 5, &ib) && ia != ib);
    ASSERT(!ra.redelivered && !rb.redelivered);
    CHECK(shmbus_queue_consumer_give_back(a));
    CHECK(shmbus_queue_consumer_ack(b));
    int redelivered = 0;
    uint64_t seen = 1; /* ib */
    for (int k = 0; k < 3; k++) {
        CHECK(shmbus_queue_consumer_take_timeout(b, shmbus_wait_default(), 1000 * MS, &rb));
        redelivered += rb.redelivered;
        CHECK(shmbus_queue_consumer_ack(b));
        seen++;
    }
    ASSERT(redelivered == 1 && seen == 4);
    EXPECT_STATUS(shmbus_queue_consumer_try_recv(a, buf, sizeof buf, &got), SHMBUS_STATUS_EMPTY);
    CHECK(shmbus_queue_producer_try_send(prod, 5, buf, 32, NULL));
    CHECK(shmbus_queue_consumer_recv_timeout(a, buf, sizeof buf, shmbus_wait_default(), 1000 * MS,
                                             &got));
    ASSERT(got.len == 32 && got.record_type == 5);
    CHECK(shmbus_queue_producer_send_timeout(prod, 5, buf, 32, shmbus_wait_default(), MS, NULL));
    CHECK(shmbus_queue_consumer_recv_blocking(b, buf, sizeof buf, shmbus_wait_blocking(), &got));
    CHECK(shmbus_queue_producer_try_send(prod, 5, buf, 32, NULL));
    pthread_t thread;
    void *result = NULL;
    ASSERT(pthread_create(&thread, NULL, take_elsewhere, a) == 0);
    ASSERT(pthread_join(thread, &result) == 0 && result == a);
    EXPECT_STATUS(shmbus_queue_consumer_try_take(a, &ra), SHMBUS_STATUS_BUSY);
    CHECK(shmbus_queue_consumer_ack(a)); /* the record taken on the other thread */
    shmbus_queue_producer_free(prod);
    shmbus_queue_consumer_free(a);
    shmbus_queue_consumer_free(b);
    CHECK(shmbus_queue_remove(q));
    shmbus_queue_free(q);
    printf("queue checks ok\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s BASE_DIR NAMESPACE\n", argv[0]);
        return 2;
    }
    shmbus_bus *bus = NULL;
    EXPECT_STATUS(shmbus_bus_open_at(argv[1], NULL, &bus), SHMBUS_STATUS_NULL_ARGUMENT);
    CHECK(shmbus_bus_open_at(argv[1], argv[2], &bus));
    ASSERT(strlen(shmbus_last_error_message()) > 0);
    topic_checks(bus, argv[1], argv[2]);
    channel_checks(bus);
    queue_checks(bus);
    shmbus_bus_free(bus);
    shmbus_bus_free(NULL);
    printf("api checks ok\n");
    return 0;
}
