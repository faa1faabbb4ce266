"""Config: the constraint table, cross-field rules, immutability and the URL round-trip."""

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regdemo.config import (
    _CONSTRAINTS,
    LIVE_KNOBS,
    STRUCTURAL_KNOBS,
    Config,
    ConfigError,
)

FIELDS = [f.name for f in dataclasses.fields(Config)]

# At least one value per field that the constraint table must refuse.
INVALID = [
    ("dataset", "mnist"),
    ("dataset", 3),
    ("n_train", 3),
    ("n_train", 5001),
    ("n_train", "40"),
    ("n_train", 40.5),
    ("n_val", 3),
    ("n_val", 5001),
    ("n_test", 3),
    ("n_test", 5001),
    ("noise", 1.5),
    ("noise", -0.1),
    ("noise", "0.3"),
    ("label_noise", 0.6),
    ("features", ("x3sq",)),
    ("features", "x1sq"),
    ("features", (1,)),
    ("hidden", (0,)),
    ("hidden", (513,)),
    ("hidden", (8,) * 9),
    ("hidden", None),
    ("hidden", (64.0, 64.0)),
    ("hidden", (True,)),
    ("activation", "swish"),
    ("arch", "rnn"),
    ("batch_norm", 1),
    ("batch_norm", "true"),
    ("residual", "yes"),
    ("l1", -0.1),
    ("l1", 1.5),
    ("l2", 11),
    ("weight_decay", -1),
    ("weight_decay", 10.5),
    ("dropout", 1.5),
    ("dropout", True),
    ("augment", "cutout"),
    ("augment_strength", 2),
    ("label_smoothing", 0.6),
    ("stochastic_depth", 0.95),
    ("max_norm", -1.0),
    ("max_norm", 10.5),
    ("early_stopping", None),
    ("patience", 0),
    ("patience", 100_001),
    ("min_delta", 1.1),
    ("restore_best", "no"),
    ("optimizer", "rmsprop"),
    ("lr", 0),
    ("lr", 0.0),
    ("lr", 10.5),
    ("batch_size", -1),
    ("batch_size", 5001),
    ("epochs", 0),
    ("epochs", 100_001),
    ("seed", -1),
    ("seed", 2**31),
]


def test_invalid_table_covers_every_field():
    """The parametrized table below has at least one bad value for every field."""
    assert {name for name, _ in INVALID} == set(FIELDS) == set(_CONSTRAINTS)


def test_defaults_are_valid():
    """Config() builds, and rebuilding it from its own fields gives an equal config."""
    c = Config()
    assert Config(**dataclasses.asdict(c)) == c
    assert c.kind == "2d" and c.task == "classification"


@pytest.mark.parametrize(("field", "value"), INVALID, ids=[f"{n}={v!r}" for n, v in INVALID])
def test_every_field_rejects_bad_value(field, value):
    """An out-of-range or wrong-type value raises ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        Config(**{field: value})
    assert isinstance(info.value, ValueError)
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith(f"'{field}' must be ")
    assert str(info.value) == info.value.errors[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dropout": 1.5}, "'dropout' must be a float in [0, 0.95]; got 1.5."),
        ({"lr": 0}, "'lr' must be a float in (0, 10]; got 0."),
        ({"l2": 11}, "'l2' must be a float in [0, 10]; got 11."),
        ({"n_train": 3}, "'n_train' must be an int in [4, 5000]; got 3."),
        ({"seed": -1}, "'seed' must be an int in [0, 2**31 - 1]; got -1."),
        ({"patience": 0}, "'patience' must be an int in [1, 100000]; got 0."),
        ({"batch_norm": 1}, "'batch_norm' must be a bool (true or false); got 1."),
        (
            {"optimizer": "rmsprop"},
            "'optimizer' must be one of 'sgd', 'momentum', 'adam', 'adamw'; got rmsprop.",
        ),
        (
            {"hidden": (0,)},
            "'hidden' must be a list of 0 to 8 widths, each an int in [1, 512] (like 64-64);"
            " got (0,).",
        ),
    ],
)
def test_exact_messages(changes, message):
    """The message format is exactly "'name' must be <description>; got <value>."."""
    with pytest.raises(ConfigError) as info:
        Config(**changes)
    assert str(info.value) == message
    assert info.value.errors == [message]


def test_every_bad_field_is_listed():
    """Two bad fields give two messages, joined by '; ' in str()."""
    with pytest.raises(ConfigError) as info:
        Config(dropout=1.5, n_train=3)
    assert len(info.value.errors) == 2
    assert str(info.value) == "; ".join(info.value.errors)
    assert any("'dropout'" in e for e in info.value.errors)
    assert any("'n_train'" in e for e in info.value.errors)


def test_ints_are_coerced_to_float_for_float_fields():
    """l2=1 is accepted and stored as the float 1.0."""
    c = Config(l2=1, noise=0, lr=1)
    assert type(c.l2) is float and c.l2 == 1.0
    assert type(c.noise) is float and c.noise == 0.0
    assert type(c.lr) is float


def test_integral_floats_are_coerced_to_int_for_int_fields():
    """n_train=40.0 is stored as the int 40; 40.5 is refused (see INVALID)."""
    c = Config(n_train=40.0, epochs=300.0)
    assert type(c.n_train) is int and c.n_train == 40
    assert type(c.epochs) is int and c.epochs == 300


def test_hidden_list_becomes_tuple():
    """A list of widths is accepted and stored as a tuple."""
    c = Config(hidden=[3, 5, 7])
    assert c.hidden == (3, 5, 7) and isinstance(c.hidden, tuple)
    assert Config(hidden=[]).hidden == ()


@pytest.mark.parametrize("field", ["n_train", "n_val", "patience", "batch_size", "epochs", "seed"])
@pytest.mark.parametrize("value", [True, False])
def test_bools_rejected_for_int_fields(field, value):
    """True/False are ints in Python, but never a valid count."""
    with pytest.raises(ConfigError, match=f"^'{field}' must be an int"):
        Config(**{field: value})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["noise", "l2", "lr", "dropout", "n_train", "seed", "epochs"])
def test_nan_and_inf_rejected(field, bad):
    """Non-finite numbers are refused for float and int fields alike."""
    with pytest.raises(ConfigError, match=f"^'{field}' must be"):
        Config(**{field: bad})


def test_huge_int_for_float_field_is_a_config_error():
    """An int too large for a float is out of range: ConfigError, not OverflowError."""
    with pytest.raises(ConfigError, match="^'l2' must be"):
        Config(l2=10**400)


# --- cross-field rules


def test_wine_too_many_samples():
    """n_train + n_val over wine's 142 rows (178 less the 20% test share) is refused with
    the sum in the message."""
    with pytest.raises(ConfigError) as info:
        Config(dataset="wine", n_train=100, n_val=100)
    assert info.value.errors == [
        "'n_train' + 'n_val' must be at most 142 for 'wine'; got 100 + 100."
    ]
    assert Config(dataset="wine", n_train=100, n_val=42).n_val == 42  # all 142 rows


def test_shift_refused_on_moons():
    """Image augmentations do not fit 2-D points; the message lists what does fit."""
    with pytest.raises(ConfigError) as info:
        Config(augment="shift")
    (msg,) = info.value.errors
    assert msg.startswith("'augment' 'shift' does not fit the 2d dataset 'moons'")
    assert "'jitter'" in msg and "'shift'" not in msg.split("use one of")[1]
    assert Config(dataset="digits", augment="shift").augment == "shift"


def test_cnn_needs_image_data():
    """arch='cnn' is refused on moons and accepted on digits."""
    with pytest.raises(ConfigError, match="'arch' 'cnn' needs image data"):
        Config(arch="cnn")
    assert Config(dataset="digits", arch="cnn").arch == "cnn"


def test_residual_needs_equal_widths():
    """residual with 64-32 is refused; 32-32-32 is accepted."""
    with pytest.raises(ConfigError) as info:
        Config(residual=True, hidden=(64, 32))
    assert info.value.errors == [
        "'residual' needs equal hidden widths (like 64-64-64); got 64-32."
    ]
    assert Config(residual=True, hidden=(32, 32, 32)).residual is True


def test_stochastic_depth_needs_residual():
    """stochastic_depth > 0 without residual is refused; with residual it is fine."""
    with pytest.raises(ConfigError, match="'stochastic_depth' drops residual blocks"):
        Config(stochastic_depth=0.3)
    assert Config(stochastic_depth=0.3, residual=True).stochastic_depth == 0.3


def test_batch_norm_needs_batches_of_two():
    """batch_norm with batch_size 1 is refused; 0 (full batch) and 2 are fine."""
    with pytest.raises(ConfigError, match="'batch_norm' needs batches of 2 or more"):
        Config(batch_norm=True, batch_size=1)
    assert Config(batch_norm=True, batch_size=2).batch_size == 2
    assert Config(batch_norm=True, batch_size=0).batch_size == 0


# --- replace and immutability


def test_replace_validates_and_copies():
    """replace() returns a new valid config and refuses bad values."""
    c = Config()
    d = c.replace(dropout=0.2, l2=1)
    assert d.dropout == 0.2 and d.l2 == 1.0 and c.dropout == 0.0
    with pytest.raises(ConfigError, match="'dropout'"):
        c.replace(dropout=2.0)
    with pytest.raises(ConfigError, match="'augment'"):
        c.replace(augment="rotate")


def test_config_is_frozen():
    """Assigning to a field raises FrozenInstanceError."""
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.dropout = 0.5
    assert c.dropout == 0.0


# --- URL round trip

CHANGED = Config(
    dataset="digits",
    n_train=123,
    n_val=77,
    noise=0.1,
    label_noise=0.25,
    hidden=(3, 5, 7),
    activation="gelu",
    arch="cnn",
    batch_norm=True,
    l1=1e-4,
    l2=0.1,
    weight_decay=3e-5,
    dropout=0.35,
    augment="rotate",
    augment_strength=0.7,
    label_smoothing=0.1,
    early_stopping=True,
    patience=17,
    min_delta=1e-3,
    restore_best=False,
    optimizer="adamw",
    lr=0.003,
    batch_size=32,
    epochs=1234,
    seed=2**31 - 1,
)


@pytest.mark.parametrize(
    "config",
    [
        Config(),
        CHANGED,
        Config(hidden=()),
        Config(hidden=(4,), residual=True, stochastic_depth=0.1, lr=1e-4, noise=0.1),
        Config(dataset="circles", features=("sin2", "x1sq", "x1x2")),
    ],
    ids=["defaults", "changed", "no-hidden", "residual", "features"],
)
@pytest.mark.parametrize("only_changed", [False, True])
def test_query_round_trip(config, only_changed):
    """from_query(to_query()) gives back an equal config with no problems."""
    query = config.to_query(only_changed=only_changed)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in query.items())
    back, problems = Config.from_query(query)
    assert problems == []
    assert back == config


def test_to_query_lists_all_fields_or_only_changed():
    """Full query has every field; only_changed lists exactly the non-default ones."""
    assert set(Config().to_query()) == set(FIELDS)
    assert Config().to_query(only_changed=True) == {}
    assert Config(l2=0.2, hidden=()).to_query(only_changed=True) == {"l2": "0.2", "hidden": ""}


def test_missing_keys_keep_base():
    """Keys not in the query keep the base config's values."""
    base = Config(dropout=0.3, seed=9)
    c, problems = Config.from_query({"lr": "0.5"}, base=base)
    assert problems == []
    assert c == base.replace(lr=0.5)
    assert Config.from_query({}) == (Config(), [])


def test_unknown_keys_ignored():
    """Keys that are not fields are silently ignored."""
    c, problems = Config.from_query({"foo": "bar", "utm_source": "x", "l2": "0.5"})
    assert problems == []
    assert c == Config(l2=0.5)


def test_repeated_keys_take_last():
    """A list value (repeated query key) uses its last element."""
    c, problems = Config.from_query({"lr": ["0.1", "0.2"], "hidden": ["8", "16-16"]})
    assert problems == []
    assert c.lr == 0.2 and c.hidden == (16, 16)


def test_bad_value_reported_rest_applied():
    """A bad value is dropped with one message naming it; the other keys still apply."""
    c, problems = Config.from_query({"lr": "abc", "dropout": "0.2", "epochs": "-5"})
    assert c == Config(dropout=0.2)
    assert problems == [
        "'lr' must be a float in (0, 10]; got abc.",
        "'epochs' must be an int in [1, 100000]; got -5.",
    ]


def test_long_bad_value_is_shortened_in_message():
    """A huge raw value is cut to 40 characters plus '...' in the problem."""
    c, problems = Config.from_query({"seed": "9" * 5000})
    assert c == Config()
    assert problems == [f"'seed' must be an int in [0, 2**31 - 1]; got {'9' * 40}...."]


def test_values_that_fit_alone_but_not_together():
    """augment=shift on moons is reported and dropped; the result is valid."""
    c, problems = Config.from_query({"augment": "shift", "dropout": "0.1"})
    assert c == Config(dropout=0.1)
    assert len(problems) == 1 and "'augment' 'shift'" in problems[0]
    c, problems = Config.from_query({"augment": "shift", "dataset": "digits"})
    assert problems == [] and c.augment == "shift" and c.dataset == "digits"


def test_sizes_too_big_together_keep_what_fits():
    """wine with n_val=400 over the default n_train cannot both apply; result is valid."""
    c, problems = Config.from_query({"dataset": "wine", "n_val": "400"})
    assert problems and any("'wine'" in p for p in problems)
    assert Config(**dataclasses.asdict(c)) == c
    assert (c.dataset, c.n_val) != ("wine", 400)


def test_query_parses_lenient_spellings():
    """Booleans take true/yes/on, widths take 64x64 or 64,64, ints take 300.0."""
    c, problems = Config.from_query(
        {"batch_norm": "yes", "restore_best": "off", "hidden": "32x32", "epochs": "300.0"}
    )
    assert problems == []
    assert c.batch_norm is True and c.restore_best is False
    assert c.hidden == (32, 32) and c.epochs == 300 and type(c.epochs) is int


def test_live_and_structural_knobs_partition_fields():
    """Every field is exactly one of live or structural."""
    assert set(FIELDS) >= LIVE_KNOBS
    assert not LIVE_KNOBS & STRUCTURAL_KNOBS
    assert set(FIELDS) == LIVE_KNOBS | STRUCTURAL_KNOBS
    assert "lr" in LIVE_KNOBS and "hidden" in STRUCTURAL_KNOBS and "dataset" in STRUCTURAL_KNOBS


_NASTY = st.sampled_from(
    ["nan", "-nan", "inf", "-inf", "1e999", "-1", "0", "1", "1e-400", "9" * 41, "9" * 5000,
     "1" * 39, "٣", "６４", "1_000", "0x10", "64-64", "-", "x", "", " ", "true", "none",
     "digits", "shift", "cnn", "1" + "-1" * 20, "300.0", "5000.5", "\x00", "😀"]
)
_VALUES = st.one_of(st.text(max_size=30), _NASTY)
_KEYS = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        _KEYS, st.one_of(_VALUES, st.lists(_VALUES, max_size=3)), max_size=len(FIELDS)
    )
)
def test_from_query_never_raises(query):
    """Arbitrary text queries give a valid Config and a list of string problems."""
    config, problems = Config.from_query(query)
    assert isinstance(config, Config)
    assert Config(**dataclasses.asdict(config)) == config
    assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
    defaults = Config()
    for name in FIELDS:
        if name not in query:  # fields the query does not name keep the base value
            assert getattr(config, name) == getattr(defaults, name)
    if not problems:  # nothing reported: every field in the query took effect as parsed
        for name in set(query) & set(FIELDS):
            raw = query[name]
            raw = (raw[-1] if raw else "") if isinstance(raw, list) else raw
            check = _CONSTRAINTS[name]
            assert check.coerce(check.decode(raw)) == (True, getattr(config, name))


def test_numpy_numbers_are_accepted():
    """numpy ints and floats (from sliders, dataframes) count as ints and floats."""
    import numpy as np

    c = Config(n_train=np.int64(40), dropout=np.float32(0.5))
    assert c.n_train == 40 and type(c.n_train) is int
    assert c.dropout == 0.5 and type(c.dropout) is float
