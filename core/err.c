#include "err.h"

const char *shim_strerror(int err)
{
	switch (err) {
	case SHIM_OK:
		return "success";
#define SHIM__ERR_MSG(name, num, msg) \
	case SHIM_##name:             \
		return msg;
		SHIM_ERRNO_MAP(SHIM__ERR_MSG)
#undef SHIM__ERR_MSG
	default:
		return "unknown error";
	}
}

const char *shim_err_name(int err)
{
	switch (err) {
	case SHIM_OK:
		return "SHIM_OK";
#define SHIM__ERR_NAME(name, num, msg) \
	case SHIM_##name:              \
		return "SHIM_" #name;
		SHIM_ERRNO_MAP(SHIM__ERR_NAME)
#undef SHIM__ERR_NAME
	default:
		return "SHIM_E?";
	}
}
