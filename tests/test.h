/*
 * test.h - the tiny test harness every C test uses. A test file defines
 * static void test_xxx(void) functions and a main() that calls
 * AN_RUN(test_xxx) for each, then returns AN_TEST_DONE().
 * Output ends with "N passed, N failed" (read by CI).
 */
#ifndef AN_TEST_H
#define AN_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int an_t_passed, an_t_failed, an_t_cur_failed;

#define AN_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
            an_t_cur_failed = 1;                                                                   \
        }                                                                                          \
    } while (0)

#define AN_CHECK_MSG(cond, ...)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            an_t_cur_failed = 1;                                                                   \
        }                                                                                          \
    } while (0)

#define AN_CHECK_INT(a, b)                                                                         \
    do {                                                                                           \
        long long an_a_ = (long long)(a), an_b_ = (long long)(b);                                  \
        if (an_a_ != an_b_) {                                                                      \
            fprintf(stderr, "  FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, \
                    an_a_, an_b_);                                                                 \
            an_t_cur_failed = 1;                                                                   \
        }                                                                                          \
    } while (0)

#define AN_CHECK_DBL(a, b)                                                                         \
    do {                                                                                           \
        double an_a_ = (a), an_b_ = (b);                                                           \
        if (!(an_a_ == an_b_ || fabs(an_a_ - an_b_) <= 1e-9 * fmax(fabs(an_a_), fabs(an_b_)))) {   \
            fprintf(stderr, "  FAIL %s:%d: %s == %s (%.17g != %.17g)\n", __FILE__, __LINE__, #a,   \
                    #b, an_a_, an_b_);                                                             \
            an_t_cur_failed = 1;                                                                   \
        }                                                                                          \
    } while (0)

#define AN_CHECK_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *an_a_ = (a), *an_b_ = (b);                                                     \
        if (!an_a_ || !an_b_ || strcmp(an_a_, an_b_) != 0) {                                       \
            fprintf(stderr, "  FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", __FILE__, __LINE__, #a, \
                    #b, an_a_ ? an_a_ : "(null)", an_b_ ? an_b_ : "(null)");                       \
            an_t_cur_failed = 1;                                                                   \
        }                                                                                          \
    } while (0)

/* err is an an_err; prints its message on failure */
#define AN_CHECK_OK(expr, err)                                                                     \
    do {                                                                                           \
        an_code an_rc_ = (expr);                                                                   \
        if (an_rc_ != AN_OK) {                                                                     \
            fprintf(stderr, "  FAIL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr,             \
                    an_code_str(an_rc_), (err).msg);                                               \
            an_t_cur_failed = 1;                                                                   \
        }                                                                                          \
    } while (0)

#define AN_RUN(fn)                                                                                 \
    do {                                                                                           \
        an_t_cur_failed = 0;                                                                       \
        fprintf(stderr, "-- %s\n", #fn);                                                           \
        fn();                                                                                      \
        if (an_t_cur_failed) {                                                                     \
            an_t_failed++;                                                                         \
            fprintf(stderr, "not ok %s\n", #fn);                                                   \
        } else {                                                                                   \
            an_t_passed++;                                                                         \
            fprintf(stderr, "ok %s\n", #fn);                                                       \
        }                                                                                          \
    } while (0)

#define AN_TEST_DONE()                                                                             \
    (printf("%d passed, %d failed\n", an_t_passed, an_t_failed), an_t_failed ? 1 : 0)

/* The PostgreSQL test server's connection string (AUTONAMA_TEST_PG), or
 * exits with a clear error. */
static inline const char *an_test_pg_conninfo(void)
{
    const char *c = getenv("AUTONAMA_TEST_PG");
    if (!c || !*c) {
        fprintf(stderr, "AUTONAMA_TEST_PG is not set: start the servers with "
                        "scripts/test-services start (make test does)\n");
        exit(1);
    }
    return c;
}

/* Directory of the real candle files (AN_DATA_DIR), or exits with a clear error. */
static inline const char *an_test_data_dir(void)
{
    const char *d = getenv("AN_DATA_DIR");
    if (!d || !*d) {
        fprintf(stderr, "AN_DATA_DIR is not set (the ../shared/data/candles directory)\n");
        exit(2);
    }
    return d;
}

#endif
