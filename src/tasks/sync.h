/*
 * sync.h - moving one store's data into another: the replay of the DuckDB
 * fallback file into the primary once it is back, and `autonama sync --from
 * FILE` for any DuckDB store (a legacy file-based one or a fallback file).
 *
 * Per series, oldest first, in batches: candles (trading.ohlc_data), then
 * indicator rows (analytics.indicators), then task runs. Writes are the
 * store's idempotent upserts, so a replay that stopped half-way is simply run
 * again: nothing is lost, nothing duplicated. Task runs merge on each unique
 * key (the id; a schedule slot the destination already holds stays its own
 * and the run comes without it); a run the destination refuses is reported
 * and left in the source, never blocking the rest. With move, a series is deleted
 * from the source only after all of it reached the destination. Indicator
 * series that were replayed have the destination's indicator-run ledger
 * reset, so the next indicator run there recomputes and compares the whole
 * history (values computed on the fallback's shorter history are corrected).
 * Called from one thread per source at a time.
 */
#ifndef AN_TASKS_SYNC_H
#define AN_TASKS_SYNC_H

#include <stdint.h>

#include "core/error.h"
#include "store/store.h"

typedef struct an_sync_stats {
    int64_t series, candles;              /* candle series and rows moved */
    int64_t indicator_series, indicators; /* indicator series and rows moved */
    int64_t tasks;                        /* task runs moved */
    int64_t tasks_unslotted;              /* of them, moved without their slot */
    int64_t tasks_kept;                   /* refused by dst: left in src */
    char kept_error[AN_ERR_MSG_MAX];      /* the first refused run: "ID: error" */
    an_upsert_counts candle_counts;       /* what the destination did with the candles */
    an_upsert_counts indicator_counts;
} an_sync_stats;

/* Copies (move: and then deletes) everything in src into dst. A source
 * without analytics.indicators or autonama.task_runs (a legacy file) is
 * fine: only what it has is moved. */
an_code an_sync_stores(an_store *src, an_store *dst, int move, an_sync_stats *st, an_err *err);

/* *pending = 1 when src holds candles, indicator rows or task runs. */
an_code an_sync_pending(an_store *src, int *pending, an_err *err);

#endif
