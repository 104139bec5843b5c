/*
 * got.h — redirecting calls that other loaded objects make to a function, by
 * rewriting their GOT slots for it.
 *
 * Why: in Debian's python3.11 libpython is linked into the executable, whose
 * own definitions win over anything LD_PRELOAD offers, so interposing a
 * symbol does not work. But a loaded object (an extension module such as
 * _ctypes, or a shared libpython) calls an external function through a slot
 * in its GOT, and that slot can be rewritten. Relocations are read from each
 * object's dynamic section (DT_JMPREL / DT_RELA), so stripped objects work.
 *
 * Hazards: slots in a RELRO segment are read-only after start-up; they are
 * made writable for the single store and read-only again. Slot stores are
 * aligned 8-byte stores, so a thread calling through the slot at that moment
 * sees the old or the new target, never a torn one. Scanning holds the
 * loader's lock (inside dl_iterate_phdr), so no object is being loaded or
 * unloaded meanwhile.
 */
#ifndef CPYPROF_NATIVE_GOT_H
#define CPYPROF_NATIVE_GOT_H

#include <stddef.h>
#include <stdint.h>

/** One function to redirect. */
typedef struct cp_got_hook {
    const char *symbol; /* e.g. "PyGILState_Ensure" */
    void *replacement;  /* our wrapper */
} cp_got_hook;

/** One rewritten slot, for undoing it. */
typedef struct cp_got_slot {
    void **slot;
    void *original;
    void *replacement;
    int relro; /* the slot's page is read-only between our stores */
} cp_got_slot;

/** The objects one user has processed and the slots it rewrote. Users with
 *  different hooks keep separate sets (zero-initialised), so that an object
 *  one of them saw is still processed for the other. */
typedef struct cp_got_set {
    cp_got_slot *slots;
    size_t n, cap;
    uintptr_t *seen; /* objects processed, by load address ^ dynamic section */
    size_t nseen, capseen;
    unsigned long long adds; /* dlpi_adds at the last install */
    /* objects whose name contains one of these are left alone (NULL-ended;
     * kept across cp_got_set_restore) */
    const char *const *skip;
} cp_got_set;

/** cp_got_install for a set of one's own. */
int cp_got_set_install(cp_got_set *set, const cp_got_hook *hooks, size_t nhooks,
                       const void *self_addr);
/** cp_got_objects_changed for a set. */
int cp_got_set_changed(const cp_got_set *set);
/** cp_got_restore_all for a set (keeps its `skip` list). */
void cp_got_set_restore(cp_got_set *set);

/** Redirects `hooks` in every loaded object not seen before (all but the
 *  object containing `self_addr`, i.e. libcpyprof.so). Returns the number of
 *  slots rewritten in this call, or -1 (out of memory for the undo list). */
int cp_got_install(const cp_got_hook *hooks, size_t nhooks, const void *self_addr);

/** True if objects were loaded since the last cp_got_install (cheap: stops
 *  the object walk at the first entry). */
int cp_got_objects_changed(void);

/** Puts back every slot still pointing at one of our replacements, and
 *  forgets the objects seen. */
void cp_got_restore_all(void);

/** One slot rewritten by cp_got_install_in, kept by the caller to undo it. */
typedef struct cp_got_patch {
    void **slot;
    void *original;
    void *replacement;
    int relro;
} cp_got_patch;

/** Redirects `hooks` in the one loaded object whose segments contain
 *  `object_addr` (e.g. &_PyRuntime: the executable or libpython), whether or
 *  not cp_got_install saw it. The rewritten slots go to `out` (at most `cap`),
 *  not to cp_got_install's undo list, so the two users restore separately.
 *  Returns the number of slots rewritten (0: the object has no such
 *  relocation), or -1 if no loaded object contains `object_addr` or `out` is
 *  too small (nothing is left rewritten then). */
int cp_got_install_in(const cp_got_hook *hooks, size_t nhooks, const void *object_addr,
                      cp_got_patch *out, size_t cap);

/** Puts back the slots of a cp_got_install_in that still point at their
 *  replacement (someone else's later rewrite stays). */
void cp_got_restore_patches(const cp_got_patch *patches, size_t n);

#endif
