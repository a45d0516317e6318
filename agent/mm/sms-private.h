/* sms-private: CaSms's state, shared by sms.c (object, modem, requests), sms-send.c (the
 * sender), sms-receive.c (received messages, status reports, incomplete messages) and
 * sms-resync.c (re-reading the modem storage). Not for other modules. */
#pragma once
#include "backoff.h"
#include "dedupe.h"
#include "modem-ops.h"
#include "modem-settings.h"
#include "sms-codec.h"
#include "sms.h"
#include "spool.h"

/* Bytes each spool may hold (the record count is [sms] spool-limit). */
#define CA_SMS_SPOOL_BYTES (32 * 1024 * 1024)

/* A message ModemManager is still assembling (state "receiving"). */
typedef struct {
    CaSms *sms;
    MMSms *proxy;
    gulong notify_id;
    char *key; /* sender and SMSC time: the same message under a new path after a resync */
} CaSmsReceiving;

/* What is known of an incomplete message across resyncs (which give it a new path). */
typedef struct {
    gint64 since;      /* monotonic: first seen incomplete */
    gboolean resynced; /* a resync was spent on it already */
    gboolean seen;     /* still on the modem at the last look */
} CaSmsPartial;

struct _CaSms {
    GObject parent;
    CaSmsSettings set;
    char *dir;
    GCancellable *cancellable; /* cancelled on stop/dispose */
    gboolean started;

    /* Storage */
    CaSpool *out;             /* requests waiting to be sent, in order (NULL: out_broken) */
    CaSpool *in;              /* received messages waiting for the broker, by id */
    CaDedupe *results;        /* sms/out id -> {"result":{...}, "sent_at", "refs", "to"} */
    CaDedupe *seen;           /* sms/in ids the broker acknowledged */
    GHashTable *out_ids;      /* request id -> spool name, for everything in the out spool */
    char *out_broken;         /* why the outgoing storage could not be opened (receiving goes on) */
    guint out_set_aside;      /* unreadable outgoing records set aside when the spool was opened */
    gboolean damage_reported; /* the storage's damage was reported (ca_sms_start) */

    /* The modem */
    MMObject *object;
    MMModem *modem;
    MMModemMessaging *messaging;
    gulong state_id;
    gulong added_id;
    GCancellable *modem_cancellable; /* cancelled when the modem changes */
    CaModemOps *ops;                 /* the modem's one owner: the resync's Disable + Enable */
    gboolean cellular_in_use;        /* cellular carries the traffic: resyncs cost the link */

    /* Sender (sms-send.c) */
    GTask *send_task;    /* the job in flight, or NULL */
    GSource *send_retry; /* owned: backoff after a transient failure */
    GSource *rate_timer; /* owned: the rate limit allows the next send */
    GQueue sent_times;   /* gint64 wall-clock seconds of sends in the last hour, oldest first */
    CaBackoff send_backoff;

    /* Receiver (sms-receive.c) */
    GHashTable *receiving;    /* path -> CaSmsReceiving* */
    GHashTable *on_modem;     /* id -> path of a received message still in modem storage */
    GHashTable *publishing;   /* id -> NULL: handed up, waiting for ca_sms_received_done */
    GSource *publish_retry;   /* owned */
    GQueue delete_queue;      /* char* paths of handled messages to delete, in order */
    GHashTable *delete_set;   /* the same paths (and the one in flight) -> NULL */
    GHashTable *after_delete; /* path -> id: handed up once its delete was tried */
    char *deleting;           /* the path being deleted, or NULL */
    guint delete_generation;  /* bumped when the queue is dropped */
    GSource *delete_retry;    /* owned */
    CaBackoff delete_backoff;
    CaBackoff publish_backoff;
    gboolean listing;      /* a listing is running */
    gboolean relist;       /* list again when it completes */
    guint stored_received; /* received messages seen in modem storage at the last listing */
    gboolean storage_full_reported;
    GHashTable *partial;  /* key -> CaSmsPartial, incomplete messages */
    GSource *stuck_timer; /* owned: next look at incomplete messages */

    /* Resync (sms-resync.c) */
    GSource *resync_timer;  /* owned: the resync after receptions (resync-delay) */
    GSource *resync_defer;  /* owned: an automatic resync waits for resync-interval */
    GTask *resync_task;     /* the resync in flight, or NULL */
    gboolean resync_wanted; /* an automatic resync waits (after-receive or stuck) */
    gboolean resync_stuck;  /* ... and it is for an incomplete message */
    gint64 storage_read_at; /* monotonic: ModemManager last read the whole storage */
    gboolean modem_enabled; /* the modem was enabled at the last state change */
};

/* sms.c */
void ca_sms_emit_result(CaSms *self, const cJSON *result);
void ca_sms_emit_received(CaSms *self, const char *id, const char *json);
/* Set object[key] = item (consumed), replacing an existing member. */
void ca_sms_json_set(cJSON *object, const char *key, cJSON *item);
void ca_sms_emit_event(CaSms *self, const char *type, const cJSON *fields);
/* TRUE when the modem is present and registered (sending is possible). */
gboolean ca_sms_modem_ready(CaSms *self);
/* Record id's latest result durably and publish it; extra members (may be NULL) are merged
 * into the stored record. */
void ca_sms_record_result(CaSms *self, const char *id, cJSON *result, cJSON *extra);

/* sms-send.c */
void ca_sms_sender_init(CaSms *self);
void ca_sms_sender_clear(CaSms *self);
/* Start the next send when possible (idempotent). */
void ca_sms_sender_kick(CaSms *self);
/* A status report for reference arrived from number: TRUE when it matched a request. */
gboolean ca_sms_sender_report(CaSms *self, guint reference, const char *number,
                              guint delivery_state);

/* sms-receive.c */
void ca_sms_receiver_init(CaSms *self);
void ca_sms_receiver_clear(CaSms *self);
/* The modem changed (self->messaging set or NULL): drop per-modem state, list again. */
void ca_sms_receiver_modem_changed(CaSms *self);
/* Hand up every spooled message not yet acknowledged. */
void ca_sms_receiver_republish(CaSms *self);
void ca_sms_receiver_published(CaSms *self, const char *id, const GError *error);
/* List the modem's messages (coalesced). */
void ca_sms_receiver_list(CaSms *self);
/* Handle a message object found by a listing or announced (from_signal). */
void ca_sms_receiver_handle(CaSms *self, MMSms *sms, gboolean from_signal);
/* A resync renamed every object: forget paths, handle what the listing returned. */
void ca_sms_receiver_relisted(CaSms *self, GList *list);
/* Look at incomplete messages: publish those older than partial-after, ask for a resync
 * for those older than receive-timeout; re-arm for the next one. */
void ca_sms_receiver_check_partial(CaSms *self);

/* sms-resync.c */
/* Automatic resync: after receptions (stuck FALSE) or for an incomplete message. Runs now
 * when allowed, else when it is (resync-interval while cellular carries the traffic). */
void ca_sms_resync_request(CaSms *self, gboolean stuck);
/* Schedule the after-receive resync resync-delay from now. */
void ca_sms_resync_after_receive(CaSms *self);
/* TRUE when a resync for an incomplete message may start now. */
gboolean ca_sms_resync_allowed(CaSms *self);
/* The sender finished a job: a resync waiting for it goes on. */
void ca_sms_receiver_sender_idle(CaSms *self);
void ca_sms_resync_clear(CaSms *self);
/* The storage was read completely (the modem was enabled): forget a waiting resync. */
void ca_sms_resync_satisfied(CaSms *self);
