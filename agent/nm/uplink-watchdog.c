/* uplink-watchdog: carrying out the steps the watchdog ladder decides (see
 * uplink-private.h). Re-activation goes to NetworkManager (uplink-nm.c); the modem reset
 * and the system steps (power-cycle, reboot) are asked of agent.c through the
 * "modem-reset" and "system-step" signals, since their owners (the modem-operations
 * module, agent/system) are other layers; their outcome comes back through
 * ca_uplink_step_done(). Every step is announced ("watchdog" event) and its outcome
 * reported ("watchdog-result"). The budgets' history lives in <state-dir>/watchdog.state. */
#define CA_LOG_MODULE "uplink"
#include "uplink-private.h"

#include "error.h"
#include "log.h"

void
ca_uplink_step_result(CaUplink *self, const char *uplink, CaWdStep step, const char *error)
{
    cJSON *f = cJSON_CreateObject();

    if (error)
        ca_warn("%s: watchdog step %s failed: %s", uplink, ca_wd_step_to_string(step), error);
    else
        ca_msg("%s: watchdog step %s done", uplink, ca_wd_step_to_string(step));
    cJSON_AddStringToObject(f, "uplink", uplink);
    cJSON_AddStringToObject(f, "step", ca_wd_step_to_string(step));
    cJSON_AddBoolToObject(f, "ok", error == NULL);
    if (error)
        cJSON_AddStringToObject(f, "error", error);
    ca_uplink_emit_event(self, "watchdog-result", f);
}

/* Ask agent.c to carry out step for uplink name; FALSE when nobody took it. */
static gboolean
hand_over(CaUplink *self, const char *name, CaWdStep step, const char *reason)
{
    gboolean handled = FALSE;

    switch (step) {
    case CA_WD_STEP_MODEM_RESET:
        g_signal_emit(self, ca_uplink_signals[CA_UPLINK_SIG_MODEM_RESET], 0, reason, &handled);
        break;
    case CA_WD_STEP_POWER_CYCLE:
    case CA_WD_STEP_REBOOT:
        g_signal_emit(self, ca_uplink_signals[CA_UPLINK_SIG_SYSTEM_STEP], 0, (int) step, reason,
                      &handled);
        break;
    case CA_WD_STEP_NONE:
    case CA_WD_STEP_REACTIVATE:
        g_assert_not_reached();
    }
    if (handled) {
        g_free(self->step_uplink[step]);
        self->step_uplink[step] = g_strdup(name);
    }
    return handled;
}

void
ca_uplink_watchdog_run_step(CaUplink *self, guint i, CaWdStep step, const char *reason)
{
    const char *name = self->fo_config->uplinks[i].name;
    cJSON *f = cJSON_CreateObject();
    g_autofree char *error = NULL;

    ca_msg("%s: watchdog step %s (%s)", name, ca_wd_step_to_string(step), reason);
    cJSON_AddStringToObject(f, "uplink", name);
    cJSON_AddStringToObject(f, "step", ca_wd_step_to_string(step));
    cJSON_AddStringToObject(f, "reason", reason);
    if (step != CA_WD_STEP_REACTIVATE)
        cJSON_AddNumberToObject(
            f, "budget_left",
            ca_watchdog_remaining(ca_failover_get_watchdog(self->fo), step, ca_uplink_now_ms()));
    cJSON_AddItemToObject(f, "evidence",
                          ca_failover_evidence_json(self->fo, i, ca_uplink_now_ms()));
    ca_uplink_emit_event(self, "watchdog", f);

    switch (step) {
    case CA_WD_STEP_REACTIVATE:
        if (!ca_uplink_nm_activate(self, i, "watchdog", TRUE, &error))
            ca_uplink_step_result(self, name, step, error);
        break;
    case CA_WD_STEP_MODEM_RESET:
        if (!hand_over(self, name, step, reason))
            ca_uplink_step_result(self, name, step, "no modem to reset");
        break;
    case CA_WD_STEP_POWER_CYCLE:
        if (!hand_over(self, name, step, reason))
            ca_uplink_step_result(self, name, step, "no power-cycle action is wired");
        break;
    case CA_WD_STEP_REBOOT:
        ca_warn("rebooting the device: no uplink works (%s)", reason);
        if (!hand_over(self, name, step, reason))
            ca_uplink_step_result(self, name, step, "no reboot action is wired");
        break;
    case CA_WD_STEP_NONE:
        break;
    }
}

void
ca_uplink_step_done(CaUplink *self, CaWdStep step, const GError *error)
{
    g_autofree char *name = NULL;

    g_return_if_fail(CA_IS_UPLINK(self));
    g_return_if_fail(step > CA_WD_STEP_REACTIVATE && step < CA_WD_N_STEPS);
    name = g_steal_pointer(&self->step_uplink[step]);
    ca_uplink_step_result(self, name ? name : "cellular", step, error ? error->message : NULL);
}

void
ca_uplink_modem_reset_done(CaUplink *self, const GError *error)
{
    ca_uplink_step_done(self, CA_WD_STEP_MODEM_RESET, error);
}

void
ca_uplink_watchdog_save(CaUplink *self)
{
    g_autofree char *text =
        ca_watchdog_save(ca_failover_get_watchdog(self->fo), ca_uplink_now_ms());
    g_autoptr(GError) error = NULL;

    /* Written before the step runs: a reboot must find its own record. */
    if (!g_file_set_contents_full(self->state_path, text, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                  0600, &error))
        ca_warn("cannot save the watchdog history: %s", error->message);
}

gboolean
ca_uplink_take_reboot_budget(CaUplink *self, const char *source, GError **error)
{
    CaWatchdog *wd = self->fo ? ca_failover_get_watchdog(self->fo) : NULL;
    gint64 now = ca_uplink_now_ms();

    if (!wd)
        return TRUE; /* no uplink policy configured: no watchdog, no budget */
    if (!ca_watchdog_take_budget(wd, CA_WD_STEP_REBOOT, now, g_get_real_time() / G_USEC_PER_SEC)) {
        g_set_error(error, CA_ERROR, CA_ERROR_LIMIT,
                    "reboot budget spent: %u reboot(s) in the last 24 h ([watchdog] reboot-budget)",
                    ca_watchdog_used(wd, CA_WD_STEP_REBOOT, now));
        return FALSE;
    }
    ca_msg("reboot asked by %s counted against the reboot budget (%u left in 24 h)", source,
           ca_watchdog_remaining(wd, CA_WD_STEP_REBOOT, now));
    ca_uplink_watchdog_save(self);
    return TRUE;
}

void
ca_uplink_watchdog_load(CaUplink *self)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;

    if (!g_file_get_contents(self->state_path, &text, NULL, &error)) {
        if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            ca_warn("cannot read the watchdog history: %s", error->message);
        return;
    }
    if (!ca_watchdog_load(ca_failover_get_watchdog(self->fo), text, &error))
        ca_warn("%s: %s; starting with empty budgets", self->state_path, error->message);
}
