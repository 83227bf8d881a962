#include "fl_crc32.h"

/* Nibble-wise table: 16 entries of 32 bits, two lookups per byte. Entry k is the reflected
 * CRC register after shifting in the 4-bit value k (polynomial 0xEDB88320). */
static const uint32_t nibble_table[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
    0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t fl_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    uint32_t reg = ~crc;
    for (size_t i = 0; i < len; i++) {
        reg ^= data[i];
        reg = (reg >> 4) ^ nibble_table[reg & 0x0Fu];
        reg = (reg >> 4) ^ nibble_table[reg & 0x0Fu];
    }
    return ~reg;
}
