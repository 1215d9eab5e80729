/*
 * copy_out.c - the reader of a binary COPY ... TO STDOUT stream of
 * (timestamptz, float8) rows: an 11-byte signature, int32 flags, an int32
 * header extension length and its bytes, then per row an int16 field count
 * and per field an int32 length and the bytes; a field count of -1 ends it.
 * The stream is read as bytes, whatever the CopyData messages' boundaries
 * (a row may span messages, a message may hold several rows): the bytes of
 * an incomplete header or row wait in rd->pending. Owns its batch arrays;
 * rows go to the caller's callback in batches of AN_PG_COPY_BATCH. Single-threaded: one reader per
 * export.
 */
#include "store/pg/pg_internal.h"

#include <assert.h>
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

/* Completes rd->pending to need bytes from *p; 1 when it holds them. */
static int fill(an_pg_copy_reader *rd, const unsigned char **p, const unsigned char *end,
                size_t need)
{
    assert(need <= sizeof rd->pending);
    if (rd->npending >= need)
        return 1;
    size_t take = need - rd->npending;
    if (take > (size_t)(end - *p))
        take = (size_t)(end - *p);
    memcpy(rd->pending + rd->npending, *p, take);
    rd->npending += take;
    *p += take;
    return rd->npending == need;
}

static an_code header(an_pg_copy_reader *rd, const unsigned char *h, an_err *err)
{
    if (memcmp(h, "PGCOPY\n\377\r\n\0", 11) != 0)
        return an_err_set(err, AN_ERR_DB, "export series: not a binary COPY stream");
    rd->skip = an_pg_get_be32(h + 15);
    rd->header_done = 1;
    return AN_OK;
}

/* One row of ROW_BYTES bytes (the field count already known to be 2). */
static an_code row(an_pg_copy_reader *rd, const unsigned char *r, an_err *err)
{
    if ((int16_t)((r[0] << 8) | r[1]) != 2 || an_pg_get_be32(r + 2) != 8 ||
        an_pg_get_be32(r + 14) != 8)
        return an_err_set(err, AN_ERR_DB, "export series: unexpected row layout");
    rd->ts[rd->n] = ((int64_t)an_pg_get_be64(r + 6) + AN_PG_EPOCH_US) / 1000;
    uint64_t bits = an_pg_get_be64(r + 18);
    memcpy(&rd->close[rd->n], &bits, sizeof bits);
    if (++rd->n < AN_PG_COPY_BATCH)
        return AN_OK;
    rd->n = 0;
    return rd->cb(rd->ctx, rd->ts, rd->close, AN_PG_COPY_BATCH, err);
}

enum { HEADER_BYTES = 19, ROW_BYTES = 2 + 4 + 8 + 4 + 8 };

an_code an_pg_copy_reader_feed(an_pg_copy_reader *rd, const char *buf, size_t len, an_err *err)
{
    const unsigned char *p = (const unsigned char *)buf, *end = p + len;
    an_code rc = AN_OK;
    while (p < end && rc == AN_OK) {
        if (rd->trailer_seen)
            return an_err_set(err, AN_ERR_DB, "export series: data after the end of the COPY");
        if (!rd->header_done) {
            if (fill(rd, &p, end, HEADER_BYTES)) {
                rc = header(rd, rd->pending, err);
                rd->npending = 0;
            }
        } else if (rd->skip > 0) {
            size_t take = rd->skip < (size_t)(end - p) ? rd->skip : (size_t)(end - p);
            rd->skip -= take;
            p += take;
        } else if (rd->npending == 0 && end - p >= ROW_BYTES && p[0] == 0 && p[1] == 2) {
            rc = row(rd, p, err); /* the common case: a whole row in this message */
            p += ROW_BYTES;
        } else if (fill(rd, &p, end, 2)) {
            if (rd->pending[0] == 0xff && rd->pending[1] == 0xff) {
                rd->trailer_seen = 1;
                rd->npending = 0;
            } else if (rd->pending[0] != 0 || rd->pending[1] != 2) {
                rc = an_err_set(err, AN_ERR_DB, "export series: unexpected row layout");
            } else if (fill(rd, &p, end, ROW_BYTES)) {
                rc = row(rd, rd->pending, err);
                rd->npending = 0;
            }
        }
    }
    return rc;
}

an_code an_pg_copy_reader_finish(an_pg_copy_reader *rd, an_err *err)
{
    if (!rd->trailer_seen)
        return an_err_set(err, AN_ERR_DB, "export series: the COPY stream ended %s",
                          rd->header_done ? "inside a row (no trailer)" : "inside its header");
    an_code rc = AN_OK;
    if (rd->n > 0)
        rc = rd->cb(rd->ctx, rd->ts, rd->close, rd->n, err);
    rd->n = 0;
    return rc;
}
