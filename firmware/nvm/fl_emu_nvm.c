#include "fl_emu_nvm.h"

#include <string.h>

#include "fl_frame.h"

static int emu_read_cells(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    struct fl_emu *emu = ctx;
    memcpy(buf, emu->mem + offset, len);
    return FL_ST_OK;
}

/* BSC / asymmetric: every bit of every read draws its own uniform u (32 bits) and flips when
 * u < threshold, threshold chosen by the stored bit value (BSC: the same for both). */
static void corrupt_random(struct fl_emu *emu, uint8_t *buf, uint32_t len, uint32_t t0,
                           uint32_t t1)
{
    uint32_t flips = 0u;
    for (uint32_t i = 0; i < len; i++) {
        uint8_t v = buf[i];
        uint8_t mask = 0u;
        for (unsigned bit = 0; bit < 8u; bit += 2u) {
            uint64_t r = fl_xoshiro_next(&emu->rng);
            uint32_t u_lo = (uint32_t)r;
            uint32_t u_hi = (uint32_t)(r >> 32);
            uint32_t th_lo = ((v >> bit) & 1u) ? t1 : t0;
            uint32_t th_hi = ((v >> (bit + 1u)) & 1u) ? t1 : t0;
            if (u_lo < th_lo) {
                mask |= (uint8_t)(1u << bit);
            }
            if (u_hi < th_hi) {
                mask |= (uint8_t)(1u << (bit + 1u));
            }
        }
        if (mask != 0u) {
            buf[i] = (uint8_t)(v ^ mask);
            for (uint8_t m = mask; m != 0u; m &= (uint8_t)(m - 1u)) {
                flips++;
            }
        }
    }
    emu->flips += flips;
}

/* Stuck-at: cell (absolute bit index) c draws h = mix64(seed + (c + 1) * golden); it is stuck
 * when low32(h) < a, at value (high32(h) < b). A pure function of (seed, c): the same cells
 * read the same wrong value on every read. */
static void corrupt_stuck(struct fl_emu *emu, uint32_t offset, uint8_t *buf, uint32_t len)
{
    uint64_t seed = emu->mode.seed;
    uint32_t fa = emu->mode.a;
    uint32_t sb = emu->mode.b;
    uint32_t flips = 0u;
    for (uint32_t i = 0; i < len; i++) {
        uint64_t cell = ((uint64_t)offset + i) * 8u;
        uint8_t v = buf[i];
        for (unsigned bit = 0; bit < 8u; bit++) {
            uint64_t h = fl_mix64(seed + (cell + bit + 1u) * FL_GOLDEN64);
            if ((uint32_t)h < fa) {
                uint8_t one = (uint32_t)(h >> 32) < sb;
                uint8_t cur = (v >> bit) & 1u;
                if (cur != one) {
                    v ^= (uint8_t)(1u << bit);
                    flips++;
                }
            }
        }
        buf[i] = v;
    }
    emu->flips += flips;
}

void fl_emu_corrupt(struct fl_emu *emu, uint32_t offset, uint8_t *buf, uint32_t len)
{
    switch (emu->mode.model) {
    case FL_MODEL_BSC:
        if (emu->mode.a != 0u) {
            corrupt_random(emu, buf, len, emu->mode.a, emu->mode.a);
        }
        break;
    case FL_MODEL_ASYM:
        if (emu->mode.a != 0u || emu->mode.b != 0u) {
            corrupt_random(emu, buf, len, emu->mode.a, emu->mode.b);
        }
        break;
    case FL_MODEL_STUCK:
        if (emu->mode.a != 0u) {
            corrupt_stuck(emu, offset, buf, len);
        }
        break;
    default:
        break;
    }
}

static int emu_read(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    struct fl_emu *emu = ctx;
    memcpy(buf, emu->mem + offset, len);
    fl_emu_corrupt(emu, offset, buf, len);
    return FL_ST_OK;
}

static int emu_write(void *ctx, uint32_t offset, const uint8_t *buf, uint32_t len)
{
    struct fl_emu *emu = ctx;
    if (emu->kind == FL_EMU_FLASH) {
        for (uint32_t i = 0; i < len; i++) {
            emu->mem[offset + i] &= buf[i];
        }
    } else {
        memcpy(emu->mem + offset, buf, len);
    }
    return FL_ST_OK;
}

static int emu_erase(void *ctx, uint32_t offset, uint32_t len)
{
    struct fl_emu *emu = ctx;
    memset(emu->mem + offset, 0xFF, len);
    return FL_ST_OK;
}

static int emu_set_mode(void *ctx, const struct fl_mode *mode)
{
    struct fl_emu *emu = ctx;
    if (mode->model == FL_MODEL_PROGRAM) {
        return FL_ST_UNSUPPORTED;
    }
    emu->mode = *mode;
    fl_xoshiro_seed(&emu->rng, mode->seed);
    return FL_ST_OK;
}

static uint32_t emu_flips(void *ctx)
{
    const struct fl_emu *emu = ctx;
    return emu->flips;
}

static const struct fl_nvm_ops emu_ops = {
    .read = emu_read,
    .read_cells = emu_read_cells,
    .write = emu_write,
    .erase = emu_erase,
    .set_mode = emu_set_mode,
    .flips = emu_flips,
};

void fl_emu_init(struct fl_emu *emu, uint8_t *mem, uint32_t size, enum fl_emu_kind kind)
{
    emu->mem = mem;
    emu->size = size;
    emu->kind = kind;
    emu->mode = (struct fl_mode){.model = FL_MODEL_NONE, .a = 0u, .b = 0u, .seed = 0u};
    fl_xoshiro_seed(&emu->rng, 0u);
    emu->flips = 0u;
    memset(mem, 0xFF, size);
}

void fl_emu_nvm(struct fl_emu *emu, struct fl_nvm *nvm)
{
    static const char *const names[] = {"emu-rram", "emu-flash", "emu-sram"};
    nvm->ops = &emu_ops;
    nvm->ctx = emu;
    nvm->size = emu->size;
    nvm->erase_block = emu->kind == FL_EMU_FLASH ? FL_EMU_FLASH_SECTOR : 0u;
    nvm->caps = (uint16_t)(FL_CAP_ERROR_MODELS | FL_CAP_EXACT_CELLS |
                           (emu->kind == FL_EMU_SRAM ? FL_CAP_VOLATILE : 0u));
    nvm->word_bits = 8u;
    nvm->erased_value = 0xFFu;
    memset(nvm->name, 0, sizeof nvm->name);
    const char *n = names[emu->kind];
    for (size_t i = 0; n[i] != '\0' && i < sizeof nvm->name; i++) {
        nvm->name[i] = n[i];
    }
}
