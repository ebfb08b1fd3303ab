/*
 * A connection to the SIEM's syslog receiver: TLS 1.2 with mbedTLS,
 * presenting the shim's client certificate and verifying the server
 * against the configured CA and server name (RFC 5425), or plain TCP
 * (only with siem.insecure: true).
 *
 * Delivery is judged conservatively. Syslog over TLS has no
 * acknowledgements, and a receiver that rejects our client certificate
 * often completes the handshake and then closes without an alert. So
 * bytes count as delivered only when the peer's TCP has acknowledged them
 * (the socket's send queue has drained past them) AND the connection has
 * stayed open, with no EOF or reset seen, for a confirmation delay after
 * they were written. Anything written to a connection that then closes is
 * sent again on the next one.
 */
#ifndef SHIM_COMMON_SIEM_TLS_H
#define SHIM_COMMON_SIEM_TLS_H

#include <stddef.h>
#include <stdint.h>

struct shim_config;

struct shim_siem_target {
	const char *host;         /* address to connect to */
	uint16_t port;
	const char *server_name;  /* name checked in the server cert (NULL:
				   * host) */
	const char *ca;           /* PEM file */
	const char *client_cert;  /* PEM file */
	const char *client_key;   /* PEM file, unencrypted */
	int tls;                  /* 0: plain TCP */
	int connect_timeout_ms;   /* TCP connect + TLS handshake */
	int io_timeout_ms;        /* one write may wait this long */
};

struct shim_siem_conn;

/* Fills t from the configuration (pointers into cfg). Returns SHIM_EINVAL
 * with a message in err for a transport that cannot be used (noop,
 * missing files, syslog-tcp without insecure). */
int shim_siem_target_from_config(struct shim_siem_target *t,
				 const struct shim_config *cfg, char *err,
				 size_t errcap);

/* Connects and, for TLS, completes and verifies the handshake. On failure
 * err holds the exact reason, e.g. "TLS handshake: server certificate
 * not trusted: The certificate is not correctly signed by the trusted
 * CA". */
int shim_siem_connect(struct shim_siem_conn **out,
		      const struct shim_siem_target *t, char *err,
		      size_t errcap);

/* Writes all of buf or fails (SHIM_EDISCONN, SHIM_ETIMEDOUT, SHIM_EIO). */
int shim_siem_write(struct shim_siem_conn *c, const uint8_t *buf,
		    size_t len, char *err, size_t errcap);

/* Checks, without waiting (or up to wait_ms), whether the peer has closed
 * or reset the connection. 0 while open, SHIM_EDISCONN when closed. */
int shim_siem_check(struct shim_siem_conn *c, int wait_ms, char *err,
		    size_t errcap);

/* Bytes written on the wire so far (TLS records included) and how many of
 * them the peer's TCP has acknowledged. */
uint64_t shim_siem_wire_sent(const struct shim_siem_conn *c);
uint64_t shim_siem_wire_acked(const struct shim_siem_conn *c);

/* How long the handshake took (ns) and the session's details ("TLSv1.2",
 * "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", peer subject); "" for plain
 * TCP. */
int64_t shim_siem_handshake_ns(const struct shim_siem_conn *c);
void shim_siem_info(const struct shim_siem_conn *c, char *version,
		    size_t vcap, char *cipher, size_t ccap, char *peer,
		    size_t pcap);

/* Closes (sending close_notify for TLS). NULL is accepted. */
void shim_siem_close(struct shim_siem_conn *c);

#endif
