/* probe-spec: parsing of probe specifications ("icmp:ADDR", "tcp:HOST:PORT",
 * "tcp:mqtt", "dns:ADDR[:PORT]") and their traffic cost. Pure; shared by the config
 * validator, the policy (traffic estimates) and the probe runner. */
#pragma once
#include <glib.h>

typedef enum {
    CA_PROBE_ICMP, /* ICMP echo to an address literal */
    CA_PROBE_TCP,  /* TCP connect (then reset) to host:port */
    CA_PROBE_DNS,  /* one DNS query over UDP to a server address */
} CaProbeKind;

const char *ca_probe_kind_to_string(CaProbeKind kind);

typedef struct {
    CaProbeKind kind;
    char host[256]; /* address literal, host name (tcp only) or "mqtt" (tcp:mqtt) */
    guint16 port;   /* tcp, dns; 0 for icmp and tcp:mqtt */
    gboolean mqtt;  /* tcp:mqtt: the broker from [mqtt] */
} CaProbeSpec;

/* Parse one spec. On failure returns FALSE and, if why != NULL, sets *why. */
gboolean ca_probe_spec_parse(const char *text, CaProbeSpec *out_spec, char **why);
/* Config table validator (same rules). */
gboolean ca_probe_spec_check(const char *text, char **why);
/* IP bytes, both ways, of one successful probe (estimate for traffic budgets). */
guint ca_probe_spec_cost(const CaProbeSpec *spec);
/* Validator for DNS query names ("." or a host name). */
gboolean ca_probe_check_dns_name(const char *text, char **why);
