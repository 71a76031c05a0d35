"""The `citebot` command through click's CliRunner, with the fake embedder (no model)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from retrieval.cli import Runtime, cli
from retrieval.config import Settings
from tests.fakes import FakeEmbedder
from tests.helpers import BROKEN, CORPUS, CORPUS_IDS, build_index

README = Path(__file__).parent.parent / "README.md"


class NoModel(FakeEmbedder):
    """For commands that must not need a model: fails loudly if they try to embed."""

    def embed(self, texts):  # type: ignore[override]
        raise AssertionError("this command must not embed anything")


# The model `run` gives the CLI (through its public Runtime): none unless a fixture sets one.
MODEL: dict[str, FakeEmbedder] = {"embedder": NoModel()}


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEmbedder:
    """Every command that asks for a model gets the fake one.

    The fake model's similarities are not calibrated for the "not covered" threshold,
    so the config ($CITEBOT_CONFIG) answers every question unless a test passes its own.
    """
    embedder = FakeEmbedder()
    monkeypatch.setitem(MODEL, "embedder", embedder)
    config = tmp_path / "answer-everything.toml"
    config.write_text("[search]\nmin_confidence = 0.0\n")
    monkeypatch.setenv("CITEBOT_CONFIG", str(config))
    return embedder


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that must not need a model fail loudly if they try to embed."""
    monkeypatch.setitem(MODEL, "embedder", NoModel())


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test corpus ingested with the fake model (read-only for the tests)."""
    folder = tmp_path_factory.mktemp("cli-index") / "index"
    build_index(folder, [CORPUS])
    return folder


def run(*args: str | Path) -> Result:
    runtime = Runtime(make_embedder=lambda settings, **options: MODEL["embedder"])
    return CliRunner().invoke(cli, [str(a) for a in args], obj=runtime, catch_exceptions=True)


def assert_one_line_error(result: Result, *, status: int = 1) -> str:
    assert result.exit_code == status, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- ingest ------------------------------------------------------------------------------


def test_ingest(tmp_path: Path, fake_model: FakeEmbedder) -> None:
    result = run("ingest", CORPUS, "--index", tmp_path / "index")
    assert result.exit_code == 0, result.output
    assert re.search(
        r"5 articles from 4 files in .*: 5 added, 0 updated, 0 unchanged", result.stdout
    )
    # Not on a terminal: no progress bar, one summary line with the rates.
    assert result.stderr == ""
    (summary,) = result.stdout.splitlines()
    assert re.search(
        r"\d+ chunks embedded in [\d.]+s \([\d.]+ articles/s, [\d.]+ chunks/s\)$", summary
    )
    assert fake_model.embedded
    again = run("ingest", CORPUS, "--index", tmp_path / "index", "--json")
    assert again.exit_code == 0
    report = json.loads(again.stdout)
    assert report["unchanged"] == 5 and report["chunks_embedded"] == 0
    assert report["skipped"] == []


@pytest.mark.usefixtures("fake_model")
def test_ingest_broken_folder_reports_each_file_and_exits_2(tmp_path: Path) -> None:
    result = run("ingest", BROKEN, "--index", tmp_path / "index")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 4
    text = "\n".join(skipped)
    assert re.search(r"photo\.txt: not a text file", text)
    assert re.search(r"invalid\.json: invalid JSON", text)
    assert re.search(r"empty\.md: no text", text)
    assert re.search(r"mixed\.jsonl:2: invalid JSON", text)
    assert "2 articles from 4 files" in result.stdout

    listed = run("articles", "--index", tmp_path / "index", "--json")
    assert {a["id"] for a in json.loads(listed.stdout)["articles"]} == {"lighthouse", "swim-club"}


@pytest.mark.usefixtures("fake_model")
def test_ingest_broken_folder_json(tmp_path: Path) -> None:
    result = run("ingest", BROKEN, "--index", tmp_path / "index", "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["added"] == 2
    assert len(report["skipped"]) == 4
    assert all(set(p) == {"where", "reason"} for p in report["skipped"])


@pytest.mark.usefixtures("fake_model")
def test_ingest_without_paths_or_sources_is_a_usage_error(tmp_path: Path) -> None:
    result = run("ingest", "--index", tmp_path / "index")
    assert result.exit_code == 2
    assert "give files or folders" in result.stderr


@pytest.mark.usefixtures("fake_model")
def test_ingest_reads_sources_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "citebot.toml"
    config.write_text(f'index_dir = "idx"\nsources = ["{CORPUS}"]\n')
    result = run("--config", config, "ingest")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "idx" / "index.json").is_file()


def test_missing_config_file_is_a_one_line_error(tmp_path: Path) -> None:
    line = assert_one_line_error(run("--config", tmp_path / "nope.toml", "stats"))
    assert "config file not found" in line


# -- ask ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_model")
def test_ask_json(index: Path) -> None:
    result = run(
        "ask",
        "How much does one share in the bakery co-operative cost?",
        "--index",
        index,
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answered"] is True
    top = data["results"][0]
    assert top["rank"] == 1
    assert isinstance(top["score"], float)
    assert top["highlight"] in top["passage"]
    assert top["paragraphs"][0] <= 2 <= top["paragraphs"][1]
    assert top["article"]["id"] == "bakery"
    assert {"id", "title", "source", "url", "date"} <= set(top["article"])
    assert top["article"]["url"] == "https://fenwick-courier.example/food/bakery-co-op"


@pytest.mark.usefixtures("fake_model")
def test_ask_text_output_leads_with_the_quote_then_trimmed_passages(index: Path) -> None:
    result = run(
        "ask", "When does the orchestra rehearse on Thursday evenings?", "--index", index, "-k", "2"
    )
    assert result.exit_code == 0, result.output
    quote, first, *_ = result.stdout.split("\n\n")
    # The answer at a glance: the best sentence, quoted, with its citation.
    assert re.fullmatch(
        r"“Rehearsals now take place every Thursday evening[^”\n]*”\n"
        r"   — \[1\] The Tram Depot Orchestra Wants You \(Especially If You Play the Cello\)"
        r" · orchestra\.md · 2023-10-02 · ¶3",
        quote,
    ), quote
    # Then its passage, trimmed to the paragraph holding it, the sentence marked.
    assert first.startswith("[1] The Tram Depot Orchestra Wants You")
    assert "orchestra.md · 2023-10-02 · ¶3\n" in first
    assert "https://fenwick-courier.example/arts/tram-depot-orchestra" in first
    assert re.search(r"\*\*Rehearsals now take place every Thursday[^*]*\*\*", first)
    assert "cellists" not in first  # paragraph 4 is in the passage, not in the view
    assert "[3]" not in result.stdout


@pytest.mark.usefixtures("fake_model")
def test_ask_text_output_holds_back_results_below_the_cutoff(index: Path) -> None:
    question = "When does the orchestra rehearse on Thursday evenings?"
    data = json.loads(run("ask", question, "--index", index, "--json").stdout)
    held_back = [r for r in data["results"] if not r["shown"]]
    assert held_back and data["results"][0]["shown"]
    short = run("ask", question, "--index", index).stdout
    assert f"({len(held_back)} more results below the relevance cut-off" in short
    assert f"[{held_back[0]['rank']}]" not in short
    everything = run("ask", question, "--index", index, "--all").stdout
    assert "\n\nMore results:\n\n" in everything
    assert f"\n[{held_back[0]['rank']}] {held_back[0]['article']['title']}" in everything
    whole = run("ask", question, "--index", index, "--full").stdout
    assert "shortage of cellists" in whole  # the passage in full, paragraph 4 included


@pytest.mark.usefixtures("fake_model")
def test_ask_json_marks_shown_results_and_their_trimmed_view(index: Path) -> None:
    question = "When does the orchestra rehearse on Thursday evenings?"
    data = json.loads(run("ask", question, "--index", index, "--json", "-k", "5").stdout)
    results = data["results"]
    assert len(results) == 5
    shown = [r["shown"] for r in results]
    assert shown[0] and shown == sorted(shown, reverse=True)
    for result in results:
        start, end = result["context_span"]
        h_start, h_end = result["highlight_span"]
        assert 0 <= start <= h_start < h_end <= end <= len(result["passage"])
        first, last = result["context_paragraphs"]
        assert result["paragraphs"][0] <= first <= last <= result["paragraphs"][1]
        assert len(result["context_cut"]) == 2


@pytest.mark.usefixtures("fake_model")
def test_ask_filters(index: Path) -> None:
    question = "Fenwick Harbour council island"

    def articles(*flags: str) -> set[str]:
        result = run("ask", question, "--index", index, "--json", "-k", "20", *flags)
        assert result.exit_code == 0, result.output
        return {r["article"]["id"] for r in json.loads(result.stdout)["results"]}

    assert articles("--source", "clubs.json") == {"bees-2024", "skatepark"}
    assert articles("--author", "lindqvist") == {"bakery"}
    assert articles("--after", "2024-03-01") == {"bees-2024", "skatepark"}
    assert articles("--before", "2024-03-01", "--after", "2024-01-01") == {"bakery"}
    text = run("ask", question, "--index", index, "--source", "ferry.txt").stdout
    assert text.startswith("“") and "ferry.txt" in text and "orchestra.md" not in text


@pytest.mark.usefixtures("fake_model")
def test_ask_filter_errors(index: Path, tmp_path: Path) -> None:
    line = assert_one_line_error(run("ask", "ferry", "--index", index, "--source", "nowhere"))
    assert line == 'Error: No article matches source "nowhere".'
    line = assert_one_line_error(
        run("ask", "ferry", "--index", index, "--after", "2024-05-01", "--before", "2024-04-01")
    )
    assert "the date range is empty" in line
    bad_date = run("ask", "ferry", "--index", index, "--after", "May 2024")
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" not in bad_date.output.split("Error")[0]
    assert "'May 2024' does not match the format '%Y-%m-%d'" in bad_date.output
    batch = tmp_path / "questions.jsonl"
    batch.write_text('{"question": "ferry"}\n{"question": "bread"}\n')
    line = assert_one_line_error(
        run("ask", "--batch", batch, "--index", index, "--json", "--author", "nobody")
    )
    assert line == 'Error: No article matches author "nobody".'


@pytest.mark.usefixtures("fake_model")
def test_ask_not_covered(index: Path, tmp_path: Path) -> None:
    defaults = tmp_path / "defaults.toml"
    defaults.write_text("")
    result = run(
        "--config", defaults, "ask", "quantum chromodynamics lattice gauge theory", "--index", index
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("The articles do not seem to cover:")


@pytest.mark.usefixtures("fake_model")
def test_ask_batch_json_one_line_per_question_in_order(index: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_text(
        "\n".join(
            [
                json.dumps({"question": "How many return crossings will the winter ferry make?"}),
                json.dumps({"q": "no question key"}),
                "",
                "this line is not JSON",
                json.dumps({"question": "x" * 5000}),
                json.dumps(
                    {"question": "How do the beekeepers treat hives against the varroa mite?"}
                ),
                json.dumps(["a list"]),
            ]
        )
        + "\n"
    )
    result = run("ask", "--batch", batch, "--index", index, "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 6
    assert lines[0]["results"][0]["article"]["id"] == "ferry"
    for error in (lines[1], lines[2], lines[3], lines[5]):
        assert error["answered"] is False
        assert error["results"] == []
        assert error["error"]
    assert "characters long" in lines[3]["error"]
    assert lines[4]["results"][0]["article"]["id"] == "bees-2024"


@pytest.mark.usefixtures("fake_model")
def test_ask_batch_text(index: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_text('{"question": "What happens to surplus bread at closing time?"}\n{}\n')
    result = run("ask", "--batch", batch, "--index", index)
    assert result.exit_code == 0
    assert result.stdout.startswith("Q: What happens to surplus bread at closing time?\n“")
    assert "\n\n[1] Dough" in result.stdout
    assert 'line has no "question" string' in result.stdout


@pytest.mark.usefixtures("fake_model")
def test_ask_batch_not_utf8(index: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_bytes('{"question": "Caf\u00e9 opening hours?"}\n'.encode("cp1252"))
    line = assert_one_line_error(run("ask", "--batch", batch, "--index", index, "--json"))
    assert "cannot read" in line and "questions.jsonl" in line


@pytest.mark.usefixtures("fake_model")
def test_ask_batch_question_with_a_unicode_line_separator(index: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    question = "How many return crossings\u2028will the winter ferry make?"
    batch.write_text(json.dumps({"question": question}, ensure_ascii=False) + "\n", "utf-8")
    result = run("ask", "--batch", batch, "--index", index, "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1
    assert lines[0]["results"][0]["article"]["id"] == "ferry"


@pytest.mark.usefixtures("fake_model")
def test_ask_needs_a_question_or_a_batch(index: Path) -> None:
    assert run("ask", "--index", index).exit_code == 2
    assert run("ask", "q", "--batch", __file__, "--index", index).exit_code == 2


@pytest.mark.parametrize(
    ("question", "message"), [("", "empty"), ("   ", "empty"), ("w" * 10_000, "10,000 characters")]
)
def test_ask_bad_question_fails_before_loading_the_model(
    index: Path, question: str, message: str
) -> None:
    def no_model(settings: Settings, **options: object) -> None:
        raise AssertionError("the model must not be loaded for a bad question")

    runtime = Runtime(make_embedder=no_model)
    result = CliRunner().invoke(cli, ["ask", question, "--index", str(index)], obj=runtime)
    line = assert_one_line_error(result)
    assert line.startswith("Error: ") and message in line


@pytest.mark.usefixtures("fake_model")
def test_ask_missing_index(tmp_path: Path) -> None:
    line = assert_one_line_error(run("ask", "anything?", "--index", tmp_path / "none"))
    assert "no index at" in line and "citebot ingest" in line


# -- look-ups -------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_model")
def test_articles(index: Path) -> None:
    result = run("articles", "--index", index)
    assert result.exit_code == 0
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert {r[0] for r in rows} == CORPUS_IDS
    assert all(len(r) == 4 and r[3].endswith(" chunks") for r in rows)
    assert result.stderr.strip() == "5 articles"


@pytest.mark.usefixtures("no_model")
def test_articles_json(index: Path) -> None:
    data = json.loads(run("articles", "--index", index, "--json").stdout)
    by_id = {a["id"]: a for a in data["articles"]}
    assert set(by_id) == CORPUS_IDS
    ferry = by_id["ferry"]
    assert ferry["title"] == "Winter Ferry Timetable Cut to Eight Crossings a Day"
    assert ferry["source"] == "ferry.txt"
    assert ferry["paragraphs"] == 5 and ferry["chunks"] >= 1


@pytest.mark.usefixtures("no_model")
def test_article(index: Path) -> None:
    result = run("article", "bakery", "--index", index)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Dough Together: Fenwick's Bakery Co-op Turns One"
    assert lines[1] == (
        "bakery.html · https://fenwick-courier.example/food/bakery-co-op · 2024-02-11 · Oskar Lindqvist"
    )
    assert lines[3].startswith("[1] A year ago the last bakery")
    assert any(line.startswith("[5] The next step is a baking school.") for line in lines)


@pytest.mark.usefixtures("no_model")
def test_article_json_by_title_substring(index: Path) -> None:
    result = run("article", "skate park", "--index", index, "--json")
    data = json.loads(result.stdout)
    assert data["id"] == "skatepark"
    assert len(data["paragraphs"]) == 4
    assert data["author"] == "Dev Chaudhry"


@pytest.mark.usefixtures("no_model")
def test_article_not_found_and_ambiguous(index: Path) -> None:
    assert "no article" in assert_one_line_error(run("article", "zeppelin", "--index", index))
    line = assert_one_line_error(run("article", "the", "--index", index))
    assert "articles match 'the'" in line and "skatepark" in line


@pytest.mark.usefixtures("no_model")
def test_stats(index: Path) -> None:
    result = run("stats", "--index", index)
    assert result.exit_code == 0
    assert re.search(r"^articles\s+5$", result.stdout, re.MULTILINE)
    assert re.search(
        r"^model\s+fake-hashing-embedder \(64 dimensions\)$", result.stdout, re.MULTILINE
    )
    assert re.search(r"^backend\s+fake$", result.stdout, re.MULTILINE)  # not quantized
    data = json.loads(run("stats", "--index", index, "--json").stdout)
    assert data["articles"] == 5
    assert data["model"] == "fake-hashing-embedder"
    assert data["dimension"] == 64
    assert (data["backend"], data["quantization"]) == ("fake", None)
    assert data["path"] == str(index)
    assert data["size_bytes"] > 0


@pytest.mark.parametrize("command", ["articles", "stats", "article"])
def test_look_ups_on_a_missing_index(tmp_path: Path, command: str) -> None:
    args = [command, "x"] if command == "article" else [command]
    line = assert_one_line_error(run(*args, "--index", tmp_path / "none"))
    assert "no index at" in line


@pytest.mark.usefixtures("no_model")
def test_look_ups_use_the_config_index_dir(index: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'index_dir = "{index}"\n')
    assert run("--config", config, "stats", "--json").exit_code == 0


@pytest.mark.usefixtures("no_model")
def test_look_ups_use_citebot_index_env(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITEBOT_INDEX", str(index))
    result = run("articles", "--json")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["articles"]) == 5


# -- eval -----------------------------------------------------------------------------------------


def labelled(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


QUESTIONS = [
    {
        "question": "How many crossings will the winter ferry make a day?",
        "article_id": "ferry",
        "answers": ["eight return crossings"],
    },
    {
        "question": "Which company operates the ferry?",
        "article_id": "ferry",
        "answers": ["Strand Marine"],
    },
    {
        "question": "Which instrument does the tram depot orchestra need?",
        "article_id": "orchestra",
        "answers": ["cello"],
    },
    {"question": "What is the capital of Peru?", "article_id": "ferry", "answers": ["Lima"]},
]


@pytest.mark.usefixtures("fake_model")
def test_eval_reports_hits_latency_and_misses(index: Path, tmp_path: Path) -> None:
    questions = labelled(tmp_path, QUESTIONS)
    result = run("eval", questions, "--index", index, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["questions"] == 4
    assert set(report["hit_at"]) == {"1", "3", "5", "10"}
    # Three questions have their answer in the corpus; the fourth ("Lima") never can.
    assert report["hit_at"]["10"] == 0.75
    assert report["hit_at"]["1"] <= report["hit_at"]["3"] <= report["hit_at"]["10"]
    assert 0 < report["mrr_at_10"] <= 0.75
    assert report["latency_p50_ms"] > 0 and report["latency_p99_ms"] >= report["latency_p50_ms"]
    missed = {m["question"] for m in report["misses"]}
    assert "What is the capital of Peru?" in missed

    text = run("eval", questions, "--index", index, "--misses", "5")
    assert text.exit_code == 0, text.output
    first, second = text.stdout.splitlines()[:2]
    assert first.startswith("4 questions  hit@1 ") and "MRR@10" in first
    assert second.startswith("answered ") and "p99" in second
    assert "(wanted ferry: Lima)" in text.stdout
    one = run("eval", questions, "--index", index, "--misses", "1").stdout
    assert one.count("(wanted ") == 1


@pytest.mark.usefixtures("fake_model")
def test_eval_with_a_fusion_override_and_bad_files(index: Path, tmp_path: Path) -> None:
    questions = labelled(tmp_path, QUESTIONS[:2])
    keyword = json.loads(
        run("eval", questions, "--index", index, "--fusion", "keyword", "--json").stdout
    )
    assert keyword["questions"] == 2 and keyword["hit_at"]["10"] == 1.0
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "no label"}\n', encoding="utf-8")
    line = assert_one_line_error(run("eval", broken, "--index", index))
    assert line.startswith("Error: ")


# -- --config before or after the command ---------------------------------------------------------


def test_every_command_accepts_config_in_both_places() -> None:
    context = cli.make_context("citebot", ["--help"], resilient_parsing=True)
    for name in cli.list_commands(context):
        command = cli.get_command(context, name)
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        assert "--config" in options, name


@pytest.mark.usefixtures("no_model")
def test_config_after_the_command_is_used_and_wins(index: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(f'index_dir = "{index}"\n')
    empty = tmp_path / "empty.toml"
    empty.write_text(f'index_dir = "{tmp_path / "nothing"}"\n')
    assert run("stats", "--config", good, "--json").exit_code == 0
    assert run("--config", empty, "stats", "--config", good, "--json").exit_code == 0
    line = assert_one_line_error(run("--config", good, "stats", "--config", empty))
    assert "no index at" in line


@pytest.mark.parametrize("command", ["bot", "feedback", "ingest", "ask", "eval", "demo"])
def test_a_missing_config_after_any_command_is_a_one_line_error(
    tmp_path: Path, command: str
) -> None:
    line = assert_one_line_error(run(command, "--config", tmp_path / "missing.toml"))
    assert line == f"Error: config file not found: {tmp_path / 'missing.toml'}"


# -- demo, help, README ------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_model")
def test_demo_with_the_fake_model() -> None:
    result = run("demo")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Indexed 5 sample articles (")
    assert "Q: How do libraries lend tools?" in result.stdout
    assert "[1] Borrow a Drill, Not a Debt: Inside Alderbrook's Tool Library" in result.stdout


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("ingest", "ask", "articles", "article", "stats", "demo", "bot"):
        assert re.search(rf"^  {name}\s", result.stdout, re.MULTILINE), name


def test_bot_command_is_loaded_by_entry_point() -> None:
    result = run("bot", "--help")
    assert result.exit_code == 0
    assert "Discord" in result.stdout


def command_names() -> list[str]:
    text = run("--help").stdout
    section = text.split("Commands:", 1)[1]
    return re.findall(r"^  (\S+)", section, re.MULTILINE)


def test_every_command_is_documented_in_the_readme() -> None:
    names = command_names()
    assert "bot" in names
    readme = README.read_text(encoding="utf-8")
    missing = [n for n in names if not re.search(rf"\bcitebot {re.escape(n)}\b", readme)]
    assert missing == []


# -- bad batch lines and arguments --------------------------------------------------------------


@pytest.mark.usefixtures("fake_model")
def test_ask_batch_bad_lines_each_get_an_error_line(index: Path, tmp_path: Path) -> None:
    """A line nested 5,000 deep, a 5,000-digit number or a lone surrogate lost the whole batch."""
    good = json.dumps({"question": "How many return crossings will the winter ferry make?"})
    batch = tmp_path / "questions.jsonl"
    batch.write_text(
        "\n".join(
            [
                "[" * 5_000 + "]" * 5_000,
                '{"question": "x", "n": ' + "9" * 5_000 + "}",
                '{"question": "What about \\ud800 this?"}',
                good,
            ]
        )
    )
    result = run("ask", "--batch", batch, "--index", index, "--json")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("line") for line in lines[:3]] == [1, 2, 3]
    assert lines[0]["error"] == "not a question: nested too deeply"
    assert lines[1]["error"].startswith("not JSON")
    assert lines[2]["error"] == "the question is not valid Unicode text"
    assert lines[3]["results"][0]["article"]["id"] == "ferry"


@pytest.mark.usefixtures("fake_model")
def test_ask_batch_with_a_byte_order_mark_keeps_its_first_line(index: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    question = {"question": "How many return crossings will the winter ferry make?"}
    batch.write_bytes(b"\xef\xbb\xbf" + json.dumps(question).encode() + b"\n")
    result = run("ask", "--batch", batch, "--index", index, "--json")
    (line,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert "error" not in line
    assert line["results"][0]["article"]["id"] == "ferry"


@pytest.mark.parametrize(
    "args",
    [
        ["ask", "Caf\udce9 hours?"],
        ["article", "\udcff"],
        ["ingest", "caf\udce9"],
    ],
    ids=["question", "article", "path"],
)
@pytest.mark.usefixtures("fake_model")
def test_an_argument_that_is_not_utf8_is_a_one_line_error(index: Path, args: list[str]) -> None:
    """Python keeps bytes that are not UTF-8 as lone surrogates, which failed when written."""
    result = run(*args, "--index", index)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "is not valid UTF-8 text" in result.stderr
    assert "\ufffd" in result.stderr


@pytest.mark.usefixtures("fake_model")
def test_ingest_follow_symlinks(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "ferry.txt").symlink_to(CORPUS / "ferry.txt")  # outside the folder
    refused = run("ingest", folder, "--index", tmp_path / "index")
    assert refused.exit_code == 2
    assert "skipped ferry.txt: a link to a file outside the source folder" in refused.stderr
    followed = run("ingest", "--follow-symlinks", folder, "--index", tmp_path / "index")
    assert followed.exit_code == 0, followed.output
    assert "1 added" in followed.stdout


@pytest.mark.usefixtures("fake_model")
def test_a_huge_word_gives_an_answer_of_bounded_size(tmp_path: Path) -> None:
    """A 5 MB single word was one chunk and `ask "Word"` printed 21 MB of JSON."""
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "word.txt").write_text("Word\n\n" + "Word" * 45_000 + "\n")  # 180 KB
    assert run("ingest", folder, "--index", tmp_path / "index").exit_code == 0
    result = run("ask", "Word", "--index", tmp_path / "index", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["results"]
    assert len(result.stdout) < 100_000
