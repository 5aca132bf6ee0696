/* gRPC server reflection answered from a serialized FileDescriptorSet (see
 * reflection.h). The set is read with a small protobuf wire-format walker
 * over the few descriptor.proto fields reflection needs (names, package,
 * imports, nested declarations, extensions); each file's answer is its own
 * bytes inside the set, so what a client gets is exactly what protoc wrote. */
#include <grpc/status.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "reflection.h"

/* Nesting deeper than this (messages in messages) is refused as malformed. */
#define MAX_DEPTH 32

/* descriptor.proto field numbers used here. */
enum {
    FILE_NAME = 1,
    FILE_PACKAGE = 2,
    FILE_DEPENDENCY = 3,
    FILE_MESSAGE = 4,
    FILE_ENUM = 5,
    FILE_SERVICE = 6,
    FILE_EXTENSION = 7,
    MSG_NAME = 1,
    MSG_FIELD = 2,
    MSG_NESTED = 3,
    MSG_ENUM = 4,
    MSG_EXTENSION = 6,
    MSG_ONEOF = 8,
    FIELD_NAME = 1,
    FIELD_EXTENDEE = 2,
    FIELD_NUMBER = 3,
    ENUM_NAME = 1,
    ENUM_VALUE = 2,
    SERVICE_NAME = 1,
    SERVICE_METHOD = 2,
    NAME_ONLY = 1 /* EnumValue, Method, Oneof: field 1 is the name */
};

struct refl_file {
    const uint8_t *data; /* the serialized FileDescriptorProto, inside the set */
    size_t len;
    char *name;
    size_t *deps; /* indices into files */
    size_t n_deps;
};

struct refl_symbol {
    char *name; /* fully qualified, no leading dot */
    size_t file;
};

struct refl_extension {
    char *extendee; /* fully qualified, no leading dot */
    int32_t number;
    size_t file;
};

struct cascade_reflection {
    struct refl_file *files;
    size_t n_files;
    struct refl_symbol *symbols;
    size_t n_symbols, cap_symbols;
    struct refl_extension *extensions;
    size_t n_extensions, cap_extensions;
    char **services;
    size_t n_services;
};

/* ------------------------------------------------------------ wire format */

struct wire {
    const uint8_t *p, *end;
};

struct wire_field {
    uint32_t number;
    int type;            /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    const uint8_t *data; /* type 2 */
    size_t len;          /* type 2 */
    uint64_t varint;     /* type 0 */
};

static int wire_varint(struct wire *w, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end)
            return -1;
        uint8_t b = *w->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* The next field: 1 with *f filled, 0 at the end, -1 when malformed (a
 * truncated field, a group, an unknown wire type). */
static int wire_next(struct wire *w, struct wire_field *f)
{
    uint64_t key, len;
    if (w->p == w->end)
        return 0;
    if (wire_varint(w, &key) != 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return -1;
    f->number = (uint32_t)(key >> 3);
    f->type = (int)(key & 7);
    switch (f->type) {
    case 0:
        return wire_varint(w, &f->varint) == 0 ? 1 : -1;
    case 1:
    case 5: {
        size_t n = f->type == 1 ? 8 : 4;
        if ((size_t)(w->end - w->p) < n)
            return -1;
        w->p += n;
        return 1;
    }
    case 2:
        if (wire_varint(w, &len) != 0 || len > (uint64_t)(w->end - w->p))
            return -1;
        f->data = w->p;
        f->len = (size_t)len;
        w->p += len;
        return 1;
    default:
        return -1;
    }
}

/* The first length-delimited field `number` of a message as a malloc'ed
 * string ("" when absent). NULL when malformed or out of memory. */
static char *wire_string(const uint8_t *data, size_t len, uint32_t number)
{
    struct wire w = {data, data + len};
    struct wire_field f = {0};
    int rc;
    while ((rc = wire_next(&w, &f)) == 1) {
        if (f.number == number && f.type == 2) {
            char *s = malloc(f.len + 1);
            if (s) {
                memcpy(s, f.data, f.len);
                s[f.len] = '\0';
            }
            return s;
        }
    }
    return rc == 0 ? strdup("") : NULL;
}

/* ---------------------------------------------------------------- indexing */

static char *join_name(const char *scope, const char *name)
{
    size_t ls = strlen(scope), ln = strlen(name);
    char *s = malloc(ls + ln + 2);
    if (!s)
        return NULL;
    if (ls) {
        memcpy(s, scope, ls);
        s[ls] = '.';
        memcpy(s + ls + 1, name, ln + 1);
    } else {
        memcpy(s, name, ln + 1);
    }
    return s;
}

/* Record `scope.name` as defined by `file`; takes nothing, copies both. */
static int add_symbol(cascade_reflection *r, const char *scope, const char *name, size_t file)
{
    if (r->n_symbols == r->cap_symbols) {
        size_t cap = r->cap_symbols ? 2 * r->cap_symbols : 64;
        struct refl_symbol *grown = realloc(r->symbols, cap * sizeof(*grown));
        if (!grown)
            return -1;
        r->symbols = grown;
        r->cap_symbols = cap;
    }
    char *full = join_name(scope, name);
    if (!full)
        return -1;
    r->symbols[r->n_symbols++] = (struct refl_symbol){full, file};
    return 0;
}

/* Index one declaration whose name is field `name_field` of `data` as
 * scope.name; *full_out (optional) receives a malloc'ed copy of the full name
 * for its children's scope. */
static int index_named(cascade_reflection *r, const uint8_t *data, size_t len, uint32_t name_field,
                       const char *scope, size_t file, char **full_out)
{
    int rc = -1;
    char *name = wire_string(data, len, name_field);
    if (!name || !name[0])
        goto out;
    if (add_symbol(r, scope, name, file) != 0)
        goto out;
    if (full_out && !(*full_out = join_name(scope, name)))
        goto out;
    rc = 0;
out:
    free(name);
    return rc;
}

/* An extension field: its name as a symbol, and (extendee, number). */
static int index_extension(cascade_reflection *r, const uint8_t *data, size_t len,
                           const char *scope, size_t file)
{
    int rc = -1;
    char *extendee = NULL;
    struct wire w = {data, data + len};
    struct wire_field f = {0};
    int64_t number = -1;
    if (index_named(r, data, len, FIELD_NAME, scope, file, NULL) != 0)
        goto out;
    if (!(extendee = wire_string(data, len, FIELD_EXTENDEE)))
        goto out;
    while ((rc = wire_next(&w, &f)) == 1)
        if (f.number == FIELD_NUMBER && f.type == 0)
            number = (int64_t)(int32_t)f.varint;
    if (rc != 0 || number < 0)
        goto fail;
    if (r->n_extensions == r->cap_extensions) {
        size_t cap = r->cap_extensions ? 2 * r->cap_extensions : 8;
        struct refl_extension *grown = realloc(r->extensions, cap * sizeof(*grown));
        if (!grown)
            goto fail;
        r->extensions = grown;
        r->cap_extensions = cap;
    }
    /* protoc writes the extendee fully qualified with a leading dot. */
    char *plain = strdup(extendee[0] == '.' ? extendee + 1 : extendee);
    if (!plain)
        goto fail;
    r->extensions[r->n_extensions++] = (struct refl_extension){plain, (int32_t)number, file};
    rc = 0;
    goto out;
fail:
    rc = -1;
out:
    free(extendee);
    return rc;
}

/* An enum: its name, and its values in the enum's enclosing scope (as
 * protobuf scopes them). */
static int index_enum(cascade_reflection *r, const uint8_t *data, size_t len, const char *scope,
                      size_t file)
{
    struct wire w = {data, data + len};
    struct wire_field f = {0};
    int rc;
    if (index_named(r, data, len, ENUM_NAME, scope, file, NULL) != 0)
        return -1;
    while ((rc = wire_next(&w, &f)) == 1)
        if (f.number == ENUM_VALUE && f.type == 2 &&
            index_named(r, f.data, f.len, NAME_ONLY, scope, file, NULL) != 0)
            return -1;
    return rc;
}

/* A message: its name, fields, oneofs, nested messages and enums, extensions. */
static int index_message(cascade_reflection *r, const uint8_t *data, size_t len, const char *scope,
                         size_t file, int depth)
{
    int rc = -1;
    char *full = NULL;
    struct wire w = {data, data + len};
    struct wire_field f = {0};
    if (depth > MAX_DEPTH || index_named(r, data, len, MSG_NAME, scope, file, &full) != 0)
        goto out;
    while ((rc = wire_next(&w, &f)) == 1) {
        if (f.type != 2)
            continue;
        int sub = 0;
        if (f.number == MSG_FIELD || f.number == MSG_ONEOF)
            sub = index_named(r, f.data, f.len, NAME_ONLY, full, file, NULL);
        else if (f.number == MSG_NESTED)
            sub = index_message(r, f.data, f.len, full, file, depth + 1);
        else if (f.number == MSG_ENUM)
            sub = index_enum(r, f.data, f.len, full, file);
        else if (f.number == MSG_EXTENSION)
            sub = index_extension(r, f.data, f.len, full, file);
        if (sub != 0) {
            rc = -1;
            goto out;
        }
    }
out:
    free(full);
    return rc;
}

/* A service and its methods (Service.Method). */
static int index_service(cascade_reflection *r, const uint8_t *data, size_t len, const char *scope,
                         size_t file)
{
    int rc = -1;
    char *full = NULL;
    struct wire w = {data, data + len};
    struct wire_field f = {0};
    if (index_named(r, data, len, SERVICE_NAME, scope, file, &full) != 0)
        goto out;
    while ((rc = wire_next(&w, &f)) == 1) {
        if (f.number == SERVICE_METHOD && f.type == 2 &&
            index_named(r, f.data, f.len, NAME_ONLY, full, file, NULL) != 0) {
            rc = -1;
            goto out;
        }
    }
out:
    free(full);
    return rc;
}

static ssize_t find_file(const cascade_reflection *r, const char *name)
{
    for (size_t i = 0; i < r->n_files; i++)
        if (strcmp(r->files[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

/* Index file i: its declarations, and its imports as file indices (every
 * file of the set is known by now). */
static int index_file(cascade_reflection *r, size_t i, char *err, size_t errlen)
{
    struct refl_file *file = &r->files[i];
    char *package = wire_string(file->data, file->len, FILE_PACKAGE);
    struct wire w = {file->data, file->data + file->len};
    struct wire_field f = {0};
    int rc = -1;
    if (!package) {
        snprintf(err, errlen, "descriptor set: %s: malformed", file->name);
        goto out;
    }
    while ((rc = wire_next(&w, &f)) == 1) {
        if (f.type != 2)
            continue;
        int sub = 0;
        if (f.number == FILE_DEPENDENCY) {
            char dep[512];
            if (f.len >= sizeof dep) {
                snprintf(err, errlen, "descriptor set: %s: import name too long", file->name);
                rc = -1;
                goto out;
            }
            memcpy(dep, f.data, f.len);
            dep[f.len] = '\0';
            ssize_t j = find_file(r, dep);
            if (j < 0) {
                snprintf(err, errlen,
                         "descriptor set: %s imports %s, which the set does not contain "
                         "(build it with --include_imports)",
                         file->name, dep);
                rc = -1;
                goto out;
            }
            size_t *grown = realloc(file->deps, (file->n_deps + 1) * sizeof(*grown));
            if (!grown) {
                snprintf(err, errlen, "descriptor set: out of memory");
                rc = -1;
                goto out;
            }
            file->deps = grown;
            file->deps[file->n_deps++] = (size_t)j;
        } else if (f.number == FILE_MESSAGE) {
            sub = index_message(r, f.data, f.len, package, i, 0);
        } else if (f.number == FILE_ENUM) {
            sub = index_enum(r, f.data, f.len, package, i);
        } else if (f.number == FILE_SERVICE) {
            sub = index_service(r, f.data, f.len, package, i);
        } else if (f.number == FILE_EXTENSION) {
            sub = index_extension(r, f.data, f.len, package, i);
        }
        if (sub != 0) {
            snprintf(err, errlen, "descriptor set: %s: malformed declaration or out of memory",
                     file->name);
            rc = -1;
            goto out;
        }
    }
    if (rc != 0)
        snprintf(err, errlen, "descriptor set: %s: truncated or malformed field", file->name);
out:
    free(package);
    return rc;
}

/* Split the set into its files (field 1 of FileDescriptorSet) and name them. */
static int split_files(cascade_reflection *r, const uint8_t *set, size_t len, char *err,
                       size_t errlen)
{
    struct wire w = {set, set + len};
    struct wire_field f = {0};
    int rc;
    while ((rc = wire_next(&w, &f)) == 1) {
        if (f.number != 1 || f.type != 2)
            continue;
        struct refl_file *grown = realloc(r->files, (r->n_files + 1) * sizeof(*grown));
        if (!grown) {
            snprintf(err, errlen, "descriptor set: out of memory");
            return -1;
        }
        r->files = grown;
        struct refl_file *file = &r->files[r->n_files];
        memset(file, 0, sizeof(*file));
        file->data = f.data;
        file->len = f.len;
        file->name = wire_string(f.data, f.len, FILE_NAME);
        r->n_files++;
        if (!file->name || !file->name[0]) {
            snprintf(err, errlen, "descriptor set: file %zu has no name or is malformed",
                     r->n_files);
            return -1;
        }
    }
    if (rc != 0 || r->n_files == 0) {
        snprintf(err, errlen, "descriptor set: %s",
                 rc != 0 ? "truncated or malformed" : "holds no file");
        return -1;
    }
    return 0;
}

cascade_reflection *cascade_reflection_create(const uint8_t *set, size_t len,
                                              const char *const *services, size_t n_services,
                                              char *err, size_t errlen)
{
    cascade_reflection *r = calloc(1, sizeof(*r));
    if (!r || !(r->services = calloc(n_services ? n_services : 1, sizeof(char *)))) {
        snprintf(err, errlen, "reflection: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_services; i++) {
        if (!(r->services[i] = strdup(services[i]))) {
            snprintf(err, errlen, "reflection: out of memory");
            goto fail;
        }
        r->n_services++;
    }
    if (!set || split_files(r, set, len, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < r->n_files; i++)
        if (index_file(r, i, err, errlen) != 0)
            goto fail;
    return r;
fail:
    cascade_reflection_destroy(r);
    return NULL;
}

void cascade_reflection_destroy(cascade_reflection *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].name);
        free(r->files[i].deps);
    }
    for (size_t i = 0; i < r->n_symbols; i++)
        free(r->symbols[i].name);
    for (size_t i = 0; i < r->n_extensions; i++)
        free(r->extensions[i].extendee);
    for (size_t i = 0; i < r->n_services; i++)
        free(r->services[i]);
    free(r->files);
    free(r->symbols);
    free(r->extensions);
    free(r->services);
    free(r);
}

size_t cascade_reflection_n_files(const cascade_reflection *r)
{
    return r ? r->n_files : 0;
}

size_t cascade_reflection_n_symbols(const cascade_reflection *r)
{
    return r ? r->n_symbols : 0;
}

/* ----------------------------------------------------------------- answers */

static ssize_t find_symbol(const cascade_reflection *r, const char *name)
{
    /* Clients may send the fully-qualified name with protobuf's leading dot. */
    if (name[0] == '.')
        name++;
    for (size_t i = 0; i < r->n_symbols; i++)
        if (strcmp(r->symbols[i].name, name) == 0)
            return (ssize_t)r->symbols[i].file;
    return -1;
}

static int answer_error(Grpc__Reflection__V1__ServerReflectionResponse *resp, cascade_arena *arena,
                        grpc_status_code code, const char *message)
{
    Grpc__Reflection__V1__ErrorResponse *e = cascade_arena_alloc(arena, sizeof(*e));
    char *msg = cascade_arena_strdup(arena, message);
    if (!e || !msg)
        return -1;
    grpc__reflection__v1__error_response__init(e);
    e->error_code = (int32_t)code;
    e->error_message = msg;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    resp->error_response = e;
    return 0;
}

/* Append file i, then (depth first) every file it imports not yet listed. */
static void collect_files(const cascade_reflection *r, size_t i, bool *seen, size_t *order,
                          size_t *n)
{
    if (seen[i])
        return;
    seen[i] = true;
    order[(*n)++] = i;
    for (size_t d = 0; d < r->files[i].n_deps; d++)
        collect_files(r, r->files[i].deps[d], seen, order, n);
}

static int answer_file(const cascade_reflection *r,
                       Grpc__Reflection__V1__ServerReflectionResponse *resp, cascade_arena *arena,
                       size_t file)
{
    bool *seen = cascade_arena_calloc(arena, r->n_files, sizeof(*seen));
    size_t *order = cascade_arena_calloc(arena, r->n_files, sizeof(*order));
    Grpc__Reflection__V1__FileDescriptorResponse *fd = cascade_arena_alloc(arena, sizeof(*fd));
    size_t n = 0;
    if (!seen || !order || !fd)
        return -1;
    collect_files(r, file, seen, order, &n);
    grpc__reflection__v1__file_descriptor_response__init(fd);
    fd->file_descriptor_proto = cascade_arena_calloc(arena, n, sizeof(ProtobufCBinaryData));
    if (!fd->file_descriptor_proto)
        return -1;
    for (size_t k = 0; k < n; k++) {
        fd->file_descriptor_proto[k].data = (uint8_t *)r->files[order[k]].data;
        fd->file_descriptor_proto[k].len = r->files[order[k]].len;
    }
    fd->n_file_descriptor_proto = n;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    resp->file_descriptor_response = fd;
    return 0;
}

static int answer_services(const cascade_reflection *r,
                           Grpc__Reflection__V1__ServerReflectionResponse *resp,
                           cascade_arena *arena)
{
    Grpc__Reflection__V1__ListServiceResponse *list = cascade_arena_alloc(arena, sizeof(*list));
    if (!list)
        return -1;
    grpc__reflection__v1__list_service_response__init(list);
    list->service =
        cascade_arena_calloc(arena, r->n_services ? r->n_services : 1, sizeof(*list->service));
    if (!list->service)
        return -1;
    for (size_t i = 0; i < r->n_services; i++) {
        Grpc__Reflection__V1__ServiceResponse *s = cascade_arena_alloc(arena, sizeof(*s));
        if (!s)
            return -1;
        grpc__reflection__v1__service_response__init(s);
        s->name = r->services[i];
        list->service[i] = s;
    }
    list->n_service = r->n_services;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    resp->list_services_response = list;
    return 0;
}

static int answer_extension_numbers(const cascade_reflection *r,
                                    Grpc__Reflection__V1__ServerReflectionResponse *resp,
                                    cascade_arena *arena, const char *type)
{
    const char *plain = type[0] == '.' ? type + 1 : type;
    Grpc__Reflection__V1__ExtensionNumberResponse *en = cascade_arena_alloc(arena, sizeof(*en));
    if (!en)
        return -1;
    grpc__reflection__v1__extension_number_response__init(en);
    en->base_type_name = (char *)type;
    en->extension_number =
        cascade_arena_calloc(arena, r->n_extensions ? r->n_extensions : 1, sizeof(int32_t));
    if (!en->extension_number)
        return -1;
    for (size_t i = 0; i < r->n_extensions; i++)
        if (strcmp(r->extensions[i].extendee, plain) == 0)
            en->extension_number[en->n_extension_number++] = r->extensions[i].number;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
    resp->all_extension_numbers_response = en;
    return 0;
}

static ssize_t find_extension(const cascade_reflection *r, const char *type, int32_t number)
{
    const char *plain = type[0] == '.' ? type + 1 : type;
    for (size_t i = 0; i < r->n_extensions; i++)
        if (r->extensions[i].number == number && strcmp(r->extensions[i].extendee, plain) == 0)
            return (ssize_t)r->extensions[i].file;
    return -1;
}

Grpc__Reflection__V1__ServerReflectionResponse *
cascade_reflection_answer(const cascade_reflection *r,
                          const Grpc__Reflection__V1__ServerReflectionRequest *req,
                          cascade_arena *arena)
{
    Grpc__Reflection__V1__ServerReflectionResponse *resp =
        cascade_arena_alloc(arena, sizeof(*resp));
    const char *missing = NULL;
    ssize_t file = -1;
    int rc = -1;
    if (!resp)
        return NULL;
    grpc__reflection__v1__server_reflection_response__init(resp);
    resp->valid_host = req->host ? req->host : "";
    resp->original_request = (Grpc__Reflection__V1__ServerReflectionRequest *)req;

    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        file = find_file(r, req->file_by_filename);
        if (file < 0)
            missing = cascade_arena_printf(arena, "file \"%s\" not found", req->file_by_filename);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        file = find_symbol(r, req->file_containing_symbol);
        if (file < 0)
            missing =
                cascade_arena_printf(arena, "symbol \"%s\" not found", req->file_containing_symbol);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
        const Grpc__Reflection__V1__ExtensionRequest *x = req->file_containing_extension;
        const char *type = x && x->containing_type ? x->containing_type : "";
        int32_t number = x ? x->extension_number : 0;
        file = find_extension(r, type, number);
        if (file < 0)
            missing = cascade_arena_printf(arena, "extension %d of \"%s\" not found", number, type);
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        if (find_symbol(r, req->all_extension_numbers_of_type) < 0) {
            missing = cascade_arena_printf(arena, "type \"%s\" not found",
                                           req->all_extension_numbers_of_type);
            break;
        }
        rc = answer_extension_numbers(r, resp, arena, req->all_extension_numbers_of_type);
        return rc == 0 ? resp : NULL;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        return answer_services(r, resp, arena) == 0 ? resp : NULL;
    default:
        rc = answer_error(resp, arena, GRPC_STATUS_INVALID_ARGUMENT,
                          "the request asks nothing (set one of file_by_filename, "
                          "file_containing_symbol, file_containing_extension, "
                          "all_extension_numbers_of_type, list_services)");
        return rc == 0 ? resp : NULL;
    }
    if (file < 0)
        rc = answer_error(resp, arena, GRPC_STATUS_NOT_FOUND, missing ? missing : "not found");
    else
        rc = answer_file(r, resp, arena, (size_t)file);
    return rc == 0 ? resp : NULL;
}
