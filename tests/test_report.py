"""The HTML report: written atomically, self-contained, every image a PNG that decodes."""
import base64
import io
import json
import os
import re

import pytest
from click.testing import CliRunner

from mapalign.cli import main
from mapalign.synthetic import make_pair

from conftest import write_inputs

pytest.importorskip("matplotlib", reason="the report needs the 'report' extra (matplotlib)")


@pytest.mark.parametrize("mode", ["supervised", pytest.param("unsupervised", marks=pytest.mark.slow)])
def test_report_is_self_contained_and_its_images_decode(tmp_path, mode):
    import matplotlib.image as mpimg

    src, tgt, train, test = make_pair(n_words=600, dim=16, noise=0.3, seed=51)
    write_inputs(tmp_path, {"s.vec": src, "t.vec": tgt}, {"train": train, "test": test})
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    how = ["--dict", tmp_path / "train"] if mode == "supervised" else \
        ["--unsupervised", "--restarts", "1", "--null-draws", "1", "--similarity-vocab", "600"]
    assert run("fit", tmp_path / "s.vec", tmp_path / "t.vec", *how, "-o", tmp_path / "run",
               "-q").exit_code == 0
    r = run("report", tmp_path / "run", "--dict", tmp_path / "test", "-o",
            tmp_path / "r.html", "--json")
    assert r.exit_code == 0, r.output
    numbers = json.loads(r.stdout)
    assert numbers["metrics"]["csls"]["p@1"] > 80
    assert all(numbers["hubness"][m]["max"] >= 1 for m in ("nn", "csls"))
    page = (tmp_path / "r.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    for data in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert ("NOT converged" in page or "converged" in page) == (mode == "unsupervised")
    r = run("report", tmp_path / "run", "--dict", tmp_path / "test", "-o", tmp_path / "r.html")
    assert r.exit_code == 1 and "exists" in r.output


def test_report_renders_in_a_browser(tmp_path):
    """Headless Chromium (Debian's package, where installed) loads the page from disk and
    decodes every image."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):  # .ci/run installs it
            pytest.fail("no chromium on CI: .ci/run installs Debian's chromium")
        pytest.skip("no chromium here (apt-get install chromium); images checked by decoding")
    src, tgt, train, test = make_pair(n_words=400, dim=12, noise=0.3, seed=52)
    write_inputs(tmp_path, {"s.vec": src, "t.vec": tgt}, {"train": train, "test": test})
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    assert run("fit", tmp_path / "s.vec", tmp_path / "t.vec", "--dict", tmp_path / "train",
               "-o", tmp_path / "run", "-q").exit_code == 0
    assert run("report", tmp_path / "run", "--dict", tmp_path / "test", "-o",
               tmp_path / "r.html").exit_code == 0
    page = (tmp_path / "r.html").read_text()
    probe = ("<script>window.addEventListener('load', () => { const imgs = "
             "[...document.images]; document.title = 'loaded ' + imgs.filter(i => i.complete "
             "&& i.naturalWidth > 0).length + ' of ' + imgs.length; });</script></body>")
    (tmp_path / "probe.html").write_text(page.replace("</body>", probe))
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=5000", "--dump-dom",
                          (tmp_path / "probe.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert "<title>loaded 4 of 4</title>" in out.stdout, out.stderr[-500:]


def test_report_names_its_dictionary_and_keeps_adversarial_settings_out(tmp_path):
    pytest.importorskip("matplotlib")
    src, tgt, train, test = make_pair(n_words=300, dim=12, noise=0.2, seed=1)
    paths = write_inputs(tmp_path, {"s.vec": src, "t.vec": tgt},
                         {"train.txt": train, "test.txt": test})
    runner = CliRunner()
    r = runner.invoke(main, ["fit", str(paths["s.vec"]), str(paths["t.vec"]), "--unsupervised",
                             "--restarts", "1", "--null-draws", "1", "--similarity-vocab",
                             "200", "-o", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    assert '"adversarial": "auto"' in (tmp_path / "run" / "report.json").read_text()
    r = runner.invoke(main, ["report", str(tmp_path / "run"), "--dict", str(paths["test.txt"]),
                             "-o", str(tmp_path / "r.html"), "-q"])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "r.html").read_text()
    assert f"Test dictionary {paths['test.txt']}" in page
    assert '"adversarial"' not in page.split("<h2>Settings</h2>")[1]
    assert re.search(r"null level \d\.\d{4},", page)


def test_adversarial_epochs_are_tabled():
    from mapalign.report import _epochs_table

    restart = {"seed": 4, "adversarial": [
        {"epoch": 1, "dis_loss": 0.56, "dis_accuracy": 0.76, "criterion": 0.44},
        {"epoch": 2, "dis_loss": 0.48, "dis_accuracy": 0.87, "criterion": 0.56}]}
    html = _epochs_table(restart)
    assert "seed 4" in html and html.count("<tr>") == 3
    assert "<td>2</td><td>0.4800</td><td>0.870</td><td>0.5600</td>" in html


@pytest.mark.parametrize("mode", ["supervised", "unsupervised"])
def test_axes_that_count_show_whole_numbers(tmp_path, monkeypatch, mode):
    """Rounds (and epochs, restarts, words) are counted in whole numbers: every axis labelled
    with such a unit has ticks at integers only, whatever range it shows (a history of 2 rounds
    would otherwise be ticked 0, 0.25, 0.5 ...). Checked on the figure objects, before they
    are rendered."""
    import mapalign.report as report_module

    src, tgt, train, test = make_pair(n_words=300, dim=12, noise=0.2, seed=3)
    write_inputs(tmp_path, {"s.vec": src, "t.vec": tgt}, {"train": train, "test": test})
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    how = ["--dict", tmp_path / "train", "--refine", "2"] if mode == "supervised" else \
        ["--unsupervised", "--restarts", "1", "--null-draws", "1", "--similarity-vocab", "200"]
    assert run("fit", tmp_path / "s.vec", tmp_path / "t.vec", *how, "-o", tmp_path / "run",
               "-q").exit_code == 0
    counted = []
    render = report_module._png

    def capture(fig):
        for ax in fig.axes:
            for axis, label, lim in ((ax.xaxis, ax.get_xlabel(), ax.set_xlim),
                                     (ax.yaxis, ax.get_ylabel(), ax.set_ylim)):
                if re.search(r"round|epoch|restart|source words", label):
                    lo, hi = axis.get_view_interval()
                    for span in ((lo, hi), (0, 2), (0, 1), (1, 4)):
                        lim(*span)
                        ticks = [t for t in axis.get_majorticklocs()
                                 if span[0] <= t <= span[1]]
                        assert ticks and all(float(t).is_integer() for t in ticks), \
                            (label, span, ticks)
                    counted.append(label)
        return render(fig)

    monkeypatch.setattr(report_module, "_png", capture)
    r = run("report", tmp_path / "run", "--dict", tmp_path / "test", "-o", tmp_path / "r.html",
            "-q")
    assert r.exit_code == 0, r.output
    assert "refinement round" in counted and "source words" in counted
