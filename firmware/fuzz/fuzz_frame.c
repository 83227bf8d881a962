/* libFuzzer harness: the input is a byte stream arriving on the serial line. It goes through
 * the receiver, COBS decoder, frame parser and command handlers of a board with a small
 * emulated memory; the first byte picks the error model so the read paths are covered too.
 * Every response must itself be a valid frame. */
#include <stdint.h>
#include <string.h>

#include "fl_board.h"
#include "fl_crc32.h"
#include "fl_emu_nvm.h"

static uint8_t mem[8192];
static struct fl_emu emu;
static struct fl_nvm nvm;
static struct fl_board board;
static uint8_t raw[FL_MAX_RAW];
static uint8_t body[FL_MAX_RAW];

static void check_response(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    struct fl_header h;
    const uint8_t *p;
    if (len < 2u || data[len - 1] != 0u) {
        __builtin_trap();
    }
    long n = fl_cobs_decode(data, len - 1u, raw, sizeof raw);
    if (n < 0 || fl_frame_parse(raw, (size_t)n, &h, &p) != FL_PARSE_OK ||
        (h.command & FL_RESPONSE_BIT) == 0u) {
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_emu_init(&emu, mem, sizeof mem, size > 0 && (data[0] & 1u) ? FL_EMU_FLASH : FL_EMU_RRAM);
    fl_emu_nvm(&emu, &nvm);
    fl_board_init(&board, &nvm, check_response, NULL);
    if (size > 0) {
        struct fl_mode m = {(uint8_t)((data[0] >> 1) & 3u), 0x10000000u, 0x80000000u, data[0]};
        nvm.ops->set_mode(nvm.ctx, &m);
    }
    /* bit 3 of the first byte: the rest is a frame body that gets a correct CRC appended and
     * goes straight to the command handlers (random bytes rarely carry a valid CRC) */
    if (size > 0 && (data[0] & 8u) && size - 1u <= FL_MAX_RAW - FL_CRC_LEN) {
        size_t n = size - 1u;
        memcpy(body, data + 1, n);
        fl_put_u32(body + n, fl_crc32(0u, body, n));
        fl_board_handle_raw(&board, body, n + FL_CRC_LEN);
        return 0;
    }
    /* feed in two pieces with a time gap so the idle timeout path runs as well */
    size_t half = size / 2;
    fl_board_feed(&board, data, half, 0u);
    fl_board_poll(&board, (size & 1u) ? FL_RX_IDLE_TIMEOUT_MS : 1u);
    fl_board_feed(&board, data + half, size - half, FL_RX_IDLE_TIMEOUT_MS + 1u);
    return 0;
}
