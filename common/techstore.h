/*
 * The unit's sealed enrolment store on Linux (docs/lifecycle.md, "Sealed
 * enrolment store"): core/enrolstore.h's container in the file named by
 * enrolment.store (default <storage_root>/technicians.sealed), sealed
 * under the device storage key that the port's key provider gives
 * (<storage_root>/keys/storage.key in the Linux port), and its escrow
 * copy sealed to the central enrolment-custody key (enrolment.custody_key)
 * in <storage_root>/escrow/enrolment.sealed.
 *
 * shimd reads the store at start and again when shimctl tells it the set
 * changed ("technicians-reload" on the admin socket) or when the file
 * changed by the time of a heartbeat; shimctl enrol, technicians remove
 * and import, and enrolment restore write it.
 */
#ifndef SHIM_COMMON_TECHSTORE_H
#define SHIM_COMMON_TECHSTORE_H

#include <stddef.h>

#include "config.h"
#include "enrolstore.h"
#include "port_linux.h"

/* <storage_root>/keys/storage.key, malloc'd. */
char *shim_techstore_key_path(const struct shim_config *cfg);

/* Points lp's key provider at the unit's storage key file. */
int shim_techstore_use_key(const struct shim_config *cfg,
			   struct shim_linux_port *lp);

/* Creates the storage key when the unit has none; 0 when it exists. */
int shim_techstore_ensure_key(const struct shim_config *cfg);

/* Reads and opens the store into set. A missing store is an empty set
 * with SHIM_ENOENT returned; any other failure (no storage key, a wrong
 * key, altered bytes, malformed text, another unit's set) returns its
 * code with the cause in why. */
int shim_techstore_load(const struct shim_config *cfg,
			const struct shim_port *port,
			struct shim_enrol_set *set, char *why, size_t cap);

/* Seals set under the storage key and replaces the store atomically
 * (mode 0600). set->shim_id and created are filled in. */
int shim_techstore_save(const struct shim_config *cfg,
			const struct shim_port *port,
			struct shim_enrol_set *set, char *why, size_t cap);

/* Builds the gate's technician table: the configuration's technicians
 * (inline and technicians_file), then the store's. An ID in both with
 * the same secret is taken once (the store's marks apply); with a
 * different secret, or a store entry whose algorithm, digits or period
 * are not the gate's, the load fails with the cause in why (fail closed:
 * the operator decides). *out is malloc'd (wipe with shim_techs_free). */
int shim_techs_build(const struct shim_config *cfg,
		     const struct shim_enrol_set *set,
		     struct shim_technician **out, size_t *n, char *why,
		     size_t cap);

void shim_techs_free(struct shim_technician *t, size_t n);

/* Fills the gate's view (last_step, drift, last_ok, fails) of the n
 * technicians whose IDs are set in t, from the gate state under
 * <storage_root>/state, without writing it. SHIM_ENOENT: no state. */
int shim_techstore_read_gate(const struct shim_config *cfg,
			     struct shim_technician *t, size_t n);

/* Raises each technician's min_step in set to the unit's gate marks
 * (the gate state under <storage_root>/state), so that a copy carries
 * the codes already used. Best effort: 0 when there is no state. */
int shim_techstore_add_marks(const struct shim_config *cfg,
			     struct shim_enrol_set *set);

/* Writes the escrow copy of set, sealed to enrolment.custody_key, to
 * <storage_root>/escrow/enrolment.sealed (and to out_path when not
 * NULL). SHIM_ENOENT when no custody key is configured. */
int shim_techstore_escrow(const struct shim_config *cfg,
			  const struct shim_port *port,
			  const struct shim_enrol_set *set, const char *out_path,
			  char *why, size_t cap);

/* Reads a whole container file (bounded, no symbolic link). */
int shim_techstore_read_container(const char *path, uint8_t **buf,
				  size_t *len);

#endif
