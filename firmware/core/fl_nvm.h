/* The NVM interface the protocol core stores bytes through: byte-addressed, offsets in bytes.
 * Every operation returns an enum fl_status (FL_ST_OK on success). The core checks ranges
 * before calling, so implementations may assume offset + len <= size. */
#ifndef FL_NVM_H
#define FL_NVM_H

#include <stdint.h>

/* Error model / mode selected by SET_MODE (docs/protocol.md, "SET_MODE"). Probabilities are
 * thresholds t in [0, 2^32 - 1]: an event of probability t / 2^32. */
enum fl_model {
    FL_MODEL_NONE = 0x00,
    FL_MODEL_BSC = 0x01,     /* a = flip probability of every bit on every read */
    FL_MODEL_ASYM = 0x02,    /* a = P(stored 0 reads as 1), b = P(stored 1 reads as 0) */
    FL_MODEL_STUCK = 0x03,   /* a = fraction of stuck cells, b = share of those stuck at 1 */
    FL_MODEL_PROGRAM = 0x10, /* real chip: a = value for the status register (WRSR) */
};

struct fl_mode {
    uint8_t model; /* enum fl_model */
    uint32_t a;
    uint32_t b;
    uint64_t seed; /* BSC/ASYM: read-noise PRNG seed; STUCK: device seed */
};

/* Capability bits reported by INFO. */
#define FL_CAP_ERROR_MODELS 0x0001u /* SET_MODE accepts BSC, ASYM, STUCK */
#define FL_CAP_PROGRAM_MODE 0x0002u /* SET_MODE accepts PROGRAM */
#define FL_CAP_EXACT_CELLS 0x0004u  /* DIGEST source CELLS bypasses the read error model */
#define FL_CAP_VOLATILE 0x0008u     /* contents are lost at power-off */

struct fl_nvm_ops {
    int (*read)(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len);
    /* Reads the stored cells without the emulated read error model; NULL where the two are the
     * same thing (a real chip). */
    int (*read_cells)(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len);
    int (*write)(void *ctx, uint32_t offset, const uint8_t *buf, uint32_t len);
    /* offset and len are multiples of erase_block when erase_block > 0 */
    int (*erase)(void *ctx, uint32_t offset, uint32_t len);
    int (*set_mode)(void *ctx, const struct fl_mode *mode);
    /* bit flips the read path injected so far (emulated), 0 on a real chip */
    uint32_t (*flips)(void *ctx);
};

struct fl_nvm {
    const struct fl_nvm_ops *ops;
    void *ctx;
    uint32_t size;        /* bytes */
    uint32_t erase_block; /* bytes; 0 = writes overwrite, no erase needed */
    uint16_t caps;        /* FL_CAP_* */
    uint8_t word_bits;    /* width of one memory word in bits (8, 16, 32) */
    uint8_t erased_value; /* byte value of an erased cell */
    char name[12];        /* NUL-padded, e.g. "emu-rram" */
};

#endif
