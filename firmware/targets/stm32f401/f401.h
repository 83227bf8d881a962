/* The few STM32F401 registers this firmware touches (RM0368), as volatile pointers. */
#ifndef F401_H
#define F401_H

#include <stdint.h>

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR REG(RCC_BASE + 0x30u)
#define RCC_APB1ENR REG(RCC_BASE + 0x40u)
#define RCC_APB2ENR REG(RCC_BASE + 0x44u)

#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(b) REG((b) + 0x00u)
#define GPIO_OSPEEDR(b) REG((b) + 0x08u)
#define GPIO_PUPDR(b) REG((b) + 0x0Cu)
#define GPIO_BSRR(b) REG((b) + 0x18u)
#define GPIO_AFRL(b) REG((b) + 0x20u)

#define USART2_BASE 0x40004400u
#define USART2_SR REG(USART2_BASE + 0x00u)
#define USART2_DR REG(USART2_BASE + 0x04u)
#define USART2_BRR REG(USART2_BASE + 0x08u)
#define USART2_CR1 REG(USART2_BASE + 0x0Cu)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)

#define SPI1_BASE 0x40013000u
#define SPI1_CR1 REG(SPI1_BASE + 0x00u)
#define SPI1_SR REG(SPI1_BASE + 0x08u)
#define SPI1_DR (*(volatile uint8_t *)(SPI1_BASE + 0x0Cu))
#define SPI_SR_RXNE (1u << 0)
#define SPI_SR_TXE (1u << 1)

#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER1 REG(0xE000E104u)
#define USART2_IRQN 38u

#define HSI_HZ 16000000u /* the reset clock; no PLL is set up */

#endif
