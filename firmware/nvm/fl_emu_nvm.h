/* Emulated NVM: a RAM buffer whose reads pass through an error model (docs/protocol.md,
 * "Emulated memory"). Kinds differ in write semantics only:
 *   RRAM, SRAM: a write overwrites; SRAM is reported volatile.
 *   FLASH:      a write can only clear bits (stored &= data); erase sets 4 KiB sectors to 0xFF. */
#ifndef FL_EMU_NVM_H
#define FL_EMU_NVM_H

#include <stdint.h>

#include "fl_nvm.h"
#include "fl_prng.h"

enum fl_emu_kind { FL_EMU_RRAM = 0, FL_EMU_FLASH = 1, FL_EMU_SRAM = 2 };

#define FL_EMU_FLASH_SECTOR 4096u

struct fl_emu {
    uint8_t *mem;
    uint32_t size;
    enum fl_emu_kind kind;
    struct fl_mode mode;
    struct fl_xoshiro rng;
    uint32_t flips;
};

/* `mem` (size bytes) is owned by the caller; it is filled with the erased value 0xFF. */
void fl_emu_init(struct fl_emu *emu, uint8_t *mem, uint32_t size, enum fl_emu_kind kind);
/* Fills in the NVM descriptor that hands `emu` to the protocol core. */
void fl_emu_nvm(struct fl_emu *emu, struct fl_nvm *nvm);
/* Applies the error model to `len` bytes read from byte `offset` (exposed for the tests). */
void fl_emu_corrupt(struct fl_emu *emu, uint32_t offset, uint8_t *buf, uint32_t len);

#endif
