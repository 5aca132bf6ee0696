/* Decimal text of unsigned integers (decimal.h): two digits per division,
 * written backwards into a scratch buffer and copied to the front. */
#include "decimal.h"

#include <string.h>

static const char pairs[201] = "00010203040506070809"
                               "10111213141516171819"
                               "20212223242526272829"
                               "30313233343536373839"
                               "40414243444546474849"
                               "50515253545556575859"
                               "60616263646566676869"
                               "70717273747576777879"
                               "80818283848586878889"
                               "90919293949596979899";

size_t cascade_decimal_u64(char *buf, uint64_t v)
{
    char tmp[CASCADE_DECIMAL_U64_MAX];
    char *p = tmp + sizeof tmp;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = pairs[d + 1];
        *--p = pairs[d];
    }
    if (v >= 10) {
        unsigned d = (unsigned)v * 2;
        *--p = pairs[d + 1];
        *--p = pairs[d];
    } else {
        *--p = (char)('0' + v);
    }
    size_t len = (size_t)(tmp + sizeof tmp - p);
    memcpy(buf, p, len);
    buf[len] = '\0';
    return len;
}
