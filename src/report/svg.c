/*
 * svg.c — the interactive SVG flamegraph (see svg.h).
 *
 * The layout is computed here, in C, so the file renders as a complete
 * flamegraph even where no script runs (image viewers, rsvg-convert, a
 * browser with scripts disabled). The inline script only adds behaviour:
 * zoom, search, the hover details line, and re-fitting labels after a zoom.
 *
 * Each frame is a <g> carrying its position in value units (data-x, data-w:
 * offset and width in the same unit as `total`) and its depth (data-d), so
 * the script can re-lay out any subtree exactly without floating-point
 * drift and can tell ancestors from descendants by interval containment.
 */
#include "report/text.h"
#include "report/svg.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Geometry, in pixels. */
#define PAD_X 10.0             /* left/right margin around the frames */
#define FRAME_H 16             /* row pitch */
#define RECT_H 15              /* box height: one pixel gap between rows */
#define FONT_PX 12             /* frame label size */
#define CHAR_W (FONT_PX * 0.6) /* approximate advance of one character */
#define LABEL_PAD 3.0          /* label inset from the left edge of the box */
#define TOP_PLAIN 40           /* space above the frames: title only */
#define TOP_SUB 56             /* space above the frames: title + subtitle */
#define BOTTOM 30              /* space below the frames: details line */

#define HIGHLIGHT "rgb(230,0,230)" /* search matches: outside every palette */

/* ---- small growable string --------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* ---- text: UTF-8 repair and XML escaping -------------------------------- */

/*
 * Copies s into b as valid UTF-8 that XML 1.0 can carry: invalid bytes,
 * C0/C1 control characters, DEL and the non-characters U+FFFE/U+FFFF become
 * U+FFFD. XML cannot represent most control characters even as character
 * references, and a newline in a name would break the tooltip layout (the
 * script takes the name as the tooltip's first line), so they are not kept.
 */
static void sanitize(sbuf *b, const char *s)
{
    static const char repl[] = "\xEF\xBF\xBD";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t avail = strlen((const char *)p);
    while (avail > 0) {
        size_t n = cp_utf8_seq_len(p, avail);
        bool bad = n == 0 || (n == 1 && (p[0] < 0x20 || p[0] == 0x7F)) ||
                   (n == 2 && p[0] == 0xC2 && p[1] < 0xA0) ||
                   (n == 3 && p[0] == 0xEF && p[1] == 0xBF && p[2] >= 0xBE);
        if (bad) {
            sb_put(b, repl, 3);
            n = n ? n : 1;
        } else
            sb_put(b, (const char *)p, n);
        p += n;
        avail -= n;
    }
}

/* Writes already-sanitized text with the five XML-special characters
 * escaped; the result is safe in both element content and attributes. */
static void xml_put(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fputc(s[i], out);
        }
    }
}

/* Sanitizes and escapes arbitrary caller text in one go. */
static void xml_text(FILE *out, sbuf *tmp, const char *s)
{
    tmp->len = 0;
    sanitize(tmp, s);
    if (!tmp->oom)
        xml_put(out, tmp->p, tmp->len);
}

/* Number of code points in valid UTF-8. */
static size_t utf8_count(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

/* Byte length of the first k code points of valid UTF-8. */
static size_t utf8_prefix(const char *s, size_t n, size_t k)
{
    size_t i = 0;
    while (i < n && k > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        k--;
    }
    return i;
}

/*
 * Writes the label for a box pw pixels wide: the whole name if it fits,
 * otherwise a prefix and "..", nothing if fewer than 3 characters fit. The
 * script's fit() applies the same rule after a zoom.
 */
static void put_label(FILE *out, const char *name, size_t len, double pw)
{
    double room = floor((pw - 2 * LABEL_PAD) / CHAR_W);
    if (room < 3)
        return;
    size_t fit = (size_t)room;
    if (utf8_count(name, len) <= fit) {
        xml_put(out, name, len);
        return;
    }
    xml_put(out, name, utf8_prefix(name, len, fit - 2));
    fputs("..", out);
}

/* ---- numbers ------------------------------------------------------------ */

/*
 * The numbers are printed by hand rather than with "%.2f" because the SVG
 * needs '.' as the decimal point whatever LC_NUMERIC the host program set.
 *
 * put_sign_hundredths writes v's '-' if it has one and returns |v| in
 * hundredths, rounded; NaN and infinities count as 0. It clamps first:
 * llround of a value beyond the long long range returns LLONG_MIN, and
 * negating that overflows (found by fuzz_reader on a damaged profile whose
 * child outweighs the root).
 */
static long long put_sign_hundredths(FILE *out, double v)
{
    if (!(v == v) || isinf(v))
        v = 0;
    if (v > 1e15)
        v = 1e15;
    else if (v < -1e15)
        v = -1e15;
    long long h = llround(v * 100.0);
    if (h < 0) {
        fputc('-', out);
        h = -h;
    }
    return h;
}

/* v with two decimals: "12.50". */
static void put_fixed2(FILE *out, double v)
{
    long long h = put_sign_hundredths(out, v);
    fprintf(out, "%lld.%02lld", h / 100, h % 100);
}

/* Like put_fixed2, but "12" for 12.00 and "12.5" for 12.50: shorter files. */
static void put_coord(FILE *out, double v)
{
    long long h = put_sign_hundredths(out, v);
    fprintf(out, "%lld", h / 100);
    if (h % 100 == 0)
        return;
    if (h % 10 == 0)
        fprintf(out, ".%lld", (h % 100) / 10);
    else
        fprintf(out, ".%02lld", h % 100);
}

/* 1234567 -> "1,234,567" */
static void put_grouped(FILE *out, uint64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            fputc(',', out);
        fputc(digits[i], out);
    }
}

/* The value in human units: "1.23 ms", "4.00 MiB", "1,234 samples". */
static void put_value(FILE *out, sbuf *tmp, uint64_t v, const char *unit)
{
    if (unit && strcmp(unit, "ns") == 0) {
        if (v < 1000) {
            fprintf(out, "%" PRIu64 " ns", v);
            return;
        }
        double d = (double)v;
        const char *suffix = " \xC2\xB5s"; /* µs */
        if (v >= 1000000000) {
            d /= 1e9;
            suffix = " s";
        } else if (v >= 1000000) {
            d /= 1e6;
            suffix = " ms";
        } else
            d /= 1e3;
        put_fixed2(out, d);
        fputs(suffix, out);
    } else if (unit && strcmp(unit, "bytes") == 0) {
        static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        if (v < 1024) {
            fprintf(out, "%" PRIu64 " %s", v, v == 1 ? "byte" : "bytes");
            return;
        }
        double d = (double)v / 1024;
        size_t u = 0;
        while (d >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
            d /= 1024;
            u++;
        }
        put_fixed2(out, d);
        fprintf(out, " %s", units[u]);
    } else if (unit && (strcmp(unit, "samples") == 0 || strcmp(unit, "calls") == 0)) {
        put_grouped(out, v);
        bool samples = unit[0] == 's';
        fputs(v == 1 ? (samples ? " sample" : " call") : (samples ? " samples" : " calls"), out);
    } else {
        put_grouped(out, v);
        if (unit && unit[0]) {
            fputc(' ', out);
            xml_text(out, tmp, unit);
        }
    }
}

/* ---- colours ------------------------------------------------------------ */

/* FNV-1a: cheap, and stable across runs and platforms (unlike a pointer). */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    /* final avalanche so names that differ only at the end still differ in
     * every byte used below */
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    return h;
}

/* The box colour: a family per kind, a shade per name. */
static void put_colour(FILE *out, const char *name, int kind)
{
    uint32_t h = name_hash(name);
    unsigned a = h & 0xFF, b = (h >> 8) & 0xFF, c = (h >> 16) & 0xFF;
    unsigned r, g, bl;
    if (kind == 0) { /* Python: warm reds, oranges, yellows */
        r = 205 + a * 50 / 255;
        g = 70 + b * 150 / 255;
        bl = 20 + c * 50 / 255;
    } else if (kind == 1) { /* C / builtin: blues and teals */
        r = 60 + a * 60 / 255;
        g = 140 + b * 80 / 255;
        bl = 190 + c * 55 / 255;
    } else { /* special (root, GC, idle...): greys */
        r = g = bl = 165 + a * 45 / 255;
    }
    fprintf(out, "rgb(%u,%u,%u)", r, g, bl);
}

/* Differential colour: grey when unchanged (within 1%), towards red when
 * NEW is larger, towards blue when smaller; the strength grows with
 * |log2(new/base)| and is full at 4x either way. A stack absent from BASE is
 * full red. */
static void put_diff_colour(FILE *out, const cp_flame_node *n, const cp_flame_base *b)
{
    static const double grey[3] = {225, 225, 225}, red[3] = {225, 45, 45}, blue[3] = {50, 95, 225};
    double t = 1;
    const double *to = red;
    if (b->present && b->value > 0) {
        double ratio = (double)n->total / (double)b->value;
        if (ratio < 1)
            to = blue;
        t = fabs(log2(ratio > 0 ? ratio : 1.0 / 1024)) / 2;
        if (t > 1)
            t = 1;
        if (fabs(ratio - 1) < 0.01)
            t = 0;
    } else if (b->present && n->total == 0)
        t = 0;
    fprintf(out, "rgb(%u,%u,%u)", (unsigned)(grey[0] + (to[0] - grey[0]) * t),
            (unsigned)(grey[1] + (to[1] - grey[1]) * t),
            (unsigned)(grey[2] + (to[2] - grey[2]) * t));
}

/* ---- the script --------------------------------------------------------- */

/*
 * Everything interactive. The C side prints a CP object before this with
 * the geometry (xpad, plotw, charw, pad), the root total and the highlight
 * colour. Written for plain ES5-level DOM so it runs in any current browser
 * straight from a file:// URL. Must never contain the CDATA terminator.
 */
static const char script_js[] =
    "(function () {\n"
    "  'use strict';\n"
    "  var frames = [];\n"
    "  var zoomed = null;\n"
    "  var details = document.getElementById('details');\n"
    "  var matched = document.getElementById('matched');\n"
    "  var reset = document.getElementById('reset');\n"
    "  var group = document.getElementById('frames');\n"
    "\n"
    "  /* Collect the frames once; the tooltip's first line is the full name. */\n"
    "  var gs = group.getElementsByTagName('g');\n"
    "  for (var i = 0; i < gs.length; i++) {\n"
    "    var g = gs[i];\n"
    "    var info = g.getElementsByTagName('title')[0].textContent;\n"
    "    var nl = info.indexOf('\\n');\n"
    "    var f = {\n"
    "      g: g,\n"
    "      rect: g.getElementsByTagName('rect')[0],\n"
    "      text: g.getElementsByTagName('text')[0],\n"
    "      x: Number(g.getAttribute('data-x')),\n"
    "      w: Number(g.getAttribute('data-w')),\n"
    "      d: Number(g.getAttribute('data-d')),\n"
    "      name: nl < 0 ? info : info.slice(0, nl),\n"
    "      info: info.split('\\n').join('  |  ')\n"
    "    };\n"
    "    f.fill = f.rect.getAttribute('fill');\n"
    "    g.setAttribute('data-i', String(i));\n"
    "    frames.push(f);\n"
    "  }\n"
    "\n"
    "  function frameOf(node) {\n"
    "    while (node && node !== group) {\n"
    "      if (node.getAttribute && node.getAttribute('data-i') !== null)\n"
    "        return frames[Number(node.getAttribute('data-i'))];\n"
    "      node = node.parentNode;\n"
    "    }\n"
    "    return null;\n"
    "  }\n"
    "\n"
    "  /* Same rule as the C side: whole name, or a prefix and '..', or\n"
    "     nothing when fewer than three characters fit. */\n"
    "  function fit(name, width) {\n"
    "    var room = Math.floor((width - 2 * CP.pad) / CP.charw);\n"
    "    if (room < 3) return '';\n"
    "    var chars = Array.from(name);\n"
    "    if (chars.length <= room) return name;\n"
    "    return chars.slice(0, room - 2).join('') + '..';\n"
    "  }\n"
    "\n"
    "  function place(f, px, pw) {\n"
    "    f.g.style.display = '';\n"
    "    f.rect.setAttribute('x', px.toFixed(2));\n"
    "    f.rect.setAttribute('width', pw.toFixed(2));\n"
    "    f.text.setAttribute('x', (px + CP.pad).toFixed(2));\n"
    "    f.text.textContent = fit(f.name, pw);\n"
    "  }\n"
    "\n"
    "  /* Zoom on z: it and its descendants are rescaled to fill the width,\n"
    "     its ancestors span the full width (dimmed), the rest is hidden.\n"
    "     Frames nest by interval, so containment tells ancestors apart. */\n"
    "  function zoom(z) {\n"
    "    if (!(z.w > 0)) return;\n"
    "    var scale = CP.plotw / z.w;\n"
    "    for (var i = 0; i < frames.length; i++) {\n"
    "      var f = frames[i];\n"
    "      if (f.d < z.d && f.x <= z.x && f.x + f.w >= z.x + z.w) {\n"
    "        place(f, CP.xpad, CP.plotw);\n"
    "        f.g.setAttribute('class', 'f anc');\n"
    "      } else if (f.d >= z.d && f.x >= z.x && f.x + f.w <= z.x + z.w) {\n"
    "        place(f, CP.xpad + (f.x - z.x) * scale, f.w * scale);\n"
    "        f.g.setAttribute('class', 'f');\n"
    "      } else {\n"
    "        f.g.style.display = 'none';\n"
    "      }\n"
    "    }\n"
    "    zoomed = z.d > 0 ? z : null;\n"
    "    reset.style.display = zoomed ? '' : 'none';\n"
    "  }\n"
    "\n"
    "  function unzoom() {\n"
    "    if (frames.length) zoom(frames[0]);\n"
    "  }\n"
    "\n"
    "  function clearSearch() {\n"
    "    for (var i = 0; i < frames.length; i++)\n"
    "      frames[i].rect.setAttribute('fill', frames[i].fill);\n"
    "    matched.textContent = '';\n"
    "  }\n"
    "\n"
    "  var lastTerm = '';\n"
    "  function search() {\n"
    "    var term = window.prompt('Search frames (regular expression; empty clears):', lastTerm);\n"
    "    if (term === null) return;\n"
    "    clearSearch();\n"
    "    lastTerm = term;\n"
    "    if (term === '') return;\n"
    "    var re;\n"
    "    try {\n"
    "      re = new RegExp(term);\n"
    "    } catch (e) {\n"
    "      matched.textContent = 'Bad regular expression';\n"
    "      return;\n"
    "    }\n"
    "    var hits = [];\n"
    "    for (var i = 0; i < frames.length; i++) {\n"
    "      if (re.test(frames[i].name)) {\n"
    "        frames[i].rect.setAttribute('fill', CP.highlight);\n"
    "        hits.push(frames[i]);\n"
    "      }\n"
    "    }\n"
    "    /* Frames either nest or are disjoint. Sorted by start, widest first,\n"
    "       a hit starting inside the last counted one lies within it, so\n"
    "       skipping it counts recursive and nested matches once. */\n"
    "    hits.sort(function (a, b) { return a.x - b.x || b.w - a.w; });\n"
    "    var sum = 0, end = -1;\n"
    "    for (var j = 0; j < hits.length; j++) {\n"
    "      if (hits[j].x >= end) {\n"
    "        sum += hits[j].w;\n"
    "        end = hits[j].x + hits[j].w;\n"
    "      }\n"
    "    }\n"
    "    var pct = CP.total > 0 ? (100 * sum) / CP.total : 0;\n"
    "    matched.textContent = 'Matched: ' + pct.toFixed(1) + '%';\n"
    "  }\n"
    "\n"
    "  group.addEventListener('click', function (e) {\n"
    "    var f = frameOf(e.target);\n"
    "    if (f) zoom(f);\n"
    "  });\n"
    "  group.addEventListener('mouseover', function (e) {\n"
    "    var f = frameOf(e.target);\n"
    "    if (f) details.textContent = f.info;\n"
    "  });\n"
    "  group.addEventListener('mouseout', function () {\n"
    "    details.textContent = ' ';\n"
    "  });\n"
    "  reset.addEventListener('click', unzoom);\n"
    "  document.getElementById('search').addEventListener('click', search);\n"
    "  window.addEventListener('keydown', function (e) {\n"
    "    var key = e.key || '';\n"
    "    if (((e.ctrlKey || e.metaKey) && key.toLowerCase() === 'f') ||\n"
    "        (key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey)) {\n"
    "      e.preventDefault();\n"
    "      search();\n"
    "    } else if (key === 'Escape') {\n"
    "      unzoom();\n"
    "      clearSearch();\n"
    "    }\n"
    "  });\n"
    "})();\n";

static const char style_css[] =
    "text { font-family: Verdana, 'DejaVu Sans', sans-serif; font-size: 12px; fill: #000; }\n"
    "#title { text-anchor: middle; font-size: 17px; }\n"
    "#subtitle { text-anchor: middle; fill: #555; }\n"
    "#matched, #search { text-anchor: end; }\n"
    ".ctl { cursor: pointer; fill: #1a4f9c; }\n"
    ".ctl:hover { text-decoration: underline; }\n"
    "#frames g { cursor: pointer; }\n"
    "#frames g:hover rect { stroke: #000; stroke-width: 0.7; }\n"
    "#frames text { pointer-events: none; }\n"
    ".anc rect { fill-opacity: 0.55; }\n";

/* ---- layout ------------------------------------------------------------- */

typedef struct child_ref {
    const char *name;
    uint32_t parent;
    uint32_t index;
} child_ref;

/* Children grouped by parent, then by name (bytewise, as flamegraphs sort),
 * then by index so equal names still give one fixed order. */
static int child_cmp(const void *pa, const void *pb)
{
    const child_ref *a = pa, *b = pb;
    if (a->parent != b->parent)
        return a->parent < b->parent ? -1 : 1;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

typedef struct layout {
    uint32_t *first;      /* n+1: children of i are kids[first[i] .. first[i+1]) */
    uint32_t *kids;       /* n: child indices, sorted per parent */
    uint32_t *depth;      /* n */
    uint64_t *xv;         /* n: left offset, value units */
    uint64_t *wv;         /* n: width, value units, clamped into the parent */
    unsigned char *shown; /* n */
    uint32_t max_depth;   /* deepest drawn row */
    size_t hidden;        /* nodes not drawn */
} layout;

static void layout_free(layout *l)
{
    free(l->first);
    free(l->kids);
    free(l->depth);
    free(l->xv);
    free(l->wv);
    free(l->shown);
}

static int layout_build(layout *l, const cp_flame_node *nodes, size_t n, double scale,
                        double min_px)
{
    memset(l, 0, sizeof *l);
    l->first = calloc(n + 1, sizeof *l->first);
    l->kids = calloc(n, sizeof *l->kids);
    l->depth = calloc(n, sizeof *l->depth);
    l->xv = calloc(n, sizeof *l->xv);
    l->wv = calloc(n, sizeof *l->wv);
    l->shown = calloc(n, 1);
    child_ref *refs = calloc(n, sizeof *refs);
    if (!l->first || !l->kids || !l->depth || !l->xv || !l->wv || !l->shown || !refs) {
        free(refs);
        return -1;
    }
    /* Sort a copy: the caller's array stays as it was. */
    for (size_t i = 1; i < n; i++)
        refs[i - 1] = (child_ref){nodes[i].name ? nodes[i].name : "", nodes[i].parent, (uint32_t)i};
    qsort(refs, n - 1, sizeof *refs, child_cmp);
    for (size_t i = 0; i + 1 < n; i++) {
        l->kids[i] = refs[i].index;
        l->first[refs[i].parent + 1]++;
    }
    free(refs);
    for (size_t i = 0; i < n; i++)
        l->first[i + 1] += l->first[i];

    /* Parents precede children, so one pass in index order sees every
     * parent placed before its children are laid out inside it. */
    l->wv[0] = nodes[0].total;
    l->shown[0] = 1;
    for (size_t p = 0; p < n; p++) {
        uint64_t x = l->xv[p], end = l->xv[p] + l->wv[p];
        for (uint32_t k = l->first[p]; k < l->first[p + 1]; k++) {
            uint32_t c = l->kids[k];
            /* Inconsistent totals (children summing to more than the
             * parent) are clipped so boxes never spill out of the parent. */
            uint64_t w = nodes[c].total < end - x ? nodes[c].total : end - x;
            l->xv[c] = x;
            l->wv[c] = w;
            l->depth[c] = l->depth[p] + 1;
            x += w;
            l->shown[c] = l->shown[p] && w > 0 && (double)w * scale >= min_px;
            if (!l->shown[c])
                l->hidden++;
            else if (l->depth[c] > l->max_depth)
                l->max_depth = l->depth[c];
        }
    }
    return 0;
}

/* ---- output ------------------------------------------------------------- */

static void put_header(FILE *out, sbuf *tmp, unsigned width, unsigned height,
                       const cp_svg_options *opt, int top)
{
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n", out);
    fprintf(out,
            "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" "
            "height=\"%u\" viewBox=\"0 0 %u %u\">\n",
            width, height, width, height);
    fputs("<defs><linearGradient id=\"background\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">"
          "<stop offset=\"5%\" stop-color=\"#eeeeee\"/>"
          "<stop offset=\"95%\" stop-color=\"#eeeeb0\"/></linearGradient></defs>\n",
          out);
    fprintf(out, "<style type=\"text/css\"><![CDATA[\n%s]]></style>\n", style_css);
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"url(#background)\"/>\n",
            width, height);
    fprintf(out, "<text id=\"title\" x=\"%u\" y=\"24\">", width / 2);
    xml_text(out, tmp, opt->title ? opt->title : "Flame Graph");
    fputs("</text>\n", out);
    if (opt->subtitle) {
        fprintf(out, "<text id=\"subtitle\" x=\"%u\" y=\"%d\">", width / 2, top - 14);
        xml_text(out, tmp, opt->subtitle);
        fputs("</text>\n", out);
    }
}

/* The n == 0 document: same frame, a message instead of frames. */
static int write_empty(FILE *out, const cp_svg_options *opt, unsigned width, sbuf *tmp, char *err,
                       size_t errlen)
{
    int top = opt->subtitle ? TOP_SUB : TOP_PLAIN;
    unsigned height = (unsigned)top + 60;
    put_header(out, tmp, width, height, opt, top);
    fprintf(out,
            "<text id=\"nodata\" x=\"%u\" y=\"%d\" text-anchor=\"middle\" "
            "font-size=\"14\">no data</text>\n</svg>\n",
            width / 2, top + 30);
    return cp_flush_checked(out, "svg: write error", err, errlen);
}

int cp_svg_write(FILE *out, const cp_flame_node *nodes, size_t n, const cp_svg_options *opt,
                 char *err, size_t errlen)
{
    return cp_svg_write_diff(out, nodes, n, NULL, opt, err, errlen);
}

int cp_svg_write_diff(FILE *out, const cp_flame_node *nodes, size_t n, const cp_flame_base *base,
                      const cp_svg_options *opt, char *err, size_t errlen)
{
    static const cp_svg_options defaults = {0};
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!out) {
        snprintf(err, errlen, "svg: no output stream");
        return -1;
    }
    if (!opt)
        opt = &defaults;
    if (n > 0 && !nodes) {
        snprintf(err, errlen, "svg: no nodes");
        return -1;
    }
    if (n > UINT32_MAX) {
        snprintf(err, errlen, "svg: too many nodes (%zu)", n);
        return -1;
    }
    /* Node 0's own parent field is not looked at: it is the root whatever
     * it says. Everyone else must point backwards. */
    for (size_t i = 1; i < n; i++) {
        if (nodes[i].parent >= i) {
            snprintf(err, errlen, "bad tree: node %zu has parent %" PRIu32, i, nodes[i].parent);
            return -1;
        }
    }

    unsigned width = opt->width ? opt->width : 1200;
    if (width < 2 * PAD_X + 10)
        width = (unsigned)(2 * PAD_X + 10);
    double min_px = opt->min_width_px > 0 ? opt->min_width_px : 0.1;
    double plot_w = width - 2 * PAD_X;
    sbuf tmp = {0};  /* the current frame's name, sanitized */
    sbuf tmp2 = {0}; /* scratch for other text */

    if (n == 0) {
        int rc = write_empty(out, opt, width, &tmp, err, errlen);
        free(tmp.p);
        return rc;
    }

    uint64_t total = nodes[0].total;
    double scale = total ? plot_w / (double)total : 0;
    layout l;
    uint32_t *stack = NULL;
    if (layout_build(&l, nodes, n, scale, min_px) != 0 || !(stack = malloc(n * sizeof *stack))) {
        layout_free(&l);
        snprintf(err, errlen, "svg: out of memory");
        return -1;
    }

    int top = opt->subtitle ? TOP_SUB : TOP_PLAIN;
    unsigned rows = l.max_depth + 1;
    unsigned height = (unsigned)top + rows * FRAME_H + BOTTOM;
    put_header(out, &tmp, width, height, opt, top);
    fprintf(out, "<!-- %zu tiny frame%s hidden (narrower than ", l.hidden,
            l.hidden == 1 ? "" : "s");
    put_coord(out, min_px);
    fputs(" px) -->\n", out);
    fputs("<text id=\"reset\" class=\"ctl\" x=\"10\" y=\"24\" style=\"display:none\">Reset "
          "Zoom</text>\n",
          out);
    fputs("<text id=\"search\" class=\"ctl\" x=\"", out);
    put_coord(out, width - PAD_X);
    fputs("\" y=\"24\">Search</text>\n<text id=\"matched\" x=\"", out);
    put_coord(out, width - PAD_X);
    fprintf(out, "\" y=\"%u\"></text>\n", height - 10);
    fprintf(out, "<text id=\"details\" x=\"10\" y=\"%u\"> </text>\n", height - 10);
    fputs("<g id=\"frames\">\n", out);

    /* Depth-first in sorted order, so the document itself (not only the
     * picture) is the same for the same profile whatever order the caller
     * listed siblings in. */
    size_t sp = 0;
    stack[sp++] = 0;
    while (sp > 0 && !ferror(out)) {
        uint32_t i = stack[--sp];
        const cp_flame_node *node = &nodes[i];
        double px = PAD_X + (double)l.xv[i] * scale;
        double pw = i == 0 ? plot_w : (double)l.wv[i] * scale;
        unsigned row = opt->inverted ? l.depth[i] : l.max_depth - l.depth[i];
        unsigned y = (unsigned)top + row * FRAME_H;

        tmp.len = 0;
        sanitize(&tmp, i == 0 && !node->name ? "all" : node->name);
        if (tmp.oom)
            break;

        fprintf(out,
                "<g class=\"f\" data-x=\"%" PRIu64 "\" data-w=\"%" PRIu64 "\" data-d=\"%" PRIu32
                "\"><title>",
                l.xv[i], i == 0 ? total : l.wv[i], l.depth[i]);
        xml_put(out, tmp.p, tmp.len);
        fputc('\n', out);
        if (node->detail && node->detail[0]) {
            xml_text(out, &tmp2, node->detail);
            fputc('\n', out);
        }
        put_value(out, &tmp2, node->total, opt->unit);
        fputs(" (", out);
        put_fixed2(out, total ? (double)node->total * 100.0 / (double)total : 0.0);
        fputs("%)", out);
        if (base) {
            const cp_flame_base *b = &base[i];
            if (!b->present)
                fputs("\nnot in BASE", out);
            else {
                fputs("\nBASE: ", out);
                put_value(out, &tmp2, b->value, opt->unit);
                if (b->value > 0) {
                    double ch = ((double)node->total - (double)b->value) * 100.0 / (double)b->value;
                    fputs(ch >= 0 ? " (+" : " (-", out);
                    put_fixed2(out, fabs(ch));
                    fputs("%)", out);
                }
            }
        }
        if (i == 0 && l.hidden > 0)
            fprintf(out, "\n%zu tiny frame%s hidden", l.hidden, l.hidden == 1 ? "" : "s");
        fputs("</title><rect x=\"", out);
        put_coord(out, px);
        fprintf(out, "\" y=\"%u\" width=\"", y);
        put_coord(out, pw);
        fprintf(out, "\" height=\"%d\" rx=\"2\" ry=\"2\" fill=\"", RECT_H);
        if (base)
            put_diff_colour(out, node, &base[i]);
        else
            put_colour(out, node->name, node->kind);
        fputs("\"/><text x=\"", out);
        put_coord(out, px + LABEL_PAD);
        fputs("\" y=\"", out);
        put_coord(out, y + 11.5);
        fputs("\">", out);
        put_label(out, tmp.p, tmp.len, pw);
        fputs("</text></g>\n", out);

        /* push shown children in reverse so the leftmost is emitted first */
        for (uint32_t k = l.first[i + 1]; k > l.first[i]; k--) {
            uint32_t c = l.kids[k - 1];
            if (l.shown[c])
                stack[sp++] = c;
        }
    }
    bool oom = tmp.oom || tmp2.oom;
    free(tmp.p);
    free(tmp2.p);
    free(stack);
    layout_free(&l);
    if (oom) {
        snprintf(err, errlen, "svg: out of memory");
        return -1;
    }
    fputs("</g>\n", out);

    fputs("<script type=\"text/ecmascript\"><![CDATA[\n", out);
    /* numbers through put_coord: JavaScript needs '.' whatever the locale */
    fputs("var CP = { xpad: ", out);
    put_coord(out, PAD_X);
    fputs(", plotw: ", out);
    put_coord(out, plot_w);
    fputs(", charw: ", out);
    put_coord(out, CHAR_W);
    fputs(", pad: ", out);
    put_coord(out, LABEL_PAD);
    fprintf(out, ", total: %" PRIu64 ", highlight: '%s' };\n", total, HIGHLIGHT);
    fputs(script_js, out);
    fputs("]]></script>\n</svg>\n", out);
    return cp_flush_checked(out, "svg: write error", err, errlen);
}
