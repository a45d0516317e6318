/* probe-spec: probe specifications and their cost in bytes. */
#include "probe-spec.h"

#include <gio/gio.h>
#include <string.h>

/* Payload of our ICMP echo: an 8-byte sequence/tag, nothing else. */
#define ICMP_PAYLOAD 8

const char *
ca_probe_kind_to_string(CaProbeKind kind)
{
    switch (kind) {
    case CA_PROBE_ICMP:
        return "icmp";
    case CA_PROBE_TCP:
        return "tcp";
    case CA_PROBE_DNS:
        return "dns";
    }
    g_assert_not_reached();
}

static gboolean
fail(char **why, const char *msg)
{
    if (why)
        *why = g_strdup(msg);
    return FALSE;
}

/* "ADDR", "ADDR:PORT", "[V6]" or "[V6]:PORT"; a bare v6 literal has no port. */
static gboolean
split_host_port(const char *rest, char *host, gsize host_size, guint *port, gboolean *has_port)
{
    const char *colon;

    *has_port = FALSE;
    *port = 0;
    if (rest[0] == '[') {
        const char *end = strchr(rest, ']');
        if (!end || (gsize) (end - rest - 1) >= host_size || end == rest + 1)
            return FALSE;
        memcpy(host, rest + 1, end - rest - 1);
        host[end - rest - 1] = '\0';
        if (end[1] == '\0')
            return TRUE;
        if (end[1] != ':')
            return FALSE;
        colon = end + 1;
    } else {
        colon = strrchr(rest, ':');
        if (colon && strchr(rest, ':') != colon) {
            /* Several colons without brackets: a bare IPv6 literal. */
            if (strlen(rest) >= host_size)
                return FALSE;
            g_strlcpy(host, rest, host_size);
            return TRUE;
        }
        if (!colon) {
            if (strlen(rest) >= host_size || rest[0] == '\0')
                return FALSE;
            g_strlcpy(host, rest, host_size);
            return TRUE;
        }
        if ((gsize) (colon - rest) >= host_size || colon == rest)
            return FALSE;
        memcpy(host, rest, colon - rest);
        host[colon - rest] = '\0';
    }
    {
        guint64 p;
        if (!g_ascii_string_to_unsigned(colon + 1, 10, 1, 65535, &p, NULL))
            return FALSE;
        *port = (guint) p;
        *has_port = TRUE;
    }
    return TRUE;
}

static gboolean
valid_hostname(const char *h)
{
    gsize n = strlen(h);

    if (n == 0 || n > 253)
        return FALSE;
    for (const char *p = h; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.')
            return FALSE;
    }
    return h[0] != '.' && h[0] != '-';
}

gboolean
ca_probe_spec_parse(const char *text, CaProbeSpec *out, char **why)
{
    CaProbeSpec s = {0};
    const char *rest;
    guint port = 0;
    gboolean has_port = FALSE;

    if (g_str_has_prefix(text, "icmp:")) {
        s.kind = CA_PROBE_ICMP;
        rest = text + 5;
    } else if (g_str_has_prefix(text, "tcp:")) {
        s.kind = CA_PROBE_TCP;
        rest = text + 4;
    } else if (g_str_has_prefix(text, "dns:")) {
        s.kind = CA_PROBE_DNS;
        rest = text + 4;
    } else {
        return fail(why, "must start with icmp:, tcp: or dns:");
    }
    if (s.kind == CA_PROBE_TCP && strcmp(rest, "mqtt") == 0) {
        g_strlcpy(s.host, "mqtt", sizeof s.host);
        s.mqtt = TRUE;
        *out = s;
        return TRUE;
    }
    if (!split_host_port(rest, s.host, sizeof s.host, &port, &has_port))
        return fail(why, "expected an address, optionally :PORT ([ADDR]:PORT for IPv6)");
    switch (s.kind) {
    case CA_PROBE_ICMP:
        if (has_port)
            return fail(why, "icmp takes no port");
        if (!g_hostname_is_ip_address(s.host))
            return fail(why, "icmp needs an IPv4 or IPv6 address");
        break;
    case CA_PROBE_DNS:
        if (!g_hostname_is_ip_address(s.host))
            return fail(why, "dns needs the server's IPv4 or IPv6 address");
        port = has_port ? port : 53;
        break;
    case CA_PROBE_TCP:
        if (!has_port)
            return fail(why, "tcp needs HOST:PORT (or tcp:mqtt)");
        if (!g_hostname_is_ip_address(s.host) && !valid_hostname(s.host))
            return fail(why, "not a valid host name or address");
        break;
    }
    s.port = (guint16) port;
    *out = s;
    return TRUE;
}

gboolean
ca_probe_spec_check(const char *text, char **why)
{
    CaProbeSpec s;
    return ca_probe_spec_parse(text, &s, why);
}

guint
ca_probe_spec_cost(const CaProbeSpec *s)
{
    /* IPv4 header 20, IPv6 40. A host name (tcp) is counted as IPv4. */
    gboolean v6 = strchr(s->host, ':') != NULL;
    guint ip = v6 ? 40 : 20;

    switch (s->kind) {
    case CA_PROBE_ICMP:
        /* echo request + reply, 8-byte ICMP header + our payload */
        return 2 * (ip + 8 + ICMP_PAYLOAD);
    case CA_PROBE_TCP:
        /* SYN and SYN-ACK with options (40), ACK and RST|ACK with timestamps (32) */
        return 2 * (ip + 40) + 2 * (ip + 32);
    case CA_PROBE_DNS:
        /* UDP 8 + DNS header 12 + a short question (~20) one way; the answer is
         * counted as up to 100 bytes of DNS payload */
        return (ip + 8 + 12 + 20) + (ip + 8 + 100);
    }
    g_assert_not_reached();
}

gboolean
ca_probe_check_dns_name(const char *text, char **why)
{
    if (strcmp(text, ".") == 0)
        return TRUE;
    if (!valid_hostname(text) || strstr(text, ".."))
        return fail(why, "not a valid DNS name");
    return TRUE;
}
