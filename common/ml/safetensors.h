/* safetensors files (8-byte little-endian header length, JSON header, raw
 * little-endian tensor data), so PyTorch/NumPy read and write our models.
 * Only F32 tensors are produced; reading rejects unknown dtypes, offsets
 * outside the file and truncated files with a clear message. */
#ifndef CASCADE_SAFETENSORS_H
#define CASCADE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define CASCADE_ST_MAX_DIMS 4

struct cascade_tensor {
    const char *name; /* borrowed */
    int ndim;
    int64_t shape[CASCADE_ST_MAX_DIMS];
    const float *data; /* borrowed; product(shape) floats */
};

/* Write tensors to path atomically (path.tmp + fsync + rename). metadata is an
 * optional list of string key/value pairs (n_meta pairs: keys[i] -> values[i])
 * stored under "__metadata__". Returns 0 or a negative code with err. */
int cascade_safetensors_write(const char *path, const struct cascade_tensor *tensors, size_t n,
                              const char *const *meta_keys, const char *const *meta_values,
                              size_t n_meta, char *err, size_t errlen);

typedef struct cascade_safetensors cascade_safetensors;

/* Read a whole file. NULL on failure with "path: reason" in err. */
cascade_safetensors *cascade_safetensors_read(const char *path, char *err, size_t errlen);
void cascade_safetensors_destroy(cascade_safetensors *st);

/* Find a tensor by name; NULL when absent. The result and its data are owned by st. */
const struct cascade_tensor *cascade_safetensors_find(const cascade_safetensors *st,
                                                      const char *name);
/* A metadata value, or NULL. Owned by st. */
const char *cascade_safetensors_meta(const cascade_safetensors *st, const char *key);

#endif
