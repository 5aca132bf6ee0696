/* Error codes shared by every Cascade module, their messages, and the one
 * table that maps them to gRPC status codes. Functions return 0 on success
 * and a negative CASCADE_E* code on failure. */
#ifndef CASCADE_ERROR_H
#define CASCADE_ERROR_H

#include <grpc/status.h>

enum cascade_error {
    CASCADE_OK = 0,
    CASCADE_EINVAL = -1,       /* bad input from the caller */
    CASCADE_ENOMEM = -2,       /* allocation failed */
    CASCADE_EIO = -3,          /* file or socket error */
    CASCADE_EUNAVAILABLE = -4, /* a dependency (Redis, a stage) cannot be reached */
    CASCADE_ETIMEDOUT = -5,    /* the deadline passed */
    CASCADE_ETOOBIG = -6,      /* input larger than the configured limit */
    CASCADE_ENOTFOUND = -7,    /* a key, file or record does not exist */
    CASCADE_EFORMAT = -8,      /* malformed bytes or file contents */
    CASCADE_ECANCELLED = -9,   /* the caller went away or the server is shutting down */
    CASCADE_EUNIMPLEMENTED = -10,
    CASCADE_EINTERNAL = -11, /* a bug: an invariant did not hold */
    /* The data does not support what was asked of it: a training set with
     * constant labels or too few examples, a model no better than chance. */
    CASCADE_EDATA = -12,
};

/* Short English name of an error code ("invalid argument"); never NULL. */
const char *cascade_strerror(int code);

/* The gRPC status code a handler returning `code` answers with. */
grpc_status_code cascade_error_to_grpc(int code);

/* Name of a gRPC status code ("INVALID_ARGUMENT"); never NULL. */
const char *cascade_grpc_status_name(grpc_status_code code);

#endif
