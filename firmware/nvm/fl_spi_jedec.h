/* Driver for a JEDEC-style serial memory (SPI FRAM, SPI ReRAM, SPI NOR flash) over
 * struct fl_spi_hal. Commands: RDID 0x9F, READ 0x03, WREN 0x06, PAGE PROGRAM / WRITE 0x02,
 * RDSR 0x05 (bit 0 WIP: write in progress), WRSR 0x01, SECTOR ERASE 0x20 (NOR only).
 * Writes are split at page boundaries; after each program/erase the driver polls WIP with a
 * timeout. */
#ifndef FL_SPI_JEDEC_H
#define FL_SPI_JEDEC_H

#include <stdint.h>

#include "fl_nvm.h"
#include "fl_spi_hal.h"

#define FL_JEDEC_RDID 0x9Fu
#define FL_JEDEC_READ 0x03u
#define FL_JEDEC_WREN 0x06u
#define FL_JEDEC_PROGRAM 0x02u
#define FL_JEDEC_RDSR 0x05u
#define FL_JEDEC_WRSR 0x01u
#define FL_JEDEC_SECTOR_ERASE 0x20u
#define FL_JEDEC_WIP 0x01u

struct fl_jedec_config {
    uint32_t size;        /* bytes; 0 = from the RDID capacity byte (2^capacity bytes) */
    uint32_t page_size;   /* bytes per program operation; FRAM: any (e.g. 256) */
    uint32_t erase_block; /* 0 for FRAM/ReRAM (writes overwrite), 4096 for NOR sector erase */
    uint8_t addr_bytes;   /* 2 or 3 */
    uint32_t program_timeout_ms;
    uint32_t erase_timeout_ms;
};

struct fl_jedec {
    const struct fl_spi_hal *hal;
    struct fl_jedec_config cfg;
    uint8_t id[3]; /* manufacturer, memory type, capacity */
};

/* Reads RDID and fills the NVM descriptor. Returns FL_ST_NVM_ERROR when no chip answers
 * (ID all 0x00 or all 0xFF) or the size is unknown; the descriptor then describes a memory of
 * size 0, so a board over it still answers INFO. */
int fl_jedec_init(struct fl_jedec *dev, const struct fl_spi_hal *hal,
                  const struct fl_jedec_config *cfg, struct fl_nvm *nvm);

#endif
