/*
 * Error codes shared by every part of the shim.
 *
 * Functions return 0 on success and a negative SHIM_E* code on failure.
 * The numbers are our own, not errno values, so the portable core does not
 * depend on <errno.h>; ports translate errno at their boundary.
 */
#ifndef SHIM_CORE_ERR_H
#define SHIM_CORE_ERR_H

#define SHIM_ERRNO_MAP(XX)                                                   \
	XX(EINVAL, 1, "invalid argument")                                    \
	XX(ENOSPC, 2, "buffer or storage too small")                         \
	XX(ENOMEM, 3, "out of memory")                                       \
	XX(EIO, 4, "input/output error")                                     \
	XX(ENOENT, 5, "not found")                                           \
	XX(EEXIST, 6, "already exists")                                      \
	XX(ECORRUPT, 7, "data is corrupt")                                   \
	XX(ECRYPTO, 8, "cryptographic operation failed")                     \
	XX(ENOTSUP, 9, "operation not supported")                            \
	XX(EAGAIN, 10, "try again")                                          \
	XX(ETRUNC, 11, "data is truncated")                                  \
	XX(ECLOCK, 12, "clock is unset or implausible")                      \
	XX(EACCES, 13, "permission denied")                                  \
	XX(ESTATE, 14, "operation not allowed in this state")                \
	XX(ERANGE, 15, "value out of range")                                 \
	XX(ESIG, 16, "signature does not verify")                            \
	XX(ECHAIN, 17, "record chain is broken")                             \
	XX(EDISCONN, 18, "peer disconnected")                                \
	XX(ETIMEDOUT, 19, "timed out")                                       \
	XX(EINTERNAL, 20, "internal error")                                  \
	XX(EUNDELIVERED, 21, "storage full of recordings not yet delivered")

enum shim_err {
	SHIM_OK = 0,
#define SHIM__ERR_ENUM(name, num, msg) SHIM_##name = -(num),
	SHIM_ERRNO_MAP(SHIM__ERR_ENUM)
#undef SHIM__ERR_ENUM
};

/* Returns a static, human-readable message for a SHIM_E* code. */
const char *shim_strerror(int err);

/* Returns the symbolic name ("SHIM_EIO") of a SHIM_E* code. */
const char *shim_err_name(int err);

#endif
