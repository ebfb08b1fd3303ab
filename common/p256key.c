/*
 * P-256 key files and a reusable verifier. See p256key.h.
 *
 * Keys are read and written with mbedTLS. The verifier uses OpenSSL's
 * libcrypto when the build found it (its P-256 code verifies about twenty
 * times faster than mbedTLS 2.28, which matters to a monitor checking a
 * fleet's day of heartbeats), and mbedTLS otherwise.
 */
#include "p256key.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#ifdef SHIM_HAVE_OPENSSL
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>
#endif

#include "port_linux.h"
#include "util.h"

#define KEYFILE_MAX (64 * 1024)

static int load_pk(mbedtls_pk_context *pk, const uint8_t *buf, size_t len,
		   int *is_private)
{
	uint8_t *tmp;
	int rc;

	/* mbedTLS wants PEM NUL-terminated, with the NUL counted. */
	tmp = malloc(len + 1);
	if (tmp == NULL) {
		return SHIM_ENOMEM;
	}
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	*is_private = 0;
	rc = mbedtls_pk_parse_public_key(pk, tmp, len + 1);
	if (rc != 0) {
		mbedtls_pk_free(pk);
		mbedtls_pk_init(pk);
		rc = mbedtls_pk_parse_key(pk, tmp, len + 1, NULL, 0);
		*is_private = rc == 0;
	}
	shim_memzero(tmp, len + 1);
	free(tmp);
	if (rc != 0 || mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
		return SHIM_EINVAL;
	}
	return 0;
}

static int rng(void *ctx, unsigned char *buf, size_t len)
{
	return shim_linux_random(buf, len) == 0 ? 0 : -1;
}

int shim_p256_sign_with(const char *path, const uint8_t digest[32],
			uint8_t sig[SHIM_P256_SIG_LEN])
{
	mbedtls_pk_context pk;
	mbedtls_mpi r, s;
	mbedtls_ecp_keypair *ec;
	uint8_t *buf = NULL;
	size_t len = 0;
	int priv = 0, rc;

	mbedtls_pk_init(&pk);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	rc = shim_read_file(path, KEYFILE_MAX, &buf, &len);
	if (rc != 0) {
		goto out;
	}
	rc = load_pk(&pk, buf, len, &priv);
	if (rc == 0 && !priv) {
		rc = SHIM_EINVAL;
	}
	if (rc != 0) {
		goto out;
	}
	ec = mbedtls_pk_ec(pk);
	rc = SHIM_ECRYPTO;
	/* Deterministic nonces (RFC 6979): no dependence on the RNG. */
	if (mbedtls_ecdsa_sign_det_ext(&ec->grp, &r, &s, &ec->d, digest, 32,
				       MBEDTLS_MD_SHA256, rng, NULL) != 0 ||
	    mbedtls_mpi_write_binary(&r, sig, 32) != 0 ||
	    mbedtls_mpi_write_binary(&s, sig + 32, 32) != 0) {
		goto out;
	}
	rc = 0;
out:
	if (buf != NULL) {
		shim_memzero(buf, len);
		free(buf);
	}
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	mbedtls_pk_free(&pk);
	return rc;
}

void shim_sha256(const uint8_t *buf, size_t len, uint8_t out[32])
{
#ifdef SHIM_HAVE_OPENSSL
	/* Uses the CPU's SHA extensions where there are some. */
	SHA256(buf, len, out);
#else
	mbedtls_sha256_ret(buf, len, out, 0);
#endif
}

/* ---- verifier ------------------------------------------------------------ */

#ifdef SHIM_HAVE_OPENSSL

/* A key gets its own fixed-base table after this many verifications. */
#ifndef TABLE_AFTER
#define TABLE_AFTER 16
#endif
#define BATCH_CHUNK 64

struct shim_p256_verifier {
	EC_KEY *key;
	EC_GROUP *gq;           /* P-256 with Q as generator, precomputed */
	unsigned uses;
	pthread_mutex_t mu;
};

struct shim_p256_verifier *shim_p256_verifier_new(
	const uint8_t pub[SHIM_P256_PUB_LEN])
{
	struct shim_p256_verifier *v = calloc(1, sizeof(*v));
	const unsigned char *p = pub;

	if (v == NULL) {
		return NULL;
	}
	pthread_mutex_init(&v->mu, NULL);
	v->key = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	if (v->key == NULL ||
	    o2i_ECPublicKey(&v->key, &p, SHIM_P256_PUB_LEN) == NULL ||
	    EC_KEY_check_key(v->key) != 1) {
		shim_p256_verifier_free(v);
		return NULL;
	}
	return v;
}

int shim_p256_verifier_verify(struct shim_p256_verifier *v,
			      const uint8_t digest[32],
			      const uint8_t sig[SHIM_P256_SIG_LEN])
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL);
	BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
	int ok = 0;

	if (es != NULL && r != NULL && s != NULL &&
	    ECDSA_SIG_set0(es, r, s) == 1) {
		r = NULL;
		s = NULL;
		ok = ECDSA_do_verify(digest, 32, es, v->key) == 1;
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return ok ? 0 : SHIM_ESIG;
}

void shim_p256_verifier_free(struct shim_p256_verifier *v)
{
	if (v != NULL) {
		EC_GROUP_free(v->gq);
		EC_KEY_free(v->key);
		pthread_mutex_destroy(&v->mu);
		free(v);
	}
}

int shim_p256_verifier_threadsafe(void)
{
	return 1;
}

const char *shim_p256_verifier_backend(void)
{
	return "openssl";
}

/*
 * The fixed-base table of Q: OpenSSL keeps a precomputed table only for a
 * group's generator, so a copy of the P-256 group with Q as its generator
 * gets one. u2 * Q then costs what u1 * G costs. Built once per key, by
 * whichever thread gets there first; the others go on without it.
 */
static EC_GROUP *table_of(struct shim_p256_verifier *v, BN_CTX *ctx)
{
	EC_GROUP *gq = __atomic_load_n(&v->gq, __ATOMIC_ACQUIRE);
	const EC_GROUP *g;

	if (gq != NULL) {
		return gq;
	}
	if (__atomic_add_fetch(&v->uses, 1, __ATOMIC_RELAXED) < TABLE_AFTER ||
	    pthread_mutex_trylock(&v->mu) != 0) {
		return NULL;
	}
	if (v->gq == NULL) {
		g = EC_KEY_get0_group(v->key);
		gq = EC_GROUP_dup(g);
		if (gq != NULL &&
		    (EC_GROUP_set_generator(gq, EC_KEY_get0_public_key(v->key),
					    EC_GROUP_get0_order(g),
					    BN_value_one()) != 1 ||
		     EC_GROUP_precompute_mult(gq, ctx) != 1)) {
			EC_GROUP_free(gq);
			gq = NULL;
		}
		if (gq != NULL) {
			__atomic_store_n(&v->gq, gq, __ATOMIC_RELEASE);
		} else {
			/* Not again for this key. */
			__atomic_store_n(&v->uses, 0u - 1u - (1u << 30),
					 __ATOMIC_RELAXED);
		}
	}
	pthread_mutex_unlock(&v->mu);
	return __atomic_load_n(&v->gq, __ATOMIC_ACQUIRE);
}

/* ECDSA verification with the modular inversions of a chunk shared
 * (Montgomery's trick) and the x check done in Jacobian coordinates
 * (X == x * Z^2), so no field inversion per signature. */
static void verify_chunk(struct shim_p256_item *it, size_t n, BN_CTX *ctx)
{
	const EC_GROUP *g = EC_KEY_get0_group(it[0].v->key);
	const BIGNUM *order = EC_GROUP_get0_order(g);
	BIGNUM *r[BATCH_CHUNK], *s[BATCH_CHUNK], *pref[BATCH_CHUNK];
	BIGNUM *inv, *w, *e, *u1, *u2, *p, *X, *Z, *t;
	EC_POINT *P1, *P2, *R;
	EC_GROUP *gq;
	size_t i;
	int ok;

	BN_CTX_start(ctx);
	for (i = 0; i < n; i++) {
		r[i] = BN_CTX_get(ctx);
		s[i] = BN_CTX_get(ctx);
		pref[i] = BN_CTX_get(ctx);
	}
	inv = BN_CTX_get(ctx);
	w = BN_CTX_get(ctx);
	e = BN_CTX_get(ctx);
	u1 = BN_CTX_get(ctx);
	u2 = BN_CTX_get(ctx);
	p = BN_CTX_get(ctx);
	X = BN_CTX_get(ctx);
	Z = BN_CTX_get(ctx);
	t = BN_CTX_get(ctx);
	P1 = EC_POINT_new(g);
	P2 = EC_POINT_new(g);
	R = EC_POINT_new(g);
	for (i = 0; i < n; i++) {
		it[i].rc = SHIM_ESIG;
	}
	if (t == NULL || P1 == NULL || P2 == NULL || R == NULL ||
	    EC_GROUP_get_curve(g, p, NULL, NULL, ctx) != 1) {
		goto out;
	}
	/* r and s in [1, n-1]; a bad one is replaced by 1 so the shared
	 * product stays invertible, and fails below. */
	for (i = 0; i < n; i++) {
		BN_bin2bn(it[i].sig, 32, r[i]);
		BN_bin2bn(it[i].sig + 32, 32, s[i]);
		ok = !BN_is_zero(r[i]) && !BN_is_zero(s[i]) &&
		     BN_cmp(r[i], order) < 0 && BN_cmp(s[i], order) < 0;
		it[i].rc = ok ? 0 : SHIM_ESIG;
		if (!ok) {
			BN_one(s[i]);
		}
		if (!(i == 0 ? BN_copy(pref[0], s[0]) != NULL :
			       BN_mod_mul(pref[i], pref[i - 1], s[i], order,
					  ctx) == 1)) {
			goto fail_all;
		}
	}
	if (BN_mod_inverse(inv, pref[n - 1], order, ctx) == NULL) {
		goto fail_all;
	}
	for (i = n; i-- > 0;) {
		/* inv = (s_0 ... s_i)^-1 here */
		if (i > 0) {
			if (BN_mod_mul(w, inv, pref[i - 1], order, ctx) != 1 ||
			    BN_mod_mul(inv, inv, s[i], order, ctx) != 1) {
				goto fail_all;
			}
		} else if (BN_copy(w, inv) == NULL) {
			goto fail_all;
		}
		if (it[i].rc != 0) {
			continue;
		}
		it[i].rc = SHIM_ESIG;
		gq = table_of(it[i].v, ctx);
		if (BN_bin2bn(it[i].digest, 32, e) == NULL ||
		    BN_mod_mul(u1, e, w, order, ctx) != 1 ||
		    BN_mod_mul(u2, r[i], w, order, ctx) != 1) {
			continue;
		}
		if (gq != NULL) {
			ok = EC_POINT_mul(g, P1, u1, NULL, NULL, ctx) == 1 &&
			     EC_POINT_mul(gq, P2, u2, NULL, NULL, ctx) == 1 &&
			     EC_POINT_add(g, R, P1, P2, ctx) == 1;
		} else {
			ok = EC_POINT_mul(g, R, u1,
					  EC_KEY_get0_public_key(it[i].v->key),
					  u2, ctx) == 1;
		}
		if (!ok || EC_POINT_is_at_infinity(g, R) ||
		    EC_POINT_get_Jprojective_coordinates_GFp(g, R, X, NULL, Z,
							     ctx) != 1 ||
		    BN_mod_sqr(Z, Z, p, ctx) != 1) {
			continue;
		}
		/* x(R) mod n == r  <=>  X == r * Z^2, or (r + n) * Z^2 when
		 * r + n < p. */
		if (BN_mod_mul(t, r[i], Z, p, ctx) == 1 && BN_cmp(t, X) == 0) {
			it[i].rc = 0;
			continue;
		}
		if (BN_add(t, r[i], order) == 1 && BN_cmp(t, p) < 0 &&
		    BN_mod_mul(t, t, Z, p, ctx) == 1 && BN_cmp(t, X) == 0) {
			it[i].rc = 0;
		}
	}
	goto out;
fail_all:
	for (i = 0; i < n; i++) {
		it[i].rc = SHIM_ESIG;
	}
out:
	EC_POINT_free(P1);
	EC_POINT_free(P2);
	EC_POINT_free(R);
	BN_CTX_end(ctx);
}

void shim_p256_verify_batch(struct shim_p256_item *items, size_t n)
{
	BN_CTX *ctx = BN_CTX_new();
	size_t i, k;

	if (ctx == NULL) {
		for (i = 0; i < n; i++) {
			items[i].rc = shim_p256_verifier_verify(
				items[i].v, items[i].digest, items[i].sig);
		}
		return;
	}
	for (i = 0; i < n; i += k) {
		k = n - i < BATCH_CHUNK ? n - i : BATCH_CHUNK;
		verify_chunk(items + i, k, ctx);
	}
	BN_CTX_free(ctx);
}

#else

struct shim_p256_verifier {
	mbedtls_ecp_group grp;
	mbedtls_ecp_point q;
};

struct shim_p256_verifier *shim_p256_verifier_new(
	const uint8_t pub[SHIM_P256_PUB_LEN])
{
	struct shim_p256_verifier *v = calloc(1, sizeof(*v));

	if (v == NULL) {
		return NULL;
	}
	mbedtls_ecp_group_init(&v->grp);
	mbedtls_ecp_point_init(&v->q);
	if (mbedtls_ecp_group_load(&v->grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
	    mbedtls_ecp_point_read_binary(&v->grp, &v->q, pub,
					  SHIM_P256_PUB_LEN) != 0 ||
	    mbedtls_ecp_check_pubkey(&v->grp, &v->q) != 0) {
		shim_p256_verifier_free(v);
		return NULL;
	}
	return v;
}

int shim_p256_verifier_verify(struct shim_p256_verifier *v,
			      const uint8_t digest[32],
			      const uint8_t sig[SHIM_P256_SIG_LEN])
{
	mbedtls_mpi r, s;
	int rc = SHIM_ESIG;

	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	if (mbedtls_mpi_read_binary(&r, sig, 32) == 0 &&
	    mbedtls_mpi_read_binary(&s, sig + 32, 32) == 0 &&
	    mbedtls_ecdsa_verify(&v->grp, digest, 32, &v->q, &r, &s) == 0) {
		rc = 0;
	}
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return rc;
}

void shim_p256_verifier_free(struct shim_p256_verifier *v)
{
	if (v != NULL) {
		mbedtls_ecp_point_free(&v->q);
		mbedtls_ecp_group_free(&v->grp);
		free(v);
	}
}

int shim_p256_verifier_threadsafe(void)
{
	/* mbedTLS fills the group's comb table on first use. */
	return 0;
}

const char *shim_p256_verifier_backend(void)
{
	return "mbedtls";
}

void shim_p256_verify_batch(struct shim_p256_item *items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		items[i].rc = shim_p256_verifier_verify(items[i].v,
							items[i].digest,
							items[i].sig);
	}
}

#endif
