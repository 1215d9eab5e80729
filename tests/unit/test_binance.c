/*
 * test_binance.c - the klines reply parser: Binance's exact wire format is
 * accepted, and every kind of bad reply is refused whole with an error that
 * names the symbol, interval, row and field.
 */
#include "source/binance.h"
#include "test.h"

/* a 1m row opening at t, closing at ct = t + 59999 */
#define ROW(t, ct, o, h, l, c, v)                                                                  \
    "[" #t ",\"" o "\",\"" h "\",\"" l "\",\"" c "\",\"" v "\"," #ct                               \
    ",\"100.0\",5,\"1.0\",\"2.0\",\"0\"]"

static const char *GOOD =
    "[[1618951320000,\"56738.76000000\",\"56840.30000000\",\"56733.23000000\","
    "\"56813.98000000\",\"50.97520000\",1618951379999,\"2894123.12\",1200,\"25.1\","
    "\"1420000.5\",\"0\"],"
    "[1618951380000,\"56813.98000000\",\"56813.98000000\",\"56755.41000000\","
    "\"56777.00000000\",\"42.08946100\",1618951439999,\"2390000.0\",900,\"20.0\",\"1100000.0\","
    "\"0\"]]";

static void test_good_reply(void)
{
    an_candles c = {0};
    an_err err = {0};
    AN_CHECK_OK(an_binance_parse_klines(GOOD, strlen(GOOD), "BTC/USDT", "1m", &c, &err), err);
    AN_CHECK_INT(c.n, 2);
    if (c.n == 2) {
        AN_CHECK_INT(c.v[0].ts, 1618951320000LL);
        AN_CHECK_DBL(c.v[0].open, 56738.76);
        AN_CHECK_DBL(c.v[0].high, 56840.3);
        AN_CHECK_DBL(c.v[0].low, 56733.23);
        AN_CHECK_DBL(c.v[0].close, 56813.98);
        AN_CHECK_DBL(c.v[0].volume, 50.9752);
        AN_CHECK_DBL(c.v[1].volume, 42.089461);
    }
    /* an empty page is fine */
    AN_CHECK_OK(an_binance_parse_klines("[]", 2, "BTC/USDT", "1m", &c, &err), err);
    AN_CHECK_INT(c.n, 2);
    an_candles_free(&c);
}

static void refused(const char *label, const char *body, const char *needle)
{
    an_candles c = {0};
    an_candle keep = {60000, 1, 1, 1, 1, 1, 0};
    an_candles_push(&c, &keep, NULL); /* what was there before stays */
    an_err err = {0};
    an_code rc = an_binance_parse_klines(body, strlen(body), "BTC/USDT", "1m", &c, &err);
    AN_CHECK_MSG(rc != AN_OK, "%s accepted", label);
    AN_CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: '%s' lacks '%s'", label, err.msg, needle);
    AN_CHECK_MSG(strstr(err.msg, "BTCUSDT 1m") != NULL, "%s: '%s' does not name the series", label,
                 err.msg);
    AN_CHECK_MSG(c.n == 1, "%s: %zu candles kept", label, c.n);
    an_candles_free(&c);
}

static void test_bad_replies(void)
{
    refused("non-numeric price", "[" ROW(60000, 119999, "abc", "2", "1", "1.5", "3") "]", "open");
    refused("negative volume", "[" ROW(60000, 119999, "1", "2", "1", "1.5", "-3") "]", "volume");
    refused("number instead of string",
            "[[60000,1.0,\"2\",\"1\",\"1.5\",\"3\",119999,\"1\",1,\"1\",\"1\",\"0\"]]",
            "open is not");
    refused("string open time",
            "[[\"60000\",\"1\",\"2\",\"1\",\"1.5\",\"3\",119999,\"1\",1,\"1\",\"1\",\"0\"]]",
            "open time is not an integer");
    refused("11 fields", "[[60000,\"1\",\"2\",\"1\",\"1.5\",\"3\",119999,\"1\",1,\"1\",\"1\"]]",
            "12-field");
    refused("high below low", "[" ROW(60000, 119999, "1", "0.5", "0.9", "0.9", "3") "]",
            "high is below low");
    refused("open above high", "[" ROW(60000, 119999, "3", "2", "1", "1.5", "3") "]",
            "open is outside");
    refused("close below low", "[" ROW(60000, 119999, "1.5", "2", "1", "0.5", "3") "]",
            "close is outside");
    refused("misaligned", "[" ROW(60001, 120000, "1", "2", "1", "1.5", "3") "]", "not aligned");
    refused("bad close time",
            "[[60000,\"1\",\"2\",\"1\",\"1.5\",\"3\",120000,\"1\",1,\"1\",\"1\",\"0\"]]",
            "close time");
    refused("duplicate",
            "[" ROW(60000, 119999, "1", "2", "1", "1.5", "3") "," ROW(60000, 119999, "1", "2", "1",
                                                                      "1.5", "3") "]",
            "duplicated");
    refused("out of order",
            "[" ROW(120000, 179999, "1", "2", "1", "1.5", "3") "," ROW(60000, 119999, "1", "2", "1",
                                                                       "1.5", "3") "]",
            "out of order");
    refused("malformed", "[[60000,\"1\",\"2\"", "malformed JSON");
    refused("not an array", "{\"code\":-1121}", "not an array");
    refused("exponent", "[" ROW(60000, 119999, "1e3", "2", "1", "1.5", "3") "]", "open");
}

/* Valid JSON in other layouts parses the same: whitespace anywhere, any value
 * in the ignored field. */
static void test_layouts(void)
{
    const char *spaced =
        " \n[ [ 1618951320000 , \"56738.76000000\" ,\"56840.30000000\",\t\"56733.23000000\","
        "\"56813.98000000\",\"50.97520000\",1618951379999,\"2894123.12\",1200,\"25.1\","
        "\"1420000.5\", {\"x\": [1, true, null, \"a\\\"b\"]} ]\r\n] ";
    an_candles c = {0};
    an_err err = {0};
    AN_CHECK_OK(an_binance_parse_klines(spaced, strlen(spaced), "BTC/USDT", "1m", &c, &err), err);
    AN_CHECK_INT(c.n, 1);
    if (c.n == 1)
        AN_CHECK_DBL(c.v[0].low, 56733.23);
    an_candles_free(&c);
}

/* Every proper prefix of a good reply is broken JSON, and trailing bytes
 * after it are too: each is refused whole. */
static void test_every_prefix(void)
{
    size_t len = strlen(GOOD);
    int refused_all = 1;
    for (size_t n = 0; n < len; n++) {
        an_candles c = {0};
        an_err err = {0};
        an_code rc = an_binance_parse_klines(GOOD, n, "BTC/USDT", "1m", &c, &err);
        if (rc == AN_OK || c.n != 0 || !strstr(err.msg, "malformed JSON")) {
            refused_all = 0;
            AN_CHECK_MSG(0, "prefix of %zu bytes: rc %d, %zu candles, '%s'", n, (int)rc, c.n,
                         err.msg);
        }
        an_candles_free(&c);
        if (!refused_all)
            break;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s,", GOOD);
    refused("trailing comma", buf, "malformed JSON");
    snprintf(buf, sizeof buf, "%s[]", GOOD);
    refused("trailing array", buf, "malformed JSON");
    refused("missing comma between rows",
            "[" ROW(60000, 119999, "1", "2", "1", "1.5", "3")
                ROW(120000, 179999, "1", "2", "1", "1.5", "3") "]",
            "malformed JSON");
    refused("html", "<html>not json</html>", "malformed JSON");
    refused("bad literal", "[" ROW(60000, 119999, "1", "2", "1", "1.5", "3") ",nul]",
            "malformed JSON");
    refused("control character in a string",
            "[[60000,\"1\n\",\"2\",\"1\",\"1.5\",\"3\",119999,\"1\",1,\"1\",\"1\",\"0\"]]",
            "malformed JSON");
    refused("escaped digits", "[" ROW(60000, 119999, "\\u0031", "2", "1", "1.5", "3") "]",
            "open is not");
    refused("13 fields",
            "[[60000,\"1\",\"2\",\"1\",\"1.5\",\"3\",119999,\"1\",1,\"1\",\"1\",\"0\",7]]",
            "12-field");
    refused("row not an array", "[{\"open\":1}]", "12-field");
    refused("fractional trades",
            "[[60000,\"1\",\"2\",\"1\",\"1.5\",\"3\",119999,\"1\",1.5,\"1\",\"1\",\"0\"]]",
            "trades is not an integer");
    refused("negative open time",
            "[[-60000,\"1\",\"2\",\"1\",\"1.5\",\"3\",-1,\"1\",1,\"1\",\"1\",\"0\"]]",
            "open time is not an integer");
    refused("two dots", "[" ROW(60000, 119999, "1.2.3", "2", "1", "1.5", "3") "]", "open is not");
    refused("lone dot", "[" ROW(60000, 119999, ".", "2", "1", "1.5", "3") "]", "open is not");
    refused("empty string", "[" ROW(60000, 119999, "", "2", "1", "1.5", "3") "]", "open is not");
}

/* Decimal strings convert to exactly what strtod gives (the exchange's 8
 * decimals, long mantissas, leading and trailing zeros). */
static void test_decimals_exact(void)
{
    unsigned long long x = 12345;
    int mismatches = 0;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        /* 1 to 19 digits */
        unsigned long long a = (x >> 1) % (10000000000000000000ULL / (1ULL << ((x >> 59) % 60)));
        char num[64];
        int whole = (int)(x % 7), frac = (int)((x >> 8) % 12);
        snprintf(num, sizeof num, "%llu", a);
        size_t len = strlen(num);
        /* place a dot so there are `frac` decimals, padding with zeros */
        char dec[80];
        if ((size_t)frac >= len)
            snprintf(dec, sizeof dec, "%d.%0*d%s", whole % 2, (int)((size_t)frac - len), 0, num);
        else
            snprintf(dec, sizeof dec, "%.*s.%s", (int)(len - (size_t)frac), num,
                     num + len - (size_t)frac);
        char body[512];
        snprintf(body, sizeof body,
                 "[[60000,\"%s\",\"%s\",\"%s\",\"%s\",\"%s\",119999,\"1\",1,\"1\",\"1\","
                 "\"0\"]]",
                 dec, dec, dec, dec, dec);
        an_candles c = {0};
        an_err err = {0};
        if (an_binance_parse_klines(body, strlen(body), "BTC/USDT", "1m", &c, &err) != AN_OK) {
            if (strtod(dec, NULL) > 0 && mismatches++ < 5)
                AN_CHECK_MSG(0, "'%s' refused: %s", dec, err.msg);
        } else if (c.v[0].volume != strtod(dec, NULL) && mismatches++ < 5) {
            AN_CHECK_MSG(0, "'%s' -> %.17g, strtod %.17g", dec, c.v[0].volume, strtod(dec, NULL));
        }
        an_candles_free(&c);
    }
    AN_CHECK_INT(mismatches, 0);
}

/* Random mutations of a good reply (bytes flipped, cut, duplicated): the
 * parser never reads out of bounds (the sanitizer build checks), and what it
 * accepts is always a valid, increasing, aligned series. */
static void test_mutations(void)
{
    size_t len = strlen(GOOD);
    unsigned long long x = 99;
    int accepted = 0, bad_accept = 0;
    for (int i = 0; i < 20000; i++) {
        char *buf = calloc(
            1, len * 2 + 1); /* a duplicated span past the data reads zeros, never unset bytes */
        if (!buf)
            return;
        memcpy(buf, GOOD, len);
        size_t n = len;
        int edits = 1 + (int)(i % 4);
        for (int e = 0; e < edits; e++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(x >> 33) % n;
            switch ((x >> 20) % 4) {
            case 0: buf[at] = (char)(x >> 40); break;                          /* any byte */
            case 1: buf[at] = "[]{},\":.-0123456789e "[(x >> 40) % 22]; break; /* JSON bytes */
            case 2: n = at; break;                                             /* cut */
            case 3: /* duplicate a span */
                if (n + 16 <= len * 2) {
                    memmove(buf + at + 16, buf + at, n - at);
                    n += 16;
                }
                break;
            }
            if (n == 0)
                break;
        }
        /* no terminating NUL: the parser must respect len */
        char *exact = malloc(n ? n : 1);
        if (!exact) {
            free(buf);
            return;
        }
        memcpy(exact, buf, n);
        an_candles c = {0};
        an_err err = {0};
        if (an_binance_parse_klines(exact, n, "BTC/USDT", "1m", &c, &err) == AN_OK) {
            accepted++;
            if (c.n > 0 && an_candles_validate("BTC/USDT", "1m", c.v, c.n, &err) != AN_OK)
                bad_accept++;
        } else if (c.n != 0) {
            bad_accept++;
        }
        an_candles_free(&c);
        free(exact);
        free(buf);
    }
    AN_CHECK_INT(bad_accept, 0);
    AN_CHECK_MSG(accepted > 0, "no mutation was accepted: the check above saw nothing");
}

static void test_symbol(void)
{
    char out[32];
    an_binance_symbol("BTC/USDT", out, sizeof out);
    AN_CHECK_STR(out, "BTCUSDT");
    an_binance_options o = {0};
    o.base_url = "ftp://x";
    an_binance *b = NULL;
    an_err err = {0};
    AN_CHECK(an_binance_open(&o, &b, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "BINANCE_BASE_URL") != NULL);
}

int main(void)
{
    AN_RUN(test_good_reply);
    AN_RUN(test_bad_replies);
    AN_RUN(test_layouts);
    AN_RUN(test_every_prefix);
    AN_RUN(test_decimals_exact);
    AN_RUN(test_mutations);
    AN_RUN(test_symbol);
    return AN_TEST_DONE();
}
