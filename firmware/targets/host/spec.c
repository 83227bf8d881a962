#include "spec.h"

#include <stdlib.h>
#include <string.h>

uint32_t fl_threshold(double p)
{
    double t = p * 4294967296.0 + 0.5;
    if (t >= 4294967295.0) {
        return 0xFFFFFFFFu;
    }
    return (uint32_t)t;
}

static int parse_prob(const char *s, char **end, double *p)
{
    *p = strtod(s, end);
    return (*end != s && *p >= 0.0 && *p <= 1.0) ? 0 : -1;
}

int fl_parse_channel(const char *spec, uint64_t seed, struct fl_mode *mode)
{
    char *end = NULL;
    double p = 0.0;
    double q = 0.0;
    *mode = (struct fl_mode){.model = FL_MODEL_NONE, .a = 0u, .b = 0u, .seed = seed};
    if (strcmp(spec, "none") == 0) {
        return 0;
    }
    if (strncmp(spec, "bsc:", 4) == 0) {
        if (parse_prob(spec + 4, &end, &p) != 0 || *end != '\0') {
            return -1;
        }
        mode->model = FL_MODEL_BSC;
        mode->a = fl_threshold(p);
        return 0;
    }
    int asym = strncmp(spec, "asym:", 5) == 0;
    int stuck = strncmp(spec, "stuck:", 6) == 0;
    if (!asym && !stuck) {
        return -1;
    }
    const char *s = spec + (asym ? 5 : 6);
    if (parse_prob(s, &end, &p) != 0 || *end != ',' || parse_prob(end + 1, &end, &q) != 0) {
        return -1;
    }
    mode->model = asym ? FL_MODEL_ASYM : FL_MODEL_STUCK;
    mode->a = fl_threshold(p);
    mode->b = fl_threshold(q);
    if (*end == '\0') {
        return 0;
    }
    if (asym || *end != ',') {
        return -1;
    }
    s = end + 1;
    if (strncmp(s, "seed=", 5) == 0) {
        s += 5;
    }
    mode->seed = strtoull(s, &end, 0);
    return (end != s && *end == '\0') ? 0 : -1;
}
