/* test_svg.c — the SVG flamegraph writer (src/report/svg.c). */
#include "report/svg.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LAMBDA "<lambda> & \"x\""

/*
 * The hand-made tree, deliberately not in sorted order: "work" comes before
 * "<lambda>..." in the input but must be drawn to its right.
 *
 *   all 100 ─ main 100 ┬ work 75 ┬ sum 50
 *                      │         └ tiny 1
 *                      └ <lambda> & "x" 25
 */
static const cp_flame_node tree[] = {
    {"all", NULL, UINT32_MAX, 100, 2}, {"main", "app.py:1", 0, 100, 0},
    {"work", "app.py:10", 1, 75, 0},   {LAMBDA, "a<b>.py:3", 1, 25, 0},
    {"sum", NULL, 2, 50, 1},           {"tiny", "t.py:'9'", 2, 1, 0},
};
#define TREE_N (sizeof tree / sizeof tree[0])

/* width 420 leaves a 400 px plot: 1 unit of value = 4 px */
static const cp_svg_options opts = {"test & <title>", "sub", "samples", 420, 0, false};

static char *render(const cp_flame_node *nodes, size_t n, const cp_svg_options *opt, int *rc,
                    char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    *rc = cp_svg_write(f, nodes, n, opt, err, errlen);
    fclose(f);
    return buf;
}

static char *render_ok(const cp_flame_node *nodes, size_t n, const cp_svg_options *opt)
{
    char err[256] = "";
    int rc;
    char *svg = render(nodes, n, opt, &rc, err, sizeof err);
    ck_assert_msg(rc == 0, "cp_svg_write failed: %s", err);
    return svg;
}

/* Skips a construct starting at p that ends with `end`; NULL if unterminated. */
static const char *skip_past(const char *p, const char *end)
{
    const char *q = strstr(p, end);
    return q ? q + strlen(end) : NULL;
}

/*
 * A structural well-formedness check: tags balance and nest, there is one
 * root element, and every '&' outside CDATA starts a known entity. Not a
 * full XML parser, but it catches what a writer bug would produce.
 */
static void check_well_formed(const char *doc)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = doc;
    while (*p) {
        if (*p == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
            bool ok = false;
            for (size_t i = 0; i < 5; i++)
                ok |= strncmp(p, ents[i], strlen(ents[i])) == 0;
            ck_assert_msg(ok, "bare '&' at: %.30s", p);
            p++;
            continue;
        }
        if (*p == '>')
            ck_abort_msg("bare '>' at: %.30s", p);
        if (*p != '<') {
            p++;
            continue;
        }
        if (strncmp(p, "<?", 2) == 0)
            p = skip_past(p, "?>");
        else if (strncmp(p, "<!--", 4) == 0)
            p = skip_past(p, "-->");
        else if (strncmp(p, "<![CDATA[", 9) == 0)
            p = skip_past(p, "]]>");
        else if (p[1] == '/') {
            size_t n = strcspn(p + 2, ">");
            ck_assert_int_gt(depth, 0);
            depth--;
            ck_assert_msg(strlen(stack[depth]) == n && strncmp(stack[depth], p + 2, n) == 0,
                          "</%.*s> closes <%s>", (int)n, p + 2, stack[depth]);
            p += n + 3;
        } else {
            size_t n = strcspn(p + 1, " \t\n/>");
            ck_assert_uint_lt(n, sizeof stack[0]);
            /* attribute values may not contain '<' or a bare '&' either */
            const char *end = p + 1;
            bool in_quote = false;
            while (*end && (in_quote || *end != '>')) {
                if (*end == '"')
                    in_quote = !in_quote;
                ck_assert_msg(*end != '<', "'<' inside a tag at: %.40s", p);
                end++;
            }
            ck_assert_msg(*end == '>', "unterminated tag at: %.40s", p);
            if (end[-1] != '/') {
                if (depth == 0)
                    roots++;
                ck_assert_int_lt(depth, 64);
                memcpy(stack[depth], p + 1, n);
                stack[depth][n] = '\0';
                depth++;
            } else if (depth == 0)
                roots++;
            p = end + 1;
        }
        ck_assert_msg(p != NULL, "unterminated construct");
    }
    ck_assert_int_eq(depth, 0);
    ck_assert_int_eq(roots, 1);
}

/* Runs xmllint on the document when it is installed; skipped otherwise. */
static void check_xmllint(const char *doc)
{
    if (access("/usr/bin/xmllint", X_OK) != 0)
        return;
    char path[] = "/tmp/test_svg_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(doc, f);
    fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "/usr/bin/xmllint --noout %s", path);
    int rc = system(cmd);
    unlink(path);
    ck_assert_msg(rc == 0, "xmllint rejected the document");
}

/* The <g> of the frame whose (escaped) name is `name`, or NULL. */
static const char *frame_of(const char *doc, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "<title>%s\n", name);
    const char *t = strstr(doc, key);
    if (!t)
        return NULL;
    ck_assert_ptr_null(strstr(t + 1, key)); /* exactly one such frame */
    return t;
}

/* The text of that frame's <title>, copied into buf. */
static void title_of(const char *doc, const char *name, char *buf, size_t len)
{
    const char *t = frame_of(doc, name);
    ck_assert_msg(t != NULL, "no frame %s", name);
    t += strlen("<title>");
    size_t n = strstr(t, "</title>") - t;
    ck_assert_uint_lt(n, len);
    memcpy(buf, t, n);
    buf[n] = '\0';
}

/* A numeric attribute of the frame's <rect>. */
static double rect_attr(const char *doc, const char *name, const char *attr)
{
    const char *t = frame_of(doc, name);
    ck_assert_msg(t != NULL, "no frame %s", name);
    const char *r = strstr(t, "<rect ");
    ck_assert_ptr_nonnull(r);
    char key[32];
    snprintf(key, sizeof key, " %s=\"", attr);
    const char *a = strstr(r, key);
    ck_assert_ptr_nonnull(a);
    ck_assert(a < strstr(r, "/>"));
    return strtod(a + strlen(key), NULL);
}

START_TEST(test_well_formed)
{
    char *svg = render_ok(tree, TREE_N, &opts);
    ck_assert(strncmp(svg, "<?xml ", 6) == 0);
    ck_assert_ptr_nonnull(strstr(svg, "<svg "));
    ck_assert_ptr_nonnull(strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\""));
    ck_assert_ptr_nonnull(strstr(svg, "<script"));
    ck_assert_ptr_nonnull(strstr(svg, ">Reset Zoom<"));
    ck_assert_ptr_nonnull(strstr(svg, ">Search<"));
    ck_assert_ptr_nonnull(strstr(svg, "id=\"details\""));
    ck_assert_ptr_nonnull(strstr(svg, ">test &amp; &lt;title&gt;</text>"));
    ck_assert_ptr_nonnull(strstr(svg, ">sub</text>"));
    /* no external resources */
    ck_assert_ptr_null(strstr(svg, "href"));
    ck_assert_ptr_null(strstr(svg, "http://www.w3.org/1999/xlink"));
    check_well_formed(svg);
    check_xmllint(svg);
    free(svg);
}
END_TEST

START_TEST(test_titles_and_percentages)
{
    char *svg = render_ok(tree, TREE_N, &opts);
    char t[256];
    title_of(svg, "all", t, sizeof t);
    ck_assert_str_eq(t, "all\n100 samples (100.00%)");
    title_of(svg, "main", t, sizeof t);
    ck_assert_str_eq(t, "main\napp.py:1\n100 samples (100.00%)");
    title_of(svg, "work", t, sizeof t);
    ck_assert_str_eq(t, "work\napp.py:10\n75 samples (75.00%)");
    title_of(svg, "&lt;lambda&gt; &amp; &quot;x&quot;", t, sizeof t);
    ck_assert_str_eq(t, "&lt;lambda&gt; &amp; &quot;x&quot;\na&lt;b&gt;.py:3\n25 samples (25.00%)");
    title_of(svg, "sum", t, sizeof t);
    ck_assert_str_eq(t, "sum\n50 samples (50.00%)");
    title_of(svg, "tiny", t, sizeof t);
    ck_assert_str_eq(t, "tiny\nt.py:&#39;9&#39;\n1 sample (1.00%)");
    free(svg);
}
END_TEST

START_TEST(test_widths_proportional)
{
    char *svg = render_ok(tree, TREE_N, &opts);
    ck_assert_double_eq_tol(rect_attr(svg, "all", "width"), 400, 1e-9);
    ck_assert_double_eq_tol(rect_attr(svg, "main", "width"), 400, 1e-9);
    ck_assert_double_eq_tol(rect_attr(svg, "work", "width"), 300, 1e-9);
    ck_assert_double_eq_tol(rect_attr(svg, "&lt;lambda&gt; &amp; &quot;x&quot;", "width"), 100,
                            1e-9);
    ck_assert_double_eq_tol(rect_attr(svg, "sum", "width"), 200, 1e-9);
    ck_assert_double_eq_tol(rect_attr(svg, "tiny", "width"), 4, 1e-9);
    /* siblings sorted by name: '<' sorts before 'w' */
    ck_assert_double_eq_tol(rect_attr(svg, "&lt;lambda&gt; &amp; &quot;x&quot;", "x"), 10, 1e-9);
    ck_assert_double_eq_tol(rect_attr(svg, "work", "x"), 110, 1e-9);
    ck_assert_double_eq_tol(rect_attr(svg, "sum", "x"), 110, 1e-9);
    ck_assert_double_eq_tol(rect_attr(svg, "tiny", "x"), 310, 1e-9);
    /* the script gets positions in value units */
    const char *work = frame_of(svg, "work");
    const char *g = work;
    while (strncmp(g, "<g ", 3) != 0)
        g--;
    ck_assert(strncmp(g, "<g class=\"f\" data-x=\"25\" data-w=\"75\" data-d=\"2\">", 47) == 0);
    free(svg);
}
END_TEST

START_TEST(test_escaping)
{
    const cp_flame_node hostile[] = {
        {"all", NULL, UINT32_MAX, 10, 2},
        {"</title></g><script>alert(1)</script>", "x]]>y", 0, 4, 0},
        {"bad\xff\x01name\xed\xa0\x80!", "it's", 0, 3, 1},
        {"caf\xc3\xa9 \xe2\x82\xac", "\xf0\x9f\x90\x8d.py:1", 0, 3, 0},
    };
    cp_svg_options o = opts;
    o.title = "a\"b'c\x7f";
    o.unit = "<u>";
    char *svg = render_ok(hostile, 4, &o);
    ck_assert_ptr_null(strstr(svg, "<lambda>"));
    ck_assert_ptr_null(strstr(svg, "alert(1)</script>"));
    ck_assert_ptr_nonnull(
        strstr(svg, "&lt;/title&gt;&lt;/g&gt;&lt;script&gt;alert(1)&lt;/script&gt;\nx]]&gt;y\n"));
    /* invalid bytes, a control character and an encoded surrogate become U+FFFD */
    ck_assert_ptr_nonnull(
        strstr(svg, "<title>bad\xEF\xBF\xBD\xEF\xBF\xBDname\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD!\n"
                    "it&#39;s\n3 &lt;u&gt; (30.00%)</title>"));
    /* valid UTF-8 passes through */
    ck_assert_ptr_nonnull(strstr(svg, "<title>caf\xc3\xa9 \xe2\x82\xac\n\xf0\x9f\x90\x8d.py:1\n"));
    ck_assert_ptr_nonnull(strstr(svg, ">a&quot;b&#39;c\xEF\xBF\xBD</text>"));
    check_well_formed(svg);
    check_xmllint(svg);
    free(svg);

    /* the escaped LAMBDA from the main tree, label included: 100 px hold
     * 13 characters, so the label is cut (on characters, before escaping) */
    svg = render_ok(tree, TREE_N, &opts);
    ck_assert_ptr_null(strstr(svg, LAMBDA));
    ck_assert_ptr_nonnull(strstr(svg, ">&lt;lambda&gt; &amp; ..</text>"));
    o = opts;
    o.width = 1020; /* 1000 px plot: the lambda box is 250 px wide */
    free(svg);
    svg = render_ok(tree, TREE_N, &o);
    ck_assert_ptr_nonnull(strstr(svg, ">&lt;lambda&gt; &amp; &quot;x&quot;</text>"));
    free(svg);
}
END_TEST

START_TEST(test_tiny_frames_hidden)
{
    cp_svg_options o = opts;
    o.min_width_px = 5; /* "tiny" is 4 px wide */
    char *svg = render_ok(tree, TREE_N, &o);
    ck_assert_ptr_null(frame_of(svg, "tiny"));
    ck_assert_ptr_nonnull(frame_of(svg, "sum"));
    ck_assert_ptr_nonnull(strstr(svg, "<!-- 1 tiny frame hidden"));
    char t[256];
    title_of(svg, "all", t, sizeof t);
    ck_assert_str_eq(t, "all\n100 samples (100.00%)\n1 tiny frame hidden");
    check_well_formed(svg);
    free(svg);

    /* everything narrower than 250 px goes, and with it its children */
    o.min_width_px = 250;
    svg = render_ok(tree, TREE_N, &o);
    ck_assert_ptr_nonnull(frame_of(svg, "work"));
    ck_assert_ptr_null(frame_of(svg, "sum"));
    ck_assert_ptr_null(frame_of(svg, "&lt;lambda&gt; &amp; &quot;x&quot;"));
    ck_assert_ptr_nonnull(strstr(svg, "<!-- 3 tiny frames hidden"));
    free(svg);
}
END_TEST

START_TEST(test_deterministic)
{
    char *a = render_ok(tree, TREE_N, &opts);
    char *b = render_ok(tree, TREE_N, &opts);
    ck_assert_str_eq(a, b);

    /* the same tree with siblings listed in another order: same bytes */
    const cp_flame_node shuffled[] = {
        {"all", NULL, UINT32_MAX, 100, 2}, {"main", "app.py:1", 0, 100, 0},
        {LAMBDA, "a<b>.py:3", 1, 25, 0},   {"work", "app.py:10", 1, 75, 0},
        {"tiny", "t.py:'9'", 3, 1, 0},     {"sum", NULL, 3, 50, 1},
    };
    char *c = render_ok(shuffled, TREE_N, &opts);
    ck_assert_str_eq(a, c);

    free(a);
    free(b);
    free(c);
}
END_TEST

/* The fill colour of the n-th <rect> in the document as r, g, b. */
static void nth_fill(const char *doc, int n, unsigned rgb[3])
{
    const char *r = doc;
    for (int i = 0; i <= n; i++) {
        r = strstr(r + 1, "<rect x=");
        ck_assert_ptr_nonnull(r);
    }
    r = strstr(r, "fill=\"rgb(");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(sscanf(r, "fill=\"rgb(%u,%u,%u)", &rgb[0], &rgb[1], &rgb[2]), 3);
}

START_TEST(test_colours)
{
    /* frames 1..4 in document order: fib(python) fib(python) len(C) len(C) */
    const cp_flame_node nodes[] = {
        {"all", NULL, UINT32_MAX, 100, 2}, {"fib", NULL, 0, 60, 0}, {"fib", NULL, 1, 30, 0},
        {"len", NULL, 2, 10, 1},           {"zip", NULL, 0, 40, 1},
    };
    char *svg = render_ok(nodes, 5, &opts);
    unsigned root[3], fib1[3], fib2[3], len[3], zip[3];
    /* rect 0 is the background */
    nth_fill(svg, 1, root);
    nth_fill(svg, 2, fib1);
    nth_fill(svg, 3, fib2);
    nth_fill(svg, 4, len);
    nth_fill(svg, 5, zip);
    ck_assert(root[0] == root[1] && root[1] == root[2]); /* special: grey */
    ck_assert(memcmp(fib1, fib2, sizeof fib1) == 0);     /* same name, same colour */
    ck_assert(fib1[0] >= 200 && fib1[0] > fib1[2]);      /* python: warm */
    ck_assert(len[2] >= 190 && len[2] > len[0]);         /* C: blue/teal */
    ck_assert(zip[2] >= 190 && zip[2] > zip[0]);
    ck_assert(memcmp(len, zip, sizeof len) != 0); /* different names, different shades */
    free(svg);
}
END_TEST

START_TEST(test_input_untouched)
{
    cp_flame_node copy[TREE_N];
    memcpy(copy, tree, sizeof copy);
    char *svg = render_ok(copy, TREE_N, &opts);
    ck_assert(memcmp(copy, tree, sizeof copy) == 0);
    free(svg);
}
END_TEST

START_TEST(test_inverted)
{
    cp_svg_options o = opts;
    char *flame = render_ok(tree, TREE_N, &o);
    o.inverted = true;
    char *icicle = render_ok(tree, TREE_N, &o);
    double fr = rect_attr(flame, "all", "y"), fm = rect_attr(flame, "main", "y"),
           fs = rect_attr(flame, "sum", "y");
    double ir = rect_attr(icicle, "all", "y"), im = rect_attr(icicle, "main", "y"),
           is = rect_attr(icicle, "sum", "y");
    ck_assert(fr > fm && fm > fs); /* flame: root at the bottom */
    ck_assert(ir < im && im < is); /* icicle: root on top */
    ck_assert_double_eq_tol(fr - fm, 16, 1e-9);
    ck_assert_double_eq_tol(im - ir, 16, 1e-9);
    ck_assert_double_eq(fs, ir); /* the same rows, reversed */
    check_well_formed(icicle);
    free(flame);
    free(icicle);
}
END_TEST

START_TEST(test_units)
{
    cp_flame_node nodes[] = {
        {"all", NULL, UINT32_MAX, 2500000000ull, 2},
        {"a", NULL, 0, 1500000, 0},
        {"b", NULL, 0, 2500, 0},
        {"c", NULL, 0, 999, 0},
    };
    cp_svg_options o = opts;
    o.unit = "ns";
    o.min_width_px = 1e-9;
    char *svg = render_ok(nodes, 4, &o);
    char t[256];
    title_of(svg, "all", t, sizeof t);
    ck_assert_str_eq(t, "all\n2.50 s (100.00%)");
    title_of(svg, "a", t, sizeof t);
    ck_assert_str_eq(t, "a\n1.50 ms (0.06%)");
    title_of(svg, "b", t, sizeof t);
    ck_assert_str_eq(t, "b\n2.50 \xC2\xB5s (0.00%)");
    free(svg);

    nodes[0].total = 3 * 1048576;
    nodes[1].total = 2 * 1048576;
    nodes[2].total = 1536;
    nodes[3].total = 12;
    o.unit = "bytes";
    svg = render_ok(nodes, 4, &o);
    title_of(svg, "all", t, sizeof t);
    ck_assert_str_eq(t, "all\n3.00 MiB (100.00%)");
    title_of(svg, "b", t, sizeof t);
    ck_assert_str_eq(t, "b\n1.50 KiB (0.05%)");
    title_of(svg, "c", t, sizeof t);
    ck_assert_str_eq(t, "c\n12 bytes (0.00%)");
    free(svg);

    nodes[0].total = 1234567;
    nodes[1].total = 1234;
    o.unit = "calls";
    svg = render_ok(nodes, 2, &o);
    title_of(svg, "all", t, sizeof t);
    ck_assert_str_eq(t, "all\n1,234,567 calls (100.00%)");
    title_of(svg, "a", t, sizeof t);
    ck_assert_str_eq(t, "a\n1,234 calls (0.10%)");
    free(svg);
}
END_TEST

START_TEST(test_empty)
{
    char *svg = render_ok(NULL, 0, &opts);
    ck_assert_ptr_nonnull(strstr(svg, ">no data</text>"));
    check_well_formed(svg);
    check_xmllint(svg);
    free(svg);
}
END_TEST

START_TEST(test_bad_tree)
{
    cp_flame_node bad[TREE_N];
    memcpy(bad, tree, sizeof bad);
    bad[5].parent = 9;
    char err[128] = "";
    int rc;
    char *svg = render(bad, TREE_N, &opts, &rc, err, sizeof err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, "bad tree: node 5 has parent 9");
    free(svg);

    bad[5].parent = 5; /* a self-loop is not a pre-order parent either */
    svg = render(bad, TREE_N, &opts, &rc, err, sizeof err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, "bad tree: node 5 has parent 5");
    free(svg);
}
END_TEST

START_TEST(test_write_error)
{
    FILE *full = fopen("/dev/full", "w");
    if (!full)
        return; /* no /dev/full here: nothing to test */
    char err[128] = "";
    ck_assert_int_eq(cp_svg_write(full, tree, TREE_N, &opts, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "write error") != NULL, "message: %s", err);
    fclose(full);

    full = fopen("/dev/full", "w");
    err[0] = '\0';
    ck_assert_int_eq(cp_svg_write(full, NULL, 0, &opts, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "write error") != NULL, "message: %s", err);
    fclose(full);
}
END_TEST

static Suite *svg_suite(void)
{
    Suite *s = suite_create("svg");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_well_formed);
    tcase_add_test(tc, test_titles_and_percentages);
    tcase_add_test(tc, test_widths_proportional);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_tiny_frames_hidden);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_colours);
    tcase_add_test(tc, test_input_untouched);
    tcase_add_test(tc, test_inverted);
    tcase_add_test(tc, test_units);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_bad_tree);
    tcase_add_test(tc, test_write_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(svg_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
