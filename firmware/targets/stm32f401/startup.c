/* Cortex-M4 start-up for the STM32F401: vector table, .data copy, .bss clear, then main(). */
#include <stdint.h>

extern uint32_t _stack_top, _data_load, _data_start, _data_end, _bss_start, _bss_end;

int main(void);
void reset_handler(void);
void default_handler(void);
void systick_handler(void);
void usart2_handler(void);

void default_handler(void)
{
    for (;;) {
    }
}

void reset_handler(void)
{
    uint32_t *src = &_data_load;
    for (uint32_t *dst = &_data_start; dst < &_data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_bss_start; dst < &_bss_end;) {
        *dst++ = 0u;
    }
    (void)main();
    for (;;) {
    }
}

/* 16 system exceptions + 85 peripheral interrupts (USART2 is IRQ 38) */
__attribute__((section(".isr_vector"), used)) static void (*const vectors[16 + 85])(void) = {
    [0] = (void (*)(void))(uintptr_t)&_stack_top,
    [1] = reset_handler,
    [2] = default_handler,  /* NMI */
    [3] = default_handler,  /* HardFault */
    [4] = default_handler,  /* MemManage */
    [5] = default_handler,  /* BusFault */
    [6] = default_handler,  /* UsageFault */
    [11] = default_handler, /* SVCall */
    [14] = default_handler, /* PendSV */
    [15] = systick_handler,
    [16 + 38] = usart2_handler,
};
