/*
 * Interrupt-driven USART driver with ring buffers (8N1, no flow control).
 *
 * Receive: the RXNE interrupt moves each byte into the RX ring. When the
 * ring is full the interrupt is masked in the NVIC and the byte stays in
 * DR, so the sender is held off (QEMU stops delivering; on hardware the
 * next byte would overrun, which RTS/CTS on the device line prevents).
 * shim_uart_read() unmasks it again.
 * Transmit: bytes go into the TX ring; the TXE interrupt drains it. QEMU
 * does not raise TXE interrupts (its writes complete at once), so the
 * main loop also calls shim_uart_kick(), which drains what TXE allows.
 */
#ifndef SHIM_STM32_UART_H
#define SHIM_STM32_UART_H

#include <stddef.h>
#include <stdint.h>

#ifndef SHIM_UART_RX_RING
#define SHIM_UART_RX_RING 512
#endif
#ifndef SHIM_UART_TX_RING
#define SHIM_UART_TX_RING 1024
#endif

struct shim_ring {
	uint8_t *buf;
	uint32_t cap;           /* a power of two */
	volatile uint32_t head; /* written by the producer */
	volatile uint32_t tail; /* written by the consumer */
};

struct shim_uart {
	uint32_t base;
	int irq;
	struct shim_ring rx;
	struct shim_ring tx;
	volatile uint32_t rx_held;    /* RX masked: the ring was full */
	volatile uint32_t overruns;   /* ORE seen */
	uint32_t tx_dropped;          /* shim_uart_write_all() gave up */
};

enum shim_uart_id {
	SHIM_UART_TECH = 0, /* USART1 */
	SHIM_UART_DEV = 1,  /* USART2 */
	SHIM_UART_EVT = 2,  /* USART3: the event line */
	SHIM_UART__COUNT,
};

/* Clocks, pins, 8N1 at baud, interrupts on. */
void shim_uart_init(enum shim_uart_id id, uint32_t baud);
struct shim_uart *shim_uart_get(enum shim_uart_id id);

/* Bytes waiting in the RX ring. */
size_t shim_uart_rx_avail(const struct shim_uart *u);
/* Takes up to cap bytes from the RX ring; returns the count. */
size_t shim_uart_read(struct shim_uart *u, uint8_t *buf, size_t cap);
/* Free room in the TX ring. */
size_t shim_uart_tx_room(const struct shim_uart *u);
/* 1 while bytes wait in the TX ring. */
int shim_uart_tx_pending(const struct shim_uart *u);
/* Queues up to len bytes; returns the count taken. */
size_t shim_uart_write(struct shim_uart *u, const uint8_t *buf, size_t len);
/* Empties the RX ring (and the byte held in DR) / the TX ring. */
void shim_uart_flush_rx(struct shim_uart *u);
void shim_uart_flush_tx(struct shim_uart *u);
/* Moves TX bytes to the line while TXE is set (see above). */
void shim_uart_kick(struct shim_uart *u);

#endif
