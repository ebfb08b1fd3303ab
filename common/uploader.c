/*
 * Recordings to central custody (uploader.h): the HTTP client (libcurl,
 * mutual TLS) and the uploader thread with its durable state and back-off.
 */
#include "uploader.h"

/* libcurl is loaded at run time, the first time an upload is made (see
 * curl_init below): a shim without custody: configured never maps it and
 * its dependencies (OpenSSL, and some thirty more libraries), which would
 * triple shimd's resident memory. The type-checking macros are off, since
 * the calls below go through pointers. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "logline.h"
#include "port_linux.h"
#include "upload_state.h"
#include "util.h"

#define BACKOFF_MIN_S 1.0
#define READ_CHUNK 65536

/* ---- small helpers ------------------------------------------------------ */

static void up_log(const char *level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void up_log(const char *level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	shim_log_line(level, "custody", fmt, ap);
	va_end(ap);
}

static void hex32(const uint8_t d[32], char out[65])
{
	static const char x[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[64] = '\0';
}

static void b64(const uint8_t *in, size_t n, char *out)
{
	static const char t[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		out[o++] = t[in[i] >> 2];
		out[o++] = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		out[o++] = t[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		out[o++] = t[in[i + 2] & 63];
	}
	if (i < n) {
		out[o++] = t[in[i] >> 2];
		if (i + 1 < n) {
			out[o++] = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			out[o++] = t[(in[i + 1] & 15) << 2];
		} else {
			out[o++] = t[(in[i] & 3) << 4];
			out[o++] = '=';
		}
		out[o++] = '=';
	}
	out[o] = '\0';
}

static int64_t mono_ms(void)
{
	return shim_linux_mono_ns() / 1000000;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

/* The libcurl calls the uploader makes, resolved from libcurl.so.4. */
static struct {
	void *lib;
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	char *(*easy_escape)(CURL *, const char *, int);
	void (*free)(void *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	CURLU *(*url)(void);
	void (*url_cleanup)(CURLU *);
	CURLUcode (*url_get)(const CURLU *, CURLUPart, char **, unsigned int);
	CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
} lc;

#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init lc.global_init
#define curl_easy_init lc.easy_init
#define curl_easy_setopt lc.easy_setopt
#define curl_easy_perform lc.easy_perform
#define curl_easy_getinfo lc.easy_getinfo
#define curl_easy_cleanup lc.easy_cleanup
#define curl_easy_strerror lc.easy_strerror
#define curl_easy_escape lc.easy_escape
#define curl_free lc.free
#define curl_slist_append lc.slist_append
#define curl_slist_free_all lc.slist_free_all
#define curl_url lc.url
#define curl_url_cleanup lc.url_cleanup
#define curl_url_get lc.url_get
#define curl_url_set lc.url_set

static int curl_load(void)
{
	static const struct {
		const char *name;
		size_t off;
	} syms[] = {
#define SYM(f, n) { n, offsetof(__typeof__(lc), f) }
		SYM(global_init, "curl_global_init"),
		SYM(easy_init, "curl_easy_init"),
		SYM(easy_setopt, "curl_easy_setopt"),
		SYM(easy_perform, "curl_easy_perform"),
		SYM(easy_getinfo, "curl_easy_getinfo"),
		SYM(easy_cleanup, "curl_easy_cleanup"),
		SYM(easy_strerror, "curl_easy_strerror"),
		SYM(easy_escape, "curl_easy_escape"),
		SYM(free, "curl_free"),
		SYM(slist_append, "curl_slist_append"),
		SYM(slist_free_all, "curl_slist_free_all"),
		SYM(url, "curl_url"),
		SYM(url_cleanup, "curl_url_cleanup"),
		SYM(url_get, "curl_url_get"),
		SYM(url_set, "curl_url_set"),
#undef SYM
	};
	size_t i;

	lc.lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (lc.lib == NULL) {
		return -1;
	}
	for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *f = dlsym(lc.lib, syms[i].name);

		if (f == NULL) {
			return -1;
		}
		memcpy((char *)&lc + syms[i].off, &f, sizeof(f));
	}
	return 0;
}

static void curl_init(void)
{
	curl_init_rc = curl_load() == 0 &&
		       curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* ---- target ------------------------------------------------------------- */

int shim_custody_target_from_config(struct shim_custody_target *t,
				    const struct shim_config *cfg, char *err,
				    size_t errcap)
{
	memset(t, 0, sizeof(*t));
	if (cfg->custody_url == NULL) {
		snprintf(err, errcap, "no custody: section in %s",
			 cfg->file ? cfg->file : "the configuration");
		return SHIM_EINVAL;
	}
	if (cfg->custody_ca == NULL || cfg->custody_client_cert == NULL ||
	    cfg->custody_client_key == NULL || cfg->shim_id == NULL) {
		snprintf(err, errcap, "custody: needs ca, client_cert and client_key");
		return SHIM_EINVAL;
	}
	t->url = cfg->custody_url;
	t->server_name = cfg->custody_server_name;
	t->ca = cfg->custody_ca;
	t->client_cert = cfg->custody_client_cert;
	t->client_key = cfg->custody_client_key;
	t->shim_id = cfg->shim_id;
	t->timeout_s = (long)(cfg->custody_timeout_seconds + 0.5);
	t->max_bytes_per_second = cfg->custody_max_bytes_per_second;
	if (t->timeout_s < 1) {
		t->timeout_s = 1;
	}
	return 0;
}

char *shim_custody_object_url(const struct shim_custody_target *t,
			      const char *name)
{
	char *id, *out;
	size_t bl = strlen(t->url), n;

	while (bl > 0 && t->url[bl - 1] == '/') {
		bl--;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != 0) {
		return NULL;
	}
	id = curl_easy_escape(NULL, t->shim_id, 0);
	if (id == NULL) {
		return NULL;
	}
	n = bl + strlen(id) + strlen(name) + 3;
	out = malloc(n);
	if (out != NULL) {
		snprintf(out, n, "%.*s/%s/%s", (int)bl, t->url, id, name);
	}
	curl_free(id);
	return out;
}

/* ---- one request ------------------------------------------------------------ */

struct req {
	CURL *h;
	struct curl_slist *hdrs;
	struct curl_slist *connect_to;
	char *url;
	char errbuf[CURL_ERROR_SIZE];
	/* upload source */
	int fd;
	const uint8_t *buf;
	uint64_t len, off;
	/* download sink */
	mbedtls_sha256_context sha;
	int hashing;
	uint64_t got;
	const int *cancel;
};

static int progress_cb(void *arg, curl_off_t dt, curl_off_t dn,
		       curl_off_t ut, curl_off_t un)
{
	const struct req *q = arg;

	return q->cancel != NULL && __atomic_load_n(q->cancel, __ATOMIC_RELAXED);
}

static size_t read_cb(char *p, size_t sz, size_t nm, void *arg)
{
	struct req *q = arg;
	size_t want = sz * nm;
	uint64_t left = q->len - q->off;
	ssize_t n;

	if (want > left) {
		want = (size_t)left;
	}
	if (want == 0) {
		return 0;
	}
	if (q->buf != NULL) {
		memcpy(p, q->buf + q->off, want);
		n = (ssize_t)want;
	} else {
		do {
			n = pread(q->fd, p, want, (off_t)q->off);
		} while (n < 0 && errno == EINTR);
		if (n <= 0) {
			return CURL_READFUNC_ABORT;
		}
	}
	q->off += (uint64_t)n;
	return (size_t)n;
}

static size_t write_cb(char *p, size_t sz, size_t nm, void *arg)
{
	struct req *q = arg;
	size_t n = sz * nm;

	if (q->hashing) {
		mbedtls_sha256_update_ret(&q->sha, (const unsigned char *)p, n);
		q->got += n;
	}
	return n;
}

static void req_free(struct req *q)
{
	if (q->h != NULL) {
		curl_easy_cleanup(q->h);
	}
	if (q->hdrs != NULL) {
		curl_slist_free_all(q->hdrs);
	}
	if (q->connect_to != NULL) {
		curl_slist_free_all(q->connect_to);
	}
	free(q->url);
	mbedtls_sha256_free(&q->sha);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
}

/* A handle for url with every TLS and safety setting; the request line
 * goes to server_name (SNI, certificate check) while the connection goes
 * to the URL's own host, as for the SIEM (host and server_name apart). */
static int req_init(struct req *q, const struct shim_custody_target *t,
		    const char *url, char *reason, size_t rcap)
{
	CURLU *u = NULL;
	char *host = NULL, *port = NULL, *final = NULL;
	char ct[600];
	int rc = SHIM_EINTERNAL;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	mbedtls_sha256_init(&q->sha);
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != 0) {
		snprintf(reason, rcap, "libcurl (libcurl.so.4) could not be "
			 "loaded or did not initialise");
		return SHIM_EINTERNAL;
	}
	u = curl_url();
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
		    CURLUE_OK) {
		snprintf(reason, rcap, "bad URL '%s'", url);
		rc = SHIM_EINVAL;
		goto out;
	}
	if (t->server_name != NULL && strcmp(t->server_name, host) != 0) {
		snprintf(ct, sizeof(ct), "::%s:%s", host, port);
		q->connect_to = curl_slist_append(NULL, ct);
		if (q->connect_to == NULL ||
		    curl_url_set(u, CURLUPART_HOST, t->server_name, 0) !=
			    CURLUE_OK) {
			snprintf(reason, rcap, "bad server name '%s'",
				 t->server_name);
			rc = SHIM_EINVAL;
			goto out;
		}
	}
	if (curl_url_get(u, CURLUPART_URL, &final, 0) != CURLUE_OK) {
		snprintf(reason, rcap, "bad URL '%s'", url);
		rc = SHIM_EINVAL;
		goto out;
	}
	q->url = strdup(final);
	q->h = curl_easy_init();
	if (q->url == NULL || q->h == NULL) {
		snprintf(reason, rcap, "out of memory");
		rc = SHIM_ENOMEM;
		goto out;
	}
	q->hdrs = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	curl_easy_setopt(q->h, CURLOPT_URL, q->url);
	if (q->connect_to != NULL) {
		curl_easy_setopt(q->h, CURLOPT_CONNECT_TO, q->connect_to);
	}
	curl_easy_setopt(q->h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(q->h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(q->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(q->h, CURLOPT_PROXY, "");
	curl_easy_setopt(q->h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(q->h, CURLOPT_SSLVERSION,
			 (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(q->h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(q->h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(q->h, CURLOPT_CAINFO, t->ca);
	curl_easy_setopt(q->h, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(q->h, CURLOPT_SSLCERT, t->client_cert);
	curl_easy_setopt(q->h, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(q->h, CURLOPT_SSLKEY, t->client_key);
	curl_easy_setopt(q->h, CURLOPT_SSLKEYTYPE, "PEM");
	curl_easy_setopt(q->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->h, CURLOPT_CONNECTTIMEOUT, t->timeout_s);
	curl_easy_setopt(q->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(q->h, CURLOPT_LOW_SPEED_TIME, t->timeout_s);
	curl_easy_setopt(q->h, CURLOPT_ERRORBUFFER, q->errbuf);
	curl_easy_setopt(q->h, CURLOPT_USERAGENT, "shimd/" SHIM_VERSION);
	curl_easy_setopt(q->h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(q->h, CURLOPT_WRITEDATA, q);
	q->cancel = t->cancel;
	curl_easy_setopt(q->h, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(q->h, CURLOPT_XFERINFODATA, q);
	curl_easy_setopt(q->h, CURLOPT_NOPROGRESS, 0L);
	rc = 0;
out:
	curl_free(host);
	curl_free(port);
	curl_free(final);
	curl_url_cleanup(u);
	if (rc != 0) {
		req_free(q);
	}
	return rc;
}

static int is_tls_error(CURLcode c)
{
	switch (c) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
		return 1;
	default:
		return 0;
	}
}

/* Runs q; fills res on failure. what names the step ("PUT"). */
static int req_run(struct req *q, const char *what,
		   struct shim_custody_result *res)
{
	CURLcode c = curl_easy_perform(q->h);
	long status = 0;

	if (c != CURLE_OK) {
		snprintf(res->reason, sizeof(res->reason), "%s %s: %.80s%s%.140s",
			 is_tls_error(c) ? "TLS" : "network", what,
			 curl_easy_strerror(c), q->errbuf[0] ? ": " : "",
			 q->errbuf);
		curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &status);
		if (status != 0) {
			res->reached = 1;
			res->http_status = status;
		}
		return is_tls_error(c) ? SHIM_ECRYPTO : SHIM_EIO;
	}
	curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &status);
	res->http_status = status;
	res->reached = 1;
	return 0;
}

static void http_fail(struct shim_custody_result *res, const char *what,
		      long status)
{
	snprintf(res->reason, sizeof(res->reason), "HTTP %ld on %s%s", status,
		 what,
		 status == 400 || status == 495 || status == 496 ?
			 " (the store refused the client certificate?)" :
		 status == 413 ? " (the store refuses an object this large)" :
		 status == 403 ? " (not allowed into this shim's directory)" :
				 "");
}

/* HEAD then GET of the object: length and SHA-256 must be ours. */
static int verify(const struct shim_custody_target *t, const char *url,
		  uint64_t size, const char *hex,
		  struct shim_custody_result *res)
{
	struct req q;
	curl_off_t cl = -1;
	uint8_t d[32];
	char got[65];
	int rc;

	rc = req_init(&q, t, url, res->reason, sizeof(res->reason));
	if (rc != 0) {
		return rc;
	}
	curl_easy_setopt(q.h, CURLOPT_NOBODY, 1L);
	rc = req_run(&q, "HEAD", res);
	if (rc == 0 && res->http_status != 200) {
		http_fail(res, "HEAD (check)", res->http_status);
		rc = SHIM_EIO;
	}
	if (rc == 0) {
		curl_easy_getinfo(q.h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		if (cl < 0 || (uint64_t)cl != size) {
			snprintf(res->reason, sizeof(res->reason),
				 "check: the store holds %" PRId64
				 " bytes, the recording has %" PRIu64,
				 (int64_t)cl, size);
			rc = SHIM_ETRUNC;
		}
	}
	req_free(&q);
	if (rc != 0) {
		return rc;
	}
	rc = req_init(&q, t, url, res->reason, sizeof(res->reason));
	if (rc != 0) {
		return rc;
	}
	mbedtls_sha256_starts_ret(&q.sha, 0);
	q.hashing = 1;
	rc = req_run(&q, "GET (check)", res);
	if (rc == 0 && res->http_status != 200) {
		http_fail(res, "GET (check)", res->http_status);
		rc = SHIM_EIO;
	}
	if (rc == 0) {
		mbedtls_sha256_finish_ret(&q.sha, d);
		hex32(d, got);
		if (q.got != size) {
			snprintf(res->reason, sizeof(res->reason),
				 "check: the store returned %" PRIu64
				 " bytes, the recording has %" PRIu64, q.got,
				 size);
			rc = SHIM_ETRUNC;
		} else if (strcmp(got, hex) != 0) {
			snprintf(res->reason, sizeof(res->reason),
				 "check: the stored object's SHA-256 %s differs from the recording's %s",
				 got, hex);
			rc = SHIM_ECORRUPT;
		}
	}
	req_free(&q);
	return rc;
}

static int deliver(const struct shim_custody_target *t, int fd,
		   const uint8_t *buf, uint64_t len, const char *hex,
		   const uint8_t digest[32], const char *name,
		   struct shim_custody_result *res)
{
	struct req q;
	char *url = shim_custody_object_url(t, name);
	char hdr[128], b[64];
	int64_t t0 = shim_linux_mono_ns();
	long st;
	int rc;

	res->size = len;
	memcpy(res->sha256, hex, 65);
	if (url == NULL) {
		snprintf(res->reason, sizeof(res->reason), "out of memory");
		return SHIM_ENOMEM;
	}
	rc = req_init(&q, t, url, res->reason, sizeof(res->reason));
	if (rc != 0) {
		free(url);
		return rc;
	}
	q.fd = fd;
	q.buf = buf;
	q.len = len;
	b64(digest, 32, b);
	snprintf(hdr, sizeof(hdr), "Content-Digest: sha-256=:%s:", b);
	q.hdrs = curl_slist_append(q.hdrs, hdr);
	/* no overwrite where the store understands it (S3, RFC 9110) */
	q.hdrs = curl_slist_append(q.hdrs, "If-None-Match: *");
	curl_easy_setopt(q.h, CURLOPT_HTTPHEADER, q.hdrs);
	curl_easy_setopt(q.h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(q.h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(q.h, CURLOPT_READDATA, &q);
	curl_easy_setopt(q.h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	if (t->max_bytes_per_second > 0) {
		curl_easy_setopt(q.h, CURLOPT_MAX_SEND_SPEED_LARGE,
				 (curl_off_t)t->max_bytes_per_second);
	}
	rc = req_run(&q, "PUT", res);
	q.fd = -1;
	req_free(&q);
	if (rc == 0) {
		st = res->http_status;
		if (st == 409 || st == 412) {
			/* already there (an upload cut off before its check,
			 * e.g. by a restart): delivered only if identical */
			res->existed = 1;
		} else if (st != 200 && st != 201 && st != 204) {
			http_fail(res, "PUT", st);
			rc = SHIM_EIO;
		}
	}
	if (rc == 0) {
		rc = verify(t, url, len, hex, res);
		if (rc != 0 && res->existed) {
			char why[sizeof(res->reason)];

			snprintf(why, sizeof(why), "%s", res->reason);
			snprintf(res->reason, sizeof(res->reason),
				 "an object already exists at %.60s and is not this recording: %.120s",
				 url, why);
		}
	}
	res->seconds = (double)(shim_linux_mono_ns() - t0) / 1e9;
	free(url);
	return rc;
}

int shim_custody_file_digest(const char *path, char hex[65], uint64_t *size)
{
	mbedtls_sha256_context c;
	uint8_t buf[READ_CHUNK], d[32];
	uint64_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc = 0;

	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts_ret(&c, 0);
	for (;;) {
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			rc = shim_err_from_errno(errno);
			break;
		}
		if (r == 0) {
			break;
		}
		mbedtls_sha256_update_ret(&c, buf, (size_t)r);
		n += (uint64_t)r;
	}
	mbedtls_sha256_finish_ret(&c, d);
	mbedtls_sha256_free(&c);
	close(fd);
	if (rc == 0) {
		hex32(d, hex);
		*size = n;
	}
	return rc;
}

int shim_custody_deliver(const struct shim_custody_target *t,
			 const char *path, const char *name,
			 struct shim_custody_result *res)
{
	mbedtls_sha256_context c;
	uint8_t buf[READ_CHUNK], d[32];
	char hex[65];
	struct stat st;
	uint64_t n = 0;
	ssize_t r;
	int fd, rc;

	memset(res, 0, sizeof(*res));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = shim_err_from_errno(errno);
		snprintf(res->reason, sizeof(res->reason), "open %s: %s", path,
			 strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(res->reason, sizeof(res->reason), "%s: not a file", path);
		close(fd);
		return SHIM_EINVAL;
	}
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts_ret(&c, 0);
	while (n < (uint64_t)st.st_size) {
		r = pread(fd, buf, sizeof(buf), (off_t)n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			break;
		}
		mbedtls_sha256_update_ret(&c, buf, (size_t)r);
		n += (uint64_t)r;
	}
	mbedtls_sha256_finish_ret(&c, d);
	mbedtls_sha256_free(&c);
	if (n != (uint64_t)st.st_size) {
		snprintf(res->reason, sizeof(res->reason), "read %s: short", path);
		close(fd);
		return SHIM_EIO;
	}
	hex32(d, hex);
	rc = deliver(t, fd, NULL, n, hex, d, name, res);
	close(fd);
	return rc;
}

int shim_custody_deliver_buf(const struct shim_custody_target *t,
			     const uint8_t *buf, size_t len, const char *name,
			     struct shim_custody_result *res)
{
	uint8_t d[32];
	char hex[65];

	memset(res, 0, sizeof(*res));
	mbedtls_sha256_ret(buf, len, d, 0);
	hex32(d, hex);
	return deliver(t, -1, buf, len, hex, d, name, res);
}

/* ---- the uploader thread -------------------------------------------------- */

struct item {
	char name[SHIM_SESSION_ID_MAX + 8]; /* "<id>.rec" */
	char id[SHIM_SESSION_ID_MAX];
	uint64_t size;
	int64_t mtime_ns;   /* sealed at */
};

struct shim_uploader {
	const struct shim_config *cfg;
	struct shim_uploader_ops ops;
	struct shim_custody_target t;
	char *sessions_dir;
	char *state_path;

	pthread_t thread;
	int started;
	int joined;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;           /* (mu; also read atomically by transfers) */
	int kicked;         /* (mu) */
	int64_t trusted_s;  /* (mu) */
	struct shim_upload_state st;     /* (mu) */
	struct shim_uploader_status stat; /* (mu) */

	/* thread-owned */
	double backoff_s;
	int64_t next_try_ms;     /* 0: no retry pending */
	int64_t outage_since_ms; /* first failure of the current outage */
	char outage_reason[256];
};

/* "<id>.rec" with a valid id: the id in out. */
static int rec_name_id(const char *name, char out[SHIM_SESSION_ID_MAX])
{
	size_t n = strlen(name);

	if (n < 5 || strcmp(name + n - 4, ".rec") != 0 ||
	    !shim_upload_id_ok(name, n - 4)) {
		return 0;
	}
	memcpy(out, name, n - 4);
	out[n - 4] = '\0';
	return 1;
}

/* Oldest first: the start second in the ID, then the time sealed (IDs
 * of one second differ only in their random part). */
static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = strncmp(x->id, y->id, 16);

	if (c != 0) {
		return c;
	}
	if (x->mtime_ns != y->mtime_ns) {
		return x->mtime_ns < y->mtime_ns ? -1 : 1;
	}
	return strcmp(x->id, y->id);
}

/* The sealed recordings, oldest first (IDs start with their UTC time). */
static int scan(struct shim_uploader *u, struct item **out, size_t *n)
{
	DIR *d = opendir(u->sessions_dir);
	struct dirent *de;
	struct item *v = NULL, *nv;
	size_t cnt = 0, cap = 0;

	*out = NULL;
	*n = 0;
	if (d == NULL) {
		return shim_err_from_errno(errno);
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char id[SHIM_SESSION_ID_MAX];

		if (!rec_name_id(de->d_name, id) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode)) {
			continue;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 32;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				break;
			}
			v = nv;
		}
		/* rec_name_id() bounds it: "<id>.rec", id < SHIM_SESSION_ID_MAX */
		memcpy(v[cnt].name, de->d_name, strlen(de->d_name) + 1);
		snprintf(v[cnt].id, sizeof(v[cnt].id), "%s", id);
		v[cnt].size = (uint64_t)st.st_size;
		v[cnt].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL +
				  st.st_mtim.tv_nsec;
		cnt++;
	}
	closedir(d);
	if (cnt > 1) {
		qsort(v, cnt, sizeof(*v), item_cmp);
	}
	*out = v;
	*n = cnt;
	return 0;
}

static void emit_failed(struct shim_uploader *u, const char *id,
			const struct shim_custody_result *res, double retry_in)
{
	struct shim_event ev;

	if (u->ops.emit == NULL ||
	    shim_event_init(&ev, "upload_failed", SHIM_SEV_WARNING,
			    shim_linux_wall_ns()) < 0) {
		return;
	}
	shim_event_add(&ev, "session", id);
	shim_event_add(&ev, "reason", res->reason);
	if (res->http_status != 0) {
		shim_event_add_i64(&ev, "http_status", res->http_status);
	}
	shim_event_add_i64(&ev, "retry_in", (int64_t)(retry_in + 0.5));
	u->ops.emit(u->ops.arg, &ev);
}

static void emit_uploaded(struct shim_uploader *u, const char *id,
			  const struct shim_custody_result *res)
{
	struct shim_event ev;
	char secs[32];

	if (u->ops.emit == NULL ||
	    shim_event_init(&ev, "recording_uploaded", SHIM_SEV_NOTICE,
			    shim_linux_wall_ns()) < 0) {
		return;
	}
	snprintf(secs, sizeof(secs), "%.3f", res->seconds);
	shim_event_add(&ev, "session", id);
	shim_event_add_u64(&ev, "size", res->size);
	shim_event_add(&ev, "sha256", res->sha256);
	shim_event_add(&ev, "seconds", secs);
	if (res->existed) {
		shim_event_add(&ev, "note", "already stored");
	}
	u->ops.emit(u->ops.arg, &ev);
}

static void emit_link(struct shim_uploader *u, const char *name,
		      enum shim_severity sev, int64_t outage_ms,
		      uint64_t pending)
{
	struct shim_event ev;

	if (u->ops.emit == NULL ||
	    shim_event_init(&ev, name, sev, shim_linux_wall_ns()) < 0) {
		return;
	}
	shim_event_add_i64(&ev, "outage_seconds", outage_ms / 1000);
	shim_event_add_u64(&ev, "pending", pending);
	if (u->outage_reason[0] != '\0') {
		shim_event_add(&ev, "reason", u->outage_reason);
	}
	u->ops.emit(u->ops.arg, &ev);
}

/* The outage alarm, once it is due: recordings wait and none has been
 * delivered for custody.outage_alarm_seconds. Called with mu held. */
static void outage_check(struct shim_uploader *u, int64_t now)
{
	uint64_t pending;

	if (u->outage_since_ms == 0 || u->stat.outage_alarm ||
	    u->stat.queue_count == 0 ||
	    (double)(now - u->outage_since_ms) / 1000.0 <
		    u->cfg->custody_outage_alarm_seconds) {
		return;
	}
	pending = u->stat.queue_count;
	u->stat.outage_alarm = 1;
	pthread_mutex_unlock(&u->mu);
	up_log("error", "no recording delivered for %.0f s (%" PRIu64
	       " waiting): %s", (double)(now - u->outage_since_ms) / 1000.0,
	       pending, u->outage_reason);
	emit_link(u, "upload_outage", SHIM_SEV_ERR, now - u->outage_since_ms,
		  pending);
	pthread_mutex_lock(&u->mu);
}

static void remove_local(struct shim_uploader *u, const struct item *it,
			 const char *why)
{
	struct shim_event ev;
	int rc;

	if (u->ops.remove == NULL) {
		return;
	}
	rc = u->ops.remove(u->ops.arg, it->name);
	if (rc != 0) {
		up_log("warn", "deleting the delivered %s: %s", it->name,
		       shim_strerror(rc));
		return;
	}
	up_log("info", "deleted the local copy of %s (%s)", it->name, why);
	if (u->ops.emit != NULL &&
	    shim_event_init(&ev, "recording_deleted", SHIM_SEV_NOTICE,
			    shim_linux_wall_ns()) >= 0) {
		shim_event_add(&ev, "file", it->name);
		shim_event_add(&ev, "reason", why);
		u->ops.emit(u->ops.arg, &ev);
	}
}

static int cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Entries of recordings no longer on the shim (their local copy went)
 * leave the state; it is written with the next delivery. Only marks of
 * files that are gone are dropped, so nothing here makes a recording
 * deletable. */
static void forget_gone(struct shim_uploader *u, const struct item *v,
			size_t n)
{
	const char **ids = NULL;
	size_t i = 0;

	if (n > 0) {
		ids = malloc(n * sizeof(*ids));
		if (ids == NULL) {
			return;
		}
		for (i = 0; i < n; i++) {
			ids[i] = v[i].id;
		}
		qsort(ids, n, sizeof(*ids), cstr_cmp);
	}
	pthread_mutex_lock(&u->mu);
	i = 0;
	while (i < u->st.n) {
		const char *key = u->st.e[i].session_id;

		if (n == 0 || bsearch(&key, ids, n, sizeof(*ids), cstr_cmp) == NULL) {
			shim_upload_state_remove(&u->st, key);
			continue; /* the last entry moved into slot i */
		}
		i++;
	}
	pthread_mutex_unlock(&u->mu);
	free(ids);
}

/* One pass: everything undelivered, oldest first, then local deletions.
 * Returns the number of failed attempts. */
static int pass(struct shim_uploader *u)
{
	struct item *v = NULL;
	size_t n = 0, i;
	uint64_t keep_s = (uint64_t)u->cfg->custody_keep_local_days * 86400;
	int failures = 0, stop_pass = 0;
	int64_t trusted;
	char path[4096];

	if (scan(u, &v, &n) != 0) {
		return 0;
	}
	forget_gone(u, v, n);
	pthread_mutex_lock(&u->mu);
	trusted = u->trusted_s;
	u->stat.queue_count = 0;
	u->stat.queue_bytes = 0;
	u->stat.oldest[0] = '\0';
	for (i = 0; i < n; i++) {
		if (shim_upload_state_find(&u->st, v[i].id) == NULL) {
			if (u->stat.queue_count++ == 0) {
				snprintf(u->stat.oldest, sizeof(u->stat.oldest),
					 "%s", v[i].id);
			}
			u->stat.queue_bytes += v[i].size;
		}
	}
	pthread_mutex_unlock(&u->mu);

	for (i = 0; i < n && !stop_pass; i++) {
		struct shim_custody_result res;
		struct shim_upload_entry e;
		const struct shim_upload_entry *have;
		int rc, stopping;

		pthread_mutex_lock(&u->mu);
		stopping = u->stop;
		have = shim_upload_state_find(&u->st, v[i].id);
		if (have != NULL) {
			e = *have;
		}
		pthread_mutex_unlock(&u->mu);
		if (stopping) {
			break;
		}
		if (have != NULL) {
			if (keep_s == 0 ||
			    (trusted > 0 && trusted - e.delivered_s >= (int64_t)keep_s)) {
				remove_local(u, &v[i], keep_s == 0 ?
					     "delivered" : "delivered, keep_local_days passed");
			}
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", u->sessions_dir, v[i].name);
		rc = shim_custody_deliver(&u->t, path, v[i].name, &res);
		if (rc == 0) {
			memset(&e, 0, sizeof(e));
			snprintf(e.session_id, sizeof(e.session_id), "%s", v[i].id);
			e.size = res.size;
			memcpy(e.sha256, res.sha256, 65);
			e.delivered_s = shim_linux_wall_ns() / 1000000000LL;
			/* the file is written outside the lock: status and the
			 * recorder's questions never wait for an fsync */
			{
				char *txt = NULL;
				size_t tlen = 0;

				pthread_mutex_lock(&u->mu);
				rc = shim_upload_state_put(&u->st, &e);
				if (rc == 0) {
					rc = shim_upload_state_format(&u->st, &txt, &tlen);
				}
				pthread_mutex_unlock(&u->mu);
				if (rc == 0) {
					rc = shim_write_file_atomic(u->state_path,
								    (const uint8_t *)txt,
								    tlen, 0600);
				}
				free(txt);
			}
			pthread_mutex_lock(&u->mu);
			if (rc != 0) {
				shim_upload_state_remove(&u->st, e.session_id);
			}
			if (rc == 0) {
				u->stat.delivered++;
				u->stat.link_ok = 1;
				if (u->stat.queue_count > 0) {
					u->stat.queue_count--;
					u->stat.queue_bytes -= u->stat.queue_bytes >= v[i].size ?
						v[i].size : u->stat.queue_bytes;
				}
				u->stat.oldest[0] = '\0';
				if (i + 1 < n) {
					size_t j;

					for (j = i + 1; j < n; j++) {
						if (shim_upload_state_find(&u->st, v[j].id) == NULL) {
							snprintf(u->stat.oldest, sizeof(u->stat.oldest),
								 "%s", v[j].id);
							break;
						}
					}
				}
			}
			pthread_mutex_unlock(&u->mu);
			if (rc != 0) {
				snprintf(res.reason, sizeof(res.reason),
					 "stored, but the upload state could not be saved: %s",
					 shim_strerror(rc));
				up_log("error", "%s: %s", v[i].name, res.reason);
				emit_failed(u, v[i].id, &res, u->cfg->custody_retry_max_seconds);
				failures++;
				continue;
			}
			up_log("info", "%s delivered (%" PRIu64 " bytes, sha256 %s, %.3f s)",
			       v[i].name, res.size, res.sha256, res.seconds);
			emit_uploaded(u, v[i].id, &res);
			if (keep_s == 0) {
				remove_local(u, &v[i], "delivered");
			}
			continue;
		}
		failures++;
		{
			double next = u->backoff_s <= 0 ? BACKOFF_MIN_S :
				      u->backoff_s * 2;

			if (next > u->cfg->custody_retry_max_seconds) {
				next = u->cfg->custody_retry_max_seconds;
			}
			up_log("warn", "%s not delivered: %s (retry in %.0f s)",
			       v[i].name, res.reason, next);
			emit_failed(u, v[i].id, &res, next);
		}
		pthread_mutex_lock(&u->mu);
		u->stat.link_ok = 0;
		snprintf(u->stat.last_error, sizeof(u->stat.last_error), "%s",
			 res.reason);
		pthread_mutex_unlock(&u->mu);
		snprintf(u->outage_reason, sizeof(u->outage_reason), "%s",
			 res.reason);
		/* no answer at all (down, TLS refused): the others would fail
		 * the same way; an HTTP answer is about this object */
		if (!res.reached) {
			stop_pass = 1;
		}
	}
	free(v);
	return failures;
}

static void *uploader_main(void *arg)
{
	struct shim_uploader *u = arg;
	int failures;
	int64_t now;

	/* below the loop that relays: an upload yields the CPU to it */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	pthread_mutex_lock(&u->mu);
	while (!u->stop) {
		struct timespec ts;
		int64_t wake;

		now = mono_ms();
		if (u->kicked || u->next_try_ms == 0 || now >= u->next_try_ms) {
			u->kicked = 0;
			pthread_mutex_unlock(&u->mu);
			failures = pass(u);
			now = mono_ms();
			if (failures > 0) {
				u->backoff_s = u->backoff_s <= 0 ? BACKOFF_MIN_S :
					       u->backoff_s * 2;
				if (u->backoff_s > u->cfg->custody_retry_max_seconds) {
					u->backoff_s = u->cfg->custody_retry_max_seconds;
				}
				u->next_try_ms = now + (int64_t)(u->backoff_s * 1000);
				if (u->outage_since_ms == 0) {
					u->outage_since_ms = now;
				}
			} else {
				if (u->outage_since_ms != 0) {
					int alarmed;

					pthread_mutex_lock(&u->mu);
					alarmed = u->stat.outage_alarm;
					u->stat.outage_alarm = 0;
					u->stat.last_error[0] = '\0';
					pthread_mutex_unlock(&u->mu);
					if (alarmed) {
						emit_link(u, "upload_restored",
							  SHIM_SEV_NOTICE,
							  now - u->outage_since_ms, 0);
					}
				}
				u->outage_since_ms = 0;
				u->backoff_s = 0;
				/* nothing pending: sleep until kicked (an hourly
				 * look for keep_local_days) */
				u->next_try_ms = now + 3600 * 1000;
			}
			pthread_mutex_lock(&u->mu);
			outage_check(u, now);
			continue;
		}
		wake = u->next_try_ms;
		if (u->outage_since_ms != 0 && !u->stat.outage_alarm) {
			int64_t at = u->outage_since_ms +
				     (int64_t)(u->cfg->custody_outage_alarm_seconds * 1000);

			if (at < wake) {
				wake = at;
			}
		}
		if (wake <= now) {
			wake = now + 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		{
			int64_t ns = (int64_t)ts.tv_nsec + (wake - now) % 1000 * 1000000;

			ts.tv_sec += (time_t)((wake - now) / 1000 + ns / 1000000000);
			ts.tv_nsec = (long)(ns % 1000000000);
		}
		pthread_cond_timedwait(&u->cv, &u->mu, &ts);
		/* an outage alarm that comes due while waiting */
		now = mono_ms();
		outage_check(u, now);
	}
	pthread_mutex_unlock(&u->mu);
	return NULL;
}

int shim_uploader_open(struct shim_uploader **out,
		       const struct shim_config *cfg,
		       const struct shim_uploader_ops *ops)
{
	struct shim_uploader *u;
	pthread_condattr_t ca;
	char err[256];
	size_t bad = 0;
	char *state_dir;
	int rc;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		return SHIM_ENOMEM;
	}
	u->cfg = cfg;
	u->t.cancel = NULL;
	if (ops != NULL) {
		u->ops = *ops;
	}
	rc = shim_custody_target_from_config(&u->t, cfg, err, sizeof(err));
	if (rc != 0) {
		up_log("error", "%s", err);
		free(u);
		return rc;
	}
	u->t.cancel = &u->stop;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != 0) {
		free(u);
		return SHIM_EINTERNAL;
	}
	u->sessions_dir = shim_config_path(cfg, "sessions");
	state_dir = shim_config_path(cfg, "state");
	u->state_path = shim_config_path(cfg, "state/custody.state");
	if (u->sessions_dir == NULL || state_dir == NULL || u->state_path == NULL) {
		free(state_dir);
		shim_uploader_close(u);
		return SHIM_ENOMEM;
	}
	(void)shim_mkdir_p(state_dir, 0700);
	free(state_dir);
	rc = shim_upload_state_load(&u->st, u->state_path, &bad);
	if (rc != 0) {
		/* fail closed: nothing counts as delivered, nothing is
		 * deleted; each recording is checked against the store */
		up_log("error", "%s: damaged (%s, line %zu): every recording is checked against the store again",
		       u->state_path, shim_strerror(rc), bad);
		memset(&u->st, 0, sizeof(u->st));
	}
	u->stat.enabled = 1;
	u->stat.link_ok = 1;
	pthread_mutex_init(&u->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&u->thread, NULL, uploader_main, u) != 0) {
		shim_uploader_close(u);
		return SHIM_ENOMEM;
	}
	u->started = 1;
	*out = u;
	return 0;
}

void shim_uploader_kick(struct shim_uploader *u)
{
	if (u == NULL) {
		return;
	}
	pthread_mutex_lock(&u->mu);
	u->kicked = 1;
	pthread_cond_signal(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

void shim_uploader_set_trusted_time(struct shim_uploader *u, int64_t unix_s)
{
	if (u == NULL) {
		return;
	}
	pthread_mutex_lock(&u->mu);
	u->trusted_s = unix_s > 0 ? unix_s : 0;
	pthread_mutex_unlock(&u->mu);
}

int shim_uploader_may_delete(struct shim_uploader *u, const char *name)
{
	char id[SHIM_SESSION_ID_MAX];
	int ok;

	if (u == NULL || !rec_name_id(name, id)) {
		return 1;
	}
	pthread_mutex_lock(&u->mu);
	ok = shim_upload_state_find(&u->st, id) != NULL;
	pthread_mutex_unlock(&u->mu);
	return ok;
}

void shim_uploader_status(struct shim_uploader *u,
			  struct shim_uploader_status *st)
{
	memset(st, 0, sizeof(*st));
	if (u == NULL) {
		return;
	}
	pthread_mutex_lock(&u->mu);
	*st = u->stat;
	pthread_mutex_unlock(&u->mu);
}

void shim_uploader_stop(struct shim_uploader *u)
{
	if (u == NULL || !u->started || u->joined) {
		return;
	}
	pthread_mutex_lock(&u->mu);
	__atomic_store_n(&u->stop, 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&u->cv);
	pthread_mutex_unlock(&u->mu);
	pthread_join(u->thread, NULL);
	u->joined = 1;
}

void shim_uploader_close(struct shim_uploader *u)
{
	if (u == NULL) {
		return;
	}
	if (u->started) {
		shim_uploader_stop(u);
		pthread_cond_destroy(&u->cv);
		pthread_mutex_destroy(&u->mu);
	}
	shim_upload_state_free(&u->st);
	free(u->sessions_dir);
	free(u->state_path);
	free(u);
}
