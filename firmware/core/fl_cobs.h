/* Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999). The encoded form contains no 0x00
 * byte; the link puts one 0x00 after each encoded frame as its delimiter (not produced here). */
#ifndef FL_COBS_H
#define FL_COBS_H

#include <stddef.h>
#include <stdint.h>

/* Worst-case encoded length of n input bytes: n + ceil(n / 254), at least 1. */
#define FL_COBS_MAX_ENCODED(n) ((n) + ((n) + 253u) / 254u + ((n) == 0u ? 1u : 0u))

/* Encodes `len` bytes into `out` (capacity `cap`). Returns the encoded length (>= 1),
 * or 0 when `out` is too small. */
size_t fl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* Decodes `len` encoded bytes (without the 0x00 delimiter) into `out` (capacity `cap`).
 * Returns the decoded length, or -1 when the input is not valid COBS (a 0x00 byte, a code byte
 * pointing past the end) or `out` is too small. `out` may not overlap `in`. */
long fl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

#endif
