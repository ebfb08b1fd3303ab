/*
 * SIEM connection: TCP, then TLS 1.2 with mbedTLS 2.28. See siem_tls.h.
 */
#include "siem_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "config.h"
#include "err.h"

struct shim_siem_conn {
	int fd;
	int tls;
	int io_timeout_ms;
	uint64_t wire_sent;
	int64_t handshake_ns;
	int closed;
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	mbedtls_x509_crt cert;
	mbedtls_pk_context key;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

static void seterr(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || cap == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void tls_errstr(int rc, char *buf, size_t cap)
{
	mbedtls_strerror(rc, buf, cap);
	if (buf[0] == '\0') {
		snprintf(buf, cap, "mbedTLS error -0x%04x", (unsigned)-rc);
	}
}

int shim_siem_target_from_config(struct shim_siem_target *t,
				 const struct shim_config *cfg, char *err,
				 size_t errcap)
{
	memset(t, 0, sizeof(*t));
	t->host = cfg->siem_host;
	t->port = cfg->siem_port;
	t->server_name = cfg->siem_server_name;
	t->ca = cfg->siem_ca;
	t->client_cert = cfg->siem_client_cert;
	t->client_key = cfg->siem_client_key;
	t->connect_timeout_ms = 10000;
	t->io_timeout_ms = 10000;
	switch (cfg->siem_transport) {
	case SHIM_SIEM_SYSLOG_TLS:
		t->tls = 1;
		break;
	case SHIM_SIEM_SYSLOG_TCP:
		if (!cfg->siem_insecure) {
			seterr(err, errcap,
			       "siem.transport syslog-tcp sends events in "
			       "clear text: it needs siem.insecure: true");
			return SHIM_EINVAL;
		}
		t->tls = 0;
		break;
	default:
		seterr(err, errcap, "siem.transport is noop: no SIEM configured");
		return SHIM_EINVAL;
	}
	if (t->host == NULL || t->host[0] == '\0' || t->port == 0) {
		seterr(err, errcap, "siem.host and siem.port must be set");
		return SHIM_EINVAL;
	}
	if (t->tls && (t->ca == NULL || t->client_cert == NULL ||
		       t->client_key == NULL)) {
		seterr(err, errcap,
		       "siem.transport syslog-tls needs siem.ca, "
		       "siem.client_cert and siem.client_key");
		return SHIM_EINVAL;
	}
	if (t->server_name == NULL || t->server_name[0] == '\0') {
		t->server_name = t->host;
	}
	return 0;
}

/* TCP connect with a timeout; returns the socket or a SHIM_E*. */
static int tcp_connect(const struct shim_siem_target *t, char *err,
		       size_t errcap)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[8];
	int fd = -1, rc, saved = 0, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", (unsigned)t->port);
	rc = getaddrinfo(t->host, port, &hints, &res);
	if (rc != 0) {
		seterr(err, errcap, "resolve %s: %s", t->host,
		       gai_strerror(rc));
		return SHIM_ENOENT;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t sl = sizeof(saved);
		int flags;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		flags = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
		    errno != EINPROGRESS) {
			saved = errno;
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do {
			rc = poll(&pfd, 1, t->connect_timeout_ms);
		} while (rc < 0 && errno == EINTR);
		if (rc == 0) {
			saved = ETIMEDOUT;
			goto next;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &saved, &sl) != 0) {
			saved = errno;
		}
		if (saved != 0) {
			goto next;
		}
		fcntl(fd, F_SETFL, flags);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		freeaddrinfo(res);
		return fd;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	seterr(err, errcap, "connect %s port %u: %s", t->host,
	       (unsigned)t->port, strerror(saved ? saved : ECONNREFUSED));
	return saved == ETIMEDOUT ? SHIM_ETIMEDOUT : SHIM_EDISCONN;
}

/* BIO callbacks: count the bytes on the wire, wait with poll. */
static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct shim_siem_conn *c = ctx;
	struct pollfd pfd = { c->fd, POLLOUT, 0 };
	ssize_t n;

	for (;;) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			c->wire_sent += (uint64_t)n;
			return (int)n;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (poll(&pfd, 1, c->io_timeout_ms) > 0) {
				continue;
			}
			return MBEDTLS_ERR_SSL_WANT_WRITE;
		}
		if (errno == EPIPE || errno == ECONNRESET) {
			return MBEDTLS_ERR_NET_CONN_RESET;
		}
		return MBEDTLS_ERR_NET_SEND_FAILED;
	}
}

static int bio_recv_timeout(void *ctx, unsigned char *buf, size_t len,
			    uint32_t timeout)
{
	struct shim_siem_conn *c = ctx;
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	ssize_t n;
	int rc;

	do {
		rc = poll(&pfd, 1, timeout == 0 ? -1 : (int)timeout);
	} while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		return MBEDTLS_ERR_SSL_TIMEOUT;
	}
	do {
		n = recv(c->fd, buf, len, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n >= 0) {
		return (int)n;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		return MBEDTLS_ERR_SSL_WANT_READ;
	}
	if (errno == ECONNRESET || errno == EPIPE) {
		return MBEDTLS_ERR_NET_CONN_RESET;
	}
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

static int load_credentials(struct shim_siem_conn *c,
			    const struct shim_siem_target *t, char *err,
			    size_t errcap)
{
	char msg[160];
	int rc;

	if (access(t->ca, R_OK) != 0) {
		seterr(err, errcap, "siem.ca %s: %s", t->ca, strerror(errno));
		return SHIM_ENOENT;
	}
	if (access(t->client_cert, R_OK) != 0) {
		seterr(err, errcap, "siem.client_cert %s: %s", t->client_cert,
		       strerror(errno));
		return SHIM_ENOENT;
	}
	if (access(t->client_key, R_OK) != 0) {
		seterr(err, errcap, "siem.client_key %s: %s", t->client_key,
		       strerror(errno));
		return SHIM_ENOENT;
	}
	rc = mbedtls_x509_crt_parse_file(&c->ca, t->ca);
	if (rc < 0) {
		tls_errstr(rc, msg, sizeof(msg));
		seterr(err, errcap, "siem.ca %s: %s", t->ca, msg);
		return SHIM_EINVAL;
	}
	rc = mbedtls_x509_crt_parse_file(&c->cert, t->client_cert);
	if (rc != 0) {
		tls_errstr(rc, msg, sizeof(msg));
		seterr(err, errcap, "siem.client_cert %s: %s", t->client_cert,
		       msg);
		return SHIM_EINVAL;
	}
	rc = mbedtls_pk_parse_keyfile(&c->key, t->client_key, NULL);
	if (rc != 0) {
		tls_errstr(rc, msg, sizeof(msg));
		seterr(err, errcap, "siem.client_key %s: %s", t->client_key,
		       msg);
		return SHIM_EINVAL;
	}
	if (mbedtls_pk_check_pair(&c->cert.pk, &c->key) != 0) {
		seterr(err, errcap,
		       "siem.client_key %s does not belong to siem.client_cert "
		       "%s", t->client_key, t->client_cert);
		return SHIM_EINVAL;
	}
	return 0;
}

static int tls_setup(struct shim_siem_conn *c,
		     const struct shim_siem_target *t, char *err,
		     size_t errcap)
{
	static const char pers[] = "shimd-siem";
	char msg[160];
	int rc;

	rc = load_credentials(c, t, err, errcap);
	if (rc != 0) {
		return rc;
	}
	rc = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy,
				   (const unsigned char *)pers,
				   sizeof(pers) - 1);
	if (rc != 0) {
		seterr(err, errcap, "random generator: -0x%04x", (unsigned)-rc);
		return SHIM_ECRYPTO;
	}
	rc = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT,
					 MBEDTLS_SSL_TRANSPORT_STREAM,
					 MBEDTLS_SSL_PRESET_DEFAULT);
	if (rc != 0) {
		seterr(err, errcap, "TLS configuration: -0x%04x", (unsigned)-rc);
		return SHIM_ECRYPTO;
	}
	/* TLS 1.2 or later only. */
	mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
				     MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
	mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
	mbedtls_ssl_conf_read_timeout(&c->conf, (uint32_t)t->connect_timeout_ms);
	rc = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key);
	if (rc != 0) {
		tls_errstr(rc, msg, sizeof(msg));
		seterr(err, errcap, "client certificate: %s", msg);
		return SHIM_ECRYPTO;
	}
	rc = mbedtls_ssl_setup(&c->ssl, &c->conf);
	if (rc != 0) {
		seterr(err, errcap, "TLS setup: -0x%04x", (unsigned)-rc);
		return SHIM_ECRYPTO;
	}
	/* Without a host name mbedTLS 2.28 skips the name check even with
	 * VERIFY_REQUIRED: always set it. */
	rc = mbedtls_ssl_set_hostname(&c->ssl, t->server_name);
	if (rc != 0) {
		seterr(err, errcap, "server name %s: -0x%04x", t->server_name,
		       (unsigned)-rc);
		return SHIM_EINVAL;
	}
	mbedtls_ssl_set_bio(&c->ssl, c, bio_send, NULL, bio_recv_timeout);
	return 0;
}

static int tls_handshake(struct shim_siem_conn *c,
			 const struct shim_siem_target *t, char *err,
			 size_t errcap)
{
	int64_t deadline = mono_ns() + (int64_t)t->connect_timeout_ms * 1000000;
	char msg[160], info[512];
	uint32_t flags;
	int rc;

	for (;;) {
		rc = mbedtls_ssl_handshake(&c->ssl);
		if (rc == 0) {
			return 0;
		}
		if ((rc == MBEDTLS_ERR_SSL_WANT_READ ||
		     rc == MBEDTLS_ERR_SSL_WANT_WRITE) &&
		    mono_ns() < deadline) {
			continue;
		}
		break;
	}
	flags = mbedtls_ssl_get_verify_result(&c->ssl);
	if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ||
	    (flags != 0 && flags != (uint32_t)-1)) {
		size_t n;

		mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
		/* One line: "a; b" instead of one reason per line. */
		n = strlen(info);
		while (n > 0 && info[n - 1] == '\n') {
			info[--n] = '\0';
		}
		for (n = 0; info[n] != '\0'; n++) {
			if (info[n] == '\n') {
				info[n] = ';';
			}
		}
		seterr(err, errcap,
		       "TLS: server certificate rejected for name %s: %s",
		       t->server_name, info);
		return SHIM_EACCES;
	}
	if (rc == MBEDTLS_ERR_SSL_TIMEOUT || rc == MBEDTLS_ERR_SSL_WANT_READ ||
	    rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
		seterr(err, errcap, "TLS handshake with %s port %u: timed out",
		       t->host, (unsigned)t->port);
		return SHIM_ETIMEDOUT;
	}
	tls_errstr(rc, msg, sizeof(msg));
	if (rc == MBEDTLS_ERR_SSL_CONN_EOF || rc == MBEDTLS_ERR_NET_CONN_RESET ||
	    rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
		seterr(err, errcap,
		       "TLS handshake with %s port %u: the server closed the "
		       "connection (%s)", t->host, (unsigned)t->port, msg);
		return SHIM_EDISCONN;
	}
	seterr(err, errcap, "TLS handshake with %s port %u: %s", t->host,
	       (unsigned)t->port, msg);
	return SHIM_ECRYPTO;
}

int shim_siem_connect(struct shim_siem_conn **out,
		      const struct shim_siem_target *t, char *err,
		      size_t errcap)
{
	struct shim_siem_conn *c;
	int64_t start;
	int rc;

	*out = NULL;
	if (err != NULL && errcap > 0) {
		err[0] = '\0';
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		seterr(err, errcap, "out of memory");
		return SHIM_ENOMEM;
	}
	c->fd = -1;
	c->tls = t->tls;
	c->io_timeout_ms = t->io_timeout_ms > 0 ? t->io_timeout_ms : 10000;
	mbedtls_ssl_init(&c->ssl);
	mbedtls_ssl_config_init(&c->conf);
	mbedtls_x509_crt_init(&c->ca);
	mbedtls_x509_crt_init(&c->cert);
	mbedtls_pk_init(&c->key);
	mbedtls_entropy_init(&c->entropy);
	mbedtls_ctr_drbg_init(&c->drbg);
	if (c->tls) {
		/* Credentials first: a bad file is a local error, reported
		 * before touching the network. */
		rc = tls_setup(c, t, err, errcap);
		if (rc != 0) {
			goto fail;
		}
	}
	start = mono_ns();
	rc = tcp_connect(t, err, errcap);
	if (rc < 0) {
		goto fail;
	}
	c->fd = rc;
	if (c->tls) {
		rc = tls_handshake(c, t, err, errcap);
		if (rc != 0) {
			goto fail;
		}
		/* After the handshake reads only look for EOF: short waits. */
		mbedtls_ssl_conf_read_timeout(&c->conf, 1);
	}
	c->handshake_ns = mono_ns() - start;
	*out = c;
	return 0;
fail:
	c->closed = 1;
	shim_siem_close(c);
	return rc;
}

int shim_siem_write(struct shim_siem_conn *c, const uint8_t *buf,
		    size_t len, char *err, size_t errcap)
{
	int64_t deadline = mono_ns() + (int64_t)c->io_timeout_ms * 1000000;
	char msg[160];
	int rc;

	while (len > 0) {
		if (c->tls) {
			rc = mbedtls_ssl_write(&c->ssl, buf, len);
		} else {
			rc = bio_send(c, buf, len);
		}
		if (rc > 0) {
			buf += rc;
			len -= (size_t)rc;
			continue;
		}
		if ((rc == MBEDTLS_ERR_SSL_WANT_WRITE ||
		     rc == MBEDTLS_ERR_SSL_WANT_READ) &&
		    mono_ns() < deadline) {
			continue;
		}
		if (rc == MBEDTLS_ERR_SSL_WANT_WRITE ||
		    rc == MBEDTLS_ERR_SSL_WANT_READ) {
			seterr(err, errcap, "write: the server stopped reading "
			       "for %d ms", c->io_timeout_ms);
			c->closed = 1;
			return SHIM_ETIMEDOUT;
		}
		if (rc == MBEDTLS_ERR_NET_CONN_RESET) {
			seterr(err, errcap,
			       "write: connection reset by the server");
		} else {
			tls_errstr(rc, msg, sizeof(msg));
			seterr(err, errcap, "write: %s", msg);
		}
		c->closed = 1;
		return SHIM_EDISCONN;
	}
	return 0;
}

/* A receiver that refuses our client certificate (gtls checks it after
 * the handshake) just closes or resets: say so. */
static const char dropped_msg[] =
	"the server closed the connection (right after connecting: it "
	"refused this client's certificate or name)";

int shim_siem_check(struct shim_siem_conn *c, int wait_ms, char *err,
		    size_t errcap)
{
	struct pollfd pfd = { c->fd, POLLIN | POLLRDHUP, 0 };
	unsigned char buf[512];
	int rc;

	if (c->closed) {
		seterr(err, errcap, "connection closed");
		return SHIM_EDISCONN;
	}
	do {
		rc = poll(&pfd, 1, wait_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc <= 0) {
		return 0;
	}
	if (pfd.revents & (POLLERR | POLLNVAL)) {
		seterr(err, errcap, "%s", dropped_msg);
		c->closed = 1;
		return SHIM_EDISCONN;
	}
	/* A syslog receiver never talks: readable means an alert, a
	 * close_notify or EOF. Drain what is there to find out. */
	for (;;) {
		if (c->tls) {
			rc = mbedtls_ssl_read(&c->ssl, buf, sizeof(buf));
		} else {
			rc = (int)recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				rc = MBEDTLS_ERR_SSL_WANT_READ;
			} else if (rc < 0) {
				rc = MBEDTLS_ERR_NET_CONN_RESET;
			}
		}
		if (rc > 0) {
			continue;
		}
		if (rc == MBEDTLS_ERR_SSL_WANT_READ ||
		    rc == MBEDTLS_ERR_SSL_TIMEOUT ||
		    rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
			if (pfd.revents & (POLLHUP | POLLRDHUP)) {
				break;
			}
			return 0;
		}
		break;
	}
	if (rc == MBEDTLS_ERR_NET_CONN_RESET) {
		seterr(err, errcap, "%s", dropped_msg);
	} else if (rc < 0 && c->tls && rc != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY &&
		   rc != MBEDTLS_ERR_SSL_CONN_EOF) {
		char msg[160];

		tls_errstr(rc, msg, sizeof(msg));
		seterr(err, errcap, "the server ended the session: %s", msg);
	} else {
		seterr(err, errcap, "%s", dropped_msg);
	}
	c->closed = 1;
	return SHIM_EDISCONN;
}

uint64_t shim_siem_wire_sent(const struct shim_siem_conn *c)
{
	return c->wire_sent;
}

uint64_t shim_siem_wire_acked(const struct shim_siem_conn *c)
{
	int outq = 0;

	if (ioctl(c->fd, SIOCOUTQ, &outq) != 0 || outq < 0) {
		return 0;
	}
	if ((uint64_t)outq > c->wire_sent) {
		return 0;
	}
	return c->wire_sent - (uint64_t)outq;
}

int64_t shim_siem_handshake_ns(const struct shim_siem_conn *c)
{
	return c->handshake_ns;
}

void shim_siem_info(const struct shim_siem_conn *c, char *version,
		    size_t vcap, char *cipher, size_t ccap, char *peer,
		    size_t pcap)
{
	const mbedtls_x509_crt *pc;

	snprintf(version, vcap, "%s", c->tls ? "" : "none (plain TCP)");
	snprintf(cipher, ccap, "%s", "");
	snprintf(peer, pcap, "%s", "");
	if (!c->tls) {
		return;
	}
	snprintf(version, vcap, "%s", mbedtls_ssl_get_version(&c->ssl));
	snprintf(cipher, ccap, "%s", mbedtls_ssl_get_ciphersuite(&c->ssl));
	pc = mbedtls_ssl_get_peer_cert(&c->ssl);
	if (pc != NULL && pcap > 0) {
		if (mbedtls_x509_dn_gets(peer, pcap, &pc->subject) < 0) {
			snprintf(peer, pcap, "%s", "?");
		}
	}
}

void shim_siem_close(struct shim_siem_conn *c)
{
	if (c == NULL) {
		return;
	}
	if (c->tls && c->fd >= 0 && !c->closed) {
		mbedtls_ssl_close_notify(&c->ssl);
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	mbedtls_ssl_free(&c->ssl);
	mbedtls_ssl_config_free(&c->conf);
	mbedtls_x509_crt_free(&c->ca);
	mbedtls_x509_crt_free(&c->cert);
	mbedtls_pk_free(&c->key);
	mbedtls_ctr_drbg_free(&c->drbg);
	mbedtls_entropy_free(&c->entropy);
	free(c);
}
