#include "ckafkafloor.h"
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sets every key/value pair of the NULL-terminated list kv (bootstrap.servers included). */
static rd_kafka_conf_t *make_conf(const char *const *kv, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (int i = 0; kv[i]; i += 2)
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, errlen) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    return conf;
}

static void count_failures(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    if (m->err) (*(int64_t *)opaque)++;
}

static rd_kafka_t *make_producer(const char *const *settings, int64_t *failures, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = make_conf(settings, err, errlen);
    if (!conf) return NULL;
    rd_kafka_conf_set_opaque(conf, failures);
    rd_kafka_conf_set_dr_msg_cb(conf, count_failures);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!rk) rd_kafka_conf_destroy(conf);
    return rk;
}

static int produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *key, size_t keylen, const void *value, size_t len) {
    for (;;) {
        if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)value, len, key, keylen, NULL) == 0) return 0;
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) return -1;
        rd_kafka_poll(rk, 1);
    }
}

int cfloor_produce_values(const char *const *settings, const char *topic, int64_t n, const uint8_t *values, const int32_t *lengths,
                          int value_count, int key_count, double *seconds, char *err, size_t errlen) {
    int64_t failures = 0;
    rd_kafka_t *rk = make_producer(settings, &failures, err, errlen);
    if (!rk) return -1;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t *starts = malloc(sizeof(int64_t) * (size_t)value_count);
    int64_t offset = 0;
    for (int j = 0; j < value_count; j++) { starts[j] = offset; offset += lengths[j]; }
    char key[32];
    double start = now_s();
    for (int64_t i = 0; i < n; i++) {
        int j = (int)(i % value_count);
        int keylen = snprintf(key, sizeof key, "SYM%d", (int)(i % key_count));
        if (produce_one(rk, rkt, key, keylen, values + starts[j], (size_t)lengths[j])) {
            snprintf(err, errlen, "produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t ferr = rd_kafka_flush(rk, 60000);
    *seconds = now_s() - start;
    free(starts);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    if (ferr || failures) { snprintf(err, errlen, "flush: %s, %lld failed", rd_kafka_err2str(ferr), (long long)failures); return -1; }
    return 0;
}

int cfloor_produce(const char *const *settings, const char *topic, int64_t n, int value_size, int key_count,
                   double *seconds, char *err, size_t errlen) {
    uint8_t *value = malloc((size_t)value_size);
    memset(value, 'x', (size_t)value_size);
    int32_t length = value_size;
    int rc = cfloor_produce_values(settings, topic, n, value, &length, 1, key_count, seconds, err, errlen);
    free(value);
    return rc;
}

static rd_kafka_t *make_consumer(const char *const *settings, const char *topic, const char *group, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = make_conf(settings, err, errlen);
    if (!conf) return NULL;
    if (rd_kafka_conf_set(conf, "group.id", group, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!rk) { rd_kafka_conf_destroy(conf); return NULL; }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    return rk;
}

int cfloor_consume(const char *const *settings, const char *topic, const char *group, int64_t n,
                   double *seconds, char *err, size_t errlen) {
    rd_kafka_t *rk = make_consumer(settings, topic, group, err, errlen);
    if (!rk) return -1;
    int64_t got = 0;
    double start = 0, deadline = now_s() + 120;
    while (got < n && now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err) {
            if (got == 0) start = now_s();
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    *seconds = now_s() - start;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (got < n) { snprintf(err, errlen, "consumed %lld of %lld messages", (long long)got, (long long)n); return -1; }
    return 0;
}

struct e2e_consumer {
    rd_kafka_t *rk;
    int64_t n, got;
    int64_t *latencies;
    int64_t last_ns;
    volatile int ready;
};

static void *e2e_consume(void *arg) {
    struct e2e_consumer *c = arg;
    double deadline = now_s() + 180;
    while (c->got < c->n && now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 50);
        if (!m) continue;
        if (!m->err && m->len >= sizeof(int64_t)) {
            int64_t sent;
            memcpy(&sent, m->payload, sizeof sent);
            if (sent < 0) c->ready = 1;
            else {
                c->last_ns = now_ns();
                c->latencies[c->got++] = c->last_ns - sent;
            }
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* The end-to-end sender sleeps only when this far ahead of schedule, like Kafka's ThroughputThrottler. */
#define PACING_SLACK_NS 1000000LL

static void sleep_until_ns(int64_t due) {
    struct timespec ts = {.tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {}
}

int cfloor_end_to_end(const char *const *producer_settings, const char *const *consumer_settings, const char *topic, const char *group, int64_t n, double rate,
                      const uint8_t *template_value, int value_size, int64_t *latencies, double *seconds, char *err, size_t errlen) {
    int64_t failures = 0;
    rd_kafka_t *prod = make_producer(producer_settings, &failures, err, errlen);
    if (!prod) return -1;
    struct e2e_consumer c = {.rk = make_consumer(consumer_settings, topic, group, err, errlen), .n = n, .latencies = latencies};
    if (!c.rk) { rd_kafka_destroy(prod); return -1; }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(prod, topic, NULL);
    pthread_t thread;
    pthread_create(&thread, NULL, e2e_consume, &c);
    int64_t marker = -1;
    double wait_until = now_s() + 60;
    while (!c.ready && now_s() < wait_until) {
        produce_one(prod, rkt, "warmup", 6, &marker, sizeof marker);
        rd_kafka_flush(prod, 1000);
        struct timespec pause = {0, 200000000};
        nanosleep(&pause, NULL);
    }
    if (value_size < (int)sizeof(int64_t)) value_size = sizeof(int64_t);
    char *value = calloc(1, (size_t)value_size);
    if (template_value) memcpy(value, template_value, (size_t)value_size); else memset(value, 'x', (size_t)value_size);
    int64_t start = now_ns();
    double interval = 1e9 / rate;
    char key[32];
    for (int64_t i = 0; i < n; i++) {
        int64_t due = start + (int64_t)(i * interval);
        if (due - now_ns() > PACING_SLACK_NS) sleep_until_ns(due);
        int64_t sent = now_ns();
        memcpy(value, &sent, sizeof sent);
        int keylen = snprintf(key, sizeof key, "SYM%d", (int)(i % 50));
        produce_one(prod, rkt, key, keylen, value, (size_t)value_size);
        rd_kafka_poll(prod, 0);
    }
    free(value);
    rd_kafka_flush(prod, 30000);
    pthread_join(thread, NULL);
    *seconds = (c.last_ns - start) / 1e9;
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(prod);
    rd_kafka_consumer_close(c.rk);
    rd_kafka_destroy(c.rk);
    if (c.got < n) { snprintf(err, errlen, "received %lld of %lld messages", (long long)c.got, (long long)n); return -1; }
    return 0;
}
