/* Parses an error-model spec string of the host channels into an fl_mode (host target only:
 * uses strtod). Probabilities become 32-bit thresholds round(p * 2^32), capped at 2^32 - 1. */
#ifndef FL_SPEC_H
#define FL_SPEC_H

#include <stdint.h>

#include "fl_nvm.h"

/* "none" | "bsc:P" | "asym:P01,P10" | "stuck:FRACTION,SHARE1[,SEED]" (also "seed=SEED").
 * `seed` seeds the read noise and is the stuck-at device seed unless the spec gives one.
 * Returns 0 on success, -1 on a malformed spec or a probability outside [0, 1]. */
int fl_parse_channel(const char *spec, uint64_t seed, struct fl_mode *mode);
uint32_t fl_threshold(double p);

#endif
