from engine.demo import PROBES, has_sql_comment, held_out_prompts, is_formatted


def test_style_probes():
    preferred = "-- Names of users over 30\nSELECT\n    name\nFROM\n    users\nWHERE\n    age > 30;"
    assert has_sql_comment(preferred) and is_formatted(preferred)
    one_line = "SELECT name FROM users WHERE age > 30;"
    assert not has_sql_comment(one_line) and not is_formatted(one_line)
    assert not has_sql_comment("-- Names of users\n--\n--\n--")  # degenerate: no query
    assert not has_sql_comment("SELECT name FROM users; -- done")  # the comment must come first
    assert set(PROBES) == {"comment_fraction", "formatted_fraction"}


def test_held_out_prompts_are_the_dpo_eval_requests():
    prompts = held_out_prompts()
    assert len(prompts) == 50 and all("Table" in p or "table" in p for p in prompts)
