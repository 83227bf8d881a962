/* FlipLab board protocol, framing layer (docs/protocol.md, "Framing").
 *
 * raw frame  = header (8 bytes) | payload (length bytes) | CRC-32/ISO-HDLC of header+payload (LE)
 * on the wire: COBS(raw frame) followed by one 0x00 delimiter byte. */
#ifndef FL_FRAME_H
#define FL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fl_cobs.h"

#define FL_PROTOCOL_VERSION 1u
#define FL_HEADER_LEN 8u
#define FL_CRC_LEN 4u
#define FL_MAX_CHUNK 4096u                         /* data bytes in one WRITE or READ */
#define FL_MAX_PAYLOAD (4u + FL_MAX_CHUNK)         /* WRITE: offset + data */
#define FL_MAX_RAW (FL_HEADER_LEN + FL_MAX_PAYLOAD + FL_CRC_LEN)
#define FL_MAX_ENCODED FL_COBS_MAX_ENCODED(FL_MAX_RAW) /* without the delimiter */
#define FL_RESPONSE_BIT 0x80u
#ifndef FL_RX_IDLE_TIMEOUT_MS
#define FL_RX_IDLE_TIMEOUT_MS 100u /* a partial frame idle this long is discarded */
#endif

enum fl_command {
    FL_CMD_INFO = 0x01,
    FL_CMD_WRITE = 0x02,
    FL_CMD_READ = 0x03,
    FL_CMD_ERASE = 0x04,
    FL_CMD_DIGEST = 0x05,
    FL_CMD_SET_MODE = 0x06,
    FL_CMD_STATS = 0x07,
    FL_CMD_RESET = 0x08,
};

enum fl_status {
    FL_ST_OK = 0x00,
    FL_ST_UNKNOWN_COMMAND = 0x01,
    FL_ST_BAD_LENGTH = 0x02,
    FL_ST_OUT_OF_RANGE = 0x03,
    FL_ST_BAD_VERSION = 0x04,
    FL_ST_UNSUPPORTED = 0x05,
    FL_ST_BAD_ARGUMENT = 0x06,
    FL_ST_NVM_ERROR = 0x07,
};

struct fl_header {
    uint8_t version;
    uint8_t command; /* request: enum fl_command; response: command | FL_RESPONSE_BIT */
    uint8_t status;  /* request: 0; response: enum fl_status */
    uint8_t flags;   /* reserved, sent as 0, ignored on receipt */
    uint16_t seq;
    uint16_t length; /* payload bytes */
};

/* Result of checking a decoded raw frame. */
enum fl_parse {
    FL_PARSE_OK = 0,
    FL_PARSE_SHORT,       /* fewer than header + CRC bytes: dropped */
    FL_PARSE_BAD_CRC,     /* CRC mismatch: dropped */
    FL_PARSE_BAD_VERSION, /* CRC fine, unknown version: answered with FL_ST_BAD_VERSION */
    FL_PARSE_BAD_LENGTH,  /* CRC fine, length field disagrees with the frame: FL_ST_BAD_LENGTH */
};

/* Checks a raw (COBS-decoded) frame; on success and on BAD_VERSION/BAD_LENGTH fills *hdr. */
enum fl_parse fl_frame_parse(const uint8_t *raw, size_t len, struct fl_header *hdr,
                             const uint8_t **payload);

/* Builds header+payload+CRC, COBS-encodes it and appends the 0x00 delimiter into `out`.
 * Returns the number of wire bytes, or 0 if `payload_len` > FL_MAX_PAYLOAD or `out` is short.
 * `scratch` must hold FL_MAX_RAW bytes. */
size_t fl_frame_build(const struct fl_header *hdr, const uint8_t *payload, size_t payload_len,
                      uint8_t *scratch, uint8_t *out, size_t cap);

/* Byte-stream receiver: collects encoded bytes up to each 0x00 delimiter. */
enum fl_rx_event {
    FL_RX_NONE = 0,   /* byte consumed, no frame yet */
    FL_RX_FRAME,      /* a complete encoded frame is in rx->buf[0..rx->len) */
    FL_RX_OVERSIZE,   /* a frame longer than FL_MAX_ENCODED ended: dropped */
};

struct fl_rx {
    uint8_t buf[FL_MAX_ENCODED];
    size_t len;
    bool overflow;
    uint32_t last_ms;
};

void fl_rx_init(struct fl_rx *rx);
enum fl_rx_event fl_rx_push(struct fl_rx *rx, uint8_t byte, uint32_t now_ms);
/* Empties the buffer after the caller has handled an FL_RX_FRAME. */
void fl_rx_done(struct fl_rx *rx);
/* Discards a partial frame idle for FL_RX_IDLE_TIMEOUT_MS; returns true if one was dropped. */
bool fl_rx_poll(struct fl_rx *rx, uint32_t now_ms);

static inline void fl_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void fl_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline uint16_t fl_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t fl_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t fl_get_u64(const uint8_t *p)
{
    return (uint64_t)fl_get_u32(p) | ((uint64_t)fl_get_u32(p + 4) << 32);
}

#endif
