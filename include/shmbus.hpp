// shmbus.hpp: a thin C++17 layer over the C API in shmbus.h.
//
// * Handles are move-only RAII objects; each frees its C handle once.
// * A claim or a record is an object of its own that borrows its endpoint:
//   a claim not committed is aborted when it goes out of scope, a record
//   is released (a queue's taken record given back, unacknowledged). As in
//   C, an endpoint holds one at a time: claiming or reading again while one
//   lives throws shmbus::error with SHMBUS_STATUS_BUSY. It must not outlive
//   its endpoint.
// * Byte views are shmbus::bytes / shmbus::mutable_bytes, a minimal span
//   (data, size, begin, end, operator[]): C++17 has no std::span, and this
//   header targets C++17 (g++ 12 and later; with C++20 both convert to
//   std::span through their data() and size()).
// * Errors: the `try_` and `_timeout` forms return std::optional, empty
//   when there was nothing to read, no room, or the time ran out: those
//   are the outcomes a polling loop expects, and an exception per empty
//   poll would cost more than the read. Everything else (a lapped
//   subscriber, a corrupt ring, a bad argument, a claim reclaimed) throws
//   shmbus::error, which carries the status and the library's message:
//   those are failures to handle away from the hot path, and exceptions
//   keep them out of it. `_blocking` forms return the value or throw.
// * Threads: as in shmbus.h. bus, topic, channel and queue objects may be
//   shared; endpoints move between threads and are used by one at a time.
#ifndef SHMBUS_HPP
#define SHMBUS_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "shmbus.h"

namespace shmbus {

/// A failed call: the C status and the library's message.
class error : public std::runtime_error {
public:
    error(shmbus_status status, const char *message)
        : std::runtime_error(std::string(shmbus_status_name(status)) + ": " + message),
          status_(status) {}
    shmbus_status status() const noexcept { return status_; }

private:
    shmbus_status status_;
};

namespace detail {
inline void check(shmbus_status status) {
    if (status != SHMBUS_STATUS_OK) {
        throw error(status, shmbus_last_error_message());
    }
}

/// True on OK; false on the statuses a `try_` or `_timeout` call expects;
/// throws on any other.
inline bool expected(shmbus_status status) {
    switch (status) {
    case SHMBUS_STATUS_OK:
        return true;
    case SHMBUS_STATUS_EMPTY:
    case SHMBUS_STATUS_FULL:
    case SHMBUS_STATUS_TIMED_OUT:
        return false;
    default:
        throw error(status, shmbus_last_error_message());
    }
}

inline uint64_t nanos(std::chrono::nanoseconds d) {
    return d.count() < 0 ? 0 : static_cast<uint64_t>(d.count());
}

/// Owns one C handle; move-only.
template <class T, void (*Free)(T *)>
class owned {
public:
    owned() noexcept = default;
    explicit owned(T *raw) noexcept : raw_(raw) {}
    owned(owned &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    owned &operator=(owned &&other) noexcept {
        if (this != &other) {
            reset();
            raw_ = std::exchange(other.raw_, nullptr);
        }
        return *this;
    }
    owned(const owned &) = delete;
    owned &operator=(const owned &) = delete;
    ~owned() { reset(); }

    T *get() const noexcept { return raw_; }
    explicit operator bool() const noexcept { return raw_ != nullptr; }
    void reset() noexcept {
        if (raw_ != nullptr) {
            Free(raw_);
            raw_ = nullptr;
        }
    }

private:
    T *raw_ = nullptr;
};
} // namespace detail

/// A read-only byte view (a minimal std::span<const uint8_t>).
class bytes {
public:
    constexpr bytes() noexcept = default;
    constexpr bytes(const uint8_t *data, size_t size) noexcept : data_(data), size_(size) {}
    constexpr const uint8_t *data() const noexcept { return data_; }
    constexpr size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr const uint8_t *begin() const noexcept { return data_; }
    constexpr const uint8_t *end() const noexcept { return data_ + size_; }
    constexpr const uint8_t &operator[](size_t i) const noexcept { return data_[i]; }

private:
    const uint8_t *data_ = nullptr;
    size_t size_ = 0;
};

/// A writable byte view (a minimal std::span<uint8_t>).
class mutable_bytes {
public:
    constexpr mutable_bytes() noexcept = default;
    constexpr mutable_bytes(uint8_t *data, size_t size) noexcept : data_(data), size_(size) {}
    constexpr uint8_t *data() const noexcept { return data_; }
    constexpr size_t size() const noexcept { return size_; }
    constexpr uint8_t *begin() const noexcept { return data_; }
    constexpr uint8_t *end() const noexcept { return data_ + size_; }
    constexpr uint8_t &operator[](size_t i) const noexcept { return data_[i]; }
    constexpr operator bytes() const noexcept { return bytes(data_, size_); }

private:
    uint8_t *data_ = nullptr;
    size_t size_ = 0;
};

/// Wait strategies (shmbus_wait values).
namespace wait {
/// Spin, yield, then sleep up to 1 ms: works for every call.
inline shmbus_wait backoff() { return shmbus_wait_default(); }
/// Spin, yield, then sleep on the futex: readers of topics and queues,
/// consumers of channels made with wake-ups.
inline shmbus_wait blocking() { return shmbus_wait_blocking(); }
/// Busy-spin: pinned threads on dedicated cores.
inline shmbus_wait busy_spin() { return shmbus_wait_busy_spin(); }
/// Yield every round.
inline shmbus_wait yield() { return shmbus_wait_yield(); }
} // namespace wait

/// What a copying receive copied.
struct received {
    size_t len;
    uint16_t record_type;
};

namespace detail {
// The C functions of each endpoint kind, so that one template serves all.
#define SHMBUS_WRITER_OPS(NAME, C)                                                        \
    struct NAME {                                                                         \
        using handle = shmbus_##C;                                                        \
        static void free(handle *h) { shmbus_##C##_free(h); }                             \
        static shmbus_status try_claim(handle *h, size_t n, shmbus_claim *o) {            \
            return shmbus_##C##_try_claim(h, n, o);                                       \
        }                                                                                 \
        static shmbus_status claim_timeout(handle *h, size_t n, shmbus_wait w, uint64_t t, \
                                           shmbus_claim *o) {                             \
            return shmbus_##C##_claim_timeout(h, n, w, t, o);                             \
        }                                                                                 \
        static shmbus_status claim_blocking(handle *h, size_t n, shmbus_wait w,           \
                                            shmbus_claim *o) {                            \
            return shmbus_##C##_claim_blocking(h, n, w, o);                               \
        }                                                                                 \
        static shmbus_status commit(handle *h, uint16_t ty, uint64_t *s) {                \
            return shmbus_##C##_commit(h, ty, s);                                         \
        }                                                                                 \
        static shmbus_status abort(handle *h) { return shmbus_##C##_abort(h); }           \
        static shmbus_status try_send(handle *h, uint16_t ty, const uint8_t *d, size_t n, \
                                      uint64_t *s) {                                      \
            return shmbus_##C##_try_send(h, ty, d, n, s);                                 \
        }                                                                                 \
        static shmbus_status send_blocking(handle *h, uint16_t ty, const uint8_t *d,      \
                                           size_t n, shmbus_wait w, uint64_t *s) {        \
            return shmbus_##C##_send_blocking(h, ty, d, n, w, s);                         \
        }                                                                                 \
        static shmbus_status send_timeout(handle *h, uint16_t ty, const uint8_t *d,       \
                                          size_t n, shmbus_wait w, uint64_t t,            \
                                          uint64_t *s) {                                  \
            return shmbus_##C##_send_timeout(h, ty, d, n, w, t, s);                       \
        }                                                                                 \
    }
SHMBUS_WRITER_OPS(publisher_ops, publisher);
SHMBUS_WRITER_OPS(producer_ops, producer);
SHMBUS_WRITER_OPS(queue_producer_ops, queue_producer);
#undef SHMBUS_WRITER_OPS

#define SHMBUS_READER_OPS(NAME, C, READ, FINISH)                                         \
    struct NAME {                                                                        \
        using handle = shmbus_##C;                                                       \
        static void free(handle *h) { shmbus_##C##_free(h); }                            \
        static shmbus_status try_read(handle *h, shmbus_record *o) {                     \
            return shmbus_##C##_try_##READ(h, o);                                        \
        }                                                                                \
        static shmbus_status read_blocking(handle *h, shmbus_wait w, shmbus_record *o) { \
            return shmbus_##C##_##READ##_blocking(h, w, o);                              \
        }                                                                                \
        static shmbus_status read_timeout(handle *h, shmbus_wait w, uint64_t t,          \
                                          shmbus_record *o) {                            \
            return shmbus_##C##_##READ##_timeout(h, w, t, o);                            \
        }                                                                                \
        static shmbus_status finish(handle *h) { return shmbus_##C##_##FINISH(h); }      \
        static shmbus_status try_recv(handle *h, uint8_t *b, size_t n,                   \
                                      shmbus_received *o) {                              \
            return shmbus_##C##_try_recv(h, b, n, o);                                    \
        }                                                                                \
        static shmbus_status recv_blocking(handle *h, uint8_t *b, size_t n,              \
                                           shmbus_wait w, shmbus_received *o) {          \
            return shmbus_##C##_recv_blocking(h, b, n, w, o);                            \
        }                                                                                \
        static shmbus_status recv_timeout(handle *h, uint8_t *b, size_t n, shmbus_wait w, \
                                          uint64_t t, shmbus_received *o) {              \
            return shmbus_##C##_recv_timeout(h, b, n, w, t, o);                          \
        }                                                                                \
    }
SHMBUS_READER_OPS(subscriber_ops, subscriber, read, release);
SHMBUS_READER_OPS(consumer_ops, consumer, read, release);
SHMBUS_READER_OPS(queue_consumer_ops, queue_consumer, take, give_back);
#undef SHMBUS_READER_OPS
} // namespace detail

/// A claimed slot of a writer: write bytes(), then commit(). Aborted if it
/// goes out of scope uncommitted.
template <class Ops>
class basic_claim {
public:
    basic_claim(basic_claim &&other) noexcept
        : writer_(std::exchange(other.writer_, nullptr)), claim_(other.claim_) {}
    basic_claim &operator=(basic_claim &&) = delete;
    basic_claim(const basic_claim &) = delete;
    basic_claim &operator=(const basic_claim &) = delete;
    ~basic_claim() {
        if (writer_ != nullptr) {
            Ops::abort(writer_);
        }
    }

    /// The slot: exactly the length claimed.
    mutable_bytes bytes() const noexcept { return mutable_bytes(claim_.data, claim_.capacity); }
    /// The record's sequence number (0 on a channel).
    uint64_t sequence() const noexcept { return claim_.sequence; }
    /// Publishes the record; returns its sequence (0 on a channel).
    uint64_t commit(uint16_t record_type = 0) {
        uint64_t seq = 0;
        detail::check(Ops::commit(std::exchange(writer_, nullptr), record_type, &seq));
        return seq;
    }
    /// Drops the record: readers never see it.
    void abort() { detail::check(Ops::abort(std::exchange(writer_, nullptr))); }

private:
    template <class>
    friend class basic_writer;
    basic_claim(typename Ops::handle *writer, shmbus_claim claim) noexcept
        : writer_(writer), claim_(claim) {}
    typename Ops::handle *writer_;
    shmbus_claim claim_;
};

/// A publisher, a channel producer or a queue producer.
template <class Ops>
class basic_writer {
public:
    using claim = basic_claim<Ops>;
    explicit basic_writer(typename Ops::handle *raw) noexcept : h_(raw) {}

    std::optional<claim> try_claim(size_t len) {
        shmbus_claim c{};
        if (!detail::expected(Ops::try_claim(h_.get(), len, &c))) {
            return std::nullopt;
        }
        return claim(h_.get(), c);
    }
    claim claim_blocking(size_t len, shmbus_wait w = wait::backoff()) {
        shmbus_claim c{};
        detail::check(Ops::claim_blocking(h_.get(), len, w, &c));
        return claim(h_.get(), c);
    }
    std::optional<claim> claim_timeout(size_t len, shmbus_wait w, std::chrono::nanoseconds t) {
        shmbus_claim c{};
        if (!detail::expected(Ops::claim_timeout(h_.get(), len, w, detail::nanos(t), &c))) {
            return std::nullopt;
        }
        return claim(h_.get(), c);
    }
    /// Copies and publishes; the sequence, or nothing if there was no room.
    std::optional<uint64_t> try_send(uint16_t record_type, bytes payload) {
        uint64_t seq = 0;
        if (!detail::expected(
                Ops::try_send(h_.get(), record_type, payload.data(), payload.size(), &seq))) {
            return std::nullopt;
        }
        return seq;
    }
    uint64_t send_blocking(uint16_t record_type, bytes payload, shmbus_wait w = wait::backoff()) {
        uint64_t seq = 0;
        detail::check(
            Ops::send_blocking(h_.get(), record_type, payload.data(), payload.size(), w, &seq));
        return seq;
    }
    std::optional<uint64_t> send_timeout(uint16_t record_type, bytes payload, shmbus_wait w,
                                         std::chrono::nanoseconds t) {
        uint64_t seq = 0;
        if (!detail::expected(Ops::send_timeout(h_.get(), record_type, payload.data(),
                                                payload.size(), w, detail::nanos(t), &seq))) {
            return std::nullopt;
        }
        return seq;
    }
    typename Ops::handle *get() const noexcept { return h_.get(); }

private:
    detail::owned<typename Ops::handle, Ops::free> h_;
};

/// A record read in place: valid while this object lives. Released when it
/// goes out of scope (a queue's record is given back, unacknowledged).
template <class Ops>
class basic_record {
public:
    basic_record(basic_record &&other) noexcept
        : reader_(std::exchange(other.reader_, nullptr)), record_(other.record_) {}
    basic_record &operator=(basic_record &&) = delete;
    basic_record(const basic_record &) = delete;
    basic_record &operator=(const basic_record &) = delete;
    ~basic_record() {
        if (reader_ != nullptr) {
            Ops::finish(reader_);
        }
    }

    shmbus::bytes bytes() const noexcept { return shmbus::bytes(record_.data, record_.len); }
    uint16_t record_type() const noexcept { return record_.record_type; }
    /// The sequence number (0 on a channel).
    uint64_t sequence() const noexcept { return record_.sequence; }
    /// Queues: taken before by a consumer that died or gave it back.
    bool redelivered() const noexcept { return record_.redelivered; }
    /// Releases it now (a queue's: gives it back).
    void release() { detail::check(Ops::finish(std::exchange(reader_, nullptr))); }
    /// Queues only: acknowledges it (done, never delivered again).
    void ack() {
        static_assert(std::is_same_v<Ops, detail::queue_consumer_ops>,
                      "ack() is for records taken from a work queue");
        detail::check(shmbus_queue_consumer_ack(std::exchange(reader_, nullptr)));
    }

private:
    template <class>
    friend class basic_reader;
    basic_record(typename Ops::handle *reader, shmbus_record record) noexcept
        : reader_(reader), record_(record) {}
    typename Ops::handle *reader_;
    shmbus_record record_;
};

/// A subscriber, a channel consumer or a queue consumer. For a queue,
/// "read" is the C API's "take".
template <class Ops>
class basic_reader {
public:
    using record = basic_record<Ops>;
    explicit basic_reader(typename Ops::handle *raw) noexcept : h_(raw) {}

    std::optional<record> try_read() {
        shmbus_record r{};
        if (!detail::expected(Ops::try_read(h_.get(), &r))) {
            return std::nullopt;
        }
        return record(h_.get(), r);
    }
    record read_blocking(shmbus_wait w = wait::blocking()) {
        shmbus_record r{};
        detail::check(Ops::read_blocking(h_.get(), w, &r));
        return record(h_.get(), r);
    }
    std::optional<record> read_timeout(shmbus_wait w, std::chrono::nanoseconds t) {
        shmbus_record r{};
        if (!detail::expected(Ops::read_timeout(h_.get(), w, detail::nanos(t), &r))) {
            return std::nullopt;
        }
        return record(h_.get(), r);
    }
    std::optional<received> try_recv(mutable_bytes buf) {
        shmbus_received r{};
        if (!detail::expected(Ops::try_recv(h_.get(), buf.data(), buf.size(), &r))) {
            return std::nullopt;
        }
        return received{r.len, r.record_type};
    }
    received recv_blocking(mutable_bytes buf, shmbus_wait w = wait::blocking()) {
        shmbus_received r{};
        detail::check(Ops::recv_blocking(h_.get(), buf.data(), buf.size(), w, &r));
        return received{r.len, r.record_type};
    }
    std::optional<received> recv_timeout(mutable_bytes buf, shmbus_wait w,
                                         std::chrono::nanoseconds t) {
        shmbus_received r{};
        if (!detail::expected(
                Ops::recv_timeout(h_.get(), buf.data(), buf.size(), w, detail::nanos(t), &r))) {
            return std::nullopt;
        }
        return received{r.len, r.record_type};
    }
    typename Ops::handle *get() const noexcept { return h_.get(); }

private:
    detail::owned<typename Ops::handle, Ops::free> h_;
};

using publisher = basic_writer<detail::publisher_ops>;
using producer = basic_writer<detail::producer_ops>;
using queue_producer = basic_writer<detail::queue_producer_ops>;
using consumer = basic_reader<detail::consumer_ops>;

/// A work queue's consumer: takes records (the reads of the other readers)
/// and acknowledges them; a taken record dropped unacknowledged goes back
/// to the queue.
class queue_consumer : public basic_reader<detail::queue_consumer_ops> {
public:
    using basic_reader::basic_reader;
    std::optional<record> try_take() { return try_read(); }
    record take_blocking(shmbus_wait w = wait::blocking()) { return read_blocking(w); }
    std::optional<record> take_timeout(shmbus_wait w, std::chrono::nanoseconds t) {
        return read_timeout(w, t);
    }
};

/// A topic subscriber: a reader that also counts what it missed.
class subscriber : public basic_reader<detail::subscriber_ops> {
public:
    using basic_reader::basic_reader;
    /// Records lost to overwriting publishers so far.
    uint64_t missed() const {
        uint64_t n = 0;
        detail::check(shmbus_subscriber_missed(get(), &n));
        return n;
    }
};

/// A topic: make publishers and subscribers from it.
class topic {
public:
    explicit topic(shmbus_topic *raw) noexcept : h_(raw) {}
    shmbus::publisher publisher() const {
        shmbus_publisher *p = nullptr;
        detail::check(shmbus_topic_publisher(h_.get(), &p));
        return shmbus::publisher(p);
    }
    shmbus::subscriber subscriber(shmbus_start_at start = SHMBUS_START_AT_TAIL) const {
        shmbus_subscriber *s = nullptr;
        detail::check(shmbus_topic_subscriber(h_.get(), start, &s));
        return shmbus::subscriber(s);
    }
    shmbus::subscriber durable_subscriber(const std::string &name,
                                          shmbus_start_at start = SHMBUS_START_AT_TAIL) const {
        shmbus_subscriber *s = nullptr;
        detail::check(shmbus_topic_durable_subscriber(h_.get(), name.c_str(), start, &s));
        return shmbus::subscriber(s);
    }
    void drop_durable(const std::string &name) const {
        detail::check(shmbus_topic_drop_durable(h_.get(), name.c_str()));
    }
    void remove() const { detail::check(shmbus_topic_remove(h_.get())); }

private:
    detail::owned<shmbus_topic, shmbus_topic_free> h_;
};

/// An SPSC channel.
class channel {
public:
    explicit channel(shmbus_channel *raw) noexcept : h_(raw) {}
    shmbus::producer producer() const {
        shmbus_producer *p = nullptr;
        detail::check(shmbus_channel_producer(h_.get(), &p));
        return shmbus::producer(p);
    }
    shmbus::consumer consumer() const {
        shmbus_consumer *c = nullptr;
        detail::check(shmbus_channel_consumer(h_.get(), &c));
        return shmbus::consumer(c);
    }
    void remove() const { detail::check(shmbus_channel_remove(h_.get())); }

private:
    detail::owned<shmbus_channel, shmbus_channel_free> h_;
};

/// A work queue.
class queue {
public:
    explicit queue(shmbus_queue *raw) noexcept : h_(raw) {}
    shmbus::queue_producer producer() const {
        shmbus_queue_producer *p = nullptr;
        detail::check(shmbus_queue_producer_new(h_.get(), &p));
        return shmbus::queue_producer(p);
    }
    shmbus::queue_consumer consumer() const {
        shmbus_queue_consumer *c = nullptr;
        detail::check(shmbus_queue_consumer_new(h_.get(), &c));
        return shmbus::queue_consumer(c);
    }
    void remove() const { detail::check(shmbus_queue_remove(h_.get())); }

private:
    detail::owned<shmbus_queue, shmbus_queue_free> h_;
};

/// A bus: a namespace and its rings.
class bus {
public:
    /// The bus of `ns` under $SHMBUS_DIR or /dev/shm/shmbus-<uid>.
    static bus open(const std::string &ns) {
        shmbus_bus *b = nullptr;
        detail::check(shmbus_bus_open(ns.c_str(), &b));
        return bus(b);
    }
    /// The bus of `ns` under `base`.
    static bus open_at(const std::string &base, const std::string &ns) {
        shmbus_bus *b = nullptr;
        detail::check(shmbus_bus_open_at(base.c_str(), ns.c_str(), &b));
        return bus(b);
    }
    shmbus::topic topic(const std::string &name,
                        const shmbus_topic_config &config = shmbus_topic_config_default()) const {
        shmbus_topic *t = nullptr;
        detail::check(shmbus_bus_topic(h_.get(), name.c_str(), &config, &t));
        return shmbus::topic(t);
    }
    /// Opens an existing topic, waiting up to `timeout` for it to appear.
    shmbus::topic open_topic(const std::string &name,
                             std::chrono::nanoseconds timeout = std::chrono::nanoseconds(0)) const {
        shmbus_topic *t = nullptr;
        detail::check(shmbus_bus_open_topic(h_.get(), name.c_str(), detail::nanos(timeout), &t));
        return shmbus::topic(t);
    }
    shmbus::channel spsc(const std::string &name, const shmbus_spsc_config &config) const {
        shmbus_channel *c = nullptr;
        detail::check(shmbus_bus_spsc(h_.get(), name.c_str(), &config, &c));
        return shmbus::channel(c);
    }
    shmbus::channel open_spsc(const std::string &name,
                              std::chrono::nanoseconds timeout = std::chrono::nanoseconds(0)) const {
        shmbus_channel *c = nullptr;
        detail::check(shmbus_bus_open_spsc(h_.get(), name.c_str(), detail::nanos(timeout), &c));
        return shmbus::channel(c);
    }
    shmbus::queue queue(const std::string &name,
                        const shmbus_queue_config &config = shmbus_queue_config_default()) const {
        shmbus_queue *q = nullptr;
        detail::check(shmbus_bus_queue(h_.get(), name.c_str(), &config, &q));
        return shmbus::queue(q);
    }
    shmbus::queue open_queue(const std::string &name,
                             std::chrono::nanoseconds timeout = std::chrono::nanoseconds(0)) const {
        shmbus_queue *q = nullptr;
        detail::check(shmbus_bus_open_queue(h_.get(), name.c_str(), detail::nanos(timeout), &q));
        return shmbus::queue(q);
    }

private:
    explicit bus(shmbus_bus *raw) noexcept : h_(raw) {}
    detail::owned<shmbus_bus, shmbus_bus_free> h_;
};

/// Protocol V2.
namespace v2 {

/// A parsed message: header fields and a range of its TLV items.
class message {
public:
    /// Parses and validates `msg`; throws shmbus::error on a bad message.
    static message parse(bytes msg, shmbus_v2_verify verify = SHMBUS_V2_VERIFY_STRICT,
                         shmbus_v2_size_policy sizes = SHMBUS_V2_SIZE_POLICY_REGISTRY) {
        message m;
        detail::check(shmbus_v2_parse(msg.data(), msg.size(), verify, sizes, &m.m_));
        return m;
    }
    const shmbus_v2_message &header() const noexcept { return m_; }

    /// Walks the TLV items: `for (const shmbus_v2_tlv &t : msg.tlvs())`.
    class tlv_range {
    public:
        class iterator {
        public:
            const shmbus_v2_tlv &operator*() const noexcept { return tlv_; }
            const shmbus_v2_tlv *operator->() const noexcept { return &tlv_; }
            iterator &operator++() {
                next();
                return *this;
            }
            bool operator!=(const iterator &other) const noexcept { return done_ != other.done_; }

        private:
            friend class tlv_range;
            iterator() noexcept : done_(true) {}
            explicit iterator(const shmbus_v2_message &m) : done_(false) {
                detail::check(shmbus_v2_message_tlvs(&m, &it_));
                next();
            }
            void next() { done_ = !detail::expected(shmbus_v2_tlv_next(&it_, &tlv_)); }
            shmbus_v2_tlv_iter it_{};
            shmbus_v2_tlv tlv_{};
            bool done_;
        };
        iterator begin() const { return iterator(m_); }
        iterator end() const noexcept { return iterator(); }

    private:
        friend class message;
        explicit tlv_range(const shmbus_v2_message &m) noexcept : m_(m) {}
        shmbus_v2_message m_;
    };
    tlv_range tlvs() const noexcept { return tlv_range(m_); }

private:
    message() noexcept = default;
    shmbus_v2_message m_{};
};

/// Copies a TLV item's payload into its C struct (the typed readers of
/// shmbus.h); std::nullopt if the item is of another type or length.
inline std::optional<shmbus_v2_trade> as_trade(const shmbus_v2_tlv &t) {
    shmbus_v2_trade out{};
    if (shmbus_v2_tlv_trade(&t, &out) != SHMBUS_STATUS_OK) {
        return std::nullopt;
    }
    return out;
}
inline std::optional<shmbus_v2_quote> as_quote(const shmbus_v2_tlv &t) {
    shmbus_v2_quote out{};
    if (shmbus_v2_tlv_quote(&t, &out) != SHMBUS_STATUS_OK) {
        return std::nullopt;
    }
    return out;
}

/// A reusable message builder.
class builder {
public:
    builder() {
        shmbus_v2_builder *b = nullptr;
        detail::check(shmbus_v2_builder_new(&b));
        h_ = decltype(h_)(b);
    }
    /// Begins a message in `buf` (which must outlive finish()).
    builder &begin(mutable_bytes buf, uint8_t domain, uint8_t source) {
        detail::check(shmbus_v2_builder_begin(h_.get(), buf.data(), buf.size(), domain, source));
        return *this;
    }
    builder &sequence(uint64_t s) {
        detail::check(shmbus_v2_builder_sequence(h_.get(), s));
        return *this;
    }
    builder &timestamp_ns(uint64_t t) {
        detail::check(shmbus_v2_builder_timestamp_ns(h_.get(), t));
        return *this;
    }
    builder &tlv(uint8_t type, bytes payload) {
        detail::check(shmbus_v2_builder_tlv(h_.get(), type, payload.data(), payload.size()));
        return *this;
    }
    builder &add(const shmbus_v2_trade &t) {
        detail::check(shmbus_v2_builder_trade(h_.get(), &t));
        return *this;
    }
    builder &add(const shmbus_v2_quote &q) {
        detail::check(shmbus_v2_builder_quote(h_.get(), &q));
        return *this;
    }
    /// Writes the header; returns the message length.
    size_t finish(shmbus_v2_checksum checksum = SHMBUS_V2_CHECKSUM_COMPUTE) {
        size_t len = 0;
        detail::check(shmbus_v2_builder_finish(h_.get(), checksum, &len));
        return len;
    }

private:
    detail::owned<shmbus_v2_builder, shmbus_v2_builder_free> h_;
};

} // namespace v2
} // namespace shmbus

#endif // SHMBUS_HPP
