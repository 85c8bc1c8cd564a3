"""The queue: waiting stages oldest first, filters and search in the URL, keyset pages, exact counts."""
from __future__ import annotations

import re
from html import unescape
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from lhb_review.extensions import db
from lhb_review.core.stages import Stage
from tests.factories import make_order, make_stage, make_user
from tests.sql_counter import count_statements

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
ROW_RE = re.compile(r'href="/orders/([^/"]+)/stages/(\w+)">[^<]*</a>\s*<div class="sub"><code>')


@pytest.fixture
def reviewer(app, login_as):
    return login_as(make_user("rev@example.com"))


def stage_at(minutes: int, stage: str = "preBria", status: str = "pending", **order_fields):
    order = make_order(**order_fields)
    if status == "approved":  # stages are approved in order: the earlier ones of this order are approved too
        for earlier in Stage(stage).earlier:
            make_stage(order, earlier.value, "approved", created_at=T0 + timedelta(minutes=minutes))
    make_stage(order, stage, status, created_at=T0 + timedelta(minutes=minutes))
    return order.order_id


def listed(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return ROW_RE.findall(response.get_data(as_text=True))


def next_link(response, rel: str = "next") -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', response.get_data(as_text=True))
    return match.group(1).replace("&amp;", "&") if match else None


def test_queue_lists_waiting_stages_oldest_first(app, reviewer):
    newer = stage_at(30)
    older = stage_at(10, status="in_review")
    stage_at(5, status="approved")
    stage_at(6, status="rejected")
    assert listed(reviewer.get("/queue")) == [(older, "preBria"), (newer, "preBria")]
    assert listed(reviewer.get("/")) == [(older, "preBria"), (newer, "preBria")]


@pytest.mark.parametrize("status", ["pending", "in_review", "approved", "rejected"])
def test_any_single_status_can_be_selected(app, reviewer, status):
    wanted = {s: stage_at(i, status=s) for i, s in enumerate(["pending", "in_review", "approved", "rejected"])}
    assert listed(reviewer.get(f"/queue?status={status}")) == [(wanted[status], "preBria")]


def test_status_any_lists_every_status(app, reviewer):
    ids = [stage_at(i, status=s) for i, s in enumerate(["approved", "pending", "rejected"])]
    assert [o for o, _ in listed(reviewer.get("/queue?status=any"))] == ids


@pytest.mark.parametrize("query,expected", [
    ("stage=postBria", ["B"]),
    ("platform=amazon", ["B"]),
    ("project=bedtime-hero", ["C"]),
    ("stage=preBria&platform=shopify", ["A", "C"]),
    ("stage=postPdf", []),
])
def test_filters_by_stage_platform_and_project(app, reviewer, query, expected):
    ids = {
        "A": stage_at(1, "preBria", platform="shopify", project="my-first-adventure"),
        "B": stage_at(2, "postBria", platform="amazon", project="my-first-adventure"),
        "C": stage_at(3, "preBria", platform="shopify", project="bedtime-hero"),
    }
    assert [o for o, _ in listed(reviewer.get(f"/queue?{query}"))] == [ids[k] for k in expected]


@pytest.mark.parametrize("q,expected", [
    ("LHB-77", ["exact"]),                 # exact order id
    ("113-1234567-7654321", ["amazon"]),   # exact Amazon order id
    ("LHB-7", []),                         # order ids match exactly, not in part
    ("GRACE.HOPPER@", ["amazon"]),         # e-mail, any case, in part
    ("ada love", ["exact"]),               # full name, in part
    ("hopper", ["amazon"]),
    ("%", []),                             # LIKE wildcards are searched for literally
    ("_", []),
])
def test_search_by_order_id_amazon_id_name_or_email(app, reviewer, q, expected):
    ids = {
        "exact": stage_at(1, order_id="LHB-77", customer_first_name="Ada", customer_last_name="Lovelace",
                          customer_email="ada@example.com"),
        "amazon": stage_at(2, platform="amazon", amazon_order_id="113-1234567-7654321", customer_first_name="Grace",
                           customer_last_name="Hopper", customer_email="grace.hopper@example.com"),
    }
    response = reviewer.get("/queue", query_string={"q": q})
    assert [o for o, _ in listed(response)] == [ids[k] for k in expected]


def test_keyset_pages_cover_every_row_once_in_order(app, reviewer):
    ids = [stage_at(i // 2) for i in range(60)]  # pairs share a created_at: the id breaks the tie
    response = reviewer.get("/queue?size=25")
    seen, pages = [], []
    while True:
        page = [o for o, _ in listed(response)]
        pages.append(page)
        seen += page
        link = next_link(response)
        if not link:
            break
        assert "size=25" in link
        response = reviewer.get(link)
    assert [len(p) for p in pages] == [25, 25, 10]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 60
    order = {o: i for i, o in enumerate(ids)}
    assert [order[o] // 2 for o in seen] == sorted(order[o] // 2 for o in seen)

    back = reviewer.get(next_link(response, "prev"))
    assert [o for o, _ in listed(back)] == pages[1]
    assert "not the first page" in back.get_data(as_text=True)


def test_pager_links_keep_the_filters(app, reviewer):
    for i in range(30):
        stage_at(i, "postBria", platform="amazon")
    response = reviewer.get("/queue?stage=postBria&platform=amazon&size=25")
    params = parse_qs(urlsplit(next_link(response)).query)
    assert params["stage"] == ["postBria"] and params["platform"] == ["amazon"] and params["size"] == ["25"]
    assert "cursor" in params


@pytest.mark.parametrize("size,rows", [("1000", 100), ("30", 50), ("1", 25), ("100", 100), ("-5", 25)])
def test_page_size_is_clamped_to_the_fixed_sizes(app, reviewer, size, rows):
    for i in range(120):
        stage_at(i)
    assert len(listed(reviewer.get(f"/queue?size={size}"))) == rows


@pytest.mark.parametrize("query", [
    "cursor=not-a-cursor",
    "cursor=WyJhIiwiMjAyNi0wMS0wMVQwMDowMDowMCswMDowMCIsIjEifQ.forged",
    "stage=preBriaa",
    "status=done",
    "size=lots",
    "q=%00",
    "platform=" + "x" * 101,
])
def test_bad_parameters_answer_400_with_a_clear_message(app, reviewer, query):
    stage_at(1)
    response = reviewer.get(f"/queue?{query}")
    if query == "q=%00":  # control characters are refused at the edge for every page (web.edge)
        assert response.status_code == 422 and "control characters" in response.get_data(as_text=True)
        return
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "data-error-message" in body and "Start again from the first page" in body


def test_tampered_cursor_is_refused(app, reviewer):
    for i in range(30):
        stage_at(i)
    link = next_link(reviewer.get("/queue?size=25"))
    cursor = parse_qs(urlsplit(link).query)["cursor"][0]
    payload, _, signature = cursor.rpartition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    response = reviewer.get("/queue", query_string={"cursor": forged})
    assert response.status_code == 400
    assert "broken or out of date" in response.get_data(as_text=True)


def test_htmx_filter_gets_only_the_list(app, reviewer):
    order_id = stage_at(1)
    response = reviewer.get("/queue?stage=preBria", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="queue-rows"')
    assert "<html" not in body and "queue-filters" not in body
    assert order_id in body
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_filter_pushes_the_short_form_of_the_url(app, reviewer):
    response = reviewer.get("/queue?q=&stage=postBria&status=waiting&platform=&project=amazon-kids&size=50",
                            headers={"HX-Request": "true"})
    assert response.headers["HX-Push-Url"] == "/queue?stage=postBria&project=amazon-kids"


def test_page_without_htmx_has_the_filter_form_wired_for_htmx(app, reviewer):
    body = reviewer.get("/queue?platform=amazon").get_data(as_text=True)
    form = re.search(r'<form class="queue-filters".*?>', body, re.S).group(0)
    assert 'method="get"' in form and 'hx-get="/queue"' in form
    assert 'hx-target="#queue-rows"' in form and 'hx-push-url="true"' in form
    assert '<option value="amazon" selected>' in body


def test_counts_at_a_glance_per_stage_and_status(app, reviewer):
    for i, (stage, status) in enumerate([("preBria", "pending"), ("preBria", "pending"), ("preBria", "in_review"),
                                         ("postBria", "approved"), ("postPdf", "rejected")]):
        stage_at(i, stage, status)
    body = reviewer.get("/queue").get_data(as_text=True)
    glance = body[body.index('class="glance"'):body.index('id="queue-filters"')]
    waiting = re.findall(r"<strong>([^<]+)</strong> waiting", glance)
    assert waiting == ["3", "0", "0"]
    assert re.search(r'stage=preBria&amp;status=pending".*?count-n">2<', glance, re.S)
    assert re.search(r'stage=postPdf&amp;status=rejected".*?count-n">1<', glance, re.S)


def glance_of(body: str) -> str:
    return body[body.index('id="glance"'):body.index('id="queue-filters"')]


def test_counts_are_exact_above_a_thousand_with_thousands_separators(app, reviewer):
    db.session.execute(text(
        "INSERT INTO orders (order_id, platform, project, customer_first_name, customer_last_name, customer_email,"
        " order_date, status) SELECT 'BULK-' || n, 'shopify', 'p', 'A', 'B', 'a@b.c', now(), 'in_review'"
        " FROM generate_series(1, 1234) n"))
    db.session.execute(text(
        "INSERT INTO review_stages (order_id, stage_name, status) SELECT 'BULK-' || n, 'preBria',"
        " CASE WHEN n <= 1001 THEN 'pending' ELSE 'in_review' END FROM generate_series(1, 1234) n"))
    db.session.commit()
    glance = glance_of(reviewer.get("/queue").get_data(as_text=True))
    assert re.findall(r"<strong>([^<]+)</strong> waiting", glance) == ["1,234", "0", "0"]
    assert re.search(r'stage=preBria&amp;status=pending".*?count-n">1,001<', glance, re.S)
    assert re.search(r'stage=preBria&amp;status=in_review".*?count-n">233<', glance, re.S)
    assert "1000+" not in glance


def test_the_glance_follows_the_platform_and_project_filter_and_says_so(app, reviewer):
    for i, (platform, project) in enumerate([("amazon", "bedtime-hero"), ("amazon", "bedtime-hero"),
                                             ("amazon", "space-hero"), ("shopify", "bedtime-hero")]):
        stage_at(i, platform=platform, project=project)

    everything = glance_of(reviewer.get("/queue").get_data(as_text=True))
    assert re.findall(r"<strong>([^<]+)</strong> waiting", everything)[0] == "4"
    assert "All stages: every platform and project." in everything

    amazon = glance_of(reviewer.get("/queue?platform=amazon").get_data(as_text=True))
    assert re.findall(r"<strong>([^<]+)</strong> waiting", amazon)[0] == "3"
    assert "Counts for platform <strong>amazon</strong>, every project." in amazon

    both = glance_of(reviewer.get("/queue?platform=amazon&project=bedtime-hero&q=nobody&checks=failing")
                     .get_data(as_text=True))
    assert re.findall(r"<strong>([^<]+)</strong> waiting", both)[0] == "2"  # search and checks do not narrow
    assert "Counts for platform <strong>amazon</strong>, project <strong>bedtime-hero</strong>." in both
    assert "Search and the machine-checks filter do not narrow these counts." in both
    links = [unescape(h) for h in re.findall(r'<a href="([^"]+)"', both)]
    assert links and all(parse_qs(urlsplit(h).query)["platform"] == ["amazon"] for h in links)
    assert all(parse_qs(urlsplit(h).query)["project"] == ["bedtime-hero"] for h in links)


def test_a_fragment_brings_new_counts_only_when_platform_or_project_changed(app, reviewer):
    stage_at(1, platform="amazon")
    stage_at(2, platform="shopify")
    htmx = {"HX-Request": "true", "HX-Current-URL": "http://localhost/queue?q=ada"}

    searched = reviewer.get("/queue?q=adam", headers=htmx).get_data(as_text=True)
    assert 'id="glance"' not in searched

    narrowed = reviewer.get("/queue?platform=amazon", headers=htmx).get_data(as_text=True)
    glance = narrowed[narrowed.index('id="glance"'):]
    assert 'hx-swap-oob="true"' in glance[:glance.index(">")]
    assert "Counts for platform <strong>amazon</strong>" in glance
    assert re.findall(r"<strong>([^<]+)</strong> waiting", glance)[0] == "1"

    same = {"HX-Request": "true", "HX-Current-URL": "http://localhost/queue?platform=amazon"}
    assert 'id="glance"' not in reviewer.get("/queue?platform=amazon&q=x", headers=same).get_data(as_text=True)
    widened = reviewer.get("/queue", headers=same).get_data(as_text=True)
    assert "All stages: every platform and project." in widened


def test_statements_per_queue_page_do_not_grow_with_the_data(app, reviewer):
    def statements(query: str) -> int:
        with count_statements() as seen:
            assert reviewer.get(query).status_code == 200
        return len(seen)

    for i in range(3):
        stage_at(i)
    few = [statements(q) for q in ("/queue", "/queue?q=ada", "/queue?stage=preBria&platform=shopify")]
    for i in range(3, 80):
        stage_at(i)
    many = [statements(q) for q in ("/queue", "/queue?q=ada", "/queue?stage=preBria&platform=shopify")]
    assert few == many
    assert max(many) <= 4


def test_queue_sql_has_no_offset_and_counts_nothing_over_the_stages(app, reviewer):
    stage_at(1)
    with count_statements() as seen:
        reviewer.get("/queue?q=ada&platform=amazon")
    sql = " ".join(seen).upper()
    assert "OFFSET" not in sql and "DISTINCT" not in sql and "COUNT(" not in sql
    [read] = [s for s in seen if "stage_count_deltas" in s]  # the counts: one statement over the kept sums
    assert "review_stages" not in read and "GROUP BY" in read.upper()


def test_customer_markup_is_shown_as_text(app, reviewer):
    stage_at(1, customer_first_name="<script>alert(1)</script>", customer_email="x@example.com")
    body = reviewer.get("/queue").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_empty_queue_says_so(app, reviewer):
    assert "All caught up" in reviewer.get("/queue").get_data(as_text=True)
    assert "Nothing matches these filters" in reviewer.get("/queue?stage=postPdf").get_data(as_text=True)


# --- search finds its orders first -------------------------------------------------------------------------

def searched(app, q: str) -> list[str]:
    from lhb_review.review import queries

    return [row.order_id for row in queries.queue_page(queries.parse_queue_filter({"q": q})).rows]


def test_a_search_matching_few_orders_lists_them_first_and_one_matching_many_walks_the_queue(app, monkeypatch):
    from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList

    from lhb_review.review import queries

    for n in range(6):
        make_stage(make_order(customer_first_name="Grace" if n < 4 else "Alan"), "preBria", "pending")
    monkeypatch.setattr(queries, "SEARCH_LIST_MAX", 3)

    assert isinstance(queries.search_filter("Alan"), BinaryExpression)  # two matches: looked up by order id
    assert isinstance(queries.search_filter("Grace"), BooleanClauseList)  # four: the search's own condition
    assert len(searched(app, "Alan")) == 2 and len(searched(app, "Grace")) == 4


def test_a_search_answers_the_same_whichever_way_it_finds_its_orders(app, monkeypatch):
    from lhb_review.review import queries

    for n in range(5):
        make_stage(make_order(customer_first_name="Grace"), "preBria", "pending")
        make_stage(make_order(customer_first_name="Alan"), "preBria", "pending")
    listed = searched(app, "grace")
    monkeypatch.setattr(queries, "SEARCH_LIST_MAX", 0)
    assert searched(app, "grace") == listed and len(listed) == 5
