"""schemathesis hooks of tests/cli/test_schemathesis.sh (SCHEMATHESIS_HOOKS).

OpenAPI 3.0 cannot say that one value depends on another, so openapi.json
states these rules in its descriptions, and the hooks keep generated
requests within them (the server refuses each with a 400 that names the
rule, which schemathesis would count as a valid request refused):
  - the data routes: end must be after start; update_market_data: until
    must be after since;
  - optimize_strategy: the grid's combinations must not exceed
    max_combinations, and split excludes a walk_forward over 0.
Nothing else is filtered: every other refusal of a schema-valid request, and
every acceptance of an invalid one, is a failure.
"""
import schemathesis

TIME_FORMS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M",
              "%Y-%m-%dZ", "%Y-%m-%d")


def time_ms(text):
    """The instant of an openapi.json Time (ms), or None when it is not one."""
    import datetime

    if not isinstance(text, str):
        return None
    if text.isdigit():
        return int(text)
    t = text.replace(" ", "T").replace("+00:00", "Z")
    for form in TIME_FORMS:
        try:
            d = datetime.datetime.strptime(t, form).replace(tzinfo=datetime.timezone.utc)
            return int(d.timestamp() * 1000)
        except ValueError:
            continue
    return None


@schemathesis.hook
def filter_query(ctx, query):
    if not query:
        return True
    start, end = time_ms(query.get("start")), time_ms(query.get("end"))
    return start is None or end is None or end > start


def combinations(grid):
    n = 1
    for part in grid.split(","):
        _, _, values = part.partition("=")
        n *= len(values.split("|"))
    return n


@schemathesis.hook
def filter_body(ctx, body):
    if not isinstance(body, dict):
        return True
    since, until = time_ms(body.get("since")), time_ms(body.get("until"))
    if "grid" not in body and since is not None and until is not None and until <= since:
        return False
    if not isinstance(body.get("grid"), str):
        return True
    cap = body.get("max_combinations")
    if isinstance(cap, int) and not isinstance(cap, bool) and combinations(body["grid"]) > cap:
        return False
    wf = body.get("walk_forward")
    return not ("split" in body and isinstance(wf, int) and wf > 0)
