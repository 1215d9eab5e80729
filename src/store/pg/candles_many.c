/*
 * candles_many.c - the PostgreSQL backend's upsert of candles of many series
 * in one statement (an_store_upsert_candles): the live path flushes every
 * series' open candle at once. Parameters are arrays (symbols and
 * timeframes as text, open times and the five values binary: nothing is
 * formatted, the values go exactly); the catalog rows, the
 * announcements (NOTIFY) and, on plain PostgreSQL, the 1h/1d rollups of the
 * series it changed, in set form (a few statements a flush, whatever the
 * number of series), in the same transaction. Any thread; borrows one pooled
 * connection.
 */
#include "store/pg/pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/numfmt.h"

/* The upsert (without RETURNING). */
#define UPSERT_MANY_SQL                                                                            \
    "INSERT INTO trading.ohlc_data AS d"                                                           \
    " (symbol, timeframe, \"timestamp\", open, high, low, close, volume)"                          \
    " SELECT t.s, t.tf, 'epoch'::timestamptz + t.ms * interval '1 millisecond',"                   \
    " t.o, t.h, t.l, t.c, t.v"                                                                     \
    " FROM unnest($1::text[], $2::text[], $3::int8[], $4::float8[], $5::float8[], $6::float8[],"   \
    " $7::float8[], $8::float8[]) AS t(s, tf, ms, o, h, l, c, v)"                                  \
    " ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET"                                \
    " open = excluded.open, high = excluded.high, low = excluded.low,"                             \
    " close = excluded.close, volume = excluded.volume"                                            \
    " WHERE (d.open, d.high, d.low, d.close, d.volume) IS DISTINCT FROM"                           \
    " (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)"

/* The rows the upsert inserted or changed (not the unchanged ones), and
 * which were new: a new row's xmax is 0. */
#define RETURNING_SQL                                                                              \
    " RETURNING d.symbol, d.timeframe, (extract(epoch FROM d.\"timestamp\") * 1000)::int8,"        \
    " d.xmax = 0"

/* On plain PostgreSQL, the 1h/1d rollup buckets of every 1m series the
 * upsert changed are recomputed in set form: the series' locks (catalog.c's
 * advisory lock, taken in symbol order), then per rollup one DELETE and one
 * INSERT over the unnest()ed (symbol, from, to) triples, as
 * an_pg_catalog_after_write does per series (5 statements per series, which
 * at 1,000 series made each flush of the open candles take seconds). */
#define MS_COL(col) "TIMESTAMPTZ 'epoch' + " col " * INTERVAL '1 millisecond'"
#define TRIPLES " unnest($1::text[], $2::int8[], $3::int8[]) AS t(s, a, b)"
static const char ROLLUP_LOCK_MANY_SQL[] =
    "SELECT pg_advisory_xact_lock(1634624877, hashtext(x.s))"
    " FROM (SELECT DISTINCT s FROM unnest($1::text[]) AS u(s) ORDER BY s) AS x";
#define ROLLUP_DELETE_MANY(table)                                                                  \
    "DELETE FROM trading." table " r USING" TRIPLES " WHERE r.symbol = t.s"                        \
    " AND r.\"timestamp\" >= " MS_COL("t.a") " AND r.\"timestamp\" < " MS_COL("t.b")
#define ROLLUP_INSERT_MANY(table, width)                                                           \
    "INSERT INTO trading." table " (symbol, \"timestamp\", open, high, low, close, volume,"        \
    " candle_count) SELECT d.symbol, date_bin(INTERVAL '" width "', d.\"timestamp\","              \
    " TIMESTAMPTZ '2000-01-01 00:00:00+00'), (array_agg(d.open ORDER BY d.\"timestamp\"))[1],"     \
    " max(d.high), min(d.low), (array_agg(d.close ORDER BY d.\"timestamp\" DESC))[1],"             \
    " sum(d.volume), count(*) FROM" TRIPLES " JOIN trading.ohlc_data d ON d.symbol = t.s"          \
    " AND d.timeframe = '1m' AND d.\"timestamp\" >= " MS_COL(                                      \
        "t.a") " AND d.\"timestamp\" < " MS_COL("t.b") " GROUP BY 1, 2"

/* Appends an array element: a quoted string (symbols and timeframes hold no
 * quote or backslash: validated) or a number. -1 when out of memory. */
int an_pg_text_array_put(an_pg_buf *b, const char *s, int quote)
{
    size_t l = strlen(s);
    if (an_pg_buf_reserve(b, l + 4) < 0)
        return -1;
    char sep = b->n ? ',' : '{';
    b->p[b->n++] = sep;
    if (quote)
        b->p[b->n++] = '"';
    memcpy(b->p + b->n, s, l);
    b->n += l;
    if (quote)
        b->p[b->n++] = '"';
    b->p[b->n] = 0;
    return 0;
}

/* Closes an array an_pg_text_array_put filled. -1 when out of memory. */
int an_pg_text_array_end(an_pg_buf *b)
{
    if (an_pg_buf_reserve(b, 2) < 0)
        return -1;
    b->p[b->n++] = '}';
    b->p[b->n] = 0;
    return 0;
}

/* What the upsert changed in one series: the catalog's and the rollups'
 * input (catalog.c), as an insert_ohlc of that series would give it. */
typedef struct series_change {
    const char *symbol, *tf; /* into the result, valid until it is cleared */
    int64_t lo, hi;
    an_upsert_counts changed;
} series_change;

typedef struct many_job {
    const char *const *params;
    const int *lengths;
    int plain_pg;
    const char *tag; /* the store handle's NOTIFY tag */
} many_job;

/* Symbols and timeframes as text[] literals; the open times (int8) and the
 * five values (float8) as binary arrays: nothing formatted, exact. */
static const Oid MANY_TYPES[8] = {0,
                                  0,
                                  AN_OID_INT8_ARRAY,
                                  AN_OID_FLOAT8_ARRAY,
                                  AN_OID_FLOAT8_ARRAY,
                                  AN_OID_FLOAT8_ARRAY,
                                  AN_OID_FLOAT8_ARRAY,
                                  AN_OID_FLOAT8_ARRAY};
static const int MANY_FORMATS[8] = {0, 0, 1, 1, 1, 1, 1, 1};

/* The rollups of the 1m series in ch (distinct: one entry per series). */
static an_code rollups_many(PGconn *c, const series_change *ch, size_t nch, an_err *err)
{
    static const struct {
        int64_t width;
        const char *del, *ins;
    } R[2] = {
        {3600000LL, ROLLUP_DELETE_MANY("ohlc_1h"), ROLLUP_INSERT_MANY("ohlc_1h", "1 hour")},
        {86400000LL, ROLLUP_DELETE_MANY("ohlc_1d"), ROLLUP_INSERT_MANY("ohlc_1d", "1 day")},
    };
    an_code rc = AN_OK;
    for (int i = -1; i < 2 && rc == AN_OK; i++) { /* -1: the locks */
        an_pg_buf a[3] = {{0}};
        int bad = 0, any = 0;
        for (size_t k = 0; k < nch && !bad; k++) {
            if (strcmp(ch[k].tf, "1m") != 0)
                continue;
            int64_t from = 0, to = 0;
            if (i >= 0)
                an_pg_rollup_span(R[i].width, ch[k].lo, ch[k].hi, &from, &to);
            char f[24], t[24];
            an_int_format(from, f);
            an_int_format(to, t);
            bad = an_pg_text_array_put(&a[0], ch[k].symbol, 1) < 0 ||
                  an_pg_text_array_put(&a[1], f, 0) < 0 || an_pg_text_array_put(&a[2], t, 0) < 0;
            any = 1;
        }
        for (int k = 0; k < 3 && !bad && any; k++)
            bad = an_pg_text_array_end(&a[k]) < 0;
        if (bad)
            rc = an_err_set(err, AN_ERR_NOMEM, "upsert_candles: out of memory");
        const char *p[3] = {a[0].p, a[1].p, a[2].p};
        const char *sql[2] = {i < 0 ? ROLLUP_LOCK_MANY_SQL : R[i].del, i < 0 ? NULL : R[i].ins};
        for (int q = 0; q < 2 && sql[q] && rc == AN_OK && any; q++) {
            PGresult *r = PQexecParams(c, sql[q], i < 0 ? 1 : 3, NULL, p, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
                rc = an_pg_res_error(r, c, "refresh rollups", err);
            PQclear(r);
        }
        for (int k = 0; k < 3; k++)
            free(a[k].p);
        if (!any)
            break;
    }
    return rc;
}

/* The catalog rows of the series that gained candles and the writes'
 * announcements, in set form (an_pg_catalog_after_write's statements, once
 * for all series: one NOTIFY statement a flush, not one a series). */
#define CATALOG_UPSERT_MANY_SQL                                                                    \
    "INSERT INTO trading.ohlc_series AS s (symbol, timeframe, first_ts, last_ts, row_count)"       \
    " SELECT t.s, t.tf, " MS_COL("t.a") ", " MS_COL(                                               \
        "t.b") ", t.k"                                                                             \
               " FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[])"          \
               " AS t(s, tf, a, b, k) ON CONFLICT (symbol, timeframe) DO UPDATE SET"               \
               " first_ts = least(s.first_ts, excluded.first_ts),"                                 \
               " last_ts = greatest(s.last_ts, excluded.last_ts), row_count = s.row_count + "      \
               "excluded.row_count"
#define NOTIFY_MANY_SQL                                                                            \
    "SELECT pg_notify('" AN_STORE_NOTIFY_CHANNEL "', p) FROM unnest($1::text[]) AS u(p)"

static an_code exec_arrays(PGconn *c, const char *sql, an_pg_buf *a, int n, an_err *err)
{
    const char *p[5];
    for (int k = 0; k < n; k++) {
        if (an_pg_text_array_end(&a[k]) < 0)
            return an_err_set(err, AN_ERR_NOMEM, "upsert_candles: out of memory");
        p[k] = a[k].p;
    }
    PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    an_code rc = AN_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = an_pg_res_error(r, c, "update the series catalog", err);
    PQclear(r);
    return rc;
}

/* Copies the n bytes of s to p, then sep (unless 0), stopping at end;
 * returns where the next field goes. */
static char *put_field(char *p, char *end, const char *s, size_t n, char sep)
{
    size_t room = (size_t)(end - p), m = n < room ? n : room;
    memcpy(p, s, m);
    p += m;
    if (sep && p < end)
        *p++ = sep;
    return p;
}

static an_code catalog_many(PGconn *c, const series_change *ch, size_t nch, const char *tag,
                            an_err *err)
{
    an_pg_buf a[5] = {{0}}, n = {0};
    int bad = 0, any = 0;
    for (size_t k = 0; k < nch && !bad; k++) {
        char lo[24], hi[24], cnt[24], payload[128];
        size_t nlo = an_int_format(ch[k].lo, lo), nhi = an_int_format(ch[k].hi, hi);
        an_int_format(ch[k].changed.inserted, cnt);
        /* "symbol tf lo hi tag" (store.h's payload), without a printf per
         * series; cut at the buffer's end as snprintf would */
        char *p = payload, *end = payload + sizeof payload - 1;
        p = put_field(p, end, ch[k].symbol, strlen(ch[k].symbol), ' ');
        p = put_field(p, end, ch[k].tf, strlen(ch[k].tf), ' ');
        p = put_field(p, end, lo, nlo, ' ');
        p = put_field(p, end, hi, nhi, ' ');
        p = put_field(p, end, tag, strlen(tag), 0);
        *p = '\0';
        bad = an_pg_text_array_put(&n, payload, 1) < 0;
        if (ch[k].changed.inserted > 0) {
            bad = bad || an_pg_text_array_put(&a[0], ch[k].symbol, 1) < 0 ||
                  an_pg_text_array_put(&a[1], ch[k].tf, 1) < 0 ||
                  an_pg_text_array_put(&a[2], lo, 0) < 0 ||
                  an_pg_text_array_put(&a[3], hi, 0) < 0 || an_pg_text_array_put(&a[4], cnt, 0) < 0;
            any = 1;
        }
    }
    an_code rc = bad ? an_err_set(err, AN_ERR_NOMEM, "upsert_candles: out of memory") : AN_OK;
    if (rc == AN_OK && any)
        rc = exec_arrays(c, CATALOG_UPSERT_MANY_SQL, a, 5, err);
    if (rc == AN_OK && nch)
        rc = exec_arrays(c, NOTIFY_MANY_SQL, &n, 1, err);
    for (int k = 0; k < 5; k++)
        free(a[k].p);
    free(n.p);
    return rc;
}

/* One changed row of the RETURNING result. */
typedef struct changed_row {
    const char *symbol, *tf;
    int64_t ms;
    int inserted;
} changed_row;

static int by_series(const void *a, const void *b)
{
    const changed_row *x = a, *y = b;
    int c = strcmp(x->symbol, y->symbol);
    return c ? c : strcmp(x->tf, y->tf);
}

/* The rows of r grouped per series, in (symbol, timeframe) order (the
 * catalog's rows are locked in that order). NULL when out of memory. */
static series_change *group_changes(PGresult *r, size_t *nch)
{
    int rows = PQntuples(r);
    changed_row *v = malloc((rows ? (size_t)rows : 1) * sizeof *v);
    series_change *ch = calloc(rows ? (size_t)rows : 1, sizeof *ch);
    if (!v || !ch) {
        free(v);
        free(ch);
        return NULL;
    }
    for (int i = 0; i < rows; i++)
        v[i] = (changed_row){PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                             strtoll(PQgetvalue(r, i, 2), NULL, 10), PQgetvalue(r, i, 3)[0] == 't'};
    qsort(v, (size_t)rows, sizeof *v, by_series);
    size_t n = 0;
    for (int i = 0; i < rows; i++) {
        if (!n || by_series(&v[i], &v[i - 1]) != 0)
            ch[n++] = (series_change){v[i].symbol, v[i].tf, v[i].ms, v[i].ms, {0, 0, 0}};
        series_change *k = &ch[n - 1];
        k->lo = v[i].ms < k->lo ? v[i].ms : k->lo;
        k->hi = v[i].ms > k->hi ? v[i].ms : k->hi;
        if (v[i].inserted)
            k->changed.inserted++;
        else
            k->changed.updated++;
    }
    free(v);
    *nch = n;
    return ch;
}

/* The upsert and, for the series it changed, the catalog, the rollups and
 * the announcements, in one transaction (as every other candle write keeps
 * them). */
static an_code many_run(PGconn *c, void *ctx, an_err *err)
{
    many_job *j = ctx;
    an_code rc = an_pg_exec_cmd(c, "BEGIN", "upsert_candles", err);
    if (rc != AN_OK)
        return rc;
    PGresult *r = PQexecParams(c, UPSERT_MANY_SQL RETURNING_SQL, 8, MANY_TYPES, j->params,
                               j->lengths, MANY_FORMATS, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = an_pg_res_error(r, c, "upsert_candles", err);
        PQclear(r);
        return rc; /* the release rolls the transaction back */
    }
    size_t nch = 0;
    series_change *ch = group_changes(r, &nch);
    if (!ch)
        rc = an_err_set(err, AN_ERR_NOMEM, "upsert_candles: out of memory");
    if (rc == AN_OK)
        rc = catalog_many(c, ch, nch, j->tag, err);
    if (rc == AN_OK && j->plain_pg)
        rc = rollups_many(c, ch, nch, err);
    free(ch);
    PQclear(r);
    if (rc == AN_OK)
        rc = an_pg_exec_cmd(c, "COMMIT", "upsert_candles", err);
    return rc;
}

an_code an_pg_upsert_candles(an_store *s, const an_series_candle *v, size_t n, an_err *err)
{
    pg_store *ps = s->impl;
    an_pg_buf a[8] = {{0}};
    an_code rc = AN_OK;
    for (size_t i = 0; i < n && rc == AN_OK; i++)
        if (an_pg_text_array_put(&a[0], v[i].symbol, 1) < 0 ||
            an_pg_text_array_put(&a[1], v[i].timeframe, 1) < 0)
            rc = an_err_set(err, AN_ERR_NOMEM, "upsert_candles: out of memory");
    if (rc == AN_OK && (an_pg_text_array_end(&a[0]) < 0 || an_pg_text_array_end(&a[1]) < 0))
        rc = an_err_set(err, AN_ERR_NOMEM, "upsert_candles: out of memory");
    for (int k = 2; k < 8 && rc == AN_OK; k++) {
        if (an_pg_buf_reserve(&a[k], 20 + n * 12) < 0) {
            rc = an_err_set(err, AN_ERR_NOMEM, "upsert_candles: out of memory");
            break;
        }
        unsigned char *p =
            an_pg_array_header((unsigned char *)a[k].p, k == 2 ? AN_OID_INT8 : AN_OID_FLOAT8, n);
        for (size_t i = 0; i < n; i++) {
            const an_candle *c = &v[i].c; /* validated: finite */
            double x = k == 3   ? c->open
                       : k == 4 ? c->high
                       : k == 5 ? c->low
                       : k == 6 ? c->close
                                : c->volume;
            uint64_t bits = (uint64_t)c->ts;
            if (k > 2)
                memcpy(&bits, &x, sizeof bits);
            p = an_pg_copy_8(p, bits);
        }
        a[k].n = 20 + n * 12;
    }
    if (rc == AN_OK) {
        const char *params[8];
        int lengths[8];
        for (int k = 0; k < 8; k++) {
            params[k] = a[k].p;
            lengths[k] = (int)a[k].n;
        }
        many_job j = {params, lengths, s->mode == AN_STORE_POSTGRES, ps->tag};
        rc = an_pg_with_conn(ps, many_run, &j, err);
    }
    for (int k = 0; k < 8; k++)
        free(a[k].p);
    return rc;
}
