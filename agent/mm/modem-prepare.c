/* modem-prepare: brings the selected modem to a usable state, as far as it can go now:
 * SIM PIN from pin-file (a refused PIN is remembered and never sent twice), Enable (through
 * CaModemOps, the modem's one owner), Signal.Setup and Location.Setup, in a GTask step
 * machine that runs again on every state change. Owns: the refused-PIN memory file. */
#define CA_LOG_MODULE "modem"
#include "modem-private.h"

#include "autocleanups.h"
#include "durable.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define PIN_REJECTED_FILE "modem-pin-rejected"

/*****************************************************************************/
/* Refused PIN memory */

static char *
pin_key(const char *equipment_id, const char *pin)
{
    g_autofree char *text = g_strconcat(equipment_id ? equipment_id : "", "\n", pin, NULL);

    return g_compute_checksum_for_string(G_CHECKSUM_SHA256, text, -1);
}

static char *
pin_rejected_path(CaModem *self)
{
    return g_build_filename(self->set.state_dir, PIN_REJECTED_FILE, NULL);
}

void
ca_modem_load_pin_rejected(CaModem *self)
{
    g_autofree char *path = pin_rejected_path(self);
    g_autofree char *text = NULL;

    g_clear_pointer(&self->pin_rejected, g_free);
    if (g_file_get_contents(path, &text, NULL, NULL))
        self->pin_rejected = g_strdup(g_strstrip(text));
}

static void
store_pin_rejected(CaModem *self, const char *key)
{
    g_autofree char *text = g_strconcat(key, "\n", NULL);
    g_autoptr(GError) error = NULL;
    int dirfd;

    g_free(self->pin_rejected);
    self->pin_rejected = g_strdup(key);
    /* Written durably (file and directory synced) before anything else happens: after a
     * crash or a power cut the refused PIN must not be sent again. */
    if (g_mkdir_with_parents(self->set.state_dir, 0700) != 0) {
        ca_warn("cannot record the refused PIN in %s (%s); it is remembered until the agent "
                "restarts",
                self->set.state_dir, g_strerror(errno));
        return;
    }
    dirfd = open(self->set.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        ca_warn("cannot record the refused PIN in %s (%s); it is remembered until the agent "
                "restarts",
                self->set.state_dir, g_strerror(errno));
        return;
    }
    if (!ca_durable_replace(dirfd, self->set.state_dir, PIN_REJECTED_FILE, text, strlen(text),
                            &error))
        ca_warn("cannot record the refused PIN (%s); it is remembered until the agent restarts",
                error->message);
    close(dirfd);
}

/*****************************************************************************/
/* Preparation: unlock, enable, Signal and Location setup (a GTask step machine) */

typedef enum {
    PREPARE_STEP_FIRST,
    PREPARE_STEP_UNLOCK,        /* SIM PIN locked: SendPin from pin-file, once per PIN */
    PREPARE_STEP_ENABLE,        /* disabled and enable=true: Enable */
    PREPARE_STEP_SIGNAL,        /* Signal.Setup(signal-rate) when the rate differs */
    PREPARE_STEP_LOCATION,      /* Location.Setup(+3gpp-lac-ci, signal location) */
    PREPARE_STEP_LOCATION_READ, /* first read of the 3GPP location */
    PREPARE_STEP_LAST,
} PrepareStep;

typedef struct {
    PrepareStep step;
    MMObject *object;
    char *pin;
    char *pin_key;
    guint retries_before; /* PIN attempts left before SendPin (MM_UNLOCK_RETRIES_UNKNOWN) */
    GError *error;        /* a failure that warrants a retry */
} PrepareContext;

static void
prepare_context_free(gpointer data)
{
    PrepareContext *ctx = data;

    g_object_unref(ctx->object);
    if (ctx->pin)
        memset(ctx->pin, 0, strlen(ctx->pin));
    g_free(ctx->pin);
    g_free(ctx->pin_key);
    g_clear_error(&ctx->error);
    g_free(ctx);
}

static void prepare_step(GTask *task);

static void
set_pin_status(CaModem *self, CaModemPinStatus status)
{
    if (self->pin_status == status)
        return;
    self->pin_status = status;
    ca_modem_schedule_facts(self);
}

static guint
pin_retries_left(MMModem *modem)
{
    MMUnlockRetries *retries = modem ? mm_modem_peek_unlock_retries(modem) : NULL;

    return retries ? mm_unlock_retries_get(retries, MM_MODEM_LOCK_SIM_PIN)
                   : MM_UNLOCK_RETRIES_UNKNOWN;
}

static void
reject_pin(CaModem *self, MMObject *object, const char *key, guint left)
{
    self->pin_wrong_retries = left == MM_UNLOCK_RETRIES_UNKNOWN ? -1 : (int) left;
    store_pin_rejected(self, key);
    g_clear_pointer(&self->pin_uncertain, g_free);
    if (left == MM_UNLOCK_RETRIES_UNKNOWN)
        ca_err("%s: the SIM refused the PIN from %s; it will not be sent again until the file "
               "changes",
               ca_modem_short_path(mm_object_get_path(object)), self->set.pin_file);
    else
        ca_err("%s: the SIM refused the PIN from %s (%u attempts left); it will not be sent "
               "again until the file changes",
               ca_modem_short_path(mm_object_get_path(object)), self->set.pin_file, left);
    set_pin_status(self, CA_MODEM_PIN_WRONG);
}

static gboolean
is_wrong_pin_error(const GError *error)
{
    g_autofree char *remote = NULL;

    if (g_error_matches(error, MM_MOBILE_EQUIPMENT_ERROR,
                        MM_MOBILE_EQUIPMENT_ERROR_INCORRECT_PASSWORD))
        return TRUE;
    remote = g_dbus_error_get_remote_error(error);
    return remote && g_str_has_suffix(remote, ".IncorrectPassword");
}

static void
send_pin_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (mm_sim_send_pin_finish(MM_SIM(source), result, &error)) {
        ca_msg("%s: SIM unlocked with the PIN from pin-file",
               ca_modem_short_path(mm_object_get_path(ctx->object)));
        g_clear_pointer(&self->pin_uncertain, g_free);
        set_pin_status(self, CA_MODEM_PIN_UNLOCKED);
    } else if (is_wrong_pin_error(error)) {
        guint left = pin_retries_left(mm_object_peek_modem(ctx->object));

        /* ModemManager answers before it has read the SIM's counter again, so the property
         * may still show the attempts before this one; a refused PIN always costs one. */
        if (ctx->retries_before != MM_UNLOCK_RETRIES_UNKNOWN && ctx->retries_before > 0 &&
            (left == MM_UNLOCK_RETRIES_UNKNOWN || left >= ctx->retries_before))
            left = ctx->retries_before - 1;
        reject_pin(self, ctx->object, ctx->pin_key, left);
    } else {
        /* The SIM may or may not have seen it: remember, so it is not blindly sent again. */
        g_free(self->pin_uncertain);
        self->pin_uncertain = g_strdup(ctx->pin_key);
        self->pin_uncertain_retries = ctx->retries_before;
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            ctx->error = g_steal_pointer(&error);
        } else {
            set_pin_status(self, CA_MODEM_PIN_FAILED);
            ctx->error =
                g_error_new(CA_ERROR, CA_ERROR_MODEM, "SendPin failed: %s", error->message);
        }
    }
    /* After an unlock ModemManager initialises the modem again; its state change brings
     * us back for the remaining steps. */
    ctx->step = PREPARE_STEP_LAST;
    prepare_step(task);
}

static void
unlock_sim_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(MMSim) sim = mm_modem_get_sim_finish(MM_MODEM(source), result, &error);

    if (!sim) {
        set_pin_status(self, CA_MODEM_PIN_FAILED);
        ctx->error =
            error ? g_error_new(CA_ERROR, CA_ERROR_MODEM, "cannot get the SIM: %s", error->message)
                  : g_error_new_literal(CA_ERROR, CA_ERROR_MODEM, "the modem has no SIM");
        ctx->step = PREPARE_STEP_LAST;
        prepare_step(task);
        return;
    }
    ca_msg("%s: SIM locked, sending the PIN from pin-file",
           ca_modem_short_path(mm_object_get_path(ctx->object)));
    mm_sim_send_pin(sim, ctx->pin, g_task_get_cancellable(task), send_pin_ready, task);
}

/* Decide what to do about a locked modem. Returns TRUE when an async call was started. */
static gboolean
prepare_unlock(GTask *task, MMModem *modem)
{
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    const char *pin_file = self->set.pin_file;
    MMModemLock lock = mm_modem_get_unlock_required(modem);
    g_autoptr(GError) error = NULL;

    if (mm_modem_get_state(modem) != MM_MODEM_STATE_LOCKED)
        return FALSE;
    if (lock != MM_MODEM_LOCK_SIM_PIN) {
        if (lock != MM_MODEM_LOCK_NONE && lock != MM_MODEM_LOCK_UNKNOWN) {
            if (self->pin_status != CA_MODEM_PIN_NEEDS_PUK)
                ca_err("%s: the SIM needs %s, which the agent cannot give",
                       ca_modem_short_path(mm_object_get_path(ctx->object)),
                       mm_modem_lock_get_string(lock));
            set_pin_status(self, CA_MODEM_PIN_NEEDS_PUK);
        }
        return FALSE;
    }
    if (!*pin_file) {
        if (!self->warned_no_pin)
            ca_warn("%s: SIM locked by a PIN and no [modem] pin-file is configured",
                    ca_modem_short_path(mm_object_get_path(ctx->object)));
        self->warned_no_pin = TRUE;
        set_pin_status(self, CA_MODEM_PIN_NO_FILE);
        return FALSE;
    }
    ctx->pin = ca_modem_read_pin_file(pin_file, &error);
    if (!ctx->pin) {
        if (!self->warned_no_pin)
            ca_err("%s: SIM locked by a PIN: %s",
                   ca_modem_short_path(mm_object_get_path(ctx->object)), error->message);
        self->warned_no_pin = TRUE;
        set_pin_status(self, CA_MODEM_PIN_NO_FILE);
        return FALSE;
    }
    self->warned_no_pin = FALSE;
    ctx->pin_key = pin_key(mm_modem_get_equipment_identifier(modem), ctx->pin);
    if (self->pin_rejected && g_str_equal(self->pin_rejected, ctx->pin_key)) {
        if (self->pin_status != CA_MODEM_PIN_WRONG)
            ca_err("%s: SIM locked; the PIN in %s was refused before and is not sent again",
                   ca_modem_short_path(mm_object_get_path(ctx->object)), pin_file);
        set_pin_status(self, CA_MODEM_PIN_WRONG);
        return FALSE;
    }
    ctx->retries_before = pin_retries_left(modem);
    if (self->pin_uncertain && g_str_equal(self->pin_uncertain, ctx->pin_key)) {
        /* The last SendPin of this PIN ended without an answer and the SIM is still locked. */
        if (self->pin_uncertain_retries != MM_UNLOCK_RETRIES_UNKNOWN &&
            ctx->retries_before != MM_UNLOCK_RETRIES_UNKNOWN &&
            ctx->retries_before < self->pin_uncertain_retries) {
            reject_pin(self, ctx->object, ctx->pin_key, ctx->retries_before);
            return FALSE;
        }
        if (self->pin_uncertain_retries == MM_UNLOCK_RETRIES_UNKNOWN ||
            ctx->retries_before == MM_UNLOCK_RETRIES_UNKNOWN) {
            if (self->pin_status != CA_MODEM_PIN_FAILED)
                ca_err("%s: SIM still locked after a SendPin without answer, and the SIM does not "
                       "tell its attempts left: not sending the PIN again (reload to retry)",
                       ca_modem_short_path(mm_object_get_path(ctx->object)));
            set_pin_status(self, CA_MODEM_PIN_FAILED);
            return FALSE;
        }
        /* Same attempts left: the SIM never saw it; sending again is safe. */
        g_clear_pointer(&self->pin_uncertain, g_free);
    }
    set_pin_status(self, CA_MODEM_PIN_SENDING);
    mm_modem_get_sim(modem, g_task_get_cancellable(task), unlock_sim_ready, task);
    return TRUE;
}

static void
enable_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (!ca_modem_ops_run_finish(CA_MODEM_OPS(source), result, &error)) {
        ctx->error =
            g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
                    g_error_matches(error, CA_ERROR, CA_ERROR_MODEM)
                ? g_steal_pointer(&error)
                : g_error_new(CA_ERROR, CA_ERROR_MODEM, "Enable failed: %s", error->message);
        ctx->step = PREPARE_STEP_LAST;
    } else {
        ctx->step++;
    }
    prepare_step(task);
}

static void
signal_setup_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (!mm_modem_signal_setup_finish(MM_MODEM_SIGNAL(source), result, &error)) {
        if (g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_UNSUPPORTED)) {
            ca_info("%s: extended signal values unsupported",
                    ca_modem_short_path(mm_object_get_path(ctx->object)));
            self->signal_unsupported = TRUE;
        } else if (!ctx->error) {
            ctx->error = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                             ? g_steal_pointer(&error)
                             : g_error_new(CA_ERROR, CA_ERROR_MODEM, "Signal.Setup failed: %s",
                                           error->message);
        }
    }
    ctx->step++;
    prepare_step(task);
}

static void
location_setup_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (!mm_modem_location_setup_finish(MM_MODEM_LOCATION(source), result, &error)) {
        if (g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_UNSUPPORTED)) {
            self->location_unsupported = TRUE;
        } else if (!ctx->error) {
            ctx->error = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                             ? g_steal_pointer(&error)
                             : g_error_new(CA_ERROR, CA_ERROR_MODEM, "Location.Setup failed: %s",
                                           error->message);
        }
        ctx->step = PREPARE_STEP_LAST;
    } else {
        ctx->step++;
    }
    prepare_step(task);
}

static void
location_read_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(MMLocation3gpp) loc =
        mm_modem_location_get_3gpp_finish(MM_MODEM_LOCATION(source), result, &error);

    if (loc && self->object == ctx->object) {
        g_set_object(&self->location, loc);
        ca_modem_schedule_facts(self);
    } else if (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && !ctx->error) {
        ctx->error = g_steal_pointer(&error);
    } else if (error) {
        /* Not worth a retry: signalled updates fill it in later. */
        ca_debug("reading the 3GPP location: %s", error->message);
    }
    ctx->step++;
    prepare_step(task);
}

static void
prepare_step(GTask *task)
{
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    MMModem *modem = mm_object_peek_modem(ctx->object);
    MMModemState state = modem ? mm_modem_get_state(modem) : MM_MODEM_STATE_UNKNOWN;
    GCancellable *cancellable = g_task_get_cancellable(task);

    if (g_cancellable_is_cancelled(cancellable) && ctx->step != PREPARE_STEP_LAST) {
        g_clear_error(&ctx->error);
        g_cancellable_set_error_if_cancelled(cancellable, &ctx->error);
        ctx->step = PREPARE_STEP_LAST;
    }
    if (!modem && ctx->step != PREPARE_STEP_LAST)
        ctx->step = PREPARE_STEP_LAST;

    switch (ctx->step) {
    case PREPARE_STEP_FIRST:
        ctx->step++;
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_UNLOCK:
        if (state == MM_MODEM_STATE_LOCKED) {
            /* Nothing else can be done on a locked modem. */
            ctx->step = PREPARE_STEP_LAST;
            if (prepare_unlock(task, modem))
                return;
            prepare_step(task);
            return;
        }
        ctx->step++;
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_ENABLE:
        if (state == MM_MODEM_STATE_DISABLED && self->set.enable) {
            if (ca_modem_ops_is_busy(self->ops)) {
                /* An operation owns the modem (a reset or a resync disabled it): it enables
                 * it again, and its end ("idle") brings us back. */
                ctx->step = PREPARE_STEP_LAST;
                prepare_step(task);
                return;
            }
            ca_msg("%s: disabled, enabling", ca_modem_short_path(mm_object_get_path(ctx->object)));
            ca_modem_ops_run_async(self->ops, CA_MODEM_OP_ENABLE, "[modem] enable", cancellable,
                                   enable_ready, task);
            return;
        }
        ctx->step++;
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_SIGNAL: {
        MMModemSignal *sig = mm_object_peek_modem_signal(ctx->object);
        guint rate = self->set.signal_rate;

        /* The _ready callbacks advance ctx->step; a skipped step advances here. */
        if (sig && !self->signal_unsupported && state >= MM_MODEM_STATE_ENABLED &&
            mm_modem_signal_get_rate(sig) != rate) {
            ca_debug("Signal.Setup(%u)", rate);
            mm_modem_signal_setup(sig, rate, cancellable, signal_setup_ready, task);
            return;
        }
        ctx->step++;
    }
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_LOCATION: {
        MMModemLocation *loc = mm_object_peek_modem_location(ctx->object);
        MMModemLocationSource want = MM_MODEM_LOCATION_SOURCE_3GPP_LAC_CI;

        if (!loc || self->location_unsupported || state < MM_MODEM_STATE_ENABLED ||
            !(mm_modem_location_get_capabilities(loc) & want)) {
            ctx->step = PREPARE_STEP_LAST;
            prepare_step(task);
            return;
        }
        if (!(mm_modem_location_get_enabled(loc) & want) ||
            !mm_modem_location_signals_location(loc)) {
            ca_debug("Location.Setup(+3gpp-lac-ci, signal)");
            mm_modem_location_setup(loc, mm_modem_location_get_enabled(loc) | want, TRUE,
                                    cancellable, location_setup_ready, task);
            return;
        }
        ctx->step++;
    }
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_LOCATION_READ: {
        MMModemLocation *loc = mm_object_peek_modem_location(ctx->object);

        if (loc && !self->location && mm_modem_location_peek_signaled_3gpp(loc)) {
            g_set_object(&self->location, mm_modem_location_peek_signaled_3gpp(loc));
            ca_modem_schedule_facts(self);
        }
        if (loc && !self->location) {
            mm_modem_location_get_3gpp(loc, cancellable, location_read_ready, task);
            return;
        }
        ctx->step++;
    }
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_LAST:
        if (ctx->error)
            g_task_return_error(task, g_steal_pointer(&ctx->error));
        else
            g_task_return_boolean(task, TRUE);
        g_object_unref(task);
        return;
    }
    g_assert_not_reached();
}

static gboolean
prepare_retry_cb(gpointer user_data)
{
    CaModem *self = user_data;

    ca_clear_source(&self->prepare_retry);
    ca_modem_prepare(self);
    return G_SOURCE_REMOVE;
}

static void
prepare_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaModem *self = CA_MODEM(source);
    g_autoptr(GError) error = NULL;

    self->preparing = FALSE;
    if (!g_task_propagate_boolean(G_TASK(result), &error)) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return;
        if (self->object && !self->prepare_retry) {
            guint delay = ca_backoff_next(&self->prepare_backoff);

            ca_warn("preparing %s: %s; will retry in %u s",
                    ca_modem_short_path(mm_object_get_path(self->object)), error->message,
                    (delay + 999) / 1000);
            self->prepare_retry = g_timeout_source_new(delay);
            g_source_set_callback(self->prepare_retry, prepare_retry_cb, self, NULL);
            g_source_attach(self->prepare_retry, NULL);
        }
        return;
    }
    if (self->prepare_again) {
        self->prepare_again = FALSE;
        ca_modem_prepare(self);
    }
}

/* Bring the selected modem forward as far as it can go now; runs again on state changes. */
void
ca_modem_prepare(CaModem *self)
{
    GTask *task;
    PrepareContext *ctx;

    if (!self->object)
        return;
    if (self->preparing) {
        self->prepare_again = TRUE;
        return;
    }
    if (self->prepare_retry)
        return; /* a retry is already scheduled after a failure */
    self->preparing = TRUE;
    self->prepare_again = FALSE;
    task = g_task_new(self, self->object_cancellable, prepare_ready, NULL);
    g_task_set_source_tag(task, ca_modem_prepare);
    ctx = g_new0(PrepareContext, 1);
    ctx->object = g_object_ref(self->object);
    g_task_set_task_data(task, ctx, prepare_context_free);
    prepare_step(task);
}
