"""webapp/svg.py: the server-drawn charts of the reports. Pure functions: numbers in, SVG text out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from webapp import svg

NS = "{http://www.w3.org/2000/svg}"


def _tree(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - our own output; well-formed XML, or this raises


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (-3, 1), (1, 1), (1.5, 2), (3, 5), (7, 10), (10, 10), (11, 20), (99_999, 100_000)]
)
def test_nice_ceiling_rounds_up_to_1_2_5(value, ceiling):
    assert svg.nice_ceiling(value) == ceiling


def test_hbars_widths_are_proportional_to_the_values_on_a_round_scale():
    tree = _tree(svg.hbars([("Delivered", 80), ("Failed", 20)], title="By status"))
    widths = [float(r.get("width").removesuffix("%")) for r in tree.iter(f"{NS}rect")]
    assert len(widths) == 2
    assert widths[0] == pytest.approx(4 * widths[1])  # 80 vs 20
    # scale top is 100 (nice ceiling of 80): 80 fills 80 % of the bar span, 80 % of the chart's width
    assert widths[0] == pytest.approx(80 * 0.8, abs=0.01)
    titles = [t.text for t in tree.iter(f"{NS}title")]
    assert titles[0] == "By status" and "Delivered: 80" in titles and "Failed: 20" in titles
    assert tree.get("role") == "img" and tree.get("aria-label") == "By status"


def test_labels_and_titles_are_escaped():
    hostile = 'https://ex.com/?a=1&b=<script>alert("x")</script>'
    markup = str(svg.hbars([(hostile, 3)], title='<b>"Top" links</b>'))
    assert "<script>" not in markup and "<b>" not in markup
    tree = _tree(markup)  # still well-formed
    assert any(hostile in (t.text or "") for t in tree.iter(f"{NS}title"))


def test_nothing_to_show_says_so():
    for markup in (
        svg.hbars([], title="t"),
        svg.hbars([("a", 0)], title="t"),
        svg.columns(["x"], [svg.Series("s", [0])], title="t"),
        svg.line([], [svg.Series("s", [])], title="t"),
    ):
        assert "No data yet." in markup
        _tree(markup)


def test_stacked_columns_stack_each_series_on_the_previous_one():
    tree = _tree(
        svg.columns(
            ["d1", "d2"],
            [svg.Series("Delivered", [3, 1], "#00ff00"), svg.Series("Failed", [1, 0], "#ff0000")],
            title="Per day",
        )
    )
    bars = [r for r in tree.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    # three non-zero values → three bars; the failed bar of d1 sits right on top of its delivered bar
    assert len(bars) == 3
    d1_delivered, d1_failed = bars[0], bars[1]
    assert float(d1_failed.get("y")) + float(d1_failed.get("height")) == pytest.approx(float(d1_delivered.get("y")))
    assert float(d1_delivered.get("height")) == pytest.approx(3 * float(d1_failed.get("height")), abs=0.2)
    assert d1_failed.find(f"{NS}title").text == "d1 · Failed: 1"
    # a legend for more than one series
    texts = [t.text for t in tree.iter(f"{NS}text")]
    assert "Delivered" in texts and "Failed" in texts


def test_line_has_a_point_per_label_and_at_most_eight_axis_labels():
    labels = [f"{h:02d}:00" for h in range(24)]
    tree = _tree(svg.line(labels, [svg.Series("Delivered", list(range(24)))], title="Over time"))
    points = next(tree.iter(f"{NS}polyline")).get("points").split()  # in the plot's inner <svg>
    assert len(points) == 24
    # y grows downward: the last (largest) value is highest on the picture
    assert float(points[-1].split(",")[1]) < float(points[0].split(",")[1])
    shown = [t.text for t in tree.iter(f"{NS}text") if t.text in labels]
    assert 1 < len(shown) <= 8
    assert len(list(tree.iter(f"{NS}circle"))) == 24


def test_numbers_read_with_separators():
    markup = str(svg.hbars([("Delivered", 100_000)], title="t"))
    assert re.search(r">100,000<", markup)


def test_text_is_drawn_in_pixels_whatever_the_width():
    # no viewBox on the chart: nothing scales it, so its 12 px labels are 12 px on a 375 px phone too
    # (tests/browser/test_blasts_browser.py measures them there); positions across are percentages
    for markup in (
        svg.hbars([("Delivered", 3)], title="t"),
        svg.columns(["a", "b"], [svg.Series("s", [1, 2])], title="t"),
        svg.line(["a", "b"], [svg.Series("s", [1, 2])], title="t"),
    ):
        tree = _tree(markup)
        assert tree.get("viewBox") is None and tree.get("width") == "100%" and tree.get("height").isdigit()
        assert {t.get("font-size") for t in tree.iter(f"{NS}text")} == {str(svg.FONT_PX)}


def test_every_other_x_label_is_marked_for_phones_and_the_legend_wraps():
    labels = [f"d{i}" for i in range(30)]
    series = [svg.Series(f"series {n}", [1] * 30) for n in range(5)]
    tree = _tree(svg.columns(labels, series, title="t", height=220))
    ticks = [t for t in tree.iter(f"{NS}text") if t.text in labels]
    assert [t.get("class") for t in ticks] == [None, "alt"] * (len(ticks) // 2) + [None] * (len(ticks) % 2)
    assert len(ticks) <= svg.MAX_X_LABELS
    # five series: two legend rows of at most three, below the 220 px plot
    assert int(tree.get("height")) == 220 + 2 * (svg.FONT_PX + 6) + 4
