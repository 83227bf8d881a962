/* Unit tests of the portable core, the emulated NVM and the JEDEC SPI driver.
 * Usage: unit_tests VECTORS_FILE   (firmware/tests/vectors.txt, shared with the host tests)
 * Prints one line per failed check and a summary; exit status 1 on any failure. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_board.h"
#include "fl_cobs.h"
#include "fl_crc32.h"
#include "fl_emu_nvm.h"
#include "fl_frame.h"
#include "fl_spi_jedec.h"

static int checks;
static int failures;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        checks++;                                                                            \
        if (!(cond)) {                                                                       \
            failures++;                                                                      \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                           \
        }                                                                                    \
    } while (0)

/* ---------------------------------------------------------------- shared vectors ---- */

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    if (strcmp(s, "-") == 0) {
        return 0;
    }
    size_t n = strlen(s) / 2;
    if (n > cap) {
        return (size_t)-1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            return (size_t)-1;
        }
        out[i] = (uint8_t)v;
    }
    return n;
}

static void test_vectors(const char *path)
{
    static char line[8192], kind[16], a[4096], b[4096];
    static uint8_t in[2048], want[2048], got[2048], back[2048];
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    int crc_count = 0, cobs_count = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '#' || sscanf(line, "%15s %4095s %4095s", kind, a, b) != 3) {
            continue;
        }
        size_t n = unhex(a, in, sizeof in);
        CHECK(n != (size_t)-1);
        if (strcmp(kind, "crc32") == 0) {
            uint32_t expect = (uint32_t)strtoul(b, NULL, 16);
            CHECK(fl_crc32(0u, in, n) == expect);
            /* incremental use gives the same result */
            size_t half = n / 2;
            CHECK(fl_crc32(fl_crc32(0u, in, half), in + half, n - half) == expect);
            crc_count++;
        } else if (strcmp(kind, "cobs") == 0) {
            size_t m = unhex(b, want, sizeof want);
            size_t e = fl_cobs_encode(in, n, got, sizeof got);
            CHECK(e == m && memcmp(got, want, m) == 0);
            CHECK(memchr(got, 0, e) == NULL);
            long d = fl_cobs_decode(want, m, back, sizeof back);
            CHECK(d == (long)n && memcmp(back, in, n) == 0);
            cobs_count++;
        }
    }
    fclose(f);
    CHECK(crc_count >= 10);
    CHECK(cobs_count >= 10);
}

/* ---------------------------------------------------------------------- COBS ---- */

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void test_cobs(void)
{
    static uint8_t in[1200], enc[1300], dec[1200];
    uint32_t s = 7;
    for (size_t n = 0; n < 1100; n += 7) {
        for (size_t i = 0; i < n; i++) {
            uint32_t r = lcg(&s);
            in[i] = (r % 5u == 0u) ? 0u : (uint8_t)r; /* plenty of zeros and long runs */
        }
        size_t e = fl_cobs_encode(in, n, enc, sizeof enc);
        CHECK(e >= 1u && e <= FL_COBS_MAX_ENCODED(n));
        CHECK(memchr(enc, 0, e) == NULL);
        CHECK(fl_cobs_decode(enc, e, dec, sizeof dec) == (long)n && memcmp(in, dec, n) == 0);
        /* too little room fails instead of overflowing */
        if (e > 1u) {
            CHECK(fl_cobs_encode(in, n, enc, e - 1u) == 0u);
        }
        if (n > 0u) {
            CHECK(fl_cobs_decode(enc, e, dec, n - 1u) == -1);
        }
    }
    const uint8_t zero_code[] = {0x00, 0x11};
    const uint8_t past_end[] = {0x05, 0x11, 0x22};
    const uint8_t zero_data[] = {0x03, 0x11, 0x00};
    CHECK(fl_cobs_decode(zero_code, sizeof zero_code, dec, sizeof dec) == -1);
    CHECK(fl_cobs_decode(past_end, sizeof past_end, dec, sizeof dec) == -1);
    CHECK(fl_cobs_decode(zero_data, sizeof zero_data, dec, sizeof dec) == -1);
}

/* --------------------------------------------------------------------- frames ---- */

static void test_frame(void)
{
    static uint8_t scratch[FL_MAX_RAW], wire[FL_MAX_ENCODED + 1], raw[FL_MAX_RAW];
    struct fl_header h = {FL_PROTOCOL_VERSION, FL_CMD_READ, 0, 0, 0x1234, 0};
    const uint8_t payload[8] = {0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
    size_t n = fl_frame_build(&h, payload, sizeof payload, scratch, wire, sizeof wire);
    CHECK(n > 0u && wire[n - 1] == 0u && memchr(wire, 0, n - 1) == NULL);
    long r = fl_cobs_decode(wire, n - 1, raw, sizeof raw);
    CHECK(r == (long)(FL_HEADER_LEN + sizeof payload + FL_CRC_LEN));
    struct fl_header got;
    const uint8_t *p = NULL;
    CHECK(fl_frame_parse(raw, (size_t)r, &got, &p) == FL_PARSE_OK);
    CHECK(got.command == FL_CMD_READ && got.seq == 0x1234 && got.length == 8u);
    CHECK(p != NULL && memcmp(p, payload, 8) == 0);
    /* every single-bit error in the frame is caught by the CRC */
    for (size_t bit = 0; bit < (size_t)r * 8u; bit++) {
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(fl_frame_parse(raw, (size_t)r, &got, &p) == FL_PARSE_BAD_CRC);
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK(fl_frame_parse(raw, 11, &got, &p) == FL_PARSE_SHORT);
    /* a maximum payload fits; one byte more is refused */
    static uint8_t big[FL_MAX_PAYLOAD + 1];
    memset(big, 0xA5, sizeof big);
    CHECK(fl_frame_build(&h, big, FL_MAX_PAYLOAD, scratch, wire, sizeof wire) > 0u);
    CHECK(fl_frame_build(&h, big, FL_MAX_PAYLOAD + 1, scratch, wire, sizeof wire) == 0u);
    memset(big, 0x00, sizeof big); /* all zeros: worst case is not zeros, but check anyway */
    CHECK(fl_frame_build(&h, big, FL_MAX_PAYLOAD, scratch, wire, sizeof wire) > 0u);
    /* bad version and lying length field, with valid CRCs */
    h.version = 2;
    n = fl_frame_build(&h, payload, sizeof payload, scratch, wire, sizeof wire);
    r = fl_cobs_decode(wire, n - 1, raw, sizeof raw);
    CHECK(fl_frame_parse(raw, (size_t)r, &got, &p) == FL_PARSE_BAD_VERSION);
    h.version = FL_PROTOCOL_VERSION;
    n = fl_frame_build(&h, payload, sizeof payload, scratch, wire, sizeof wire);
    r = fl_cobs_decode(wire, n - 1, raw, sizeof raw);
    raw[6] = 0xFF; /* length 0xFFxx */
    uint32_t crc = fl_crc32(0u, raw, (size_t)r - 4u);
    fl_put_u32(raw + r - 4, crc);
    CHECK(fl_frame_parse(raw, (size_t)r, &got, &p) == FL_PARSE_BAD_LENGTH);
}

static void test_rx(void)
{
    static struct fl_rx rx;
    fl_rx_init(&rx);
    CHECK(fl_rx_push(&rx, 0x00, 0) == FL_RX_NONE); /* empty frame ignored */
    CHECK(fl_rx_push(&rx, 0x02, 0) == FL_RX_NONE);
    CHECK(fl_rx_push(&rx, 0x41, 0) == FL_RX_NONE);
    CHECK(fl_rx_push(&rx, 0x00, 1) == FL_RX_FRAME && rx.len == 2u);
    fl_rx_done(&rx);
    for (size_t i = 0; i < FL_MAX_ENCODED + 10u; i++) {
        CHECK(fl_rx_push(&rx, 0x55, 2) == FL_RX_NONE);
    }
    CHECK(fl_rx_push(&rx, 0x00, 3) == FL_RX_OVERSIZE && rx.len == 0u);
    CHECK(fl_rx_push(&rx, 0x07, 10) == FL_RX_NONE);
    CHECK(!fl_rx_poll(&rx, 10u + FL_RX_IDLE_TIMEOUT_MS - 1u));
    CHECK(fl_rx_poll(&rx, 10u + FL_RX_IDLE_TIMEOUT_MS) && rx.len == 0u);
    CHECK(!fl_rx_poll(&rx, 10u + 5u * FL_RX_IDLE_TIMEOUT_MS));
}

/* ------------------------------------------------------------- board handlers ---- */

#define MEM_SIZE (64u * 1024u)
static uint8_t mem[MEM_SIZE];
static struct fl_emu emu;
static struct fl_nvm nvm;
static struct fl_board board;
static uint8_t out_buf[3u * (FL_MAX_ENCODED + 1u)];
static size_t out_len;

static void capture(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (out_len + len <= sizeof out_buf) {
        memcpy(out_buf + out_len, data, len);
    }
    out_len += len;
}

struct reply {
    int ok;
    struct fl_header h;
    uint8_t payload[FL_MAX_PAYLOAD];
};

/* sends one request through the byte stream and decodes the single reply (ok = 0 if none) */
static void request(uint8_t cmd, uint16_t seq, const uint8_t *payload, size_t len,
                    struct reply *rep)
{
    static uint8_t scratch[FL_MAX_RAW], wire[FL_MAX_ENCODED + 1], raw[FL_MAX_RAW];
    struct fl_header h = {FL_PROTOCOL_VERSION, cmd, 0, 0, seq, 0};
    size_t n = fl_frame_build(&h, payload, len, scratch, wire, sizeof wire);
    out_len = 0;
    fl_board_feed(&board, wire, n, 0);
    rep->ok = 0;
    if (out_len == 0u || out_len > sizeof out_buf || out_buf[out_len - 1] != 0u) {
        return;
    }
    long r = fl_cobs_decode(out_buf, out_len - 1u, raw, sizeof raw);
    const uint8_t *p = NULL;
    if (r < 0 || fl_frame_parse(raw, (size_t)r, &rep->h, &p) != FL_PARSE_OK) {
        return;
    }
    memcpy(rep->payload, p, rep->h.length);
    rep->ok = 1;
}

static void setup_board(enum fl_emu_kind kind)
{
    fl_emu_init(&emu, mem, MEM_SIZE, kind);
    fl_emu_nvm(&emu, &nvm);
    fl_board_init(&board, &nvm, capture, NULL);
}

static void test_board(void)
{
    static struct reply rep;
    static uint8_t req[FL_MAX_PAYLOAD];
    setup_board(FL_EMU_RRAM);

    request(FL_CMD_INFO, 1, NULL, 0, &rep);
    CHECK(rep.ok && rep.h.command == (FL_CMD_INFO | FL_RESPONSE_BIT) && rep.h.seq == 1);
    CHECK(rep.h.status == FL_ST_OK && rep.h.length == 32u);
    CHECK(rep.payload[0] == FL_PROTOCOL_VERSION && rep.payload[1] == 8u);
    CHECK(fl_get_u32(rep.payload + 4) == MEM_SIZE && fl_get_u32(rep.payload + 8) == 0u);
    CHECK(fl_get_u16(rep.payload + 16) == FL_MAX_CHUNK && rep.payload[19] == 0xFFu);
    CHECK(memcmp(rep.payload + 20, "emu-rram\0\0\0\0", 12) == 0);

    /* WRITE a full chunk at 1000, READ it back, INFO reports the extent */
    fl_put_u32(req, 1000u);
    for (uint32_t i = 0; i < FL_MAX_CHUNK; i++) {
        req[4 + i] = (uint8_t)(i * 7u + 3u);
    }
    request(FL_CMD_WRITE, 2, req, 4u + FL_MAX_CHUNK, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OK && rep.h.length == 0u && rep.h.seq == 2);
    CHECK(memcmp(mem + 1000, req + 4, FL_MAX_CHUNK) == 0);
    uint8_t rd[8] = {0};
    fl_put_u32(rd, 1000u);
    fl_put_u16(rd + 4, (uint16_t)FL_MAX_CHUNK);
    request(FL_CMD_READ, 3, rd, 8, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OK && rep.h.length == FL_MAX_CHUNK);
    CHECK(memcmp(rep.payload, req + 4, FL_MAX_CHUNK) == 0);
    request(FL_CMD_INFO, 4, NULL, 0, &rep);
    CHECK(fl_get_u32(rep.payload + 8) == 1000u + FL_MAX_CHUNK);

    /* DIGEST equals the CRC of what was written */
    uint8_t dg[12] = {0};
    fl_put_u32(dg, 1000u);
    fl_put_u32(dg + 4, FL_MAX_CHUNK);
    request(FL_CMD_DIGEST, 5, dg, 12, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OK && rep.h.length == 8u);
    CHECK(fl_get_u32(rep.payload) == fl_crc32(0u, req + 4, FL_MAX_CHUNK));
    CHECK(fl_get_u32(rep.payload + 4) == FL_MAX_CHUNK);
    dg[8] = 2; /* unknown source */
    request(FL_CMD_DIGEST, 6, dg, 12, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_BAD_ARGUMENT);

    /* range and length errors */
    fl_put_u32(rd, MEM_SIZE - 10u);
    fl_put_u16(rd + 4, 11u);
    request(FL_CMD_READ, 7, rd, 8, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OUT_OF_RANGE && rep.h.length == 0u);
    fl_put_u32(rd, 0xFFFFFFF0u); /* offset + len wraps around 2^32 */
    fl_put_u16(rd + 4, 0x20u);
    request(FL_CMD_READ, 8, rd, 8, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OUT_OF_RANGE);
    fl_put_u16(rd + 4, (uint16_t)(FL_MAX_CHUNK + 1u));
    request(FL_CMD_READ, 9, rd, 8, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_BAD_ARGUMENT);
    request(FL_CMD_READ, 10, rd, 7, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_BAD_LENGTH);
    request(FL_CMD_WRITE, 11, req, 4, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_BAD_LENGTH);
    request(FL_CMD_INFO, 12, req, 1, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_BAD_LENGTH);
    request(0x55, 13, NULL, 0, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_UNKNOWN_COMMAND && rep.h.command == (0x55 | 0x80));
    /* protocol v2's accelerator commands (ACCEL_INFO, _WRITE, _LOAD, _RUN): no accelerator here */
    for (uint8_t cmd = 0x10u; cmd <= 0x13u; cmd++) {
        request(cmd, 13, req, 8, &rep);
        CHECK(rep.ok && rep.h.status == FL_ST_UNKNOWN_COMMAND && rep.h.command == (cmd | 0x80u) &&
              rep.h.length == 0u);
    }

    /* SET_MODE: PROGRAM is not supported by the emulated memory; BSC with p = 1 flips all */
    uint8_t sm[20] = {0};
    sm[0] = FL_MODEL_PROGRAM;
    request(FL_CMD_SET_MODE, 14, sm, 20, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_UNSUPPORTED);
    sm[0] = FL_MODEL_BSC;
    fl_put_u32(sm + 4, 0xFFFFFFFFu);
    request(FL_CMD_SET_MODE, 15, sm, 20, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OK);
    request(FL_CMD_INFO, 151, NULL, 0, &rep);
    CHECK(rep.ok && rep.payload[18] == FL_MODEL_BSC);
    fl_put_u32(rd, 1000u);
    fl_put_u16(rd + 4, 64u);
    request(FL_CMD_READ, 16, rd, 8, &rep);
    int all_flipped = 1;
    for (int i = 0; i < 64; i++) {
        all_flipped &= (unsigned)(rep.payload[i] ^ req[4 + i]) == 0xFFu;
    }
    CHECK(rep.ok && all_flipped);
    /* DIGEST of the cells bypasses the read error model, source READ does not */
    fl_put_u32(dg, 1000u);
    fl_put_u32(dg + 4, 64u);
    dg[8] = 0;
    request(FL_CMD_DIGEST, 17, dg, 12, &rep);
    CHECK(fl_get_u32(rep.payload) == fl_crc32(0u, req + 4, 64));
    dg[8] = 1;
    request(FL_CMD_DIGEST, 18, dg, 12, &rep);
    CHECK(fl_get_u32(rep.payload) != fl_crc32(0u, req + 4, 64));

    /* STATS after a garbage burst, a bad-CRC frame and an oversized frame */
    static const uint8_t garbage[] = {0x13, 0x37, 0x00, 0x03, 0x01, 0x02, 0x00};
    out_len = 0;
    fl_board_feed(&board, garbage, sizeof garbage, 0);
    CHECK(out_len == 0u);
    static uint8_t scratch[FL_MAX_RAW], wire[FL_MAX_ENCODED + 1];
    struct fl_header h = {FL_PROTOCOL_VERSION, FL_CMD_INFO, 0, 0, 99, 0};
    uint8_t bad[12] = {FL_PROTOCOL_VERSION, FL_CMD_INFO, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0};
    fl_put_u32(bad + 8, fl_crc32(0u, bad, 8) ^ 0x00010000u); /* one CRC bit wrong */
    size_t n = fl_cobs_encode(bad, sizeof bad, wire, sizeof wire);
    wire[n++] = 0;
    fl_board_feed(&board, wire, n, 0);
    CHECK(out_len == 0u);
    memset(wire, 0x42, sizeof wire);
    fl_board_feed(&board, wire, sizeof wire, 0);
    fl_board_feed(&board, (const uint8_t *)"\0", 1, 0);
    CHECK(out_len == 0u);
    request(FL_CMD_STATS, 19, NULL, 0, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OK && rep.h.length == 40u);
    CHECK(fl_get_u32(rep.payload + 4) == 2u);  /* "03 01 02" decodes short; the bad CRC */
    CHECK(fl_get_u32(rep.payload + 8) == 1u);  /* "13 37" is not valid COBS */
    CHECK(fl_get_u32(rep.payload + 12) == 1u); /* oversize */
    CHECK(fl_get_u32(rep.payload + 28) == FL_MAX_CHUNK);
    CHECK(fl_get_u32(rep.payload + 36) == 2u * 8u * 64u); /* p = 1: READ + DIGEST(READ) */

    /* RESET: answers, then clears the error model and the counters; memory is kept */
    request(FL_CMD_RESET, 20, NULL, 0, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OK);
    request(FL_CMD_READ, 21, rd, 8, &rep);
    CHECK(rep.ok && memcmp(rep.payload, req + 4, 64) == 0);
    request(FL_CMD_STATS, 22, NULL, 0, &rep);
    CHECK(fl_get_u32(rep.payload + 0) == 2u && fl_get_u32(rep.payload + 36) == 0u);
    request(FL_CMD_INFO, 221, NULL, 0, &rep);
    CHECK(rep.ok && rep.payload[18] == FL_MODEL_NONE);

    /* a partial frame followed by silence is discarded; the next request is served */
    out_len = 0;
    fl_board_feed(&board, wire, 40, 1000);
    fl_board_poll(&board, 1000u + FL_RX_IDLE_TIMEOUT_MS);
    request(FL_CMD_INFO, 23, NULL, 0, &rep);
    CHECK(rep.ok && rep.h.seq == 23);

    /* ERASE: whole memory resets the extent */
    uint8_t er[8];
    fl_put_u32(er, 0);
    fl_put_u32(er + 4, MEM_SIZE);
    request(FL_CMD_ERASE, 24, er, 8, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OK && mem[1000] == 0xFFu && mem[MEM_SIZE - 1] == 0xFFu);
    request(FL_CMD_INFO, 25, NULL, 0, &rep);
    CHECK(fl_get_u32(rep.payload + 8) == 0u);
    fl_put_u32(er + 4, MEM_SIZE + 1u);
    request(FL_CMD_ERASE, 26, er, 8, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OUT_OF_RANGE);

    /* a response frame fed back (loop-back line) is never answered */
    h.command = FL_CMD_INFO | FL_RESPONSE_BIT;
    n = fl_frame_build(&h, NULL, 0, scratch, wire, sizeof wire);
    out_len = 0;
    fl_board_feed(&board, wire, n, 0);
    CHECK(out_len == 0u);
}

static void test_flash_semantics(void)
{
    static struct reply rep;
    setup_board(FL_EMU_FLASH);
    request(FL_CMD_INFO, 1, NULL, 0, &rep);
    CHECK(fl_get_u32(rep.payload + 12) == FL_EMU_FLASH_SECTOR);
    uint8_t w[6] = {0, 0, 0, 0, 0xF0, 0x0F};
    request(FL_CMD_WRITE, 2, w, 6, &rep);
    w[4] = 0x3C;
    w[5] = 0xFF;
    request(FL_CMD_WRITE, 3, w, 6, &rep);
    CHECK(mem[0] == 0x30 && mem[1] == 0x0F); /* programming only clears bits */
    uint8_t er[8];
    fl_put_u32(er, 100);
    fl_put_u32(er + 4, FL_EMU_FLASH_SECTOR);
    request(FL_CMD_ERASE, 4, er, 8, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_BAD_ARGUMENT); /* not sector aligned */
    fl_put_u32(er, 0);
    request(FL_CMD_ERASE, 5, er, 8, &rep);
    CHECK(rep.ok && rep.h.status == FL_ST_OK && mem[0] == 0xFF && mem[1] == 0xFF);
}

/* ---------------------------------------------------------------- emulated NVM ---- */

static void test_emu_models(void)
{
    static uint8_t buf[MEM_SIZE], buf2[MEM_SIZE];
    setup_board(FL_EMU_RRAM);
    for (uint32_t i = 0; i < MEM_SIZE; i++) {
        mem[i] = (uint8_t)(i * 31u);
    }
    /* BSC p = 2^-6: E[flips] = 524288 / 64 = 8192, sd = 89.8; |dev| < 6 sd */
    struct fl_mode m = {FL_MODEL_BSC, 1u << 26, 0, 42};
    nvm.ops->set_mode(nvm.ctx, &m);
    uint32_t f0 = emu.flips;
    nvm.ops->read(nvm.ctx, 0, buf, MEM_SIZE);
    uint32_t counted = 0;
    for (uint32_t i = 0; i < MEM_SIZE; i++) {
        counted += (uint32_t)__builtin_popcount((unsigned)(buf[i] ^ mem[i]));
    }
    CHECK(counted == emu.flips - f0);
    CHECK(counted > 8192u - 540u && counted < 8192u + 540u);
    /* a second read draws fresh noise */
    nvm.ops->read(nvm.ctx, 0, buf2, MEM_SIZE);
    CHECK(memcmp(buf, buf2, MEM_SIZE) != 0);
    /* same seed, same stream */
    nvm.ops->set_mode(nvm.ctx, &m);
    nvm.ops->read(nvm.ctx, 0, buf2, MEM_SIZE);
    CHECK(memcmp(buf, buf2, MEM_SIZE) == 0);

    /* asymmetric, p01 = 0, p10 = 1/4: zeros never change, ones drop with 1/4 */
    m = (struct fl_mode){FL_MODEL_ASYM, 0, 1u << 30, 5};
    nvm.ops->set_mode(nvm.ctx, &m);
    nvm.ops->read(nvm.ctx, 0, buf, MEM_SIZE);
    uint32_t ones = 0, dropped = 0, raised = 0;
    for (uint32_t i = 0; i < MEM_SIZE; i++) {
        ones += (uint32_t)__builtin_popcount(mem[i]);
        dropped += (uint32_t)__builtin_popcount((unsigned)(mem[i] & ~buf[i]));
        raised += (uint32_t)__builtin_popcount((unsigned)(~mem[i] & buf[i] & 0xFFu));
    }
    CHECK(raised == 0u);
    /* Binomial(ones, 1/4): sd = sqrt(ones * 3/16) ~ 221 for ones ~ 262144 */
    CHECK(dropped > ones / 4u - 1400u && dropped < ones / 4u + 1400u);

    /* stuck-at 1/16 of the cells, half of them at 1: the same cells on every read and at
     * every offset alignment; the stuck cells read as their stuck value whatever is stored */
    m = (struct fl_mode){FL_MODEL_STUCK, 1u << 28, 1u << 31, 1234};
    nvm.ops->set_mode(nvm.ctx, &m);
    nvm.ops->read(nvm.ctx, 0, buf, MEM_SIZE);
    nvm.ops->read(nvm.ctx, 0, buf2, MEM_SIZE);
    CHECK(memcmp(buf, buf2, MEM_SIZE) == 0);
    nvm.ops->read(nvm.ctx, 777, buf2, 1000);
    CHECK(memcmp(buf + 777, buf2, 1000) == 0);
    memset(mem, 0x00, MEM_SIZE);
    nvm.ops->read(nvm.ctx, 0, buf, MEM_SIZE);
    memset(mem, 0xFF, MEM_SIZE);
    nvm.ops->read(nvm.ctx, 0, buf2, MEM_SIZE);
    uint32_t at1 = 0, at0 = 0;
    for (uint32_t i = 0; i < MEM_SIZE; i++) {
        at1 += (uint32_t)__builtin_popcount(buf[i]);
        at0 += (uint32_t)__builtin_popcount((unsigned)(~buf2[i] & 0xFFu));
    }
    /* stuck cells: Binomial(524288, 1/16), mean 32768, sd 175; each half ~16384, sd ~124 */
    CHECK(at1 + at0 > 32768u - 1050u && at1 + at0 < 32768u + 1050u);
    CHECK(at1 > 16384u - 800u && at1 < 16384u + 800u);
    /* a different device seed gives a different map */
    m.seed = 1235;
    nvm.ops->set_mode(nvm.ctx, &m);
    memset(mem, 0x00, MEM_SIZE);
    nvm.ops->read(nvm.ctx, 0, buf2, MEM_SIZE);
    CHECK(memcmp(buf, buf2, MEM_SIZE) != 0);
    /* NONE: exact */
    m = (struct fl_mode){FL_MODEL_NONE, 0, 0, 0};
    nvm.ops->set_mode(nvm.ctx, &m);
    nvm.ops->read(nvm.ctx, 0, buf, MEM_SIZE);
    CHECK(memcmp(buf, mem, MEM_SIZE) == 0);
}

/* ------------------------------------------------------------ JEDEC SPI driver ---- */

/* A simulated SPI memory chip: decodes the JEDEC commands, wraps PAGE PROGRAM within the page
 * (like real chips), ignores programs without WREN and reports busy for `busy_polls` RDSRs. */
#define CHIP_SIZE 8192u
#define CHIP_PAGE 64u
struct chip {
    uint8_t mem[CHIP_SIZE];
    uint8_t status_reg;
    int wel, selected, busy_left, busy_polls, stuck_busy, present, overwrite, wrapped;
    uint8_t cmd;
    uint32_t pos, addr;
    uint32_t programs, erases, page_wraps;
    uint32_t clock;
};
static struct chip chip;

static void chip_select(void *ctx, bool active)
{
    struct chip *c = ctx;
    if (!active && c->selected && c->cmd == FL_JEDEC_SECTOR_ERASE && c->pos >= 4 && c->wel) {
        memset(c->mem + (c->addr & ~4095u) % CHIP_SIZE, 0xFF, 4096u < CHIP_SIZE ? 4096u : CHIP_SIZE);
        c->erases++;
        c->wel = 0;
        c->busy_left = c->busy_polls;
    }
    if (!active && c->selected && c->cmd == FL_JEDEC_PROGRAM && c->pos > 4) {
        c->wel = 0;
        c->busy_left = c->busy_polls;
    }
    if (!active && c->selected && c->cmd == FL_JEDEC_WRSR && c->pos >= 2) {
        c->wel = 0;
    }
    c->selected = active;
    c->pos = 0;
    c->wrapped = 0;
}

static uint8_t chip_byte(struct chip *c, uint8_t in)
{
    uint32_t k = c->pos++;
    if (!c->present) {
        return 0xFF;
    }
    if (k == 0) {
        c->cmd = in;
        if (in == FL_JEDEC_WREN) {
            c->wel = 1;
        }
        return 0xFF;
    }
    switch (c->cmd) {
    case FL_JEDEC_RDID: {
        static const uint8_t id[3] = {0x04, 0x2B, 0x0D}; /* 2^13 = 8 KiB */
        return k <= 3 ? id[k - 1] : 0xFF;
    }
    case FL_JEDEC_RDSR: {
        uint8_t s = (uint8_t)(c->status_reg | (c->wel ? 0x02 : 0x00));
        if (c->busy_left > 0 || c->stuck_busy) {
            s |= FL_JEDEC_WIP;
            if (c->busy_left > 0) {
                c->busy_left--;
            }
        }
        return s;
    }
    case FL_JEDEC_WRSR:
        if (k == 1 && c->wel) {
            c->status_reg = in;
        }
        return 0xFF;
    case FL_JEDEC_READ:
    case FL_JEDEC_PROGRAM:
    case FL_JEDEC_SECTOR_ERASE:
        if (k <= 3) {
            c->addr = (c->addr << 8) | in;
            if (k == 3) {
                c->addr %= CHIP_SIZE;
            }
            return 0xFF;
        }
        if (c->cmd == FL_JEDEC_READ) {
            uint8_t v = c->mem[c->addr];
            c->addr = (c->addr + 1) % CHIP_SIZE;
            return v;
        }
        if (c->cmd == FL_JEDEC_PROGRAM && c->wel) {
            if (c->wrapped) {
                c->page_wraps++; /* a byte landed back at the start of the page */
                c->wrapped = 0;
            }
            if (c->overwrite) {
                c->mem[c->addr] = in; /* FRAM / ReRAM */
            } else {
                c->mem[c->addr] &= in; /* NOR: programming only clears bits */
            }
            uint32_t next = c->addr + 1;
            if (next % CHIP_PAGE == 0) {
                next -= CHIP_PAGE; /* wraps to the start of the same page */
                c->wrapped = 1;
            }
            c->addr = next;
            if (k == 4) {
                c->programs++;
            }
        }
        return 0xFF;
    default:
        return 0xFF;
    }
}

static void chip_transfer(void *ctx, const uint8_t *tx, uint8_t *rx, size_t len)
{
    struct chip *c = ctx;
    for (size_t i = 0; i < len; i++) {
        uint8_t v = chip_byte(c, tx ? tx[i] : 0xFF);
        if (rx) {
            rx[i] = v;
        }
    }
}

static uint32_t chip_millis(void *ctx)
{
    struct chip *c = ctx;
    return c->clock++; /* every call advances 1 ms */
}

static void test_jedec(void)
{
    static struct fl_jedec dev;
    static struct fl_nvm jn;
    static uint8_t data[3000], back[3000];
    const struct fl_spi_hal hal = {&chip, chip_select, chip_transfer, chip_millis};
    struct fl_jedec_config cfg = {0, CHIP_PAGE, 4096, 3, 50, 500};

    memset(&chip, 0, sizeof chip);
    CHECK(fl_jedec_init(&dev, &hal, &cfg, &jn) == FL_ST_NVM_ERROR); /* no chip on the bus */
    {
        /* a board over the missing chip still answers: INFO says size 0, READ is refused */
        static struct reply rep;
        fl_board_init(&board, &jn, capture, NULL);
        request(FL_CMD_INFO, 1, NULL, 0, &rep);
        CHECK(rep.ok && rep.h.status == FL_ST_OK && fl_get_u32(rep.payload + 4) == 0u);
        CHECK(memcmp(rep.payload + 20, "spi-jedec", 9) == 0);
        uint8_t rd[8] = {0, 0, 0, 0, 16, 0, 0, 0};
        request(FL_CMD_READ, 2, rd, 8, &rep);
        CHECK(rep.ok && rep.h.status == FL_ST_OUT_OF_RANGE);
    }

    memset(&chip, 0, sizeof chip);
    memset(chip.mem, 0xFF, sizeof chip.mem);
    chip.present = 1;
    chip.busy_polls = 3;
    CHECK(fl_jedec_init(&dev, &hal, &cfg, &jn) == FL_ST_OK);
    CHECK(jn.size == CHIP_SIZE && dev.id[0] == 0x04 && jn.erase_block == 4096u);
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)(i * 13u + 1u);
    }
    /* a write starting mid-page and spanning many pages is split at page boundaries */
    CHECK(jn.ops->write(jn.ctx, 37, data, sizeof data) == FL_ST_OK);
    CHECK(chip.page_wraps == 0u);
    CHECK(chip.programs == 1u + (37u + 3000u - 64u + 63u) / 64u);
    CHECK(jn.ops->read(jn.ctx, 37, back, sizeof back) == FL_ST_OK);
    CHECK(memcmp(back, data, sizeof data) == 0);
    CHECK(jn.ops->erase(jn.ctx, 0, 4096) == FL_ST_OK && chip.erases == 1u);
    CHECK(jn.ops->read(jn.ctx, 37, back, 10) == FL_ST_OK && back[0] == 0xFF && back[9] == 0xFF);
    /* program mode: WRSR with WREN */
    struct fl_mode pm = {FL_MODEL_PROGRAM, 0x1C, 0, 0};
    CHECK(jn.ops->set_mode(jn.ctx, &pm) == FL_ST_OK && chip.status_reg == 0x1C);
    pm.model = FL_MODEL_BSC;
    CHECK(jn.ops->set_mode(jn.ctx, &pm) == FL_ST_UNSUPPORTED);
    /* a chip that stays busy makes the write fail with NVM_ERROR instead of hanging */
    chip.stuck_busy = 1;
    CHECK(jn.ops->write(jn.ctx, 0, data, 10) == FL_ST_NVM_ERROR);
    chip.stuck_busy = 0;

    /* FRAM-style: no erase command; erase writes the erased value 0xFF */
    cfg.erase_block = 0;
    cfg.size = 4096;
    chip.overwrite = 1;
    memset(chip.mem, 0x00, sizeof chip.mem);
    CHECK(fl_jedec_init(&dev, &hal, &cfg, &jn) == FL_ST_OK && jn.size == 4096u);
    CHECK(jn.ops->erase(jn.ctx, 100, 300) == FL_ST_OK);
    CHECK(chip.mem[99] == 0x00 && chip.mem[100] == 0xFF && chip.mem[399] == 0xFF &&
          chip.mem[400] == 0x00);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: unit_tests VECTORS_FILE\n");
        return 2;
    }
    test_vectors(argv[1]);
    test_cobs();
    test_frame();
    test_rx();
    test_board();
    test_flash_semantics();
    test_emu_models();
    test_jedec();
    printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
