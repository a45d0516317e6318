/* usage-file: usage.json, the usage store's durable file (usage-store.h): the format, the
 * strict reader (every field checked; the first problem names the field), moving a file
 * that cannot be read aside, and the durable replace (durable.c). */
#include "usage-store.h"

#include "autocleanups.h"
#include "durable.h"
#include "error.h"
#include "usage-store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define FILE_VERSION 1
/* Integers JSON numbers (doubles) carry exactly. */
#define JSON_INT_MAX 9007199254740992.0
/* The latest time a file may hold (9999-12-31T23:59:59Z): timestamps are formatted in
 * microseconds, which must not overflow. */
#define TIME_MAX G_GINT64_CONSTANT(253402300799)

static void
add_u64(cJSON *obj, const char *key, guint64 v)
{
    cJSON_AddNumberToObject(obj, key, (double) v);
}

/*****************************************************************************/
/* The file */

static void
cycle_to_json(cJSON *obj, const CaUsageCycle *c)
{
    cJSON_AddNumberToObject(obj, "start", (double) c->start);
    cJSON_AddNumberToObject(obj, "end", (double) c->end);
    if (c->plan)
        cJSON_AddStringToObject(obj, "plan", c->plan);
    add_u64(obj, "rx_bytes", c->bytes.rx_bytes);
    add_u64(obj, "tx_bytes", c->bytes.tx_bytes);
    add_u64(obj, "rx_packets", c->bytes.rx_packets);
    add_u64(obj, "tx_packets", c->bytes.tx_packets);
    add_u64(obj, "closed_billable", c->closed_billable);
    add_u64(obj, "session_billable", c->session_billable);
    add_u64(obj, "session_round", c->session_round);
    cJSON_AddNumberToObject(obj, "adjust", (double) c->adjust);
    cJSON_AddNumberToObject(obj, "alerted", c->alerted);
    cJSON_AddBoolToObject(obj, "limit_reported", c->limit_reported);
    cJSON_AddNumberToObject(obj, "override_until", (double) c->override_until);
}

char *
ca_usage_store_to_json(const CaUsageStore *self)
{
    g_autoptr(cJSON) root = cJSON_CreateObject();
    cJSON *sims;

    cJSON_AddNumberToObject(root, "version", FILE_VERSION);
    if (self->current)
        cJSON_AddStringToObject(root, "current", self->current);
    if (self->last.iface) {
        cJSON *last = cJSON_AddObjectToObject(root, "last");

        cJSON_AddStringToObject(last, "iface", self->last.iface);
        cJSON_AddNumberToObject(last, "ifindex", self->last.ifindex);
        if (self->last.boot_id)
            cJSON_AddStringToObject(last, "boot_id", self->last.boot_id);
        add_u64(last, "rx_bytes", self->last.c.rx_bytes);
        add_u64(last, "tx_bytes", self->last.c.tx_bytes);
        add_u64(last, "rx_packets", self->last.c.rx_packets);
        add_u64(last, "tx_packets", self->last.c.tx_packets);
    }
    sims = cJSON_AddArrayToObject(root, "sims");
    for (guint i = 0; i < self->sims->len; i++) {
        const CaUsageSim *sim = g_ptr_array_index(self->sims, i);
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "iccid", sim->iccid);
        cJSON_AddNumberToObject(o, "last_seen", (double) sim->last_seen);
        cycle_to_json(cJSON_AddObjectToObject(o, "cur"), &sim->cur);
        if (sim->has_prev)
            cycle_to_json(cJSON_AddObjectToObject(o, "prev"), &sim->prev);
        cJSON_AddItemToArray(sims, o);
    }
    return cJSON_Print(root);
}

/* Reading: every field is checked; the first problem names the field. */
typedef struct {
    const char *problem;
    const char *field;
} Reader;

static gboolean
get_num(Reader *r, const cJSON *obj, const char *key, gboolean optional, gboolean negative,
        double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    double d;

    if (r->problem)
        return FALSE;
    if (!v && optional) {
        *out = 0;
        return TRUE;
    }
    d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || fabs(d) > JSON_INT_MAX || (!negative && d < 0)) {
        r->problem = v ? "not a whole number in range" : "missing";
        r->field = key;
        return FALSE;
    }
    *out = d;
    return TRUE;
}

static guint64
get_u64(Reader *r, const cJSON *obj, const char *key)
{
    double d = 0;

    return get_num(r, obj, key, FALSE, FALSE, &d) ? (guint64) d : 0;
}

static gint64
get_i64(Reader *r, const cJSON *obj, const char *key, gboolean negative)
{
    double d = 0;

    return get_num(r, obj, key, FALSE, negative, &d) ? (gint64) d : 0;
}

static char *
get_str(Reader *r, const cJSON *obj, const char *key, gboolean optional)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (r->problem)
        return NULL;
    if (!v && optional)
        return NULL;
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 256 ||
        !g_utf8_validate(v->valuestring, -1, NULL)) {
        r->problem = v ? "not a string" : "missing";
        r->field = key;
        return NULL;
    }
    return g_strdup(v->valuestring);
}

static void
cycle_from_json(Reader *r, const cJSON *obj, CaUsageCycle *c)
{
    if (!cJSON_IsObject(obj)) {
        r->problem = r->problem ? r->problem : "not an object";
        r->field = r->field ? r->field : "cur";
        return;
    }
    c->start = get_i64(r, obj, "start", FALSE);
    c->end = get_i64(r, obj, "end", FALSE);
    c->plan = get_str(r, obj, "plan", TRUE);
    c->bytes.rx_bytes = get_u64(r, obj, "rx_bytes");
    c->bytes.tx_bytes = get_u64(r, obj, "tx_bytes");
    c->bytes.rx_packets = get_u64(r, obj, "rx_packets");
    c->bytes.tx_packets = get_u64(r, obj, "tx_packets");
    c->closed_billable = get_u64(r, obj, "closed_billable");
    c->session_billable = get_u64(r, obj, "session_billable");
    c->session_round = get_u64(r, obj, "session_round");
    c->adjust = get_i64(r, obj, "adjust", TRUE);
    c->alerted = (guint) MIN(get_u64(r, obj, "alerted"), 100);
    c->limit_reported = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "limit_reported"));
    c->override_until = get_i64(r, obj, "override_until", FALSE);
    if (!r->problem && c->end <= c->start) {
        r->problem = "a cycle that ends before it starts";
        r->field = "end";
    }
    if (!r->problem && (c->end > TIME_MAX || c->override_until > TIME_MAX)) {
        r->problem = "a time after the year 9999";
        r->field = c->end > TIME_MAX ? "end" : "override_until";
    }
}

CaUsageStore *
ca_usage_store_from_json(const char *text, gsize len, guint max_sims, GError **error)
{
    g_autoptr(cJSON) root = cJSON_ParseWithLength(text, len);
    g_autoptr(CaUsageStore) self = ca_usage_store_new(max_sims);
    Reader r = {NULL, NULL};
    const cJSON *last, *sims, *o;

    if (!cJSON_IsObject(root)) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "not a JSON object");
        return NULL;
    }
    if (get_u64(&r, root, "version") != FILE_VERSION && !r.problem) {
        r.problem = "unknown version";
        r.field = "version";
    }
    self->current = get_str(&r, root, "current", TRUE);
    last = cJSON_GetObjectItemCaseSensitive(root, "last");
    if (last && !r.problem) {
        self->last.iface = get_str(&r, last, "iface", FALSE);
        self->last.ifindex = (int) MIN(get_u64(&r, last, "ifindex"), G_MAXINT);
        self->last.boot_id = get_str(&r, last, "boot_id", TRUE);
        self->last.c.rx_bytes = get_u64(&r, last, "rx_bytes");
        self->last.c.tx_bytes = get_u64(&r, last, "tx_bytes");
        self->last.c.rx_packets = get_u64(&r, last, "rx_packets");
        self->last.c.tx_packets = get_u64(&r, last, "tx_packets");
    }
    sims = cJSON_GetObjectItemCaseSensitive(root, "sims");
    if (!r.problem && !cJSON_IsArray(sims)) {
        r.problem = "not an array";
        r.field = "sims";
    }
    if (r.problem)
        sims = NULL;
    cJSON_ArrayForEach(o, sims)
    {
        CaUsageSim *sim = g_new0(CaUsageSim, 1);
        const cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, "prev");

        g_ptr_array_add(self->sims, sim);
        sim->iccid = get_str(&r, o, "iccid", FALSE);
        sim->last_seen = MIN(get_i64(&r, o, "last_seen", FALSE), TIME_MAX);
        cycle_from_json(&r, cJSON_GetObjectItemCaseSensitive(o, "cur"), &sim->cur);
        if (prev) {
            cycle_from_json(&r, prev, &sim->prev);
            sim->has_prev = TRUE;
        }
        if (!r.problem && ca_usage_store_find_sim(self, sim->iccid) != sim) {
            r.problem = "a SIM listed twice";
            r.field = "iccid";
        }
        if (r.problem)
            break;
    }
    if (r.problem) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "%s: %s", r.field, r.problem);
        return NULL;
    }
    ca_usage_store_trim(self, self->max_sims);
    self->dirty = FALSE;
    return g_steal_pointer(&self);
}

CaUsageStore *
ca_usage_store_load(const char *dir, guint max_sims, char **out_problem)
{
    g_autofree char *path = g_build_filename(dir, CA_USAGE_FILE, NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    gsize len = 0;
    CaUsageStore *store = NULL;

    *out_problem = NULL;
    if (!g_file_get_contents(path, &text, &len, &error)) {
        if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return ca_usage_store_new(max_sims);
        *out_problem =
            g_strdup_printf("cannot read %s: %s; counting starts over", path, error->message);
        return ca_usage_store_new(max_sims);
    }
    if (len > CA_USAGE_FILE_MAX)
        g_set_error(&error, CA_ERROR, CA_ERROR_INVALID_INPUT, "larger than %d bytes",
                    CA_USAGE_FILE_MAX);
    else
        store = ca_usage_store_from_json(text, len, max_sims, &error);
    if (!store) {
        g_autofree char *bad = g_strconcat(path, ".bad", NULL);

        if (g_rename(path, bad) == 0)
            *out_problem = g_strdup_printf("%s is unusable (%s): moved to %s, counting starts "
                                           "over",
                                           path, error->message, bad);
        else
            *out_problem = g_strdup_printf("%s is unusable (%s) and cannot be moved aside (%s): "
                                           "counting starts over",
                                           path, error->message, g_strerror(errno));
        store = ca_usage_store_new(max_sims);
    }
    return store;
}

gboolean
ca_usage_store_save(const CaUsageStore *self, const char *dir, GError **error)
{
    g_autofree char *text = ca_usage_store_to_json(self);
    int dirfd;
    gboolean ok;

    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot create %s: %s", dir, g_strerror(errno));
        return FALSE;
    }
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot open %s: %s", dir, g_strerror(errno));
        return FALSE;
    }
    ok = ca_durable_replace(dirfd, dir, CA_USAGE_FILE, text, strlen(text), error);
    close(dirfd);
    return ok;
}
