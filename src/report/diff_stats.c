/*
 * diff_stats.c — the statistics of `cpyprof diff`: medians and the one-sided
 * Mann-Whitney U test (see diff.h for why this test).
 *
 * Mann-Whitney makes no assumption about the shape of the distribution
 * (timings are skewed: a few slow runs, never a fast outlier), only that
 * the runs of a side are independent draws. Its exact null distribution is
 * the number of ways the ranks can fall, counted with the recurrence
 *   N(m, n, u) = N(m - 1, n, u - n) + N(m, n - 1, u)
 * (the largest value is a y, which beats all m x's, or an x). Doubles hold
 * the counts: C(100, 50) ~ 1e29 is far inside their range, and we only need
 * ratios.
 */
#include "report/diff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cp_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double cp_mann_whitney_min_p(size_t nx, size_t ny)
{
    /* 1 / C(nx + ny, nx), computed as a running product */
    double c = 1;
    for (size_t i = 1; i <= nx; i++)
        c = c * (double)(ny + i) / (double)i;
    return 1 / c;
}

/* P(U >= u) under the null, exactly, for m x's and n y's without ties.
 * f[j][u] for the current and the previous m layer; NAN when out of memory. */
static double exact_tail(size_t m, size_t n, size_t u_obs)
{
    size_t umax = m * n;
    size_t width = umax + 1;
    double *prev = calloc((n + 1) * width, sizeof *prev);
    double *cur = calloc((n + 1) * width, sizeof *cur);
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return NAN;
    }
    /* i = 0 x's: one arrangement of j y's, U = 0 */
    for (size_t j = 0; j <= n; j++)
        prev[j * width] = 1;
    for (size_t i = 1; i <= m; i++) {
        memset(cur, 0, (n + 1) * width * sizeof *cur);
        cur[0] = 1; /* j = 0 y's: U = 0 */
        for (size_t j = 1; j <= n; j++)
            for (size_t u = 0; u <= i * j; u++) {
                /* largest is a y: it beats all i x's; the rest is (i, j-1) */
                double a = u >= i ? cur[(j - 1) * width + u - i] : 0;
                /* largest is an x: beats no y; the rest is (i-1, j) */
                double b = prev[j * width + u];
                cur[j * width + u] = a + b;
            }
        double *t = prev;
        prev = cur;
        cur = t;
    }
    double total = 0, tail = 0;
    for (size_t u = 0; u <= umax; u++) {
        total += prev[n * width + u];
        if (u >= u_obs)
            tail += prev[n * width + u];
    }
    free(prev);
    free(cur);
    return tail / total;
}

double cp_mann_whitney_greater(const double *x, size_t nx, const double *y, size_t ny)
{
    if (nx == 0 || ny == 0)
        return 1.0;
    /* U2 = pairs with y > x, ties counted 1/2 (kept doubled to stay integer) */
    size_t u2 = 0;
    bool ties = false;
    for (size_t i = 0; i < nx; i++)
        for (size_t j = 0; j < ny; j++) {
            if (y[j] > x[i])
                u2 += 2;
            else if (y[j] == x[i]) {
                u2 += 1;
                ties = true;
            }
        }
    /* ties inside one side do not change U's distribution when none cross */
    if (!ties && nx <= 50 && ny <= 50) {
        double p = exact_tail(nx, ny, u2 / 2);
        if (!isnan(p))
            return p;
    }
    /* normal approximation with the tie correction of the variance */
    size_t N = nx + ny;
    double *all = malloc(N * sizeof *all);
    double tie_term = 0;
    if (all) {
        memcpy(all, x, nx * sizeof *x);
        memcpy(all + nx, y, ny * sizeof *y);
        qsort(all, N, sizeof *all, cmp_double);
        for (size_t i = 0; i < N;) {
            size_t k = i;
            while (k < N && all[k] == all[i])
                k++;
            double t = (double)(k - i);
            tie_term += t * t * t - t;
            i = k;
        }
        free(all);
    }
    double mn = (double)nx * (double)ny;
    double mu = mn / 2;
    double var = mn / 12 * ((double)(N + 1) - tie_term / ((double)N * (double)(N - 1)));
    double u = (double)u2 / 2;
    if (var <= 0) /* every value equal: no evidence of anything */
        return 1.0;
    double z = (u - mu - 0.5) / sqrt(var);
    return 0.5 * erfc(z / sqrt(2.0));
}
