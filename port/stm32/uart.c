/*
 * USART1/2/3 of the STM32F405: ring buffers filled and drained by the
 * interrupt handlers (see uart.h for the flow control).
 */
#include "uart.h"

#include "regs.h"

static uint8_t tech_rx[SHIM_UART_RX_RING], tech_tx[SHIM_UART_TX_RING];
static uint8_t dev_rx[SHIM_UART_RX_RING], dev_tx[SHIM_UART_TX_RING];
static uint8_t evt_rx[16], evt_tx[SHIM_UART_TX_RING];

_Static_assert((SHIM_UART_RX_RING & (SHIM_UART_RX_RING - 1)) == 0,
	       "RX ring size must be a power of two");
_Static_assert((SHIM_UART_TX_RING & (SHIM_UART_TX_RING - 1)) == 0,
	       "TX ring size must be a power of two");

static struct shim_uart uarts[SHIM_UART__COUNT] = {
	[SHIM_UART_TECH] = { USART1_BASE, IRQ_USART1,
			     { tech_rx, sizeof(tech_rx), 0, 0 },
			     { tech_tx, sizeof(tech_tx), 0, 0 }, 0, 0, 0 },
	[SHIM_UART_DEV] = { USART2_BASE, IRQ_USART2,
			    { dev_rx, sizeof(dev_rx), 0, 0 },
			    { dev_tx, sizeof(dev_tx), 0, 0 }, 0, 0, 0 },
	[SHIM_UART_EVT] = { USART3_BASE, IRQ_USART3,
			    { evt_rx, sizeof(evt_rx), 0, 0 },
			    { evt_tx, sizeof(evt_tx), 0, 0 }, 0, 0, 0 },
};

void USART1_IRQHandler(void);
void USART2_IRQHandler(void);
void USART3_IRQHandler(void);

static uint32_t ring_used(const struct shim_ring *r)
{
	return r->head - r->tail;
}

struct shim_uart *shim_uart_get(enum shim_uart_id id)
{
	return &uarts[id];
}

static void pins_af7(uint32_t gpio, unsigned pin_a, unsigned pin_b)
{
	unsigned pins[2] = { pin_a, pin_b };
	unsigned i;

	for (i = 0; i < 2; i++) {
		unsigned p = pins[i];

		GPIO_MODER(gpio) = (GPIO_MODER(gpio) & ~(3u << (2 * p))) |
				   2u << (2 * p);
		if (p < 8) {
			GPIO_AFRL(gpio) = (GPIO_AFRL(gpio) & ~(15u << (4 * p))) |
					  7u << (4 * p);
		} else {
			GPIO_AFRH(gpio) =
				(GPIO_AFRH(gpio) & ~(15u << (4 * (p - 8)))) |
				7u << (4 * (p - 8));
		}
	}
}

void shim_uart_init(enum shim_uart_id id, uint32_t baud)
{
	struct shim_uart *u = &uarts[id];
	uint32_t pclk;

	switch (id) {
	case SHIM_UART_TECH: /* PA9 TX, PA10 RX */
		RCC_AHB1ENR |= RCC_AHB1ENR_GPIOA;
		RCC_APB2ENR |= RCC_APB2ENR_USART1;
		pins_af7(GPIOA_BASE, 9, 10);
		pclk = SHIM_STM32_APB2_CLK;
		break;
	case SHIM_UART_DEV: /* PA2 TX, PA3 RX */
		RCC_AHB1ENR |= RCC_AHB1ENR_GPIOA;
		RCC_APB1ENR |= RCC_APB1ENR_USART2;
		pins_af7(GPIOA_BASE, 2, 3);
		pclk = SHIM_STM32_APB1_CLK;
		break;
	default: /* PB10 TX, PB11 RX */
		RCC_AHB1ENR |= RCC_AHB1ENR_GPIOB;
		RCC_APB1ENR |= RCC_APB1ENR_USART3;
		pins_af7(GPIOB_BASE, 10, 11);
		pclk = SHIM_STM32_APB1_CLK;
		break;
	}
	u->rx.head = u->rx.tail = 0;
	u->tx.head = u->tx.tail = 0;
	/* Oversampling by 16: BRR = pclk / baud, rounded. */
	USART_BRR(u->base) = (pclk + baud / 2) / baud;
	USART_CR2(u->base) = 0;
	USART_CR3(u->base) = 0;
	USART_CR1(u->base) = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE |
			     USART_CR1_RXNEIE;
	NVIC_IPR8(u->irq) = 0x40;
	shim_irq_enable(u->irq);
}

static void uart_isr(struct shim_uart *u)
{
	uint32_t sr = USART_SR(u->base);

	while (sr & (USART_SR_RXNE | USART_SR_ORE)) {
		if (ring_used(&u->rx) == u->rx.cap) {
			/* Full: leave the byte in DR and hold the line
			 * off until the loop reads (shim_uart_read). */
			u->rx_held = 1;
			NVIC_ICER((unsigned)u->irq >> 5) =
				1u << ((unsigned)u->irq & 31u);
			break;
		}
		if (sr & USART_SR_ORE) {
			u->overruns++;
		}
		/* Reading DR clears RXNE (and ORE after the SR read). */
		u->rx.buf[u->rx.head & (u->rx.cap - 1)] =
			(uint8_t)USART_DR(u->base);
		u->rx.head++;
		sr = USART_SR(u->base);
	}
	if ((USART_CR1(u->base) & USART_CR1_TXEIE) && (sr & USART_SR_TXE)) {
		if (ring_used(&u->tx) == 0) {
			USART_CR1(u->base) &= ~USART_CR1_TXEIE;
		} else {
			USART_DR(u->base) = u->tx.buf[u->tx.tail & (u->tx.cap - 1)];
			u->tx.tail++;
		}
	}
}

void USART1_IRQHandler(void)
{
	uart_isr(&uarts[SHIM_UART_TECH]);
}

void USART2_IRQHandler(void)
{
	uart_isr(&uarts[SHIM_UART_DEV]);
}

void USART3_IRQHandler(void)
{
	uart_isr(&uarts[SHIM_UART_EVT]);
}

size_t shim_uart_rx_avail(const struct shim_uart *u)
{
	return ring_used(&u->rx);
}

size_t shim_uart_read(struct shim_uart *u, uint8_t *buf, size_t cap)
{
	size_t n = 0;

	while (n < cap && ring_used(&u->rx) > 0) {
		buf[n++] = u->rx.buf[u->rx.tail & (u->rx.cap - 1)];
		u->rx.tail++;
	}
	if (n > 0 && u->rx_held) {
		u->rx_held = 0;
		shim_irq_enable(u->irq);
	}
	return n;
}

size_t shim_uart_tx_room(const struct shim_uart *u)
{
	return u->tx.cap - ring_used(&u->tx);
}

int shim_uart_tx_pending(const struct shim_uart *u)
{
	return ring_used(&u->tx) > 0;
}

size_t shim_uart_write(struct shim_uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	while (n < len && ring_used(&u->tx) < u->tx.cap) {
		u->tx.buf[u->tx.head & (u->tx.cap - 1)] = buf[n++];
		u->tx.head++;
	}
	if (n > 0) {
		USART_CR1(u->base) |= USART_CR1_TXEIE;
	}
	return n;
}

void shim_uart_flush_rx(struct shim_uart *u)
{
	uint32_t m = shim_irq_save();

	while (USART_SR(u->base) & USART_SR_RXNE) {
		(void)USART_DR(u->base);
	}
	u->rx.tail = u->rx.head;
	if (u->rx_held) {
		u->rx_held = 0;
		shim_irq_enable(u->irq);
	}
	shim_irq_restore(m);
}

void shim_uart_flush_tx(struct shim_uart *u)
{
	uint32_t m = shim_irq_save();

	u->tx.tail = u->tx.head;
	USART_CR1(u->base) &= ~USART_CR1_TXEIE;
	shim_irq_restore(m);
}

void shim_uart_kick(struct shim_uart *u)
{
	uint32_t m;

	if (ring_used(&u->tx) == 0) {
		return;
	}
	m = shim_irq_save();
	while (ring_used(&u->tx) > 0 && (USART_SR(u->base) & USART_SR_TXE)) {
		USART_DR(u->base) = u->tx.buf[u->tx.tail & (u->tx.cap - 1)];
		u->tx.tail++;
	}
	if (ring_used(&u->tx) == 0) {
		USART_CR1(u->base) &= ~USART_CR1_TXEIE;
	}
	shim_irq_restore(m);
}
