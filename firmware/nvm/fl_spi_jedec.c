#include "fl_spi_jedec.h"

#include "fl_frame.h"

static void send_addr_cmd(struct fl_jedec *dev, uint8_t cmd, uint32_t addr)
{
    uint8_t hdr[4];
    size_t n = 0;
    hdr[n++] = cmd;
    if (dev->cfg.addr_bytes == 3u) {
        hdr[n++] = (uint8_t)(addr >> 16);
    }
    hdr[n++] = (uint8_t)(addr >> 8);
    hdr[n++] = (uint8_t)addr;
    dev->hal->transfer(dev->hal->ctx, hdr, NULL, n);
}

static void simple_cmd(struct fl_jedec *dev, uint8_t cmd)
{
    dev->hal->select(dev->hal->ctx, true);
    dev->hal->transfer(dev->hal->ctx, &cmd, NULL, 1u);
    dev->hal->select(dev->hal->ctx, false);
}

static uint8_t read_status(struct fl_jedec *dev)
{
    uint8_t tx[2] = {FL_JEDEC_RDSR, 0xFFu};
    uint8_t rx[2] = {0u, 0u};
    dev->hal->select(dev->hal->ctx, true);
    dev->hal->transfer(dev->hal->ctx, tx, rx, 2u);
    dev->hal->select(dev->hal->ctx, false);
    return rx[1];
}

static int wait_ready(struct fl_jedec *dev, uint32_t timeout_ms)
{
    uint32_t start = dev->hal->millis(dev->hal->ctx);
    for (;;) {
        if ((read_status(dev) & FL_JEDEC_WIP) == 0u) {
            return FL_ST_OK;
        }
        if ((uint32_t)(dev->hal->millis(dev->hal->ctx) - start) > timeout_ms) {
            return FL_ST_NVM_ERROR;
        }
    }
}

static int jedec_read(void *ctx, uint32_t offset, uint8_t *buf, uint32_t len)
{
    struct fl_jedec *dev = ctx;
    dev->hal->select(dev->hal->ctx, true);
    send_addr_cmd(dev, FL_JEDEC_READ, offset);
    dev->hal->transfer(dev->hal->ctx, NULL, buf, len);
    dev->hal->select(dev->hal->ctx, false);
    return FL_ST_OK;
}

static int jedec_write(void *ctx, uint32_t offset, const uint8_t *buf, uint32_t len)
{
    struct fl_jedec *dev = ctx;
    uint32_t page = dev->cfg.page_size;
    while (len > 0u) {
        uint32_t room = page - offset % page; /* bytes to the end of this page */
        uint32_t n = len < room ? len : room;
        simple_cmd(dev, FL_JEDEC_WREN);
        dev->hal->select(dev->hal->ctx, true);
        send_addr_cmd(dev, FL_JEDEC_PROGRAM, offset);
        dev->hal->transfer(dev->hal->ctx, buf, NULL, n);
        dev->hal->select(dev->hal->ctx, false);
        int st = wait_ready(dev, dev->cfg.program_timeout_ms);
        if (st != FL_ST_OK) {
            return st;
        }
        offset += n;
        buf += n;
        len -= n;
    }
    return FL_ST_OK;
}

static int jedec_erase(void *ctx, uint32_t offset, uint32_t len)
{
    struct fl_jedec *dev = ctx;
    if (dev->cfg.erase_block == 0u) {
        /* FRAM / ReRAM: no erase command; write the erased value */
        static const uint8_t ones[64] = {
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
        while (len > 0u) {
            uint32_t n = len < sizeof ones ? len : (uint32_t)sizeof ones;
            int st = jedec_write(ctx, offset, ones, n);
            if (st != FL_ST_OK) {
                return st;
            }
            offset += n;
            len -= n;
        }
        return FL_ST_OK;
    }
    for (uint32_t a = offset; a < offset + len; a += dev->cfg.erase_block) {
        simple_cmd(dev, FL_JEDEC_WREN);
        dev->hal->select(dev->hal->ctx, true);
        send_addr_cmd(dev, FL_JEDEC_SECTOR_ERASE, a);
        dev->hal->select(dev->hal->ctx, false);
        int st = wait_ready(dev, dev->cfg.erase_timeout_ms);
        if (st != FL_ST_OK) {
            return st;
        }
    }
    return FL_ST_OK;
}

static int jedec_set_mode(void *ctx, const struct fl_mode *mode)
{
    struct fl_jedec *dev = ctx;
    if (mode->model == FL_MODEL_NONE) {
        return FL_ST_OK;
    }
    if (mode->model != FL_MODEL_PROGRAM || mode->a > 0xFFu) {
        return FL_ST_UNSUPPORTED;
    }
    simple_cmd(dev, FL_JEDEC_WREN);
    uint8_t tx[2] = {FL_JEDEC_WRSR, (uint8_t)mode->a};
    dev->hal->select(dev->hal->ctx, true);
    dev->hal->transfer(dev->hal->ctx, tx, NULL, 2u);
    dev->hal->select(dev->hal->ctx, false);
    return wait_ready(dev, dev->cfg.program_timeout_ms);
}

static const struct fl_nvm_ops jedec_ops = {
    .read = jedec_read,
    .read_cells = NULL,
    .write = jedec_write,
    .erase = jedec_erase,
    .set_mode = jedec_set_mode,
    .flips = NULL,
};

int fl_jedec_init(struct fl_jedec *dev, const struct fl_spi_hal *hal,
                  const struct fl_jedec_config *cfg, struct fl_nvm *nvm)
{
    static const char name[] = "spi-jedec";
    dev->hal = hal;
    dev->cfg = *cfg;
    /* the descriptor is valid even if probing fails: a memory of size 0 */
    nvm->ops = &jedec_ops;
    nvm->ctx = dev;
    nvm->size = 0u;
    nvm->erase_block = cfg->erase_block;
    nvm->caps = FL_CAP_PROGRAM_MODE;
    nvm->word_bits = 8u;
    nvm->erased_value = 0xFFu;
    for (size_t i = 0; i < sizeof nvm->name; i++) {
        nvm->name[i] = i < sizeof name ? name[i] : '\0';
    }
    uint8_t tx[4] = {FL_JEDEC_RDID, 0xFFu, 0xFFu, 0xFFu};
    uint8_t rx[4] = {0u, 0u, 0u, 0u};
    hal->select(hal->ctx, true);
    hal->transfer(hal->ctx, tx, rx, 4u);
    hal->select(hal->ctx, false);
    for (int i = 0; i < 3; i++) {
        dev->id[i] = rx[i + 1];
    }
    int blank = (rx[1] == 0x00u && rx[2] == 0x00u && rx[3] == 0x00u) ||
                (rx[1] == 0xFFu && rx[2] == 0xFFu && rx[3] == 0xFFu);
    if (blank) {
        return FL_ST_NVM_ERROR;
    }
    if (dev->cfg.size == 0u) {
        if (rx[3] < 10u || rx[3] > 31u) {
            return FL_ST_NVM_ERROR;
        }
        dev->cfg.size = (uint32_t)1u << rx[3];
    }
    if (dev->cfg.page_size == 0u || (dev->cfg.addr_bytes != 2u && dev->cfg.addr_bytes != 3u)) {
        return FL_ST_NVM_ERROR;
    }
    nvm->size = dev->cfg.size;
    return FL_ST_OK;
}
