/* Configuration loader: any bytes give errors or a config, never a crash
 * or a leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_config cfg;
	struct shim_config_diag diag = { NULL, 0, 0, 1 };

	shim_config_load_buffer(&cfg, "fuzz.yaml", (const char *)data, size, &diag);
	shim_config_free(&cfg);
	return 0;
}
