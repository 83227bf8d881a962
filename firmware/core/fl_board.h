/* FlipLab board protocol, command layer: feeds received bytes through the framing layer,
 * executes requests on an NVM and emits responses through an output callback. All buffers are
 * inside struct fl_board (about 12.4 KiB); no dynamic memory. */
#ifndef FL_BOARD_H
#define FL_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "fl_frame.h"
#include "fl_nvm.h"

/* Sends `len` bytes of one response frame (wire bytes, delimiter included). */
typedef void (*fl_write_fn)(void *ctx, const uint8_t *data, size_t len);

struct fl_stats {
    uint32_t rx_frames;       /* frames with a valid CRC */
    uint32_t rx_crc_errors;   /* dropped: CRC mismatch or shorter than header + CRC */
    uint32_t rx_cobs_errors;  /* dropped: not valid COBS */
    uint32_t rx_oversize;     /* dropped: longer than the maximum frame */
    uint32_t rx_timeouts;     /* partial frames discarded after FL_RX_IDLE_TIMEOUT_MS */
    uint32_t rx_bad_requests; /* answered with a status other than OK */
    uint32_t tx_frames;
    uint32_t bytes_written;
    uint32_t bytes_read;
    uint32_t flips_injected;
};
#define FL_STATS_FIELDS 10u

struct fl_board {
    const struct fl_nvm *nvm;
    fl_write_fn write;
    void *write_ctx;
    uint32_t extent; /* end of the highest byte written since the last full erase */
    uint8_t model;   /* enum fl_model in force (reported by INFO) */
    struct fl_stats stats;
    uint32_t flips_base; /* nvm flips() at the last RESET */
    struct fl_rx rx;
    uint8_t raw[FL_MAX_RAW];
    uint8_t data[FL_MAX_PAYLOAD]; /* response payload */
    uint8_t scratch[FL_MAX_RAW];
    uint8_t tx[FL_MAX_ENCODED + 1u];
};

void fl_board_init(struct fl_board *b, const struct fl_nvm *nvm, fl_write_fn write, void *ctx);
/* Applies an error model / mode to the NVM and records it; returns an enum fl_status. */
int fl_board_set_mode(struct fl_board *b, const struct fl_mode *mode);
/* Feeds received bytes; responses are sent from inside this call. now_ms: a millisecond clock. */
void fl_board_feed(struct fl_board *b, const uint8_t *bytes, size_t len, uint32_t now_ms);
/* Call periodically (every few ms while idle): drops a stalled partial frame. */
void fl_board_poll(struct fl_board *b, uint32_t now_ms);
/* Handles one raw (COBS-decoded) frame; exposed for the unit tests. */
void fl_board_handle_raw(struct fl_board *b, const uint8_t *raw, size_t len);

#endif
