#include "fl_frame.h"

#include "fl_crc32.h"

enum fl_parse fl_frame_parse(const uint8_t *raw, size_t len, struct fl_header *hdr,
                             const uint8_t **payload)
{
    if (len < FL_HEADER_LEN + FL_CRC_LEN) {
        return FL_PARSE_SHORT;
    }
    size_t body = len - FL_CRC_LEN;
    if (fl_crc32(0u, raw, body) != fl_get_u32(raw + body)) {
        return FL_PARSE_BAD_CRC;
    }
    hdr->version = raw[0];
    hdr->command = raw[1];
    hdr->status = raw[2];
    hdr->flags = raw[3];
    hdr->seq = fl_get_u16(raw + 4);
    hdr->length = fl_get_u16(raw + 6);
    *payload = raw + FL_HEADER_LEN;
    if (hdr->version != FL_PROTOCOL_VERSION) {
        return FL_PARSE_BAD_VERSION;
    }
    if ((size_t)hdr->length != body - FL_HEADER_LEN) {
        return FL_PARSE_BAD_LENGTH;
    }
    return FL_PARSE_OK;
}

size_t fl_frame_build(const struct fl_header *hdr, const uint8_t *payload, size_t payload_len,
                      uint8_t *scratch, uint8_t *out, size_t cap)
{
    if (payload_len > FL_MAX_PAYLOAD) {
        return 0u;
    }
    scratch[0] = hdr->version;
    scratch[1] = hdr->command;
    scratch[2] = hdr->status;
    scratch[3] = hdr->flags;
    fl_put_u16(scratch + 4, hdr->seq);
    fl_put_u16(scratch + 6, (uint16_t)payload_len);
    for (size_t i = 0; i < payload_len; i++) {
        scratch[FL_HEADER_LEN + i] = payload[i];
    }
    size_t body = FL_HEADER_LEN + payload_len;
    fl_put_u32(scratch + body, fl_crc32(0u, scratch, body));
    if (cap < 1u) {
        return 0u;
    }
    size_t n = fl_cobs_encode(scratch, body + FL_CRC_LEN, out, cap - 1u);
    if (n == 0u) {
        return 0u;
    }
    out[n] = 0u;
    return n + 1u;
}

void fl_rx_init(struct fl_rx *rx)
{
    rx->len = 0u;
    rx->overflow = false;
    rx->last_ms = 0u;
}

enum fl_rx_event fl_rx_push(struct fl_rx *rx, uint8_t byte, uint32_t now_ms)
{
    rx->last_ms = now_ms;
    if (byte == 0u) {
        if (rx->overflow) {
            rx->overflow = false;
            rx->len = 0u;
            return FL_RX_OVERSIZE;
        }
        return rx->len > 0u ? FL_RX_FRAME : FL_RX_NONE; /* empty frames are ignored */
    }
    if (rx->overflow) {
        return FL_RX_NONE;
    }
    if (rx->len >= sizeof rx->buf) {
        rx->overflow = true;
        return FL_RX_NONE;
    }
    rx->buf[rx->len++] = byte;
    return FL_RX_NONE;
}

void fl_rx_done(struct fl_rx *rx)
{
    rx->len = 0u;
    rx->overflow = false;
}

bool fl_rx_poll(struct fl_rx *rx, uint32_t now_ms)
{
    if ((rx->len > 0u || rx->overflow) && (uint32_t)(now_ms - rx->last_ms) >= FL_RX_IDLE_TIMEOUT_MS) {
        rx->len = 0u;
        rx->overflow = false;
        return true;
    }
    return false;
}
