/*
 * The few STM32F405 and Cortex-M4 registers the firmware touches, from
 * the reference manual (RM0090) and the ARMv7-M architecture manual. No
 * vendor headers: the addresses and bits are written out here.
 */
#ifndef SHIM_STM32_REGS_H
#define SHIM_STM32_REGS_H

#include <stdint.h>

#define SHIM_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* RCC (RM0090 7.3) */
#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR SHIM_REG(RCC_BASE + 0x30)
#define RCC_APB1ENR SHIM_REG(RCC_BASE + 0x40)
#define RCC_APB2ENR SHIM_REG(RCC_BASE + 0x44)
#define RCC_AHB1ENR_GPIOA (1u << 0)
#define RCC_AHB1ENR_GPIOB (1u << 1)
#define RCC_APB1ENR_USART2 (1u << 17)
#define RCC_APB1ENR_USART3 (1u << 18)
#define RCC_APB2ENR_USART1 (1u << 4)

/* GPIO (RM0090 8.4): alternate function 7 for the USART pins. */
#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(b) SHIM_REG((b) + 0x00)
#define GPIO_AFRL(b) SHIM_REG((b) + 0x20)
#define GPIO_AFRH(b) SHIM_REG((b) + 0x24)

/* USART (RM0090 30.6) */
#define USART1_BASE 0x40011000u
#define USART2_BASE 0x40004400u
#define USART3_BASE 0x40004800u
#define USART_SR(b) SHIM_REG((b) + 0x00)
#define USART_DR(b) SHIM_REG((b) + 0x04)
#define USART_BRR(b) SHIM_REG((b) + 0x08)
#define USART_CR1(b) SHIM_REG((b) + 0x0C)
#define USART_CR2(b) SHIM_REG((b) + 0x10)
#define USART_CR3(b) SHIM_REG((b) + 0x14)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_TXEIE (1u << 7)
#define USART_CR1_UE (1u << 13)

/* Interrupt numbers (RM0090 table 61) */
#define IRQ_USART1 37
#define IRQ_USART2 38
#define IRQ_USART3 39

/* NVIC and SCB (ARMv7-M B3.4, B3.2) */
#define NVIC_ISER(n) SHIM_REG(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) SHIM_REG(0xE000E180u + 4u * (n))
#define NVIC_IPR8(n) (*(volatile uint8_t *)(uintptr_t)(0xE000E400u + (n)))
#define SCB_VTOR SHIM_REG(0xE000ED08u)
#define SCB_AIRCR SHIM_REG(0xE000ED0Cu)
#define SCB_CPACR SHIM_REG(0xE000ED88u)
#define SCB_AIRCR_RESET (0x05FAu << 16 | 1u << 2)

/* SysTick (ARMv7-M B3.3) */
#define SYST_CSR SHIM_REG(0xE000E010u)
#define SYST_RVR SHIM_REG(0xE000E014u)
#define SYST_CVR SHIM_REG(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* the processor clock */

/* The core clock QEMU's netduinoplus2 models (and the board runs at). */
#define SHIM_STM32_SYSCLK 168000000u
#define SHIM_STM32_APB1_CLK (SHIM_STM32_SYSCLK / 4)
#define SHIM_STM32_APB2_CLK (SHIM_STM32_SYSCLK / 2)

static inline void shim_irq_enable(int irq)
{
	NVIC_ISER((unsigned)irq >> 5) = 1u << ((unsigned)irq & 31u);
}

static inline void shim_irq_disable(int irq)
{
	NVIC_ICER((unsigned)irq >> 5) = 1u << ((unsigned)irq & 31u);
	__asm__ volatile("dsb\n\tisb" ::: "memory");
}

static inline uint32_t shim_irq_save(void)
{
	uint32_t primask;

	__asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
	return primask;
}

static inline void shim_irq_restore(uint32_t primask)
{
	__asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

#endif
