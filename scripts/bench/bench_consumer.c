/* Stream consumer throughput: 20000 item records, XADD N Feedback events and
 * N/10 serve records (10 items each) to a namespace of a running
 * redis-server, then drain them
 * with one consumer (the library cascade-consumer runs) and print entries
 * and counter updates per second, with the batch size used. Errors are
 * counted and printed. Run by scripts/bench/consumer.sh (which starts a
 * private redis-server); figures go in docs/closed-loop.md.
 * Usage: cascade-bench-consumer --redis HOST:PORT [--events N] [--batch B]
 * [--ns NS] [--data-dir DIR] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "consumer.h"
#include "store.h"

/* Item records for every item the entries name (1..20000, 20 categories):
 * the consumer reads the items' categories, and appends a user's events for
 * the online features only for items with a record. */
static int add_items(cascade_redis *r, const char *ns)
{
    for (uint64_t id = 1; id <= 20000; id++) {
        cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
        rec.item_id = id;
        rec.category = 1 + (uint32_t)(id % 20);
        if (cascade_store_put_item(r, ns, &rec))
            return -1;
    }
    return 0;
}

static int add_entries(cascade_redis *r, const char *ns, long events)
{
    char ekey[CASCADE_KEY_MAX], skey[CASCADE_KEY_MAX];
    static const char *types[] = {"click", "impression", "like", "play"};
    long long now = cascade_wall_s();
    long sent = 0;
    cascade_key_events(ekey, ns);
    cascade_key_serves(skey, ns);
    for (long i = 0; i < events; i++) {
        char user[24], item[24], ts[24];
        snprintf(user, sizeof user, "u%ld", i % 5000);
        snprintf(item, sizeof item, "%ld", 1 + (i * 7919) % 20000);
        snprintf(ts, sizeof ts, "%lld", now);
        if (cascade_redis_append(r, "XADD %s * user %s item %s type %s value 1 ts %s rid r eid e",
                                 ekey, user, item, types[i % 4], ts))
            return -1;
        sent++;
        if (i % 10 == 0) {
            if (cascade_redis_append(r,
                                     "XADD %s * rid r user %s ts_ms 1 exp x track %s deg 0 items "
                                     "1:0:r:1:1,2:1:r:1:1,3:2:r:1:1,4:3:r:1:1,5:4:r:1:1,"
                                     "6:5:r:1:1,7:6:r:1:1,8:7:r:1:1,9:8:e:1:0,%s:9:r:1:1",
                                     skey, user, "", item))
                return -1;
            sent++;
        }
        if (sent >= 1000 || i == events - 1) {
            for (long k = 0; k < sent; k++) {
                redisReply *rep = NULL;
                if (cascade_redis_get_reply(r, &rep))
                    return -1;
                freeReplyObject(rep);
            }
            sent = 0;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *redis = NULL, *ns = "bench", *data_dir = "";
    long events = 100000, batch = 200;
    static const struct option longopts[] = {
        {"redis", required_argument, NULL, 'r'},    {"events", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},    {"ns", required_argument, NULL, 's'},
        {"data-dir", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        if (c == 'r')
            redis = optarg;
        else if (c == 'n')
            events = atol(optarg);
        else if (c == 'b')
            batch = atol(optarg);
        else if (c == 's')
            ns = optarg;
        else if (c == 'd')
            data_dir = optarg;
        else
            return 2;
    }
    char host[256], err[256];
    int port;
    if (redis == NULL || cascade_redis_parse_addr(redis, host, sizeof host, &port) != 0 ||
        events < 1 || batch < 1) {
        fprintf(stderr, "usage: cascade-bench-consumer --redis HOST:PORT [--events N] "
                        "[--batch B] [--ns NS] [--data-dir DIR]\n");
        return 2;
    }
    struct cascade_redis_opts ro = {.host = host, .port = port, .command_timeout_ms = 30000};
    cascade_redis *r = cascade_redis_create(&ro);
    struct cascade_consumer_opts co;
    if (r == NULL || cascade_consumer_config(NULL, &co, err, sizeof err))
        return 1;
    co.ns = ns;
    co.name = "bench";
    co.batch = (uint32_t)batch;
    co.data_dir = data_dir;
    cascade_consumer *c = cascade_consumer_create(&co, NULL, err, sizeof err);
    if (c == NULL || add_items(r, ns) || add_entries(r, ns, events) ||
        cascade_consumer_ensure_groups(c, r)) {
        fprintf(stderr, "bench: %s\n", c ? cascade_redis_error(r) : err);
        return 1;
    }
    long entries = events + (events + 9) / 10, applied = 0, errors = 0, steps = 0;
    int64_t t0 = cascade_now_us();
    while (applied < entries && errors < 100) {
        size_t n = 0;
        if (cascade_consumer_step(c, r, 0, &n) != 0) {
            fprintf(stderr, "bench: %s\n", cascade_redis_error(r));
            errors++;
        }
        applied += (long)n;
        steps++;
    }
    double s = (double)(cascade_now_us() - t0) / 1e6;
    printf("entries %ld (events %ld, serve records of 10 items %ld) in %.2f s: %.0f entries/s, "
           "batch %ld, %ld steps, %ld errors%s\n",
           applied, events, (events + 9) / 10, s, (double)applied / s, batch, steps, errors,
           data_dir[0] ? ", partitions on (fsync per batch)" : "");
    cascade_consumer_destroy(c);
    cascade_redis_destroy(r);
    return errors ? 1 : 0;
}
