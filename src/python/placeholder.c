int cpyprof_placeholder_(void); int cpyprof_placeholder_(void) { return 0; }
