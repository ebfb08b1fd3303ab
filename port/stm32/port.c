/*
 * The STM32F4 port (see port_stm32.h): the clock (host-paced in the
 * emulator, SysTick-counted otherwise), CTR-DRBG, the
 * semihosting store and the identity key.
 */
#include "port_stm32.h"

#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/memory_buffer_alloc.h>

#include "regs.h"
#include "semihost.h"
#include "util.h"

#ifndef SHIM_STM32_HEAP
#define SHIM_STM32_HEAP 8192
#endif
#define HEAP_FILL 0xA5u
/* The allocator's first block header lies below this offset. */
#define HEAP_FILL_FROM 64
#define STORE_NAME_MAX 64

void SysTick_Handler(void);

static volatile uint32_t ticks_lo; /* ms since boot, low word */
static volatile uint32_t ticks_hi;
static int64_t boot_wall_ns;
static int64_t boot_mono_ns;

static mbedtls_ctr_drbg_context drbg;
static mbedtls_ecp_keypair identity;
/* The mbedTLS heap lives in CCM (no DMA there, none needed). */
static unsigned char heap[SHIM_STM32_HEAP]
	__attribute__((section(".ccm"), aligned(8)));

/* ---- clock ----------------------------------------------------------- */

void SysTick_Handler(void)
{
	if (++ticks_lo == 0) {
		ticks_hi++;
	}
}

uint64_t shim_stm32_ms(void)
{
	uint32_t hi, lo;

	do {
		hi = ticks_hi;
		lo = ticks_lo;
	} while (hi != ticks_hi);
	return (uint64_t)hi << 32 | lo;
}

/* The SysTick time: the ms count and the down-counter read together,
 * retried when a tick came in between. */
static int64_t systick_ns(void)
{
	uint32_t reload = SYST_RVR + 1u;
	uint64_t ms;
	uint32_t cvr;

	do {
		ms = shim_stm32_ms();
		cvr = SYST_CVR;
	} while (ms != shim_stm32_ms());
	return (int64_t)ms * 1000000 +
	       (int64_t)((uint64_t)(reload - 1u - cvr) * 1000000u / reload);
}

/*
 * The time between readings comes from the host's monotonic clock where
 * the host has one (semihosting SYS_ELAPSED): an emulator delivers
 * SysTick interrupts late or not at all when the guest is busy, so
 * counted ticks fall behind real time by several per cent, and a TOTP
 * gate whose clock runs slow refuses valid codes after minutes. On a
 * board the same role is the RTC's (docs/hardware-port.md). SysTick
 * stays the wake-up source of the idle loop either way.
 */
static int64_t host_tick_hz;

static int64_t mono_ns(void *ctx)
{
	uint64_t t;

	(void)ctx;
	if (host_tick_hz > 0 && sh_elapsed(&t) == 0) {
		uint64_t hz = (uint64_t)host_tick_hz;

		return (int64_t)(t / hz * 1000000000u +
				 t % hz * 1000000000u / hz);
	}
	return systick_ns();
}

static int64_t wall_ns(void *ctx)
{
	return boot_wall_ns + (mono_ns(ctx) - boot_mono_ns);
}

void shim_stm32_clock_init(void)
{
	int64_t t0, t;
	int64_t until;
	uint64_t probe;

	SYST_RVR = SHIM_STM32_SYSCLK / 1000u - 1u;
	SYST_CVR = 0;
	SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
	host_tick_hz = sh_tickfreq();
	if (host_tick_hz > 0 && sh_elapsed(&probe) != 0) {
		host_tick_hz = 0;
	}
	/* SYS_TIME counts whole seconds: wait for the next one to begin
	 * (at most 1.1 s) so that the wall clock is right to the tick, not
	 * up to a second late (TOTP steps are decided at their edges). */
	t0 = sh_time();
	until = mono_ns(NULL) + 1100000000LL;
	do {
		t = sh_time();
	} while (t == t0 && mono_ns(NULL) < until);
	boot_mono_ns = mono_ns(NULL);
	boot_wall_ns = t * 1000000000LL;
}

/* ---- randomness ------------------------------------------------------ */

/* The DRBG's entropy: the host's random device, read as a file. */
static int entropy(void *ctx, unsigned char *buf, size_t len)
{
	int fd;
	long n;

	(void)ctx;
	fd = sh_open("/dev/urandom", SH_MODE_RB);
	if (fd < 0) {
		return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
	}
	n = sh_read(fd, buf, len);
	sh_close(fd);
	if (n < 0 || (size_t)n != len) {
		return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
	}
	return 0;
}

static int rng_fill(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	while (len > 0) {
		size_t n = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ?
				   len : MBEDTLS_CTR_DRBG_MAX_REQUEST;

		if (mbedtls_ctr_drbg_random(&drbg, buf, n) != 0) {
			return SHIM_ECRYPTO;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/* ---- store ----------------------------------------------------------- */

static int store_path(const char *name, const char *suffix, char *out)
{
	size_t a = strlen(name), b = strlen(suffix);
	size_t i;

	if (a == 0 || a + b >= STORE_NAME_MAX) {
		return SHIM_EINVAL;
	}
	/* Plain names only: nothing outside the state directory. */
	for (i = 0; i < a; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      (c == '.' && i > 0))) {
			return SHIM_EINVAL;
		}
	}
	memcpy(out, name, a);
	memcpy(out + a, suffix, b + 1);
	return 0;
}

static int store_load(void *ctx, const char *name, uint8_t *buf, size_t cap,
		      size_t *len)
{
	char path[STORE_NAME_MAX];
	uint8_t trailer[4];
	long flen, n;
	size_t plen;
	int fd, rc;

	(void)ctx;
	*len = 0;
	rc = store_path(name, "", path);
	if (rc != 0) {
		return rc;
	}
	fd = sh_open(path, SH_MODE_RB);
	if (fd < 0) {
		return sh_errno() == 2 /* ENOENT */ ? SHIM_ENOENT : SHIM_EIO;
	}
	flen = sh_flen(fd);
	if (flen < 4) {
		sh_close(fd);
		return flen < 0 ? SHIM_EIO : SHIM_ECORRUPT;
	}
	plen = (size_t)flen - 4;
	if (plen > cap) {
		sh_close(fd);
		*len = plen;
		return SHIM_ENOSPC;
	}
	n = sh_read(fd, buf, plen);
	if (n < 0 || (size_t)n != plen ||
	    sh_read(fd, trailer, sizeof(trailer)) != (long)sizeof(trailer)) {
		sh_close(fd);
		shim_memzero(buf, cap);
		return SHIM_EIO;
	}
	sh_close(fd);
	if (shim_get_u32(trailer) != shim_crc32(0, buf, plen)) {
		shim_memzero(buf, cap);
		return SHIM_ECORRUPT;
	}
	*len = plen;
	return 0;
}

static int store_save(void *ctx, const char *name, const uint8_t *buf,
		      size_t len)
{
	char path[STORE_NAME_MAX], tmp[STORE_NAME_MAX];
	uint8_t trailer[4];
	int fd, rc;

	(void)ctx;
	rc = store_path(name, "", path);
	if (rc == 0) {
		rc = store_path(name, ".tmp", tmp);
	}
	if (rc != 0) {
		return rc;
	}
	shim_put_u32(trailer, shim_crc32(0, buf, len));
	fd = sh_open(tmp, SH_MODE_WB);
	if (fd < 0) {
		return SHIM_EIO;
	}
	if (sh_write(fd, buf, len) != (long)len ||
	    sh_write(fd, trailer, sizeof(trailer)) != (long)sizeof(trailer)) {
		sh_close(fd);
		sh_remove(tmp);
		return SHIM_EIO;
	}
	if (sh_close(fd) != 0) {
		sh_remove(tmp);
		return SHIM_EIO;
	}
	/* rename(2) on the host: the old or the new blob, never a mix. */
	if (sh_rename(tmp, path) != 0) {
		sh_remove(tmp);
		return SHIM_EIO;
	}
	return 0;
}

/* ---- mbedTLS heap ---------------------------------------------------- */

size_t shim_stm32_heap_size(void)
{
	return sizeof(heap);
}

size_t shim_stm32_heap_peak(void)
{
	size_t i = sizeof(heap);

	/* The allocator takes the lowest block that fits: the bytes never
	 * touched are at the end and still hold the fill. */
	while (i > 0 && heap[i - 1] == HEAP_FILL) {
		i--;
	}
	return i;
}

/* The stack (sections.ld) was filled with SHIM_STACK_FILL at reset
 * (startup.c); it grows down from _estack. */
extern uint32_t _sstack, _estack;
#define SHIM_STACK_FILL 0xDEADBEEFu

size_t shim_stm32_stack_size(void)
{
	return (size_t)((uintptr_t)&_estack - (uintptr_t)&_sstack);
}

size_t shim_stm32_stack_peak(void)
{
	const volatile uint32_t *p = (const volatile uint32_t *)&_sstack;
	const volatile uint32_t *end = (const volatile uint32_t *)&_estack;

	while (p < end && *p == SHIM_STACK_FILL) {
		p++;
	}
	return (size_t)((uintptr_t)end - (uintptr_t)p);
}

/* ---- key pairs in the store ------------------------------------------ */

/* Loads the P-256 key pair whose private scalar is the blob name, or makes
 * one and saves it (*made = 1). */
static int keypair(struct shim_stm32_port *sp, const char *name,
		   mbedtls_ecp_keypair *kp, int *made)
{
	const struct shim_store_ops *st = &sp->port.store;
	uint8_t d[32];
	size_t len = 0;
	int rc;

	*made = 0;
	rc = st->load(st->ctx, name, d, sizeof(d), &len);
	if (rc == 0 && len == sizeof(d)) {
		if (mbedtls_ecp_read_key(MBEDTLS_ECP_DP_SECP256R1, kp, d,
					 sizeof(d)) != 0 ||
		    mbedtls_ecp_mul(&kp->grp, &kp->Q, &kp->d, &kp->grp.G,
				    mbedtls_ctr_drbg_random, &drbg) != 0) {
			rc = SHIM_ECORRUPT;
		}
	} else if (rc == SHIM_ENOENT) {
		rc = SHIM_ECRYPTO;
		if (mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, kp,
					mbedtls_ctr_drbg_random, &drbg) == 0 &&
		    mbedtls_mpi_write_binary(&kp->d, d, sizeof(d)) == 0) {
			rc = st->save(st->ctx, name, d, sizeof(d));
			*made = rc == 0;
		}
	} else if (rc == 0) {
		rc = SHIM_ECORRUPT;
	}
	shim_memzero(d, sizeof(d));
	return rc;
}

int shim_stm32_load_identity(struct shim_stm32_port *sp)
{
	int rc;

	mbedtls_ecp_keypair_free(&identity);
	mbedtls_ecp_keypair_init(&identity);
	sp->mbc.identity = NULL;
	rc = keypair(sp, SHIM_STM32_IDENTITY_NAME, &identity,
		     &sp->identity_new);
	if (rc != 0) {
		mbedtls_ecp_keypair_free(&identity);
		return rc;
	}
	sp->mbc.identity = &identity;
	return 0;
}

int shim_stm32_local_keypair(struct shim_stm32_port *sp, const char *name,
			     uint8_t pub[SHIM_P256_PUB_LEN])
{
	mbedtls_ecp_keypair kp;
	size_t olen = 0;
	int made, rc;

	mbedtls_ecp_keypair_init(&kp);
	rc = keypair(sp, name, &kp, &made);
	if (rc == 0 &&
	    (mbedtls_ecp_point_write_binary(&kp.grp, &kp.Q,
					    MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
					    pub, SHIM_P256_PUB_LEN) != 0 ||
	     olen != SHIM_P256_PUB_LEN)) {
		rc = SHIM_ECRYPTO;
	}
	mbedtls_ecp_keypair_free(&kp);
	return rc;
}

/* ---- the whole port -------------------------------------------------- */

int shim_stm32_port_init(struct shim_stm32_port *sp, const char *pers)
{
	memset(sp, 0, sizeof(*sp));
	/* The allocator clears its buffer; the fill for the high-water mark
	 * goes in afterwards, above its first block header. */
	mbedtls_memory_buffer_alloc_init(heap, sizeof(heap));
	memset(heap + HEAP_FILL_FROM, HEAP_FILL, sizeof(heap) - HEAP_FILL_FROM);
	mbedtls_ecp_keypair_init(&identity);

	mbedtls_ctr_drbg_init(&drbg);
	/* Prediction resistance off: the DRBG reseeds from the host every
	 * MBEDTLS_CTR_DRBG_RESEED_INTERVAL requests. */
	if (mbedtls_ctr_drbg_seed(&drbg, entropy, NULL,
				  (const unsigned char *)pers,
				  pers ? strlen(pers) : 0) != 0) {
		return SHIM_ECRYPTO;
	}
	sp->port.clock.wall_ns = wall_ns;
	sp->port.clock.mono_ns = mono_ns;
	sp->port.rng.fill = rng_fill;
	sp->port.store.load = store_load;
	sp->port.store.save = store_save;
	sp->mbc.f_rng = mbedtls_ctr_drbg_random;
	sp->mbc.rng_ctx = &drbg;
	shim_mbedtls_crypto_ops(&sp->port.crypto, &sp->mbc);
	return 0;
}
