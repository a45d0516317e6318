/* error: cellagent's one GError domain. Adapters translate foreign codes
 * (MOSQ_ERR_*, MM/NM GErrors, errno) into it at their boundary. */
#pragma once
#include <glib.h>

#define CA_ERROR (ca_error_quark())
GQuark ca_error_quark(void);

typedef enum {
    CA_ERROR_FAILED,         /* anything without a better code */
    CA_ERROR_INVALID_CONFIG, /* config file or value rejected */
    CA_ERROR_INVALID_INPUT,  /* a remote peer sent something we refuse */
    CA_ERROR_NOT_READY,      /* the needed daemon/device is not there (yet) */
    CA_ERROR_MQTT,           /* libmosquitto failure */
    CA_ERROR_MODEM,          /* ModemManager failure */
    CA_ERROR_NETWORK,        /* NetworkManager / uplink failure */
    CA_ERROR_TIMEOUT,        /* an operation ran out of time */
    CA_ERROR_IO,             /* local file system */
    CA_ERROR_LIMIT,          /* a bound (queue, size, rate) was hit */
} CaError;
