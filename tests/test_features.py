"""Extra input features (x1², x2², x1x2, sin) for 2-D sets, as in TensorFlow Playground."""

import pytest
import torch

from regdemo.batched import stack_key, train_many
from regdemo.config import Config, ConfigError
from regdemo.engine import Trainer
from regdemo.features import FeatureMap, input_names

CIRCLES = Config(dataset="circles", n_train=200, n_val=400, noise=0.1, hidden=(), lr=0.03,
                 epochs=300)


def test_feature_map_appends_the_chosen_columns_in_a_fixed_order():
    """x1, x2, then each chosen feature's value, whatever order the link named them in."""
    x = torch.tensor([[2.0, 3.0], [-1.0, 0.5]])
    out = FeatureMap(("sin2", "x1sq", "x1x2"))(x)
    expected = torch.stack([x[:, 0], x[:, 1], x[:, 0] ** 2, x[:, 0] * x[:, 1],
                            torch.sin(x[:, 1])], dim=1)
    assert torch.allclose(out, expected)
    assert input_names(("sin2", "x1sq")) == ("x₁", "x₂", "x₁²", "sin x₂")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_squares_let_a_net_without_hidden_layers_draw_a_circle(seed):
    """Playground's classic: a linear model on x1, x2 cannot separate circles; with x1², x2²
    it can (the boundary is a circle in the raw plane)."""
    plain, squared = Trainer(CIRCLES.replace(seed=seed)), Trainer(
        CIRCLES.replace(seed=seed, features=("x1sq", "x2sq")))
    plain.fit()
    squared.fit()
    assert plain.summary()["val_score"] < 0.7
    assert squared.summary()["val_score"] > 0.95
    grid = squared.views()["view"]["z"]  # the boundary view evaluates raw grid points
    assert grid.shape[0] == grid.shape[1] and 0 < grid.mean() < 1


def test_the_first_layer_sees_the_extra_inputs_and_jitter_still_applies():
    """With 2 features the first layer has 4 inputs; input jitter trains without error."""
    tr = Trainer(CIRCLES.replace(features=("x1x2", "sin1"), hidden=(8,), augment="jitter",
                                 epochs=5))
    tr.fit()
    first = next(m for m in tr.model_.modules() if isinstance(m, torch.nn.Linear))
    assert first.in_features == 4
    assert tr.summary()["epochs"] == 5


def test_features_only_fit_2d_sets_with_a_message_that_says_so():
    with pytest.raises(ConfigError, match="extra inputs for 2-D point sets, not for 'sine'"):
        Config(dataset="sine", features=("x1sq",))
    config, problems = Config.from_query({"features": "x1sq-bogus"})
    assert config.features == () and "'features' must be none or some of" in problems[0]


def test_sweeps_train_feature_runs_alone_with_the_same_figures():
    """Stacked training does not model the feature map: such runs train one by one."""
    configs = [CIRCLES.replace(features=("x1sq", "x2sq"), l2=l2, epochs=30) for l2 in (0, 0.1)]
    assert stack_key(configs[0]) is None
    alone = Trainer(configs[1])
    alone.fit()
    assert train_many(configs)[1]["val_loss"] == pytest.approx(alone.summary()["val_loss"])
