/*
 * speedscope.c — speedscope JSON export (see speedscope.h).
 *
 * The document is streamed straight to the FILE: profiles can hold millions
 * of samples and nothing needs to be buffered. The input is validated in a
 * first pass so bad input produces no output at all rather than half a
 * document.
 *
 * Layout of the output: one frame per line and one profile per line (its
 * samples, then its weights on the next), which keeps the file diffable and
 * greppable without the size cost of full pretty-printing.
 */
#include "report/text.h"
#include "report/speedscope.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#define SCHEMA_URL "https://www.speedscope.app/file-format-schema.json"

/*
 * Writes s as a JSON string literal. Quotes, backslashes and control
 * characters are escaped as RFC 8259 requires; invalid UTF-8 becomes
 * "\ufffd". U+2028 and U+2029 are legal in JSON but not in older JavaScript
 * string literals, so they are escaped too in case the JSON is ever pasted
 * into a script.
 */
static void json_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t avail = strlen(s);
    fputc('"', out);
    while (avail > 0) {
        size_t n = cp_utf8_seq_len(p, avail);
        if (n == 0) {
            fputs("\\ufffd", out);
            n = 1;
        } else if (n == 1) {
            switch (p[0]) {
            case '"':
                fputs("\\\"", out);
                break;
            case '\\':
                fputs("\\\\", out);
                break;
            case '\b':
                fputs("\\b", out);
                break;
            case '\f':
                fputs("\\f", out);
                break;
            case '\n':
                fputs("\\n", out);
                break;
            case '\r':
                fputs("\\r", out);
                break;
            case '\t':
                fputs("\\t", out);
                break;
            default:
                if (p[0] < 0x20)
                    fprintf(out, "\\u%04x", p[0]);
                else
                    fputc(p[0], out);
            }
        } else if (n == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
            fprintf(out, "\\u%04x", 0x2000 + (p[2] - 0x80));
        } else {
            fwrite(p, 1, n, out);
        }
        p += n;
        avail -= n;
    }
    fputc('"', out);
}

static const char *unit_name(cp_ss_unit unit)
{
    switch (unit) {
    case CP_SS_UNIT_NANOSECONDS:
        return "nanoseconds";
    case CP_SS_UNIT_BYTES:
        return "bytes";
    case CP_SS_UNIT_NONE:
        break;
    }
    return "none";
}

/* The first pass: every reference resolves, so the writer cannot fail on
 * input half-way through. */
static int validate(const cp_ss_frame *frames, size_t nframes, const cp_ss_thread *threads,
                    size_t nthreads, char *err, size_t errlen)
{
    if (nframes > 0 && !frames) {
        snprintf(err, errlen, "speedscope: %zu frames but no frame table", nframes);
        return -1;
    }
    if (nthreads > 0 && !threads) {
        snprintf(err, errlen, "speedscope: %zu threads but no thread list", nthreads);
        return -1;
    }
    for (size_t t = 0; t < nthreads; t++) {
        const cp_ss_thread *th = &threads[t];
        if (th->nsamples > 0 && !th->samples) {
            snprintf(err, errlen, "speedscope: thread %zu has %zu samples but no sample list", t,
                     th->nsamples);
            return -1;
        }
        for (size_t s = 0; s < th->nsamples; s++) {
            const cp_ss_sample *sm = &th->samples[s];
            if (sm->depth > 0 && !sm->stack) {
                snprintf(err, errlen, "bad sample: thread %zu sample %zu has no stack", t, s);
                return -1;
            }
            for (size_t d = 0; d < sm->depth; d++) {
                if (sm->stack[d] >= nframes) {
                    snprintf(err, errlen,
                             "bad sample: thread %zu sample %zu refers to frame %" PRIu32 " of %zu",
                             t, s, sm->stack[d], nframes);
                    return -1;
                }
            }
        }
    }
    return 0;
}

static void write_frame(FILE *out, const cp_ss_frame *f)
{
    fputs("{\"name\":", out);
    json_string(out, f->name ? f->name : "(unknown)");
    if (f->file && f->file[0]) {
        fputs(",\"file\":", out);
        json_string(out, f->file);
    }
    if (f->line > 0)
        fprintf(out, ",\"line\":%" PRIu32, f->line);
    fputc('}', out);
}

static void write_profile(FILE *out, const cp_ss_thread *th, size_t index, const char *unit)
{
    uint64_t end = 0;
    for (size_t s = 0; s < th->nsamples; s++)
        end += th->samples[s].weight;

    fputs("{\"type\":\"sampled\",\"name\":", out);
    if (th->name)
        json_string(out, th->name);
    else
        fprintf(out, "\"thread %zu\"", index);
    fprintf(out, ",\"unit\":\"%s\",\"startValue\":0,\"endValue\":%" PRIu64 ",\n\"samples\":[", unit,
            end);
    for (size_t s = 0; s < th->nsamples && !ferror(out); s++) {
        const cp_ss_sample *sm = &th->samples[s];
        fputs(s ? ",[" : "[", out);
        for (size_t d = 0; d < sm->depth; d++)
            fprintf(out, d ? ",%" PRIu32 : "%" PRIu32, sm->stack[d]);
        fputc(']', out);
    }
    fputs("],\n\"weights\":[", out);
    for (size_t s = 0; s < th->nsamples && !ferror(out); s++)
        fprintf(out, s ? ",%" PRIu64 : "%" PRIu64, th->samples[s].weight);
    fputs("]}", out);
}

int cp_speedscope_write(FILE *out, const cp_ss_frame *frames, size_t nframes,
                        const cp_ss_thread *threads, size_t nthreads, const cp_ss_options *opt,
                        char *err, size_t errlen)
{
    static const cp_ss_options defaults = {NULL, NULL, CP_SS_UNIT_NONE};
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!out) {
        snprintf(err, errlen, "speedscope: no output stream");
        return -1;
    }
    if (!opt)
        opt = &defaults;
    if (validate(frames, nframes, threads, nthreads, err, errlen) != 0)
        return -1;

    fputs("{\"$schema\":\"" SCHEMA_URL "\"", out);
    if (opt->exporter) {
        fputs(",\"exporter\":", out);
        json_string(out, opt->exporter);
    }
    if (opt->name) {
        fputs(",\"name\":", out);
        json_string(out, opt->name);
    }
    if (nthreads > 0)
        fputs(",\"activeProfileIndex\":0", out);

    fputs(",\n\"shared\":{\"frames\":[", out);
    for (size_t i = 0; i < nframes && !ferror(out); i++) {
        fputs(i ? ",\n" : "\n", out);
        write_frame(out, &frames[i]);
    }
    fputs("]},\n\"profiles\":[", out);
    const char *unit = unit_name(opt->unit);
    for (size_t t = 0; t < nthreads && !ferror(out); t++) {
        fputs(t ? ",\n" : "\n", out);
        write_profile(out, &threads[t], t, unit);
    }
    fputs("]}\n", out);

    return cp_flush_checked(out, "speedscope: write error", err, errlen);
}
