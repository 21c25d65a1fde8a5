/* Protocol V2 between C and Rust: parses each message file given (checksum
 * 0 accepted, legacy struct sizes accepted), prints its header, its TLV
 * items and the typed payloads it decodes, one line each, then builds the
 * same message again with the C builder (typed adders for the typed
 * payloads, raw items for the rest) and writes it to OUT_DIR under the
 * same file name. The test compares the lines with the Rust parser's and
 * the files with the inputs, byte for byte.
 *
 *   v2_roundtrip OUT_DIR FILE...
 */
#include "check.h"

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    ASSERT(fseek(f, 0, SEEK_END) == 0);
    long size = ftell(f);
    ASSERT(size >= 0 && fseek(f, 0, SEEK_SET) == 0);
    uint8_t *buf = malloc((size_t)size + 1);
    ASSERT(buf != NULL);
    ASSERT(fread(buf, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Prints the typed payload of an item, if it is one; adds the item to the
 * builder, typed where the C struct is its exact size. */
static void item(shmbus_v2_builder *b, const char *name, const shmbus_v2_tlv *t) {
    shmbus_v2_trade trade;
    shmbus_v2_quote quote;
    shmbus_v2_gas_price gas;
    shmbus_v2_arbitrage_signal arb;
    static shmbus_v2_order_book book;
    CHECK(shmbus_v2_builder_form(b, t->form));
    if (shmbus_v2_tlv_trade(t, &trade) == SHMBUS_STATUS_OK) {
        printf("%s trade %llu %lld %lld %llu %u %u %u\n", name,
               (unsigned long long)trade.asset_id, (long long)trade.price,
               (long long)trade.volume, (unsigned long long)trade.execution_timestamp_ns,
               trade.venue_id, trade.asset_type, trade.side);
        CHECK(shmbus_v2_builder_trade(b, &trade));
        return;
    }
    if (shmbus_v2_tlv_quote(t, &quote) == SHMBUS_STATUS_OK) {
        printf("%s quote %llu %lld %lld %lld %lld %llu %u\n", name,
               (unsigned long long)quote.asset_id, (long long)quote.bid_price,
               (long long)quote.bid_size, (long long)quote.ask_price, (long long)quote.ask_size,
               (unsigned long long)quote.quote_timestamp_ns, quote.venue_id);
        if (t->payload_len == sizeof quote) {
            CHECK(shmbus_v2_builder_quote(b, &quote));
            return;
        }
    } else if (shmbus_v2_tlv_gas_price(t, &gas) == SHMBUS_STATUS_OK) {
        printf("%s gas %llu %llu %u %u %u %u\n", name, (unsigned long long)gas.block_number,
               (unsigned long long)gas.timestamp_ns, gas.gas_price_gwei, gas.base_fee_gwei,
               gas.priority_fee_gwei, gas.venue);
        CHECK(shmbus_v2_builder_gas_price(b, &gas));
        return;
    } else if (shmbus_v2_tlv_arbitrage_signal(t, &arb) == SHMBUS_STATUS_OK) {
        printf("%s arb %u %llu %u %u %lld %llu\n", name, arb.strategy_id,
               (unsigned long long)arb.signal_id, arb.chain_id, arb.spread_bps,
               (long long)arb.net_profit_usd_q8, (unsigned long long)arb.timestamp_ns);
        CHECK(shmbus_v2_builder_arbitrage_signal(b, &arb));
        return;
    } else if (shmbus_v2_tlv_order_book(t, &book) == SHMBUS_STATUS_OK) {
        printf("%s book %llu %llu %lld %llu %u %u %u", name,
               (unsigned long long)book.snapshot_timestamp_ns, (unsigned long long)book.sequence,
               (long long)book.precision_factor, (unsigned long long)book.asset_id,
               book.venue_id, book.bids.count, book.asks.count);
        if (book.bids.count > 0) {
            printf(" %lld %lld %u\n", (long long)book.bids.levels[0].price,
                   (long long)book.bids.levels[0].size, book.bids.levels[0].order_count);
        } else {
            printf(" -\n");
        }
        CHECK(shmbus_v2_builder_order_book(b, &book));
        return;
    }
    CHECK(shmbus_v2_builder_tlv(b, t->tlv_type, t->payload, t->payload_len));
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT_DIR FILE...\n", argv[0]);
        return 2;
    }
    shmbus_v2_builder *b = NULL;
    CHECK(shmbus_v2_builder_new(&b));
    for (int a = 2; a < argc; a++) {
        const char *name = base_name(argv[a]);
        size_t len = 0;
        uint8_t *bytes = read_file(argv[a], &len);
        shmbus_v2_message msg;
        if (shmbus_v2_parse(bytes, len, SHMBUS_V2_VERIFY_ZERO_MEANS_UNCHECKED,
                            SHMBUS_V2_SIZE_POLICY_LEGACY_STRUCTS, &msg) != SHMBUS_STATUS_OK) {
            printf("%s reject\n", name);
            free(bytes);
            continue;
        }
        printf("%s header %u %u %u %u %llu %llu %u %u\n", name, msg.relay_domain, msg.version,
               msg.source, msg.flags, (unsigned long long)msg.sequence,
               (unsigned long long)msg.timestamp_ns, msg.payload_size, msg.checksum);

        uint8_t *out = malloc(len);
        ASSERT(out != NULL);
        CHECK(shmbus_v2_builder_begin(b, out, len, msg.relay_domain, msg.source));
        CHECK(shmbus_v2_builder_sequence(b, msg.sequence));
        CHECK(shmbus_v2_builder_timestamp_ns(b, msg.timestamp_ns));
        CHECK(shmbus_v2_builder_flags(b, msg.flags));
        CHECK(shmbus_v2_builder_size_policy(b, SHMBUS_V2_SIZE_POLICY_LEGACY_STRUCTS));
        shmbus_v2_tlv_iter it;
        shmbus_v2_tlv t;
        CHECK(shmbus_v2_message_tlvs(&msg, &it));
        enum shmbus_status s;
        while ((s = shmbus_v2_tlv_next(&it, &t)) == SHMBUS_STATUS_OK) {
            printf("%s tlv %u %u %zu %zu\n", name, t.tlv_type, t.form, t.offset, t.payload_len);
            item(b, name, &t);
        }
        EXPECT_STATUS(s, SHMBUS_STATUS_EMPTY);
        size_t built = 0;
        CHECK(shmbus_v2_builder_finish(
            b, msg.checksum != 0 ? SHMBUS_V2_CHECKSUM_COMPUTE : SHMBUS_V2_CHECKSUM_ZERO, &built));
        ASSERT(built == len);
        ASSERT(shmbus_v2_message_checksum(out, built) == msg.checksum || msg.checksum == 0);

        char path[4096];
        ASSERT(snprintf(path, sizeof path, "%s/%s", argv[1], name) < (int)sizeof path);
        FILE *f = fopen(path, "wb");
        ASSERT(f != NULL && fwrite(out, 1, built, f) == built && fclose(f) == 0);
        free(out);
        free(bytes);
    }
    shmbus_v2_builder_free(b);
    return 0;
}
