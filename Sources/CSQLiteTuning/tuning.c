#include <sqlite3.h>
#include "CSQLiteTuning.h"

// sqlite3_config takes variable arguments, which Swift cannot call: this does.
int milestones_sqlite_memstatus_off(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
