/*
 * samples_table.h — the `cpyprof report` text table of a sampled profile
 * (p->samples): per function, self% and total% of all samples, and the
 * sample counts.
 */
#ifndef CPYPROF_REPORT_SAMPLES_TABLE_H
#define CPYPROF_REPORT_SAMPLES_TABLE_H

#include "report/table.h"

/** Like cp_table_write, for a profile whose trees are sample counts. */
int cp_samples_table_write(FILE *out, const cp_profile *p, const cp_table_options *o, char *err,
                           size_t errlen);

#endif
