/* The SPI hardware-abstraction layer the JEDEC memory driver runs on: one chip select, full
 * duplex byte transfers (mode 0), and a millisecond clock for busy-wait timeouts. */
#ifndef FL_SPI_HAL_H
#define FL_SPI_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fl_spi_hal {
    void *ctx;
    void (*select)(void *ctx, bool active); /* drive CS low (active) or high */
    /* clocks `len` bytes: sends tx[i] (0xFF if tx is NULL), stores the received byte in rx[i]
     * (discarded if rx is NULL) */
    void (*transfer)(void *ctx, const uint8_t *tx, uint8_t *rx, size_t len);
    uint32_t (*millis)(void *ctx);
};

#endif
