/* Prometheus text exposition format (version 0.0.4) writer over an sv_admin_buf:
 *
 *   sv_prom_family(b, "serval_requests_total", "Requests received.", SV_PROM_COUNTER);
 *   struct sv_prom_label l[] = {{"worker", "0"}, {"code", "2xx"}};
 *   sv_prom_u64(b, "serval_requests_total", l, 2, 1234);
 *   -> # HELP serval_requests_total Requests received.
 *      # TYPE serval_requests_total counter
 *      serval_requests_total{worker="0",code="2xx"} 1234
 *
 * Write the family line once, then one sample per label set. Names are checked
 * ([a-zA-Z_:][a-zA-Z0-9_:]*, labels [a-zA-Z_][a-zA-Z0-9_]*); label values and help text are
 * escaped as the format requires (\\, \", \n). Thread: the buffer's owner. Each function returns
 * 0, -EINVAL (bad name or type) or the buffer's append error. */
#ifndef SERVAL_ADMIN_PROM_H
#define SERVAL_ADMIN_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serval/admin/admin.h"

enum sv_prom_type { SV_PROM_COUNTER, SV_PROM_GAUGE, SV_PROM_UNTYPED, SV_PROM_HISTOGRAM };

struct sv_prom_label {
    const char *name;
    const char *value;
};

/* "# HELP <name> <help>\n# TYPE <name> <type>\n" (<help> may be NULL: no HELP line). */
int sv_prom_family(struct sv_admin_buf *b, const char *name, const char *help,
                   enum sv_prom_type type);

/* One sample line with an integer value. <labels> may be NULL when <nlabels> is 0. */
int sv_prom_u64(struct sv_admin_buf *b, const char *name, const struct sv_prom_label *labels,
                size_t nlabels, uint64_t value);

/* One sample line with a floating value (NaN, +Inf, -Inf spelled as the format wants). */
int sv_prom_double(struct sv_admin_buf *b, const char *name, const struct sv_prom_label *labels,
                   size_t nlabels, double value);

/* Family + one unlabelled sample: the common case of a single counter or gauge. */
int sv_prom_single(struct sv_admin_buf *b, const char *name, const char *help,
                   enum sv_prom_type type, double value);

/* A histogram family's samples for one label set: <name>_bucket{...,le="B"} for each upper
 * bound in <bounds> (ascending) with the CUMULATIVE counts in <cumulative>, then le="+Inf" =
 * <count>, <name>_sum and <name>_count. Write the family line first with SV_PROM_HISTOGRAM.
 * <labels> must not contain "le". Returns 0, -EINVAL (bad names, "le" label, bounds not
 * ascending, a cumulative count decreasing or above <count>) or the buffer's append error. */
int sv_prom_histogram(struct sv_admin_buf *b, const char *name, const struct sv_prom_label *labels,
                      size_t nlabels, const double *bounds, const uint64_t *cumulative,
                      size_t nbounds, double sum, uint64_t count);

/* True if <name> is a valid metric name (<label> false) or label name (<label> true). */
bool sv_prom_valid_name(const char *name, bool label);

#endif
