/* mqtt-inbound: libmosquitto's reads from the broker go through a framer (mqtt-inbound.h).
 *
 * How the reads are reached: libmosquitto.so calls read() and SSL_read() through its own
 * import slots (the GOT entries of its JUMP_SLOT/GLOB_DAT relocations). At start the agent
 * finds libmosquitto among the loaded objects (dl_iterate_phdr), looks its relocations up
 * by symbol name in its dynamic section, and points those two slots at the wrappers below,
 * which call the real functions. Only libmosquitto's calls change: every other caller of
 * read() in the process (GLib, libnm, OpenSSL's own socket reads) keeps its own slots.
 * A slot inside the RELRO segment (objects linked with -z now) is made writable for the
 * write and read-only again. The wrappers act only on the broker socket (or TLS object)
 * named by ca_mqtt_inbound_watch(), during the agent's own mosquitto_loop_read(); anything
 * else passes through untouched. */
#define CA_LOG_MODULE "mqtt"
#include "mqtt-inbound.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <openssl/ssl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if __SIZEOF_POINTER__ == 8
#define REL_SYM(i)  ELF64_R_SYM(i)
#define REL_TYPE(i) ELF64_R_TYPE(i)
#else
#define REL_SYM(i)  ELF32_R_SYM(i)
#define REL_TYPE(i) ELF32_R_TYPE(i)
#endif

#if defined(__x86_64__)
#define SLOT_RELOC(t) ((t) == R_X86_64_JUMP_SLOT || (t) == R_X86_64_GLOB_DAT)
#elif defined(__aarch64__)
#define SLOT_RELOC(t) ((t) == R_AARCH64_JUMP_SLOT || (t) == R_AARCH64_GLOB_DAT)
#elif defined(__i386__)
#define SLOT_RELOC(t) ((t) == R_386_JMP_SLOT || (t) == R_386_GLOB_DAT)
#elif defined(__arm__)
#define SLOT_RELOC(t) ((t) == R_ARM_JUMP_SLOT || (t) == R_ARM_GLOB_DAT)
#else
#define SLOT_RELOC(t) FALSE
#endif

/* What the wrappers follow; set only around the agent's own loop_read (main thread). */
static struct {
    CaMqttFramer *framer;
    int fd;
    SSL *ssl;
} guard = {NULL, -1, NULL};

static ssize_t
wrapped_read(int fd, void *buf, size_t count)
{
    ssize_t n = read(fd, buf, count);

    if (n > 0 && guard.framer && !guard.ssl && fd == guard.fd &&
        ca_mqtt_framer_feed(guard.framer, buf, (gsize) n) != CA_MQTT_FRAME_OK) {
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

static int
wrapped_ssl_read(SSL *ssl, void *buf, int num)
{
    int n = SSL_read(ssl, buf, num);

    /* libmosquitto asks SSL_get_error() next: with nothing queued it says SSL_ERROR_SYSCALL
     * and libmosquitto closes the connection (the framer keeps the reason). */
    if (n > 0 && guard.framer && ssl == guard.ssl &&
        ca_mqtt_framer_feed(guard.framer, buf, (gsize) n) != CA_MQTT_FRAME_OK) {
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

/* The imports pointed at a wrapper; Patch.slots counts the slots patched for each. */
enum { WRAP_READ, WRAP_SSL_READ, N_WRAPPED };
static const struct {
    const char *name;
    void *wrapper;
} wrapped[N_WRAPPED] = {
    [WRAP_READ] = {"read", (void *) wrapped_read},
    [WRAP_SSL_READ] = {"SSL_read", (void *) wrapped_ssl_read},
};

typedef struct {
    guint slots[N_WRAPPED];
    gboolean found;
    gboolean failed;
} Patch;

static gboolean
write_slot(void **slot, void *value, uintptr_t relro_lo, uintptr_t relro_hi)
{
    uintptr_t page = (uintptr_t) sysconf(_SC_PAGESIZE);
    uintptr_t at = (uintptr_t) slot;
    gboolean relro = at >= relro_lo && at < relro_hi;
    void *start = (void *) (at & ~(page - 1));
    gsize len = (at + sizeof(void *) - (uintptr_t) start + page - 1) & ~(page - 1);

    if (relro && mprotect(start, len, PROT_READ | PROT_WRITE) != 0)
        return FALSE;
    __atomic_store_n(slot, value, __ATOMIC_SEQ_CST);
    if (relro)
        mprotect(start, len, PROT_READ);
    return TRUE;
}

/* d_ptr of the dynamic section: glibc relocates most of them in place; others do not. */
static uintptr_t
dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) ptr)
{
    return ptr < info->dlpi_addr ? info->dlpi_addr + ptr : ptr;
}

static void
patch_relocs(const struct dl_phdr_info *info, Patch *p, const ElfW(Rela) * rel, gsize size,
             const ElfW(Sym) * symtab, const char *strtab, uintptr_t relro_lo, uintptr_t relro_hi)
{
    for (gsize i = 0; i < size / sizeof(ElfW(Rela)); i++) {
        const char *name;
        void **slot;

        if (!SLOT_RELOC(REL_TYPE(rel[i].r_info)) || REL_SYM(rel[i].r_info) == 0)
            continue;
        name = strtab + symtab[REL_SYM(rel[i].r_info)].st_name;
        slot = (void **) (info->dlpi_addr + rel[i].r_offset);
        for (guint w = 0; w < N_WRAPPED; w++) {
            if (!g_str_equal(name, wrapped[w].name))
                continue;
            if (write_slot(slot, wrapped[w].wrapper, relro_lo, relro_hi))
                p->slots[w]++;
            else
                p->failed = TRUE;
        }
    }
}

static int
patch_object(struct dl_phdr_info *info, size_t size, void *data)
{
    Patch *p = data;
    const ElfW(Dyn) *dyn = NULL;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const ElfW(Rela) *jmprel = NULL, *rela = NULL;
    gsize jmprel_size = 0, rela_size = 0;
    gboolean jmprel_is_rela = TRUE;
    uintptr_t relro_lo = 0, relro_hi = 0;
    const char *base;

    (void) size;
    base = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    base = base ? base + 1 : info->dlpi_name;
    if (!base || !g_str_has_prefix(base, "libmosquitto.so"))
        return 0;
    p->found = TRUE;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

        if (ph->p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *) (info->dlpi_addr + ph->p_vaddr);
        else if (ph->p_type == PT_GNU_RELRO) {
            relro_lo = info->dlpi_addr + ph->p_vaddr;
            relro_hi = relro_lo + ph->p_memsz;
        }
    }
    for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB:
            symtab = (const ElfW(Sym) *) dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_STRTAB:
            strtab = (const char *) dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_JMPREL:
            jmprel = (const ElfW(Rela) *) dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_PLTRELSZ:
            jmprel_size = dyn->d_un.d_val;
            break;
        case DT_PLTREL:
            jmprel_is_rela = dyn->d_un.d_val == DT_RELA;
            break;
        case DT_RELA:
            rela = (const ElfW(Rela) *) dyn_ptr(info, dyn->d_un.d_ptr);
            break;
        case DT_RELASZ:
            rela_size = dyn->d_un.d_val;
            break;
        }
    }
    if (!symtab || !strtab)
        return 1;
    /* x86_64 and arm64 use RELA; an object with REL relocations is not patched. */
    if (jmprel && jmprel_is_rela)
        patch_relocs(info, p, jmprel, jmprel_size, symtab, strtab, relro_lo, relro_hi);
    if (rela)
        patch_relocs(info, p, rela, rela_size, symtab, strtab, relro_lo, relro_hi);
    return 1;
}

gboolean
ca_mqtt_inbound_install(const char **detail)
{
    static gsize once;
    static gboolean ok;
    static char text[160];

    if (g_once_init_enter(&once)) {
        Patch p = {0};

        dl_iterate_phdr(patch_object, &p);
        ok = p.slots[WRAP_READ] > 0 && p.slots[WRAP_SSL_READ] > 0 && !p.failed;
        if (!p.found)
            g_strlcpy(text, "libmosquitto is not a loaded shared object", sizeof text);
        else if (p.failed)
            g_strlcpy(text, "cannot write libmosquitto's import slots", sizeof text);
        else
            g_snprintf(text, sizeof text, "libmosquitto's read() %s, SSL_read() %s",
                       p.slots[WRAP_READ] ? "bounded" : "not found",
                       p.slots[WRAP_SSL_READ] ? "bounded" : "not found");
        g_once_init_leave(&once, 1);
    }
    if (detail)
        *detail = text;
    return ok;
}

void
ca_mqtt_inbound_watch(CaMqttFramer *framer, int fd, void *ssl)
{
    guard.framer = framer;
    guard.fd = fd;
    guard.ssl = ssl;
}

void
ca_mqtt_inbound_unwatch(void)
{
    guard.framer = NULL;
    guard.fd = -1;
    guard.ssl = NULL;
}
