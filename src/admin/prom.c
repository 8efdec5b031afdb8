/* Prometheus text-format writer (see serval/admin/prom.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serval/admin/prom.h"

bool sv_prom_valid_name(const char *name, bool label)
{
    if (!name || !name[0])
        return false;
    for (size_t i = 0; name[i]; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (!label && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    if (label && name[0] == '_' && name[1] == '_') /* reserved for Prometheus itself */
        return false;
    return true;
}

/* Escape <s> for a label value (<quote> true: \\ \" \n) or help text (\\ \n). */
static int put_escaped(struct sv_admin_buf *b, const char *s, bool quote)
{
    int rc = 0;
    size_t run = 0, i = 0;
    for (; s[i] && rc == 0; i++) {
        const char *esc = NULL;
        if (s[i] == '\\')
            esc = "\\\\";
        else if (s[i] == '\n')
            esc = "\\n";
        else if (quote && s[i] == '"')
            esc = "\\\"";
        if (!esc)
            continue;
        rc = sv_admin_buf_append(b, s + run, i - run);
        if (rc == 0)
            rc = sv_admin_buf_puts(b, esc);
        run = i + 1;
    }
    return rc ? rc : sv_admin_buf_append(b, s + run, i - run);
}

int sv_prom_family(struct sv_admin_buf *b, const char *name, const char *help,
                   enum sv_prom_type type)
{
    static const char *const names[] = {"counter", "gauge", "untyped", "histogram"};
    if (!sv_prom_valid_name(name, false) || (unsigned)type > SV_PROM_HISTOGRAM)
        return -EINVAL;
    int rc = 0;
    if (help) {
        rc = sv_admin_buf_printf(b, "# HELP %s ", name);
        if (rc == 0)
            rc = put_escaped(b, help, false);
        if (rc == 0)
            rc = sv_admin_buf_puts(b, "\n");
    }
    return rc ? rc : sv_admin_buf_printf(b, "# TYPE %s %s\n", name, names[type]);
}

static int put_name_labels(struct sv_admin_buf *b, const char *name,
                           const struct sv_prom_label *labels, size_t n)
{
    if (!sv_prom_valid_name(name, false) || (n && !labels))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!sv_prom_valid_name(labels[i].name, true) || !labels[i].value)
            return -EINVAL;
    int rc = sv_admin_buf_puts(b, name);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = sv_admin_buf_printf(b, "%s%s=\"", i ? "," : "{", labels[i].name);
        if (rc == 0)
            rc = put_escaped(b, labels[i].value, true);
        if (rc == 0)
            rc = sv_admin_buf_puts(b, i + 1 == n ? "\"}" : "\"");
    }
    return rc;
}

int sv_prom_u64(struct sv_admin_buf *b, const char *name, const struct sv_prom_label *labels,
                size_t nlabels, uint64_t value)
{
    int rc = put_name_labels(b, name, labels, nlabels);
    return rc ? rc : sv_admin_buf_printf(b, " %" PRIu64 "\n", value);
}

/* Shortest "%g" text of <v> that reads back as the same double. */
static void fmt_double(char *tmp, size_t cap, double v)
{
    snprintf(tmp, cap, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, cap, "%.17g", v);
}

int sv_prom_double(struct sv_admin_buf *b, const char *name, const struct sv_prom_label *labels,
                   size_t nlabels, double value)
{
    int rc = put_name_labels(b, name, labels, nlabels);
    if (rc)
        return rc;
    if (isnan(value))
        return sv_admin_buf_puts(b, " NaN\n");
    if (isinf(value))
        return sv_admin_buf_puts(b, value > 0 ? " +Inf\n" : " -Inf\n");
    char tmp[40];
    fmt_double(tmp, sizeof(tmp), value);
    return sv_admin_buf_printf(b, " %s\n", tmp);
}

int sv_prom_single(struct sv_admin_buf *b, const char *name, const char *help,
                   enum sv_prom_type type, double value)
{
    int rc = sv_prom_family(b, name, help, type);
    return rc ? rc : sv_prom_double(b, name, NULL, 0, value);
}

int sv_prom_histogram(struct sv_admin_buf *b, const char *name, const struct sv_prom_label *labels,
                      size_t nlabels, const double *bounds, const uint64_t *cumulative,
                      size_t nbounds, double sum, uint64_t count)
{
    char full[256];
    struct sv_prom_label lbl[17];
    if (nlabels > 16 || (nbounds && (!bounds || !cumulative)) ||
        snprintf(full, sizeof(full), "%s_bucket", name) >= (int)sizeof(full))
        return -EINVAL;
    for (size_t i = 0; i < nlabels; i++) {
        if (!labels || !labels[i].name || strcmp(labels[i].name, "le") == 0)
            return -EINVAL;
        lbl[i] = labels[i];
    }
    for (size_t i = 0; i < nbounds; i++) {
        if ((i > 0 && !(bounds[i] > bounds[i - 1])) || isnan(bounds[i]) ||
            (i > 0 && cumulative[i] < cumulative[i - 1]) || cumulative[i] > count)
            return -EINVAL;
    }
    int rc = 0;
    char le[40];
    for (size_t i = 0; i <= nbounds && rc == 0; i++) {
        if (i < nbounds)
            fmt_double(le, sizeof(le), bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        lbl[nlabels] = (struct sv_prom_label){"le", le};
        rc = sv_prom_u64(b, full, lbl, nlabels + 1, i < nbounds ? cumulative[i] : count);
    }
    if (rc == 0) {
        snprintf(full, sizeof(full), "%s_sum", name);
        rc = sv_prom_double(b, full, labels, nlabels, sum);
    }
    if (rc == 0) {
        snprintf(full, sizeof(full), "%s_count", name);
        rc = sv_prom_u64(b, full, labels, nlabels, count);
    }
    return rc;
}
