/*
 * alloc_series.c — the live-bytes counter of timeline mode with alloc: the
 * bytes held by counted blocks, a point every 10 ms or so, written as ALLOC
 * chunks of kind 3 (CPYPROF_ALLOC_LIVE) for the Chrome converter's counter
 * track.
 *
 * Why on the writer thread: it wakes anyway (every 10 ms in timeline mode,
 * sooner when a ring fills), so a point costs the program nothing — no
 * hook, no extra wake-up. Reading the counters from there is a relaxed read
 * (cp_alloc_live_bytes): a point may lag the allocation in flight, which a
 * counter drawn at 10 ms resolution cannot show anyway.
 *
 * Memory is bounded: a fixed table of points, written out as one chunk
 * when full (in the flight recorder too: the series is small, 16 bytes per
 * point, about 1.6 KB per second, and covers the whole run while the
 * events cover only the last window).
 *
 * Threads: tick runs only on the writer thread; flush runs on the thread
 * that writes the dump, when the writer's loop is over (profiler stop) or
 * on the writer thread itself (SIGTERM dump). The two never overlap, so
 * the table needs no lock.
 */
#include "python/alloc.h"
#include "python/profiler.h"

#include "cpyprof/format.h"

#define SERIES_POINTS 512
#define SERIES_PERIOD_NS 10000000ull

static struct cpyprof_alloc_live_rec points[SERIES_POINTS];
static uint32_t npoints;
static uint64_t last_ticks;
static bool have_last;

static bool series_on(void)
{
    return cp_g.cfg.mode == CP_MODE_TIMELINE && cp_g.cfg.alloc != CP_ALLOC_OFF;
}

static int write_points(char *err, size_t errlen)
{
    if (!npoints)
        return 0;
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, CPYPROF_ALLOC_LIVE);
    cp_buf_u32(&b, npoints);
    for (uint32_t i = 0; i < npoints; i++) {
        cp_buf_i64(&b, points[i].time_ns);
        cp_buf_u64(&b, points[i].live_bytes);
    }
    npoints = 0;
    int rc;
    if (b.oom) {
        snprintf(err, errlen, "out of memory while writing the live-bytes series");
        rc = -1;
    } else {
        rc = cp_writer_chunk(&cp_g.writer, CPYPROF_CHUNK_ALLOC, b.data, b.len, err, errlen);
    }
    cp_buf_free(&b);
    return rc;
}

static void take_point(uint64_t now)
{
    points[npoints].time_ns = cp_clock_to_ns(&cp_g.clock, now);
    points[npoints].live_bytes = cp_alloc_live_bytes();
    npoints++;
    last_ticks = now;
    have_last = true;
}

void cp_alloc_series_tick(void)
{
    if (!series_on())
        return;
    uint64_t now = cp_clock_ticks(&cp_g.clock);
    if (have_last && cp_clock_delta_ns(&cp_g.clock, now - last_ticks) < SERIES_PERIOD_NS)
        return;
    if (npoints == SERIES_POINTS) {
        char err[256];
        if (write_points(err, sizeof err) != 0 && !cp_g.cfg.quiet)
            cp_log("%s", err); /* those points are lost; the run goes on */
    }
    take_point(now);
}

int cp_alloc_series_flush(char *err, size_t errlen)
{
    if (!series_on())
        return 0;
    if (npoints == SERIES_POINTS && write_points(err, errlen) != 0)
        return -1;
    take_point(cp_clock_ticks(&cp_g.clock));
    int rc = write_points(err, errlen);
    have_last = false; /* the next run starts a new series */
    return rc;
}
