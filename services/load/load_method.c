/* Method lookup for cascade-load: ghz names a method "pkg.Service.Method" or
 * "pkg.Service/Method"; we find it among the services of our own .proto files
 * (their protobuf-c descriptors are linked in), so no dynamic .proto parsing
 * is needed. --proto/--protoset files are checked to declare the method. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade/v1/filter.pb-c.h"
#include "cascade/v1/prerank.pb-c.h"
#include "cascade/v1/rank.pb-c.h"
#include "cascade/v1/recall.pb-c.h"
#include "cascade/v1/recommender.pb-c.h"
#include "cascade/v1/rerank.pb-c.h"
#include "error.h"
#include "grpc/health/v1/health.pb-c.h"
#include "load.h"

static const ProtobufCServiceDescriptor *const services[] = {
    &cascade__v1__recommender__descriptor, &cascade__v1__recall__descriptor,
    &cascade__v1__filter__descriptor,      &cascade__v1__pre_rank__descriptor,
    &cascade__v1__rank__descriptor,        &cascade__v1__re_rank__descriptor,
    &grpc__health__v1__health__descriptor,
};
#define N_SERVICES (sizeof services / sizeof services[0])

int cascade_load_method_find(const char *call, struct cascade_load_method *m, char *err,
                             size_t errlen)
{
    if (!call || !call[0]) {
        snprintf(err, errlen, "--call is required (e.g. cascade.v1.Recommender.Recommend)");
        return CASCADE_EINVAL;
    }
    /* The method is after the last '/' or, without one, after the last '.'. */
    const char *sep = strrchr(call, '/');
    if (!sep)
        sep = strrchr(call, '.');
    if (!sep || sep == call || !sep[1]) {
        snprintf(err, errlen,
                 "--call %s: expected package.Service.Method or package.Service/Method", call);
        return CASCADE_EINVAL;
    }
    size_t service_len = (size_t)(sep - call);
    for (size_t i = 0; i < N_SERVICES; i++) {
        const ProtobufCServiceDescriptor *s = services[i];
        if (strlen(s->name) != service_len || strncmp(s->name, call, service_len) != 0)
            continue;
        for (unsigned j = 0; j < s->n_methods; j++) {
            if (strcmp(s->methods[j].name, sep + 1) != 0)
                continue;
            snprintf(m->path, sizeof m->path, "/%s/%s", s->name, s->methods[j].name);
            snprintf(m->full_name, sizeof m->full_name, "%s.%s", s->name, s->methods[j].name);
            m->input = s->methods[j].input;
            m->output = s->methods[j].output;
            return 0;
        }
        snprintf(err, errlen, "--call %s: service %s has no method %s", call, s->name, sep + 1);
        return CASCADE_EINVAL;
    }
    char known[512] = "";
    for (size_t i = 0; i < N_SERVICES; i++) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", services[i]->name);
    }
    snprintf(err, errlen, "--call %s: unknown service %.*s (cascade-load knows %s)", call,
             (int)service_len, call, known);
    return CASCADE_EINVAL;
}

/* The whole file as a NUL-terminated string (binary files too: a protoset's
 * names are plain bytes), or NULL with a message. */
static char *read_all(const char *path, const char *flag, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s %s: cannot open it", flag, path);
        return NULL;
    }
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *grown = realloc(buf, cap);
            if (!grown) {
                snprintf(err, errlen, "%s %s: out of memory", flag, path);
                free(buf);
                buf = NULL;
                goto out;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s %s: read error", flag, path);
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    *len = n;
out:
    fclose(f);
    return buf;
}

static bool contains(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle)) != NULL;
}

int cascade_load_method_check_file(const struct cascade_load_method *m, const char *proto,
                                   const char *protoset, char *err, size_t errlen)
{
    const char *path = proto ? proto : protoset;
    const char *flag = proto ? "--proto" : "--protoset";
    if (!path)
        return 0;
    int rc = CASCADE_EINVAL;
    size_t len = 0;
    char *text = read_all(path, flag, &len, err, errlen);
    if (!text)
        return CASCADE_EINVAL;
    /* full_name is "pkg.Service.Method": split off the short names. */
    char service[160], method[160];
    snprintf(service, sizeof service, "%s", m->full_name);
    char *dot = strrchr(service, '.');
    snprintf(method, sizeof method, "%s", dot + 1);
    *dot = '\0';
    const char *short_service = strrchr(service, '.') ? strrchr(service, '.') + 1 : service;
    char decl[200];
    if (proto) {
        snprintf(decl, sizeof decl, "service %s", short_service);
        bool ok = contains(text, len, decl);
        snprintf(decl, sizeof decl, "rpc %s(", method);
        if (!ok || !contains(text, len, decl)) {
            snprintf(err, errlen, "--proto %s: no service %s with rpc %s in it", path,
                     short_service, method);
            goto out;
        }
    } else if (!contains(text, len, short_service) || !contains(text, len, method)) {
        snprintf(err, errlen, "--protoset %s: no service %s with method %s in it", path,
                 short_service, method);
        goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}
