/*
 * mbedTLS 2.28 configuration of the STM32F405 firmware: the crypto the
 * shim uses and nothing else. No network, no files, no time, no platform
 * entropy (the CTR-DRBG is seeded by the port: the RNG peripheral on
 * hardware, the host's random device through semihosting in QEMU), and a
 * static buffer for the few allocations of bignum and ECP.
 */
#ifndef SHIM_FW_MBEDTLS_CONFIG_H
#define SHIM_FW_MBEDTLS_CONFIG_H

/* System */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_DEPRECATED_REMOVED

/* Memory: mbedtls_calloc/free from a static buffer (firmware/stm32f4). */
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_NO_STD_FUNCTIONS
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
#define MBEDTLS_MEMORY_ALIGN_MULTIPLE 8
/* A corrupt heap header halts the unit (the gate stays closed). */
#define MBEDTLS_PLATFORM_EXIT_MACRO shim_fw_fatal
void shim_fw_fatal(int code);

/* Digests and MACs */
#define MBEDTLS_MD_C
#define MBEDTLS_SHA1_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_SHA512_C
#define MBEDTLS_SHA512_SMALLER
#define MBEDTLS_SHA512_NO_SHA384

/* AES-256-GCM */
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_AES_FEWER_TABLES
#define MBEDTLS_CIPHER_C
#define MBEDTLS_GCM_C

/* P-256: ECDSA and ECDH */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_WINDOW_SIZE 2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_ECP_MAX_BITS 256
#define MBEDTLS_MPI_MAX_SIZE 32
#define MBEDTLS_MPI_WINDOW_SIZE 2
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECDH_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C

/* PEM of the public keys written for the host */
#define MBEDTLS_BASE64_C

/* Random numbers */
#define MBEDTLS_CTR_DRBG_C

#include "mbedtls/check_config.h"

#endif
