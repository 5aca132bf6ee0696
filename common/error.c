/* Error codes: their messages and the single table mapping them to gRPC status
 * codes. CASCADE_EIO maps to INTERNAL, not UNAVAILABLE: it is raised for file
 * and protocol errors on our side; an unreachable dependency is EUNAVAILABLE. */
#include "error.h"

#include <stddef.h>

struct error_entry {
    int code;
    const char *message;
    grpc_status_code status;
};

static const struct error_entry error_table[] = {
    {CASCADE_OK, "ok", GRPC_STATUS_OK},
    {CASCADE_EINVAL, "invalid argument", GRPC_STATUS_INVALID_ARGUMENT},
    {CASCADE_ENOMEM, "out of memory", GRPC_STATUS_RESOURCE_EXHAUSTED},
    {CASCADE_EIO, "input/output error", GRPC_STATUS_INTERNAL},
    {CASCADE_EUNAVAILABLE, "service unavailable", GRPC_STATUS_UNAVAILABLE},
    {CASCADE_ETIMEDOUT, "deadline exceeded", GRPC_STATUS_DEADLINE_EXCEEDED},
    {CASCADE_ETOOBIG, "too big", GRPC_STATUS_RESOURCE_EXHAUSTED},
    {CASCADE_ENOTFOUND, "not found", GRPC_STATUS_NOT_FOUND},
    {CASCADE_EFORMAT, "malformed data", GRPC_STATUS_INVALID_ARGUMENT},
    {CASCADE_ECANCELLED, "cancelled", GRPC_STATUS_CANCELLED},
    {CASCADE_EUNIMPLEMENTED, "not implemented", GRPC_STATUS_UNIMPLEMENTED},
    {CASCADE_EINTERNAL, "internal error", GRPC_STATUS_INTERNAL},
    {CASCADE_EDATA, "the data does not support this model", GRPC_STATUS_FAILED_PRECONDITION},
};

static const struct error_entry *error_find(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
        if (error_table[i].code == code)
            return &error_table[i];
    }
    return NULL;
}

const char *cascade_strerror(int code)
{
    const struct error_entry *e = error_find(code);
    return e ? e->message : "unknown error";
}

grpc_status_code cascade_error_to_grpc(int code)
{
    const struct error_entry *e = error_find(code);
    /* An unknown code is a bug somewhere, which is what INTERNAL means. */
    return e ? e->status : GRPC_STATUS_INTERNAL;
}

const char *cascade_grpc_status_name(grpc_status_code code)
{
    static const char *const names[] = {
        [GRPC_STATUS_OK] = "OK",
        [GRPC_STATUS_CANCELLED] = "CANCELLED",
        [GRPC_STATUS_UNKNOWN] = "UNKNOWN",
        [GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
        [GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
        [GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
        [GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
        [GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
        [GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
        [GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
        [GRPC_STATUS_ABORTED] = "ABORTED",
        [GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
        [GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
        [GRPC_STATUS_INTERNAL] = "INTERNAL",
        [GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
        [GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
        [GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
    };
    if ((int)code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]) || !names[code])
        return "UNKNOWN";
    return names[code];
}
