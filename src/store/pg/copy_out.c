/*
 * copy_out.c - the reader of a binary COPY ... TO STDOUT stream of
 * (timestamptz, float8) rows: an 11-byte signature, int32 flags, an int32
 * header extension length and its bytes, then per row an int16 field count
 * and per field an int32 length and the bytes; a field count of -1 ends it.
 * Owns its batch arrays; rows go to the caller's callback in batches of
 * AN_PG_COPY_BATCH. Single-threaded: one reader per export.
 */
#include "store/pg/pg_internal.h"

#include <stdlib.h>
#include <string.h>

an_code an_pg_copy_reader_init(an_pg_copy_reader *rd, an_closes_cb cb, void *ctx, an_err *err)
{
    memset(rd, 0, sizeof *rd);
    rd->cb = cb;
    rd->ctx = ctx;
    rd->ts = malloc(AN_PG_COPY_BATCH * sizeof *rd->ts);
    rd->close = malloc(AN_PG_COPY_BATCH * sizeof *rd->close);
    if (!rd->ts || !rd->close)
        return an_err_set(err, AN_ERR_NOMEM, "export series: out of memory");
    return AN_OK;
}

void an_pg_copy_reader_free(an_pg_copy_reader *rd)
{
    free(rd->ts);
    free(rd->close);
    rd->ts = NULL;
    rd->close = NULL;
}

an_code an_pg_copy_reader_feed(an_pg_copy_reader *rd, const char *buf, size_t len, an_err *err)
{
    const unsigned char *p = (const unsigned char *)buf, *end = p + len;
    an_code rc = AN_OK;
    if (!rd->header_done) {
        if (len < 19 || memcmp(p, "PGCOPY\n\377\r\n\0", 11) != 0)
            return an_err_set(err, AN_ERR_DB, "export series: not a binary COPY stream");
        uint32_t ext = an_pg_get_be32(p + 15);
        p += 19 + ext;
        rd->header_done = 1;
    }
    while (p + 2 <= end && rc == AN_OK) {
        int16_t fields = (int16_t)((p[0] << 8) | p[1]);
        p += 2;
        if (fields == -1) {
            rd->trailer_seen = 1;
            break;
        }
        if (fields != 2 || p + 4 + 8 + 4 + 8 > end || an_pg_get_be32(p) != 8 ||
            an_pg_get_be32(p + 12) != 8)
            return an_err_set(err, AN_ERR_DB, "export series: unexpected row layout");
        rd->ts[rd->n] = ((int64_t)an_pg_get_be64(p + 4) + AN_PG_EPOCH_US) / 1000;
        uint64_t bits = an_pg_get_be64(p + 16);
        memcpy(&rd->close[rd->n], &bits, sizeof bits);
        p += 24;
        if (++rd->n == AN_PG_COPY_BATCH) {
            rc = rd->cb(rd->ctx, rd->ts, rd->close, rd->n, err);
            rd->n = 0;
        }
    }
    return rc;
}

an_code an_pg_copy_reader_finish(an_pg_copy_reader *rd, an_err *err)
{
    an_code rc = AN_OK;
    if (rd->n > 0)
        rc = rd->cb(rd->ctx, rd->ts, rd->close, rd->n, err);
    rd->n = 0;
    return rc;
}
