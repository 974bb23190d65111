"""Print newsflow's end-to-end throughput next to the raw floor of its libraries, in one run.

    python benchmarks/throughput.py [--n 2000] [--hosts 20] [--min-delay S] [--host-concurrency K]
                                    [--workers W] [--server postgresql://...] [--json FILE]
                                    [--source feeds|warc] [--warc-records R]

Serves N article pages from loopback hosts (127.0.0.1, 127.0.0.2 ...: the AEB pages of
../shared/data/aeb repeated under distinct URLs, one RSS feed per host listing its pages),
then measures, one after the other on the same machine:

1. the raw floor: trafilatura extraction (the call newsflow makes, with its options) and
   spaCy (``nlp.pipe``, the model and components newsflow loads) over the same N pages, as
   fast as the library calls alone go, one process per worker;
2. newsflow end to end: ``pipeline.ingest.ingest`` over the feeds into a fresh database
   (feeds, fetch with politeness, extraction, NLP, entities and statements, PostgreSQL).
   With ``--source warc`` the same N pages are first packed into gzipped WARC files (R
   records each, one gzip member per record, as Common Crawl writes them; outside the
   timings) and newsflow reads them with ``newsflow backfill --warc``'s function: a local
   WARC needs no fetching and no politeness, so this is the floor's own footing.

It prints pages per second, words per second, the ratio (2)/(1), time per stage, peak
memory per process, worker memory over the run and rows written per second; then
extraction quality on the AEB pages as published: token-bag precision, recall and F1 of
the text newsflow stored against the ground truth, next to ``trafilatura.extract`` with
its default options on the same pages. It asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_AEB = ROOT.parent / "shared" / "data" / "aeb"
DEFAULT_SEED = ROOT.parent / "shared" / "seed"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
FLOOR_CHUNK = 8  # pages per task in the floor's processes (its nlp.pipe batch); larger gains nothing measurable
MB = 2**20

# ---------------------------------------------------------------------------------------
# The corpus: AEB pages, copies made distinct by one added sentence
# ---------------------------------------------------------------------------------------

_WORD = re.compile(r"\w{2,}")
_GAP = rb"(?:[^\w<>]|&#?\w+;|<[^>]{0,200}>)+"
_SCRIPT = re.compile(rb"<(script|style)\b.*?</\1\s*>", re.S | re.I)


def load_pages(source: tuple[str, Path]) -> list[tuple[str, bytes, str, str]]:
    """(id, page bytes, url, article body) for every page of the corpus, in id order.

    ``("aeb", dir)``: the AEB pages with their ground truth. ``("seed", dir)``: the seed
    article in the news page the acceptance tests serve (tests/pages.py).
    """
    kind, where = source
    if kind == "seed":
        from tests.pages import seed_page

        text = sorted(where.glob("*.txt"))[0].read_text(encoding="utf-8")
        _title, page = seed_page(text)
        return [("seed", page.encode("utf-8"), "https://news.example.org/seed", text)]
    aeb = where
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    return [
        (
            key,
            gzip.decompress((aeb / "html" / f"{key}.html.gz").read_bytes()),
            truth[key]["url"],
            truth[key]["articleBody"],
        )
        for key in sorted(truth)
    ]


def sentence(copy: int, key: str) -> bytes:
    return f"Benchmark copy {copy} of page {key[:8]} carries this sentence so that its text is unique.".encode()


def _candidates(html: bytes, body: str):
    """Byte offsets just after a run of five ground-truth words in the page's body markup."""
    start = max(html.lower().find(b"<body"), 0)
    blocked = [(m.start(), m.end()) for m in _SCRIPT.finditer(html)]
    seen: set[int] = set()
    for para in [p for p in body.split("\n") if p.strip()][:6]:
        words = _WORD.findall(para)
        for i in range(0, max(0, len(words) - 5), 4):
            pattern = re.compile(_GAP.join(re.escape(w.encode()) for w in words[i : i + 5]))
            for m in pattern.finditer(html, start):
                if m.end() in seen or any(a <= m.start() < b for a, b in blocked):
                    continue
                seen.add(m.end())
                yield m.end()
                if len(seen) >= 12:
                    return
            if i >= 8:
                break


def _placements(html: bytes, at: int):
    """A new paragraph after the one holding ``at``; else the sentence inline at ``at``."""
    end = html.find(b"</p>", at)
    if end != -1 and end - at < 3000 and html.find(b"<p", at, end) == -1:
        yield ("after", end + 4)
    yield ("inline", at)


def inject(html: bytes, placement: tuple[str, int], copy: int, key: str) -> bytes:
    mode, at = placement
    text = b"<p>" + sentence(copy, key) + b"</p>" if mode == "after" else b" " + sentence(copy, key) + b" "
    return html[:at] + text + html[at:]


def find_placement(page: tuple[str, bytes, str, str]) -> tuple[str, int] | None:
    """Where the added sentence survives newsflow's extraction of the page (checked), if anywhere."""
    from pipeline.extract import extract_article
    from pipeline.reasons import ItemError

    key, html, url, body = page
    for at in _candidates(html, body):
        for placement in _placements(html, at):
            try:
                text = extract_article(inject(html, placement, 1, key), url).text
            except ItemError:
                return None
            if sentence(1, key).decode() in text:
                return placement
    return None


class Corpus:
    """Page j is AEB page j % 181, copy j // 181; copy 0 is the page as published."""

    def __init__(self, source: tuple[str, Path], placements: dict[str, tuple[str, int] | None]):
        self.pages = load_pages(source)
        self.placements = placements

    def page(self, j: int) -> bytes:
        key, html, _url, _body = self.pages[j % len(self.pages)]
        copy = j // len(self.pages)
        placement = self.placements.get(key)
        if copy == 0 or placement is None:
            return html
        return inject(html, placement, copy, key)

    def key(self, j: int) -> str:
        return self.pages[j % len(self.pages)][0]


# ---------------------------------------------------------------------------------------
# Serving: one LoopbackSite per host address, in a process of its own
# ---------------------------------------------------------------------------------------


def page_path(j: int) -> str:
    return f"/news/{j:06d}.html"


def warc_url(j: int, hosts: int) -> str:
    return f"https://bench{j % hosts + 1}.example{page_path(j)}"


def pack_warcs(source: tuple[str, Path], placements: dict, n: int, hosts: int, per_file: int, out: Path) -> list[str]:
    """The N pages as response records in gzipped WARC files of ``per_file`` records each."""
    from fastwarc import GzipWriter, WarcRecord, WarcRecordType

    corpus = Corpus(source, placements)
    paths = []
    for first in range(0, n, per_file):
        path = out / f"bench-{first // per_file:05d}.warc.gz"
        with open(path, "wb") as f:
            for j in range(first, min(n, first + per_file)):
                body = corpus.page(j)
                record = WarcRecord()
                record.init_headers(WarcRecordType.response)
                record.headers["WARC-Target-URI"] = warc_url(j, hosts)
                record.headers["WARC-Date"] = "2022-11-03T10:00:00Z"
                record.headers["Content-Type"] = "application/http; msgtype=response"
                head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n"
                record.set_bytes_content(head.encode("ascii") + body)
                writer = GzipWriter(f)
                record.write(writer)
                writer.finish()
        paths.append(str(path))
    return paths


def serve(source: tuple[str, Path], placements: dict, n: int, hosts: int, conn) -> None:  # noqa: ANN001 - a Pipe
    from pipeline.loopback import LoopbackSite, Reply

    corpus = Corpus(source, placements)
    sites = [LoopbackSite(host=f"127.0.0.{h + 1}") for h in range(hosts)]
    for site in sites:
        site.__enter__()
    for j in range(n):
        site = sites[j % hosts]
        site.routes[page_path(j)] = lambda _h, j=j: Reply(200, corpus.page(j), {"Content-Type": "text/html"})
    for h, site in enumerate(sites):
        items = "".join(
            f"<item><title>Article {j}</title><link>{site.url(page_path(j))}</link>"
            f'<guid isPermaLink="false">bench-{j}</guid></item>'
            for j in range(h, n, hosts)
        )
        feed = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Bench host {h + 1}</title>'
            f"<link>{site.base}/</link><description>benchmark</description>{items}</channel></rss>"
        )
        site.add("/feed.xml", feed, "application/rss+xml")
    conn.send([site.url("/feed.xml") for site in sites])
    conn.recv()  # until told to stop
    for site in sites:
        site.__exit__()


# ---------------------------------------------------------------------------------------
# (1) The raw floor
# ---------------------------------------------------------------------------------------


def _floor_worker(source: tuple[str, Path], placements: dict, model: str, tasks, results) -> None:  # noqa: ANN001 - queues
    from pipeline.config import Settings

    os.nice(max(0, Settings.from_env().worker_nice))  # as nice as newsflow's workers: same footing
    import py3langid
    import trafilatura

    from pipeline.extract import MIN_WORDS, TRAFILATURA_OPTIONS
    from pipeline.nlp import load_model

    corpus = Corpus(source, placements)
    nlp = load_model(model)
    list(nlp.pipe(["The council said on Monday that the bridge would open in spring."]))
    trafilatura.bare_extraction(corpus.page(0), url="http://warm.up/", with_metadata=True)
    py3langid.classify("warm up the language model")
    results.put(("ready", os.getpid(), time.monotonic()))
    while (chunk := tasks.get()) is not None:
        texts, words = [], 0
        for j in chunk:
            doc = trafilatura.bare_extraction(
                corpus.page(j), url=corpus.pages[j % len(corpus.pages)][2], **TRAFILATURA_OPTIONS
            )
            text = (doc.text or "") if doc is not None else ""
            words += len(text.split())
            # spaCy gets what newsflow gives it: English texts of at least MIN_WORDS words
            if len(text.split()) >= MIN_WORDS and py3langid.classify(text[:5000])[0] == "en":
                texts.append(text)
        for _doc in nlp.pipe(texts, batch_size=len(texts) or 1):
            pass
        results.put(("done", len(chunk), len(texts), words))
    results.put(("exit", os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


def run_floor(source: tuple[str, Path], placements: dict, n: int, workers: int, model: str, server_pid: int) -> dict:
    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    watch = CpuWatch().start()
    started = time.monotonic()
    procs = [
        ctx.Process(target=_floor_worker, args=(source, placements, model, tasks, results)) for _ in range(workers)
    ]
    for p in procs:
        p.start()
    roots = {p.pid: "floor processes" for p in procs} | {os.getpid(): "benchmark", server_pid: "page server"}
    tail = max(0, n - FLOOR_CHUNK * workers * 2)  # the last pages go out in small tasks, to finish together
    for i in range(0, tail, FLOOR_CHUNK):
        tasks.put(list(range(i, min(tail, i + FLOOR_CHUNK))))
    for i in range(tail, n, 2):
        tasks.put(list(range(i, min(n, i + 2))))
    for _ in procs:
        tasks.put(None)
    pages = english = words = 0
    ready: list[float] = []
    peak: dict[int, int] = {}
    finished = started
    while len(peak) < workers:
        message = results.get()
        if message[0] == "ready":
            ready.append(message[2] - started)
        elif message[0] == "done":
            pages, english, words = pages + message[1], english + message[2], words + message[3]
            finished = time.monotonic()
        else:
            peak[message[1]] = message[2]
    watch.stop()
    for p in procs:
        p.join()
    wall = finished - started
    return {
        "processes": workers,
        "wall_s": wall,
        "startup_s": max(ready) if ready else 0.0,
        "pages": pages,
        "english_pages": english,
        "words": words,
        "pages_per_s": pages / wall,
        "words_per_s": words / wall,
        "peak_rss_mb": sorted(round(v / MB) for v in peak.values()),
        "machine_busy_s": watch.busy,
        "cpu_s": watch.shares(roots),
    }


# ---------------------------------------------------------------------------------------
# (2) newsflow end to end, in a process of its own (so its memory is its own)
# ---------------------------------------------------------------------------------------

COUNTED_TABLES = ["articles", "entities", "entity_mentions", "statements", "feed_items", "ops.run_items"]


def machine_busy_seconds() -> float:
    """Core-seconds the whole machine has spent busy since boot (every process: PostgreSQL too)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[str, int, float]]:
    """Every process now: pid -> (command name, parent pid, CPU seconds used so far)."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[int(entry.name)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


class CpuWatch:
    """Where the machine's busy CPU goes while something runs.

    Samples every process's CPU time from a thread twice a second, so processes that exit
    before the end (a PostgreSQL backend whose connection closed, workers) still count.
    ``shares`` names processes by ``roots`` (their descendants count under the same name,
    except that newsflow's children are its workers); PostgreSQL is every ``postgres``
    process. The rest is ``other``: other users of the machine, short-lived processes, the
    kernel. A large ``other`` means the measurement was disturbed.
    """

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> CpuWatch:
        self.before, self._busy = processes(), machine_busy_seconds()
        self.seen = dict(self.before)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.seen.update(processes())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.seen.update(processes())
        self.busy = machine_busy_seconds() - self._busy

    def shares(self, roots: dict[int, str]) -> dict[str, float]:
        role = dict(roots)
        grown = True
        while grown:
            grown = False
            for pid, (_name, ppid, _cpu) in self.seen.items():
                if pid not in role and ppid in role:
                    role[pid] = "newsflow workers" if role[ppid] == "newsflow parent" else role[ppid]
                    grown = True
        shares: Counter[str] = Counter()
        for pid, (name, _ppid, cpu) in self.seen.items():
            earlier = self.before.get(pid)
            used = cpu - (earlier[2] if earlier and earlier[0] == name else 0.0)
            label = role.get(pid) or ("PostgreSQL" if name == "postgres" else None)
            if label:
                shares[label] += used
        shares["other"] = self.busy - sum(shares.values())
        return dict(shares)


def _newsflow_run(database_url: str, feeds: list[str], options: dict, out) -> None:  # noqa: ANN001 - a Pipe end
    import psycopg

    from pipeline import ingest as ingest_module
    from pipeline.config import Limits, Settings
    from pipeline.pagework import page_pool

    if options.get("chunk"):
        ingest_module.CHUNK = options["chunk"]
    limits = replace(
        Limits.from_env(), host_min_delay=options["min_delay"], host_concurrency=options["host_concurrency"]
    )
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            database_url=database_url,
            home=Path(home),
            nlp_workers=options["workers"],
            fetch_workers=options["fetch_workers"],
            limits=limits,
        )
        out.send("start")
        started = time.monotonic()
        if options.get("warc_paths"):
            from pipeline.webarchive.load import Filters, load_warc

            summary = load_warc(settings, options["warc_paths"], Filters(), all_domains=True).summary
        else:
            summary = ingest_module.ingest(settings, feeds)
        wall = time.monotonic() - started
        out.send("done")
        pool = page_pool(settings)
        parent = resource.getrusage(resource.RUSAGE_SELF)
        figures = {
            "wall_s": wall,
            "summary": summary.counts()
            | {"status": summary.status, "quarantined_by_reason": dict(summary.quarantined)},
            "stages_s": dict(getattr(summary, "stages", {})),
            "parent_peak_rss_mb": round(parent.ru_maxrss * 1024 / MB),
            "worker_peak_rss_mb": {str(pid): round(v / MB) for pid, v in getattr(pool, "peak_rss_by_pid", {}).items()},
            "workers_replaced": pool.replaced,
            "worker_rss_samples": getattr(pool, "rss_samples", []),
            "settings": {
                "nlp_workers": settings.nlp_workers,
                "fetch_workers": settings.fetch_workers,
                "host_min_delay": limits.host_min_delay,
                "host_concurrency": limits.host_concurrency,
                "chunk": getattr(ingest_module, "CHUNK", 1),
            },
        }
        pool.close()
    with psycopg.connect(database_url) as conn:
        figures["rows"] = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED_TABLES}
        figures["words"] = conn.execute("SELECT coalesce(sum(word_count), 0) FROM articles").fetchone()[0]
        outcomes = conn.execute(
            "SELECT i.url, i.state, i.reason, a.text FROM feed_items i LEFT JOIN articles a ON a.id = i.article_id"
        )
        figures["outcomes"] = {url: (state, reason, text) for url, state, reason, text in outcomes}
    out.send(figures)


def run_newsflow(server: str, feeds: list[str], options: dict) -> dict:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"newsflow_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        ctx = mp.get_context("spawn")
        receive, send = ctx.Pipe(duplex=False)
        params = conninfo_to_dict(server) | {"dbname": name}
        proc = ctx.Process(target=_newsflow_run, args=(make_conninfo(**params), feeds, options, send))
        proc.start()
        assert receive.recv() == "start"
        watch = CpuWatch().start()
        assert receive.recv() == "done"
        watch.stop()
        figures = receive.recv()
        proc.join()
        figures["machine_busy_s"] = watch.busy
        roots = {proc.pid: "newsflow parent", options["server_pid"]: "page server", os.getpid(): "benchmark"}
        figures["cpu_s"] = watch.shares(roots)
        return figures
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------
# (3) Extraction quality on the AEB pages as published
# ---------------------------------------------------------------------------------------


EXTRACTION_REASONS = {"extraction_empty", "extraction_failed"}  # an empty text, as far as scoring goes


def token_counts(truth: str, predicted: str) -> tuple[int, int, int]:
    """(shared, predicted, true) whitespace-token counts, as bags (multisets)."""
    t, p = Counter(truth.split()), Counter(predicted.split())
    return sum((t & p).values()), sum(p.values()), sum(t.values())


def prf(counts: list[tuple[int, int, int]]) -> tuple[float, float, float]:
    shared, predicted, true = (sum(c[i] for c in counts) for i in range(3))
    precision = shared / predicted if predicted else 0.0
    recall = shared / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _bare_trafilatura(page: tuple[str, bytes, str, str]) -> str:
    import trafilatura

    return trafilatura.extract(page[1], url=page[2]) or ""


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def machine() -> dict:
    from importlib.metadata import version

    from pipeline.nlp import load_model

    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    nlp = load_model("en_core_web_sm")
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "spacy": version("spacy"),
        "model": f"{nlp.meta['lang']}_{nlp.meta['name']} {nlp.meta['version']}",
        "components": nlp.pipe_names,
        "trafilatura": version("trafilatura"),
    }


def _rss_over_run(samples: list[tuple[float, int, int]]) -> dict[int, list[int]]:
    """Per worker: resident MB after the first task, then at 25, 50, 75 and 100% of its samples."""
    by_pid: dict[int, list[int]] = {}
    for _t, pid, rss in samples:
        by_pid.setdefault(pid, []).append(rss)
    out = {}
    for pid, values in by_pid.items():
        marks = [0] + [max(0, round(len(values) * q) - 1) for q in (0.25, 0.5, 0.75, 1.0)]
        out[pid] = [round(values[i] / MB) for i in marks]
    return out


def _cpu_line(run: dict, pages: int, available: float) -> str:
    shares = ", ".join(
        f"{name} {seconds:.1f} s ({1000 * seconds / max(1, pages):.0f} ms/page)"
        for name, seconds in sorted(run["cpu_s"].items(), key=lambda kv: -kv[1])
    )
    return f"{run['machine_busy_s']:.0f} of {available:.0f} core-seconds busy: {shares}"


def report(args: argparse.Namespace, figures: dict) -> None:
    m, c, f, nf, q = figures["machine"], figures["corpus"], figures["floor"], figures["newsflow"], figures["quality"]
    print(f"newsflow throughput benchmark, {figures['date']}")
    print(
        f"machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}; spaCy {m['spacy']} "
        f"{m['model']} [{', '.join(m['components'])}]; trafilatura {m['trafilatura']}"
    )
    copies = c["pages_with_copies"]
    if copies:
        made = (
            f" Later copies get one added sentence ({c['sentence']!r}), placed after an article paragraph and checked"
            f" to survive extraction, so each copy's text (and content hash) is its own: {c['placeable']} of the"
            f" {copies} pages with copies take it; copies of the other {copies - c['placeable']} are true duplicates"
            f" and count as such, not as articles (prepared in {c['prepare_s']:.1f} s, outside the timings)."
        )
    else:
        made = " No page is repeated."
    print(
        f"corpus: {c['n']} pages: {c['description']} in turn under distinct URLs; copy 0 of each is"
        f" the page as published.{made}"
    )
    s = nf["settings"]
    if figures.get("source") == "warc":
        print(
            f"read from {c['warc_files']} gzipped WARC files ({c['warc_bytes'] / MB:.1f} MB, one gzip member a record;"
            f" packed in {c['pack_s']:.1f} s, outside the timings) by newsflow's WARC loader (no fetch, no politeness);"
            f" {s['nlp_workers']} worker processes, {s['chunk']} pages per worker task"
        )
    else:
        print(
            f"served from {c['hosts']} loopback hosts (127.0.0.1-127.0.0.{c['hosts']}), one RSS feed each;"
            f" politeness {s['host_min_delay']:g} s between requests to a host, {s['host_concurrency']} at once;"
            f" {s['fetch_workers']} fetch threads, {s['nlp_workers']} worker processes,"
            f" {s['chunk']} pages per worker task"
        )
    print()
    print(
        f"(1) raw floor: trafilatura.bare_extraction (newsflow's options) + py3langid + spaCy nlp.pipe on the English"
        f" texts, {f['processes']} processes"
    )
    print(
        f"    {f['pages']} pages ({f['english_pages']} English) in {f['wall_s']:.1f} s"
        f" (start-up {f['startup_s']:.1f} s):"
        f" {f['pages_per_s']:.2f} pages/s, {f['words_per_s']:,.0f} words/s;"
        f" peak RSS per process {', '.join(f'{v} MB' for v in f['peak_rss_mb'])}"
    )
    print(f"    CPU: {_cpu_line(f, f['pages'], f['wall_s'] * m['cores'])}")
    summary = nf["summary"]
    wall = nf["wall_s"]
    how = (
        "the WARC loader over the files" if figures.get("source") == "warc" else "pipeline.ingest.ingest over the feeds"
    )
    print(f"(2) newsflow end to end: {how} into a fresh PostgreSQL database")
    print(
        f"    {summary['seen']} items in {wall:.1f} s: {summary['seen'] / wall:.2f} pages/s,"
        f" {summary['stored'] / wall:.2f} stored articles/s, {nf['words'] / wall:,.0f} words/s (stored text);"
        f" status {summary['status']}"
    )
    print(
        f"    stored {summary['stored']}, duplicate {summary['duplicate']}, quarantined {summary['quarantined']}"
        + (f" {nf['summary']['quarantined_by_reason']}" if summary["quarantined"] else "")
    )
    print(
        f"    RATIO (2)/(1): {f['wall_s'] / wall:.3f} in pages/s"
        f" ({(nf['words'] / wall) / f['words_per_s']:.3f} in words/s)"
    )
    stages = nf["stages_s"]
    order = ["fetch", "extract", "nlp", "statements", "store"]
    print(
        "    time per stage, summed over threads and processes (stages overlap): "
        + ", ".join(
            f"{k} {stages.get(k, 0.0):.1f} s ({1000 * stages.get(k, 0.0) / max(1, summary['seen']):.0f} ms/page)"
            for k in order
        )
    )
    print(f"    CPU: {_cpu_line(nf, summary['seen'], wall * m['cores'])}")
    ours = sum(nf["cpu_s"].get(k, 0.0) for k in ("newsflow workers", "newsflow parent", "PostgreSQL"))
    theirs = f["cpu_s"].get("floor processes", 0.0)
    if ours and theirs:
        print(
            f"    CPU COST per page: floor {1000 * theirs / f['pages']:.0f} ms;"
            f" newsflow {1000 * ours / summary['seen']:.0f} ms (workers, parent and PostgreSQL):"
            f" floor/newsflow {theirs / f['pages'] / (ours / summary['seen']):.3f}"
            " (what the ratio would be with every core busy and nothing else running)"
        )
    print(
        f"    peak RSS: parent {nf['parent_peak_rss_mb']} MB; workers "
        + ", ".join(f"{v} MB" for v in nf["worker_peak_rss_mb"].values())
        + f"; workers replaced {nf['workers_replaced']}"
    )
    for pid, marks in _rss_over_run(nf["worker_rss_samples"]).items():
        print(
            f"    worker {pid} RSS after its first task, at 25/50/75/100% of its tasks:"
            f" {' / '.join(map(str, marks))} MB"
        )
    rows = nf["rows"]
    print(
        f"    rows written: {sum(rows.values()):,} ({sum(rows.values()) / wall:,.0f} rows/s): "
        + ", ".join(f"{t} {n:,}" for t, n in rows.items())
    )
    print()
    print(
        f"(3) extraction quality on {q['pages']} pages as published (copy 0) against their ground truth:"
        " token-bag precision/recall/F1, whitespace tokens, summed over pages"
        + (f" (left out, never extracted: {q['excluded']})" if q["excluded"] else "")
    )
    for label, (p, r, f1) in q["scores"].items():
        print(f"    {label:<40} P {p:.3f}  R {r:.3f}  F1 {f1:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="pages served and ingested")
    parser.add_argument("--hosts", type=int, default=20, help="loopback hosts, one feed each (at most 250)")
    parser.add_argument("--min-delay", type=float, default=float(os.environ.get("NEWSFLOW_HOST_MIN_DELAY", 1.0)))
    parser.add_argument("--host-concurrency", type=int, default=int(os.environ.get("NEWSFLOW_HOST_CONCURRENCY", 2)))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes, floor and newsflow")
    parser.add_argument("--fetch-workers", type=int, default=int(os.environ.get("NEWSFLOW_FETCH_WORKERS", 8)))
    parser.add_argument("--chunk", type=int, default=0, help="pages per newsflow worker task (default: newsflow's)")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL to create the benchmark database on")
    parser.add_argument("--corpus", choices=["aeb", "seed"], default="aeb", help="AEB pages, or the seed article")
    parser.add_argument("--aeb", type=Path, default=DEFAULT_AEB)
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--source", choices=["feeds", "warc"], default="feeds", help="newsflow reads loopback feeds, or WARC files"
    )
    parser.add_argument("--warc-records", type=int, default=1000, help="records per WARC file (--source warc)")
    args = parser.parse_args()
    if not 1 <= args.hosts <= 250:
        parser.error("--hosts must be between 1 and 250")

    ctx = mp.get_context("spawn")
    source = ("aeb", args.aeb) if args.corpus == "aeb" else ("seed", args.seed)
    aeb_pages = load_pages(source)
    started = time.monotonic()
    with_copies = aeb_pages[: max(0, args.n - len(aeb_pages))]  # pages that have a copy 1 or later
    with ctx.Pool(args.workers) as pool:
        found = pool.map(find_placement, with_copies)
    placements = {page[0]: where for page, where in zip(with_copies, found, strict=True)}
    corpus = {
        "n": args.n,
        "hosts": args.hosts,
        "aeb_pages": len(aeb_pages),
        "description": f"the {len(aeb_pages)} AEB pages" if args.corpus == "aeb" else "the seed article's page",
        "sentence": sentence(1, "<id>").decode(),
        "pages_with_copies": len(with_copies),
        "placeable": sum(1 for v in placements.values() if v),
        "prepare_s": time.monotonic() - started,
    }

    warc_dir = None
    if args.source == "warc":
        warc_dir = tempfile.TemporaryDirectory(prefix="newsflow-bench-warc-")
        packed = time.monotonic()
        warc_paths = pack_warcs(source, placements, args.n, args.hosts, args.warc_records, Path(warc_dir.name))
        corpus["warc_files"] = len(warc_paths)
        corpus["warc_bytes"] = sum(Path(p).stat().st_size for p in warc_paths)
        corpus["pack_s"] = time.monotonic() - packed
    server_end, here = ctx.Pipe()
    server = ctx.Process(target=serve, args=(source, placements, args.n, args.hosts, server_end), daemon=True)
    server.start()
    feeds = here.recv()
    try:
        floor = run_floor(source, placements, args.n, args.workers, "en_core_web_sm", server.pid)
        options = {
            "min_delay": args.min_delay,
            "host_concurrency": args.host_concurrency,
            "workers": args.workers,
            "fetch_workers": args.fetch_workers,
            "chunk": args.chunk,
            "server_pid": server.pid,
            "warc_paths": warc_paths if args.source == "warc" else None,
        }
        newsflow = run_newsflow(args.server, feeds, options)
    finally:
        here.send("stop")
        server.join(timeout=10)
        if warc_dir is not None:
            warc_dir.cleanup()

    originals = aeb_pages[: min(args.n, len(aeb_pages))]
    with ctx.Pool(args.workers) as pool:
        bare = pool.map(_bare_trafilatura, originals)
    outcomes = newsflow.pop("outcomes")
    ours, theirs, excluded = [], [], Counter()
    for j, (page, text) in enumerate(zip(originals, bare, strict=True)):
        page_url = (
            warc_url(j, args.hosts) if args.source == "warc" else feeds[j % args.hosts].rsplit("/", 1)[0] + page_path(j)
        )
        state, reason, stored = outcomes.get(page_url, (None, None, None))
        if state != "stored" and state != "duplicate" and reason not in EXTRACTION_REASONS:
            excluded[reason or "not in the ledger"] += 1  # never reached extraction: not an extraction result
            continue
        ours.append(token_counts(page[3], stored or ""))
        theirs.append(token_counts(page[3], text))
    quality = {
        "pages": len(ours),
        "excluded": dict(excluded),
        "scores": {"newsflow (text stored)": prf(ours), "trafilatura.extract, default options": prf(theirs)},
    }
    figures = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "source": args.source,
        "machine": machine(),
        "corpus": corpus,
        "floor": floor,
        "newsflow": newsflow,
        "quality": quality,
    }
    report(args, figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
