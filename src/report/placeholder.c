/* placeholder until the reader lands */ typedef int cp_report_placeholder_t;
