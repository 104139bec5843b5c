/*
 * pprof.h — a loaded profile as a pprof profile (github.com/google/pprof,
 * proto/profile.proto, package perftools.profiles), the format `go tool
 * pprof`, Pyroscope, Parca and Grafana read. Uncompressed protobuf here;
 * the `cpyprof convert --to pprof` command gzips it.
 *
 * Mapping from the call trees (all threads):
 *   - one Sample per tree node with a non-zero value, its location_id list
 *     the path from the node (leaf first) to its root, a "thread" label
 *     naming the thread;
 *   - deterministic profiles (mode trace or timeline): sample types
 *     calls/count and wall/nanoseconds; values = the node's calls and its
 *     self time. Summed over samples: every call, and the total time;
 *   - sampled profiles: samples/count and cpu|wall/nanoseconds (the clock of
 *     the run), values = self samples and self samples x the sampling period;
 *     period_type and period say the same;
 *   - with allocation data (`alloc`, chunks ALLOC): two more sample types,
 *     alloc_objects/count and alloc_space/bytes; the allocation trees give
 *     samples of their own ([0, 0, allocations, bytes], self values of each
 *     node), the call trees [calls, ns, 0, 0];
 *   - one Function per profile function (name = system_name = qualified
 *     name, filename, start_line), one Location per (function, line) —
 *     the executing line of a sampled frame, the first line of the function
 *     otherwise —, one Mapping (the Python executable, has_functions);
 *   - string_table[0] is "", as the format requires; time_nanos is the
 *     start (META start_unix_ns), duration_nanos the TRAILER's duration.
 */
#ifndef CPYPROF_REPORT_PPROF_H
#define CPYPROF_REPORT_PPROF_H

#include "report/alloc.h"
#include "report/profile.h"
#include "report/protobuf.h"

/** Encodes `p` (and `alloc`, NULL or without data for none) into `out`
 *  (reset first). Returns 0 or -1 with err set. */
int cp_pprof_encode(const cp_profile *p, const cp_alloc_data *alloc, cp_pb *out, char *err,
                    size_t errlen);

#endif
