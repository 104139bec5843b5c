/*
 * samples_table.h — the `cpyprof report` text table of a sampled profile
 * (p->samples): per function, self% and total% of all samples, and the
 * sample counts; with `lines`, the same per (function, source line).
 */
#ifndef CPYPROF_REPORT_SAMPLES_TABLE_H
#define CPYPROF_REPORT_SAMPLES_TABLE_H

#include "report/table.h"

/** Like cp_table_write, for a profile whose trees are sample counts. */
int cp_samples_table_write(FILE *out, const cp_profile *p, const cp_table_options *o, char *err,
                           size_t errlen);

/** Sorts line rows: `CP_SORT_TOTAL` by total samples, `CP_SORT_NAME` by
 *  function label then line, anything else by self samples; ties by label,
 *  then line, so the order is fully determined. */
void cp_lines_sort(cp_lines *l, const cp_profile *p, cp_sort_key key);

/** The sampling interval in ns (1e9 / META sample_rate), 0 if unknown. */
uint64_t cp_sample_period_ns(const cp_profile *p);

#endif
