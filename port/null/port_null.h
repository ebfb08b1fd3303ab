/*
 * The null port: a template for porters. Every operation of struct
 * shim_port (core/port.h) is here, each a stub that does nothing and says
 * what a real port must do. It compiles against the core headers with a
 * bare-metal toolchain and is built so in CI, so a port copied from it
 * starts from code that builds.
 *
 * It is not a working port: the core refuses to run on it (the clock reads
 * 0, so the gate's clock is never trusted; randomness, crypto and storage
 * return SHIM_ENOTSUP, so nothing opens and nothing is saved). That is the
 * point: a stub left in place fails closed.
 *
 * To start a port: copy port/null/ to port/<board>/, rename shim_null_* to
 * shim_<board>_*, put the board's state (peripheral handles, a DRBG
 * context, the flash layout) in struct shim_null_port, and replace each
 * stub in port.c.
 */
#ifndef SHIM_PORT_NULL_H
#define SHIM_PORT_NULL_H

#include "port.h"

struct shim_null_port {
	struct shim_port port;  /* the tables the core is given */
	/* A real port keeps its state here; each table's ctx points at
	 * this struct. */
	int unused;
};

/* Fills np->port with the stubs. Returns 0 (a real port returns the
 * error of a peripheral that fails to start). */
int shim_null_port_init(struct shim_null_port *np);

#endif
