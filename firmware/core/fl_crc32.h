/* CRC-32/ISO-HDLC (the CRC of zlib, Ethernet, PNG): poly 0x04C11DB7 reflected (0xEDB88320),
 * init 0xFFFFFFFF, refin = refout = true, xorout 0xFFFFFFFF, check("123456789") = 0xCBF43926.
 * Incremental like zlib.crc32: start with crc = 0 and feed the previous result back in. */
#ifndef FL_CRC32_H
#define FL_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t fl_crc32(uint32_t crc, const uint8_t *data, size_t len);

#endif
