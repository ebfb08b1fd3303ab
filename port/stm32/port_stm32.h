/*
 * The STM32F4 port: fills struct shim_port for the firmware.
 *
 *   clock   SysTick at 1 kHz for the monotonic time; the wall clock is
 *           read once at boot (semihosting SYS_TIME in QEMU; the RTC or a
 *           DS3231 on a board) and carried forward by SysTick.
 *   rng     an mbedTLS CTR-DRBG, seeded from the host's random device
 *           through semihosting in QEMU (the RNG peripheral on a board).
 *   crypto  the shared mbedTLS ops (port/mbedtls), with the identity key
 *           kept in the store (generated at the first boot).
 *   store   one semihosting file per blob, in QEMU's working directory
 *           (the state directory): written to "<name>.tmp", closed, then
 *           renamed over "<name>", with a CRC-32 trailer that load checks.
 *           On a board: two flash sectors used alternately, or LittleFS.
 */
#ifndef SHIM_PORT_STM32_H
#define SHIM_PORT_STM32_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "port.h"

#define SHIM_STM32_IDENTITY_NAME "identity-key"

struct shim_stm32_port {
	struct shim_port port;
	struct shim_mbedtls_crypto mbc;
	int identity_new;     /* the key was made at this boot */
};

/* Starts SysTick and reads the wall clock. Call first. */
void shim_stm32_clock_init(void);
/* Milliseconds since boot (SysTick). */
uint64_t shim_stm32_ms(void);

/* Fills the port; seeds the DRBG (personalised with pers). */
int shim_stm32_port_init(struct shim_stm32_port *sp, const char *pers);

/* Loads the identity key from the store, or makes and saves one. */
int shim_stm32_load_identity(struct shim_stm32_port *sp);

/* The public half of the key pair kept in the store blob name (made and
 * saved at the first call). The private half never leaves the store. */
int shim_stm32_local_keypair(struct shim_stm32_port *sp, const char *name,
			     uint8_t pub[SHIM_P256_PUB_LEN]);

/* Bytes of the mbedTLS heap that were ever in use (high-water mark) and
 * its size. */
size_t shim_stm32_heap_peak(void);
size_t shim_stm32_heap_size(void);

/* Bytes of the stack that were ever used (high-water mark), and its size. */
size_t shim_stm32_stack_peak(void);
size_t shim_stm32_stack_size(void);

#endif
