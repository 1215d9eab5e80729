/*
 * test_pg_copy.c - the binary COPY TO STDOUT reader (store/pg/copy_out.c)
 * reads a byte stream: the same stream cut into CopyData messages at every
 * offset (and byte by byte, and whole) gives the same rows; a stream that
 * stops inside a row or before its trailer is an error. No server.
 */
#include "store/pg/pg_internal.h"
#include "test.h"

enum { ROWS = 5 };

typedef struct sink {
    int64_t ts[ROWS * 2];
    double close[ROWS * 2];
    size_t n;
    int overflow;
} sink;

static an_code collect(void *ctx, const int64_t *ts, const double *close, size_t n, an_err *err)
{
    (void)err;
    sink *k = ctx;
    for (size_t i = 0; i < n; i++) {
        if (k->n == ROWS * 2) {
            k->overflow = 1;
            break;
        }
        k->ts[k->n] = ts[i];
        k->close[k->n++] = close[i];
    }
    return AN_OK;
}

/* header (with an extension of ext bytes), ROWS rows, trailer */
static size_t make_stream(unsigned char *p, uint32_t ext)
{
    unsigned char *s = p;
    memcpy(p, "PGCOPY\n\377\r\n\0", 11);
    an_pg_put_be32(p + 11, 0);
    an_pg_put_be32(p + 15, ext);
    p += 19;
    memset(p, 0xab, ext);
    p += ext;
    for (int i = 0; i < ROWS; i++) {
        p[0] = 0;
        p[1] = 2;
        an_pg_put_be32(p + 2, 8);
        an_pg_put_be64(p + 6, (uint64_t)((1700000000000LL + i * 60000LL) * 1000 - AN_PG_EPOCH_US));
        an_pg_put_be32(p + 14, 8);
        double v = 100.5 + i;
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        an_pg_put_be64(p + 18, bits);
        p += 26;
    }
    p[0] = 0xff;
    p[1] = 0xff;
    return (size_t)(p + 2 - s);
}

/* Feeds the stream cut at the given offsets (sorted, ending with len). */
static an_code feed_cut(const unsigned char *buf, const size_t *cuts, int ncuts, sink *k,
                        an_err *err)
{
    an_pg_copy_reader rd;
    an_code rc = an_pg_copy_reader_init(&rd, collect, k, err);
    size_t at = 0;
    for (int i = 0; rc == AN_OK && i < ncuts; i++) {
        rc = an_pg_copy_reader_feed(&rd, (const char *)buf + at, cuts[i] - at, err);
        at = cuts[i];
    }
    if (rc == AN_OK)
        rc = an_pg_copy_reader_finish(&rd, err);
    an_pg_copy_reader_free(&rd);
    return rc;
}

static int rows_ok(const sink *k)
{
    if (k->n != ROWS || k->overflow)
        return 0;
    for (int i = 0; i < ROWS; i++)
        if (k->ts[i] != 1700000000000LL + i * 60000LL || k->close[i] != 100.5 + i)
            return 0;
    return 1;
}

static void test_every_cut(void)
{
    static const uint32_t exts[] = {0, 7};
    for (size_t e = 0; e < sizeof exts / sizeof exts[0]; e++) {
        unsigned char buf[512];
        size_t len = make_stream(buf, exts[e]);
        for (size_t cut = 0; cut <= len; cut++) {
            sink k = {0};
            an_err err = {0};
            size_t cuts[2] = {cut, len};
            an_code rc = feed_cut(buf, cuts, 2, &k, &err);
            AN_CHECK_MSG(rc == AN_OK && rows_ok(&k), "ext %u, cut at %zu of %zu: %s (%zu rows)",
                         exts[e], cut, len, err.msg, k.n);
            if (rc != AN_OK || !rows_ok(&k))
                return;
        }
        /* every pair of cuts: rows spanning three messages */
        for (size_t a = 1; a < len; a += 3)
            for (size_t b = a; b < len; b += 5) {
                sink k = {0};
                an_err err = {0};
                size_t cuts[3] = {a, b, len};
                AN_CHECK_MSG(feed_cut(buf, cuts, 3, &k, &err) == AN_OK && rows_ok(&k),
                             "cuts at %zu and %zu: %s", a, b, err.msg);
            }
    }
}

static void test_byte_by_byte(void)
{
    unsigned char buf[512];
    size_t len = make_stream(buf, 3);
    size_t cuts[512];
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    sink k = {0};
    an_err err = {0};
    AN_CHECK_OK(feed_cut(buf, cuts, (int)len, &k, &err), err);
    AN_CHECK(rows_ok(&k));
}

static void test_truncated_streams_fail(void)
{
    unsigned char buf[512];
    size_t len = make_stream(buf, 0);
    /* stops inside a row, and after the last row without the trailer */
    const size_t ends[] = {19 + 26 + 10, len - 2, 5};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        sink k = {0};
        an_err err = {0};
        size_t cuts[1] = {ends[i]};
        an_code rc = feed_cut(buf, cuts, 1, &k, &err);
        AN_CHECK_MSG(rc == AN_ERR_DB, "stream cut at %zu: %s", ends[i], an_code_str(rc));
        AN_CHECK_MSG(strstr(err.msg, "export series"), "%s", err.msg);
    }
    /* not a COPY stream */
    sink k = {0};
    an_err err = {0};
    size_t cuts[1] = {20};
    memcpy(buf, "NOTCOPY", 7);
    AN_CHECK_INT(feed_cut(buf, cuts, 1, &k, &err), AN_ERR_DB);
}

int main(void)
{
    AN_RUN(test_every_cut);
    AN_RUN(test_byte_by_byte);
    AN_RUN(test_truncated_streams_fail);
    return AN_TEST_DONE();
}
