/* JSON call data to a protobuf-c message, generically through the message's
 * ProtobufCMessageDescriptor (protobuf-c has no JSON mapping of its own). The
 * mapping follows proto3's JSON rules where our messages need them: field
 * names as in the .proto or lowerCamelCase, 64-bit integers as numbers or
 * strings, enums by name or number, maps as objects. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "load.h"

struct jctx {
    cascade_arena *arena;
    char *err;
    size_t errlen;
};

static int fail(struct jctx *c, const ProtobufCMessageDescriptor *d, const char *field,
                const char *what)
{
    snprintf(c->err, c->errlen, "%s.%s: %s", d->name, field, what);
    return CASCADE_EINVAL;
}

/* The field whose proto name or lowerCamelCase JSON name is key. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f)
        return f;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const char *n = d->fields[i].name, *k = key;
        bool upper = false;
        for (; *n; n++) {
            if (*n == '_') {
                upper = true;
                continue;
            }
            char want = upper && *n >= 'a' && *n <= 'z' ? (char)(*n - 'a' + 'A') : *n;
            upper = false;
            if (*k++ != want)
                break;
        }
        if (!*n && !*k)
            return &d->fields[i];
    }
    return NULL;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4; /* 32-bit integers and float */
    }
}

/* An integer from a JSON integer, an integral real or a decimal string. */
static bool json_int(const json_t *v, bool is_signed, int64_t *s, uint64_t *u)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (!is_signed && x < 0)
            return false;
        *s = x;
        *u = (uint64_t)x;
        return true;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x != floor(x) || x < (is_signed ? -9.2e18 : 0) || x > 9.2e18)
            return false;
        *s = (int64_t)x;
        *u = (uint64_t)x;
        return true;
    }
    if (json_is_string(v)) {
        const char *t = json_string_value(v);
        char *end;
        errno = 0;
        if (!*t || (!is_signed && *t == '-'))
            return false;
        if (is_signed)
            *s = strtoll(t, &end, 10), *u = (uint64_t)*s;
        else
            *u = strtoull(t, &end, 10), *s = (int64_t)*u;
        return !errno && !*end;
    }
    return false;
}

static int build(const ProtobufCMessageDescriptor *d, const json_t *obj, struct jctx *c,
                 ProtobufCMessage **out);

/* Store one value of field f's type at slot. */
static int set_one(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                   void *slot, const json_t *v, struct jctx *c)
{
    int64_t s = 0;
    uint64_t u = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!json_int(v, true, &s, &u) || s < INT32_MIN || s > INT32_MAX)
            return fail(c, d, f->name, "expected a 32-bit integer");
        *(int32_t *)slot = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!json_int(v, false, &s, &u) || u > UINT32_MAX)
            return fail(c, d, f->name, "expected an unsigned 32-bit integer");
        *(uint32_t *)slot = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!json_int(v, true, &s, &u))
            return fail(c, d, f->name, "expected a 64-bit integer (number or string)");
        *(int64_t *)slot = s;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!json_int(v, false, &s, &u))
            return fail(c, d, f->name, "expected an unsigned 64-bit integer (number or string)");
        *(uint64_t *)slot = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            return fail(c, d, f->name, "expected a number");
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)slot = (float)json_number_value(v);
        else
            *(double *)slot = json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return fail(c, d, f->name, "expected true or false");
        *(protobuf_c_boolean *)slot = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        const ProtobufCEnumValue *ev = NULL;
        if (json_is_string(v))
            ev = protobuf_c_enum_descriptor_get_value_by_name(e, json_string_value(v));
        else if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
                 json_integer_value(v) <= INT32_MAX)
            ev = protobuf_c_enum_descriptor_get_value(e, (int)json_integer_value(v));
        if (!ev) {
            char what[200];
            snprintf(what, sizeof what, "expected a value of enum %s (name or number)", e->name);
            return fail(c, d, f->name, what);
        }
        *(int *)slot = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return fail(c, d, f->name, "expected a string");
        char *copy = cascade_arena_strdup(c->arena, json_string_value(v));
        if (!copy)
            return fail(c, d, f->name, "out of memory");
        *(char **)slot = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (!json_is_object(v))
            return fail(c, d, f->name, "expected an object");
        return build(f->descriptor, v, c, (ProtobufCMessage **)slot);
    default:
        return fail(c, d, f->name, "bytes fields are not supported by cascade-load");
    }
}

/* A map<K, V> field is a repeated entry message with fields key and value. */
static bool is_map(const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    return e->n_fields == 2 && strcmp(e->fields[0].name, "key") == 0 &&
           strcmp(e->fields[1].name, "value") == 0;
}

static int set_map(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                   ProtobufCMessage *msg, const json_t *v, struct jctx *c)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;
    size_t n = json_object_size(v), i = 0;
    ProtobufCMessage **entries = cascade_arena_calloc(c->arena, n ? n : 1, sizeof *entries);
    if (!entries)
        return fail(c, d, f->name, "out of memory");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value)
    {
        ProtobufCMessage *m = cascade_arena_calloc(c->arena, 1, e->sizeof_message);
        if (!m)
            return fail(c, d, f->name, "out of memory");
        protobuf_c_message_init(e, m);
        /* JSON keys are strings; json_int reads an integer key from its digits. */
        json_t *k = json_string(key);
        int rc = k ? set_one(e, &e->fields[0], (char *)m + e->fields[0].offset, k, c)
                   : fail(c, d, f->name, "out of memory");
        json_decref(k);
        if (rc == 0)
            rc = set_one(e, &e->fields[1], (char *)m + e->fields[1].offset, value, c);
        if (rc != 0)
            return rc;
        entries[i++] = m;
    }
    *(size_t *)((char *)msg + f->quantifier_offset) = n;
    *(ProtobufCMessage ***)((char *)msg + f->offset) = entries;
    return 0;
}

static int set_repeated(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                        ProtobufCMessage *msg, const json_t *v, struct jctx *c)
{
    if (!json_is_array(v))
        return fail(c, d, f->name, "expected an array");
    size_t n = json_array_size(v), size = elem_size(f->type);
    char *arr = cascade_arena_calloc(c->arena, n ? n : 1, size);
    if (!arr)
        return fail(c, d, f->name, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int rc = set_one(d, f, arr + i * size, json_array_get(v, i), c);
        if (rc != 0)
            return rc;
    }
    *(size_t *)((char *)msg + f->quantifier_offset) = n;
    *(void **)((char *)msg + f->offset) = arr;
    return 0;
}

static int set_field(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                     ProtobufCMessage *msg, const json_t *v, struct jctx *c)
{
    if (json_is_null(v))
        return 0; /* proto3 JSON: null means the default */
    if (is_map(f)) {
        if (!json_is_object(v))
            return fail(c, d, f->name, "expected an object (a map)");
        return set_map(d, f, msg, v, c);
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return set_repeated(d, f, msg, v, c);
    int rc = set_one(d, f, (char *)msg + f->offset, v, c);
    if (rc != 0)
        return rc;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        *(uint32_t *)((char *)msg + f->quantifier_offset) = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_MESSAGE) {
        *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
    }
    return 0;
}

static int build(const ProtobufCMessageDescriptor *d, const json_t *obj, struct jctx *c,
                 ProtobufCMessage **out)
{
    ProtobufCMessage *msg = cascade_arena_calloc(c->arena, 1, d->sizeof_message);
    if (!msg) {
        snprintf(c->err, c->errlen, "%s: out of memory", d->name);
        return CASCADE_ENOMEM;
    }
    protobuf_c_message_init(d, msg);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const ProtobufCFieldDescriptor *f = find_field(d, key);
        if (!f) {
            snprintf(c->err, c->errlen, "%s has no field \"%s\"", d->name, key);
            return CASCADE_EINVAL;
        }
        int rc = set_field(d, f, msg, v, c);
        if (rc != 0)
            return rc;
    }
    *out = msg;
    return 0;
}

int cascade_load_json_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json,
                                 cascade_arena *arena, ProtobufCMessage **out, char *err,
                                 size_t errlen)
{
    struct jctx c = {.arena = arena, .err = err, .errlen = errlen};
    if (!json_is_object(json)) {
        snprintf(err, errlen, "call data must be a JSON object for %s", desc->name);
        return CASCADE_EINVAL;
    }
    return build(desc, json, &c, out);
}
