"""Loaders: one file in, articles (or a LoadError / per-record problems) out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.article_split import is_cut_off, is_sign_off, split_articles
from retrieval.errors import LoadError
from retrieval.files import SourceFile, discover
from retrieval.loaders import load_file, split_paragraphs
from tests.helpers import BROKEN, CORPUS, SHAPES


def write(folder: Path, name: str, content: str | bytes) -> SourceFile:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return SourceFile(path, name)


def load(folder: Path, name: str, content: str | bytes):
    return load_file(write(folder, name, content))


def only_article(folder: Path, name: str, content: str | bytes):
    loaded = load(folder, name, content)
    assert loaded.problems == []
    assert len(loaded.articles) == 1
    return loaded.articles[0]


# -- plain text ---------------------------------------------------------------------


def test_txt_title_from_headline_line(tmp_path: Path) -> None:
    article = only_article(
        tmp_path,
        "ferry-news.txt",
        "Ferry Fares Frozen for Another Year\n\nThe operator kept fares as they are.\n\n"
        "Islanders welcomed the news.\n",
    )
    assert article.title == "Ferry Fares Frozen for Another Year"
    assert article.paragraphs == [
        "The operator kept fares as they are.",
        "Islanders welcomed the news.",
    ]
    assert article.id == "ferry-news"
    assert article.source == "ferry-news.txt"


def test_txt_title_from_file_name_when_first_line_is_a_sentence(tmp_path: Path) -> None:
    article = only_article(
        tmp_path,
        "harbour_wall-repairs.txt",
        "The harbour wall will be repaired in spring.\n\nWork starts in March.\n",
    )
    assert article.title == "Harbour wall repairs"
    assert article.paragraphs[0] == "The harbour wall will be repaired in spring."


def test_txt_hard_wrapped_lines_are_joined_within_a_paragraph(tmp_path: Path) -> None:
    article = only_article(
        tmp_path,
        "wrapped.txt",
        "Wrapped Text\n\nThis paragraph was wrapped\nat forty columns   by an old\n  editor.\n\n"
        "Second paragraph.\n",
    )
    assert article.paragraphs == [
        "This paragraph was wrapped at forty columns by an old editor.",
        "Second paragraph.",
    ]


def test_txt_without_blank_lines_has_one_paragraph_per_line(tmp_path: Path) -> None:
    article = only_article(
        tmp_path,
        "lines.txt",
        "Market Day Returns\nStalls open at eight.\nThe fish van comes at nine.\nMusic at noon.\n",
    )
    assert article.title == "Market Day Returns"
    assert article.paragraphs == [
        "Stalls open at eight.",
        "The fish van comes at nine.",
        "Music at noon.",
    ]


def test_split_paragraphs_ignores_whitespace_only_lines_and_form_feeds() -> None:
    assert split_paragraphs("\f\n  One.\n \t \nTwo\nstill two.\n\n\n") == ["One.", "Two still two."]


def test_crlf_line_endings(tmp_path: Path) -> None:
    article = only_article(tmp_path, "crlf.txt", b"Title Line\r\n\r\nFirst.\r\n\r\nSecond.\r\n")
    assert article.title == "Title Line"
    assert article.paragraphs == ["First.", "Second."]


@pytest.mark.parametrize("separator", ["---", "-----", "\f", "  ---  "])
def test_txt_with_explicit_separators_holds_several_articles(
    tmp_path: Path, separator: str
) -> None:
    text = (
        "Gull Island Post Office Saved\n\nThe post office will stay open.\n\nVolunteers run it.\n"
        f"{separator}\n"
        "Lifeboat Day Raises Record Sum\n\nThe lifeboat day raised four thousand pounds.\n"
    )
    articles = load(tmp_path, "bundle.txt", text).articles
    assert [a.title for a in articles] == [
        "Gull Island Post Office Saved",
        "Lifeboat Day Raises Record Sum",
    ]
    assert [a.id for a in articles] == ["bundle#1", "bundle#2"]
    assert [a.source for a in articles] == ["bundle.txt#1", "bundle.txt#2"]
    assert articles[0].paragraphs == ["The post office will stay open.", "Volunteers run it."]
    assert articles[1].paragraphs == ["The lifeboat day raised four thousand pounds."]


def test_inline_form_feed_between_articles(tmp_path: Path) -> None:
    articles = load(
        tmp_path, "ff.txt", "First Piece\n\nBody one.\n\fSecond Piece\n\nBody two.\n"
    ).articles
    assert [a.title for a in articles] == ["First Piece", "Second Piece"]


def test_dashes_inside_a_line_do_not_split(tmp_path: Path) -> None:
    article = only_article(
        tmp_path, "dashes.txt", "One Piece\n\nScores were 3---1 at half time.\n\nThen rain.\n"
    )
    assert article.paragraphs == ["Scores were 3---1 at half time.", "Then rain."]


def test_digest_in_the_shape_of_a_real_export() -> None:
    """An opinion piece ending with an author line and a translator credit, then the
    openings of two other pieces, each cut off mid-sentence."""
    loaded = load_file(SourceFile(SHAPES / "digest.txt", "digest.txt"))
    articles = loaded.articles
    assert [a.title for a in articles] == [
        "Why the Harbour Wall Should Stay Public",
        "The Fishermen Who Became Tour Guides",
        "A Quiet Revolution in the Town Allotments",
    ]
    assert [a.id for a in articles] == ["digest#1", "digest#2", "digest#3"]
    first = articles[0]
    # The sign-off lines stay with the piece they sign.
    assert first.paragraphs[-2:] == [
        "Marguerite Olsen is a historian at the University of Fenwick.",
        "Translated by Piet de Vries.",
    ]
    assert len(first.paragraphs) == 6
    assert first.paragraphs[0].startswith("Every town has a place")
    assert articles[1].paragraphs[0].endswith("the money, he admits, is")
    assert articles[2].paragraphs[0].endswith("which caused,")


def test_excerpts_without_headlines_get_a_title_from_their_first_words(tmp_path: Path) -> None:
    cut = (
        "The town band has rehearsed in the same drill hall since 1921, through two wars, "
        "a fire and a flood, and its members say that the hall itself is part of the sound, "
        "with its wooden floor and the high roof that carries every note of the tubas out "
        "over the harbour on a still evening when the"
    )
    following = "A second excerpt begins here and is complete."
    articles = load(tmp_path, "excerpts.txt", f"{cut}\n\n{following}\n").articles
    assert len(articles) == 2
    assert articles[0].paragraphs == [cut]
    assert articles[0].title == "The town band has rehearsed in the same drill hall since 1921,…"
    assert articles[1].title == following


def test_a_line_break_mid_sentence_does_not_split_an_article() -> None:
    long = " ".join(["word"] * 60)
    # The next paragraph starts in lower case: the same sentence continues.
    assert split_articles([long, "and so the sentence goes on."]) == [
        [long, "and so the sentence goes on."]
    ]


def test_sign_off_needs_a_body_of_two_paragraphs() -> None:
    paragraphs = ["Only one paragraph of body.", "Jo Park is a reporter at the Courier.", "Next."]
    assert split_articles(paragraphs) == [paragraphs]


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        ("Marguerite Olsen is a historian at the University of Fenwick.", True),
        ("Translated by Piet de Vries.", True),
        ("Additional reporting by Sam Holt.", True),
        ("Mr. Holt is a fisherman.", False),
        ("The council is a mess.", False),
        ("Jo Park is a reporter. She lives in town.", False),
    ],
)
def test_is_sign_off(paragraph: str, expected: bool) -> None:
    assert is_sign_off(paragraph) is expected


def test_is_cut_off() -> None:
    words = " ".join(["word"] * 55)
    assert is_cut_off(words)
    assert is_cut_off(words + ",")
    assert not is_cut_off(words + ".")
    assert not is_cut_off("Short and unfinished")


# -- markdown ---------------------------------------------------------------------------


def test_markdown_front_matter() -> None:
    loaded = load_file(SourceFile(CORPUS / "orchestra.md", "orchestra.md"))
    (article,) = loaded.articles
    assert article.title.startswith("The Tram Depot Orchestra Wants You")
    assert article.url == "https://fenwick-courier.example/arts/tram-depot-orchestra"
    assert article.date == "2023-10-02"  # a YAML date, turned back into text
    assert article.author == "Ines Halloran"
    assert article.id == "orchestra"
    assert len(article.paragraphs) == 5
    assert not article.text.startswith("---")


@pytest.mark.parametrize(
    "text",
    [
        "# Harbour Notes #\n\nThe tide was high.\n\nBoats stayed in.\n",
        # A heading directly followed by text, with no blank line between.
        "# Harbour Notes\nThe tide was high.\n\nBoats stayed in.\n",
    ],
    ids=["blank-line", "tight"],
)
def test_markdown_heading_as_title(tmp_path: Path, text: str) -> None:
    article = only_article(tmp_path, "notes.md", text)
    assert article.title == "Harbour Notes"
    assert article.paragraphs == ["The tide was high.", "Boats stayed in."]


def test_markdown_front_matter_title_wins_over_heading(tmp_path: Path) -> None:
    article = only_article(
        tmp_path, "both.md", "---\ntitle: From Front Matter\n---\n\n# Heading\n\nText.\n"
    )
    assert article.title == "From Front Matter"


def test_markdown_without_title_uses_file_name(tmp_path: Path) -> None:
    article = only_article(tmp_path, "quiet-week.md", "Nothing happened this week.\n")
    assert article.title == "Quiet week"


def test_markdown_bad_front_matter_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="front matter"):
        load(tmp_path, "bad.md", "---\ntitle: [unclosed\n---\n\nText.\n")


# -- html ---------------------------------------------------------------------------------


def test_html_extraction_keeps_the_article_and_drops_boilerplate() -> None:
    (article,) = load_file(SourceFile(CORPUS / "bakery.html", "bakery.html")).articles
    assert article.title == "Dough Together: Fenwick's Bakery Co-op Turns One"
    assert article.url == "https://fenwick-courier.example/food/bakery-co-op"
    assert article.author == "Oskar Lindqvist"
    assert article.date == "2024-02-11"
    assert len(article.paragraphs) == 5
    assert article.paragraphs[0].startswith("A year ago the last bakery")
    for boilerplate in ("Courier home", "Sign in", "showAds", "ads =", "Terms", "Advertise"):
        assert boilerplate not in article.text
    # The title is not repeated as the first paragraph.
    assert article.paragraphs[0] != article.title


def test_html_with_no_body_text_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError):
        load(tmp_path, "blank.html", "<html><head><title>Blank</title></head><body></body></html>")


def test_html_with_only_navigation_is_a_load_error(tmp_path: Path) -> None:
    html = (
        "<html><head><title>Site</title></head><body>"
        "<nav><a href=/>Home</a> | <a href=/news>News</a></nav>"
        "<footer>Copyright 2024 Example. Privacy.</footer></body></html>"
    )
    with pytest.raises(LoadError):
        load(tmp_path, "index.html", html)


# -- json and json lines ----------------------------------------------------------------


RECORD = {"title": "Beach Huts for Rent", "text": "Huts cost ten pounds a day.\n\nBook early."}


def test_json_list(tmp_path: Path) -> None:
    records = [{**RECORD, "id": "huts"}, {"title": "No Id", "text": "Second."}]
    articles = load(tmp_path, "list.json", json.dumps(records)).articles
    assert [a.id for a in articles] == ["huts", "list.json#2"]
    assert articles[0].paragraphs == ["Huts cost ten pounds a day.", "Book early."]
    assert articles[0].source == "list.json#1"


def test_json_object_with_articles_key() -> None:
    articles = load_file(SourceFile(CORPUS / "clubs.json", "clubs.json")).articles
    assert [a.id for a in articles] == ["bees-2024", "skatepark"]
    assert articles[0].title == "The Allotment Beekeepers Fight the Varroa Mite"
    assert articles[0].date == "2024-05-18"
    assert articles[0].author == "Hetty Osborne"
    assert articles[1].url is None


def test_json_single_object(tmp_path: Path) -> None:
    (article,) = load(tmp_path, "one.json", json.dumps({**RECORD, "id": 17})).articles
    assert article.id == "17"
    assert article.title == "Beach Huts for Rent"


def test_jsonl_ids_kept_as_given(tmp_path: Path) -> None:
    lines = [
        {**RECORD, "id": "Z-9", "url": "https://x.example/z", "date": "2024-01-01", "author": "A"},
        {**RECORD, "id": "a/b c"},
        {"text": "No title here. Just text."},
    ]
    articles = load(tmp_path, "feed.jsonl", "\n".join(json.dumps(r) for r in lines)).articles
    assert [a.id for a in articles] == ["Z-9", "a/b c", "feed.jsonl:3"]
    assert articles[0].url == "https://x.example/z"
    assert articles[0].date == "2024-01-01"
    assert articles[0].author == "A"
    assert articles[2].title == "No title here."


def test_jsonl_record_with_unicode_line_separators(tmp_path: Path) -> None:
    record = {"id": "sep", "title": "Separators", "text": "One\u2028two. Three\u0085four."}
    lines = [json.dumps(record, ensure_ascii=False), json.dumps({**RECORD, "id": "next"})]
    loaded = load(tmp_path, "sep.jsonl", "\n".join(lines) + "\n")
    assert loaded.problems == []
    assert [a.id for a in loaded.articles] == ["sep", "next"]
    assert loaded.articles[1].source == "sep.jsonl:2"


def test_jsonl_bad_line_keeps_the_good_records_and_reports_the_line() -> None:
    loaded = load_file(SourceFile(BROKEN / "mixed.jsonl", "mixed.jsonl"))
    assert [a.id for a in loaded.articles] == ["lighthouse", "swim-club"]
    assert len(loaded.problems) == 1
    problem = loaded.problems[0]
    assert problem.where == "mixed.jsonl:2"
    assert "invalid JSON" in problem.reason


def test_json_records_without_text_are_problems(tmp_path: Path) -> None:
    lines = [json.dumps(RECORD), json.dumps({"title": "Empty", "text": "  "}), "[1, 2]"]
    loaded = load(tmp_path, "some.jsonl", "\n".join(lines))
    assert len(loaded.articles) == 1
    assert [(p.where, p.reason) for p in loaded.problems] == [
        ("some.jsonl:2", 'no "text"'),
        ("some.jsonl:3", "not a JSON object"),
    ]


def test_invalid_json_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="invalid JSON"):
        load_file(SourceFile(BROKEN / "invalid.json", "invalid.json"))


def test_empty_json_list_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError):
        load(tmp_path, "none.json", "[]")


# -- reading bytes --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["photo.txt", "empty.md"])
def test_broken_files_raise_load_error(name: str) -> None:
    with pytest.raises(LoadError):
        load_file(SourceFile(BROKEN / name, name))


def test_binary_file_named_txt() -> None:
    with pytest.raises(LoadError, match="binary"):
        load_file(SourceFile(BROKEN / "photo.txt", "photo.txt"))


@pytest.mark.parametrize("name", ["empty.txt", "empty.jsonl", "empty.json", "blank.txt"])
def test_empty_files_raise_load_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(LoadError):
        load(tmp_path, name, "\n \n" if name == "blank.txt" else "")


def test_undecodable_bytes_raise_load_error(tmp_path: Path) -> None:
    # 0x81 and 0x8d are undefined in Windows-1252, and these bytes are not UTF-8.
    with pytest.raises(LoadError, match="UTF-8"):
        load(tmp_path, "garbled.txt", b"Title\n\nbad \x81\x8d\x8f\x90 bytes.\n")


def test_cp1252_fallback(tmp_path: Path) -> None:
    data = "Caf\u00e9 Opens\n\nThe \u201cnew\u201d caf\u00e9 sells cr\u00eapes \u2013 at \u00a33.\n"
    article = only_article(tmp_path, "old.txt", data.encode("cp1252"))
    assert article.title == "Caf\u00e9 Opens"
    assert article.paragraphs == [
        "The \u201cnew\u201d caf\u00e9 sells cr\u00eapes \u2013 at \u00a33."
    ]


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    article = only_article(tmp_path, "bom.txt", "\ufeffBom Title\n\nText.\n".encode())
    assert article.title == "Bom Title"


def test_unreadable_path_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="cannot read"):
        load_file(SourceFile(tmp_path / "missing.txt", "missing.txt"))


# -- discover ---------------------------------------------------------------------------------


def test_discover_recurses_sorts_and_skips_hidden(tmp_path: Path) -> None:
    for name in [
        "b.txt",
        "a.md",
        "sub/deeper/c.JSONL",
        "sub/d.html",
        ".hidden.txt",
        ".git/config.json",
        "sub/.cache/e.txt",
        "notes.pdf",
        "image.png",
    ]:
        write(tmp_path, name, "x")
    found, problems = discover([tmp_path])
    assert [f.name for f in found] == [
        "a.md",
        "b.txt",
        "notes.pdf",
        "sub/d.html",
        "sub/deeper/c.JSONL",
    ]
    assert all(f.path == tmp_path / f.name for f in found)
    # Unsupported files inside a folder are passed over quietly.
    assert problems == []


def test_discover_reports_unsupported_and_missing_paths(tmp_path: Path) -> None:
    docx = write(tmp_path, "report.docx", "x").path
    txt = write(tmp_path, "sub/one.txt", "x").path
    found, problems = discover([docx, txt, tmp_path / "nowhere"])
    assert [(f.path, f.name) for f in found] == [(txt, "one.txt")]
    assert [p.where for p in problems] == [str(docx), str(tmp_path / "nowhere")]
    assert "unsupported" in problems[0].reason and ".docx" in problems[0].reason
    assert "no such file" in problems[1].reason


def test_discover_corpus() -> None:
    found, problems = discover([CORPUS])
    assert problems == []
    assert [f.name for f in found] == ["bakery.html", "clubs.json", "ferry.txt", "orchestra.md"]
