// A C++ subscriber process: attaches the durable subscriber NAME to the
// topic "md", reads COUNT records from each of the two publishers (types 1
// and 2), each publisher's in order and intact, then takes what is left
// in the queue "orders" and acknowledges it, printing each record taken.
// With a fifth argument "channel", it then receives COUNT records of the C
// publisher on the channel "fills", in order and intact.
//
//   subscriber BASE_DIR NAMESPACE COUNT NAME
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "shmbus.hpp"

namespace {

bool record_ok(shmbus::bytes b, uint16_t type, uint64_t &index) {
    if (b.size() < sizeof index) {
        return false;
    }
    std::memcpy(&index, b.data(), sizeof index);
    for (size_t k = sizeof index; k < b.size(); k++) {
        if (b[k] != static_cast<uint8_t>(index * 31 + k + type)) {
            return false;
        }
    }
    return true;
}

int run(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        std::fprintf(stderr, "usage: %s BASE_DIR NAMESPACE COUNT NAME [channel]\n", argv[0]);
        return 2;
    }
    const uint64_t count = std::strtoull(argv[3], nullptr, 10);
    using namespace std::chrono_literals;
    auto bus = shmbus::bus::open_at(argv[1], argv[2]);
    auto topic = bus.open_topic("md", 10s);
    auto queue = bus.open_queue("orders", 10s);
    auto sub = topic.durable_subscriber(argv[4]);

    uint64_t next[3] = {0, 0, 0};
    for (uint64_t n = 0; n < 2 * count; n++) {
        auto rec = sub.read_timeout(shmbus::wait::blocking(), 30s);
        if (!rec) {
            std::fprintf(stderr, "timed out after %llu records\n", (unsigned long long)n);
            return 1;
        }
        uint16_t type = rec->record_type();
        uint64_t index = 0;
        if ((type != 1 && type != 2) || !record_ok(rec->bytes(), type, index) ||
            index != next[type]) {
            std::fprintf(stderr, "bad record: type %u index %llu\n", type,
                         (unsigned long long)index);
            return 1;
        }
        next[type]++;
    }
    std::printf("topic %llu\n", (unsigned long long)(2 * count));

    auto consumer = queue.consumer();
    while (auto taken = consumer.try_take()) {
        uint64_t index = 0;
        uint16_t type = taken->record_type();
        if (!record_ok(taken->bytes(), type, index)) {
            std::fprintf(stderr, "bad queue record\n");
            return 1;
        }
        taken->ack();
        std::printf("took %u %llu\n", type, (unsigned long long)index);
    }

    if (argc == 6 && std::string(argv[5]) == "channel") {
        auto fills = bus.open_spsc("fills", 10s).consumer();
        uint8_t buf[256];
        for (uint64_t i = 0; i < count; i++) {
            uint64_t index = 0;
            if (i % 2 == 0) {
                auto rec = fills.read_timeout(shmbus::wait::backoff(), 30s);
                if (!rec || rec->record_type() != 1 || !record_ok(rec->bytes(), 1, index) ||
                    index != i) {
                    std::fprintf(stderr, "bad channel record %llu\n", (unsigned long long)i);
                    return 1;
                }
            } else {
                auto got = fills.recv_timeout(shmbus::mutable_bytes(buf, sizeof buf),
                                              shmbus::wait::backoff(), 30s);
                if (!got || !record_ok(shmbus::bytes(buf, got->len), 1, index) || index != i) {
                    std::fprintf(stderr, "bad channel copy %llu\n", (unsigned long long)i);
                    return 1;
                }
            }
        }
        std::printf("channel %llu\n", (unsigned long long)count);
    }
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
