#ifndef CKAFKAFLOOR_H
#define CKAFKAFLOOR_H
#include <stddef.h>
#include <stdint.h>

/* The librdkafka C API used directly: the floor the Swift wrapper is measured against. Each client is
 * created with exactly the settings it is given, a NULL-terminated list of key, value, key, value, …
 * (bootstrap.servers included), which the caller takes from the Swift layer so that both sides run
 * with the same settings. Each returns 0 on success, or -1 with a message in err. */

/* Produces n messages of value_size bytes, keyed by one of key_count symbols, and flushes. */
int cfloor_produce(const char *const *settings, const char *topic, int64_t n, int value_size, int key_count,
                   double *seconds, char *err, size_t errlen);

/* Like cfloor_produce, but message i carries value i % value_count of the value_count values laid end to end
 * in values (lengths[j] bytes each), so the floor sends the same bytes as the scenario it is compared with. */
int cfloor_produce_values(const char *const *settings, const char *topic, int64_t n, const uint8_t *values, const int32_t *lengths,
                          int value_count, int key_count, double *seconds, char *err, size_t errlen);

/* Consumes n messages from the start of topic in a new group; times first to last message. */
int cfloor_consume(const char *const *settings, const char *topic, const char *group, int64_t n,
                   double *seconds, char *err, size_t errlen);

/* Produces n messages of value_size bytes (a copy of template_value, or 'x's when it is NULL) whose first
 * 8 bytes are replaced by the send time (ns, CLOCK_MONOTONIC), paced at
 * rate msgs/s by absolute sleeps, while a consumer in the same process records receive - send
 * latencies (ns) into latencies[0..n); seconds is first send to last receive. */
int cfloor_end_to_end(const char *const *producer_settings, const char *const *consumer_settings, const char *topic, const char *group, int64_t n, double rate,
                      const uint8_t *template_value, int value_size, int64_t *latencies, double *seconds, char *err, size_t errlen);
#endif
