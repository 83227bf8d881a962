/* FlipLab board firmware for the ST Nucleo-F401RE with a JEDEC SPI memory on SPI1.
 *   UART: USART2 on PA2 (TX) / PA3 (RX), wired to the ST-LINK virtual COM port (USB), 8N1,
 *         FL_BAUD bits/s (default 115200); received bytes go through an interrupt ring buffer.
 *   SPI:  SPI1 PA5 SCK (D13), PA6 MISO (D12), PA7 MOSI (D11), CS on PB6 (D10), mode 0, 4 MHz.
 *   Memory: default FRAM/ReRAM (no erase; FL_MEM_SIZE bytes, default 256 KiB = Fujitsu
 *           MB85RS2MTA; 524288 for the MB85AS4MT ReRAM), 3-byte addresses; or FL_MEMORY_NOR
 *           (e.g. Winbond W25Q16JV: size from RDID, 256-byte pages, 4 KiB sector erase).
 *           Or FL_MEMORY_EMU: no chip, the emulated RRAM of firmware/nvm in FL_MEM_SIZE bytes of
 *           SRAM, with its error models (the QEMU build; docs/board.md "Under emulation").
 *   Clock: FL_HCLK_HZ, the core clock SysTick and the baud divider are derived from (default the
 *          16 MHz HSI the chip starts on; QEMU's netduinoplus2 runs its core at 168 MHz).
 *   Build: make mcu [MCU_MEMORY=nor|emu] [MCU_MEM_SIZE=524288] [MCU_BAUD=115200] [MCU_HCLK=16000000]. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "f401.h"
#include "fl_board.h"
#include "fl_spi_jedec.h"
#ifdef FL_MEMORY_EMU
#include "fl_emu_nvm.h"
#endif

#ifndef FL_BAUD
#define FL_BAUD 115200u
#endif
#ifndef FL_MEM_SIZE
#define FL_MEM_SIZE (256u * 1024u) /* bytes; FRAM/ReRAM have no usable RDID capacity code */
#endif

#ifndef FL_HCLK_HZ
#define FL_HCLK_HZ HSI_HZ /* no PLL is set up: the core runs on the reset clock */
#endif

#define RX_RING 1024u /* power of two */

static volatile uint32_t ticks_ms;
static volatile uint8_t rx_ring[RX_RING];
static volatile uint32_t rx_head, rx_tail;

#ifdef FL_MEMORY_EMU
static uint8_t emu_mem[FL_MEM_SIZE];
static struct fl_emu emu;
#else
static struct fl_jedec jedec;
#endif
static struct fl_nvm nvm;
static struct fl_board board;

void systick_handler(void);
void usart2_handler(void);

void systick_handler(void)
{
    ticks_ms++;
}

void usart2_handler(void)
{
    uint32_t sr = USART2_SR;
    if (sr & (USART_SR_RXNE | USART_SR_ORE)) {
        uint8_t byte = (uint8_t)USART2_DR; /* reading DR also clears ORE */
        uint32_t next = (rx_head + 1u) & (RX_RING - 1u);
        if (next != rx_tail) { /* on overflow the byte is lost; the frame CRC catches it */
            rx_ring[rx_head] = byte;
            rx_head = next;
        }
    }
}

static void uart_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        while ((USART2_SR & USART_SR_TXE) == 0u) {
        }
        USART2_DR = data[i];
    }
}

#ifndef FL_MEMORY_EMU /* the SPI memory's HAL */
static uint32_t millis(void *ctx)
{
    (void)ctx;
    return ticks_ms;
}

static void spi_select(void *ctx, bool active)
{
    (void)ctx;
    while (SPI1_SR & (1u << 7)) { /* BSY: let the last byte finish before moving CS */
    }
    GPIO_BSRR(GPIOB_BASE) = active ? (1u << (6u + 16u)) : (1u << 6u);
}

static void spi_transfer(void *ctx, const uint8_t *tx, uint8_t *rx, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        while ((SPI1_SR & SPI_SR_TXE) == 0u) {
        }
        SPI1_DR = tx ? tx[i] : 0xFFu;
        while ((SPI1_SR & SPI_SR_RXNE) == 0u) {
        }
        uint8_t v = SPI1_DR;
        if (rx) {
            rx[i] = v;
        }
    }
}
#endif

static void set_af(uint32_t port, unsigned pin, unsigned af)
{
    GPIO_MODER(port) = (GPIO_MODER(port) & ~(3u << (2u * pin))) | (2u << (2u * pin));
    GPIO_OSPEEDR(port) |= 2u << (2u * pin);
    GPIO_AFRL(port) = (GPIO_AFRL(port) & ~(0xFu << (4u * pin))) | (af << (4u * pin));
}

static void hw_init(void)
{
    RCC_AHB1ENR |= (1u << 0) | (1u << 1); /* GPIOA, GPIOB */
    RCC_APB1ENR |= 1u << 17;              /* USART2 */
    RCC_APB2ENR |= 1u << 12;              /* SPI1 */

    set_af(GPIOA_BASE, 2u, 7u); /* USART2 TX */
    set_af(GPIOA_BASE, 3u, 7u); /* USART2 RX */
    GPIO_PUPDR(GPIOA_BASE) |= 1u << (2u * 3u);
    set_af(GPIOA_BASE, 5u, 5u); /* SPI1 SCK */
    set_af(GPIOA_BASE, 6u, 5u); /* SPI1 MISO */
    set_af(GPIOA_BASE, 7u, 5u); /* SPI1 MOSI */
    GPIO_BSRR(GPIOB_BASE) = 1u << 6; /* CS high before it becomes an output */
    GPIO_MODER(GPIOB_BASE) = (GPIO_MODER(GPIOB_BASE) & ~(3u << 12)) | (1u << 12);

    USART2_BRR = (FL_HCLK_HZ + FL_BAUD / 2u) / FL_BAUD; /* oversampling by 16 */
    USART2_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    NVIC_ISER1 = 1u << (USART2_IRQN - 32u);

    /* master, software CS, fPCLK/4 = 4 MHz, mode 0, MSB first */
    SPI1_CR1 = (1u << 2) | (1u << 3) | (1u << 8) | (1u << 9) | (1u << 6);

    SYST_RVR = FL_HCLK_HZ / 1000u - 1u; /* 1 ms ticks */
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
}

int main(void)
{
    hw_init();
#ifdef FL_MEMORY_EMU
    fl_emu_init(&emu, emu_mem, FL_MEM_SIZE, FL_EMU_RRAM);
    fl_emu_nvm(&emu, &nvm);
#else
    static const struct fl_spi_hal hal = {NULL, spi_select, spi_transfer, millis};
#ifdef FL_MEMORY_NOR
    static const struct fl_jedec_config cfg = {0u, 256u, 4096u, 3u, 10u, 1000u};
#else
    static const struct fl_jedec_config cfg = {FL_MEM_SIZE, 256u, 0u, 3u, 50u, 50u};
#endif
    /* if no memory answers RDID, nvm describes a zero-size memory: INFO still tells the host */
    (void)fl_jedec_init(&jedec, &hal, &cfg, &nvm);
#endif
    fl_board_init(&board, &nvm, uart_write, NULL);
    for (;;) {
        while (rx_tail != rx_head) {
            uint8_t byte = rx_ring[rx_tail];
            rx_tail = (rx_tail + 1u) & (RX_RING - 1u);
            fl_board_feed(&board, &byte, 1u, ticks_ms);
        }
        fl_board_poll(&board, ticks_ms);
    }
}
