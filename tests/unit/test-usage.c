/* Unit tests for usage accounting: interface counter deltas (growth, re-creation by name,
 * index or boot, counters going back: counted from 0, never as a wrap), the billing model
 * (per-packet overhead, per-session rounding), the store (booking per SIM and cycle, a SIM
 * change starting a new counter, cycle change with a controlled clock, thresholds once per
 * cycle, adjust and override, bounds, the file's round trip, restart continuity, corrupt
 * files moved aside) and the settings ([usage], [plan-NAME], plan choice, validation). */
#include "autocleanups.h"
#include "config.h"
#include "error.h"
#include "usage-store.h"

#include <glib/gstdio.h>
#include <string.h>

#define ICCID_A "8925402123456789012"
#define ICCID_B "8925402999999999999"

static CaIfSample
sample(const char *iface, int ifindex, guint64 rx, guint64 tx, guint64 rxp, guint64 txp)
{
    CaIfSample s;

    memset(&s, 0, sizeof s);
    s.iface = (char *) iface;
    s.ifindex = ifindex;
    s.boot_id = (char *) "boot-1";
    s.c.rx_bytes = rx;
    s.c.tx_bytes = tx;
    s.c.rx_packets = rxp;
    s.c.tx_packets = txp;
    return s;
}

/*****************************************************************************/
/* Deltas */

static void
test_delta(void)
{
    CaIfSample a = sample("usb0", 3, 1000, 500, 10, 5);
    CaIfSample b = sample("usb0", 3, 3000, 800, 30, 8);
    CaIfSample none;
    CaUsageBytes d;
    const char *why;

    memset(&none, 0, sizeof none);
    g_assert_cmpint(ca_usage_delta(&a, &none, &d, &why), ==, CA_USAGE_DELTA_NONE);
    g_assert_cmpint(ca_usage_delta(&none, &a, &d, &why), ==, CA_USAGE_DELTA_BASELINE);
    g_assert_cmpuint(d.rx_bytes, ==, 0);
    g_assert_cmpint(ca_usage_delta(&a, &b, &d, &why), ==, CA_USAGE_DELTA_GREW);
    g_assert_null(why);
    g_assert_cmpuint(d.rx_bytes, ==, 2000);
    g_assert_cmpuint(d.tx_bytes, ==, 300);
    g_assert_cmpuint(d.rx_packets, ==, 20);
    g_assert_cmpuint(d.tx_packets, ==, 3);
    g_assert_cmpint(ca_usage_delta(&a, &a, &d, &why), ==, CA_USAGE_DELTA_GREW);
    g_assert_cmpuint(d.rx_bytes + d.tx_bytes, ==, 0);
}

static void
test_delta_recreated(void)
{
    CaIfSample prev = sample("usb0", 3, 5000000, 400000, 4000, 3000);
    struct {
        CaIfSample now;
        const char *why;
    } cases[] = {
        {sample("wwan0", 3, 100, 50, 1, 1), "interface"},
        {sample("usb0", 7, 100, 50, 1, 1), "ifindex"},
        {sample("usb0", 3, 100, 50, 1, 1), "counters-decreased"},
        /* Only one counter went back: still a new interface, never a wrap of 2^64. */
        {sample("usb0", 3, 6000000, 50, 5000, 3001), "counters-decreased"},
        {sample("usb0", 3, 6000000, 500000, 5000, 4000), "boot"},
    };

    cases[4].now.boot_id = (char *) "boot-2";
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        CaUsageBytes d;
        const char *why = NULL;

        g_assert_cmpint(ca_usage_delta(&prev, &cases[i].now, &d, &why), ==,
                        CA_USAGE_DELTA_RECREATED);
        g_assert_cmpstr(why, ==, cases[i].why);
        /* Counted from 0: the new counters themselves. */
        g_assert_cmpuint(d.rx_bytes, ==, cases[i].now.c.rx_bytes);
        g_assert_cmpuint(d.tx_bytes, ==, cases[i].now.c.tx_bytes);
    }
}

/*****************************************************************************/
/* Billing model */

static void
test_model(void)
{
    CaBillingModel plain = {0, 0}, overhead = {40, 0}, round_kb = {0, 1024};
    CaUsageBytes b = {1000, 500, 10, 5};
    CaUsageBytes huge = {G_MAXUINT64 - 1, 5, G_MAXUINT64 / 2, 1};

    g_assert_cmpuint(ca_billing_volume(&plain, &b), ==, 1500);
    g_assert_cmpuint(ca_billing_volume(&overhead, &b), ==, 1500 + 15 * 40);
    g_assert_cmpuint(ca_billing_volume(&overhead, &huge), ==, G_MAXUINT64);
    g_assert_cmpuint(ca_billing_round_session(&round_kb, 0), ==, 0);
    g_assert_cmpuint(ca_billing_round_session(&round_kb, 1), ==, 1024);
    g_assert_cmpuint(ca_billing_round_session(&round_kb, 1024), ==, 1024);
    g_assert_cmpuint(ca_billing_round_session(&round_kb, 1025), ==, 2048);
    g_assert_cmpuint(ca_billing_round_session(&plain, 1025), ==, 1025);
    g_assert_cmpuint(ca_billing_round_session(&round_kb, G_MAXUINT64), ==, G_MAXUINT64);
}

/*****************************************************************************/
/* Store */

static CaUsagePlan *
plan_new(const char *name, guint64 limit)
{
    CaUsagePlan *p = g_new0(CaUsagePlan, 1);

    p->name = g_strdup(name);
    p->limit_bytes = limit;
    ca_usage_default_cycle(&p->cycle);
    p->alerts[0] = 50;
    p->alerts[1] = 80;
    p->n_alerts = 2;
    return p;
}

static void
plan_free(CaUsagePlan *p)
{
    g_free(p->name);
    g_free(p);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaUsagePlan, plan_free)

static gint64
utc(const char *iso)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(iso, NULL);

    g_assert_nonnull(dt);
    return g_date_time_to_unix(dt);
}

static guint
count_type(GPtrArray *events, const char *type)
{
    guint n = 0;

    for (guint i = 0; i < events->len; i++) {
        const cJSON *t = cJSON_GetObjectItem(g_ptr_array_index(events, i), "type");
        n += g_str_equal(cJSON_GetStringValue(t), type);
    }
    return n;
}

static cJSON *
find_type(GPtrArray *events, const char *type)
{
    for (guint i = 0; i < events->len; i++) {
        cJSON *e = g_ptr_array_index(events, i);
        if (g_str_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "type")), type))
            return e;
    }
    return NULL;
}

static GPtrArray *
events_new(void)
{
    return g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);
}

static guint64
total(const CaUsageStore *st, const char *iccid)
{
    const CaUsageSim *sim = ca_usage_store_get(st, iccid);

    g_assert_nonnull(sim);
    return sim->cur.bytes.rx_bytes + sim->cur.bytes.tx_bytes;
}

/* Booking across a session drop and interface re-creation: every byte once. */
static void
test_store_recreation(void)
{
    g_autoptr(CaUsageStore) st = ca_usage_store_new(8);
    g_autoptr(GTimeZone) tz = g_time_zone_new_utc();
    g_autoptr(GPtrArray) ev = events_new();
    gint64 now = utc("2026-12-06T10:00:00Z");
    CaIfSample s;

    s = sample("usb0", 3, 1000, 1000, 10, 10); /* before the agent: not ours to count */
    g_assert_cmpint(ca_usage_store_sample(st, ICCID_A, NULL, tz, &s, now, ev), ==,
                    CA_USAGE_DELTA_BASELINE);
    g_assert_cmpuint(total(st, ICCID_A), ==, 0);
    s = sample("usb0", 3, 6000, 2000, 20, 20);
    ca_usage_store_sample(st, ICCID_A, NULL, tz, &s, now + 10, ev);
    g_assert_cmpuint(total(st, ICCID_A), ==, 6000);
    /* The same interface again: nothing new. */
    ca_usage_store_sample(st, ICCID_A, NULL, tz, &s, now + 20, ev);
    g_assert_cmpuint(total(st, ICCID_A), ==, 6000);
    g_assert_cmpuint(count_type(ev, "usage-counter-reset"), ==, 0);
    /* Session dropped, interface re-created (new index), 700 bytes already on it. */
    s = sample("usb0", 4, 500, 200, 5, 2);
    g_assert_cmpint(ca_usage_store_sample(st, ICCID_A, NULL, tz, &s, now + 30, ev), ==,
                    CA_USAGE_DELTA_RECREATED);
    g_assert_cmpuint(total(st, ICCID_A), ==, 6700);
    g_assert_cmpuint(count_type(ev, "usage-counter-reset"), ==, 1);
    g_assert_cmpstr(
        cJSON_GetStringValue(cJSON_GetObjectItem(find_type(ev, "usage-counter-reset"), "reason")),
        ==, "ifindex");
    /* Events name the SIM by its last digits only. */
    g_assert_cmpstr(
        cJSON_GetStringValue(cJSON_GetObjectItem(find_type(ev, "usage-counter-reset"), "sim")), ==,
        "...9012");
    s = sample("usb0", 4, 1500, 300, 10, 3);
    ca_usage_store_sample(st, ICCID_A, NULL, tz, &s, now + 40, ev);
    g_assert_cmpuint(total(st, ICCID_A), ==, 7800);
    /* No interface now (bearer down): nothing booked, the last reading kept. */
    memset(&s, 0, sizeof s);
    g_assert_cmpint(ca_usage_store_sample(st, ICCID_A, NULL, tz, &s, now + 50, ev), ==,
                    CA_USAGE_DELTA_NONE);
    g_assert_cmpstr(ca_usage_store_peek_last_sample(st)->iface, ==, "usb0");
}

/* A SIM change starts a new counter; the old SIM's counts stay. */
static void
test_store_sim_change(void)
{
    g_autoptr(CaUsageStore) st = ca_usage_store_new(8);
    g_autoptr(GTimeZone) tz = g_time_zone_new_utc();
    g_autoptr(GPtrArray) ev = events_new();
    gint64 now = utc("2026-12-06T10:00:00Z");
    CaIfSample s = sample("usb0", 3, 0, 0, 0, 0);

    ca_usage_store_sample(st, ICCID_A, NULL, tz, &s, now, ev);
    s = sample("usb0", 3, 4000, 1000, 4, 1);
    ca_usage_store_sample(st, ICCID_A, NULL, tz, &s, now + 10, ev);
    s = sample("usb0", 5, 300, 100, 3, 1);
    ca_usage_store_sample(st, ICCID_B, NULL, tz, &s, now + 20, ev);
    g_assert_cmpuint(total(st, ICCID_A), ==, 5000);
    g_assert_cmpuint(total(st, ICCID_B), ==, 400);
    g_assert_cmpuint(ca_usage_store_count(st), ==, 2);
    /* Unknown SIM for a moment (modem re-probing): bytes go to the SIM booked last. */
    s = sample("usb0", 5, 800, 100, 5, 1);
    ca_usage_store_sample(st, NULL, NULL, tz, &s, now + 30, ev);
    g_assert_cmpuint(total(st, ICCID_B), ==, 900);
    g_assert_cmpuint(total(st, ICCID_A), ==, 5000);
}

/* Thresholds once per cycle, the limit, the cycle change (a clock we control), the
 * previous cycle kept. */
static void
test_store_cycle_and_thresholds(void)
{
    g_autoptr(CaUsageStore) st = ca_usage_store_new(8);
    g_autoptr(GTimeZone) tz = g_time_zone_new_utc();
    g_autoptr(CaUsagePlan) plan = plan_new("iot", 10000);
    g_autoptr(GPtrArray) ev = events_new();
    gint64 now = utc("2026-12-30T10:00:00Z");
    const CaUsageSim *sim;
    g_autoptr(cJSON) payload = NULL;
    CaIfSample s = sample("usb0", 3, 0, 0, 0, 0);
    CaUsageAtLimit action = CA_USAGE_AT_LIMIT_DISCONNECT;

    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now, ev);
    s = sample("usb0", 3, 4000, 900, 4, 1); /* 49 % */
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now + 1, ev);
    g_assert_cmpuint(count_type(ev, "usage-threshold"), ==, 0);
    s = sample("usb0", 3, 5000, 900, 5, 1); /* 59 % */
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now + 2, ev);
    g_assert_cmpuint(count_type(ev, "usage-threshold"), ==, 1);
    g_assert_cmpint(
        cJSON_GetNumberValue(cJSON_GetObjectItem(find_type(ev, "usage-threshold"), "threshold")),
        ==, 50);
    s = sample("usb0", 3, 5500, 900, 6, 1); /* still 64 %: no repeat */
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now + 3, ev);
    g_assert_cmpuint(count_type(ev, "usage-threshold"), ==, 1);
    payload = ca_usage_store_payload(st, ICCID_A, plan, now + 3);
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(payload, "state")), ==, "warning");
    g_assert_cmpfloat(cJSON_GetNumberValue(cJSON_GetObjectItem(payload, "percent")), ==, 64.0);
    g_clear_pointer(&payload, cJSON_Delete);
    g_assert_false(ca_usage_store_action(st, ICCID_A, plan, now + 3, &action)); /* below */
    s = sample("usb0", 3, 9500, 900, 7, 1); /* 104 %: 80 and the limit at once */
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now + 4, ev);
    /* The at-limit action is in force from the limit on. */
    g_assert_true(ca_usage_store_action(st, ICCID_A, plan, now + 4, &action));
    g_assert_cmpint(action, ==, CA_USAGE_AT_LIMIT_ALERT);
    plan->at_limit = CA_USAGE_AT_LIMIT_ESSENTIAL_ONLY;
    g_assert_true(ca_usage_store_action(st, ICCID_A, plan, now + 4, &action));
    g_assert_cmpint(action, ==, CA_USAGE_AT_LIMIT_ESSENTIAL_ONLY);
    g_assert_false(ca_usage_store_action(st, ICCID_B, plan, now + 4, &action)); /* other SIM */
    payload = ca_usage_store_payload(st, ICCID_A, plan, now + 4);
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(payload, "action")), ==,
                    "essential-only");
    g_clear_pointer(&payload, cJSON_Delete);
    plan->at_limit = CA_USAGE_AT_LIMIT_ALERT;
    g_assert_cmpuint(count_type(ev, "usage-threshold"), ==, 2);
    g_assert_cmpuint(count_type(ev, "usage-limit"), ==, 1);
    payload = ca_usage_store_payload(st, ICCID_A, plan, now + 4);
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(payload, "state")), ==, "limit");
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(payload, "action")), ==, "alert");
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(payload, "cycle_start")), ==,
                    "2026-12-01T00:00:00Z");
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(payload, "cycle_end")), ==,
                    "2027-01-01T00:00:00Z");
    g_clear_pointer(&payload, cJSON_Delete);
    /* Override: the cap is lifted until a time; the state stays "limit". */
    g_assert_true(ca_usage_store_override(st, ICCID_A, now + 3600));
    payload = ca_usage_store_payload(st, ICCID_A, plan, now + 5);
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(payload, "action")), ==, "override");
    g_assert_nonnull(cJSON_GetStringValue(cJSON_GetObjectItem(payload, "override_until")));
    g_clear_pointer(&payload, cJSON_Delete);
    g_assert_false(ca_usage_store_action(st, ICCID_A, plan, now + 5, &action));   /* lifted */
    g_assert_true(ca_usage_store_action(st, ICCID_A, plan, now + 3600, &action)); /* over */
    /* Two days later, a new month: counting starts at 0, the old month is "previous". */
    ca_usage_store_touch(st, ICCID_A, plan, tz, utc("2027-01-01T00:00:00Z"), ev);
    g_assert_cmpuint(count_type(ev, "usage-cycle-reset"), ==, 1);
    sim = ca_usage_store_get(st, ICCID_A);
    g_assert_cmpuint(sim->cur.bytes.rx_bytes, ==, 0);
    g_assert_cmpint(sim->cur.override_until, ==, 0);
    g_assert_true(sim->has_prev);
    g_assert_cmpuint(sim->prev.bytes.rx_bytes, ==, 9500);
    g_assert_cmpuint(sim->cur.alerted, ==, 0);
    s = sample("usb0", 3, 15000, 900, 8, 1);
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, utc("2027-01-01T00:00:10Z"), ev);
    g_assert_cmpuint(count_type(ev, "usage-threshold"), ==, 3); /* 55 % of the new month */
    payload = ca_usage_store_payload(st, ICCID_A, plan, utc("2027-01-01T00:00:10Z"));
    g_assert_cmpfloat(cJSON_GetNumberValue(cJSON_GetObjectItem(
                          cJSON_GetObjectItem(payload, "previous"), "total_bytes")),
                      ==, 10400);
}

/* Per-session rounding and per-packet overhead; an adjustment to the operator's figure. */
static void
test_store_billing(void)
{
    g_autoptr(CaUsageStore) st = ca_usage_store_new(8);
    g_autoptr(GTimeZone) tz = g_time_zone_new_utc();
    g_autoptr(CaUsagePlan) plan = plan_new("iot", 0);
    g_autoptr(GPtrArray) ev = events_new();
    gint64 now = utc("2026-12-06T10:00:00Z");
    const CaUsageSim *sim;
    guint64 before = 0;
    CaIfSample s = sample("usb0", 3, 0, 0, 0, 0);

    plan->model.overhead_per_packet = 10;
    plan->model.session_round = 1000;
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now, ev);
    s = sample("usb0", 3, 1200, 100, 2, 1); /* 1300 + 30 overhead */
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now + 1, ev);
    sim = ca_usage_store_get(st, ICCID_A);
    g_assert_cmpuint(ca_usage_cycle_billable(&sim->cur), ==, 2000);
    ca_usage_store_end_session(st);
    /* The second session on a new interface: 50 bytes, rounded on its own. */
    s = sample("usb0", 4, 40, 10, 0, 0);
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now + 2, ev);
    g_assert_cmpuint(ca_usage_cycle_billable(&sim->cur), ==, 3000);
    g_assert_cmpuint(sim->cur.bytes.rx_bytes + sim->cur.bytes.tx_bytes, ==, 1350);
    /* The operator's portal says 5000: the estimate follows, measured bytes stay. */
    g_assert_true(ca_usage_store_adjust(st, ICCID_A, plan, 5000, &before));
    g_assert_cmpuint(before, ==, 3000);
    g_assert_cmpuint(ca_usage_cycle_billable(&sim->cur), ==, 5000);
    s = sample("usb0", 4, 540, 10, 1, 0); /* +500 +10 in the same session */
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now + 3, ev);
    g_assert_cmpuint(ca_usage_cycle_billable(&sim->cur), ==, 5000);
    g_assert_true(ca_usage_store_adjust(st, ICCID_A, plan, 0, NULL));
    g_assert_cmpuint(ca_usage_cycle_billable(&sim->cur), ==, 0);
    g_assert_false(ca_usage_store_adjust(st, ICCID_B, plan, 0, NULL));
}

static void
test_store_bounds(void)
{
    g_autoptr(CaUsageStore) st = ca_usage_store_new(3);
    g_autoptr(GTimeZone) tz = g_time_zone_new_utc();
    gint64 now = utc("2026-12-06T10:00:00Z");

    for (int i = 0; i < 10; i++) {
        g_autofree char *iccid = g_strdup_printf("89254020000000000%02d", i);
        ca_usage_store_touch(st, iccid, NULL, tz, now + i, NULL);
    }
    g_assert_cmpuint(ca_usage_store_count(st), ==, 3);
    g_assert_nonnull(ca_usage_store_get(st, "8925402000000000009"));
    g_assert_nonnull(ca_usage_store_get(st, "8925402000000000007"));
    g_assert_null(ca_usage_store_get(st, "8925402000000000006"));
    ca_usage_store_set_max_sims(st, 1);
    g_assert_cmpuint(ca_usage_store_count(st), ==, 1);
    /* The SIM in use is never the one dropped. */
    g_assert_nonnull(ca_usage_store_get(st, "8925402000000000009"));
}

static char *
make_dir(void)
{
    g_autoptr(GError) error = NULL;
    char *dir = g_dir_make_tmp("ca-usage-XXXXXX", &error);

    g_assert_no_error(error);
    return dir;
}

static void
rm_dir(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_unlink(path);
    }
    g_rmdir(dir);
}

/* Save, load, continue: the restart counts what happened since the save, exactly once. */
static void
test_store_round_trip(void)
{
    g_autofree char *dir = make_dir();
    g_autoptr(CaUsageStore) st = ca_usage_store_new(8);
    g_autoptr(CaUsageStore) back = NULL;
    g_autoptr(GTimeZone) tz = g_time_zone_new_utc();
    g_autoptr(CaUsagePlan) plan = plan_new("iot", 100000);
    g_autoptr(GError) error = NULL;
    g_autofree char *problem = NULL;
    g_autofree char *a = NULL;
    g_autofree char *b = NULL;
    gint64 now = utc("2026-12-06T10:00:00Z");
    CaIfSample s = sample("usb0", 3, 100, 100, 1, 1);

    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now, NULL);
    s = sample("usb0", 3, 60100, 100, 61, 1); /* 60 %: threshold 50 reported */
    ca_usage_store_sample(st, ICCID_A, plan, tz, &s, now + 1, NULL);
    ca_usage_store_override(st, ICCID_A, now + 7200);
    ca_usage_store_touch(st, ICCID_B, plan, tz, now + 2, NULL);
    ca_usage_store_touch(st, ICCID_A, plan, tz, now + 3, NULL);
    g_assert_true(ca_usage_store_is_dirty(st));
    g_assert_true(ca_usage_store_save(st, dir, &error));
    g_assert_no_error(error);
    ca_usage_store_mark_saved(st);
    back = ca_usage_store_load(dir, 8, &problem);
    g_assert_null(problem);
    a = ca_usage_store_to_json(st);
    b = ca_usage_store_to_json(back);
    g_assert_cmpstr(a, ==, b);
    g_assert_false(ca_usage_store_is_dirty(back));
    /* After the restart: the same interface grew by 5000 meanwhile. */
    {
        g_autoptr(GPtrArray) ev = events_new();

        s = sample("usb0", 3, 65100, 100, 66, 1);
        g_assert_cmpint(ca_usage_store_sample(back, ICCID_A, plan, tz, &s, now + 60, ev), ==,
                        CA_USAGE_DELTA_GREW);
        g_assert_cmpuint(total(back, ICCID_A), ==, 65000);
        /* The 50 % threshold is not reported a second time. */
        g_assert_cmpuint(count_type(ev, "usage-threshold"), ==, 0);
    }
    rm_dir(dir);
}

static void
write_file(const char *dir, const char *text)
{
    g_autofree char *path = g_build_filename(dir, CA_USAGE_FILE, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

/* A file that cannot be read back is moved aside (usage.json.bad), never a crash. */
static void
test_store_corrupt(void)
{
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "{\"version\":2,\"sims\":[]}",
        "{\"version\":1}",
        "{\"version\":1,\"sims\":[{\"iccid\":\"1\"}]}",
        "{\"version\":1,\"sims\":[{\"iccid\":\"1\",\"last_seen\":1,\"cur\":{\"start\":5,"
        "\"end\":1}}]}",
        "{\"version\":1,\"sims\":[{\"iccid\":\"1\",\"last_seen\":-1,\"cur\":{}}]}",
        "{\"version\":1,\"last\":{\"iface\":7},\"sims\":[]}",
        "{\"version\":1,\"sims\":[{\"iccid\":\"1\",\"last_seen\":1,\"cur\":{\"start\":1,"
        "\"end\":2,\"rx_bytes\":1.5}}]}",
        "{\"version\":1,\"sims\":[{\"iccid\":\"1\",\"last_seen\":1,\"cur\":{\"start\":1,"
        "\"end\":2,\"rx_bytes\":1e300}}]}",
        /* A time whose microseconds would overflow. */
        "{\"version\":1,\"sims\":[{\"iccid\":\"1\",\"last_seen\":1,\"cur\":{\"start\":1,"
        "\"end\":9007199254740000,\"rx_bytes\":0,\"tx_bytes\":0,\"rx_packets\":0,"
        "\"tx_packets\":0,\"closed_billable\":0,\"session_billable\":0,\"session_round\":0,"
        "\"adjust\":0,\"alerted\":0,\"override_until\":0}}]}",
    };
    g_autofree char *dir = make_dir();
    g_autofree char *badpath = g_build_filename(dir, CA_USAGE_FILE ".bad", NULL);
    g_autofree char *path = g_build_filename(dir, CA_USAGE_FILE, NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *problem = NULL;
        g_autoptr(CaUsageStore) st = NULL;

        write_file(dir, bad[i]);
        st = ca_usage_store_load(dir, 8, &problem);
        g_assert_nonnull(st);
        g_assert_nonnull(problem);
        g_assert_nonnull(strstr(problem, "moved to"));
        g_assert_cmpuint(ca_usage_store_count(st), ==, 0);
        g_assert_true(g_file_test(badpath, G_FILE_TEST_EXISTS));
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
        g_unlink(badpath);
    }
    /* Missing: an empty store, no problem. */
    {
        g_autofree char *problem = NULL;
        g_autoptr(CaUsageStore) st = ca_usage_store_load(dir, 8, &problem);

        g_assert_null(problem);
        g_assert_cmpuint(ca_usage_store_count(st), ==, 0);
    }
    rm_dir(dir);
}

/*****************************************************************************/
/* Settings */

static CaConfig *
load(const char *text, GError **error)
{
    return ca_config_load_from_data("test.conf", text, strlen(text), error);
}

static void
test_settings(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c =
        load("[usage]\nsample-interval=2\ntimezone=Europe/Berlin\n"
             "[plan-a]\niccid=" ICCID_A "\nlimit-mb=2\nalerts=90;50;90\nunits=decimal\n"
             "session-rounding-kb=100\n"
             "[plan-b]\niccid=892540*\ncycle=weekly\ncycle-start-day=7\nat-limit=disconnect\n"
             "[plan-c]\niccid=89254029*\nat-limit=essential-only\n"
             "[plan-z]\nlimit-mb=1\nat-limit=next-uplink\n",
             &error);
    CaUsageSettings s, s2;
    const CaUsagePlan *p;
    g_autoptr(GTimeZone) tz = NULL;

    g_assert_no_error(error);
    ca_usage_settings_load(&s, c);
    ca_usage_settings_load(&s2, c);
    g_assert_true(ca_usage_settings_equal(&s, &s2));
    g_assert_true(s.enabled);
    g_assert_cmpuint(s.sample_interval_ms, ==, 2000);
    g_assert_cmpuint(s.save_interval_ms, ==, 300000);
    g_assert_cmpuint(s.plans->len, ==, 4);
    p = ca_usage_settings_find_plan(&s, ICCID_A);
    g_assert_cmpstr(p->name, ==, "a");
    g_assert_cmpuint(p->limit_bytes, ==, 2000000);
    g_assert_cmpuint(p->n_alerts, ==, 2);
    g_assert_cmpuint(p->alerts[0], ==, 50);
    g_assert_cmpuint(p->alerts[1], ==, 90);
    g_assert_cmpuint(p->model.session_round, ==, 100000);
    /* The longest prefix wins over a shorter one, any prefix over the catch-all. */
    g_assert_cmpstr(ca_usage_settings_find_plan(&s, ICCID_B)->name, ==, "c");
    g_assert_cmpstr(ca_usage_settings_find_plan(&s, "8925401111111111111")->name, ==, "b");
    g_assert_cmpstr(ca_usage_settings_find_plan(&s, "8944000000000000000")->name, ==, "z");
    g_assert_cmpstr(ca_usage_settings_find_plan(&s, NULL)->name, ==, "z");
    g_assert_cmpuint(ca_usage_settings_find_plan(&s, "8944000000000000000")->limit_bytes, ==,
                     1048576);
    g_assert_cmpint(ca_usage_settings_find_plan(&s, ICCID_A)->at_limit, ==,
                    CA_USAGE_AT_LIMIT_ALERT);
    g_assert_cmpint(ca_usage_settings_find_plan(&s, "8925401111111111111")->at_limit, ==,
                    CA_USAGE_AT_LIMIT_DISCONNECT);
    g_assert_cmpint(ca_usage_settings_find_plan(&s, ICCID_B)->at_limit, ==,
                    CA_USAGE_AT_LIMIT_ESSENTIAL_ONLY);
    g_assert_cmpint(ca_usage_settings_find_plan(&s, NULL)->at_limit, ==,
                    CA_USAGE_AT_LIMIT_NEXT_UPLINK);
    tz = ca_usage_settings_get_tz(&s);
    g_assert_cmpstr(g_time_zone_get_identifier(tz), ==, "Europe/Berlin");
    ca_usage_settings_clear(&s2);
    {
        g_autoptr(CaConfig) c2 = load("[plan-a]\nlimit-mb=3\n", &error);

        g_assert_no_error(error);
        ca_usage_settings_load(&s2, c2);
        g_assert_false(ca_usage_settings_equal(&s, &s2));
        /* A plan naming no ICCID applies to any SIM. */
        g_assert_cmpstr(ca_usage_settings_find_plan(&s2, ICCID_B)->name, ==, "a");
    }
    ca_usage_settings_clear(&s);
    ca_usage_settings_clear(&s2);
    ca_usage_settings_clear(NULL);
}

/* Problems name the group and the key. */
static void
test_settings_invalid(void)
{
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"[plan-x]\ncycle=weekly\ncycle-start-day=9\n", "[plan-x] cycle-start-day: "},
        {"[plan-x]\ncycle=days\n", "[plan-x] cycle-anchor: required"},
        {"[plan-x]\ncycle-anchor=2026-02-30\n", "[plan-x] cycle-anchor: "},
        {"[plan-x]\niccid=89x1\n", "[plan-x] iccid: "},
        {"[plan-x]\niccid=12345\n", "[plan-x] iccid: "},
        {"[plan-x]\nalerts=80;0\n", "[plan-x] alerts: "},
        {"[plan-x]\nalerts=101\n", "[plan-x] alerts: "},
        {"[plan-x]\nat-limit=throttle\n", "[plan-x] at-limit: "},
        {"[plan-x]\ncycle=yearly\n", "[plan-x] cycle: "},
        {"[usage]\ntimezone=Mars/Olympus\n", "[usage] timezone: "},
        {"[usage]\nsave-interval=1\n", "[usage] save-interval: "},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(CaConfig) c = load(cases[i].text, &error);

        g_assert_null(c);
        g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
        if (!strstr(error->message, cases[i].expect))
            g_error("case %zu: \"%s\" lacks \"%s\"", i, error->message, cases[i].expect);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/usage/delta", test_delta);
    g_test_add_func("/usage/delta-recreated", test_delta_recreated);
    g_test_add_func("/usage/model", test_model);
    g_test_add_func("/usage/store/recreation", test_store_recreation);
    g_test_add_func("/usage/store/sim-change", test_store_sim_change);
    g_test_add_func("/usage/store/cycle-and-thresholds", test_store_cycle_and_thresholds);
    g_test_add_func("/usage/store/billing", test_store_billing);
    g_test_add_func("/usage/store/bounds", test_store_bounds);
    g_test_add_func("/usage/store/round-trip", test_store_round_trip);
    g_test_add_func("/usage/store/corrupt", test_store_corrupt);
    g_test_add_func("/usage/settings", test_settings);
    g_test_add_func("/usage/settings-invalid", test_settings_invalid);
    return g_test_run();
}
