"""Your own data: CSV parsing rules, caps, the store's datasets table, Config and splits of
upload:<hash>, and a headless run on a small CSV."""

import sqlite3
import time

import numpy as np
import pytest

from regdemo import dataset_shelf, run_format, store_file, uploads
from regdemo.config import MAX_SAMPLES, Config, ConfigError, data_settings
from regdemo.datasets import KIND_1D, KIND_2D, KIND_TABULAR, spec_for, split_for
from regdemo.store import RunStore, StoreError
from regdemo.uploads import UploadError, parse_csv


def _csv(header, rows) -> bytes:
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _blobs(n=60, seed=0, classes=("neg", "pos"), extra=1):
    """Points whose label follows a + b: a learnable small file with text labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2 + extra))
    label = [classes[int(a + b > 0)] for a, b in x[:, :2]]
    header = ["a", "b", *(f"c{i}" for i in range(extra)), "label"]
    return _csv(header, [[*(f"{v:.4f}" for v in r), lab] for r, lab in zip(x, label)])


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A runs store in its own folder, which lookups by hash read too."""
    monkeypatch.setenv(store_file.ENV_DATA_DIR, str(tmp_path))
    with RunStore(tmp_path) as s:
        yield s


# --- parsing rules

def test_the_last_column_is_the_target_and_text_labels_are_classes():
    t = parse_csv(_blobs())
    assert t.target == "label" and t.task == "classification"
    assert t.classes == ("neg", "pos") and t.features == ("a", "b", "c0")
    assert t.x.shape == (60, 3) and t.y.dtype == np.int64 and set(t.y) == {0, 1}
    assert t.numeric and t.dropped == 0


def test_a_named_target_and_detection_of_the_task():
    rows = [[i, i % 3, i * 0.37 + 0.01] for i in range(40)]
    data = _csv(["n", "kind", "price"], rows)
    assert parse_csv(data).task == "regression"  # fractional numbers
    t = parse_csv(data, target="kind")  # few whole numbers
    assert t.task == "classification" and t.classes == ("0", "1", "2")
    assert t.features == ("n", "price")
    assert parse_csv(data, target="KIND").target == "kind"  # case is forgiven
    many = parse_csv(data, target="n")  # 40 whole numbers: too many for classes
    assert many.task == "regression"


def test_the_task_can_be_overridden():
    rows = [[i * 0.1, i % 4] for i in range(40)]
    data = _csv(["x", "grade"], rows)
    assert parse_csv(data).task == "classification"
    t = parse_csv(data, task="regression")
    assert t.task == "regression" and t.classes == () and t.y.dtype == np.float64
    with pytest.raises(UploadError, match="holds text: it cannot be a regression target"):
        parse_csv(_blobs(), task="regression")
    with pytest.raises(UploadError, match="task must be"):
        parse_csv(data, task="clustering")
    with pytest.raises(UploadError, match="too many classes"):
        parse_csv(_csv(["x", "y"], [[i, i * 1.5] for i in range(40)]), task="classification")


def test_text_columns_with_few_values_are_one_hot_encoded():
    rows = [[i, ["red", "green", "blue"][i % 3], i % 2] for i in range(30)]
    t = parse_csv(_csv(["size", "colour", "y"], rows))
    assert t.features == ("size", "colour=blue", "colour=green", "colour=red")
    assert not t.numeric
    np.testing.assert_array_equal(t.x[:3, 1:], [[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    assert (t.x[:, 1:].sum(axis=1) == 1).all()


def test_a_text_column_with_many_values_is_refused_by_name():
    rows = [[i, f"name {i}", i % 2] for i in range(30)]
    with pytest.raises(UploadError, match="column 'who' holds text with 30 different values"):
        parse_csv(_csv(["n", "who", "y"], rows))


def test_rows_with_missing_values_are_dropped_and_counted():
    rows = [[i, i % 2] for i in range(30)] + [["", 1], ["NA", 0], [3, "?"], ["inf", 1]]
    t = parse_csv(_csv(["x", "y"], rows))
    assert t.rows == 30 and t.dropped == 4
    assert "4 with missing values left out" in t.describe()
    # An empty column is left out, not a reason to drop every row.
    t = parse_csv(_csv(["x", "empty", "y"], [[i, "", i % 2] for i in range(20)]))
    assert t.features == ("x",) and t.rows == 20 and "empty" in t.notes[0]


def test_too_few_complete_rows_are_refused_naming_the_worst_column():
    rows = [[i, "" if i > 5 else i, i % 2] for i in range(30)]
    with pytest.raises(UploadError, match=r"only 6 of 30 rows.*column 'b' is missing in 24"):
        parse_csv(_csv(["a", "b", "y"], rows))


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"  \n\n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
    ("a,b\n1,é\n".encode("latin-1"), "not UTF-8"),
    (b"only\n1\n2\n3\n", "one column only"),
    (b"a,b\n", "no rows"),
    (_csv(["x", "y"], [[i, "same"] for i in range(20)]), "one value only"),
    (_csv(["x", "y"], [[i, 5] for i in range(20)]), "one value only"),
    (_csv(["x", "y"], [[i, i % 2] for i in range(8)]), "only 8 of 8 rows"),
    (_csv(["x", "y"], [[i, 0] for i in range(20)] + [[1, 1]]), "has 1 row"),
    (b"a,b,c\n1,2,3\n4,5\n", "line 3 has 2 fields; the header has 3"),
    (b"1,2,3\n4,5,6\n", "the first line must name the columns"),
    (_csv(["x", "y"], [[1e31, i % 2] for i in range(20)]), "beyond 1e30"),
    (b'a,b\n"' + b"x" * 200_000 + b'",1\n', "not a readable CSV"),
])
def test_bad_files_are_refused_with_one_line(data, message):
    with pytest.raises(UploadError, match=message) as info:
        parse_csv(data)
    assert "\n" not in str(info.value)


def test_too_few_rows_for_the_classes_are_refused():
    rows = [[i, i % 10] for i in range(20)]  # 2 rows per class: train and val need 10 each
    with pytest.raises(UploadError, match="too few: at least"):
        parse_csv(_csv(["x", "y"], rows))
    need = uploads.min_rows(10)
    assert need - round(need * 0.2) >= 20 and need - 1 - round((need - 1) * 0.2) < 20


def test_a_huge_header_is_refused_quickly():
    data = b",".join(b"c%d" % i for i in range(10**6)) + b"\n" + b"1," * 999_999 + b"1\n"
    start = time.perf_counter()
    with pytest.raises(UploadError, match="header has 1,000,000 columns"):
        parse_csv(data)
    assert time.perf_counter() - start < 0.5


def test_the_caps_on_size_rows_and_columns():
    assert uploads.MAX_BYTES == run_format.MAX_IMPORT_BYTES
    assert uploads.MAX_ROWS == 2 * MAX_SAMPLES
    with pytest.raises(UploadError, match="at most 33,554,432 are read"):
        parse_csv(b"a,b\n" + b"1,2\n" * (uploads.MAX_BYTES // 4 + 1))
    with pytest.raises(UploadError, match="more than 10,000 rows"):
        parse_csv(_csv(["x", "y"], [[i, i % 2] for i in range(10_001)]))
    assert parse_csv(_csv(["x", "y"], [[i, i % 2] for i in range(10_000)])).rows == 10_000
    wide = [f"c{i}" for i in range(1001)]
    with pytest.raises(UploadError, match="1,001 columns"):
        parse_csv(_csv(wide, [[1] * 1001] * 12).replace(b",", b";"))  # ; files too
    with pytest.raises(UploadError, match="more than 2,000,000 values"):
        parse_csv(_csv(wide[:300], [[i % 2] * 300 for i in range(9000)]))


def test_semicolons_decimal_commas_a_bom_and_quoted_names():
    data = "\ufeff\"width; cm\";\"kind\"\n" + "".join(f"{i},5;{'ab'[i % 2]}\n"
                                                     for i in range(20))
    t = parse_csv(data.encode())
    assert t.features == ("width; cm",) and t.classes == ("a", "b")
    assert t.x[1, 0] == pytest.approx(1.5)


def test_names_are_made_printable_and_unique():
    data = _csv(["x", "x", "\x1b[31mred", ""], [[1, 2, 3, i % 2] for i in range(20)])
    t = parse_csv(data)
    assert t.features == ("x", "x (2)", "[31mred") and t.target == "column 4"


def test_the_hash_follows_the_content():
    a, b = parse_csv(_blobs(seed=1)), parse_csv(_blobs(seed=1))
    assert a.digest == b.digest and uploads.HASH.fullmatch(a.digest)
    assert parse_csv(_blobs(seed=2)).digest != a.digest
    assert parse_csv(_blobs(seed=1), target="a").digest != a.digest
    assert a.dataset == "upload:" + a.digest and uploads.hash_of(a.dataset) == a.digest
    assert uploads.hash_of("upload:XYZ") is None and uploads.hash_of("moons") is None


# --- the store

def test_a_table_round_trips_through_the_store(store):
    t = parse_csv(_blobs(n=80))
    digest = store.save_dataset(t)
    assert digest == t.digest and store.save_dataset(t) == digest  # once per content
    back = store.load_dataset(digest)
    np.testing.assert_array_equal(back.x, t.x)
    np.testing.assert_array_equal(back.y, t.y)
    assert back.meta() == t.meta() and back.digest == digest
    assert store.load_dataset("0" * 16) is None
    with pytest.raises(StoreError, match="16 lowercase hex"):
        store.load_dataset("../../etc/passwd")


def test_another_process_reads_it_from_the_file(store, monkeypatch):
    """The lookup by hash reads the runs file (a worker process has no cache)."""
    t = parse_csv(_blobs(n=50, seed=5))
    store.save_dataset(t)
    monkeypatch.setattr(dataset_shelf, "_cache", type(dataset_shelf._cache)())
    found = dataset_shelf.lookup(t.digest)
    assert found is not None and found.digest == t.digest


def test_damaged_bytes_are_not_served(store, monkeypatch):
    t = parse_csv(_blobs(n=50, seed=6))
    store.save_dataset(t)
    with sqlite3.connect(store.path) as conn:
        other = uploads.pack(parse_csv(_blobs(n=50, seed=7)))
        conn.execute("UPDATE datasets SET arrays = ? WHERE hash = ?", (other, t.digest))
    assert store.load_dataset(t.digest) is None  # the hash does not match the bytes


def test_a_file_from_before_datasets_gets_the_table(tmp_path):
    with RunStore(tmp_path) as s:
        old = s.create(Config(epochs=3))
    with sqlite3.connect(tmp_path / "runs.sqlite3") as conn:
        conn.execute("DROP TABLE datasets")
    with RunStore(tmp_path) as s:
        assert [r.id for r in s.runs()] == [old] and not s.problem
        assert s.load_dataset(s.save_dataset(parse_csv(_blobs()))) is not None


# --- Config, specs and splits

def test_config_accepts_an_upload_the_server_has(store):
    t = parse_csv(_blobs(n=100))
    store.save_dataset(t)
    c = Config(**data_settings(t.dataset))
    assert c.dataset == t.dataset and c.task == "classification"
    assert c.n_train + c.n_val == 80 and c.n_val == 20  # every row but the test share
    back, problems = Config.from_query(c.to_query())
    assert back == c and problems == []
    with pytest.raises(ConfigError, match="at most 80"):
        c.replace(n_train=70)


def test_an_unknown_or_malformed_upload_is_a_clear_error(store):
    missing = "upload:" + "ab" * 8
    with pytest.raises(ConfigError, match="this server does not have that uploaded data"):
        Config(dataset=missing)
    config, problems = Config.from_query({"dataset": missing, "lr": "0.1"})
    assert config.dataset == "moons" and config.lr == 0.1  # the rest still applies
    assert problems and "does not have that uploaded data" in problems[0]
    config, problems = Config.from_query({"dataset": "upload:../x"})
    assert config.dataset == "moons" and "upload:<16 hex digits>" in problems[0]


def test_the_view_follows_the_columns(store):
    two = parse_csv(_blobs(extra=0))
    curve = parse_csv(_csv(["x", "y"], [[i, i * 0.5 + 0.25] for i in range(30)]))
    text = parse_csv(_csv(["c", "y"], [["ab"[i % 2], i % 2] for i in range(30)]))
    for t in (two, curve, text):
        store.save_dataset(t)
    assert spec_for(two.dataset).kind == KIND_2D
    assert spec_for(curve.dataset).kind == KIND_1D
    assert spec_for(text.dataset).kind == KIND_TABULAR  # one-hot columns are not points
    multi = parse_csv(_csv(["a", "b", "y"], [[i, i * 2 % 7, i % 3] for i in range(40)]))
    store.save_dataset(multi)
    assert spec_for(multi.dataset).kind == KIND_TABULAR  # the boundary view is two-class


def test_split_for_an_upload_is_seeded_and_holds_out_a_test_share(store):
    t = parse_csv(_blobs(n=200, seed=3))
    store.save_dataset(t)
    c = Config(dataset=t.dataset, n_train=60, n_val=50, seed=4, noise=0.0, epochs=5)
    s = split_for(c)
    assert s.x_train.shape == (60, 3) and s.x_val.shape == (50, 3) and len(s.y_test) == 40
    assert s.feature_names == ("a", "b", "c0") and s.n_classes == 2
    np.testing.assert_allclose(s.x_train.mean(0), 0, atol=1e-5)
    again = split_for(c)
    for a, b in ((s.x_train, again.x_train), (s.y_val, again.y_val), (s.x_test, again.x_test)):
        np.testing.assert_array_equal(a, b)
    other = split_for(c.replace(seed=5))
    assert not np.array_equal(other.y_train, s.y_train)
    rows = lambda x: {r.tobytes() for r in x}  # noqa: E731
    assert not rows(s.x_test) & (rows(s.x_train) | rows(s.x_val))


def test_a_regression_upload_has_standardised_targets(store):
    rng = np.random.default_rng(0)
    rows = [[f"{v:.4f}", f"{1000 + 300 * v:.3f}"] for v in rng.normal(size=120)]
    t = parse_csv(_csv(["x", "price"], rows))
    store.save_dataset(t)
    s = split_for(Config(**data_settings(t.dataset), epochs=5))
    assert s.kind == KIND_1D and s.y_train.shape[1] == 1
    assert abs(float(s.y_train.mean())) < 1e-4 and float(s.y_train.std()) == pytest.approx(1, 1e-3)


# --- the command line

def test_a_headless_run_on_a_csv(tmp_path, monkeypatch, capsys):
    from regdemo.cli import main

    monkeypatch.setenv(store_file.ENV_DATA_DIR, str(tmp_path / "runs"))
    path = tmp_path / "my.csv"
    path.write_bytes(_blobs(n=120, seed=9))
    code = main(["train", "--data", str(path), "--target", "label", "--set", "epochs=15",
                 "--set", "hidden=8", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "finished: reached 15 epochs" in out and "test score" in out
    with RunStore(tmp_path / "runs") as s:
        (run,) = s.runs()
        assert run.config["dataset"] == parse_csv(path.read_bytes()).dataset
        assert run.config["noise"] == "0.0" and run.config["n_val"] == "24"


@pytest.mark.parametrize("args, message", [
    (["--data", "missing.csv"], "cannot read"),
    (["--data", "bad.csv"], "cannot use bad.csv: the file has one column only"),
    (["--data", "bad.csv", "--task", "tree"], "invalid choice"),
    (["--target", "y"], "--target and --task go with --data"),
])
def test_a_bad_file_on_the_command_line_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys,
                                                               args, message):
    from regdemo.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("a\n1\n2\n")
    assert main(["train", *args, "--quiet", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# --- the page

def test_the_page_trains_on_an_uploaded_file(app):
    """Upload, pick the target, accept: the Dataset control names the upload, the link
    carries it, and a run trains on it."""
    from tests.page_reading import board, query_of, wait_until_parked

    app.run()
    data = _blobs(n=100, seed=4)
    app.file_uploader(key="w_upload_file").set_value(("mine.csv", data, "text/csv")).run()
    assert not app.exception
    assert app.selectbox(key="w_upload_target").value == "label"
    assert any("100 rows" in c.value and "classification" in c.value
               for c in app.sidebar.caption)
    app.selectbox(key="w_upload_target").set_value("a").run()  # a regression on a
    assert any("regression" in c.value for c in app.sidebar.caption)
    app.selectbox(key="w_upload_target").set_value("label").run()
    app.button(key="btn_upload").click().run()
    assert not app.exception, app.exception
    name = parse_csv(data).dataset
    assert app.selectbox(key="w_dataset").value == name
    assert query_of(app)["dataset"] == name
    assert (app.number_input(key="w_n_train").value, app.number_input(key="w_n_val").value) \
        == (60, 20)
    assert not [e.value for e in app.sidebar.error]
    app.number_input(key="w_epochs").set_value(10).run()
    app.button(key="btn_train").click().run()
    wait_until_parked(app)
    assert not app.exception
    assert board(app)["runs"][0]["epoch"] == 10


def test_the_page_refuses_a_bad_file_in_one_line(app):
    app.run()
    app.file_uploader(key="w_upload_file").set_value(
        ("junk.csv", b"\x00\x01binary", "text/csv")).run()
    assert not app.exception
    errors = [e.value for e in app.sidebar.error]
    assert any("Cannot use junk.csv: the file holds NUL bytes" in e for e in errors)
    assert app.selectbox(key="w_dataset").value == "moons"


def test_a_link_to_data_the_server_lacks_falls_back(app):
    app.query_params["dataset"] = "upload:" + "cd" * 8
    app.run()
    assert not app.exception
    assert any("does not have that uploaded data" in w.value for w in app.warning)
    assert app.selectbox(key="w_dataset").value == "moons"
