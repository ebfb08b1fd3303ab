#include <string.h>
#include "uart.h"
#include "port_stm32.h"
#include "semihost.h"

int main(void)
{
	struct shim_uart *t;
	char msg[64];
	uint8_t b[64];

	shim_stm32_clock_init();
	shim_uart_init(SHIM_UART_TECH, 115200);
	t = shim_uart_get(SHIM_UART_TECH);
	sh_write0("booted\n");
	strcpy(msg, "hello\r\n");
	shim_uart_write(t, (const uint8_t *)msg, strlen(msg));
	for (;;) {
		size_t n = shim_uart_read(t, b, sizeof(b));
		if (n) shim_uart_write(t, b, n);
		shim_uart_kick(t);
		__asm__ volatile("wfi");
	}
}
