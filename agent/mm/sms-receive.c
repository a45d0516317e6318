/* sms-receive: received messages. Finds them (Messaging "added" and listings at start-up,
 * after every modem (re)appearance and after a resync), waits until complete, spools them
 * durably under their stable id, deletes them from the modem as soon as they are spooled
 * (the storage must not fill while the broker is away) and hands them up for publication.
 * A multipart message still incomplete after partial-after is published with what
 * ModemManager tells of it and deleted. Status reports go to the sender. The resync itself
 * is in sms-resync.c. */
#define CA_LOG_MODULE "sms"
#include "sms-private.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"

#include <string.h>

#define PUBLISH_RETRY_INITIAL_MS 1000
#define PUBLISH_RETRY_MAX_MS     60000

static void handle_sms(CaSms *self, MMSms *sms, gboolean from_signal);

static GSource *
timer_new(guint ms, GSourceFunc func, gpointer data)
{
    GSource *source = g_timeout_source_new(ms);

    g_source_set_callback(source, func, data, NULL);
    g_source_attach(source, NULL);
    return source;
}

/*****************************************************************************/
/* Publication */

static void
publish(CaSms *self, const char *id)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *payload = NULL;

    if (!self->started || g_hash_table_contains(self->publishing, id))
        return;
    payload = ca_spool_get(self->in, id, NULL, &error);
    if (!payload) {
        ca_warn("received message %s: %s, ignoring", id, error->message);
        return;
    }
    g_hash_table_add(self->publishing, g_strdup(id));
    ca_debug("handing up received message %s", id);
    ca_sms_emit_received(self, id, payload);
}

void
ca_sms_receiver_republish(CaSms *self)
{
    g_auto(GStrv) names = ca_spool_list(self->in);

    for (char **n = names; *n; n++)
        publish(self, *n);
}

static gboolean
publish_retry_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->publish_retry);
    ca_sms_receiver_republish(self);
    return G_SOURCE_REMOVE;
}

/* Deleting from the modem: one at a time (ModemManager locks the storage for each and
 * answers "try again later" while it is busy), retried with backoff. */
static void delete_pump(CaSms *self);

static gboolean
delete_retry_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->delete_retry);
    delete_pump(self);
    return G_SOURCE_REMOVE;
}

typedef struct {
    CaSms *self;
    guint generation;
} DeleteCall;

/* A new message waited for its delete to be tried before being handed up. */
static void
release_after_delete(CaSms *self, const char *path)
{
    gpointer key = NULL, id = NULL;

    if (!g_hash_table_steal_extended(self->after_delete, path, &key, &id))
        return;
    publish(self, id);
    g_free(key);
    g_free(id);
}

static void
delete_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    DeleteCall *call = user_data;
    g_autoptr(CaSms) self = call->self;
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    guint delay;
    gboolean current = call->generation == self->delete_generation;

    g_free(call);
    mm_modem_messaging_delete_finish(MM_MODEM_MESSAGING(source), result, &error);
    if (!current || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* the queue was dropped meanwhile (modem changed, resync) */
    path = g_steal_pointer(&self->deleting);
    release_after_delete(self, path);
    if (!error || g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_NOT_FOUND)) {
        ca_debug("deleted %s from the modem", path);
        g_hash_table_remove(self->delete_set, path);
        ca_backoff_reset(&self->delete_backoff);
        delete_pump(self);
        return;
    }
    delay = ca_backoff_next(&self->delete_backoff);
    if (g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_RETRY))
        ca_debug("cannot delete %s yet: %s; retrying in %u ms", path, error->message, delay);
    else
        ca_warn("cannot delete %s from the modem: %s; retrying in %u s", path, error->message,
                (delay + 999) / 1000);
    g_queue_push_head(&self->delete_queue, g_steal_pointer(&path));
    self->delete_retry = timer_new(delay, delete_retry_cb, self);
}

static void
delete_pump(CaSms *self)
{
    DeleteCall *call;

    if (self->deleting || self->delete_retry || !self->messaging ||
        g_queue_is_empty(&self->delete_queue))
        return;
    self->deleting = g_queue_pop_head(&self->delete_queue);
    call = g_new0(DeleteCall, 1);
    call->self = g_object_ref(self);
    call->generation = self->delete_generation;
    mm_modem_messaging_delete(self->messaging, self->deleting, self->modem_cancellable,
                              delete_ready, call);
}

/* Queue a message object for deletion (once). */
static void
delete_path(CaSms *self, const char *path)
{
    if (g_hash_table_contains(self->delete_set, path))
        return;
    g_hash_table_add(self->delete_set, g_strdup(path));
    g_queue_push_tail(&self->delete_queue, g_strdup(path));
    delete_pump(self);
}

/* Forget every queued deletion (the modem changed, or a resync renamed every object). */
static void
delete_clear(CaSms *self)
{
    if (self->after_delete) {
        g_autoptr(GHashTable) waiting = g_steal_pointer(&self->after_delete);
        GHashTableIter it;
        gpointer id;

        self->after_delete = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_iter_init(&it, waiting);
        while (g_hash_table_iter_next(&it, NULL, &id))
            publish(self, id);
    }
    g_queue_clear_full(&self->delete_queue, g_free);
    if (self->delete_set)
        g_hash_table_remove_all(self->delete_set);
    g_clear_pointer(&self->deleting, g_free);
    self->delete_generation++; /* a delete in flight no longer counts */
    ca_clear_source(&self->delete_retry);
    ca_backoff_reset(&self->delete_backoff);
}

/* Delete a handled message from the modem (its storage must not fill). */
static void
delete_from_modem(CaSms *self, const char *id)
{
    const char *path = g_hash_table_lookup(self->on_modem, id);

    if (!path || self->set.keep_on_modem)
        return;
    delete_path(self, path);
    g_hash_table_remove(self->on_modem, id);
}

void
ca_sms_receiver_published(CaSms *self, const char *id, const GError *error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(cJSON) value = NULL;

    if (!g_hash_table_remove(self->publishing, id)) {
        /* Stopped (or the modem went) while it was in flight: the broker's acknowledgement
         * can still arrive while the agent shuts down. It has the message, so remember it
         * as published, or the next start publishes it again from the spool. */
        if (error || !self->in || !ca_spool_contains(self->in, id))
            return; /* not ours, answered twice, or a failure nobody waits for now */
    } else if (error) {
        guint delay;

        if (!self->started || self->publish_retry)
            return;
        delay = ca_backoff_next(&self->publish_backoff);
        ca_warn("received message %s not published: %s; will retry in %u s", id, error->message,
                (delay + 999) / 1000);
        self->publish_retry = timer_new(delay, publish_retry_cb, self);
        return;
    }
    ca_backoff_reset(&self->publish_backoff);
    ca_msg("received message %s published", id);
    /* Remember it before forgetting the spooled copy: found on the modem again (a failed
     * delete, a ModemManager restart, keep-on-modem), it is not published again. */
    value = cJSON_CreateObject();
    cJSON_AddNumberToObject(value, "published_at", (double) (g_get_real_time() / G_USEC_PER_SEC));
    if (!ca_dedupe_record(self->seen, id, value, g_get_real_time() / G_USEC_PER_SEC, &local)) {
        ca_warn("cannot remember received message %s as published: %s; keeping it spooled", id,
                local->message);
        return;
    }
    if (!ca_spool_remove(self->in, id, &local))
        ca_warn("received message %s: %s", id, local->message);
}

void
ca_sms_received_done(CaSms *self, const char *id, const GError *error)
{
    g_return_if_fail(CA_IS_SMS(self));
    ca_sms_receiver_published(self, id, error);
}

/*****************************************************************************/
/* Messages found on the modem */

/* Sender and SMSC time: what ModemManager tells of an incomplete message, the same under
 * the new path a resync gives it. */
static char *
partial_key(MMSms *sms)
{
    return g_strdup_printf("%s\n%s", mm_sms_get_number(sms) ? mm_sms_get_number(sms) : "",
                           mm_sms_get_timestamp(sms) ? mm_sms_get_timestamp(sms) : "");
}

/* A complete received message (from_signal: announced by "added", not found by listing). */
static void
incoming(CaSms *self, MMSms *sms, gboolean from_signal)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) json = NULL;
    g_autofree char *timestamp = ca_sms_timestamp_normalize(mm_sms_get_timestamp(sms));
    g_autofree char *data_b64 = NULL;
    g_autofree char *id = NULL;
    g_autofree char *record = NULL;
    const char *text = mm_sms_get_text(sms);
    const char *path = mm_sms_get_path(sms);
    g_autofree char *key = partial_key(sms);
    CaSmsIncoming msg = {0};

    if (!text) {
        gsize len = 0;
        const guint8 *data = mm_sms_get_data(sms, &len);
        data_b64 = g_base64_encode(data, data ? len : 0);
    }
    msg.from = mm_sms_get_number(sms);
    msg.text = text ? text : "";
    msg.timestamp = timestamp ? timestamp : mm_sms_get_timestamp(sms);
    msg.smsc = mm_sms_get_smsc(sms);
    msg.received_at_us = g_get_real_time();
    id = ca_sms_incoming_id(msg.from, msg.timestamp, text ? text : data_b64);
    g_hash_table_replace(self->on_modem, g_strdup(id), g_strdup(path));
    g_hash_table_remove(self->partial, key); /* complete now, if it was not */

    if (ca_dedupe_lookup(self->seen, id)) {
        ca_debug("received message %s (%s) was published before", id, path);
        delete_from_modem(self, id);
        return;
    }
    if (ca_spool_contains(self->in, id)) {
        ca_debug("received message %s (%s) is already spooled", id, path);
        delete_from_modem(self, id);
        publish(self, id);
        return;
    }
    json = ca_sms_incoming_to_json(id, &msg);
    if (data_b64)
        cJSON_AddStringToObject(json, "data", data_b64);
    record = cJSON_PrintUnformatted(json);
    if (!ca_spool_put(self->in, id, record, strlen(record), &error)) {
        /* Left on the modem: found again by the next listing. */
        ca_warn("received message %s not spooled: %s; it stays on the modem", id, error->message);
        return;
    }
    ca_msg("received message %s from %s (%s)", id, ca_log_personal(msg.from), path);
    /* On disk now: the modem's storage is freed at once, so messages the network holds back
     * while the broker is away (commands among them) can still arrive. It is handed up once
     * the delete was tried: a command SMS (a modem reset, say) acts on a modem whose storage
     * no longer holds it. */
    if (path && !self->set.keep_on_modem && !g_hash_table_contains(self->delete_set, path))
        g_hash_table_replace(self->after_delete, g_strdup(path), g_strdup(id));
    delete_from_modem(self, id);
    if (!path || !g_hash_table_contains(self->after_delete, path))
        publish(self, id);
    /* ModemManager may have dropped the notice of a message that arrived just now: look at
     * the storage once things are quiet (not for what a listing or resync found). */
    if (from_signal)
        ca_sms_resync_after_receive(self);
}

static void
status_report(CaSms *self, MMSms *sms)
{
    guint state = mm_sms_get_delivery_state(sms);
    guint reference = mm_sms_get_message_reference(sms);

    if (!ca_sms_sender_report(self, reference, mm_sms_get_number(sms), state))
        ca_info("status report for reference %u (%s) matches no request, ignoring", reference,
                mm_sms_delivery_state_get_string(state));
    delete_path(self, mm_sms_get_path(sms));
}

/*****************************************************************************/
/* Incomplete (multipart) messages */

/* The stable id of an incomplete message: its text is unknown, a fixed marker stands in. */
static char *
partial_id(MMSms *sms, char **out_timestamp)
{
    g_autofree char *timestamp = ca_sms_timestamp_normalize(mm_sms_get_timestamp(sms));
    char *id =
        ca_sms_incoming_id(mm_sms_get_number(sms),
                           timestamp ? timestamp : mm_sms_get_timestamp(sms), "\x01incomplete");

    if (out_timestamp)
        *out_timestamp = g_strdup(timestamp ? timestamp : mm_sms_get_timestamp(sms));
    return id;
}

/* Give up waiting for the missing parts: publish what ModemManager tells of the message
 * (sender, SMSC time and SMSC: ModemManager 1.20 exports no text before every part is
 * there) with "incomplete":true, and delete it from the modem, so a message whose parts
 * never all come cannot keep the modem cycling. */
static void
publish_incomplete(CaSms *self, MMSms *sms)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) json = NULL;
    g_autofree char *timestamp = NULL;
    g_autofree char *id = partial_id(sms, &timestamp);
    g_autofree char *record = NULL;
    CaSmsIncoming msg = {0};

    g_hash_table_replace(self->on_modem, g_strdup(id), g_strdup(mm_sms_get_path(sms)));
    if (ca_dedupe_lookup(self->seen, id) || ca_spool_contains(self->in, id)) {
        delete_from_modem(self, id);
        return;
    }
    msg.from = mm_sms_get_number(sms);
    msg.text = "";
    msg.timestamp = timestamp;
    msg.smsc = mm_sms_get_smsc(sms);
    msg.received_at_us = g_get_real_time();
    json = ca_sms_incoming_to_json(id, &msg);
    cJSON_AddBoolToObject(json, "incomplete", TRUE);
    record = cJSON_PrintUnformatted(json);
    if (!ca_spool_put(self->in, id, record, strlen(record), &error)) {
        ca_warn("incomplete message %s not spooled: %s; it stays on the modem", id, error->message);
        return;
    }
    ca_warn("multipart message %s from %s still incomplete after %u s: publishing it as "
            "incomplete and deleting it from the modem",
            id, ca_log_personal(msg.from), self->set.partial_after_s);
    delete_from_modem(self, id);
    publish(self, id);
}

static void
receiving_free(gpointer data)
{
    CaSmsReceiving *r = data;

    g_signal_handler_disconnect(r->proxy, r->notify_id);
    g_object_unref(r->proxy);
    g_free(r->key);
    g_free(r);
}

static void
receiving_state_cb(MMSms *sms, GParamSpec *pspec, gpointer user_data)
{
    CaSms *self = user_data;
    g_autoptr(MMSms) keep = g_object_ref(sms);

    if (mm_sms_get_state(sms) == MM_SMS_STATE_RECEIVING)
        return;
    g_hash_table_remove(self->receiving, mm_sms_get_path(sms));
    handle_sms(self, keep, TRUE);
}

static void
track_receiving(CaSms *self, MMSms *sms)
{
    g_autofree char *id = NULL;
    CaSmsReceiving *r;
    CaSmsPartial *p;

    if (g_hash_table_contains(self->receiving, mm_sms_get_path(sms)))
        return;
    id = partial_id(sms, NULL);
    if (ca_dedupe_lookup(self->seen, id) || ca_spool_contains(self->in, id)) {
        /* Published as incomplete before: only its removal is left. */
        g_hash_table_replace(self->on_modem, g_strdup(id), g_strdup(mm_sms_get_path(sms)));
        delete_from_modem(self, id);
        return;
    }
    ca_debug("message %s is still being received", mm_sms_get_path(sms));
    r = g_new0(CaSmsReceiving, 1);
    r->sms = self;
    r->proxy = g_object_ref(sms);
    r->key = partial_key(sms);
    r->notify_id = g_signal_connect(sms, "notify::state", G_CALLBACK(receiving_state_cb), self);
    p = g_hash_table_lookup(self->partial, r->key);
    if (!p) {
        p = g_new0(CaSmsPartial, 1);
        p->since = g_get_monotonic_time();
        g_hash_table_insert(self->partial, g_strdup(r->key), p);
    }
    g_hash_table_insert(self->receiving, g_strdup(mm_sms_get_path(sms)), r);
    ca_sms_receiver_check_partial(self);
}

static void
handle_sms(CaSms *self, MMSms *sms, gboolean from_signal)
{
    switch (mm_sms_get_pdu_type(sms)) {
    case MM_SMS_PDU_TYPE_DELIVER:
    case MM_SMS_PDU_TYPE_CDMA_DELIVER:
        if (mm_sms_get_state(sms) == MM_SMS_STATE_RECEIVED)
            incoming(self, sms, from_signal);
        else if (mm_sms_get_state(sms) == MM_SMS_STATE_RECEIVING)
            track_receiving(self, sms);
        return;
    case MM_SMS_PDU_TYPE_STATUS_REPORT:
        if (mm_sms_get_state(sms) == MM_SMS_STATE_RECEIVED)
            status_report(self, sms);
        return;
    case MM_SMS_PDU_TYPE_UNKNOWN:
    case MM_SMS_PDU_TYPE_SUBMIT:
    case MM_SMS_PDU_TYPE_CDMA_SUBMIT:
    case MM_SMS_PDU_TYPE_CDMA_CANCELLATION:
    case MM_SMS_PDU_TYPE_CDMA_DELIVERY_ACKNOWLEDGEMENT:
    case MM_SMS_PDU_TYPE_CDMA_USER_ACKNOWLEDGEMENT:
    case MM_SMS_PDU_TYPE_CDMA_READ_ACKNOWLEDGEMENT:
        return; /* ours (sms-send.c cleans up) or nothing to bridge */
    }
}

void
ca_sms_receiver_handle(CaSms *self, MMSms *sms, gboolean from_signal)
{
    handle_sms(self, sms, from_signal);
}

static gboolean
stuck_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->stuck_timer);
    ca_sms_receiver_check_partial(self);
    return G_SOURCE_REMOVE;
}

/* One resync per incomplete message at most (receive-timeout after it was first seen: a
 * part whose notice ModemManager dropped is found by it), then publication as incomplete at
 * partial-after: a part the network never delivers cannot be conjured up. */
void
ca_sms_receiver_check_partial(CaSms *self)
{
    g_autoptr(GPtrArray) flush = g_ptr_array_new_with_free_func(g_object_unref);
    g_autoptr(GPtrArray) stuck = g_ptr_array_new();
    gint64 now = g_get_monotonic_time();
    gint64 next = G_MAXINT64;
    GHashTableIter it;
    gpointer key, value;

    ca_clear_source(&self->stuck_timer);
    if (!self->receiving || !self->partial)
        return;
    g_hash_table_iter_init(&it, self->receiving);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        CaSmsReceiving *r = value;
        CaSmsPartial *p = g_hash_table_lookup(self->partial, r->key);
        gint64 partial_at;
        gint64 stuck_at;

        if (!p) {
            p = g_new0(CaSmsPartial, 1);
            p->since = now;
            g_hash_table_insert(self->partial, g_strdup(r->key), p);
        }
        partial_at = p->since + (gint64) self->set.partial_after_s * G_USEC_PER_SEC;
        stuck_at = p->since + (gint64) self->set.receive_timeout_s * G_USEC_PER_SEC;

        p->seen = TRUE;
        if (now >= partial_at) {
            g_ptr_array_add(flush, g_object_ref(r->proxy));
            g_hash_table_iter_remove(&it);
            continue;
        }
        next = MIN(next, partial_at);
        if (p->resynced)
            continue;
        if (now >= stuck_at)
            g_ptr_array_add(stuck, p);
        else
            next = MIN(next, stuck_at);
    }
    for (guint i = 0; i < flush->len; i++) {
        g_autofree char *k = partial_key(g_ptr_array_index(flush, i));

        publish_incomplete(self, g_ptr_array_index(flush, i));
        g_hash_table_remove(self->partial, k);
    }
    /* Forget messages no longer on the modem (completed, deleted), except during a resync,
     * which lists them again under new paths. */
    if (!self->resync_task) {
        g_hash_table_iter_init(&it, self->partial);
        while (g_hash_table_iter_next(&it, &key, &value)) {
            CaSmsPartial *p = value;

            if (!p->seen)
                g_hash_table_iter_remove(&it);
            else
                p->seen = FALSE;
        }
    }
    if (stuck->len > 0 && !self->resync_task) {
        ca_warn("%u multipart message(s) incomplete for %u s: ModemManager probably missed a "
                "part's notice, re-reading the modem storage%s",
                stuck->len, self->set.receive_timeout_s,
                ca_sms_resync_allowed(self) ? "" : " when resync-interval allows");
        for (guint i = 0; i < stuck->len; i++)
            ((CaSmsPartial *) g_ptr_array_index(stuck, i))->resynced = TRUE;
        ca_sms_resync_request(self, TRUE);
    } else if (stuck->len > 0) {
        next = MIN(next, now + G_USEC_PER_SEC); /* after the resync in flight */
    }
    if (next != G_MAXINT64)
        self->stuck_timer =
            timer_new((guint) MAX(1000, (MAX(next, now) - now) / 1000 + 1), stuck_cb, self);
}

/*****************************************************************************/
/* Listing */

static void
count_storage(CaSms *self, GList *list)
{
    guint stored = 0;

    for (GList *l = list; l; l = l->next) {
        MMSms *sms = l->data;
        if (mm_sms_get_pdu_type(sms) == MM_SMS_PDU_TYPE_DELIVER &&
            mm_sms_get_storage(sms) != MM_SMS_STORAGE_UNKNOWN)
            stored++;
    }
    self->stored_received = stored;
    if (self->set.storage_warn && stored >= self->set.storage_warn) {
        if (!self->storage_full_reported) {
            g_autoptr(cJSON) fields = cJSON_CreateObject();

            cJSON_AddNumberToObject(fields, "stored", stored);
            cJSON_AddNumberToObject(fields, "threshold", self->set.storage_warn);
            ca_warn("%u received messages held in modem storage (storage-warn %u)", stored,
                    self->set.storage_warn);
            ca_sms_emit_event(self, "sms-storage-full", fields);
            self->storage_full_reported = TRUE;
        }
    } else {
        self->storage_full_reported = FALSE;
    }
}

static void
list_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(CaSms) self = user_data;
    g_autoptr(GError) error = NULL;
    GList *list = mm_modem_messaging_list_finish(MM_MODEM_MESSAGING(source), result, &error);

    self->listing = FALSE;
    if (error) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            ca_warn("cannot list the modem's messages: %s", error->message);
    } else if (MM_MODEM_MESSAGING(source) == self->messaging) {
        ca_debug("%u message(s) listed", g_list_length(list));
        for (GList *l = list; l; l = l->next)
            handle_sms(self, l->data, FALSE);
        count_storage(self, list);
    }
    g_list_free_full(list, g_object_unref);
    if (self->relist && self->messaging) {
        self->relist = FALSE;
        ca_sms_receiver_list(self);
    }
}

void
ca_sms_receiver_list(CaSms *self)
{
    if (!self->messaging)
        return;
    if (self->listing) {
        self->relist = TRUE;
        return;
    }
    self->listing = TRUE;
    self->relist = FALSE;
    mm_modem_messaging_list(self->messaging, self->modem_cancellable, list_ready,
                            g_object_ref(self));
}

static void
added_proxy_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(CaSms) self = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GObject) obj = g_async_initable_new_finish(G_ASYNC_INITABLE(source), result, &error);

    if (!obj) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            ca_warn("cannot read a new message: %s; listing instead", error->message);
        ca_sms_receiver_list(self);
        return;
    }
    if (!self->messaging)
        return;
    handle_sms(self, MM_SMS(obj), TRUE);
}

static void
added_cb(MMModemMessaging *messaging, const char *path, gboolean received, gpointer user_data)
{
    CaSms *self = user_data;

    if (!received)
        return; /* created by a client (our own sends) */
    ca_debug("new message %s", path);
    g_async_initable_new_async(
        MM_TYPE_SMS, G_PRIORITY_DEFAULT, self->modem_cancellable, added_proxy_ready,
        g_object_ref(self), "g-flags", G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, "g-name",
        MM_DBUS_SERVICE, "g-connection", g_dbus_proxy_get_connection(G_DBUS_PROXY(messaging)),
        "g-object-path", path, "g-interface-name", "org.freedesktop.ModemManager1.Sms", NULL);
}

void
ca_sms_receiver_modem_changed(CaSms *self)
{
    g_hash_table_remove_all(self->receiving);
    g_hash_table_remove_all(self->on_modem);
    delete_clear(self);
    ca_clear_source(&self->stuck_timer);
    self->listing = FALSE;
    self->relist = FALSE;
    if (!self->messaging)
        return;
    self->added_id = g_signal_connect(self->messaging, "added", G_CALLBACK(added_cb), self);
    ca_sms_receiver_list(self);
}

void
ca_sms_receiver_relisted(CaSms *self, GList *list)
{
    /* What ModemManager knew before is gone (new objects, new paths). */
    g_hash_table_remove_all(self->receiving);
    g_hash_table_remove_all(self->on_modem);
    delete_clear(self);
    for (GList *l = list; l; l = l->next)
        handle_sms(self, l->data, FALSE);
    count_storage(self, list);
}

/*****************************************************************************/

void
ca_sms_receiver_init(CaSms *self)
{
    self->receiving = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, receiving_free);
    self->on_modem = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    self->publishing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    self->delete_set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    self->after_delete = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_queue_init(&self->delete_queue);
    ca_backoff_init(&self->delete_backoff, 200, 30000, 20, NULL);
    ca_backoff_init(&self->publish_backoff, PUBLISH_RETRY_INITIAL_MS, PUBLISH_RETRY_MAX_MS, 20,
                    NULL);
    self->partial = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

void
ca_sms_receiver_clear(CaSms *self)
{
    if (self->receiving)
        g_hash_table_remove_all(self->receiving);
    if (self->on_modem)
        g_hash_table_remove_all(self->on_modem);
    if (self->publishing)
        g_hash_table_remove_all(self->publishing);
    if (self->partial)
        g_hash_table_remove_all(self->partial);
    delete_clear(self);
    ca_clear_source(&self->publish_retry);
    ca_clear_source(&self->stuck_timer);
    ca_sms_resync_clear(self);
}
