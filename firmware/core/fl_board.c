#include "fl_board.h"

#include "fl_crc32.h"

#define INFO_LEN 32u
#define DIGEST_STEP 256u

void fl_board_init(struct fl_board *b, const struct fl_nvm *nvm, fl_write_fn write, void *ctx)
{
    b->nvm = nvm;
    b->write = write;
    b->write_ctx = ctx;
    b->extent = 0u;
    b->model = FL_MODEL_NONE;
    b->stats = (struct fl_stats){0};
    b->flips_base = nvm->ops->flips ? nvm->ops->flips(nvm->ctx) : 0u;
    fl_rx_init(&b->rx);
}

static void respond(struct fl_board *b, uint8_t command, uint16_t seq, uint8_t status,
                    size_t len)
{
    struct fl_header h = {
        .version = FL_PROTOCOL_VERSION,
        .command = (uint8_t)(command | FL_RESPONSE_BIT),
        .status = status,
        .flags = 0u,
        .seq = seq,
        .length = (uint16_t)len,
    };
    if (status != FL_ST_OK) {
        b->stats.rx_bad_requests++;
        len = 0u;
    }
    size_t n = fl_frame_build(&h, b->data, len, b->scratch, b->tx, sizeof b->tx);
    if (n > 0u) {
        b->write(b->write_ctx, b->tx, n);
        b->stats.tx_frames++;
    }
}

/* checks offset + len <= size without overflow */
static int in_range(const struct fl_nvm *nvm, uint32_t offset, uint32_t len)
{
    return offset <= nvm->size && len <= nvm->size - offset;
}

static uint8_t cmd_info(struct fl_board *b, size_t req_len, size_t *out_len)
{
    const struct fl_nvm *nvm = b->nvm;
    if (req_len != 0u) {
        return FL_ST_BAD_LENGTH;
    }
    uint8_t *d = b->data;
    d[0] = FL_PROTOCOL_VERSION;
    d[1] = nvm->word_bits;
    fl_put_u16(d + 2, nvm->caps);
    fl_put_u32(d + 4, nvm->size);
    fl_put_u32(d + 8, b->extent);
    fl_put_u32(d + 12, nvm->erase_block);
    fl_put_u16(d + 16, (uint16_t)FL_MAX_CHUNK);
    d[18] = b->model;
    d[19] = nvm->erased_value;
    for (size_t i = 0; i < sizeof nvm->name; i++) {
        d[20 + i] = (uint8_t)nvm->name[i];
    }
    *out_len = INFO_LEN;
    return FL_ST_OK;
}

static uint8_t cmd_write(struct fl_board *b, const uint8_t *p, size_t req_len)
{
    if (req_len < 5u || req_len > 4u + FL_MAX_CHUNK) {
        return FL_ST_BAD_LENGTH;
    }
    uint32_t offset = fl_get_u32(p);
    uint32_t len = (uint32_t)(req_len - 4u);
    if (!in_range(b->nvm, offset, len)) {
        return FL_ST_OUT_OF_RANGE;
    }
    int st = b->nvm->ops->write(b->nvm->ctx, offset, p + 4, len);
    if (st != FL_ST_OK) {
        return (uint8_t)st;
    }
    b->stats.bytes_written += len;
    if (offset + len > b->extent) {
        b->extent = offset + len;
    }
    return FL_ST_OK;
}

static uint8_t cmd_read(struct fl_board *b, const uint8_t *p, size_t req_len, size_t *out_len)
{
    if (req_len != 8u) {
        return FL_ST_BAD_LENGTH;
    }
    uint32_t offset = fl_get_u32(p);
    uint32_t len = fl_get_u16(p + 4);
    if (len == 0u || len > FL_MAX_CHUNK) {
        return FL_ST_BAD_ARGUMENT;
    }
    if (!in_range(b->nvm, offset, len)) {
        return FL_ST_OUT_OF_RANGE;
    }
    int st = b->nvm->ops->read(b->nvm->ctx, offset, b->data, len);
    if (st != FL_ST_OK) {
        return (uint8_t)st;
    }
    b->stats.bytes_read += len;
    *out_len = len;
    return FL_ST_OK;
}

static uint8_t cmd_erase(struct fl_board *b, const uint8_t *p, size_t req_len)
{
    if (req_len != 8u) {
        return FL_ST_BAD_LENGTH;
    }
    uint32_t offset = fl_get_u32(p);
    uint32_t len = fl_get_u32(p + 4);
    if (!in_range(b->nvm, offset, len)) {
        return FL_ST_OUT_OF_RANGE;
    }
    uint32_t blk = b->nvm->erase_block;
    if (blk > 0u && (offset % blk != 0u || len % blk != 0u)) {
        return FL_ST_BAD_ARGUMENT;
    }
    if (len > 0u) {
        int st = b->nvm->ops->erase(b->nvm->ctx, offset, len);
        if (st != FL_ST_OK) {
            return (uint8_t)st;
        }
    }
    if (offset == 0u && len == b->nvm->size) {
        b->extent = 0u;
    }
    return FL_ST_OK;
}

static uint8_t cmd_digest(struct fl_board *b, const uint8_t *p, size_t req_len, size_t *out_len)
{
    if (req_len != 12u) {
        return FL_ST_BAD_LENGTH;
    }
    uint32_t offset = fl_get_u32(p);
    uint32_t len = fl_get_u32(p + 4);
    uint8_t source = p[8];
    if (source > 1u) {
        return FL_ST_BAD_ARGUMENT;
    }
    if (!in_range(b->nvm, offset, len)) {
        return FL_ST_OUT_OF_RANGE;
    }
    int (*rd)(void *, uint32_t, uint8_t *, uint32_t) = b->nvm->ops->read;
    if (source == 0u && b->nvm->ops->read_cells != NULL) {
        rd = b->nvm->ops->read_cells;
    }
    uint32_t crc = 0u;
    uint32_t done = 0u;
    while (done < len) {
        uint32_t n = len - done < DIGEST_STEP ? len - done : DIGEST_STEP;
        int st = rd(b->nvm->ctx, offset + done, b->data, n);
        if (st != FL_ST_OK) {
            return (uint8_t)st;
        }
        crc = fl_crc32(crc, b->data, n);
        done += n;
    }
    fl_put_u32(b->data, crc);
    fl_put_u32(b->data + 4, len);
    *out_len = 8u;
    return FL_ST_OK;
}

static uint8_t cmd_set_mode(struct fl_board *b, const uint8_t *p, size_t req_len)
{
    if (req_len != 20u) {
        return FL_ST_BAD_LENGTH;
    }
    struct fl_mode m = {
        .model = p[0],
        .a = fl_get_u32(p + 4),
        .b = fl_get_u32(p + 8),
        .seed = fl_get_u64(p + 12),
    };
    uint16_t caps = b->nvm->caps;
    int supported = m.model == FL_MODEL_NONE ||
                    ((caps & FL_CAP_ERROR_MODELS) != 0u &&
                     (m.model == FL_MODEL_BSC || m.model == FL_MODEL_ASYM ||
                      m.model == FL_MODEL_STUCK)) ||
                    ((caps & FL_CAP_PROGRAM_MODE) != 0u && m.model == FL_MODEL_PROGRAM);
    if (!supported) {
        return FL_ST_UNSUPPORTED;
    }
    return (uint8_t)fl_board_set_mode(b, &m);
}

int fl_board_set_mode(struct fl_board *b, const struct fl_mode *mode)
{
    int st = b->nvm->ops->set_mode(b->nvm->ctx, mode);
    if (st == FL_ST_OK) {
        b->model = mode->model;
    }
    return st;
}

static uint8_t cmd_stats(struct fl_board *b, size_t req_len, size_t *out_len)
{
    if (req_len != 0u) {
        return FL_ST_BAD_LENGTH;
    }
    const struct fl_nvm *nvm = b->nvm;
    b->stats.flips_injected = (nvm->ops->flips ? nvm->ops->flips(nvm->ctx) : 0u) - b->flips_base;
    const uint32_t fields[FL_STATS_FIELDS] = {
        b->stats.rx_frames,      b->stats.rx_crc_errors, b->stats.rx_cobs_errors,
        b->stats.rx_oversize,    b->stats.rx_timeouts,   b->stats.rx_bad_requests,
        b->stats.tx_frames,      b->stats.bytes_written, b->stats.bytes_read,
        b->stats.flips_injected,
    };
    for (size_t i = 0; i < FL_STATS_FIELDS; i++) {
        fl_put_u32(b->data + 4u * i, fields[i]);
    }
    *out_len = 4u * FL_STATS_FIELDS;
    return FL_ST_OK;
}

void fl_board_handle_raw(struct fl_board *b, const uint8_t *raw, size_t len)
{
    struct fl_header h;
    const uint8_t *p = NULL;
    enum fl_parse r = fl_frame_parse(raw, len, &h, &p);
    if (r == FL_PARSE_SHORT || r == FL_PARSE_BAD_CRC) {
        b->stats.rx_crc_errors++;
        return;
    }
    b->stats.rx_frames++;
    if (h.command & FL_RESPONSE_BIT) {
        /* a response echoed back to us (e.g. a loop-back line): never answer it */
        b->stats.rx_bad_requests++;
        return;
    }
    if (r == FL_PARSE_BAD_VERSION) {
        respond(b, h.command, h.seq, FL_ST_BAD_VERSION, 0u);
        return;
    }
    if (r == FL_PARSE_BAD_LENGTH) {
        respond(b, h.command, h.seq, FL_ST_BAD_LENGTH, 0u);
        return;
    }
    size_t out_len = 0u;
    uint8_t st;
    int reset = 0;
    switch (h.command) {
    case FL_CMD_INFO:
        st = cmd_info(b, h.length, &out_len);
        break;
    case FL_CMD_WRITE:
        st = cmd_write(b, p, h.length);
        break;
    case FL_CMD_READ:
        st = cmd_read(b, p, h.length, &out_len);
        break;
    case FL_CMD_ERASE:
        st = cmd_erase(b, p, h.length);
        break;
    case FL_CMD_DIGEST:
        st = cmd_digest(b, p, h.length, &out_len);
        break;
    case FL_CMD_SET_MODE:
        st = cmd_set_mode(b, p, h.length);
        break;
    case FL_CMD_STATS:
        st = cmd_stats(b, h.length, &out_len);
        break;
    case FL_CMD_RESET:
        st = h.length == 0u ? FL_ST_OK : FL_ST_BAD_LENGTH;
        reset = st == FL_ST_OK;
        break;
    default:
        st = FL_ST_UNKNOWN_COMMAND;
        break;
    }
    respond(b, h.command, h.seq, st, out_len);
    if (reset) {
        const struct fl_mode none = {.model = FL_MODEL_NONE, .a = 0u, .b = 0u, .seed = 0u};
        (void)fl_board_set_mode(b, &none);
        b->stats = (struct fl_stats){0};
        b->flips_base = b->nvm->ops->flips ? b->nvm->ops->flips(b->nvm->ctx) : 0u;
    }
}

void fl_board_feed(struct fl_board *b, const uint8_t *bytes, size_t len, uint32_t now_ms)
{
    fl_board_poll(b, now_ms); /* a stale partial frame must not swallow the new bytes */
    for (size_t i = 0; i < len; i++) {
        enum fl_rx_event ev = fl_rx_push(&b->rx, bytes[i], now_ms);
        if (ev == FL_RX_OVERSIZE) {
            b->stats.rx_oversize++;
        } else if (ev == FL_RX_FRAME) {
            long n = fl_cobs_decode(b->rx.buf, b->rx.len, b->raw, sizeof b->raw);
            fl_rx_done(&b->rx);
            if (n < 0) {
                b->stats.rx_cobs_errors++;
            } else {
                fl_board_handle_raw(b, b->raw, (size_t)n);
            }
        }
    }
}

void fl_board_poll(struct fl_board *b, uint32_t now_ms)
{
    if (fl_rx_poll(&b->rx, now_ms)) {
        b->stats.rx_timeouts++;
    }
}
