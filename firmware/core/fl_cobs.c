#include "fl_cobs.h"

size_t fl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t code_pos = 0; /* where the current block's code byte goes */
    size_t o = 1;        /* next output position */
    uint8_t code = 1;    /* 1 + number of data bytes in the current block */

    if (cap == 0u) {
        return 0u;
    }
    for (size_t i = 0; i < len; i++) {
        if (in[i] == 0u) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
            if (code_pos >= cap) {
                return 0u;
            }
        } else {
            if (o >= cap) {
                return 0u;
            }
            out[o++] = in[i];
            code++;
            /* a full block of 254 data bytes ends without an implied zero; a new block only
             * starts if more input follows */
            if (code == 0xFFu && i + 1u < len) {
                out[code_pos] = code;
                code_pos = o++;
                code = 1;
                if (code_pos >= cap) {
                    return 0u;
                }
            }
        }
    }
    out[code_pos] = code;
    return o;
}

long fl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t i = 0;
    size_t o = 0;

    while (i < len) {
        uint8_t code = in[i++];
        if (code == 0u) {
            return -1;
        }
        size_t run = (size_t)code - 1u;
        if (run > len - i || run > cap - o) {
            return -1;
        }
        for (size_t k = 0; k < run; k++) {
            if (in[i] == 0u) {
                return -1;
            }
            out[o++] = in[i++];
        }
        /* a block shorter than 254 data bytes stands for a zero, except at the very end */
        if (code != 0xFFu && i < len) {
            if (o >= cap) {
                return -1;
            }
            out[o++] = 0u;
        }
    }
    return (long)o;
}
