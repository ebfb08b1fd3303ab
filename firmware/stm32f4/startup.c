/*
 * Reset and vector table of the STM32F405 (RM0090 table 61: 16 system
 * exceptions, 82 interrupts). The handlers the firmware has are strong
 * symbols elsewhere; every other vector goes to fault_handler().
 */
#include <stdint.h>
#include <string.h>

#include "regs.h"
#include "semihost.h"

#define NUM_IRQS 82
#define SHIM_STACK_FILL 0xDEADBEEFu

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sccm, _eccm;
extern uint32_t _sstack, _estack;

int main(void);
void Reset_Handler(void);
void fault_handler(void);
void shim_fw_fatal(int code);

void SysTick_Handler(void);
void USART1_IRQHandler(void);
void USART2_IRQHandler(void);
void USART3_IRQHandler(void);

/* A fault or an unexpected interrupt: the gate is closed by stopping. In
 * QEMU the emulation ends with an error (the launcher reports it); on a
 * board the watchdog or a reset would restart into the closed gate. */
void fault_handler(void)
{
	sh_write0("shim firmware: fault\n");
	sh_exit(2);
}

void shim_fw_fatal(int code)
{
	(void)code;
	sh_write0("shim firmware: fatal error in the crypto library\n");
	sh_exit(3);
}

typedef void (*vector_t)(void);

/* Every vector goes to the fault handler, then the ones we have. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
__attribute__((section(".isr_vector"), used))
static const vector_t vectors[16 + NUM_IRQS] = {
	[2 ... 16 + NUM_IRQS - 1] = fault_handler,
	[0] = (vector_t)(uintptr_t)&_estack,
	[1] = Reset_Handler,
	[7 ... 10] = 0,       /* reserved */
	[13] = 0,             /* reserved */
	[15] = SysTick_Handler,
	[16 + IRQ_USART1] = USART1_IRQHandler,
	[16 + IRQ_USART2] = USART2_IRQHandler,
	[16 + IRQ_USART3] = USART3_IRQHandler,
};
#pragma GCC diagnostic pop

void Reset_Handler(void)
{
	volatile uint32_t *p;

	/* Full access to the FPU (CP10, CP11) before any float code. */
	SCB_CPACR |= 0xFu << 20;
	__asm__ volatile("dsb\n\tisb" ::: "memory");
	SCB_VTOR = (uint32_t)(uintptr_t)vectors;

	memcpy(&_sdata, &_sidata,
	       (size_t)((uintptr_t)&_edata - (uintptr_t)&_sdata));
	memset(&_sbss, 0, (size_t)((uintptr_t)&_ebss - (uintptr_t)&_sbss));
	memset(&_sccm, 0, (size_t)((uintptr_t)&_eccm - (uintptr_t)&_sccm));
	/* A fill pattern on the stack for the high-water mark. */
	for (p = (volatile uint32_t *)(uintptr_t)&_sstack;
	     (uintptr_t)p < (uintptr_t)&_estack - 256; p++) {
		*p = SHIM_STACK_FILL;
	}
	(void)main();
	fault_handler();
}
