#ifndef CSQLITE_TUNING_H
#define CSQLITE_TUNING_H

/// Turns off SQLite's memory statistics, process-wide, before SQLite is first
/// used: with them on (the default), every allocation SQLite makes takes a
/// global mutex to count it, and a build of the system SQLite without
/// lookaside memory allocates for nearly every value it handles. Nothing here
/// reads those statistics. Returns SQLite's result code (SQLITE_MISUSE if
/// SQLite was already in use, when it changes nothing).
int milestones_sqlite_memstatus_off(void);

#endif
